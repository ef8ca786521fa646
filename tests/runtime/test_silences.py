"""Snoozes and maintenance windows through the monitor, on an in-memory store: while a rule is
silenced it opens no incident and nothing is sent; it resumes by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.notify.receiver import Receiver, serving
from vigil.core import EventKind
from vigil.core.silences import MaintenanceWindow, Snooze

from .support import Clock, Runtime

LATENCY = "gateway_latency"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


async def test_a_snoozed_rule_opens_nothing_sends_nothing_and_resumes(receiver: Receiver) -> None:
    async with Runtime() as runtime:
        store, clock = runtime.store, runtime.clock
        await store.add_channel({"name": "ops", "url": receiver.url()}, now=clock())
        snooze = Snooze.for_duration(
            LATENCY, duration=timedelta(minutes=10), reason="deploying", by="ana", now=clock()
        )
        runtime.publish(*await store.set_snooze(snooze))
        [started] = await runtime.logged(EventKind.SNOOZE_STARTED)
        assert (started.by, started.data["reason"]) == ("ana", "deploying")

        assert await runtime.kinds(LATENCY, 250, 250, 250, 250) == []
        assert runtime.view.active() == []
        assert await store.list_notifications() == []
        assert runtime.view.current[LATENCY].value == 250  # readings still recorded

        clock.now = snooze.until - timedelta(seconds=runtime.interval)
        # the snooze is over at the next cycle: the rule still breaches
        assert await runtime.kinds(LATENCY, 250) == [EventKind.INCIDENT_OPENED]
        [ended] = await runtime.logged(EventKind.SNOOZE_ENDED)
        assert (ended.metric, ended.by, ended.data["expired"]) == (LATENCY, None, True)
        await receiver.wait_for(lambda: len(receiver.hits) == 1)
        assert receiver.hits[0].body["title"] == "[CRITICAL] Gateway Latency: incident opened"

        await runtime.kinds(LATENCY, 250, 250)
        assert len(await runtime.logged(EventKind.SNOOZE_ENDED)) == 1  # recorded once
        assert [s.value for s in store.samples if s.metric == LATENCY] == [250] * 7


async def test_a_snooze_set_and_lifted_elsewhere_applies_next_cycle() -> None:
    async with Runtime() as runtime:
        store, clock = runtime.store, runtime.clock
        # as the CLI would: stored, and told nobody; the leader reads the log each cycle
        await store.set_snooze(
            Snooze.for_duration(
                LATENCY, duration=timedelta(hours=1), reason="noisy", by="bo", now=clock()
            )
        )
        assert await runtime.kinds(LATENCY, 250, 250, 250) == []
        await store.end_snooze(LATENCY, by="bo", now=clock())
        assert await runtime.kinds(LATENCY, 250) == [EventKind.INCIDENT_OPENED]
        [ended] = await runtime.logged(EventKind.SNOOZE_ENDED)
        assert (ended.by, ended.data["expired"]) == ("bo", False)


async def test_a_weekly_window_across_midnight_on_the_night_clocks_go_back(
    receiver: Receiver,
) -> None:
    # Saturday 23:00 to Sunday 02:00 in Berlin, on 24-25 October 2026, when 03:00 summer time
    # becomes 02:00 winter time. The window ends at the first 02:00 (summer time, 00:00 UTC),
    # not an hour later at the second.
    clock = Clock(datetime(2026, 10, 24, 21, 0, tzinfo=UTC))
    async with Runtime(clock=clock) as runtime:
        store = runtime.store
        await store.add_channel({"name": "ops", "url": receiver.url()}, now=clock())
        window = MaintenanceWindow.weekly(
            "saturday-night",
            weekdays=["sat"],
            start_time="23:00",
            end_time="02:00",
            timezone="Europe/Berlin",
            reason="backups",
            by="ana",
        )
        _, added = await store.add_window(window, now=clock())
        runtime.publish(added)
        assert await runtime.kinds(LATENCY, 250, 250) == []  # 23:00:30 CEST onwards
        clock.now = datetime(2026, 10, 24, 23, 59, 0, tzinfo=UTC)  # 01:59 CEST
        assert await runtime.kinds(LATENCY, 250) == []  # 01:59:30 CEST
        assert await store.list_notifications() == []
        assert receiver.hits == []
        # 02:00:00 CEST: the window is over (the clock will show 02:00 again, in CET)
        assert await runtime.kinds(LATENCY, 250) == [EventKind.INCIDENT_OPENED]
        [incident] = runtime.view.active()
        assert incident.triggered_at == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
        await receiver.wait_for(lambda: len(receiver.hits) == 1)


async def test_a_window_for_other_rules_silences_only_them_and_removal_resumes() -> None:
    async with Runtime() as runtime:
        store, clock = runtime.store, runtime.clock
        start, end = clock() - timedelta(minutes=1), clock() + timedelta(hours=2)
        for window in (
            MaintenanceWindow.once("db-move", start=start, end=end, metrics=["memory_usage"]),
            MaintenanceWindow.once("everything", start=start, end=end),
        ):
            _, added = await store.add_window(window, now=clock())
            runtime.publish(added)
        assert await runtime.kinds(LATENCY, 250, 250) == []
        runtime.publish(await store.delete_window("everything", by="ana", now=clock()))
        assert await runtime.kinds(LATENCY, 250) == [EventKind.INCIDENT_OPENED]
        [removed] = await runtime.logged(EventKind.MAINTENANCE_REMOVED)
        assert (removed.by, removed.data["window"]["name"]) == ("ana", "everything")
        # memory_usage is still in its window
        events = await runtime.cycle({LATENCY: 250, "memory_usage": 900})
        events += await runtime.cycle({LATENCY: 250, "memory_usage": 900})
        assert events == []
        assert [w.name for w in runtime.silences.active_windows(clock())] == ["db-move"]
