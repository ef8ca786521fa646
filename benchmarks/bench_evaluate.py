"""One evaluation cycle over 100, 10,000 and 100,000 rules, against the floor.

The floor is the least any evaluator must do: read each value and compare it with one
threshold. Two workloads: a quiet service (every reading normal, the common case) and a
troubled one (10% of the rules breaching and holding streaks or incidents).
Target: a cycle of 10,000 rules within 3x the floor.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

from vigil.core import Evaluator, Rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


Readings = dict[str, float | None]


def cycle(evaluator: Evaluator, readings: Readings, clock: Iterator[datetime]) -> object:
    """One monitor cycle's evaluation, at the clock's next instant."""
    return evaluator.evaluate(readings, now=next(clock))


def workload(n: int, troubled: float) -> tuple[Evaluator, Readings, dict[str, float]]:
    rng = random.Random(n)
    rules = [Rule(metric=f"m{i}", warning=100, critical=200) for i in range(n)]
    evaluator = Evaluator(rules)
    readings: Readings = {}
    for i in range(n):
        breaching = rng.random() < troubled
        readings[f"m{i}"] = rng.uniform(120, 260) if breaching else rng.uniform(0, 95)
    thresholds = {f"m{i}": 100.0 for i in range(n)}
    # Warm up: breaching rules reach their open incidents, as in a real steady state.
    for k in range(3):
        evaluator.evaluate(readings, now=T0 + timedelta(seconds=k))
    return evaluator, readings, thresholds


def floor(readings: Readings, thresholds: dict[str, float]) -> int:
    breaches = 0
    for metric, value in readings.items():
        if value is not None and value >= thresholds[metric]:
            breaches += 1
    return breaches


def main() -> None:
    print(f"{'rules':>8} {'workload':>9} {'floor':>10} {'vigil':>10} {'ratio':>6}")
    for n in (100, 10_000, 100_000):
        repeat = max(5, 2_000_000 // n)
        for label, troubled in (("quiet", 0.0), ("troubled", 0.1)):
            evaluator, readings, thresholds = workload(n, troubled)
            clock = (T0 + timedelta(seconds=s) for s in itertools.count(10))
            base = median_seconds(partial(floor, readings, thresholds), repeat)
            ours = median_seconds(partial(cycle, evaluator, readings, clock), repeat)
            print(
                f"{n:>8} {label:>9} {base * 1e3:>8.3f}ms {ours * 1e3:>8.3f}ms {ours / base:>5.2f}x"
            )
    print("target: 10,000 rules within 3x the floor")


if __name__ == "__main__":
    main()
