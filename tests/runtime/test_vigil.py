"""The embedded monitor on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from vigil.core import Event, EventKind, Severity, Status, ValidationError
from vigil.metrics import Metrics
from vigil.runtime import MonitorRunningError, NotStartedError, Vigil
from vigil.store import Store

from .support import (
    DEADLINE,
    T0,
    Broken,
    Clock,
    Script,
    Started,
    collect,
    cycle,
    make_vigil,
    settings,
    wait_until,
)

LATENCY = "gateway_latency"


async def test_breach_opens_escalates_and_auto_resolves(migrated_url: str) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        stream = vigil.subscribe()
        kinds = []
        for value in [150, 150, 250, 250, 50, 50, 50]:
            kinds += [e.kind for e in await cycle(vigil, clock, {LATENCY: value}, script)]
        assert kinds == [
            EventKind.INCIDENT_OPENED,
            EventKind.INCIDENT_ESCALATED,
            EventKind.INCIDENT_RESOLVED,
        ]
        received = await collect(stream, 3)
        assert [e.kind for e in received] == kinds
        assert [e.id for e in received] == sorted(e.id or 0 for e in received)
        incident_id = received[0].incident.id  # type: ignore[union-attr]
        stored = await vigil.store.get_incident(incident_id)
        assert (stored.status, stored.severity, stored.peak_value) == (
            Status.RESOLVED,
            Severity.CRITICAL,
            250,
        )
        assert vigil.view.active() == []
        history = await vigil.store.metric_history(
            LATENCY, start=T0, end=clock.now + timedelta(seconds=1), max_points=100
        )
        assert sum(point.count for point in history) == 7


async def test_the_live_view_follows_cycles_and_actions(migrated_url: str) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        for value in [150, 150]:
            await cycle(vigil, clock, {LATENCY: value}, script)
        [incident] = vigil.view.active()
        assert vigil.view.current[LATENCY].value == 150
        assert vigil.view.summary()[Severity.WARNING] == 1
        acked = await vigil.acknowledge(incident.id, by="ana", notes="looking")
        assert vigil.view.active() == [acked]
        # acknowledged, it still escalates and auto-resolves; the acknowledgement survives
        for value in [250, 250]:
            await cycle(vigil, clock, {LATENCY: value}, script)
        [escalated] = vigil.view.active()
        assert (escalated.severity, escalated.acknowledged_by) == (Severity.CRITICAL, "ana")
        await vigil.resolve(incident.id, by="ana")
        assert vigil.view.active() == []
        # a manual resolution restarts the streak: one more breach opens nothing
        assert await cycle(vigil, clock, {LATENCY: 250}, script) == []


async def test_a_restart_mid_streak_continues_the_streak(migrated_url: str) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        assert await cycle(vigil, clock, {LATENCY: 150}, script) == []
    script.values = {}  # the new instance's first cycle reads no data
    async with make_vigil(migrated_url, script, clock) as vigil:
        events = await cycle(vigil, clock, {LATENCY: 150}, script)
        assert [e.kind for e in events] == [EventKind.INCIDENT_OPENED]


async def test_a_restart_mid_incident_neither_duplicates_nor_forgets(migrated_url: str) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        for value in [150, 150, 50]:
            await cycle(vigil, clock, {LATENCY: value}, script)
        [before] = vigil.view.active()
    script.values = {}
    async with make_vigil(migrated_url, script, clock) as vigil:
        assert vigil.view.active() == [before]
        assert await cycle(vigil, clock, {LATENCY: 150}, script) == []  # no second incident
        kinds = []
        for value in [50, 50, 50]:
            kinds += [e.kind for e in await cycle(vigil, clock, {LATENCY: value}, script)]
        assert kinds == [EventKind.INCIDENT_RESOLVED]
        page = await vigil.store.incident_history(metric=LATENCY)
        assert page.total == 1


async def test_a_failing_source_costs_only_its_own_metrics(migrated_url: str) -> None:
    script, clock = Script(), Clock()
    vigil = Vigil(
        settings(migrated_url), sources=[script, Broken()], process_metrics=False, clock=clock
    )
    async with Started(vigil):
        events = []
        for value in [150, 150]:
            events += await cycle(vigil, clock, {LATENCY: value}, script)
        assert [e.kind for e in events] == [EventKind.INCIDENT_OPENED]
        assert vigil.monitor.status().database_ok


async def test_a_second_monitor_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    script, clock = Script(), Clock()
    async with make_vigil(url, script, clock):
        with pytest.raises(MonitorRunningError, match="one monitor per database file"):
            await make_vigil(url, script, clock).vigil.start()
        # the CLI's kind of work still goes on beside the running monitor
        async with await Store.open(url) as store:
            await store.update_rule(LATENCY, {"warning": 120}, by="cli", now=clock())


async def test_a_rule_changed_by_another_process_applies_to_the_next_cycle(
    migrated_url: str,
) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        async with await Store.open(migrated_url) as other:
            await other.update_rule(
                LATENCY, {"warning": 300, "critical": 400}, by="cli", now=clock()
            )
        stream = vigil.subscribe(after=0)
        changed = [e async for e in _until(stream, EventKind.RULE_CHANGED)]
        assert changed[-1].by == "cli"
        for value in [250, 250]:
            assert await cycle(vigil, clock, {LATENCY: value}, script) == []
        assert vigil.view.rules[LATENCY].warning == 300


async def test_the_real_loop_opens_an_incident_on_its_own(migrated_url: str) -> None:
    script = Script()
    script.values = {LATENCY: 250.0}
    vigil = Vigil(settings(migrated_url, interval=1), sources=[script], process_metrics=False)
    async with vigil:
        stream = vigil.subscribe(after=0)
        opened = [e async for e in _until(stream, EventKind.INCIDENT_OPENED)]
        assert opened[-1].metric == LATENCY
        health = vigil.health()
        assert health.ok and health.monitor.leader and health.monitor.cycles >= 2
        assert any(task.name == "vigil.monitor" for task in health.tasks)
        assert health.last_event_id == opened[-1].id
    assert not vigil.running
    with pytest.raises(NotStartedError):
        vigil.health()


async def _until(stream: AsyncIterator[Event], kind: EventKind) -> AsyncIterator[Event]:
    """The stream's events up to and including the first of ``kind``."""

    async def run() -> list[Event]:
        seen = []
        async for event in stream:
            seen.append(event)
            if event.kind is kind:
                break
        return seen

    for event in await asyncio.wait_for(run(), DEADLINE):
        yield event


class Slow:
    """A source slower than the interval: each cycle overruns."""

    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reads = 0
        self.inside = asyncio.Event()

    async def read(self) -> dict[str, float | None]:
        self.reads += 1
        self.inside.set()
        await asyncio.sleep(self.seconds)  # the system under test is slow, not the test
        return {"gateway_latency": 20.0}


async def test_an_overrunning_cycle_is_reported_late_never_overlapped(migrated_url: str) -> None:
    slow = Slow(1.6)
    vigil = Vigil(settings(migrated_url, interval=1), sources=[slow], process_metrics=False)
    async with vigil:
        await wait_until(lambda: vigil.monitor.status().cycles >= 2)
        status = vigil.monitor.status()
        assert status.cycles_late >= 1  # every cycle covered at least one tick
        assert slow.reads in (status.cycles, status.cycles + 1)  # one read per cycle, in turn


async def test_shutdown_lets_the_running_cycle_commit(migrated_url: str) -> None:
    slow = Slow(0.5)
    vigil = Vigil(settings(migrated_url, interval=3600), sources=[slow], process_metrics=False)
    await vigil.start()
    await asyncio.wait_for(slow.inside.wait(), DEADLINE)  # the first cycle is reading now
    await vigil.aclose()
    assert not vigil.running
    async with await Store.open(migrated_url) as store:
        values = await store.latest_values(since=T0.replace(year=2000))
    assert values["gateway_latency"] == [20.0]  # the interrupted cycle still stored its sample


async def test_retention_deletes_what_the_settings_no_longer_keep(migrated_url: str) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_url, script, clock) as vigil:
        for value in [150, 150, 50, 50, 50]:
            await cycle(vigil, clock, {LATENCY: value}, script)
        assert (await vigil.store.incident_history()).total == 1
        clock.advance(91 * 86_400)  # past both retentions (90 and 30 days)
        report = await vigil.cleanup()
        assert report.incidents == 1 and report.samples >= 5
        assert (await vigil.store.incident_history()).total == 0


def test_a_metrics_hub_must_span_the_interval() -> None:
    """Each cycle reads one window of the hub's windowed sources: a hub whose window is not
    the interval would judge a different stretch of time than the cycle covers."""
    with pytest.raises(ValidationError) as caught:
        Vigil(settings("sqlite+aiosqlite://", interval=30), metrics=Metrics(window=60))
    assert caught.value.field == "metrics"
    assert "60 s" in str(caught.value) and "30 s" in str(caught.value)
    hub = Metrics(window=30)
    assert Vigil(settings("sqlite+aiosqlite://", interval=30), metrics=hub).metrics is hub


def test_process_metrics_are_the_process_own_sources() -> None:
    watched = {s.name for s in Vigil(settings("sqlite+aiosqlite://")).metrics.sources}
    assert {"loop_lag", "process", "health"} <= watched
    quiet = Vigil(settings("sqlite+aiosqlite://"), process_metrics=False)
    assert {s.name for s in quiet.metrics.sources} == {"health"}
