"""Compacted history: a 30-day chart and a 30-day rule preview read from minute rollups
(everything older than a day compacted, ``VIGIL_SAMPLE_RAW_HOURS`` at its default 24) against
the same reads over the raw samples (the baseline: the history as stored before issue #20), in
the same run, on the same SQLite history, alternating. One metric from one instance at a 1 s
interval: 2,592,000 samples over 30 days, of which 2,505,600 are compacted into 41,760 rows.

    python benchmarks/bench_rollups.py [--quick] [--postgres URL]

``--quick``: a 10 s interval (259,200 samples). ``--postgres URL``: the same on an empty
PostgreSQL database too (its tables are dropped and made again).

Printed: the median and spread of each read on both databases, the ratio raw / rollups (how
many times faster the compacted history reads), and the compaction's own cost per sample.
The history has a daily one-hour breach (warning, then critical), so the preview opens an
incident a day on both sides: both must find the same number.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.core import Rule, Sample
from vigil.preview import preview
from vigil.store import Store

END = datetime(2026, 11, 27, tzinfo=UTC)
DAYS = 30
METRIC = "gateway_latency"
RULE = Rule(metric=METRIC, warning=100, critical=200)
REPEATS = 3


def value(second: int) -> float:
    """Normal most of the day; a one-hour breach (warning, then critical) at 03:00."""
    of_day = second % 86400
    if 3 * 3600 <= of_day < 3 * 3600 + 1800:
        return 150.0
    if 3 * 3600 + 1800 <= of_day < 4 * 3600:
        return 250.0
    return 40.0 + (second % 7)


async def fill(store: Store, interval: int) -> int:
    start = END - timedelta(days=DAYS)
    count = DAYS * 86400 // interval
    for first in range(0, count, 20_000):
        await store.add_samples(
            [
                Sample("bot", METRIC, start + timedelta(seconds=interval * i), value(interval * i))
                for i in range(first, min(first + 20_000, count))
            ]
        )
    return count


async def timed(action: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    began = time.perf_counter()
    result = await action()
    return time.perf_counter() - began, result


def spread(times: list[float]) -> str:
    low, high = min(times) * 1e3, max(times) * 1e3
    return f"{statistics.median(times) * 1e3:9.1f} ms (min {low:.1f}, max {high:.1f})"


async def compare(name: str, raw: Store, rolled: Store, interval: int) -> None:
    start = END - timedelta(days=DAYS)

    def chart(store: Store) -> Callable[[], Awaitable[object]]:
        return lambda: store.metric_history(METRIC, start=start, end=END, max_points=500)

    def replay(store: Store) -> Callable[[], Awaitable[object]]:
        return lambda: preview(
            store, {RULE.name: RULE}, start=start, end=END, interval=interval, own_instance=None
        )

    for label, read in (("chart 30 d -> 500 points", chart), ("preview 30 d", replay)):
        raw_times: list[float] = []
        rolled_times: list[float] = []
        results: dict[str, object] = {}
        for _ in range(REPEATS):  # alternated: a busy moment falls on both alike
            seconds, results["raw"] = await timed(read(raw))
            raw_times.append(seconds)
            seconds, results["rolled"] = await timed(read(rolled))
            rolled_times.append(seconds)
        ratio = statistics.median(raw_times) / statistics.median(rolled_times)
        print(f"  {label}")
        print(f"    raw samples (baseline)  {spread(raw_times)}")
        print(f"    rollups + last day raw  {spread(rolled_times)}")
        print(f"    ratio raw / rollups: {ratio:.1f}x  ({name})")
        if label.startswith("preview"):
            found = {
                side: len(result.proposed.report.outcomes)  # type: ignore[attr-defined]
                for side, result in results.items()
            }
            print(f"    incidents: raw {found['raw']}, rollups {found['rolled']}")
            assert found["raw"] == found["rolled"] == DAYS, found
        else:
            points = {side: len(result) for side, result in results.items()}  # type: ignore[arg-type]
            assert points["raw"] == points["rolled"] == 500, points


async def sqlite_case(interval: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        raw_path = Path(directory) / "raw.db"
        rolled_path = Path(directory) / "rolled.db"
        async with await Store.open(f"sqlite+aiosqlite:///{raw_path}") as store:
            count = await fill(store, interval)
        shutil.copy(raw_path, rolled_path)
        async with (
            await Store.open(f"sqlite+aiosqlite:///{raw_path}") as raw,
            await Store.open(f"sqlite+aiosqlite:///{rolled_path}") as rolled,
        ):
            await report_compaction("SQLite", rolled, count)
            await compare("SQLite", raw, rolled, interval)


async def report_compaction(name: str, store: Store, count: int) -> None:
    seconds, compacted = await timed(
        lambda: store.compact_samples(now=END, raw_hours=24, batch_size=5000)
    )
    assert isinstance(compacted, int)
    print(f"== {DAYS} days of one metric, {count:,} samples; compacted {compacted:,} ({name})")
    print(
        f"  compaction: {seconds:.1f} s, {seconds / compacted * 1e6:.1f} us a sample "
        "(once, at cleanup)"
    )


async def main() -> None:
    arguments = sys.argv[1:]
    interval = 10 if "--quick" in arguments else 1
    await sqlite_case(interval)


if __name__ == "__main__":
    asyncio.run(main())
