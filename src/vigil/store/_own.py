"""A connection of the store's own to its SQLite file, outside the pool and SQLAlchemy: the
monitor's reader and the group commit's sample writer (``_base``, ``_samples``) each hold one.
And work run in an aiosqlite connection's thread: a function (``run_in_thread``), or a whole
transaction (``drive``).

Opened when first used, opened afresh after an error, never again once the store is closed:
a use after ``close()`` fails rather than leaving a connection nobody will close. An opening
whose caller is cancelled goes on, for the next use to take; ``close()`` waits for an opening
under way and closes what it made, so once it returns no thread of the connection's is left
to call back into the event loop (which may be closed next).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite


class OwnConnection:
    def __init__(self, connect: Callable[[], Awaitable[aiosqlite.Connection]]) -> None:
        self._connect = connect
        self._connection: aiosqlite.Connection | None = None
        self._pending: asyncio.Future[aiosqlite.Connection] | None = None  # an opening
        self._opening = asyncio.Lock()
        self._closed = False

    async def get(self) -> aiosqlite.Connection:
        """The connection, opened if need be. ``ValueError`` once closed (as aiosqlite's
        own closed connection raises), so callers handle one kind of "closed"."""
        if self._connection is not None:
            return self._connection
        async with self._opening:
            if self._closed:
                raise ValueError("the store is closed")
            if self._connection is None:
                if self._pending is None:
                    self._pending = asyncio.ensure_future(self._connect())
                try:
                    # Shielded: a caller cancelled here leaves the opening to the next.
                    connection = await asyncio.shield(self._pending)
                except asyncio.CancelledError:
                    raise
                except BaseException:
                    self._pending = None  # failed: the next use tries afresh
                    raise
                if self._closed:  # closed meanwhile: ``close`` closes what was made
                    raise ValueError("the store is closed")
                self._connection, self._pending = connection, None
            return self._connection

    async def reset(self) -> None:
        """Close the connection, if open: the next ``get`` opens another."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await _close_quietly(connection)

    async def close(self) -> None:
        """Close it for good, and what an opening under way makes."""
        self._closed = True
        pending = self._pending
        if pending is not None:
            await asyncio.wait([pending])
            self._pending = None  # only now: a close cut short leaves it to the next close
            if not pending.cancelled() and pending.exception() is None:
                await _close_quietly(pending.result())
        await self.reset()


async def connect_own(
    target: str | Path, *, pragmas: Sequence[str], **options: Any
) -> aiosqlite.Connection:
    """An aiosqlite connection (``options`` as ``aiosqlite.connect`` takes them) with each of
    ``pragmas`` run on it; closed again if one fails."""
    connection = await aiosqlite.connect(target, **options)
    try:
        for pragma in pragmas:
            await connection.execute(f"PRAGMA {pragma}")
    except BaseException:
        await connection.close()
        raise
    return connection


_T = TypeVar("_T")


async def run_in_thread(
    connection: aiosqlite.Connection, function: Callable[..., _T], *arguments: Any
) -> _T:
    """``function(the sqlite3 connection, *arguments)`` in ``connection``'s thread: however
    many statements it runs, one hand-off to that thread and back (none when the caller
    runs there already: ``drive``). aiosqlite's ``_execute`` and ``_conn``, as SQLAlchemy's
    aiosqlite adapter uses them (a pinned version)."""
    if driving(connection):
        return function(connection._conn, *arguments)
    run: Any = connection._execute  # untyped in aiosqlite
    result: _T = await run(function, connection._conn, *arguments)
    return result


# -- A whole transaction in the driver's thread ----------------------------------------------
#
# Every statement run through aiosqlite is a round trip between the event loop's thread and
# the connection's: a queue, a wake-up there, a wake-up back here. A monitor cycle that opens
# an incident runs about a dozen statements besides its BEGIN and COMMIT, and on a busy
# machine each round trip waits for both threads to be scheduled. ``drive`` runs a coroutine
# that only talks to the connection (SQLAlchemy's async API over it) in the connection's own
# thread instead: there every statement runs at once (``driving``: the adapter's cursor and
# ``run_in_thread`` call the driver directly), so the coroutine never waits on the event
# loop, and the whole of it is one round trip.

_driver = threading.local()  # ``connection``: the aiosqlite connection this thread drives


def driving(connection: aiosqlite.Connection) -> bool:
    """Whether this thread runs a coroutine on ``connection`` (``drive``): its statements
    go to the driver directly."""
    return getattr(_driver, "connection", None) is connection


class WaitedOnTheLoopError(RuntimeError):
    """A coroutine given to ``drive`` waited on the event loop: a bug in the caller."""


async def drive(connection: aiosqlite.Connection, coroutine: Coroutine[Any, Any, _T]) -> _T:
    """``coroutine``'s result, the coroutine run to its end in ``connection``'s thread in one
    hand-off. It must wait on nothing but ``connection``'s statements (no locks, sleeps or
    other I/O): if it does, it is closed there and ``WaitedOnTheLoopError`` raised.

    Once handed over it runs to its end: a cancellation of the caller waits for that end
    (a few statements), then propagates, so the connection is idle when it goes back to its
    pool; what the coroutine committed stays committed, as after a crash past its commit."""
    context = contextvars.copy_context()  # the caller's, as its task's own steps would see
    running = asyncio.ensure_future(
        run_in_thread(connection, _drive, connection, coroutine, context)
    )
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        raise
    finally:
        if running.done():  # the thread is done with it (or never started it: no warning)
            coroutine.close()


def _drive(
    _sqlite: sqlite3.Connection,
    connection: aiosqlite.Connection,
    coroutine: Coroutine[Any, Any, _T],
    context: contextvars.Context,
) -> _T:
    _driver.connection = connection
    try:
        return context.run(_to_the_end, coroutine)
    finally:
        _driver.connection = None


def _to_the_end(coroutine: Coroutine[Any, Any, _T]) -> _T:
    try:
        coroutine.send(None)
    except StopIteration as finished:
        result: _T = finished.value
        return result
    coroutine.close()
    raise WaitedOnTheLoopError("a coroutine run in the database's thread waited on the event loop")


def fetch_all(connection: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    """One query's rows, as tuples (for ``run_in_thread``)."""
    return connection.execute(sql, parameters).fetchall()


async def _close_quietly(connection: aiosqlite.Connection) -> None:
    with contextlib.suppress(sqlite3.Error, ValueError):
        await connection.close()
