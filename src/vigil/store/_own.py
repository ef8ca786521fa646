"""A connection of the store's own to its SQLite file, outside the pool and SQLAlchemy: the
monitor's reader and the group commit's sample writer (``_base``, ``_samples``) each hold one.

Opened when first used, opened afresh after an error, never again once the store is closed:
a use after ``close()`` fails rather than leaving a connection nobody will close. An opening
cut short by cancellation still closes the connection it was making.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite


class OwnConnection:
    def __init__(self, connect: Callable[[], Awaitable[aiosqlite.Connection]]) -> None:
        self._connect = connect
        self._connection: aiosqlite.Connection | None = None
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
                opening = asyncio.ensure_future(self._connect())
                try:
                    self._connection = await asyncio.shield(opening)
                except asyncio.CancelledError:
                    opening.add_done_callback(_close_when_opened)
                    raise
            return self._connection

    async def reset(self) -> None:
        """Close the connection, if open: the next ``get`` opens another."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await _close_quietly(connection)

    async def close(self) -> None:
        """Close it for good."""
        self._closed = True
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
    many statements it runs, one hand-off to that thread and back. aiosqlite's ``_execute``
    and ``_conn``, as SQLAlchemy's aiosqlite adapter uses them (a pinned version)."""
    run: Any = connection._execute  # untyped in aiosqlite
    result: _T = await run(function, connection._conn, *arguments)
    return result


def fetch_all(connection: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    """One query's rows, as tuples (for ``run_in_thread``)."""
    return connection.execute(sql, parameters).fetchall()


_closing: set[asyncio.Task[None]] = set()  # held until done: a task nobody holds may vanish


def _close_when_opened(opening: asyncio.Future[aiosqlite.Connection]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        closing = asyncio.ensure_future(_close_quietly(opening.result()))
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)


async def _close_quietly(connection: aiosqlite.Connection) -> None:
    with contextlib.suppress(sqlite3.Error, ValueError):
        await connection.close()
