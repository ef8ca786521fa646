"""Compacted history: samples older than ``sample_raw_hours`` become minute rollups at cleanup,
exactly once whatever happens, and the charts and replays read them where the samples were.

The store is each of the memory store, SQLite and PostgreSQL where the runtime's port
(``sample_chunks``, ``compact_samples``) is checked; the chart queries and the cleanup are
the database's alone."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from vigil.core.errors import ValidationError
from vigil.core.rollups import Rollup
from vigil.core.samples import Sample
from vigil.store import CleanupReport, Store, models
from vigil.store.records import MetricPoint

from .conftest import T0, AnyStore, raw

NOW = T0 + timedelta(days=3)
OLD = T0  # two days and more before NOW: compacted with the default 24 hours
LATENCY = "gateway_latency"


def old_minutes(minutes: int = 3, per_minute: int = 6) -> list[Sample]:
    """Two instances' samples over a few old minutes, every 10 s, values known in advance."""
    return [
        Sample(instance, LATENCY, OLD + timedelta(seconds=10 * n), float(n + offset))
        for n in range(minutes * per_minute)
        for instance, offset in (("bot-1", 0), ("bot-2", 100))
    ]


async def rows_of(store: AnyStore, **options: Any) -> list[tuple[datetime, str, str, float]]:
    return [
        row async for chunk in store.sample_chunks(start=OLD, end=NOW, **options) for row in chunk
    ]


async def test_old_samples_become_minute_rollups_and_recent_ones_stay(any_store: AnyStore) -> None:
    recent = Sample("bot-1", LATENCY, NOW - timedelta(hours=1), 42.0)
    await any_store.add_samples([*old_minutes(), recent])
    assert await any_store.compact_samples(now=NOW, raw_hours=24, batch_size=7) == 36

    rows = await rows_of(any_store, rollup={LATENCY: Rollup.MAX})
    # One row per minute and instance, at the minute's start, then the raw sample.
    assert rows == [
        (OLD + timedelta(minutes=m), LATENCY, instance, 6.0 * m + 5 + offset)
        for m in range(3)
        for instance, offset in (("bot-1", 0), ("bot-2", 100))
    ] + [(recent.time, LATENCY, "bot-1", 42.0)]
    means = await rows_of(any_store, metrics=[LATENCY])
    assert [value for _, _, _, value in means[:2]] == [2.5, 102.5]  # the mean by default
    lows = await rows_of(any_store, rollup={LATENCY: Rollup.MIN})
    assert [value for _, _, _, value in lows[:2]] == [0.0, 100.0]
    assert await rows_of(any_store, metrics=["error_rate"]) == []


async def test_compacting_twice_counts_nothing_twice(any_store: AnyStore) -> None:
    await any_store.add_samples(old_minutes())
    first = await any_store.compact_samples(now=NOW, raw_hours=24, batch_size=5)
    before = await rows_of(any_store, rollup={LATENCY: Rollup.LAST})
    assert first == 36
    assert await any_store.compact_samples(now=NOW, raw_hours=24, batch_size=5) == 0
    assert await rows_of(any_store, rollup={LATENCY: Rollup.LAST}) == before


async def test_a_late_sample_joins_its_compacted_minute(any_store: AnyStore) -> None:
    await any_store.add_samples(old_minutes(minutes=1, per_minute=3))
    await any_store.compact_samples(now=NOW, raw_hours=24)
    # Pushed late, into the first minute: newer than what it held, and a new low.
    await any_store.add_samples([Sample("bot-1", LATENCY, OLD + timedelta(seconds=50), -1.0)])
    assert await any_store.compact_samples(now=NOW, raw_hours=24) == 1
    [(_, _, _, last), _] = await rows_of(any_store, rollup={LATENCY: Rollup.LAST})
    [(_, _, _, low), _] = await rows_of(any_store, rollup={LATENCY: Rollup.MIN})
    [(_, _, _, mean), _] = await rows_of(any_store)
    assert (last, low, mean) == (-1.0, -1.0, (0.0 + 1.0 + 2.0 - 1.0) / 4)


@pytest.mark.parametrize("hours", [0, -1, 8785])
async def test_the_raw_period_is_checked(any_store: AnyStore, hours: int) -> None:
    with pytest.raises(ValidationError) as caught:
        await any_store.compact_samples(now=NOW, raw_hours=hours)
    assert caught.value.field == "sample_raw_hours"


async def test_a_crash_mid_compaction_loses_and_doubles_nothing(
    store: Store, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = old_minutes()
    await store.add_samples(samples)
    real = Store._add_to_buckets
    calls = 0

    async def crashing(self: Store, connection: Any, buckets: Any) -> None:
        nonlocal calls
        calls += 1
        await real(self, connection, buckets)  # written, then the process dies
        if calls == 2:
            raise RuntimeError("killed mid-transaction")

    monkeypatch.setattr(Store, "_add_to_buckets", crashing)
    with pytest.raises(RuntimeError):
        await store.compact_samples(now=NOW, raw_hours=24, batch_size=10)
    # The first batch is compacted, the second rolled back whole: still raw, not in a bucket.
    assert await _raw_count(migrated_url) == len(samples) - 10
    assert await _rolled_count(migrated_url) == 10

    monkeypatch.setattr(Store, "_add_to_buckets", real)
    assert await store.compact_samples(now=NOW, raw_hours=24, batch_size=10) == len(samples) - 10
    assert (await _raw_count(migrated_url), await _rolled_count(migrated_url)) == (0, 36)
    [point] = await store.metric_history(
        LATENCY, start=OLD, end=OLD + timedelta(minutes=3), max_points=1
    )
    assert point.count == 36
    assert point.mean == pytest.approx(sum(s.value for s in samples) / 36)
    assert (point.min, point.max) == (0.0, 117.0)


async def _raw_count(url: str) -> int:
    async with raw(url) as connection:
        return int(await connection.scalar(select(func.count()).select_from(models.samples)) or 0)


async def _rolled_count(url: str) -> int:
    table = models.sample_rollups
    async with raw(url) as connection:
        return int(await connection.scalar(select(func.sum(table.c["count"]))) or 0)


async def test_charts_read_the_same_history_before_and_after_compaction(store: Store) -> None:
    # A day of minutes across the boundary: the older half compacted, the rest raw.
    samples = [
        Sample(f"bot-{n % 2}", LATENCY, NOW - timedelta(hours=36, seconds=-15 * n), float(n % 97))
        for n in range(4 * 60 * 24)
    ]
    await store.add_samples(samples)
    start, end = NOW - timedelta(hours=36), NOW - timedelta(hours=12)

    async def charts() -> tuple[object, ...]:
        return (
            await store.metric_history(LATENCY, start=start, end=end, max_points=48),
            await store.metric_history(
                LATENCY, start=start, end=end, max_points=48, instance="bot-1"
            ),
            await store.metric_histories(
                [LATENCY, "error_rate"], start=start, end=end, max_points=6
            ),
        )

    before = await charts()
    compacted = await store.compact_samples(now=NOW, raw_hours=24)
    assert compacted == 4 * 60 * 12
    after = await charts()
    assert _rounded(after) == _rounded(before)


def _rounded(value: object) -> object:
    """Figures as a chart shows them: a mean summed in another order differs in its last bits."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    if isinstance(value, MetricPoint):
        return _rounded(dataclasses.astuple(value))
    return value


async def test_cleanup_compacts_and_reports_it(store: Store) -> None:
    expired = Sample("bot-1", LATENCY, NOW - timedelta(days=40), 1.0)
    await store.add_samples([expired, *old_minutes(), Sample("bot-1", LATENCY, NOW, 2.0)])
    settings = {"now": NOW, "incident_retention_days": 90, "sample_retention_days": 30}
    due = await store.expired(**settings)  # type: ignore[arg-type]
    assert (due.samples, due.compacted, due.rollups) == (1, 36, 0)

    progress: list[tuple[str, int]] = []
    report = await store.cleanup(
        **settings,  # type: ignore[arg-type]
        batch_size=20,
        progress=lambda kind, count: progress.append((kind, count)),
    )
    assert report == CleanupReport(samples=1, compacted=36)
    assert [count for kind, count in progress if kind == "compacted"] == [20, 16]
    assert await store.expired(**settings) == CleanupReport()  # type: ignore[arg-type]

    # Thirty days on, the rollups are past the sample retention too.
    later = {**settings, "now": OLD + timedelta(days=31)}
    report = await store.cleanup(**later)  # type: ignore[arg-type]
    # The sample of NOW is now older than a day: compacted in its turn.
    assert (report.rollups, report.samples, report.compacted, report.total) == (6, 0, 1, 6)


@pytest.mark.parametrize("chunk", [1, 2, 5, 1000])
async def test_rollups_and_raw_samples_come_in_time_order_whatever_the_chunk(
    any_store: AnyStore, chunk: int
) -> None:
    await any_store.add_samples(old_minutes(minutes=3))
    await any_store.compact_samples(now=NOW, raw_hours=24)
    # Raw again among the rollups: pushed late, not compacted yet; and one at a minute's start.
    late = [
        Sample("bot-1", LATENCY, OLD + timedelta(seconds=90), 7.0),
        Sample("bot-3", LATENCY, OLD + timedelta(minutes=2), 8.0),
        Sample("bot-1", LATENCY, NOW - timedelta(hours=1), 9.0),
    ]
    await any_store.add_samples(late)
    chunks = [rows async for rows in any_store.sample_chunks(start=OLD, end=NOW, chunk=chunk)]
    assert all(0 < len(rows) <= chunk for rows in chunks)
    rows = [row for rows in chunks for row in rows]
    minute = [
        (OLD + timedelta(minutes=m), LATENCY, i) for m in range(3) for i in ("bot-1", "bot-2")
    ]
    assert [row[:3] for row in rows] == [
        *minute[:4],
        (late[0].time, LATENCY, "bot-1"),
        *minute[4:],
        (late[1].time, LATENCY, "bot-3"),  # a rollup first among equal times
        (late[2].time, LATENCY, "bot-1"),
    ]
