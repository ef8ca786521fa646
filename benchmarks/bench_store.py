"""Storage benchmark: Vigil's queries against the plainest SQL for the same answer.

Builds 1,000,000 incidents over a year and 10 rules' samples for 30 days (every 30 s) in
SQLite and in PostgreSQL, then times each dashboard query through ``Store`` and as hand-written
SQL on the same data and engine. Prints medians and ratios. Targets (issue 4):

- every query within 1.5x its plain-SQL baseline (the cost of Vigil's layer);
- the 30-day frequency at most 0.2x a plain GROUP BY over ``incidents``;
- a deep page through the keyset cursor within 2x the first page.

    python benchmarks/bench_store.py [--incidents N] [--sqlite-only]

PostgreSQL: VIGIL_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) must
allow CREATE DATABASE; a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
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
from vigil.store import Cursor, Store
from vigil.store.engine import create_engine

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
SAMPLE_DAYS = 30
SAMPLE_STEP = timedelta(seconds=30)
PAGE_SIZE = 50
DEEP_PAGE = 500
METRICS = [rule.metric for rule in DEFAULT_RULES]
POSTGRES_ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

INCIDENT_COLUMNS = (
    "id",
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
    "notes",
    "resolved_by",
    "rule",  # since 0003 (NOT NULL): the default rules are named after their metric
)


# -- data ---------------------------------------------------------------------------------------


def incident_rows(count: int) -> list[tuple[Any, ...]]:
    """``count`` incidents spread over the year before NOW; the newest of each metric is
    still open (at most one open per rule), the rest resolved, mostly automatically."""
    rng = random.Random(4)
    step = YEAR / count
    start = NOW - YEAR
    rows = []
    for n in range(count):
        metric = METRICS[n % len(METRICS)]
        triggered = start + step * n + timedelta(seconds=rng.random())
        roll = rng.random()
        severity = "critical" if roll < 0.3 else ("info" if roll > 0.95 else "warning")
        is_open = n >= count - len(METRICS)
        manual = rng.random() < 0.2
        resolved = None if is_open else triggered + timedelta(minutes=rng.randint(1, 90))
        value = 100.0 + rng.random() * 200
        rows.append(
            (
                uuid.UUID(int=rng.getrandbits(128), version=4),
                metric,
                severity,
                ("acknowledged" if n % 2 else "active") if is_open else "resolved",
                triggered,
                resolved,
                None if is_open else ("manual" if manual else "auto"),
                200.0 if severity == "critical" else 100.0,
                value,
                value * 1.2,
                value * 0.5,
                f"{metric} exceeded {severity} threshold: {value:.2f}",
                None,
                None,
                None,
                "alice" if manual and not is_open else None,
                metric,
            )
        )
    return rows


def sample_rows() -> list[tuple[str, str, datetime, float]]:
    rng = random.Random(7)
    steps = int(timedelta(days=SAMPLE_DAYS) / SAMPLE_STEP)
    start = NOW - timedelta(days=SAMPLE_DAYS)
    return [
        ("bot-1", metric, start + SAMPLE_STEP * n, rng.random() * 150)
        for n in range(steps)
        for metric in METRICS
    ]


def _sqlite_time(value: datetime | None) -> str | None:
    # The text UTCDateTime writes on SQLite: naive UTC, fixed width.
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# What the monitor keeps in step cycle by cycle, counted once for incidents written in bulk.
COUNT_DAYS = (
    "INSERT INTO incident_daily_counts (day, severity, count) "
    "SELECT {day}, severity, count(*) FROM incidents GROUP BY {day}, severity"
)


def build_sqlite(path: Path, incidents: list[tuple[Any, ...]], samples: list[Any]) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        converted = (
            (row[0].hex, *row[1:4], _sqlite_time(row[4]), _sqlite_time(row[5]), *row[6:])
            for row in incidents
        )
        marks = ", ".join("?" * len(INCIDENT_COLUMNS))
        connection.executemany(
            f"INSERT INTO incidents ({', '.join(INCIDENT_COLUMNS)}) VALUES ({marks})", converted
        )
        connection.executemany(
            "INSERT INTO samples (instance, metric, time, value) VALUES (?, ?, ?, ?)",
            ((i, m, _sqlite_time(t), v) for i, m, t, v in samples),
        )
        connection.execute(COUNT_DAYS.format(day="date(triggered_at)"))
        connection.commit()
        connection.execute("ANALYZE")
        connection.commit()
    finally:
        connection.close()


async def build_postgres(url: str, incidents: list[tuple[Any, ...]], samples: list[Any]) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table(
            "incidents", records=incidents, columns=list(INCIDENT_COLUMNS)
        )
        await connection.copy_records_to_table(
            "samples", records=samples, columns=["instance", "metric", "time", "value"]
        )
        await connection.execute(COUNT_DAYS.format(day="(triggered_at AT TIME ZONE 'UTC')::date"))
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


# -- timing -------------------------------------------------------------------------------------


async def paired_ms(
    vigil: Callable[[], Awaitable[object]],
    baseline: Callable[[], Awaitable[object]],
    *,
    repeat: int,
) -> tuple[float, float]:
    """The median times of ``vigil`` and of ``baseline`` in ms, called in turn after three
    calls of each to warm up: a slow moment of the shared machine weighs on both alike, not
    on one side of the ratio."""
    calls = (vigil, baseline)
    for _ in range(3):
        for call in calls:
            await call()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for call, found in zip(calls, times, strict=True):
            began = time.perf_counter()
            await call()
            found.append((time.perf_counter() - began) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


@dataclass
class Line:
    name: str
    vigil_ms: float
    base_ms: float
    baseline: str
    target: float

    @property
    def ratio(self) -> float:
        return self.vigil_ms / self.base_ms

    def render(self) -> str:
        verdict = "ok" if self.ratio <= self.target else "MISSED"
        return (
            f"  {self.name:<34} {self.vigil_ms:>9.2f} {self.base_ms:>9.2f} "
            f"{self.ratio:>7.2f}x  <= {self.target:<4}x vs {self.baseline:<26} {verdict}"
        )


async def measure(store: Store, url: str, *, repeat: int) -> list[Line]:
    engine = create_engine(url)  # the baselines' own: the same database, no Vigil in between
    try:
        return await _measure(store, engine, repeat=repeat)
    finally:
        await engine.dispose()


async def _measure(store: Store, engine: AsyncEngine, *, repeat: int) -> list[Line]:
    sqlite = engine.dialect.name == "sqlite"
    p = "?" if sqlite else "$"

    def mark(n: int) -> str:
        return "?" if sqlite else f"${n}"

    def t(value: datetime) -> Any:
        return _sqlite_time(value) if sqlite else value

    async def plain(*statements: tuple[str, tuple[Any, ...]]) -> None:
        async with engine.connect() as connection:
            for sql, params in statements:
                (await connection.exec_driver_sql(sql, params)).fetchall()

    del p
    count_resolved = ("SELECT count(*) FROM incidents WHERE status = 'resolved'", ())
    page_sql = (
        "SELECT * FROM incidents WHERE status = 'resolved' "
        f"ORDER BY triggered_at DESC, id DESC LIMIT {PAGE_SIZE + 1} OFFSET {{offset}}"
    )
    lines = []

    async def vigil_page(page: int) -> None:
        await store.incident_history(status="resolved", page=page, page_size=PAGE_SIZE)

    lines.append(
        Line(
            "history page 1 (status=resolved)",
            *await paired_ms(
                lambda: vigil_page(1),
                lambda: plain(count_resolved, (page_sql.format(offset=0), ())),
                repeat=repeat,
            ),
            "plain count + page SQL",
            1.5,
        )
    )
    offset = (DEEP_PAGE - 1) * PAGE_SIZE
    lines.append(
        Line(
            f"history page {DEEP_PAGE} (OFFSET)",
            *await paired_ms(
                lambda: vigil_page(DEEP_PAGE),
                lambda: plain(count_resolved, (page_sql.format(offset=offset), ())),
                repeat=repeat,
            ),
            "plain count + OFFSET SQL",
            1.5,
        )
    )
    before = await store.incident_history(
        status="resolved", page=DEEP_PAGE - 1, page_size=PAGE_SIZE
    )
    assert before.next_cursor is not None
    cursor = Cursor.decode(before.next_cursor)

    async def vigil_keyset() -> None:
        await store.incident_history(
            status="resolved", page=DEEP_PAGE, page_size=PAGE_SIZE, cursor=before.next_cursor
        )

    keyset_id: Any = cursor.id.hex if sqlite else cursor.id
    keyset_sql = (
        "SELECT * FROM incidents WHERE status = 'resolved' "
        f"AND (triggered_at, id) < ({mark(1)}, {mark(2)}) "
        f"ORDER BY triggered_at DESC, id DESC LIMIT {PAGE_SIZE + 1}"
    )
    lines.append(
        Line(
            f"history page {DEEP_PAGE} (cursor)",
            *await paired_ms(
                vigil_keyset,
                lambda: plain(count_resolved, (keyset_sql, (t(cursor.triggered_at), keyset_id))),
                repeat=repeat,
            ),
            "plain count + keyset SQL",
            1.5,
        )
    )
    lines.append(
        Line(
            f"page {DEEP_PAGE} by cursor vs page 1",
            *await paired_ms(vigil_keyset, lambda: vigil_page(1), repeat=repeat),
            "Vigil's page 1",
            2.0,
        )
    )

    since = (NOW - timedelta(days=29)).date()

    async def frequency() -> None:
        await store.frequency(days=30, now=NOW)

    day = "date(triggered_at)" if sqlite else "(triggered_at AT TIME ZONE 'UTC')::date"
    group_by_sql = (
        f"SELECT {day} AS day, severity, count(*) FROM incidents "
        f"WHERE triggered_at >= {mark(1)} GROUP BY {day}, severity"
    )
    since_time = datetime(since.year, since.month, since.day, tzinfo=UTC)
    lines.append(
        Line(
            "frequency 30 days",
            *await paired_ms(
                frequency,
                lambda: plain((group_by_sql, (t(since_time),))),
                repeat=max(5, repeat // 3),
            ),
            "plain GROUP BY incidents",
            0.2,
        )
    )
    counts_sql = (
        "SELECT day, severity, count FROM incident_daily_counts "
        f"WHERE day >= {mark(1)} AND day <= {mark(2)}"
    )
    day_params = (since.isoformat(), NOW.date().isoformat()) if sqlite else (since, NOW.date())
    lines.append(
        Line(
            "frequency 30 days (layer cost)",
            *await paired_ms(frequency, lambda: plain((counts_sql, day_params)), repeat=repeat),
            "plain SQL on daily counts",
            1.5,
        )
    )

    active_sql = (
        "SELECT * FROM incidents WHERE status != 'resolved' ORDER BY CASE severity "
        "WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END DESC, "
        "triggered_at DESC, id DESC"
    )
    lines.append(
        Line(
            "active list",
            *await paired_ms(
                store.active_incidents, lambda: plain((active_sql, ())), repeat=repeat
            ),
            "plain SQL",
            1.5,
        )
    )

    day_start = NOW - timedelta(days=1)
    width = timedelta(days=1).total_seconds() / 500
    if sqlite:
        bucket = (
            "CAST((CAST(strftime('%s', time) AS INTEGER) + CAST(substr(time, 20) AS REAL) - ?)"
            f" / {width} AS INTEGER)"
        )
    else:
        bucket = f"floor((extract(epoch from time) - $1) / {width})::bigint"
    history_sql = (
        f"SELECT {bucket} AS b, avg(value), min(value), max(value), count(*) FROM samples "
        f"WHERE metric = 'gateway_latency' AND time >= {mark(2)} AND time < {mark(3)} "
        "GROUP BY b ORDER BY b"
    )
    lines.append(
        Line(
            "metric history 24 h -> 500 points",
            *await paired_ms(
                lambda: store.metric_history(
                    "gateway_latency", start=day_start, end=NOW, max_points=500
                ),
                lambda: plain((history_sql, (day_start.timestamp(), t(day_start), t(NOW)))),
                repeat=repeat,
            ),
            "plain bucketed GROUP BY",
            1.5,
        )
    )
    return lines


# -- the two databases --------------------------------------------------------------------------


async def run_sqlite(incidents: list[Any], samples: list[Any], *, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        store = await Store.open(url)
        await store.close()
        began = time.perf_counter()
        build_sqlite(path, incidents, samples)
        store = await Store.open(url)
        try:
            report("sqlite", time.perf_counter() - began, await measure(store, url, repeat=repeat))
        finally:
            await store.close()


async def run_postgres(incidents: list[Any], samples: list[Any], *, repeat: int) -> None:
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
        store = await Store.open(vigil_url, upgrade=True)
        try:
            began = time.perf_counter()
            await build_postgres(url, incidents, samples)
            lines = await measure(store, vigil_url, repeat=repeat)
            report("postgresql", time.perf_counter() - began, lines)
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def report(database: str, build_s: float, lines: list[Line]) -> None:
    print(f"== {database}: data built in {build_s:.0f} s; medians in ms")
    print(f"  {'query':<34} {'vigil':>9} {'baseline':>9} {'ratio':>8}")
    for line in lines:
        print(line.render())
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    incidents = incident_rows(args.incidents)
    samples = sample_rows()
    print(f"{len(incidents):,} incidents over a year, {len(samples):,} samples over 30 days")
    await run_sqlite(incidents, samples, repeat=args.repeat)
    if not args.sqlite_only:
        await run_postgres(incidents, samples, repeat=args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
