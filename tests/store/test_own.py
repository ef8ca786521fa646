"""The store's own SQLite connections (the monitor's reader, the group commit's writer): opened
when first used, afresh after an error, never again once the store is closed, and never left
open by an opening that was cancelled or that a close overtook."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from typing import cast

import pytest
from sqlalchemy import event

from vigil.core.samples import Sample
from vigil.store import Store
from vigil.store._own import OwnConnection
from vigil.store.errors import VigilStorageError

from .conftest import T0


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def counting(made: list[FakeConnection], gate: asyncio.Event | None = None) -> OwnConnection:
    """An ``OwnConnection`` of fakes, each appended to ``made``, made once ``gate`` is set."""

    async def connect() -> FakeConnection:
        if gate is not None:
            await gate.wait()
        made.append(FakeConnection())
        return made[-1]

    return OwnConnection(connect)  # type: ignore[arg-type]


async def cut_short(own: OwnConnection) -> None:
    """A use of ``own`` cancelled once its opening has begun (and waits on its gate)."""
    getting = asyncio.ensure_future(own.get())
    await asyncio.sleep(0)
    getting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getting


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


async def test_an_opening_cut_short_is_taken_by_the_next_use() -> None:
    made: list[FakeConnection] = []
    gate = asyncio.Event()
    own = counting(made, gate)
    await cut_short(own)
    gate.set()  # the connection is made after all ...
    assert cast(object, await own.get()) is made[0]  # ... and the next use takes it: one connection
    assert len(made) == 1 and not made[0].closed
    await own.close()
    assert made[0].closed


async def test_closing_during_an_opening_closes_what_it_makes_before_returning() -> None:
    made: list[FakeConnection] = []
    gate = asyncio.Event()
    own = counting(made, gate)
    getting = asyncio.ensure_future(own.get())
    await asyncio.sleep(0)  # the opening has begun and waits on the gate
    closing = asyncio.ensure_future(own.close())
    await asyncio.sleep(0)
    assert not closing.done()  # it waits for the opening under way
    gate.set()
    await closing
    assert len(made) == 1 and made[0].closed  # closed by the time close() returned
    with pytest.raises(ValueError, match="closed"):
        await getting  # its caller gets the store's "closed", not a closed connection


async def test_closing_after_an_opening_cut_short_closes_what_it_made() -> None:
    made: list[FakeConnection] = []
    gate = asyncio.Event()
    own = counting(made, gate)
    await cut_short(own)
    gate.set()
    await own.close()  # nobody took the connection: close() does not leave it open
    assert len(made) == 1 and made[0].closed


async def test_a_failed_opening_is_tried_afresh_by_the_next_use() -> None:
    attempts: list[int] = []

    async def connect() -> FakeConnection:
        attempts.append(1)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("unable to open database file")
        return FakeConnection()

    own = OwnConnection(connect)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        await own.get()
    connection = await own.get()
    assert len(attempts) == 2 and not cast(FakeConnection, connection).closed


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


async def test_a_closed_store_refuses_its_pools_work_too(migrated_url: str) -> None:
    """Reads and writes through the engine (every one on PostgreSQL) refuse once closed:
    the disposed engine would otherwise open a new pool that nobody closes."""
    store = await Store.open(migrated_url)
    assert await store.active_incidents() == []
    await store.close()
    opened: list[object] = []
    event.listen(store._engine.sync_engine, "connect", lambda *arguments: opened.append(arguments))
    with pytest.raises(VigilStorageError, match="the store is closed"):
        await store.active_incidents()
    with pytest.raises(VigilStorageError, match="the store is closed"):
        await store.update_rule("gateway_latency", {"warning": 120}, by="test", now=T0)
    with pytest.raises(VigilStorageError, match="the store is closed"):
        await store.events_after(0, limit=10)
    assert opened == []  # no connection was opened again
