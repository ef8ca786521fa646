"""Snoozes and maintenance windows through the real monitor: while a rule is silenced it opens
no incident and nothing is sent; it resumes by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.runtime.support import Clock, Script, cycle, make_vigil
from vigil.core import Event, EventKind
from vigil.core.suppression import MaintenanceWindow, Snooze
from vigil.runtime import Vigil
from vigil.store import Store

from .receiver import Receiver, serving

LATENCY = "gateway_latency"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


async def kinds_of(vigil: Vigil, clock: Clock, script: Script, *values: float) -> list[EventKind]:
    kinds = []
    for value in values:
        kinds += [event.kind for event in await cycle(vigil, clock, {LATENCY: value}, script)]
    return kinds


async def logged(vigil: Vigil, kind: EventKind) -> list[Event]:
    return [event for event in await vigil.store.events_after(0) if event.kind is kind]


async def test_a_snoozed_rule_opens_nothing_sends_nothing_and_resumes(
    migrated_url: str, receiver: Receiver
) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        await vigil.store.add_channel({"name": "ops", "url": receiver.url()}, now=clock())
        snooze = await vigil.snooze(
            LATENCY, duration=timedelta(minutes=10), reason="deploying", by="ana"
        )
        [started] = await logged(vigil, EventKind.SNOOZE_STARTED)
        assert (started.by, started.data["reason"]) == ("ana", "deploying")

        assert await kinds_of(vigil, clock, script, 250, 250, 250, 250) == []
        assert vigil.view.active() == []
        assert await vigil.store.list_notifications() == []
        assert vigil.view.current[LATENCY].value == 250  # readings still recorded

        clock.now = snooze.until  # the snooze is over: the rule still breaches
        assert await kinds_of(vigil, clock, script, 250) == [EventKind.INCIDENT_OPENED]
        [ended] = await logged(vigil, EventKind.SNOOZE_ENDED)
        assert (ended.metric, ended.by, ended.data["expired"]) == (LATENCY, None, True)
        await receiver.wait_for(lambda: len(receiver.hits) == 1)
        assert receiver.hits[0].body["title"] == "[CRITICAL] Gateway Latency: incident opened"

        await kinds_of(vigil, clock, script, 250, 250)
        assert len(await logged(vigil, EventKind.SNOOZE_ENDED)) == 1  # recorded once
        history = await vigil.store.metric_history(
            LATENCY, start=clock() - timedelta(hours=1), end=clock() + timedelta(seconds=1)
        )
        assert sum(point.count for point in history) == 7


async def test_a_snooze_set_and_lifted_by_another_process_applies_next_cycle(
    migrated_url: str,
) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        async with await Store.open(migrated_url) as cli:
            await cli.set_snooze(
                Snooze.for_duration(
                    LATENCY, duration=timedelta(hours=1), reason="noisy", by="bo", now=clock()
                )
            )
            assert await kinds_of(vigil, clock, script, 250, 250, 250) == []
            await cli.end_snooze(LATENCY, by="bo", now=clock())
        assert await kinds_of(vigil, clock, script, 250) == [EventKind.INCIDENT_OPENED]
        [ended] = await logged(vigil, EventKind.SNOOZE_ENDED)
        assert (ended.by, ended.data["expired"]) == ("bo", False)


async def test_a_weekly_window_across_midnight_on_the_night_clocks_go_back(
    migrated_url: str, receiver: Receiver
) -> None:
    # Saturday 23:00 to Sunday 02:00 in Berlin, on 24-25 October 2026, when 03:00 summer time
    # becomes 02:00 winter time. The window ends at the first 02:00 (summer time, 00:00 UTC),
    # not an hour later at the second.
    script, clock = Script(), Clock(datetime(2026, 10, 24, 21, 0, tzinfo=UTC))
    async with make_vigil(migrated_url, script, clock) as vigil:
        await vigil.store.add_channel({"name": "ops", "url": receiver.url()}, now=clock())
        await vigil.add_maintenance(
            MaintenanceWindow.weekly(
                "saturday-night",
                weekdays=["sat"],
                start_time="23:00",
                end_time="02:00",
                timezone="Europe/Berlin",
                reason="backups",
                by="ana",
            )
        )
        assert await kinds_of(vigil, clock, script, 250, 250) == []  # 23:00:30 CEST onwards
        clock.now = datetime(2026, 10, 24, 23, 59, 0, tzinfo=UTC)  # 01:59 CEST
        assert await kinds_of(vigil, clock, script, 250) == []  # 01:59:30 CEST
        assert await vigil.store.list_notifications() == []
        assert receiver.hits == []
        # 02:00:00 CEST: the window is over (the clock will show 02:00 again, in CET)
        assert await kinds_of(vigil, clock, script, 250) == [EventKind.INCIDENT_OPENED]
        [incident] = vigil.view.active()
        assert incident.triggered_at == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
        await receiver.wait_for(lambda: len(receiver.hits) == 1)


async def test_a_window_for_other_rules_silences_only_them_and_removal_resumes(
    migrated_url: str,
) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        start, end = clock() - timedelta(minutes=1), clock() + timedelta(hours=2)
        await vigil.add_maintenance(
            MaintenanceWindow.once("db-move", start=start, end=end, metrics=["memory_usage"])
        )
        await vigil.add_maintenance(MaintenanceWindow.once("everything", start=start, end=end))
        assert await kinds_of(vigil, clock, script, 250, 250) == []
        await vigil.remove_maintenance("everything", by="ana")
        assert await kinds_of(vigil, clock, script, 250) == [EventKind.INCIDENT_OPENED]
        [removed] = await logged(vigil, EventKind.MAINTENANCE_REMOVED)
        assert (removed.by, removed.data["window"]["name"]) == ("ana", "everything")
        # memory_usage is still in its window
        events = await cycle(vigil, clock, {LATENCY: 250, "memory_usage": 900}, script)
        events += await cycle(vigil, clock, {LATENCY: 250, "memory_usage": 900}, script)
        assert events == []
        assert [w.name for w in vigil.silences.active_windows(clock())] == ["db-move"]
