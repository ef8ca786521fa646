"""The cycle writes only what changed, and what it writes is enough to resume exactly.

Driven the way the monitor drives the store (``Evaluator.evaluate_series`` then
``Store.commit_cycle``) on SQLite: after every cycle the database resumes the evaluator's exact
states, so a monitor restarted at any cycle continues as if it had never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from vigil.core import Evaluator, Event, EventKind, Incident, Rule, Sample
from vigil.core.evaluation import IDLE, RuleState, split_key
from vigil.core.rules import NoData, SplitBy
from vigil.store import Store

T0 = datetime(2026, 12, 1, tzinfo=UTC)
STEP = timedelta(seconds=10)
RULES = [
    Rule(name="plain", metric="a", warning=100, critical=200, recovery=80),
    Rule(name="split", metric="b", warning=100, split_by=SplitBy.INSTANCE, recoveries_required=2),
    Rule(name="gone", metric="c", critical=5, breaches_required=1, no_data=NoData.ALERTING),
]
NAMES = {rule.name for rule in RULES}
INSTANCES = ("i1", "i2")
VALUES = st.sampled_from([None, 0.0, 50.0, 90.0, 150.0, 160.0, 250.0])
CYCLE = st.fixed_dictionaries({(m, i): VALUES for m in ("a", "b", "c") for i in INSTANCES})


def ids() -> Callable[[], uuid.UUID]:
    counter = iter(range(1, 1_000_000))
    return lambda: uuid.UUID(int=next(counter))


def readings(cycle: dict[tuple[str, str], float | None], now: datetime) -> dict[str, Any]:
    found: dict[str, dict[str, tuple[float, datetime]]] = {}
    for (metric, instance), value in cycle.items():
        if value is not None:
            found.setdefault(metric, {})[instance] = (value, now)
    return found


def kept(states: dict[str, RuleState]) -> dict[str, RuleState]:
    return {k: s for k, s in states.items() if s != IDLE and split_key(k)[0] in NAMES}


def summary(events: list[Event]) -> list[tuple[EventKind, Incident | None]]:
    return [(e.kind, e.incident) for e in events]


@contextlib.contextmanager
def copy_of(template: Path) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vigil.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"


async def run(url: str, cycles: list[dict[tuple[str, str], float | None]], restart: int) -> None:
    # The uninterrupted run: the evaluator alone, never stopped.
    alone = Evaluator(RULES, new_id=ids())
    expected: list[tuple[EventKind, Incident | None]] = []
    got: list[tuple[EventKind, Incident | None]] = []
    new_id = ids()
    async with await Store.open(url) as store:
        await store.apply_rules(RULES, by="test", now=T0)
        monitor = Evaluator(RULES, new_id=new_id)
        now = T0
        for number, cycle in enumerate(cycles):
            now += STEP
            if number == restart:  # a new monitor on the same database
                states = {
                    k: s for k, s in (await store.load_states()).items() if split_key(k)[0] in NAMES
                }
                monitor = Evaluator(RULES, states=states, new_id=new_id)
            seen = readings(cycle, now)
            expected += summary(alone.evaluate_series(seen, now=now).events)
            result = monitor.evaluate_series(seen, now=now)
            samples = [Sample(i, m, now, v) for (m, i), v in cycle.items() if v is not None]
            await store.commit_cycle(samples=samples, result=result, now=now)
            got += summary(result.events)
            # What the database would resume is exactly where the monitor stands.
            assert kept(await store.load_states()) == kept(monitor.states())
        assert got == expected
        assert kept(monitor.states()) == kept(alone.states())
        # The rows hold what the uninterrupted run holds: its open incidents as they are now.
        stored = (await store.incident_history(page_size=200)).items
        assert {i.id: i for i in stored if i.is_open} == {i.id: i for i in alone.open_incidents()}
        opened = {incident.id for _, incident in expected if incident is not None}
        assert {i.id for i in stored} == opened


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cycles=st.lists(CYCLE, min_size=1, max_size=10), data=st.data())
def test_a_restart_at_any_cycle_continues_as_if_uninterrupted(
    sqlite_template: Path, cycles: list[dict[tuple[str, str], float | None]], data: st.DataObject
) -> None:
    restart = data.draw(st.integers(0, len(cycles)), label="restart before cycle")
    with copy_of(sqlite_template) as url:
        asyncio.run(run(url, cycles, restart))


async def test_a_cycle_writes_only_what_changed(migrated_url: str) -> None:
    rule = Rule(name="plain", metric="a", warning=100, critical=1000, recovery=80)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split()[0].upper() + " " + statement)

    async with await Store.open(migrated_url) as store:
        await store.apply_rules([rule], by="test", now=T0)
        monitor = Evaluator([rule], new_id=ids())
        event.listen(store._engine.sync_engine, "before_cursor_execute", record)

        async def cycle(value: float, at: datetime, *, sample: bool = True) -> None:
            statements.clear()
            result = monitor.evaluate_series({"a": {"i1": (value, at)}}, now=at)
            samples = [Sample("i1", "a", at, value)] if sample else []
            await store.commit_cycle(samples=samples, result=result, now=at)

        await cycle(150, T0)
        await cycle(150, T0 + STEP)  # opens the incident
        [incident] = monitor.open_incidents()
        # Same value: only the breach streak moves; the incident row is not written.
        await cycle(150, T0 + 2 * STEP)
        assert not [s for s in statements if "UPDATE incidents" in s]
        assert [s for s in statements if "rule_states" in s]
        # A new value: the incident is written (its last value), the streak row too.
        await cycle(170, T0 + 3 * STEP)
        assert [s for s in statements if "UPDATE incidents" in s]
        assert (await store.get_incident(incident.id)).last_value == 170
        # Into the hysteresis band: the breach streak ends, the last value changes.
        await cycle(90, T0 + 4 * STEP)
        assert (await store.get_incident(incident.id)).last_value == 90
        # Still in the band at the same value: nothing changed but the sample.
        await cycle(90, T0 + 5 * STEP)
        assert not [s for s in statements if "UPDATE" in s or "rule_states" in s]
        # No data (the rule keeps its state) and no samples: no statement, no transaction.
        result = monitor.evaluate_series({}, now=T0 + 6 * STEP)
        statements.clear()
        assert await store.commit_cycle(samples=[], result=result, now=T0 + 6 * STEP) == []
        assert statements == []
        event.remove(store._engine.sync_engine, "before_cursor_execute", record)
