"""Events: every change is appended to the log. The store assigns the monotonic ``id``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil.core.incidents import Incident


class EventKind(StrEnum):
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_ESCALATED = "incident.escalated"
    INCIDENT_ACKNOWLEDGED = "incident.acknowledged"
    INCIDENT_RESOLVED = "incident.resolved"
    INCIDENT_FLAPPING = "incident.flapping"
    INCIDENT_FLAPPING_ENDED = "incident.flapping_ended"
    RULE_CREATED = "rule.created"
    RULE_CHANGED = "rule.changed"
    RULE_DELETED = "rule.deleted"
    SNOOZE_STARTED = "snooze.started"
    SNOOZE_ENDED = "snooze.ended"
    MAINTENANCE_ADDED = "maintenance.added"
    MAINTENANCE_REMOVED = "maintenance.removed"
    CHANNEL_ADDED = "channel.added"
    CHANNEL_CHANGED = "channel.changed"
    CHANNEL_REMOVED = "channel.removed"
    ESCALATION_ADDED = "escalation.added"
    ESCALATION_CHANGED = "escalation.changed"
    ESCALATION_REMOVED = "escalation.removed"
    LEADER_CHANGED = "leader.changed"
    DIGEST_WRITTEN = "digest.written"  # a digest channel's summary of a period, to be sent


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: EventKind
    at: datetime
    metric: str | None = None
    incident: Incident | None = None
    by: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None
    rule: str | None = None  # the rule's name; for the rules named after a metric, the metric

    def __post_init__(self) -> None:
        if self.rule is None and self.incident is not None:
            object.__setattr__(self, "rule", self.incident.rule)

    @classmethod
    def for_incident(
        cls,
        kind: EventKind,
        incident: Incident,
        *,
        at: datetime,
        by: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Event:
        return cls(
            kind=kind, at=at, metric=incident.metric, incident=incident, by=by, data=data or {}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "at": self.at.isoformat(),
            "metric": self.metric,
            "rule": self.rule,
            "incident": self.incident.to_dict() if self.incident is not None else None,
            "by": self.by,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        from vigil.core.incidents import Incident

        incident = data.get("incident")
        return cls(
            id=data.get("id"),
            kind=EventKind(data["kind"]),
            at=datetime.fromisoformat(data["at"]),
            metric=data.get("metric"),
            rule=data.get("rule"),
            incident=Incident.from_dict(incident) if incident is not None else None,
            by=data.get("by"),
            data=dict(data.get("data") or {}),
        )
