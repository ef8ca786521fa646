"""Crash tests: a real Vigil process, SIGKILLed between the incident's commit and its delivery,
and again in the middle of a delivery. After a restart every notification is delivered, and
the receiver counts no more than one copy per row marked sent (by the idempotency key); a row
marked sent before the crash is never delivered again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from tests.child import Child, child_process
from vigil.runtime.vigil import utcnow
from vigil.store import OutboxItem, OutboxStatus, Store

from ..notify.receiver import PATIENCE, Receiver, serving

pytestmark = pytest.mark.slow


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


def vigil_process(url: str, mode: str) -> AbstractAsyncContextManager[Child]:
    return child_process("tests.runtime.crash_main", url, mode)


async def rows(url: str) -> list[OutboxItem]:
    async with await Store.open(url) as store:
        return await store.list_notifications()


async def eventually(url: str, condition: Callable[[list[OutboxItem]], bool]) -> list[OutboxItem]:
    """The outbox once ``condition`` holds, read from the database as another process would."""

    async def poll() -> list[OutboxItem]:
        # Another process writes the database: no event here to wait on, so poll it.
        while not condition(found := await rows(url)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return found

    return await asyncio.wait_for(poll(), PATIENCE)


def all_sent(items: list[OutboxItem]) -> bool:
    return bool(items) and all(item.status is OutboxStatus.SENT for item in items)


async def add_channels(url: str, receiver: Receiver, *paths: str) -> None:
    async with await Store.open(url) as store:
        for path in paths:
            name = path.strip("/")
            await store.add_channel({"name": name, "url": receiver.url(path)}, now=utcnow())


async def test_killed_after_the_commit_and_before_any_delivery(
    migrated_url: str, receiver: Receiver
) -> None:
    await add_channels(migrated_url, receiver, "/ops")
    async with vigil_process(migrated_url, "gate") as first:
        key = await first.line("held")  # the incident and its row are committed
        await first.kill()
    [row] = await rows(migrated_url)
    assert (row.idempotency_key, row.status, row.attempts) == (key, OutboxStatus.PENDING, 1)
    assert receiver.hits == []

    async with vigil_process(migrated_url, "send"):
        # the claim of the dead process runs out (lease 3 s); the new leader delivers
        [row] = await eventually(migrated_url, all_sent)
    assert row.idempotency_key == key and row.attempts == 2
    assert receiver.copies() == {key: 1}
    assert receiver.hits[0].body["title"] == "[CRITICAL] Gateway Latency: incident opened"


async def test_killed_in_the_middle_of_a_delivery(migrated_url: str, receiver: Receiver) -> None:
    # /fast answers at once; /held receives the request and does not answer until the
    # process that sent it has been killed.
    receiver.hold["/held"] = asyncio.Event()
    await add_channels(migrated_url, receiver, "/fast", "/held")
    async with vigil_process(migrated_url, "send") as first:
        await receiver.wait_for(lambda: len(receiver.on("/held")) == 1)
        before = await eventually(
            migrated_url,
            lambda items: any(i.channel == "fast" and i.status is OutboxStatus.SENT for i in items),
        )
        await first.kill()
    receiver.hold["/held"].set()
    sent_before = {i.idempotency_key for i in before if i.status is OutboxStatus.SENT}
    [interrupted] = [i for i in before if i.channel == "held"]
    assert interrupted.status is OutboxStatus.PENDING  # it reached the receiver, unrecorded
    arrived_before = len(receiver.hits)

    async with vigil_process(migrated_url, "send"):
        after = await eventually(migrated_url, lambda items: len(items) == 2 and all_sent(items))

    again = receiver.hits[arrived_before:]
    # only the interrupted delivery went out again, under the same key (more than once only if
    # a retry was needed: a slow machine can time a send out; the receiver deduplicates)
    assert again and {hit.key for hit in again} == {interrupted.idempotency_key}
    assert not sent_before & {hit.key for hit in again}
    copies = receiver.copies()
    assert set(copies) == {item.idempotency_key for item in after}  # one key per sent row
    assert copies[interrupted.idempotency_key] >= 2  # at least once: the receiver deduplicates
    assert all(copies[key] == 1 for key in sent_before)
