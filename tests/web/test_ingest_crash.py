"""Crash test for group commit: a real server SIGKILLed in the middle of a push flood. After a
restart, every sample a pusher was answered 2xx for is in the database: a push is answered
only once the transaction holding it has committed."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.child import child_process
from vigil.store import Store

pytestmark = pytest.mark.slow

PUSHERS = 6
BATCH = 50
ACKNOWLEDGED_BEFORE_KILL = 60  # pushes answered 200 before the kill, at least
PATIENCE = 120.0  # generous: reached only when something is broken


async def stored_values(url: str) -> set[tuple[str, float]]:
    now = datetime.now(UTC)
    async with await Store.open(url) as store:
        chunks = store.sample_chunks(
            start=now - timedelta(days=1), end=now + timedelta(days=1), metrics=["crash.pushed"]
        )
        return {(instance, value) async for rows in chunks for _, _, instance, value in rows}


async def test_every_acknowledged_sample_survives_a_sigkill_during_a_push_flood(
    migrated_url: str,
) -> None:
    acknowledged: set[tuple[str, float]] = set()
    answered = 0
    enough = asyncio.Event()
    kill_at = ACKNOWLEDGED_BEFORE_KILL + random.randrange(40)  # at a random point of the flood

    async def pusher(port: int, token: str, name: str) -> None:
        nonlocal answered
        sequence = 0
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while True:
                values = [float(sequence + n) for n in range(BATCH)]
                sequence += BATCH
                body = {
                    "instance": name,
                    "samples": [{"metric": "crash.pushed", "value": v} for v in values],
                }
                try:
                    response = await client.post("/api/ingest", json=body, headers=headers)
                except httpx.TransportError:
                    return  # the server is gone: this push was never acknowledged
                if response.status_code == 200:
                    acknowledged.update((name, value) for value in values)
                    answered += 1
                    if answered >= kill_at:
                        enough.set()
                else:
                    assert response.status_code == 429, response.text  # shed: not stored

    async with child_process("tests.web.ingest_crash_main", migrated_url) as server:
        port, token = (await server.line("listening")).split()
        pushers = [
            asyncio.create_task(pusher(int(port), token, f"pusher-{n}")) for n in range(PUSHERS)
        ]
        await asyncio.wait_for(enough.wait(), PATIENCE)
        await server.kill()  # pushes are in flight: some acknowledged, some not yet
        await asyncio.wait_for(asyncio.gather(*pushers), PATIENCE)

    assert answered >= kill_at
    stored = await stored_values(migrated_url)
    missing = acknowledged - stored
    assert not missing, f"{len(missing)} acknowledged samples lost, e.g. {sorted(missing)[:5]}"
    # Unacknowledged pushes may or may not have been stored, never in part: batches are whole.
    for name in {name for name, _ in stored}:
        values = sorted(value for who, value in stored if who == name)
        assert len(values) % BATCH == 0

    # And the database works on after the crash: a restarted server takes pushes again.
    async with child_process("tests.web.ingest_crash_main", migrated_url) as server:
        port, token = (await server.line("listening")).split()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            body = {"instance": "after", "samples": [{"metric": "crash.pushed", "value": 1.0}]}
            response = await client.post(
                "/api/ingest", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
    assert ("after", 1.0) in await stored_values(migrated_url)
