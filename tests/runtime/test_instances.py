"""Several real OS processes sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from vigil.core import Aggregate, EventKind, Rule, Status
from vigil.store import Store

# Starting a Python process that imports the whole stack can take a long time on a
# loaded, shared machine: the deadline only bounds a test that is really broken.
DEADLINE = 180.0

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # processes killed and restarted

ROOT = Path(__file__).parents[2]
INTERVAL = 1.0
FAILOVERS = 20


@dataclass
class Cluster:
    url: str
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: int = 0

    def readings_for(self, name: str) -> Path:
        return self.workdir / f"{name}.json"

    def log_of(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def set_readings(self, values: dict[str, float], *, names: list[str] | None = None) -> None:
        for name in names or list(self.processes):
            path = self.readings_for(name)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(values))
            temporary.replace(path)  # atomic: a reader never sees half a file

    def start(self, values: dict[str, float]) -> str:
        self.started += 1
        name = f"i{self.started}"
        self.processes[name] = None  # type: ignore[assignment]  # reserve the name first
        self.set_readings(values, names=[name])
        self.processes[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.runtime.instance_main",
                self.url,
                name,
                str(INTERVAL),
                str(self.readings_for(name)),
                str(self.log_of(name)),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        return name

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name)

    def events_seen_by(self, name: str) -> list[dict[str, Any]]:
        path = self.log_of(name)
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [line for line in lines if "id" in line]

    def ready(self, name: str) -> bool:
        path = self.log_of(name)
        return path.exists() and '"ready"' in path.read_text()


async def wait_for(condition: Callable[[], object], what: str) -> None:
    async def poll() -> None:
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(poll(), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def cluster(migrated_postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    group = Cluster(migrated_postgres_url, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
async def store(migrated_postgres_url: str) -> AsyncIterator[Store]:
    async with await Store.open(migrated_postgres_url) as opened:
        yield opened


async def leaders(store: Store) -> list[str]:
    events = await store.events_after(0, limit=10_000)
    return [str(e.data["instance"]) for e in events if e.kind is EventKind.LEADER_CHANGED]


async def test_one_leader_survives_twenty_kills_without_a_duplicate_incident(
    cluster: Cluster, store: Store
) -> None:
    # queue_depth is summed across instances: each reports 4, below the threshold of 10
    await store.add_rule(
        Rule(metric="queue_depth", critical=10, aggregate=Aggregate.SUM),
        by="test",
        now=datetime.now(UTC),
    )
    calm = {"gateway_latency": 40.0, "queue_depth": 4.0}
    names = [cluster.start(calm) for _ in range(3)]
    await wait_for(lambda: all(cluster.ready(n) for n in names), "three instances")
    await wait_for(lambda: leaders(store), "a leader")
    # exactly one leader holds the lock
    assert len(await leaders(store)) == 1

    # samples of all three instances are combined: 4 + 4 + 4 >= 10
    async def queue_incident() -> bool:
        return any(i.metric == "queue_depth" for i in await store.active_incidents())

    await wait_for(queue_incident, "the summed queue_depth incident")

    # Rounds of four: hot, hot, calm, calm. The latency incident opens in the first hot round
    # and stays open across the second round's leader death; it resolves in the calm rounds.
    hot = {**calm, "gateway_latency": 250.0}

    async def latency_open() -> bool:
        return any(i.metric == "gateway_latency" for i in await store.active_incidents())

    for round_ in range(FAILOVERS):
        readings = hot if round_ % 4 < 2 else calm
        cluster.set_readings(readings)
        [leader, *_] = (await leaders(store))[-1:]
        before = len(await leaders(store))
        cluster.kill(leader)
        replacement = cluster.start(readings)

        async def new_leader(before: int = before) -> bool:
            return len(await leaders(store)) > before

        async def settled(hot_round: bool = readings is hot) -> bool:
            return await latency_open() == hot_round

        await wait_for(new_leader, f"a new leader after killing {leader} (round {round_})")
        await wait_for(partial(cluster.ready, replacement), f"{replacement} to start")
        await wait_for(settled, f"the latency incident to follow round {round_}")

    history = await store.incident_history(metric="gateway_latency", page_size=200)
    events = await store.events_after(0, limit=10_000)
    opened = [e for e in events if e.kind is EventKind.INCIDENT_OPENED]
    # every incident row was opened exactly once, and never two open at the same time
    assert len({e.incident.id for e in opened if e.incident}) == len(opened)
    open_now = 0
    for event in events:
        if event.metric != "gateway_latency" or event.incident is None:
            continue
        if event.kind is EventKind.INCIDENT_OPENED:
            open_now += 1
        elif event.kind is EventKind.INCIDENT_RESOLVED:
            open_now -= 1
        assert open_now in (0, 1)
    assert history.total == FAILOVERS // 4  # one incident per hot phase, never a second
    assert all(i.status is Status.RESOLVED for i in history.items)
    assert len(await leaders(store)) == FAILOVERS + 1

    # a change made now (as the CLI would) reaches the subscribers of every instance, in order
    _, change = await store.update_rule(
        "gateway_latency", {"warning": 110}, by="test", now=datetime.now(UTC)
    )
    last_id = change.id
    for name in cluster.processes:
        await wait_for(partial(received, cluster, name, last_id), f"{name} to get event {last_id}")
        ids = [e["id"] for e in cluster.events_seen_by(name)]
        assert ids == sorted(ids)


def received(cluster: Cluster, name: str, event_id: int | None) -> bool:
    return any(e["id"] == event_id for e in cluster.events_seen_by(name))
