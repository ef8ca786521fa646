"""Migration 0014 (sample rollups) upgrades a database with metric history in it from the
previous head keeping every sample; compacted history then lives in the rollups; going down
writes each rollup back as one sample (its mean at the minute's start) and keeps the raw
samples as they were; up again works and compacts again."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from vigil.core.samples import Sample
from vigil.store import Store, migrate, models

from .conftest import T0, raw

PREVIOUS_HEAD = "0013"
NOW = T0 + timedelta(days=3)


async def stored_samples(url: str) -> list[tuple[str, str, object, float]]:
    samples = models.samples
    async with raw(url) as connection:
        rows = await connection.execute(
            select(samples.c.instance, samples.c.metric, samples.c.time, samples.c.value).order_by(
                samples.c.time, samples.c.metric, samples.c.instance, samples.c.value
            )
        )
        return [tuple(row) for row in rows]


async def test_upgrading_keeps_the_samples_and_going_down_keeps_the_rollups(
    database_url: str,
) -> None:
    await migrate.upgrade(database_url, PREVIOUS_HEAD)
    old = T0 + timedelta(minutes=5)  # two days before NOW: compacted by default
    recent = NOW - timedelta(hours=1)
    rows = [
        {
            "instance": "bot",
            "metric": "gateway_latency",
            "time": old + timedelta(seconds=s),
            "value": v,
        }
        for s, v in ((0, 10.0), (20, 30.0), (40, 50.0))
    ] + [{"instance": "bot", "metric": "gateway_latency", "time": recent, "value": 7.5}]
    async with raw(database_url) as connection:
        await connection.execute(models.samples.insert(), rows)
    before = await stored_samples(database_url)
    assert len(before) == 4

    await migrate.upgrade(database_url, "0014")
    assert await stored_samples(database_url) == before
    store = await Store.open(database_url, upgrade=True)  # and on to the head, if any
    try:
        assert await store.compact_samples(now=NOW, raw_hours=24) == 3
        [(_, _, _, kept)] = await stored_samples(database_url)
        assert kept == 7.5
        [point] = await store.metric_history(
            "gateway_latency", start=old, end=old + timedelta(minutes=1), max_points=1
        )
        assert (point.mean, point.min, point.max, point.count) == (30.0, 10.0, 50.0, 3)

        await migrate.downgrade(database_url, PREVIOUS_HEAD)
        after = await stored_samples(database_url)
        # The minute as one sample, its mean at its start; the raw sample as it was.
        assert [(i, m, v) for i, m, _, v in after] == [
            ("bot", "gateway_latency", 30.0),
            ("bot", "gateway_latency", 7.5),
        ]
        assert after[1] == before[3]

        await migrate.upgrade(database_url, "0014")
        assert await stored_samples(database_url) == after
        await store.add_samples([Sample("bot", "error_rate", old, 1.0)])
        assert await store.compact_samples(now=NOW, raw_hours=24) == 2
        [point] = await store.metric_history(
            "gateway_latency", start=old, end=old + timedelta(minutes=1), max_points=1
        )
        assert (point.mean, point.count) == (30.0, 1)
    finally:
        await store.close()
