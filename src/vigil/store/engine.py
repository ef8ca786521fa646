"""Engines for both databases, configured the way Vigil needs them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vigil.core.errors import ValidationError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option read by the SQLite "begin" hook: writers take the write lock up front
# (BEGIN IMMEDIATE) so two writers queue on the busy timeout instead of one failing with
# "database is locked" when it upgrades a read lock mid-transaction.
SQLITE_BEGIN = "vigil_sqlite_begin"


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
        _create_owner_only(parsed.database)  # it holds channel URLs and password hashes
        engine = create_async_engine(parsed)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        if driver != "asyncpg":
            raise ValidationError("database_url", "use postgresql+asyncpg://user@host/db")
        return create_async_engine(parsed, pool_pre_ping=True)
    raise ValidationError("database_url", f"unsupported database {backend!r}")


def _create_owner_only(database: str | None) -> None:
    """Create a new SQLite file readable by its owner only (0600) before SQLite creates it
    (0644 less the umask); SQLite gives its -wal and -shm files the same mode. An existing
    file keeps the mode its owner chose; a directory that does not exist is reported later."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(OSError):  # exists already, or cannot be made: SQLite says why
        os.close(os.open(Path(database).expanduser(), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


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
