"""At rest the monitor costs the few readings and nothing else: its own samples are written in
batches (``sample_batch`` cycles), a cycle with nothing to write opens no transaction and reads
no event log, and a crash loses at most a batch of its own samples, never an incident, a streak,
an event or a pushed sample.

Driven on SQLite by hand, cycle by cycle, with the runtime's parts wired as ``Vigil`` wires them;
"a crash" is the database as it stands between two cycles (an online copy of the file, with
what its write-ahead log holds), and "the restart" a new monitor on that copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from vigil.core import Evaluator, Event, Rule, Sample
from vigil.core.rules import Kind
from vigil.metrics import Metrics
from vigil.runtime import EventBus, LiveView, Monitor
from vigil.runtime.monitor import STALE_INTERVALS
from vigil.store import Store
from vigil.store.leader import SoleLeadership

from .support import T0, Clock, Script, make_vigil

INTERVAL = 10.0
PROBE = "cycle_probe"  # no rule watches it: its value is the cycle's number
LATENCY = "gateway_latency"  # a default rule: warning 100, critical 200, two breaches to open


@dataclass
class Wired:
    store: Store
    monitor: Monitor
    script: Script
    clock: Clock

    async def cycle(self, number: int, latency: float | None) -> list[Event]:
        self.clock.now = T0 + timedelta(seconds=INTERVAL * number)
        self.script.values = {PROBE: float(number), LATENCY: latency}
        return await self.monitor.cycle()


@contextlib.asynccontextmanager
async def wired(url: str, *, batch: int) -> AsyncIterator[Wired]:
    """The monitor as ``Vigil`` assembles it, on the database's rules, streaks and log."""
    async with await Store.open(url) as store:
        rules = await store.list_rules()
        states = await store.load_states()
        bus = EventBus(store, last_id=await store.last_event_id(), version=store.log_version)
        view = LiveView(rules, [s.incident for s in states.values() if s.incident is not None])
        bus.add_listener(view.apply)
        script, clock = Script(), Clock()
        metrics = Metrics(window=INTERVAL)
        metrics.add_source(script)
        monitor = Monitor(
            store=store,
            metrics=metrics,
            evaluator=Evaluator(rules, states=states, stale_after=STALE_INTERVALS * INTERVAL),
            bus=bus,
            view=view,
            leadership=SoleLeadership(),
            instance="test",
            interval=INTERVAL,
            clock=clock,
            sample_batch=batch,
        )
        try:
            yield Wired(store, monitor, script, clock)
        finally:
            bus.close()


class Statements:
    """What the store sends to the database, and the transactions it commits."""

    def __init__(self, store: Store) -> None:
        self.engine = store._engine.sync_engine
        self.sent: list[str] = []
        self.commits = 0

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sent.append(" ".join(statement.split()))

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def clear(self) -> None:
        self.sent.clear()
        self.commits = 0


async def probes(store: Store) -> list[float]:
    """The probe's stored values (cycle numbers), oldest first."""
    found: list[float] = []
    async for chunk in store.sample_chunks(start=T0, end=T0 + timedelta(days=1), metrics=[PROBE]):
        found += [value for _, _, _, value in chunk]
    return found


async def test_an_idle_monitor_writes_nothing_between_batches(migrated_sqlite_url: str) -> None:
    batch = 5
    async with wired(migrated_sqlite_url, batch=batch) as wire:
        await wire.cycle(0, 42.0)  # the first cycle reads the log once
        with Statements(wire.store) as seen:
            commits_at = []
            for number in range(1, 3 * batch + 1):
                seen.clear()
                assert await wire.cycle(number, 42.0) == []
                if seen.commits:
                    commits_at.append(number)
                    assert seen.commits == 1  # the batch's samples: one transaction
                else:
                    # Nothing written, no event log read: the one query of a quiet cycle (the
                    # newest readings) goes to SQLite's driver directly, past these hooks.
                    assert seen.sent == []
            assert commits_at == [batch - 1, 2 * batch - 1, 3 * batch - 1]
        assert await probes(wire.store) == [float(n) for n in range(3 * batch)]
        assert wire.monitor.status().pending_samples > 0  # the last cycle's, for the next batch


async def test_a_change_writes_the_pending_samples_with_it(migrated_sqlite_url: str) -> None:
    async with wired(migrated_sqlite_url, batch=100) as wire:
        for number in range(3):
            assert await wire.cycle(number, 42.0) == []
        assert await probes(wire.store) == []
        with Statements(wire.store) as seen:
            await wire.cycle(3, 250.0)  # the first breach: a streak to keep
            assert seen.commits == 1
        assert await probes(wire.store) == [0.0, 1.0, 2.0, 3.0]
        [opened] = await wire.cycle(4, 250.0)
        assert opened.incident is not None and opened.incident.metric == LATENCY
        assert await probes(wire.store) == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert wire.monitor.status().pending_samples == 0


async def test_a_clean_stop_writes_what_is_pending(migrated_sqlite_url: str) -> None:
    script, clock = Script(), Clock()
    async with make_vigil(migrated_sqlite_url, script, clock) as vigil:
        # The tests' long interval writes every cycle (10 seconds' worth at most are held):
        # hold ten, as at a 1 s interval.
        vigil.monitor.sample_batch = 10
        for number in range(1, 4):
            clock.advance(INTERVAL)
            script.values = {PROBE: float(number)}
            await vigil.monitor.cycle()
        assert vigil.monitor.status().pending_samples > 0
    async with await Store.open(migrated_sqlite_url) as store:
        assert await probes(store) == [1.0, 2.0, 3.0]  # the start's cycle had no probe


# -- a crash at any cycle ------------------------------------------------------------------

LATENCIES = st.sampled_from([None, 42.0, 150.0, 250.0])


@contextlib.contextmanager
def copy_of(template: Path) -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vigil.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}", Path(folder)


def crash_image(database: Path, into: Path) -> str:
    """The database as a process killed right now would leave it: every committed
    transaction (the write-ahead log's too), nothing else."""
    with (
        contextlib.closing(sqlite3.connect(database)) as source,
        contextlib.closing(sqlite3.connect(into)) as copy,
    ):
        source.backup(copy)
    return f"sqlite+aiosqlite:///{into}"


def essentials(events: list[Event]) -> list[tuple[Any, ...]]:
    """What an event says, without the ids each run makes up."""
    return [
        (
            e.kind,
            e.at,
            None
            if e.incident is None
            else (
                e.incident.rule,
                e.incident.severity,
                e.incident.status,
                e.incident.triggered_at,
                e.incident.resolved_at,
                e.incident.peak_value,
                e.incident.last_value,
            ),
        )
        for e in events
    ]


async def states_of(store: Store) -> dict[str, tuple[Any, ...]]:
    return {
        key: (
            s.breach_streak,
            s.normal_streak,
            s.critical_streak,
            s.flap_history,
            s.flapping,
            None if s.incident is None else (s.incident.severity, s.incident.triggered_at),
        )
        for key, s in (await store.load_states()).items()
    }


async def crash_and_restart(
    url: str, folder: Path, latencies: list[float | None], crash: int, batch: int
) -> None:
    pushed = Sample("pusher", "queue_depth", T0, 7.0)
    async with wired(url, batch=batch) as running:
        await running.store.add_samples([pushed])  # acknowledged to a pusher
        for number in range(crash):
            await running.cycle(number, latencies[number])
        image = crash_image(Path(url.removeprefix("sqlite+aiosqlite:///")), folder / "crash.db")
        # The uninterrupted run goes on.
        expected = []
        for number in range(crash, len(latencies)):
            expected += await running.cycle(number, latencies[number])
        expected_states = await states_of(running.store)
    async with await Store.open(image) as store:
        stored = await probes(store)
        chunks = [c async for c in store.sample_chunks(start=T0, end=T0 + timedelta(days=1))]
    # The monitor's own samples: every cycle but at most the last batch's, in order, once.
    assert stored == [float(n) for n in range(len(stored))]
    assert crash - batch <= len(stored) <= crash
    # A pushed sample is never held back.
    assert any(row[1:] == ("queue_depth", "pusher", 7.0) for chunk in chunks for row in chunk)
    async with wired(image, batch=batch) as restarted:
        got = []
        for number in range(crash, len(latencies)):
            got += await restarted.cycle(number, latencies[number])
        # Incidents, events and streaks exactly as if the monitor had never stopped.
        assert essentials(got) == essentials(expected)
        assert await states_of(restarted.store) == expected_states


@pytest.mark.untraced
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    latencies=st.lists(LATENCIES, min_size=2, max_size=12),
    batch=st.integers(1, 4),
    data=st.data(),
)
def test_a_crash_at_any_cycle_loses_at_most_a_batch_of_own_samples(
    sqlite_template: Path, latencies: list[float | None], batch: int, data: st.DataObject
) -> None:
    crash = data.draw(st.integers(1, len(latencies) - 1), label="crash after cycles")
    with copy_of(sqlite_template) as (url, folder):
        asyncio.run(crash_and_restart(url, folder, latencies, crash, batch))


async def test_a_new_learning_rule_learns_from_every_reading_so_far(
    migrated_sqlite_url: str,
) -> None:
    """A learning rule reads the stored history before its first evaluation: the monitor's
    pending readings are written first, so none of them is missing from what it learns."""
    script, clock = Script(), Clock()
    async with make_vigil(migrated_sqlite_url, script, clock) as vigil:
        vigil.monitor.sample_batch = 10  # as at a 1 s interval (see above)
        for number in range(1, 4):
            clock.advance(INTERVAL)
            script.values = {PROBE: float(number)}
            await vigil.monitor.cycle()
        assert await probes(vigil.store) == []  # batched: nothing written yet
        learner = vigil.monitor.learner
        assert learner is not None
        seen: list[list[float]] = []
        learn = learner.catch_up

        async def watching(evaluator: Evaluator, now: datetime) -> int:
            seen.append(await probes(vigil.store))  # what the learner is about to read
            return await learn(evaluator, now)

        learner.catch_up = watching  # type: ignore[method-assign]
        rule = Rule(name="probe_anomaly", kind=Kind.ANOMALY, metric=PROBE, min_history=2)
        await vigil.add_rule(rule, by="test")
        clock.advance(INTERVAL)
        script.values = {PROBE: 4.0}
        await vigil.monitor.cycle()
        # Every earlier reading is stored (this cycle's own, at ``now``, too: it is not
        # history yet for the learner, which reads what came before ``now``).
        [stored] = seen
        assert stored[:3] == [1.0, 2.0, 3.0]
