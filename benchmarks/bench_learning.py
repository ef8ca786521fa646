"""What learning from the stored history costs the monitor at start (and when a learning rule
is added): one anomaly rule's window, a week and an hour of one metric at a 30 s interval
(20,280 samples) and at 1 s (608,400), read from SQLite in chunks and replayed through the
evaluator (``vigil.preview.learn``), against the bare evaluator loop over the same readings
already in memory (the baseline). The ratio is the cost of reading the history; the absolute
median is how late the first cycle after a restart is.

    python benchmarks/bench_learning.py [--quick]     # --quick: the 30 s case only

Both sides must end with the same band.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.core import Evaluator, Rule, Sample
from vigil.core.learning import learning_window
from vigil.preview import learn
from vigil.store import Store

NOW = datetime(2026, 11, 27, tzinfo=UTC)
CASES = [(30, 5), (1, 3)]  # interval (s), repeats
METRIC = "gateway_latency"
RULE = Rule.from_dict({"name": "odd_latency", "kind": "anomaly", "metric": METRIC})


def history(interval: int) -> list[tuple[datetime, float]]:
    """The rule's window of a latency with a daily cycle."""
    count = int(learning_window(RULE)) // interval
    start = NOW - timedelta(seconds=count * interval)
    return [
        (
            start + timedelta(seconds=interval * i),
            100.0 + 30.0 * math.sin(i * interval / 86400 * 2 * math.pi) + (i * 7919 % 11),
        )
        for i in range(count)
    ]


def bare_loop(readings: list[tuple[datetime, float]], interval: int) -> Evaluator:
    """The baseline: the evaluator over readings already in memory."""
    evaluator = Evaluator([RULE], stale_after=2 * interval)
    for moment, reading in readings:
        evaluator.evaluate_series({METRIC: {"bot": (reading, moment)}}, now=moment)
    return evaluator


async def case(interval: int, repeats: int) -> None:
    readings = history(interval)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'vigil.db'}"
        async with await Store.open(url) as store:
            samples = [Sample("bot", METRIC, moment, reading) for moment, reading in readings]
            for first in range(0, len(samples), 10_000):
                await store.add_samples(samples[first : first + 10_000])
            learn_times: list[float] = []
            bare_times: list[float] = []
            # Alternated, so a busy moment of a shared machine falls on both alike.
            for _ in range(repeats):
                began = time.perf_counter()
                memories = await learn(store, {RULE.name: RULE}, now=NOW, interval=interval)
                learn_times.append(time.perf_counter() - began)
                began = time.perf_counter()
                bare = bare_loop(readings, interval)
                bare_times.append(time.perf_counter() - began)
    learned = Evaluator([RULE], stale_after=2 * interval)
    assert learned.adopt(memories) == 1
    last = readings[-1][0]
    assert learned.band(RULE.name, at=last) == bare.band(RULE.name, at=last) is not None
    slow, fast = statistics.median(learn_times), statistics.median(bare_times)
    print(
        f"== learning one anomaly rule's window ({learning_window(RULE) / 3600:.0f} h) "
        f"at {interval} s ({len(readings):,} samples), SQLite"
    )
    print(f"  learn (database, chunked)     {slow * 1e3:8.1f} ms median of {repeats}")
    print(f"  bare evaluator loop (memory)  {fast * 1e3:8.1f} ms median of {repeats}")
    print(f"  ratio learn / bare loop: {slow / fast:.2f}x (the cost of reading history)")
    print(f"  absolute: {slow:.3f} s (how late the first cycle after a restart is)")


async def main() -> None:
    quick = "--quick" in sys.argv[1:]
    for interval, repeats in CASES[:1] if quick else CASES:
        await case(interval, repeats)


if __name__ == "__main__":
    asyncio.run(main())
