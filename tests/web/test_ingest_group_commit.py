"""Push ingestion by group commit, through the API on SQLite and PostgreSQL: concurrent
pushes share transactions and every acknowledged sample is stored; a full buffer is 429 with
Retry-After, before the body is read when nothing fits and after it when the batch does not;
a failed transaction is 503 for exactly its pushes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx

from vigil.core import Sample
from vigil.store import VigilStorageError

from .support import LATENCY, T0, Api, running_api, wait_until

GENEROUS = {"ingest_rate": 1000.0, "ingest_volume": 1_000_000.0}


async def push(api: Api, instance: str, values: Sequence[float]) -> httpx.Response:
    samples = [{"metric": "pushed.value", "value": value} for value in values]
    return await api.client.post(
        "/api/ingest",
        json={"instance": instance, "samples": samples},
        headers=api.auth("ingest"),
    )


async def stored(api: Api) -> list[tuple[str, float]]:
    chunks = api.vigil.store.sample_chunks(
        start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), metrics=["pushed.value"]
    )
    found = [(instance, value) async for rows in chunks for _, _, instance, value in rows]
    return sorted(found)


async def ingest_health(api: Api) -> dict[str, Any]:
    details: dict[str, Any] = (await api.get("/api/health")).json()["details"]["ingest"]
    return details


class HeldWrites:
    """The group commit's write held until ``release``; failing while ``failing`` is set."""

    def __init__(self, api: Api) -> None:
        self.ingestion = api.vigil.ingestion
        self.plain = self.ingestion.write
        self.gate = asyncio.Event()
        self.failing = False
        self.started = 0
        self.ingestion.write = self.write

    async def write(self, batch: Sequence[Sample]) -> None:
        self.started += 1
        await self.gate.wait()
        if self.failing:
            raise VigilStorageError("storing pushed samples failed: the disk is full")
        await self.plain(batch)

    def release(self) -> None:
        self.gate.set()


async def test_concurrent_pushes_share_transactions_and_every_acknowledged_sample_is_stored(
    migrated_url: str,
) -> None:
    changes = {**GENEROUS, "ingest_flush_interval": 1.0}
    async with running_api(migrated_url, settings_changes=changes) as api:
        pushes = 40
        answers = await asyncio.gather(
            *(push(api, f"shard-{n}", [float(k) for k in range(25)]) for n in range(pushes))
        )
        assert [(a.status_code, a.json()) for a in answers] == [(200, {"accepted": 25})] * pushes
        # Acknowledged means committed: every sample is there, read as another client would.
        assert await stored(api) == sorted(
            (f"shard-{n}", float(k)) for n in range(pushes) for k in range(25)
        )
        health = await ingest_health(api)
        assert (health["flushed_pushes"], health["flushed_samples"]) == (pushes, pushes * 25)
        # The first push is written at once, the others share what follows (one transaction
        # a second at most here): far fewer transactions than pushes.
        assert 1 <= health["flushes"] <= pushes // 4, health
        assert (health["buffered_samples"], health["buffer_capacity"]) == (0, 50_000)


async def test_pushed_samples_are_what_the_next_cycle_evaluates(migrated_url: str) -> None:
    async with running_api(migrated_url, settings_changes=GENEROUS) as api:
        body = {"instance": "shard-0", "samples": [{"metric": LATENCY, "value": 250.0}]}
        response = await api.client.post("/api/ingest", json=body, headers=api.auth("ingest"))
        assert response.status_code == 200
        await api.cycle({})  # reads the interval's samples back from the database
        values = {item["metric"]: item for item in (await api.get("/api/metrics")).json()}
        assert (values[LATENCY]["value"], values[LATENCY]["level"]) == (250.0, "critical")


async def test_a_full_buffer_is_429_with_retry_after_and_keeps_nothing(migrated_url: str) -> None:
    changes = {**GENEROUS, "ingest_buffer": 10_000}
    async with running_api(migrated_url, settings_changes=changes) as api:
        held = HeldWrites(api)
        first = asyncio.create_task(push(api, "first", [float(n) for n in range(6000)]))
        await wait_until(lambda: held.started == 1)  # its transaction is under way, held
        assert not first.done()

        # 6,000 waiting + 5,000 do not fit: refused once read, nothing of it kept.
        too_many = await push(api, "second", [float(n) for n in range(5000)])
        assert too_many.status_code == 429, too_many.text
        assert int(too_many.headers["Retry-After"]) >= 1
        assert "ingest buffer" in too_many.json()["error"]["message"]

        fits = asyncio.create_task(push(api, "third", [float(n) for n in range(4000)]))
        await wait_until(lambda: api.vigil.ingestion.buffered == 10_000)
        # Full: turned away before its body is read, and the connection closed.
        full = await push(api, "fourth", [1.0])
        assert full.status_code == 429, full.text
        assert int(full.headers["Retry-After"]) >= 1
        assert full.headers["Connection"] == "close"
        assert "ingest buffer is full" in full.json()["error"]["message"]

        held.release()
        assert (await first).status_code == 200
        assert (await fits).status_code == 200
        assert (await push(api, "fifth", [2.0])).status_code == 200  # room again
        assert {instance for instance, _ in await stored(api)} == {"first", "third", "fifth"}
        health = await ingest_health(api)
        assert health["shed_requests"] == 2 and health["buffered_samples"] == 0


async def test_a_failed_transaction_is_503_for_its_pushes_only(migrated_url: str) -> None:
    async with running_api(migrated_url, settings_changes=GENEROUS) as api:
        held = HeldWrites(api)
        held.failing = True
        doomed = [asyncio.create_task(push(api, f"doomed-{n}", [1.0])) for n in range(3)]
        await wait_until(lambda: held.started >= 1)
        held.release()
        for answer in await asyncio.gather(*doomed):
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "storage_unavailable"
        held.failing = False
        assert (await push(api, "after", [1.0])).status_code == 200
        assert await stored(api) == [("after", 1.0)]
        assert (await ingest_health(api))["failed_flushes"] >= 1


async def test_stopping_writes_what_was_pushed(migrated_url: str) -> None:
    changes = {**GENEROUS, "ingest_flush_interval": 10.0}
    async with running_api(migrated_url, settings_changes=changes) as api:
        assert (await push(api, "first", [1.0])).status_code == 200  # written at once
        second = asyncio.create_task(push(api, "second", [2.0]))  # waits out the 10 s
        await wait_until(lambda: api.vigil.ingestion.buffered == 1)
        await api.vigil.aclose()  # ... or the stop
        assert (await second).status_code == 200
        await api.vigil.start()
        assert await stored(api) == [("first", 1.0), ("second", 2.0)]
