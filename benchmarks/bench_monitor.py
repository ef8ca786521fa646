"""The monitor's cycle, its breach-to-event latency, and failover time.

1. Cycle cost on SQLite and PostgreSQL, with the 10 default rules and with 1,000 rules fed by
   4 instances' samples, against the core evaluation alone on the same readings (the ratio
   is Vigil's I/O overhead: reading sources, storing samples, combining instances,
   committing).
   And 10,000 rules, 9 in 10 with an open incident, on SQLite and PostgreSQL: one cycle with
   the readings steady (the incidents do not change: nothing but streaks and samples to
   write) and with them moving (every open incident's last value changes).
2. Breach-to-event latency: from the start of the cycle whose reading opens an incident to a
   subscriber receiving the event (median and p99).
3. Failover on PostgreSQL: the leader process is SIGKILLed; time until another instance
   announces itself leader, in monitor intervals.

PostgreSQL: VIGIL_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) must
allow CREATE DATABASE; without it those parts are skipped and say so.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.core import DEFAULT_RULES, Evaluator, EventKind, Rule, Sample, combine
from vigil.metrics import Reading
from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.store import Store

POSTGRES_ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 11, 27, tzinfo=UTC)
CYCLES = 30
OTHERS = 3  # other instances, so 4 in all


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Script:
    """Readings set by the benchmark; remembers when each cycle (by its clock time) read."""

    name = "script"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.values: dict[str, float | None] = {}
        self.read_at: dict[datetime, float] = {}

    async def read(self) -> Reading:
        self.read_at[self.clock.now] = time.perf_counter()
        return dict(self.values)


# produced by Vigil's own sources (loop lag probe, health registry): not scripted
BUILT_IN = {"event_loop_lag", "service_failure"}


async def started(vigil: Vigil) -> None:
    """Wait for the loop's first cycle, so the benchmark's cycles are the only ones."""
    while vigil.monitor.status().cycles < 1:  # noqa: ASYNC110 - a counter, no event to await
        await asyncio.sleep(0.01)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@asynccontextmanager
async def databases() -> AsyncIterator[list[tuple[str, str]]]:
    """A fresh SQLite file and, when reachable, a fresh PostgreSQL database."""
    import asyncpg

    with tempfile.TemporaryDirectory() as folder:
        found = [("sqlite", f"sqlite+aiosqlite:///{folder}/bench.db")]
        name = f"vigil_bench_{os.getpid()}_{secrets.token_hex(3)}"
        admin = None
        try:
            admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
            await admin.execute(f'CREATE DATABASE "{name}"')
            base = POSTGRES_ADMIN_URL.rpartition("/")[0].replace(
                "postgresql://", "postgresql+asyncpg://", 1
            )
            found.append(("postgresql", f"{base}/{name}"))
        except OSError as exc:
            print(f"(postgresql skipped: {POSTGRES_ADMIN_URL} unreachable: {exc})")
        try:
            yield found
        finally:
            if admin is not None:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()


async def prepare(url: str, extra_rules: int) -> None:
    async with await Store.open(url, upgrade=True) as store:
        for i in range(extra_rules):
            await store.add_rule(
                Rule(metric=f"m{i}", warning=100, critical=200), by="bench", now=T0
            )


async def cycle_cost(kind: str, url: str, rules: int) -> None:
    """Median cycle time of a real Vigil against Evaluator.evaluate on the same readings."""
    extra = rules - len(DEFAULT_RULES)
    await prepare(url, extra)
    clock = Clock()
    script = Script(clock)
    defaults = [r.metric for r in DEFAULT_RULES if r.metric not in BUILT_IN]
    metrics = defaults + [f"m{i}" for i in range(extra)]
    # mostly quiet, a few rules breaching: a realistic steady state
    script.values = {m: (150.0 if i % 50 == 0 else 20.0) for i, m in enumerate(metrics)}
    settings = Settings(database_url=url, interval=3600, instance="bench")
    cycle_times: list[float] = []
    async with Vigil(settings, sources=[script], process_metrics=False, clock=clock) as vigil:
        await started(vigil)
        store = vigil.store
        for _ in range(CYCLES):
            clock.now += timedelta(seconds=30)
            others = [
                Sample(f"other-{k}", m, clock.now, v or 0.0)
                for k in range(OTHERS)
                for m, v in script.values.items()
            ]
            await store.add_samples(others)  # what the other instances store meanwhile
            began = time.perf_counter()
            await vigil.monitor.cycle()
            cycle_times.append(time.perf_counter() - began)
        rule_map = vigil.view.rules

    # the core alone, on the readings the monitor combined
    evaluator = Evaluator(rule_map.values())
    combined = {
        m: combine([v or 0.0] * (OTHERS + 1), rule_map[m].aggregate)
        for m, v in script.values.items()
    }
    core_times: list[float] = []
    now = T0
    for _ in range(CYCLES):
        now += timedelta(seconds=30)
        began = time.perf_counter()
        evaluator.evaluate(combined, now=now)
        core_times.append(time.perf_counter() - began)
    vigil_ms = statistics.median(cycle_times) * 1e3
    core_ms = statistics.median(core_times) * 1e3
    print(
        f"  {kind:<10} {rules:>5} rules x 4 instances: cycle {vigil_ms:8.2f} ms, "
        f"core alone {core_ms:7.3f} ms, ratio {vigil_ms / core_ms:8.1f}x"
    )


OPEN_RULES = 10_000
OPEN_CYCLES = 5


async def open_incidents_cost(kind: str, url: str) -> None:
    """Median cycle time with 10,000 rules, 9 in 10 of them with an open incident."""
    rules = [Rule(metric=f"m{i}", warning=100, critical=1000) for i in range(OPEN_RULES)]
    async with await Store.open(url, upgrade=True) as store:
        await store.apply_rules(rules, by="bench", now=T0, max_rules=2 * OPEN_RULES)
    clock = Clock()
    script = Script(clock)
    quiet = {r.metric for r in DEFAULT_RULES if r.metric not in BUILT_IN}
    base = {f"m{i}": (20.0 if i % 10 == 0 else 150.0) for i in range(OPEN_RULES)}
    script.values = {**{m: 0.0 for m in quiet}, **base}
    settings = Settings(database_url=url, interval=3600, instance="bench", max_rules=2 * OPEN_RULES)
    figures: dict[str, float] = {}
    async with Vigil(settings, sources=[script], process_metrics=False, clock=clock) as vigil:
        await started(vigil)
        for _ in range(2):  # two breaches open the incidents
            clock.now += timedelta(seconds=30)
            await vigil.monitor.cycle()
        for label in ("steady", "moving"):
            times: list[float] = []
            for cycle in range(OPEN_CYCLES):
                clock.now += timedelta(seconds=30)
                if label == "moving":
                    shift = float(cycle + 1)
                    script.values.update({m: v + shift if v > 100 else v for m, v in base.items()})
                began = time.perf_counter()
                await vigil.monitor.cycle()
                times.append(time.perf_counter() - began)
            figures[label] = statistics.median(times) * 1e3
        opened = len(vigil.monitor.evaluator.open_incidents())
    print(
        f"  {kind:<10} {OPEN_RULES} rules, {opened} open incidents: cycle steady "
        f"{figures['steady']:8.1f} ms, moving {figures['moving']:8.1f} ms"
    )


async def breach_latency(kind: str, url: str) -> None:
    await prepare(url, 0)
    clock = Clock()
    script = Script(clock)
    settings = Settings(database_url=url, interval=3600, instance="bench")
    latencies: list[float] = []
    async with Vigil(settings, sources=[script], process_metrics=False, clock=clock) as vigil:
        await started(vigil)
        stream = vigil.subscribe()

        async def listen() -> None:
            async for event in stream:
                if event.kind is EventKind.INCIDENT_OPENED:
                    latencies.append(time.perf_counter() - script.read_at[event.at])

        listener = asyncio.create_task(listen())
        for _ in range(40):
            for value in (250.0, 250.0, 10.0, 10.0, 10.0):
                clock.now += timedelta(seconds=30)
                script.values = {"gateway_latency": value}
                await vigil.monitor.cycle()
                await asyncio.sleep(0)  # as the real loop does: it waits after each cycle
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    print(
        f"  {kind:<10} breach to event: median {statistics.median(latencies) * 1e3:.2f} ms, "
        f"p99 {p99(latencies) * 1e3:.2f} ms over {len(latencies)} incidents"
    )


INSTANCE = """
import asyncio, sys
from vigil.runtime import Vigil
from vigil.settings import Settings
url, name, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
async def main():
    settings = Settings(database_url=url, instance=name, interval=interval)
    async with Vigil(settings, process_metrics=False):
        await asyncio.Event().wait()
asyncio.run(main())
"""


def more_than(count: int, found: list[str]) -> bool:
    """More leaders on record than ``count``: a new one has taken over."""
    return len(found) > count


async def failover(url: str, *, interval: float = 1.0, rounds: int = 5) -> None:
    await prepare(url, 0)
    store = await Store.open(url)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        processes[name] = subprocess.Popen(
            [sys.executable, "-c", INSTANCE, url, name, str(interval)], env=env
        )

    async def leaders() -> list[str]:
        events = await store.events_after(0, limit=10_000)
        return [str(e.data["instance"]) for e in events if e.kind is EventKind.LEADER_CHANGED]

    async def until(condition: Callable[[list[str]], bool]) -> list[str]:
        for _ in range(6000):
            found = await leaders()
            if condition(found):
                return found
            await asyncio.sleep(0.01)
        raise RuntimeError("no leader appeared within a minute")

    times: list[float] = []
    try:
        start("a")
        start("b")
        await until(lambda found: len(found) >= 1)
        await asyncio.sleep(3 * interval)  # both instances up and cycling
        for round_ in range(rounds):
            before = await leaders()
            leader = before[-1]
            processes.pop(leader).send_signal(signal.SIGKILL)
            killed = time.perf_counter()
            count = len(before)
            await until(functools.partial(more_than, count))
            times.append(time.perf_counter() - killed)
            start(f"r{round_}")
            await asyncio.sleep(3 * interval)
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
        await store.close()
    in_intervals = [t / interval for t in times]
    print(
        f"  failover ({rounds} kills, interval {interval:g} s): median "
        f"{statistics.median(in_intervals):.2f} intervals, max {max(in_intervals):.2f}"
    )


async def main() -> None:
    print(f"== cycle cost (median of {CYCLES} cycles)")
    for rules in (len(DEFAULT_RULES), 1000):
        async with databases() as found:
            for kind, url in found:
                await cycle_cost(kind, url, rules)
    print(f"== cycle with open incidents (median of {OPEN_CYCLES} cycles)")
    async with databases() as found:
        for kind, url in found:
            await open_incidents_cost(kind, url)
    print("== breach-to-event latency")
    async with databases() as found:
        for kind, url in found:
            await breach_latency(kind, url)
    print("== failover")
    async with databases() as found:
        postgres = [url for kind, url in found if kind == "postgresql"]
        if postgres:
            await failover(postgres[0])
        else:
            print("  skipped: needs PostgreSQL")


if __name__ == "__main__":
    asyncio.run(main())
