"""Vigil's side of bench_peer.py's 10,000-rule figure: the monitor's cycle with storage, in
process, the way bench_monitor.py measures it.

The ten default rules and 9,990 user rules, one per extra metric, applied in one transaction
(``apply_rules``, the limit raised as ``VIGIL_MAX_RULES`` would raise it); the readings come
from a scripted source.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from peer_config import BIG_CRITICAL, BIG_WARNING, INTERVAL, NORMAL, big_values

T0 = datetime(2026, 11, 27, tzinfo=UTC)
WARMUP_CYCLES = 3  # the incidents open on the 2nd cycle; the steady state is measured


def build_rule_database(path: Path, rules: int) -> float:
    """A migrated SQLite database holding ``rules`` rules (the ten defaults and extra ones);
    returns the seconds it took. Built once and copied for each round."""
    return asyncio.run(_build(path, rules))


async def _build(path: Path, rules: int) -> float:
    from vigil.core import DEFAULT_RULES, Rule
    from vigil.store import Store

    began = time.perf_counter()
    async with await Store.open(_url(path), upgrade=True) as store:
        extra = [
            Rule(metric=f"m{i}", warning=BIG_WARNING, critical=BIG_CRITICAL)
            for i in range(rules - len(DEFAULT_RULES))
        ]
        await store.apply_rules(
            [*await store.list_rules(), *extra], by="bench", now=T0, max_rules=rules
        )
    return time.perf_counter() - began


def cycle_ms(template: Path, folder: Path, *, cycles: int) -> float:
    """Median wall time of one monitor cycle (read sources, store the samples, evaluate every
    rule, commit incident changes and events) over ``cycles`` steady-state cycles on a copy of
    ``template``: every 50th metric breaching its warning threshold, so 1 in 50 rules holds an
    open incident, the rest quiet."""
    copy = folder / "rules.db"
    for part in template.parent.glob(template.name + "*"):  # the file and any -wal/-shm
        shutil.copy(part, folder / part.name.replace(template.name, copy.name, 1))
    return asyncio.run(_cycles(copy, cycles))


async def _cycles(path: Path, cycles: int) -> float:
    from vigil.metrics import Reading
    from vigil.runtime import Vigil
    from vigil.settings import Settings

    now = [T0]

    def clock() -> datetime:
        return now[0]

    settings = Settings(database_url=_url(path), interval=3600, instance="bench", max_rules=100_000)
    # produced by Vigil's own sources (loop lag probe, health registry): not scripted
    built_in = {"event_loop_lag", "service_failure"}
    values: dict[str, float | None] = {}

    class Script:
        name = "script"

        async def read(self) -> Reading:
            return dict(values)

    # interval 3600: the monitor's own loop does not cycle between the measured cycles
    async with Vigil(settings, sources=[Script()], process_metrics=False, clock=clock) as vigil:
        extra = sorted((m for m in vigil.view.rules if m not in NORMAL), key=lambda m: int(m[1:]))
        values.update({m: v for m, v in NORMAL.items() if m not in built_in})
        values.update(zip(extra, big_values(len(extra)), strict=True))
        while vigil.monitor.status().cycles < 1:  # noqa: ASYNC110 - a counter, no event
            await asyncio.sleep(0.01)
        times: list[float] = []
        for index in range(WARMUP_CYCLES + cycles):
            now[0] += timedelta(seconds=INTERVAL)
            began = time.perf_counter()
            await vigil.monitor.cycle()
            if index >= WARMUP_CYCLES:
                times.append(time.perf_counter() - began)
        expected = sum(1 for m in extra if (values[m] or 0.0) >= BIG_WARNING)
        opened = len(vigil.view.active())
    if opened != expected:
        raise RuntimeError(f"expected {expected} open incidents after the warm-up, found {opened}")
    return statistics.median(times) * 1e3


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
