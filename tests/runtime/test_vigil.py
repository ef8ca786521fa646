"""Vigil as a host embeds it, on real SQLite and PostgreSQL: starting, stopping, one monitor per
SQLite file, events from other processes, retention. (The monitor's own logic is tested on an
in-memory store: test_monitor.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vigil.core import Event, EventKind, ValidationError
from vigil.metrics import Metrics
from vigil.runtime import MonitorRunningError, NotStartedError, Vigil
from vigil.store import Store

from .support import (
    DEADLINE,
    T0,
    Clock,
    Script,
    cycle,
    make_vigil,
    settings,
    wait_until,
)

LATENCY = "gateway_latency"


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
        # Opening takes two cycles. The event can reach the stream through the log (the
        # watch that follows other processes' events) before the monitor's task is back from
        # its commit to count the cycle that opened it: wait for the count.
        await wait_until(lambda: vigil.health().monitor.cycles >= 2)
        health = vigil.health()
        assert health.ok and health.monitor.leader
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
    """A source that takes its time: the test stops Vigil while it reads."""

    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.inside = asyncio.Event()

    async def read(self) -> dict[str, float | None]:
        self.inside.set()
        await asyncio.sleep(self.seconds)  # the system under test is slow, not the test
        return {"gateway_latency": 20.0}


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
