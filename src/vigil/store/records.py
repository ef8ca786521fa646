"""What the store hands back besides core types: small frozen values, never ORM rows."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vigil.core.errors import ValidationError
from vigil.core.events import Event
from vigil.core.grouping import GroupSummary
from vigil.core.rules import Rule

if TYPE_CHECKING:
    from vigil.notify.channels import Channel

T = TypeVar("T")


class Role(StrEnum):
    """Who may do what. Users are ``viewer`` or ``admin``; a token may also be ``ingest``."""

    VIEWER = "viewer"
    ADMIN = "admin"
    INGEST = "ingest"


USER_ROLES = (Role.VIEWER, Role.ADMIN)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    # Not to be sent: a follow-up (escalation step, reminder) of an incident acknowledged or
    # resolved before it went out.
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a history page ended: the last row's trigger time and id (newest first order).

    Opaque to clients: ``encode()`` gives a URL-safe token, ``decode()`` reads it back.
    """

    triggered_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.triggered_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            when, _, ident = base64.urlsafe_b64decode(padded).decode().partition("|")
            triggered_at = datetime.fromisoformat(when)
            cursor = cls(triggered_at, uuid.UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ValidationError("cursor", "is not a cursor this server issued") from None
        if triggered_at.tzinfo is None:
            raise ValidationError("cursor", "is not a cursor this server issued")
        return cursor


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a longer list. ``next_cursor`` continues after the last item in constant
    time however deep the page; ``None`` on the last page."""

    items: list[T]
    total: int
    page: int
    page_size: int
    pages: int
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class DayCount:
    """Incidents triggered on one UTC day, by their severity."""

    day: date
    info: int = 0
    warning: int = 0
    critical: int = 0

    @property
    def total(self) -> int:
        return self.info + self.warning + self.critical


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One point of a downsampled series: the readings of ``[time, time + width)``."""

    time: datetime
    mean: float
    min: float
    max: float
    count: int


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    password_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's record. The hash stays in the database; the secret was shown once."""

    id: int
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    instance: str | None = None  # an ingest token bound to this instance name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One notification to deliver: one event to one channel, at most once per key."""

    id: int
    event_id: int
    channel: str
    idempotency_key: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    incident_id: uuid.UUID | None = None
    repeat: int = 0  # 0: the event itself; n > 0: the n-th reminder of an open incident
    group_id: uuid.UUID | None = None  # a message about an incident group (since 0008)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed outbox row and the stored event it tells of: what the dispatcher sends."""

    item: OutboxItem
    event: Event
    # For a group's message (``item.group_id``): the group as it is now, to tell of.
    group: GroupSummary | None = None


MAX_CLAIM = 1000  # outbox rows claimed at once


def check_lease(lease: timedelta) -> timedelta:
    if not isinstance(lease, timedelta) or lease <= timedelta(0):
        raise ValidationError("lease", f"must be a positive duration, got {lease!r}")
    return lease


@dataclass(slots=True)
class Claim:
    """Claim a cycle's own notifications in the transaction that writes them
    (``commit_cycle(claim=...)``), for a dispatcher in this process that sends them at once:
    no claim transaction of its own, no wait for one. Exactly as ``claim_notifications``
    would (per incident and channel only the oldest pending row, due now, up to ``limit``,
    not due again until ``lease`` later), among the rows this cycle wrote. ``deliveries`` is
    filled once the transaction has committed; a dispatcher that never sends them leaves
    them to come back when the lease ends, as after a crash."""

    lease: timedelta
    limit: int = 100
    deliveries: list[Delivery] = field(default_factory=list)
    # The enabled channels, as the transaction read them (``Store.delivery_channels``'s form).
    channels: dict[str, Channel | ValidationError] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_lease(self.lease)
        if isinstance(self.limit, bool) or not 1 <= self.limit <= MAX_CLAIM:
            raise ValidationError("limit", f"must be between 1 and {MAX_CLAIM}")


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """Outbox rows by status, and when the earliest pending one is next due."""

    pending: int = 0
    sent: int = 0
    failed: int = 0
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LastNotification:
    """What one channel last heard about one incident: the basis of reminders."""

    incident_id: uuid.UUID
    channel: str
    event_id: int  # the newest event the channel was told about
    at: datetime  # when that row was sent (when it was written, if it never was)
    repeats: int  # reminders written so far
    pending: bool  # a row of this incident for this channel is still on its way


@dataclass(frozen=True, slots=True)
class StoredChannel:
    """A channel as stored, with its timestamps. ``to_dict`` masks the URL."""

    channel: Channel
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.channel.name

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.channel.to_dict(),
            "service": self.channel.service.name,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class CleanupReport:
    """Rows deleted (or, before a cleanup, rows due for deletion) per kind."""

    incidents: int = 0
    events: int = 0
    samples: int = 0
    outbox: int = 0
    sessions: int = 0  # signed-out sessions past their expiry
    rollups: int = 0  # minute buckets of compacted history past the sample retention
    # Raw samples rolled into minute buckets (and deleted as raw rows): their history stays.
    compacted: int = 0

    @property
    def total(self) -> int:
        """Rows deleted for good (compacted samples live on in their buckets)."""
        return (
            self.incidents
            + self.events
            + self.samples
            + self.outbox
            + self.sessions
            + (self.rollups)
        )


@dataclass(frozen=True, slots=True)
class RulePlan:
    """What ``apply_rules`` did (or, in a dry run, would do): the rules to add, those to
    change with ``{field: [old, new]}``, the names to remove (with ``prune``), the names left
    as they were; and the events written (none in a dry run)."""

    added: list[Rule]
    changed: list[tuple[Rule, dict[str, list[Any]]]]
    removed: list[str]
    unchanged: list[str]
    events: list[Event]


@dataclass(frozen=True, slots=True)
class RuleStats:
    """One rule's noise over ``days`` UTC days ending today (``first_day`` .. today).

    Incidents, resolutions and acknowledgements are counted on the day they happened; the
    means are over those of the window; ``seconds_in_incident`` is the time the rule's
    incidents (every series) were open within the window, the open ones up to ``now``.
    """

    rule: str
    days: int
    first_day: date
    incidents: int
    open_incidents: int
    seconds_in_incident: float
    acknowledged: int
    mean_seconds_to_acknowledge: float | None
    resolved_auto: int
    resolved_manual: int
    mean_seconds_to_resolve: float | None
    flaps: int
    notifications_sent: int

    @property
    def incidents_per_day(self) -> float:
        return self.incidents / self.days

    @property
    def resolved(self) -> int:
        return self.resolved_auto + self.resolved_manual

    @property
    def quiet(self) -> bool:
        """Nothing happened in the window and nothing is open."""
        return not (
            self.incidents
            or self.open_incidents
            or self.seconds_in_incident
            or self.acknowledged
            or self.resolved
            or self.flaps
            or self.notifications_sent
        )

    @property
    def auto_resolved_share(self) -> float | None:
        """Resolved on their own, of those resolved in the window (None: none resolved)."""
        return self.resolved_auto / self.resolved if self.resolved else None
