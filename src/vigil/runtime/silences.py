"""Which rules are silenced (snoozed or in maintenance): a small cache the leader's monitor asks
each cycle.

Snoozes and windows live in the database; the cache reloads them when an event says they
changed (here or, through the event log, in another process such as the CLI), when this
instance becomes the leader, and every ``refresh_every`` seconds in any case. The leader also
records snoozes that ran out (``snooze.ended``, once: the store claims the rows).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from datetime import datetime

from vigil.core import Event, EventKind
from vigil.core.silences import MaintenanceWindow, Snooze, silenced_metrics
from vigil.runtime.bus import EventBus
from vigil.runtime.ports import SilenceStore

logger = logging.getLogger(__name__)

REFRESH_EVERY = 300.0
_CHANGES = frozenset(
    {
        EventKind.SNOOZE_STARTED,
        EventKind.SNOOZE_ENDED,
        EventKind.MAINTENANCE_ADDED,
        EventKind.MAINTENANCE_REMOVED,
    }
)


class SilenceCache:
    def __init__(
        self,
        store: SilenceStore,
        bus: EventBus,
        *,
        refresh_every: float = REFRESH_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.bus = bus
        self.refresh_every = refresh_every
        self._monotonic = monotonic
        self.snoozes: list[Snooze] = []
        self.windows: list[MaintenanceWindow] = []
        self._loaded_at: float | None = None

    def follow(self, event: Event) -> None:
        """An event listener: a snooze or window changed somewhere; reload before next use."""
        if event.kind in _CHANGES:
            self.invalidate()

    def invalidate(self) -> None:
        self._loaded_at = None

    async def load(self) -> None:
        """Reload from the store if something changed or the copy is old."""
        if self._loaded_at is not None and (
            self._monotonic() - self._loaded_at < self.refresh_every
        ):
            return
        self.snoozes = await self.store.active_snoozes()
        self.windows = await self.store.list_windows()
        self._loaded_at = self._monotonic()

    async def silenced(self, now: datetime, metrics: Collection[str]) -> frozenset[str]:
        """The metrics among ``metrics`` silenced at ``now``: they open no incident. Called by
        the leader only: it first records the end of snoozes whose time is up and publishes it."""
        await self.load()
        if any(not snooze.is_active(now) for snooze in self.snoozes):
            ended = await self.store.expire_snoozes(now=now)
            self.bus.publish(ended)
            for event in ended:
                logger.info("Vigil: the snooze of %r ended", event.metric)
            self.invalidate()
            await self.load()
        return silenced_metrics(now, metrics=metrics, snoozes=self.snoozes, windows=self.windows)

    def active_windows(self, now: datetime) -> list[MaintenanceWindow]:
        return [window for window in self.windows if window.is_active(now)]

    def active_snoozes(self, now: datetime) -> list[Snooze]:
        return [snooze for snooze in self.snoozes if snooze.is_active(now)]
