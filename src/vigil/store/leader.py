"""Who evaluates: exactly one monitor per database (``Store.leadership()``).

SQLite: an OS lock on a file beside the database; a second monitor is refused with a clear
message. PostgreSQL: a session advisory lock held on a dedicated connection; the server
releases it when that connection dies, so a follower takes over at its next attempt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy.engine import URL, make_url

from vigil.core.errors import VigilError
from vigil.store.engine import sqlite_path

logger = logging.getLogger(__name__)

LOCK_KEY = int.from_bytes(hashlib.sha256(b"vigil:monitor").digest()[:8], "big", signed=True)
CHECK_TIMEOUT = 10.0


class MonitorRunningError(VigilError):
    """Another monitor already owns this SQLite database."""


class Leadership(Protocol):
    """What the monitor and the dispatcher ask before they act."""

    @property
    def is_leader(self) -> bool: ...

    async def try_acquire(self) -> bool:
        """Become the leader if nobody is; True when this instance leads (now or already)."""
        ...

    async def still_leader(self) -> bool:
        """Check that leadership still holds (its connection is alive)."""
        ...

    async def release(self) -> None: ...


class SoleLeadership:
    """An in-memory database: nothing to share, always the leader."""

    is_leader = True

    async def try_acquire(self) -> bool:
        return True

    async def still_leader(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class FileLeadership:
    """One monitor per SQLite file. Refuses, never waits: a second monitor is a mistake."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".monitor.lock")
        self._handle: IO[str] | None = None

    @property
    def is_leader(self) -> bool:
        return self._handle is not None

    async def try_acquire(self) -> bool:
        if self._handle is not None:
            return True
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise MonitorRunningError(
                f"another Vigil monitor (pid {owner}) is already running on "
                f"{self.database}: SQLite allows one monitor per "
                "database file. Stop it, or use PostgreSQL to run several instances. "
                "(CLI commands such as `vigil users` and `vigil rules` work beside it.)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return True

    async def still_leader(self) -> bool:
        return self._handle is not None

    async def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class PostgresLeadership:
    """A session advisory lock on a connection of its own (never a pooled one)."""

    def __init__(self, url: str | URL, *, key: int = LOCK_KEY) -> None:
        self._dsn = driver_dsn(url)
        self._key = key
        self._connection: Any = None
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    async def try_acquire(self) -> bool:
        if self._leader:
            return await self.still_leader()
        import asyncpg

        try:
            if self._connection is None or self._connection.is_closed():
                self._connection = await asyncpg.connect(self._dsn, timeout=CHECK_TIMEOUT)
            self._leader = bool(
                await self._connection.fetchval(
                    "SELECT pg_try_advisory_lock($1)", self._key, timeout=CHECK_TIMEOUT
                )
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("leader election could not reach PostgreSQL: %s", exc)
            await self._drop()
        return self._leader

    async def still_leader(self) -> bool:
        if not self._leader:
            return False
        import asyncpg

        try:
            await self._connection.fetchval("SELECT 1", timeout=CHECK_TIMEOUT)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("lost the leader's connection to PostgreSQL: %s", exc)
            await self._drop()
        return self._leader

    async def release(self) -> None:
        if self._connection is not None and self._leader:
            with contextlib.suppress(Exception):
                await self._connection.execute(
                    "SELECT pg_advisory_unlock($1)", self._key, timeout=CHECK_TIMEOUT
                )
        await self._drop()

    async def _drop(self) -> None:
        self._leader = False
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=CHECK_TIMEOUT)


def leadership_for(url: str | URL) -> Leadership:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresLeadership(url)
    path = sqlite_path(parsed.database)
    return SoleLeadership() if path is None else FileLeadership(path)


def driver_dsn(url: str | URL) -> str:
    """asyncpg's own DSN for a ``postgresql+asyncpg`` URL: a connection of its own, outside
    SQLAlchemy's pool."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
