"""Engines for both databases, configured the way Vigil needs them."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiosqlite
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

from vigil.core.errors import ValidationError
from vigil.store._own import driving, run_in_thread

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option read by the SQLite "begin" hook: writers take the write lock up front
# (BEGIN IMMEDIATE) so two writers queue on the busy timeout instead of one failing with
# "database is locked" when it upgrades a read lock mid-transaction.
SQLITE_BEGIN = "vigil_sqlite_begin"
_T = TypeVar("_T")


def create_engine(url: str) -> AsyncEngine:
    """An async engine for a ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URL."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError and ValueError alike
        raise ValidationError("database_url", f"is not a database URL: {exc}") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        if driver != "aiosqlite":
            raise ValidationError("database_url", "use sqlite+aiosqlite:///path/to/vigil.db")
        # In memory, each connection has a database of its own (or one shared cache, without
        # WAL): Vigil's tasks each hold a connection and a transaction of their own.
        path = sqlite_path(parsed.database)
        if path is None or parsed.query.get("mode") == "memory":
            raise ValidationError(
                "database_url",
                "is an in-memory SQLite database, which Vigil's monitor, notifier and web "
                "server cannot share: give a file, e.g. sqlite+aiosqlite:///vigil.db "
                "(a temporary directory's in tests)",
            )
        _create_owner_only(path)  # it holds channel URLs and password hashes
        engine = create_async_engine(parsed, module=OneHopDbapi(aiosqlite, sqlite3))
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        if driver != "asyncpg":
            raise ValidationError("database_url", "use postgresql+asyncpg://user@host/db")
        return create_async_engine(parsed, pool_pre_ping=True)
    raise ValidationError("database_url", f"unsupported database {backend!r}")


def sqlite_path(database: str | None) -> Path | None:
    """The file a SQLite URL's database names, absolute: its path, or a ``file:`` URI's path
    (percent-decoded; its query is SQLite's). ``None`` for an in-memory database. Relative
    to the working directory, as SQLite opens it: ``~`` is not the home directory."""
    if database and database.startswith("file:"):
        database = unquote(urlsplit(database).path)
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


def _create_owner_only(path: Path) -> None:
    """Create a new SQLite file readable by its owner only (0600) before SQLite creates it
    (0644 less the umask); SQLite gives its -wal and -shm files the same mode. An existing
    file keeps the mode its owner chose; a directory that does not exist is reported later."""
    with contextlib.suppress(OSError):  # exists already, or cannot be made: SQLite says why
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (the "begin" hook below) own transactions instead of the driver,
        # which would otherwise begin lazily and never for DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


# -- SQLite statements in one hand-off each -------------------------------------------------
#
# aiosqlite runs the sqlite3 connection in a thread of its own; SQLAlchemy's adapter hands
# every statement to it four times (open a cursor, execute, fetch, close), each a round trip
# through a queue and the event loop. On a loaded machine each round trip waits for both
# threads to be scheduled, and a monitor cycle that opens an incident runs some twenty
# statements before its notification can go out. These classes run the four steps in one
# hand-off (the results are fetched at once, as SQLAlchemy's buffered cursor did anyway).
# They hand the work over with ``_own.run_in_thread`` (aiosqlite's ``_execute`` and
# ``_conn``, as SQLAlchemy's own adapter uses ``_tx`` and ``_conn``): pinned versions of
# both, and tests/store run on this path. Inside a transaction that runs in the driver's
# thread as a whole (``_own.drive``, the store's ``_write_all``), the statements, the commit
# and the rollback go to the driver at once: ``_run`` then completes without waiting.


def _run_in_driver_thread(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, int, int | None, list[Any]]:
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one hand-off to the driver's thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no cursor opened in the thread yet
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # the statement's lives in the thread
        self._rows = deque()
        self._soft_closed_memoized = EMPTY_DICT
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]  # None before an insert

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        return None

    async def _async_soft_close(self) -> None:
        return None  # the thread's cursor is closed already; the rows stay buffered

    def close(self) -> None:
        self._rows.clear()

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        found = await run_in_driver(
            self._adapt_connection, _run_in_driver_thread, operation, parameters, many
        )
        self._description, self._rowcount, self._lastrowid, rows = found
        self._rows = deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._run(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._run(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    # ``_settled``: committed in the driver's thread (``_own.drive``) and used for nothing
    # since, so the pool's ROLLBACK as it takes the connection back has nothing to do.
    __slots__ = ("_settled",)
    _cursor_cls = OneHopCursor

    def __init__(self, *arguments: Any) -> None:
        super().__init__(*arguments)
        self._settled = False

    def commit(self) -> None:
        self._end("commit")
        self._settled = driving(self._connection)  # type: ignore[arg-type]  # an aiosqlite one

    def rollback(self) -> None:
        if not self._settled:  # else no hand-off for nothing
            self._end("rollback")

    def _end(self, how: str) -> None:
        self._settled = False
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        if not driving(connection):
            getattr(super(), how)()
            return
        try:  # in the driver's thread already: at once
            getattr(connection._conn, how)()
        except Exception as error:
            self._handle_exception(error)


async def run_in_driver(adapted: Any, function: Callable[..., _T], *arguments: Any) -> _T:
    """``run_in_thread`` for a connection of the engine's pool (SQLAlchemy's adapter of it),
    taking the adapter's mutex as its own statements do."""
    adapted._settled = False
    connection: aiosqlite.Connection = adapted._connection
    if driving(connection):
        return function(connection._conn, *arguments)
    async with adapted._execute_mutex:
        return await run_in_thread(connection, function, *arguments)


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite module, its connections using ``OneHopCursor``."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)
