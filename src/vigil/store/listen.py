"""When to look at the event log again (``Store.watch_events()``).

Other processes (other instances, the CLI) append events too. With PostgreSQL every commit
that appends events sends a NOTIFY (``StoreBase._append_events``); a watch LISTENs for it on a
connection of its own and wakes at once, and looks every ``recheck`` seconds in any case (a
notification lost with its connection costs that much). With a SQLite file every process that
appends events moves the stamp of a signal file beside the database after its commit
(``StoreBase.log_version``); a watch looks at that stamp every ``poll`` seconds (a system call,
no query) and wakes when it moved, and every ``recheck`` seconds in any case (a process killed
between its commit and its stamp costs that much). Otherwise, or while LISTEN cannot be set
up, it simply wakes every ``poll`` seconds. The log stays the truth: a wake-up only says "read
it now".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any

from sqlalchemy.engine import URL

from vigil.store.leader import driver_dsn

logger = logging.getLogger(__name__)

EVENTS_CHANNEL = "vigil_events"
POLL_SECONDS = 1.0
RECHECK_SECONDS = 10.0
CONNECT_TIMEOUT = 10.0


class EventWatch:
    """``async with store.watch_events() as watch: async for _ in watch: ...`` - each step
    returns when the log may hold new events. It never ends by itself; leaving the ``async
    with`` closes its connection."""

    def __init__(
        self,
        url: URL,
        *,
        poll: float = POLL_SECONDS,
        recheck: float = RECHECK_SECONDS,
        version: Callable[[], Hashable | None] | None = None,
    ) -> None:
        """``version``: the store's ``log_version`` (without PostgreSQL: a wake-up only when
        it changed, or after ``recheck``); ``None`` or a ``None`` answer: every ``poll``."""
        self._dsn = driver_dsn(url) if url.get_backend_name() == "postgresql" else None
        self._poll = poll
        self._recheck = recheck
        self._version = version if self._dsn is None else None
        self._seen: Hashable | None = None
        self._looked: float | None = None  # monotonic time of the last wake-up
        self._connection: Any = None
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()

    @property
    def listening(self) -> bool:
        """A LISTEN connection is open (PostgreSQL only)."""
        return self._connection is not None and not self._lost.is_set()

    async def __aenter__(self) -> EventWatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    def __aiter__(self) -> EventWatch:
        return self

    async def __anext__(self) -> None:
        if self._version is not None:
            await self._stamp_moved()
            return
        if self._dsn is not None and self._connection is None:
            if await self._listen():
                return  # events stored while nobody listened: look now
            await asyncio.sleep(self._poll)
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # arrives just as the wake-up does, and the watch's reader would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._recheck if self.listening else self._poll):
                await self._wake.wait()
        self._wake.clear()
        if self._lost.is_set():
            await self._close()  # the next step listens again

    async def _stamp_moved(self) -> None:
        """Return at once the first time (what was stored while nobody watched), then when
        the log's version moved (read before the caller reads the log, so nothing appended
        after the read is missed) or ``recheck`` seconds after the last wake-up."""
        assert self._version is not None
        if self._looked is not None:
            while True:
                await asyncio.sleep(self._poll)
                current = self._version()
                if current is None or current != self._seen:
                    break
                if time.monotonic() - self._looked >= self._recheck:
                    break
            self._seen = current
        else:
            self._seen = self._version()
        self._looked = time.monotonic()

    async def _listen(self) -> bool:
        import asyncpg

        self._lost.clear()
        try:
            connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("cannot LISTEN for events (%s): trying again", exc)
            return False
        try:
            connection.add_termination_listener(self._on_lost)
            await connection.add_listener(EVENTS_CHANNEL, self._on_event)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("cannot LISTEN for events (%s): trying again", exc)
            with contextlib.suppress(Exception):
                await connection.close(timeout=CONNECT_TIMEOUT)
            return False
        self._connection = connection
        return True

    def _on_event(self, *_: object) -> None:
        self._wake.set()

    def _on_lost(self, *_: object) -> None:
        self._lost.set()
        self._wake.set()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=CONNECT_TIMEOUT)
