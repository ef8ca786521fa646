"""Incidents and their lifecycle: pure transitions that return the new state and its event."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.core.errors import IllegalTransitionError, ValidationError
from vigil.core.events import Event, EventKind


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Status(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        return self is not Status.RESOLVED


class Resolution(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


MAX_NOTES = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    id: uuid.UUID
    metric: str
    severity: Severity
    status: Status
    triggered_at: datetime
    threshold: float
    value: float
    peak_value: float
    last_value: float
    message: str
    resolved_at: datetime | None = None
    resolution: Resolution | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    notes: str | None = None
    resolved_by: str | None = None
    # The open rule model: the rule (named after its metric unless told), its series when
    # split per instance, a composite's condition and term values at trigger, and whether
    # missing data (``no_data: alerting``) is what keeps it open.
    rule: str = ""
    instance: str | None = None
    condition: str | None = None
    values: dict[str, float] | None = None
    no_data: bool = False
    # Its series is flapping (``vigil.core.flapping``): held open, its changes not notified.
    flapping: bool = False
    # The incident group it joined when it opened (``vigil.core.grouping``); None when
    # grouping was off, or for incidents older than grouping.
    group: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if not self.rule:
            object.__setattr__(self, "rule", self.metric)

    def observed(self, *, last_value: float, peak_value: float, no_data: bool) -> Incident:
        """``dataclasses.replace`` of the fields each cycle changes, written out: the
        evaluator calls it for every open incident every cycle, and ``replace`` walks every
        field by name."""
        return Incident(
            id=self.id,
            metric=self.metric,
            severity=self.severity,
            status=self.status,
            triggered_at=self.triggered_at,
            threshold=self.threshold,
            value=self.value,
            peak_value=peak_value,
            last_value=last_value,
            message=self.message,
            resolved_at=self.resolved_at,
            resolution=self.resolution,
            acknowledged_by=self.acknowledged_by,
            acknowledged_at=self.acknowledged_at,
            notes=self.notes,
            resolved_by=self.resolved_by,
            rule=self.rule,
            instance=self.instance,
            condition=self.condition,
            values=self.values,
            no_data=no_data,
            flapping=self.flapping,
            group=self.group,
        )

    @property
    def series(self) -> str:
        """The rule's series this incident belongs to: its instance, or "" when not split."""
        return self.instance or ""

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    def duration_s(self, now: datetime) -> float:
        """Seconds from trigger to resolution, or to ``now`` while open."""
        end = self.resolved_at if self.resolved_at is not None else now
        return (end - self.triggered_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (UUID and times as strings); the one serialisation every adapter uses."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, uuid.UUID | StrEnum):
                value = str(value)
            elif isinstance(value, dict):
                value = dict(value)
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        values = dict(data)
        values["id"] = uuid.UUID(str(values["id"]))
        values["severity"] = Severity(values["severity"])
        values["status"] = Status(values["status"])
        if values.get("group") is not None:
            values["group"] = uuid.UUID(str(values["group"]))
        if values.get("resolution") is not None:
            values["resolution"] = Resolution(values["resolution"])
        if values.get("values") is not None:
            values["values"] = {str(k): float(v) for k, v in values["values"].items()}
        for name in ("triggered_at", "resolved_at", "acknowledged_at"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


def acknowledge(
    incident: Incident, *, by: str, now: datetime, notes: str | None = None
) -> tuple[Incident, Event]:
    """active -> acknowledged. Acknowledging twice or after resolution is an error."""
    if incident.status is not Status.ACTIVE:
        raise IllegalTransitionError(incident.id, incident.status.value, "acknowledge")
    _check_actor(by)
    updated = dataclasses.replace(
        incident,
        status=Status.ACKNOWLEDGED,
        acknowledged_by=by,
        acknowledged_at=now,
        notes=_check_notes(notes),
    )
    return updated, Event.for_incident(
        EventKind.INCIDENT_ACKNOWLEDGED, updated, at=now, by=by, data=_noted(updated.notes)
    )


def resolve(
    incident: Incident, *, now: datetime, by: str | None = None, notes: str | None = None
) -> tuple[Incident, Event]:
    """active/acknowledged -> resolved: manual when ``by`` names a person, else automatic."""
    if not incident.is_open:
        raise IllegalTransitionError(incident.id, incident.status.value, "resolve")
    if by is not None:
        _check_actor(by)
    checked_notes = _check_notes(notes)
    updated = dataclasses.replace(
        incident,
        status=Status.RESOLVED,
        resolved_at=now,
        resolution=Resolution.AUTO if by is None else Resolution.MANUAL,
        resolved_by=by,
        notes=checked_notes if checked_notes is not None else incident.notes,
    )
    # The incident keeps its latest note; each event keeps the note written with it, so an
    # acknowledgement's note and a resolution's are both kept, with who and when.
    return updated, Event.for_incident(
        EventKind.INCIDENT_RESOLVED, updated, at=now, by=by, data=_noted(checked_notes)
    )


def _noted(notes: str | None) -> dict[str, str]:
    return {"note": notes} if notes is not None else {}


def _check_actor(by: str) -> None:
    if not isinstance(by, str) or not by.strip():
        raise ValidationError("by", "the person acting must be named")


def _check_notes(notes: str | None) -> str | None:
    if notes is None:
        return None
    if not isinstance(notes, str):
        raise ValidationError("notes", "must be a string")
    if len(notes) > MAX_NOTES:
        raise ValidationError("notes", f"must be at most {MAX_NOTES} characters")
    return notes.strip() or None
