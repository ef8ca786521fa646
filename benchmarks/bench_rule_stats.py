"""Rule statistics benchmark: a rule's noise read from the kept counters, against the
plainest SQL computing the same figures from the incidents table.

Builds incidents over a year for the 10 default rules (a tenth of them acknowledged, a fifth
resolved by hand, the newest of each rule still open) in SQLite and in PostgreSQL at
revision 0006, upgrades to the head (migration 0010 fills the per-rule daily counters from
them: its time is printed too), then times in the same run, on the same data and engine:

- ``Store.rule_stats`` as ``GET /api/alerts/rules/{name}/stats`` calls it (the open
  incidents from the live view, so the counters are its one query) against one aggregate
  query over the rule's incidents;
- ``Store.noisiest_rules`` as ``GET /api/alerts/rules/stats`` calls it against the same
  query grouped by rule over every incident.

Both answer for 30 days; each pair's figures are checked equal before they are timed.
Target (issue 17): ratio <= 0.1 with 1,000,000 incidents.

    python benchmarks/bench_rule_stats.py [--incidents N] [--sqlite-only]

The run builds the 1,000,000 incidents of the target; VIGIL_BENCH_QUICK=1 (or
``--incidents N``) a smaller history, well under a minute at 100,000, whose ratios are
shown but not judged: the target is set at 1,000,000. PostgreSQL: VIGIL_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test) must allow CREATE DATABASE; a scratch database is
created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from vigil.core.catalogue import DEFAULT_RULES
from vigil.store import RuleStats, Store, migrate
from vigil.store.engine import create_engine

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
DAYS = 30
RULE = "gateway_latency"
TARGET = 0.1
FULL = 1_000_000  # incidents: the target's history
QUICK = 100_000
RULES = [rule.name for rule in DEFAULT_RULES]
BEFORE = "0006"  # the revision before the counters: 0010 fills them from what is stored
POSTGRES_ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
COLUMNS = (
    "id",
    "rule",
    "series",
    "metric",
    "severity",
    "status",
    "triggered_at",
    "resolved_at",
    "resolution",
    "threshold",
    "value",
    "peak_value",
    "last_value",
    "message",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "no_data",
)


# -- data ---------------------------------------------------------------------------------------


def incident_rows(count: int) -> list[tuple[Any, ...]]:
    rng = random.Random(17)
    step = YEAR / count
    start = NOW - YEAR
    rows = []
    for n in range(count):
        rule = RULES[n % len(RULES)]
        triggered = start + step * n + timedelta(seconds=rng.randint(0, 59))
        is_open = n >= count - len(RULES)
        acknowledged = triggered + timedelta(minutes=rng.randint(1, 30)) if n % 10 == 0 else None
        manual = rng.random() < 0.2
        resolved = None if is_open else triggered + timedelta(minutes=rng.randint(31, 180))
        value = 100.0 + rng.random() * 200
        rows.append(
            (
                uuid.UUID(int=rng.getrandbits(128), version=4),
                rule,
                "",
                rule,
                "warning",
                ("acknowledged" if acknowledged else "active") if is_open else "resolved",
                triggered,
                resolved,
                None if is_open else ("manual" if manual else "auto"),
                100.0,
                value,
                value * 1.2,
                value * 0.5,
                f"{rule} exceeded warning threshold: {value:.2f}",
                "alice" if acknowledged else None,
                acknowledged,
                "alice" if manual and not is_open else None,
                False,
            )
        )
    return rows


def _sqlite_time(value: datetime | None) -> str | None:
    # The text UTCDateTime writes on SQLite: naive UTC, fixed width.
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def load_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        times = {COLUMNS.index(c) for c in ("triggered_at", "resolved_at", "acknowledged_at")}
        converted = (
            tuple(
                row[0].hex if i == 0 else _sqlite_time(v) if i in times else v
                for i, v in enumerate(row)
            )
            for row in rows
        )
        marks = ", ".join("?" * len(COLUMNS))
        connection.executemany(
            f"INSERT INTO incidents ({', '.join(COLUMNS)}) VALUES ({marks})", converted
        )
        connection.commit()
    finally:
        connection.close()


async def load_postgres(url: str, rows: list[tuple[Any, ...]]) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table("incidents", records=rows, columns=list(COLUMNS))
    finally:
        await connection.close()


async def analyze(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")
            await connection.commit()
    finally:
        await engine.dispose()


# -- the plainest SQL ---------------------------------------------------------------------------

SQLITE_FIGURES = """
SELECT {key}
  sum(triggered_at >= :start),
  sum(status != 'resolved'),
  sum(max(0.0, julianday(coalesce(resolved_at, :now)) - julianday(max(triggered_at, :start))))
    * 86400.0,
  sum(acknowledged_at >= :start),
  avg(CASE WHEN acknowledged_at >= :start
      THEN (julianday(acknowledged_at) - julianday(triggered_at)) * 86400.0 END),
  sum(resolved_at >= :start AND resolution = 'auto'),
  sum(resolved_at >= :start AND resolution = 'manual'),
  avg(CASE WHEN resolved_at >= :start
      THEN (julianday(resolved_at) - julianday(triggered_at)) * 86400.0 END)
FROM incidents {where}
"""
POSTGRES_FIGURES = """
SELECT {key}
  count(*) FILTER (WHERE triggered_at >= $1),
  count(*) FILTER (WHERE status != 'resolved'),
  sum(greatest(0.0, extract(epoch FROM coalesce(resolved_at, $2) - greatest(triggered_at, $1)))),
  count(*) FILTER (WHERE acknowledged_at >= $1),
  avg(extract(epoch FROM acknowledged_at - triggered_at)) FILTER (WHERE acknowledged_at >= $1),
  count(*) FILTER (WHERE resolved_at >= $1 AND resolution = 'auto'),
  count(*) FILTER (WHERE resolved_at >= $1 AND resolution = 'manual'),
  avg(extract(epoch FROM resolved_at - triggered_at)) FILTER (WHERE resolved_at >= $1)
FROM incidents {where}
"""


def plain_statement(sqlite: bool, *, grouped: bool) -> str:
    if sqlite:
        template = SQLITE_FIGURES
        where = "GROUP BY rule" if grouped else "WHERE rule = :rule"
    else:
        template = POSTGRES_FIGURES
        where = "GROUP BY rule" if grouped else "WHERE rule = $3"
    return template.format(key="rule," if grouped else "", where=where)


def figures(stats: RuleStats) -> tuple[Any, ...]:
    return (
        stats.incidents,
        stats.open_incidents,
        round(stats.seconds_in_incident),
        stats.acknowledged,
        _rounded(stats.mean_seconds_to_acknowledge),
        stats.resolved_auto,
        stats.resolved_manual,
        _rounded(stats.mean_seconds_to_resolve),
    )


def plain_figures(row: Any) -> tuple[Any, ...]:
    opened, still_open, seconds, acks, ack_mean, auto, manual, resolve_mean = row
    return (
        int(opened or 0),
        int(still_open or 0),
        round(float(seconds or 0)),
        int(acks or 0),
        _rounded(ack_mean),
        int(auto or 0),
        int(manual or 0),
        _rounded(resolve_mean),
    )


def _rounded(value: Any) -> float | None:
    return None if value is None or math.isnan(float(value)) else round(float(value), 3)


# -- timing -------------------------------------------------------------------------------------


async def median_ms(call: Callable[[], Awaitable[object]], *, repeat: int) -> float:
    for _ in range(2):
        await call()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


@dataclass
class Line:
    name: str
    vigil_ms: float
    base_ms: float
    baseline: str

    @property
    def ratio(self) -> float:
        return self.vigil_ms / self.base_ms

    def render(self, *, judged: bool) -> str:
        verdict = ("ok" if self.ratio <= TARGET else "MISSED") if judged else f"(at {FULL:,})"
        return (
            f"  {self.name:<28} {self.vigil_ms:>9.3f} {self.base_ms:>10.2f} "
            f"{self.ratio:>8.4f}x  <= {TARGET}x vs {self.baseline:<30} {verdict}"
        )


async def measure(store: Store, url: str, *, repeat: int) -> list[Line]:
    engine = create_engine(url)  # the baseline's own: the same database, no Vigil in between
    try:
        return await _measure(store, engine, repeat=repeat)
    finally:
        await engine.dispose()


async def _measure(store: Store, engine: AsyncEngine, *, repeat: int) -> list[Line]:
    sqlite = engine.dialect.name == "sqlite"
    first = NOW.date() - timedelta(days=DAYS - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    params: Any
    if sqlite:
        params = {"start": _sqlite_time(start), "now": _sqlite_time(NOW)}
    else:
        params = (start, NOW)

    async def plain(*, grouped: bool) -> list[Any]:
        sql = plain_statement(sqlite, grouped=grouped)
        arguments = params
        if not grouped:
            arguments = {**params, "rule": RULE} if sqlite else (*params, RULE)
        async with engine.connect() as connection:
            return list((await connection.exec_driver_sql(sql, arguments)).fetchall())

    # The endpoints take the open incidents from the live view: the counters are their query.
    view = await store.active_incidents()

    async def rule_stats() -> RuleStats:
        return await store.rule_stats(RULE, days=DAYS, now=NOW, open_incidents=view)

    async def noisiest() -> list[RuleStats]:
        return await store.noisiest_rules(days=DAYS, now=NOW, limit=100, open_incidents=view)

    # The same answer first: the counters agree with the incidents they were filled from.
    one = await rule_stats()
    assert one == await store.rule_stats(RULE, days=DAYS, now=NOW)  # and read without the view
    [row] = await plain(grouped=False)
    assert figures(one) == plain_figures(row), (figures(one), plain_figures(row))
    every = {s.rule: figures(s) for s in await noisiest()}
    grouped = {r[0]: plain_figures(r[1:]) for r in await plain(grouped=True)}
    assert every == grouped, "the noisiest rules differ from the plain GROUP BY"

    slow = max(3, repeat // 5)
    return [
        Line(
            f"rule stats ({DAYS} days)",
            await median_ms(rule_stats, repeat=repeat),
            await median_ms(lambda: plain(grouped=False), repeat=slow),
            "plain aggregate over its incidents",
        ),
        Line(
            f"noisiest rules ({DAYS} days)",
            await median_ms(noisiest, repeat=repeat),
            await median_ms(lambda: plain(grouped=True), repeat=slow),
            "the same, GROUP BY rule",
        ),
    ]


# -- the two databases --------------------------------------------------------------------------


async def run_sqlite(rows: list[Any], *, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        await migrate.upgrade(url, BEFORE)
        began = time.perf_counter()
        load_sqlite(path, rows)
        loaded = time.perf_counter()
        await migrate.upgrade(url)
        backfill_s = time.perf_counter() - loaded
        await analyze(url)
        store = await Store.open(url)
        try:
            lines = await measure(store, url, repeat=repeat)
            report("sqlite", loaded - began, backfill_s, lines, judged=len(rows) == FULL)
        finally:
            await store.close()


async def run_postgres(rows: list[Any], *, repeat: int) -> None:
    import asyncpg

    name = f"vigil_bench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    except OSError as exc:
        print(f"== postgresql: skipped, {POSTGRES_ADMIN_URL} unreachable ({exc})")
        return
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_URL.rpartition("/")[0]
        url = f"{base}/{name}"
        vigil_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
        await migrate.upgrade(vigil_url, BEFORE)
        began = time.perf_counter()
        await load_postgres(url, rows)
        loaded = time.perf_counter()
        await migrate.upgrade(vigil_url)
        backfill_s = time.perf_counter() - loaded
        await analyze(vigil_url)
        store = await Store.open(vigil_url)
        try:
            lines = await measure(store, vigil_url, repeat=repeat)
            report("postgresql", loaded - began, backfill_s, lines, judged=len(rows) == FULL)
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def report(
    database: str, load_s: float, backfill_s: float, lines: list[Line], *, judged: bool
) -> None:
    print(
        f"== {database}: incidents loaded in {load_s:.1f} s, migration 0010's backfill "
        f"{backfill_s:.1f} s; medians in ms"
    )
    print(f"  {'query':<28} {'vigil':>9} {'baseline':>10} {'ratio':>9}")
    for line in lines:
        print(line.render(judged=judged))
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--incidents", type=int, help=f"default {FULL:,} (the target's; quick: {QUICK:,})"
    )
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    quick = os.environ.get("VIGIL_BENCH_QUICK", "") not in ("", "0")
    count = args.incidents or (QUICK if quick else FULL)
    rows = incident_rows(count)
    print(f"{len(rows):,} incidents over a year, {len(RULES)} rules")
    await run_sqlite(rows, repeat=args.repeat)
    if not args.sqlite_only:
        await run_postgres(rows, repeat=args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
