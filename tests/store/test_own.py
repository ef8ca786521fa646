"""The store's own SQLite connections (the monitor's reader, the group commit's writer): opened
when first used, afresh after an error, never again once the store is closed, and never left
open by an opening that was cancelled."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from vigil.core.samples import Sample
from vigil.store import Store
from vigil.store._own import OwnConnection
from vigil.store.errors import VigilStorageError

from .conftest import T0


class FakeConnection:
    def __init__(self, closing: asyncio.Event) -> None:
        self.closed = False
        self._closing = closing

    async def close(self) -> None:
        self.closed = True
        self._closing.set()


def counting(
    made: list[FakeConnection],
    gate: asyncio.Event | None = None,
    closing: asyncio.Event | None = None,
) -> OwnConnection:
    """An ``OwnConnection`` of fakes, each appended to ``made``, made once ``gate`` is set;
    ``closing`` is set when one is closed."""

    async def connect() -> FakeConnection:
        if gate is not None:
            await gate.wait()
        made.append(FakeConnection(closing or asyncio.Event()))
        return made[-1]

    return OwnConnection(connect)  # type: ignore[arg-type]


async def test_one_connection_is_opened_when_first_used_and_again_after_a_reset() -> None:
    made: list[FakeConnection] = []
    own = counting(made)
    first, again = await own.get(), await own.get()
    assert first is again and len(made) == 1
    await own.reset()
    assert made[0].closed
    await own.get()
    assert len(made) == 2 and not made[1].closed


async def test_once_closed_it_is_never_opened_again() -> None:
    made: list[FakeConnection] = []
    own = counting(made)
    await own.get()
    await own.close()
    with pytest.raises(ValueError, match="closed"):
        await own.get()
    assert len(made) == 1 and made[0].closed


async def test_an_opening_cut_short_closes_the_connection_it_was_making() -> None:
    made: list[FakeConnection] = []
    gate, closing = asyncio.Event(), asyncio.Event()
    own = counting(made, gate, closing)
    getting = asyncio.ensure_future(own.get())
    await asyncio.sleep(0)  # the opening has begun and waits on the gate
    getting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getting
    gate.set()  # the connection is made after all ...
    async with asyncio.timeout(30):
        await closing.wait()  # ... and closed by nobody but the opening's callback
    assert len(made) == 1 and made[0].closed
    await own.get()  # the next use opens its own
    assert len(made) == 2 and not made[1].closed


async def test_a_sqlite_store_closed_refuses_its_own_connections_work(
    migrated_sqlite_url: str,
) -> None:
    store = await Store.open(migrated_sqlite_url)
    sample = Sample("bot", "gateway_latency", T0, 1.0)
    await store.write_samples([sample])
    assert await store.latest_readings(since=T0 - timedelta(minutes=1)) == {
        "gateway_latency": {"bot": (1.0, T0)}
    }
    await store.close()
    with pytest.raises(VigilStorageError, match="closed"):
        await store.write_samples([sample])
    with pytest.raises(VigilStorageError, match="closed"):
        await store.latest_readings(since=T0 - timedelta(minutes=1))
