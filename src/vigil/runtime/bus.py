"""The in-process event bus: every stored event, in id order, to every subscriber.

Publishing appends to one bounded ring of recent events and wakes the subscribers; each
subscriber keeps its own cursor. A slow subscriber therefore delays nobody and costs no
memory, and one that falls behind the ring catches up from the event log (the truth).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Sequence

from vigil.core import Event
from vigil.runtime.ports import EventLog

logger = logging.getLogger(__name__)

CATCH_UP_BATCH = 500


Listener = Callable[[Event], None]


class EventBus:
    def __init__(
        self,
        log: EventLog,
        *,
        last_id: int = 0,
        buffer: int = 1024,
        version: Callable[[], Hashable | None] | None = None,
    ) -> None:
        """``version``: the log's ``Store.log_version``, so that ``catch_up`` reads the log
        only when something may have been appended to it since it last did."""
        self._log = log
        self._version = version
        self._read_at: Hashable | None = None  # the version when the log was last read
        self._recent: deque[Event] = deque(maxlen=buffer)
        self._last_id = last_id
        self._floor = last_id  # the ring holds every event with floor < id <= last_id
        self._changed = asyncio.Event()
        self._closed = False
        self._listeners: list[Listener] = []

    @property
    def last_id(self) -> int:
        return self._last_id

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` synchronously for each new event, before subscribers wake."""
        self._listeners.append(listener)

    def publish(self, events: Iterable[Event]) -> int:
        """Take in stored events (with ids). Ids already seen are ignored, so the same event
        may arrive both from this process and from the log. Returns how many were new."""
        added = 0
        for event in events:
            if event.id is None:
                raise ValueError("only stored events (with an id) can be published")
            if event.id <= self._last_id:
                continue
            if len(self._recent) == self._recent.maxlen:
                self._floor = self._recent[0].id or self._floor
            self._recent.append(event)
            self._last_id = event.id
            added += 1
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    logger.exception("event listener %r failed on event %s", listener, event.id)
        if added:
            waiter, self._changed = self._changed, asyncio.Event()
            waiter.set()
        return added

    async def catch_up(self, *, force: bool = False) -> int:
        """Read from the log what other processes stored since the last event seen: unless
        ``force``, only if the log's version moved since the last read (a query saved each
        time nothing was appended)."""
        version = self._version() if self._version is not None else None
        if not force and version is not None and version == self._read_at:
            return 0
        total = 0
        while True:
            batch = await self._log.events_after(self._last_id, limit=CATCH_UP_BATCH)
            total += self.publish(batch)
            if len(batch) < CATCH_UP_BATCH:
                self._read_at = version  # read before the log was: nothing after it missed
                return total

    def close(self) -> None:
        """End every subscription (at shutdown)."""
        self._closed = True
        self._changed.set()

    def subscribe(self, after: int | None = None) -> AsyncIterator[Event]:
        """Every event with an id above ``after`` (default: from this call on), in order,
        until the bus closes. The starting point is fixed here, not at the first read."""
        return self._stream(self._last_id if after is None else after)

    async def _stream(self, cursor: int) -> AsyncIterator[Event]:
        while not self._closed:
            waiter = self._changed
            if cursor < self._last_id:
                if cursor >= self._floor:
                    batch: Sequence[Event] = self._since(cursor)
                else:
                    batch = await self._log.events_after(cursor, limit=CATCH_UP_BATCH)
                    if not batch:  # the log has nothing past the cursor (yet): wait
                        await waiter.wait()
                        continue
                for event in batch:
                    yield event
                    assert event.id is not None
                    cursor = event.id
                continue
            await waiter.wait()

    def _since(self, cursor: int) -> list[Event]:
        newer: list[Event] = []
        for event in reversed(self._recent):
            if event.id is not None and event.id <= cursor:
                break
            newer.append(event)
        newer.reverse()
        return newer
