"""A delivery killed in the middle is retried within about one delivery lease
(``VIGIL_DELIVERY_LEASE``), not after the five minutes the claim used to last: the lease is
short because it is renewed while a send is under way."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.notify.receiver import Receiver
from vigil.store import OutboxStatus

from .test_crash import ROOT, Child, add_channels, all_sent, eventually, receiver, rows

pytestmark = pytest.mark.slow
__all__ = ["receiver"]  # the fixture, shared with the other crash tests

LEASE = 2.0


@asynccontextmanager
async def vigil_process(url: str) -> AsyncIterator[Child]:
    """``crash_main`` with the settings' own delivery policy and a short lease."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.runtime.crash_main",
        url,
        "settings",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "VIGIL_DELIVERY_LEASE": str(LEASE)},
        stdout=asyncio.subprocess.PIPE,
    )
    child = Child(process)
    try:
        await child.line("started")
        yield child
    finally:
        await child.kill()


async def test_a_delivery_killed_mid_send_is_retried_within_the_lease(
    migrated_url: str, receiver: Receiver
) -> None:
    receiver.hold["/held"] = asyncio.Event()  # received, never answered while the sender lives
    await add_channels(migrated_url, receiver, "/held")
    async with vigil_process(migrated_url) as first:
        await receiver.wait_for(lambda: len(receiver.on("/held")) == 1)
        await first.kill()
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    receiver.hold["/held"].set()
    [interrupted] = await rows(migrated_url)
    assert (interrupted.status, interrupted.attempts) == (OutboxStatus.PENDING, 1)

    async with vigil_process(migrated_url):
        [row] = await eventually(migrated_url, all_sent)
    waited = loop.time() - killed_at
    assert row.idempotency_key == interrupted.idempotency_key and row.attempts == 2
    assert len(receiver.on("/held")) == 2  # sent again, under the same key
    # About one lease, plus a process start on a busy machine; never the old 300 s claim.
    assert waited < 20 * LEASE, waited
