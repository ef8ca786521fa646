"""The open rule model's cost: one evaluation cycle of 1,000 rules of mixed kinds against
1,000 plain threshold rules, and the monitor's whole cycle with storage at 1,000 rules.

1. Core, same readings for both (1,000 metrics, a tenth of them reported by 10 instances, the
   rest by one, each reading with its sample time): 1,000 plain threshold rules (the baseline,
   what Vigil evaluated before rules had kinds) against 1,000 rules of mixed kinds — 700
   threshold (100 of them split per instance over the 10 instances), 150 absent, 150
   composite of two terms. Target: within 2x.
2. The monitor's whole cycle (sources, samples stored, readings read back, evaluation,
   commit) with the same 1,000 mixed rules on SQLite and PostgreSQL; the previous figure for
   1,000 plain threshold rules is bench_monitor.py's.

PostgreSQL as in bench_monitor.py (VIGIL_TEST_POSTGRES_URL); skipped when unreachable.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench_monitor import Clock, Script, databases, started
from vigil.core import Evaluator, Kind, Rule, Sample, SplitBy
from vigil.core.evaluation import Reading
from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.store import Store

T0 = datetime(2026, 11, 27, tzinfo=UTC)
RULES = 1000
INSTANCES = 10
CYCLES = 30
Readings = dict[str, dict[str, Reading]]


def split_metric(i: int) -> bool:
    return i % 10 == 0  # a tenth of the metrics come from 10 instances


def plain_rules() -> list[Rule]:
    return [Rule(metric=f"m{i}", warning=100, critical=200) for i in range(RULES)]


def mixed_rules() -> list[Rule]:
    rules: list[Rule] = []
    for i in range(RULES):
        metric = f"m{i}"
        if i < 700:
            split = SplitBy.INSTANCE if split_metric(i) else SplitBy.NONE
            rules.append(Rule(metric=metric, warning=100, critical=200, split_by=split))
        elif i < 850:
            rules.append(Rule(name=f"absent-{i}", kind=Kind.ABSENT, metric=metric, absent_for=300))
        else:
            condition = f"{metric} >= 100 and m{i - 850} >= 50"
            rules.append(Rule(name=f"both-{i}", kind=Kind.COMPOSITE, condition=condition))
    return rules


def readings(now: datetime, rng: random.Random, *, troubled: bool = True) -> Readings:
    """Troubled: three metrics in fifty breaching, split ones among them (each of their 10
    instances a series with an open incident). Quiet: every reading normal."""
    out: Readings = {}
    for i in range(RULES):
        breaching = troubled and (i % 25 == 0 or i % 50 == 7)
        value = 150.0 if breaching else rng.uniform(0, 90)
        instances = [f"shard-{k}" for k in range(INSTANCES)] if split_metric(i) else ["bot"]
        out[f"m{i}"] = {instance: (value, now) for instance in instances}
    return out


def core(*, troubled: bool) -> None:
    rng = random.Random(13)
    cycles = [readings(T0 + timedelta(seconds=30 * k), rng, troubled=troubled) for k in range(4)]
    evaluators = {}
    for label, rules in (("plain threshold", plain_rules()), ("mixed kinds", mixed_rules())):
        evaluator = Evaluator(rules, stale_after=60)
        for k, cycle in enumerate(cycles[:3]):  # warm up: streaks and incidents in place
            evaluator.evaluate_series(cycle, now=T0 + timedelta(seconds=30 * k))
        evaluators[label] = (evaluator, rules)
    now = T0 + timedelta(seconds=90)
    last = cycles[3]
    # Alternated, so a busy moment of a shared machine falls on both alike; and CPU time of
    # this thread, so time spent preempted by other processes is not counted.
    samples: dict[str, list[float]] = {label: [] for label in evaluators}
    for _ in range(300):
        for label, (evaluator, _) in evaluators.items():
            began = time.thread_time()
            evaluator.evaluate_series(last, now=now)
            samples[label].append(time.thread_time() - began)
    results = {label: statistics.median(times) for label, times in samples.items()}
    for label, (evaluator, rules) in evaluators.items():
        series = sum(len(evaluator.series(r.name)) for r in rules)
        print(
            f"  {label:<16} {RULES} rules, {series:>5} series: "
            f"{results[label] * 1e3:7.3f} ms of CPU a cycle"
        )
    ratio = results["mixed kinds"] / results["plain threshold"]
    print(f"  ratio mixed / plain: {ratio:.2f}x (target: within 2x)")


async def prepare(url: str) -> list[Rule]:
    async with await Store.open(url, upgrade=True) as store:
        existing = {rule.name for rule in await store.list_rules()}
        wanted = [rule for rule in mixed_rules() if rule.name not in existing]
        # the 10 default rules stay: 1,000 in all
        await store.apply_rules(wanted[: RULES - len(existing)], by="bench", now=T0)
        return await store.list_rules()


async def monitor_cycle(kind: str, url: str) -> None:
    rules = await prepare(url)
    clock = Clock()
    script = Script(clock)
    rng = random.Random(7)
    # The real interval (30 s): what each cycle reads back is as far as the rules look
    # (two intervals, or an absent rule's 300 s). The benchmark's 30 cycles run well
    # within the loop's own next tick.
    settings = Settings(database_url=url, interval=30, instance="bench")
    times: list[float] = []
    async with Vigil(settings, sources=[script], process_metrics=False, clock=clock) as vigil:
        await started(vigil)
        for _ in range(CYCLES):
            clock.now += timedelta(seconds=30)
            pushed = [
                Sample(instance, metric, clock.now, value)
                for metric, by in readings(clock.now, rng).items()
                for instance, (value, _) in by.items()
            ]
            await vigil.store.add_samples(pushed)  # what the instances pushed meanwhile
            began = time.perf_counter()
            await vigil.monitor.cycle()
            times.append(time.perf_counter() - began)
        incidents = len(vigil.view.active())
    print(
        f"  {kind:<10} {len(rules)} rules (mixed kinds): cycle "
        f"{statistics.median(times) * 1e3:8.2f} ms median of {CYCLES}, {incidents} open incidents"
    )


async def monitor() -> None:
    async with databases() as found:
        for kind, url in found:
            await monitor_cycle(kind, url)
    print("  (previous figure, 1,000 plain threshold rules x 4 instances: bench_monitor.py)")


def main() -> None:
    print("== one evaluation cycle, 1,000 rules, quiet (every reading normal)")
    core(troubled=False)
    print("== one evaluation cycle, 1,000 rules, troubled (3 metrics in 50 breaching)")
    core(troubled=True)
    print("== the monitor's whole cycle with storage, 1,000 rules")
    asyncio.run(monitor())


if __name__ == "__main__":
    main()
