"""A delivery killed in the middle is retried within about one delivery lease
(``VIGIL_DELIVERY_LEASE``), not after the five minutes the claim used to last: the lease is
short because it is renewed while a send is under way."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

import pytest

from tests.child import Child, child_process
from tests.notify.receiver import Receiver
from vigil.store import OutboxStatus

from .test_crash import add_channels, all_sent, eventually, receiver, rows

pytestmark = pytest.mark.slow
__all__ = ["receiver"]  # the fixture, shared with the other crash tests

LEASE = 2.0


def vigil_process(url: str) -> AbstractAsyncContextManager[Child]:
    """``crash_main`` with the settings' own delivery policy and a short lease."""
    return child_process(
        "tests.runtime.crash_main", url, "settings", env={"VIGIL_DELIVERY_LEASE": str(LEASE)}
    )


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
