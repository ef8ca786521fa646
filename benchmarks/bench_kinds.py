"""The learning kinds' cost per cycle, against a threshold rule's over the same readings.

Three evaluators, each of ``--rules`` rules of one kind (threshold, anomaly, forecast), one
metric per rule, every series with a daily shape and noise. The anomaly and forecast rules
first learn from eight days of readings at ten-minute intervals (so the anomaly rules judge
by a weekly baseline, and the forecasts have their trend); then all three evaluate the same
cycles at 30 s intervals for ``--hours`` hours, crossing hour boundaries (where an anomaly
rule works out its next hour's band) as a live monitor does. Printed: the median cycle of
each kind, the mean (which carries the once-an-hour work), and the ratio to threshold.
Target: anomaly within 5x a threshold rule per cycle.

    python benchmarks/bench_kinds.py [--rules 200] [--hours 4]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from vigil.core import Evaluator, Kind, Rule
from vigil.core.evaluation import Reading

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
LEARN_DAYS = 8
LEARN_STEP = 600.0
STEP = 30.0
TARGET = 5.0

Cycle = dict[str, dict[str, Reading]]


def value(rng: random.Random, metric: int, at: float) -> float:
    """A latency-like series: a daily cycle around 100 ms, a per-metric phase, noise."""
    hours = at / 3600.0 + metric % 24
    return 100.0 + 30.0 * math.sin(hours / 24.0 * 2.0 * math.pi) + rng.gauss(0.0, 5.0)


def cycles(
    n: int, start: float, count: int, step: float, seed: int
) -> list[tuple[datetime, Cycle]]:
    rng = random.Random(seed)
    out = []
    for k in range(count):
        seconds = start + k * step
        now = T0 + timedelta(seconds=seconds)
        readings = {f"m{i}": {"": (value(rng, i, seconds), now)} for i in range(n)}
        out.append((now, readings))
    return out


def rules(kind: Kind, n: int) -> list[Rule]:
    if kind is Kind.THRESHOLD:
        return [Rule(metric=f"m{i}", warning=300, critical=400) for i in range(n)]
    if kind is Kind.ANOMALY:
        return [Rule(kind=kind, metric=f"m{i}", min_history=86_400) for i in range(n)]
    return [Rule(kind=kind, metric=f"m{i}", critical=400, horizon=7200) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--hours", type=float, default=4.0)
    args = parser.parse_args()
    n = args.rules
    learn = cycles(n, 0.0, int(LEARN_DAYS * 86_400 / LEARN_STEP), LEARN_STEP, seed=1)
    start = LEARN_DAYS * 86_400.0
    timed = cycles(n, start, int(args.hours * 3600 / STEP), STEP, seed=2)
    kinds = (Kind.THRESHOLD, Kind.ANOMALY, Kind.FORECAST)
    evaluators = {kind: Evaluator(rules(kind, n)) for kind in kinds}
    for evaluator in evaluators.values():
        for now, readings in learn:
            evaluator.evaluate_series(readings, now=now)
    # The kinds take turns on each cycle, so a machine busy with other work slows all three
    # alike rather than whichever ran while it was busy.
    samples: dict[Kind, list[float]] = {kind: [] for kind in kinds}
    events = dict.fromkeys(kinds, 0)
    for now, readings in timed:
        for kind, evaluator in evaluators.items():
            begin = time.perf_counter()
            result = evaluator.evaluate_series(readings, now=now)
            samples[kind].append(time.perf_counter() - begin)
            events[kind] += len(result.events)
    results = {
        kind: (statistics.median(samples[kind]), statistics.fmean(samples[kind]), events[kind])
        for kind in kinds
    }
    base_median, base_mean, _ = results[Kind.THRESHOLD]
    print(f"{n} rules of each kind, {len(timed)} cycles at {STEP:g} s after {LEARN_DAYS} days")
    print(f"{'kind':>10} {'median':>10} {'mean':>10} {'per rule':>10} {'ratio':>7} {'events':>7}")
    for kind, (median, mean, count) in results.items():
        print(
            f"{kind.value:>10} {median * 1e3:>8.3f}ms {mean * 1e3:>8.3f}ms "
            f"{median / n * 1e6:>8.2f}us {median / base_median:>6.2f}x {count:>7}"
        )
    ratio = results[Kind.ANOMALY][0] / base_median
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"target: anomaly within {TARGET:g}x a threshold rule per cycle: {ratio:.2f}x, {verdict}")
    print(
        f"(means: anomaly {results[Kind.ANOMALY][1] / base_mean:.2f}x, "
        f"forecast {results[Kind.FORECAST][1] / base_mean:.2f}x)"
    )


if __name__ == "__main__":
    main()
