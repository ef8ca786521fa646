"""The rule preview's cost: one rule replayed over 30 days of stored samples at a 30 s interval
(86,400 readings), and over 7 days at 1 s (604,800 readings), on SQLite
(``vigil.preview.preview``: the history read in chunks from the database, cycles formed, the
real evaluator) against the bare evaluator loop over the same readings already in memory (the
baseline). The ratio is the cost of reading history; the absolute median is printed too
(target for 30 days: well under a second).

    python benchmarks/bench_preview.py [--quick]     # --quick: the 30-day case only

The history holds a daily pattern with a one-hour breach each day, so incidents open, escalate
and resolve along the way; both sides must find the same incidents.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.core import Evaluator, Rule, Sample
from vigil.preview import preview
from vigil.store import Store

END = datetime(2026, 11, 27, tzinfo=UTC)
CASES = [(30, 30, 5), (7, 1, 3)]  # days, interval (s), repeats
METRIC = "gateway_latency"
RULE = Rule(metric=METRIC, warning=100, critical=200)


def value(i: int, interval: int) -> float:
    """Normal most of the day; a one-hour breach (warning, then critical) at 03:00."""
    second = (i * interval) % 86400
    if 3 * 3600 <= second < 3 * 3600 + 1800:
        return 150.0
    if 3 * 3600 + 1800 <= second < 4 * 3600:
        return 250.0
    return 40.0 + (i % 7)


def history(days: int, interval: int) -> list[tuple[datetime, float]]:
    start = END - timedelta(days=days)
    count = days * 86400 // interval
    return [(start + timedelta(seconds=interval * i), value(i, interval)) for i in range(count)]


def bare_loop(readings: list[tuple[datetime, float]], interval: int) -> int:
    """The baseline: the evaluator over readings already in memory; incidents opened."""
    evaluator = Evaluator([RULE], stale_after=2 * interval)
    opened = 0
    for moment, reading in readings:
        result = evaluator.evaluate_series({METRIC: {"bot": (reading, moment)}}, now=moment)
        opened += sum(e.kind.value == "incident.opened" for e in result.events)
    return opened


async def case(days: int, interval: int, repeats: int) -> None:
    readings = history(days, interval)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'vigil.db'}"
        async with await Store.open(url) as store:
            samples = [Sample("bot", METRIC, moment, reading) for moment, reading in readings]
            for first in range(0, len(samples), 10_000):
                await store.add_samples(samples[first : first + 10_000])
            start = END - timedelta(days=days)
            preview_times: list[float] = []
            bare_times: list[float] = []
            found = expected = 0
            # Alternated, so a busy moment of a shared machine falls on both alike.
            for _ in range(repeats):
                began = time.perf_counter()
                result = await preview(
                    store,
                    {RULE.name: RULE},
                    start=start,
                    end=END,
                    interval=interval,
                    own_instance="bench",
                )
                preview_times.append(time.perf_counter() - began)
                found = len(result.proposed.report.outcomes)
                began = time.perf_counter()
                expected = bare_loop(readings, interval)
                bare_times.append(time.perf_counter() - began)
            assert result.samples == len(readings), result.samples
            assert found == expected == days, (found, expected)
    vigil = statistics.median(preview_times)
    bare = statistics.median(bare_times)
    print(
        f"== preview of one rule, {days} days at {interval} s ({len(readings):,} readings), SQLite"
    )
    print(f"  preview (database, chunked)   {vigil * 1e3:8.1f} ms median of {repeats}")
    print(f"  bare evaluator loop (memory)  {bare * 1e3:8.1f} ms median of {repeats}")
    print(f"  {found} incidents on both sides")
    print(f"  ratio preview / bare loop: {vigil / bare:.2f}x (the cost of reading history)")
    print(f"  absolute: {vigil:.3f} s")


async def main() -> None:
    quick = "--quick" in sys.argv[1:]
    for days, interval, repeats in CASES[:1] if quick else CASES:
        await case(days, interval, repeats)


if __name__ == "__main__":
    asyncio.run(main())
