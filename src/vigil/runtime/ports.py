"""What the runtime asks of storage, method by method.

Each part of the runtime takes the narrowest of these it needs. ``vigil.store.Store`` provides
them all on SQLite and PostgreSQL; ``vigil.store.memory.MemoryStore`` provides them in memory,
for tests of the runtime's own logic. A shared contract test (``tests/store/test_contract.py``)
holds the two to the same behaviour.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from vigil.core import Event, Incident, Rule, RuleState, Sample, ValidationError
from vigil.core.digest import Digest
from vigil.core.escalation import EscalationPolicy, Notice
from vigil.core.evaluation import CycleResult
from vigil.core.silences import MaintenanceWindow, Snooze
from vigil.notify import Channel
from vigil.store import (
    Claim,
    Delivery,
    LastNotification,
    Leadership,
    OutboxCounts,
    OutboxItem,
    StoredChannel,
)

__all__ = [
    "DigestStore",
    "EscalationStore",
    "EventLog",
    "Leadership",
    "MonitorStore",
    "NotifierStore",
    "SilenceStore",
]


class EventLog(Protocol):
    """The durable event log, which the bus reads when a subscriber falls behind."""

    async def events_after(self, last_id: int, *, limit: int) -> Sequence[Event]: ...


class SilenceStore(Protocol):
    """Snoozes and maintenance windows, as the silence cache reads and expires them."""

    async def active_snoozes(self, *, now: datetime | None = None) -> list[Snooze]: ...

    async def list_windows(self) -> list[MaintenanceWindow]: ...

    async def expire_snoozes(self, *, now: datetime) -> list[Event]: ...


class MonitorStore(EventLog, Protocol):
    """What the monitor reads and writes each cycle (and at start, and on taking over)."""

    async def list_rules(self) -> list[Rule]: ...

    async def load_states(self) -> dict[str, RuleState]: ...

    async def active_incidents(self) -> list[Incident]: ...

    async def latest_values(
        self, *, since: datetime, exclude_instance: str | None = None
    ) -> dict[str, list[float]]: ...

    async def latest_readings(
        self, *, since: datetime, exclude_instance: str | None = None
    ) -> dict[str, dict[str, tuple[float, datetime]]]: ...

    async def add_samples(self, samples: Sequence[Sample]) -> None: ...

    async def append_events(self, items: Sequence[Event]) -> list[Event]: ...

    async def commit_cycle(
        self,
        *,
        samples: Sequence[Sample],
        result: CycleResult,
        now: datetime,
        group_window: timedelta = ...,
        group_labels: Mapping[str, str] | None = None,
        claim: Claim | None = None,
    ) -> list[Event]: ...


class Handoff(Protocol):
    """A dispatcher in this process that takes the notifications of the monitor's cycle from
    the cycle's own transaction (``vigil.store.Claim``): the notifier."""

    def claim(self) -> Claim | None:
        """What to claim for it in the next cycle's transaction; None while it does not
        dispatch (not the leader, not running): the rows then wait for any dispatcher."""
        ...

    def take(self, claim: Claim) -> None:
        """The committed claim's deliveries: sent at once, settled as any claimed row."""
        ...


class NotifierStore(Protocol):
    """The outbox, as the dispatcher works it, and the channels it delivers to."""

    async def claim_notifications(
        self, *, now: datetime, lease: timedelta, limit: int = 100
    ) -> list[Delivery]: ...

    async def settle_notification(
        self,
        item_id: int,
        *,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> OutboxItem: ...

    async def renew_claims(
        self, item_ids: Collection[int], *, now: datetime, lease: timedelta
    ) -> int: ...

    async def settle_sent(self, item_ids: Collection[int], *, now: datetime) -> int: ...

    async def outbox_counts(self) -> OutboxCounts: ...

    async def delivery_channels(self) -> dict[str, Channel | ValidationError]: ...

    async def last_notifications(
        self, incident_ids: Collection[uuid.UUID]
    ) -> list[LastNotification]: ...

    async def enqueue_reminder(
        self, last: LastNotification, *, now: datetime
    ) -> OutboxItem | None: ...

    async def list_channels(self) -> list[StoredChannel]: ...

    async def incident_events(
        self, incident_id: uuid.UUID | str, *, limit: int = ...
    ) -> list[Event]: ...


class EscalationStore(Protocol):
    """Escalation policies, and the outbox rows of their due steps (each written once)."""

    async def list_policies(self) -> list[EscalationPolicy]: ...

    async def enqueue_escalations(self, notices: Sequence[Notice], *, now: datetime) -> int: ...


class DigestStore(Protocol):
    """Digest channels' summaries, each period's written once (with its outbox row)."""

    async def digest_written(self, channel: str, end: datetime) -> bool: ...

    async def enqueue_digest(
        self, channel: Channel, *, start: datetime, end: datetime, now: datetime
    ) -> Digest | None: ...
