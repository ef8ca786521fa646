"""The rule preview's cost: one rule replayed over 30 days of stored samples at a 30 s interval
(86,400 readings) on SQLite (``vigil.preview.preview``: the history read in chunks from the
database, cycles formed, the real evaluator) against the bare evaluator loop over the same
readings already in memory (the baseline). The ratio is the cost of reading history; the
absolute median is printed too (target: well under a second).

The history holds a daily pattern with a one-hour breach each day, so incidents open, escalate
and resolve along the way; both sides must find the same incidents.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.core import Evaluator, Rule, Sample
from vigil.preview import preview
from vigil.store import Store

END = datetime(2026, 11, 27, tzinfo=UTC)
DAYS = 30
INTERVAL = 30
READINGS = DAYS * 86400 // INTERVAL
METRIC = "gateway_latency"
RULE = Rule(metric=METRIC, warning=100, critical=200)
REPEATS = 5


def value(i: int) -> float:
    """Normal most of the day; a one-hour breach (warning, then critical) at 03:00."""
    second = (i * INTERVAL) % 86400
    if 3 * 3600 <= second < 3 * 3600 + 1800:
        return 150.0
    if 3 * 3600 + 1800 <= second < 4 * 3600:
        return 250.0
    return 40.0 + (i % 7)


def history() -> list[tuple[datetime, float]]:
    start = END - timedelta(days=DAYS)
    return [(start + timedelta(seconds=INTERVAL * i), value(i)) for i in range(READINGS)]


def bare_loop(readings: list[tuple[datetime, float]]) -> int:
    """The baseline: the evaluator over readings already in memory; incidents opened."""
    evaluator = Evaluator([RULE], stale_after=2 * INTERVAL)
    opened = 0
    for moment, reading in readings:
        result = evaluator.evaluate_series({METRIC: {"bot": (reading, moment)}}, now=moment)
        opened += sum(e.kind.value == "incident.opened" for e in result.events)
    return opened


async def main() -> None:
    readings = history()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'vigil.db'}"
        async with await Store.open(url) as store:
            samples = [Sample("bot", METRIC, moment, reading) for moment, reading in readings]
            for first in range(0, len(samples), 10_000):
                await store.add_samples(samples[first : first + 10_000])
            start = END - timedelta(days=DAYS)
            preview_times: list[float] = []
            bare_times: list[float] = []
            found = expected = 0
            # Alternated, so a busy moment of a shared machine falls on both alike.
            for _ in range(REPEATS):
                began = time.perf_counter()
                result = await preview(
                    store,
                    {RULE.name: RULE},
                    start=start,
                    end=END,
                    interval=INTERVAL,
                    own_instance="bench",
                )
                preview_times.append(time.perf_counter() - began)
                found = len(result.proposed.report.outcomes)
                began = time.perf_counter()
                expected = bare_loop(readings)
                bare_times.append(time.perf_counter() - began)
            assert result.samples == READINGS, result.samples
            assert found == expected == DAYS, (found, expected)
    vigil = statistics.median(preview_times)
    bare = statistics.median(bare_times)
    print(f"== preview of one rule, {DAYS} days at {INTERVAL} s ({READINGS:,} readings), SQLite")
    print(f"  preview (database, chunked)   {vigil * 1e3:8.1f} ms median of {REPEATS}")
    print(f"  bare evaluator loop (memory)  {bare * 1e3:8.1f} ms median of {REPEATS}")
    print(f"  {found} incidents on both sides")
    print(f"  ratio preview / bare loop: {vigil / bare:.2f}x (the cost of reading history)")
    print(f"  absolute: {vigil:.3f} s (target: well under a second)")


if __name__ == "__main__":
    asyncio.run(main())
