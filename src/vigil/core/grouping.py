"""Incident groups: related incidents that opened together, told about as one.

Pure: the store hands in the groups still open and the incidents a cycle opened, and gets
back which group each incident joins (creating groups as needed). An incident joins

1. the open group carrying its rule's group label, if the rule declares one (rules a user
   declares related join each other whenever they open, window or not); else
2. the open group whose latest member opened within ``window`` of it (so incidents that open
   within the window of each other form one group, like Alertmanager's group_wait catching
   alerts that fire together); else
3. a new group of its own.

A group is open while any member is open and resolves when all its members have: its status
is derived from its members (``summarize``), never stored apart from them, so it cannot
disagree with them. A ``window`` of zero turns grouping off: no incident gets a group.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from vigil.core.errors import IllegalTransitionError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity, Status, acknowledge

MAX_WINDOW = 86_400.0  # a day: groups are about incidents that happen together
HEADLINE_NAMES = 5  # members named in a headline (a message title must stay short)


def check_window(field_name: str, seconds: object) -> timedelta:
    """A correlation window in seconds, 0 (grouping off) to a day."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValidationError(field_name, f"must be a number of seconds, got {seconds!r}")
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_WINDOW:
        raise ValidationError(field_name, f"must be between 0 and {MAX_WINDOW:g} seconds")
    return timedelta(seconds=float(seconds))


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenGroup:
    """What assignment needs to know of a group with an open member."""

    id: uuid.UUID
    opened_at: datetime
    last_opened_at: datetime  # when its latest member opened
    label: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """The outcome of ``assign``: each incident's group, the groups created for them, and
    the groups whose latest member changed (to store)."""

    members: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    created: list[OpenGroup] = field(default_factory=list)
    updated: list[OpenGroup] = field(default_factory=list)


def assign(
    opened: Iterable[Incident],
    open_groups: Iterable[OpenGroup],
    *,
    window: timedelta,
    labels: Mapping[str, str] | None = None,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Assignment:
    """Which group each newly opened incident joins; see the module's docstring.

    ``labels`` maps a rule's name to its group label (rules without one are absent).
    Incidents are taken in the order they opened, so a group's members chain: each joins
    the group whose latest member is within ``window`` of it.
    """
    if window < timedelta(0):
        raise ValidationError("window", "must not be negative")
    if window == timedelta(0):
        return Assignment()
    labels = labels or {}
    groups = {group.id: group for group in open_groups}
    created: dict[uuid.UUID, OpenGroup] = {}
    touched: set[uuid.UUID] = set()
    members: dict[uuid.UUID, uuid.UUID] = {}
    for incident in sorted(opened, key=lambda i: (i.triggered_at, str(i.id))):
        at = incident.triggered_at
        label = labels.get(incident.rule)
        chosen = _by_label(groups.values(), label) if label else None
        if chosen is None:
            chosen = _by_window(groups.values(), at, window)
        if chosen is None:
            chosen = OpenGroup(id=new_id(), opened_at=at, last_opened_at=at, label=label)
            created[chosen.id] = chosen
        elif at > chosen.last_opened_at:
            chosen = OpenGroup(
                id=chosen.id, opened_at=chosen.opened_at, last_opened_at=at, label=chosen.label
            )
            touched.add(chosen.id)
        if chosen.id in created:
            created[chosen.id] = chosen
        groups[chosen.id] = chosen
        members[incident.id] = chosen.id
    return Assignment(
        members=members,
        created=list(created.values()),
        updated=[groups[ident] for ident in sorted(touched - set(created))],
    )


def _by_label(groups: Iterable[OpenGroup], label: str | None) -> OpenGroup | None:
    labelled = [group for group in groups if group.label == label]
    return max(labelled, key=_recency, default=None)


def _by_window(groups: Iterable[OpenGroup], at: datetime, window: timedelta) -> OpenGroup | None:
    near = [group for group in groups if abs(at - group.last_opened_at) <= window]
    return max(near, key=_recency, default=None)


def _recency(group: OpenGroup) -> tuple[datetime, str]:
    return group.last_opened_at, str(group.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSummary:
    """A group as people see it: derived from its members, so always in step with them."""

    id: uuid.UUID
    label: str | None
    members: tuple[Incident, ...]  # in the order they opened, most severe first at a tie
    opened_at: datetime

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def severity(self) -> Severity:
        return max((m.severity for m in self.members), key=lambda s: s.rank)

    @property
    def status(self) -> Status:
        """Resolved when every member is; acknowledged when every open one is; else active."""
        open_members = [m for m in self.members if m.is_open]
        if not open_members:
            return Status.RESOLVED
        if all(m.status is Status.ACKNOWLEDGED for m in open_members):
            return Status.ACKNOWLEDGED
        return Status.ACTIVE

    @property
    def resolved_at(self) -> datetime | None:
        if self.status is not Status.RESOLVED:
            return None
        return max(m.resolved_at for m in self.members if m.resolved_at is not None)

    @property
    def open_count(self) -> int:
        return sum(1 for m in self.members if m.is_open)

    def headline(self) -> str:
        """``3 incidents: gateway_latency, error_rate, command_p95_latency; most severe
        critical`` (a single incident's group is told of as the incident itself)."""
        names = ", ".join(_member_name(m) for m in self.members[:HEADLINE_NAMES])
        if self.size > HEADLINE_NAMES:
            names += f" and {self.size - HEADLINE_NAMES} more"
        noun = "incident" if self.size == 1 else "incidents"
        return f"{self.size} {noun}: {names}; most severe {self.severity.value}"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        resolved_at = self.resolved_at
        return {
            "id": str(self.id),
            "label": self.label,
            "status": self.status.value,
            "severity": self.severity.value,
            "size": self.size,
            "open": self.open_count,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": resolved_at.isoformat() if resolved_at is not None else None,
            "headline": self.headline(),
            "members": [{**m.to_dict(), "duration_s": m.duration_s(now)} for m in self.members],
        }


def summarize(
    group_id: uuid.UUID,
    members: Sequence[Incident],
    *,
    label: str | None = None,
    opened_at: datetime | None = None,
) -> GroupSummary:
    """A group from its members (at least one, each carrying ``group_id``)."""
    if not members:
        raise ValidationError("members", "a group has at least one member")
    stray = [m.id for m in members if m.group != group_id]
    if stray:
        raise ValidationError("members", f"incident {stray[0]} is not in group {group_id}")
    # In the order they opened; of those opening together, the most severe first.
    ordered = tuple(
        sorted(members, key=lambda m: (m.triggered_at, -m.severity.rank, m.rule, str(m.id)))
    )
    return GroupSummary(
        id=group_id,
        label=label,
        members=ordered,
        opened_at=opened_at if opened_at is not None else ordered[0].triggered_at,
    )


def acknowledge_group(
    group: GroupSummary, *, by: str, now: datetime, notes: str | None = None
) -> list[tuple[Incident, Event]]:
    """Acknowledge every active member (acknowledged and resolved ones stay as they are).
    A group with no active member cannot be acknowledged: ``IllegalTransitionError``."""
    active = [m for m in group.members if m.status is Status.ACTIVE]
    if not active:
        raise IllegalTransitionError(f"group {group.id}", group.status.value, "acknowledge")
    changes = []
    for member in active:
        updated, event = acknowledge(member, by=by, now=now, notes=notes)
        changes.append((updated, _with_group(event, group.id)))
    return changes


def _with_group(event: Event, group_id: uuid.UUID) -> Event:
    return replace(event, data={**event.data, "group": str(group_id)})


def _member_name(incident: Incident) -> str:
    return f"{incident.rule} ({incident.instance})" if incident.instance else incident.rule


class GroupedMessages:
    """The messages a channel hearing every incident event is sent with incident grouping,
    as the outbox writes them (``vigil.store._groups.grouped_rows``), each sent as soon as it
    is due (what the backtest counts):

    - a group's first opening is sent at once, and members opening in the same cycle are in
      it; a member joining later brings a follow-up no sooner than the window after the
      group's last message, and members joining before that follow-up is due are in it;
    - a member's resolution is sent only when it is the group's last open member;
    - escalations and flapping notices are sent as they are.

    A ``window`` of 0 is grouping off: every event is a message.
    """

    def __init__(self, window: float, labels: Mapping[str, str] | None = None) -> None:
        self.window = timedelta(seconds=window)
        self.labels = dict(labels or {})
        self.sent = 0
        self._groups: dict[uuid.UUID, OpenGroup] = {}
        self._group_of: dict[uuid.UUID, uuid.UUID] = {}
        self._open: Counter[uuid.UUID] = Counter()
        self._size: Counter[uuid.UUID] = Counter()
        self._last: dict[uuid.UUID, datetime] = {}  # when the group's last message is due
        self._written: dict[uuid.UUID, datetime] = {}  # the cycle that wrote it

    def take(self, events: Sequence[Event], *, now: datetime) -> None:
        """One cycle's events."""
        if not events:
            return  # most cycles of a replay: nothing to tell
        if self.window <= timedelta(0):
            self.sent += sum(1 for e in events if e.kind is not EventKind.INCIDENT_ACKNOWLEDGED)
            return
        opened = [e.incident for e in events if e.kind is EventKind.INCIDENT_OPENED and e.incident]
        outcome = assign(
            opened,
            [g for ident, g in self._groups.items() if self._open[ident] > 0],
            window=self.window,
            labels=self.labels,
        )
        for group in outcome.created + outcome.updated:
            self._groups[group.id] = group
        for incident, group_id in outcome.members.items():
            self._group_of[incident] = group_id
            self._open[group_id] += 1
            self._size[group_id] += 1
        for event in events:
            assert event.incident is not None
            group_id = self._group_of[event.incident.id]
            if event.kind is EventKind.INCIDENT_OPENED:
                if not self._waiting(group_id, now):
                    last = self._last.get(group_id)
                    self._write(
                        group_id, now, now if last is None else max(now, last + self.window)
                    )
            elif event.kind is EventKind.INCIDENT_RESOLVED:
                self._open[group_id] -= 1
                if self._open[group_id] == 0 and not self._waiting(group_id, now):
                    self._write(group_id, now, now)
            elif event.kind in (EventKind.INCIDENT_ESCALATED, EventKind.INCIDENT_FLAPPING):
                self.sent += 1  # each its own message, as the outbox writes them

    def groups_of_several(self) -> int:
        return sum(1 for size in self._size.values() if size > 1)

    def _waiting(self, group_id: uuid.UUID, now: datetime) -> bool:
        """A message about the group is written and not yet sent: written this cycle, or a
        follow-up not yet due."""
        due = self._last.get(group_id)
        return due is not None and (self._written.get(group_id) == now or due > now)

    def _write(self, group_id: uuid.UUID, now: datetime, due: datetime) -> None:
        self.sent += 1
        self._last[group_id] = due
        self._written[group_id] = now
