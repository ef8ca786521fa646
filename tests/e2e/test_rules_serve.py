"""Rules of your own, end to end through a real ``vigil serve`` (a process, one-second cycles):
a rule for a pushed custom metric created from the API opens an incident and notifies; a
composite rule; an absent rule whose pusher stops; a rule split per instance where only one
instance breaches; and ``vigil rules apply`` with --dry-run, then for real, then --prune."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from ..cli.support import in_thread
from ..cli.test_serve import Served
from ..notify.receiver import Receiver, serving
from ..runtime.support import DEADLINE

Check = Callable[[], Awaitable[Any]]


async def token(url: str, name: str, role: str) -> str:
    code, output = await in_thread(url, "tokens", "create", name, "--role", role)
    assert code == 0, output
    return output.strip().splitlines()[-1]


class Server:
    """The served API as an admin and as a pusher."""

    def __init__(self, served: Served, client: httpx.AsyncClient, ingest: str) -> None:
        self.served = served
        self.client = client
        self.ingest = {"Authorization": f"Bearer {ingest}"}

    async def push(self, instance: str, **values: float) -> None:
        """Push once, as a well-behaved pusher does: a 429 (the monitor is behind, which a
        loaded machine can make it) is sent again after its Retry-After."""
        samples = [{"metric": metric, "value": value} for metric, value in values.items()]

        async def accepted() -> httpx.Response:
            while True:
                response = await self.client.post(
                    "/api/ingest",
                    json={"instance": instance, "samples": samples},
                    headers=self.ingest,
                )
                if response.status_code != 429:
                    return response
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))

        response = await asyncio.wait_for(accepted(), DEADLINE)
        assert response.status_code == 200, response.text

    async def rule(self, body: dict[str, Any]) -> None:
        response = await self.client.post("/api/alerts/rules", json=body)
        assert response.status_code == 201, response.text

    async def open_incidents(self, rule: str) -> list[dict[str, Any]]:
        active = (await self.client.get("/api/alerts/active")).json()
        return [incident for incident in active if incident["rule"] == rule]

    async def until(self, check: Check, *, pushing: Callable[[], Awaitable[None]]) -> Any:
        """Push (one round a second, like a worker) until ``check()`` answers something."""

        async def poll() -> Any:
            while True:
                await pushing()
                found = await check()
                if found:
                    return found
                await asyncio.sleep(0.5)

        return await asyncio.wait_for(poll(), DEADLINE * 2)


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


@pytest_asyncio.fixture(loop_scope="session")
async def server(migrated_sqlite_url: str, receiver: Receiver) -> AsyncIterator[Server]:
    admin = await token(migrated_sqlite_url, "ops", "admin")
    ingest = await token(migrated_sqlite_url, "pusher", "ingest")
    code, output = await in_thread(migrated_sqlite_url, "channels", "add", "hook", receiver.url())
    assert code == 0, output
    served = Served(migrated_sqlite_url, admin)
    try:
        await asyncio.to_thread(served.wait_ready)
        async with httpx.AsyncClient(
            base_url=served.base, headers=served.headers, timeout=DEADLINE
        ) as client:
            yield Server(served, client, ingest)
    finally:
        if served.process.poll() is None:
            served.process.terminate()
            await asyncio.to_thread(served.process.communicate, timeout=DEADLINE)


async def test_a_rule_for_a_pushed_metric_opens_an_incident_and_notifies(
    server: Server, receiver: Receiver
) -> None:
    await server.rule(
        {"name": "queue_backlog", "metric": "queue_depth", "unit": "jobs", "critical": 100}
    )
    [incident] = await server.until(
        lambda: server.open_incidents("queue_backlog"),
        pushing=lambda: server.push("worker-1", queue_depth=640),
    )
    assert (incident["metric"], incident["severity"], incident["instance"]) == (
        "queue_depth",
        "critical",
        None,
    )
    assert "Queue Backlog exceeded critical threshold" in incident["message"]
    await receiver.wait_for(lambda: any("Queue Backlog" in str(hit.body) for hit in receiver.hits))
    history = await server.client.get("/api/alerts/incidents", params={"rule": "queue_backlog"})
    assert [item["id"] for item in history.json()["items"]] == [incident["id"]]


async def test_a_composite_rule_opens_when_its_condition_holds(server: Server) -> None:
    await server.rule(
        {
            "name": "busy_and_failing",
            "kind": "composite",
            "condition": "queue_depth >= 100 and job_errors >= 5",
            "breaches_required": 1,
        }
    )
    quiet = await server.until(
        lambda: asyncio.sleep(2.5, result=True),  # a few cycles with one term only
        pushing=lambda: server.push("worker-1", queue_depth=500, job_errors=1),
    )
    assert quiet and await server.open_incidents("busy_and_failing") == []
    [incident] = await server.until(
        lambda: server.open_incidents("busy_and_failing"),
        pushing=lambda: server.push("worker-1", queue_depth=500, job_errors=9),
    )
    assert incident["condition"] == "queue_depth >= 100 and job_errors >= 5"
    assert incident["values"] == {"queue_depth": 500, "job_errors": 9}


async def test_an_absent_rule_opens_when_its_pusher_stops(server: Server) -> None:
    await server.rule(
        {
            "name": "nightly_job",
            "kind": "absent",
            "metric": "job_heartbeat",
            # Far above the half second between beats: on a loaded machine a push answered
            # 429 (the monitor behind) waits its Retry-After, and 3 s was seen to pass
            # between two accepted beats.
            "absent_for": 10,
            "breaches_required": 1,
        }
    )
    for _ in range(4):  # alive: beating every half second
        await server.push("cron", job_heartbeat=1)
        await asyncio.sleep(0.5)
    assert await server.open_incidents("nightly_job") == []
    [incident] = await server.until(  # then it stops
        lambda: server.open_incidents("nightly_job"), pushing=lambda: asyncio.sleep(0)
    )
    assert "Nightly Job has had no sample for" in incident["message"]


async def test_a_split_rule_opens_one_incident_for_the_one_instance_that_breaches(
    server: Server,
) -> None:
    await server.rule(
        {
            "name": "worker_load",
            "metric": "load",
            "critical": 10,
            "split_by": "instance",
            "breaches_required": 1,
        }
    )

    async def both() -> None:
        await server.push("worker-a", load=50)
        await server.push("worker-b", load=1)

    [incident] = await server.until(lambda: server.open_incidents("worker_load"), pushing=both)
    assert incident["instance"] == "worker-a"
    assert "on worker-a" in incident["message"]
    for _ in range(4):  # more cycles: still the one incident
        await both()
        await asyncio.sleep(0.5)
    assert [i["instance"] for i in await server.open_incidents("worker_load")] == ["worker-a"]


async def test_rules_apply_dry_run_then_apply_then_prune(
    server: Server, migrated_sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - name: gateway_latency\n"
        "    metric: gateway_latency\n"
        "    warning: 150\n"
        "    critical: 250\n"
        "  - name: queue_backlog\n"
        "    metric: queue_depth\n"
        "    critical: 500\n",
        encoding="utf-8",
    )

    async def names() -> set[str]:
        return {rule["name"] for rule in (await server.client.get("/api/alerts/rules")).json()}

    before = await names()
    code, output = await in_thread(migrated_sqlite_url, "rules", "apply", str(path), "--dry-run")
    assert code == 0, output
    assert "+ add queue_backlog" in output and "~ change gateway_latency" in output
    assert "Dry run" in output
    assert await names() == before

    code, output = await in_thread(migrated_sqlite_url, "rules", "apply", str(path))
    assert code == 0, output
    await server.until(lambda: _has(server, "queue_backlog"), pushing=lambda: asyncio.sleep(0))
    latency = (await server.client.get("/api/alerts/rules/gateway_latency")).json()
    assert (latency["warning"], latency["critical"]) == (150, 250)

    code, output = await in_thread(migrated_sqlite_url, "rules", "apply", str(path), "--prune")
    assert code == 0, output
    assert "- remove error_rate" in output

    async def pruned() -> bool:
        return await names() == {"gateway_latency", "queue_backlog"}

    await server.until(pruned, pushing=lambda: asyncio.sleep(0))


async def _has(server: Server, name: str) -> bool:
    return (await server.client.get(f"/api/alerts/rules/{name}")).status_code == 200
