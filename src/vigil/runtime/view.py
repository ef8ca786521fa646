"""The live view: what the hot reads (active incidents, summary, current values) answer
from, kept current by the event bus instead of a query per request."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from vigil.core import Event, EventKind, Incident, Level, Rule, Severity


@dataclass(frozen=True, slots=True)
class CurrentValue:
    metric: str
    value: float | None  # None: no data in the last cycle
    level: Level | None
    at: datetime


class LiveView:
    def __init__(self, rules: Iterable[Rule] = (), incidents: Iterable[Incident] = ()) -> None:
        self.rules: dict[str, Rule] = {rule.metric: rule for rule in rules}
        self._open: dict[uuid.UUID, Incident] = {i.id: i for i in incidents if i.is_open}
        self.current: dict[str, CurrentValue] = {}
        self._active_cache: list[Incident] | None = None

    def apply(self, event: Event) -> None:
        """An event listener: keep open incidents and rules in step with the log."""
        incident = event.incident
        if incident is not None:
            if incident.is_open:
                self._open[incident.id] = incident
            else:
                self._open.pop(incident.id, None)
            self._active_cache = None
        elif event.kind is EventKind.RULE_CHANGED and "rule" in event.data:
            rule = Rule.from_dict(event.data["rule"])
            self.rules[rule.metric] = rule

    def refresh(self, incidents: Iterable[Incident]) -> None:
        """Take newer copies of open incidents (peak and last value change without an event)."""
        for incident in incidents:
            if incident.is_open and incident.id in self._open:
                self._open[incident.id] = incident
                self._active_cache = None

    def replace_open(self, incidents: Iterable[Incident]) -> None:
        """Take the database's open incidents as they are (a follower, each cycle)."""
        self._open = {i.id: i for i in incidents if i.is_open}
        self._active_cache = None

    def set_values(self, values: Mapping[str, float | None], *, at: datetime) -> None:
        """Record a cycle's combined value of every rule's metric (and any other metric)."""
        for metric, value in values.items():
            rule = self.rules.get(metric)
            level = rule.level(value) if rule is not None and value is not None else None
            self.current[metric] = CurrentValue(metric, value, level, at)

    def forget_stale(self, before: datetime) -> int:
        """Drop the current values last set before ``before``, except rules' metrics: a
        metric nobody reports any more leaves ``/api/metrics``. How many were dropped."""
        stale = [
            metric
            for metric, current in self.current.items()
            if current.at < before and metric not in self.rules
        ]
        for metric in stale:
            del self.current[metric]
        return len(stale)

    def active(self) -> list[Incident]:
        """Open incidents (active and acknowledged): most severe first, then newest."""
        if self._active_cache is None:
            self._active_cache = sorted(
                self._open.values(),
                key=lambda i: (-i.severity.rank, -i.triggered_at.timestamp(), str(i.id)),
            )
        return list(self._active_cache)

    def summary(self) -> dict[Severity, int]:
        counts = dict.fromkeys(Severity, 0)
        for incident in self._open.values():
            counts[incident.severity] += 1
        return counts
