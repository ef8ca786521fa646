"""The live view: what the hot reads (active incidents, summary, current values) answer
from, kept current by the event bus instead of a query per request."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from vigil.core import Aggregate, Event, EventKind, Incident, Kind, Level, Rule, Severity, combine

_RULE_EVENTS = frozenset({EventKind.RULE_CREATED, EventKind.RULE_CHANGED, EventKind.RULE_DELETED})


@dataclass(frozen=True, slots=True)
class CurrentValue:
    metric: str
    value: float | None  # None: no data (a stale value keeps its last reading, stale=True)
    level: Level | None  # None for a stale value: it is not the metric's state now
    at: datetime  # the cycle that saw it
    sampled_at: datetime | None = None  # when its newest sample was taken
    stale: bool = False  # older than the staleness limit: no data, shown with its age


class LiveView:
    def __init__(self, rules: Iterable[Rule] = (), incidents: Iterable[Incident] = ()) -> None:
        self.rules: dict[str, Rule] = {rule.name: rule for rule in rules}
        # Every instance's newest sample of every metric, as the last cycle read them.
        self.readings: dict[str, dict[str, tuple[float, datetime]]] = {}
        self._judges: dict[str, Rule] | None = None
        self._judged_rules: dict[str, Rule] | None = None
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
        elif event.kind in _RULE_EVENTS and "rule" in event.data:
            rule = Rule.from_dict(event.data["rule"])
            if event.kind is EventKind.RULE_DELETED:
                self.rules.pop(rule.name, None)
            else:
                self.rules[rule.name] = rule
            self._judges = None

    def set_rules(self, rules: Iterable[Rule]) -> None:
        """Take the rules as they are (from the database, after a reload)."""
        self.rules = {rule.name: rule for rule in rules}
        self._judges = None

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
            rule = self.rule_for(metric)
            level = rule.level(value) if rule is not None and value is not None else None
            self.current[metric] = CurrentValue(metric, value, level, at)

    def set_readings(
        self,
        readings: Mapping[str, Mapping[str, tuple[float, datetime]]],
        *,
        at: datetime,
        stale_after: float,
    ) -> None:
        """Record a cycle's per-instance readings and each metric's current value: its
        instances' fresh values combined by the aggregate of the rule that judges it
        (``rule_for``; else the largest), or, when none is fresher than the staleness limit
        (that rule's ``stale_after``, else ``stale_after`` seconds), the newest value, stale,
        without a level."""
        self.readings = {metric: dict(by) for metric, by in readings.items()}
        default_cutoff = at - timedelta(seconds=stale_after)
        cutoffs: dict[str, datetime] = {}
        current: dict[str, CurrentValue] = {}
        for metric, by_instance in readings.items():
            if not by_instance:
                continue
            rule = self.rule_for(metric)
            cutoff = cutoffs[metric] = _cutoff(rule, at, default_cutoff)
            if len(by_instance) == 1:
                # One instance, the usual case (10,000 of them a cycle with 10,000 rules): its
                # value is what every aggregate makes of it.
                [(value, newest)] = by_instance.values()
                if newest >= cutoff:
                    level = rule.level(value) if rule is not None else None
                    current[metric] = CurrentValue(metric, value, level, at, newest, False)
                else:
                    current[metric] = CurrentValue(metric, value, None, at, newest, True)
                continue
            newest = max(sampled for _, sampled in by_instance.values())
            fresh = [v for v, sampled in by_instance.values() if sampled >= cutoff]
            if fresh:
                combined = combine(fresh, rule.aggregate if rule is not None else Aggregate.MAX)
                assert combined is not None
                level = rule.level(combined) if rule is not None else None
                current[metric] = CurrentValue(metric, combined, level, at, newest, False)
            else:
                last = next(v for v, sampled in by_instance.values() if sampled == newest)
                current[metric] = CurrentValue(metric, last, None, at, newest, True)
        for metric, before in self.current.items():
            if metric not in current and before.value is not None:
                # Not read this cycle (a source that stopped reporting it): the last value
                # stays, with its level until its sample is older than the limit.
                cutoff = cutoffs.get(metric) or _cutoff(self.rule_for(metric), at, default_cutoff)
                stale = before.sampled_at is None or before.sampled_at < cutoff
                level = None if stale else before.level
                current[metric] = dataclasses.replace(before, level=level, at=at, stale=stale)
        self.current = current

    def rule_for(self, metric: str) -> Rule | None:
        """The threshold rule that judges a metric's current value: the one named after it,
        else the first (by name) watching it."""
        if self._judges is None or self._judged_rules is not self.rules:
            judges: dict[str, Rule] = {}
            for name in sorted(self.rules):
                rule = self.rules[name]
                if rule.kind is Kind.THRESHOLD and (
                    rule.metric not in judges or name == rule.metric
                ):
                    judges[rule.metric] = rule
            self._judges, self._judged_rules = judges, self.rules
        return self._judges.get(metric)

    def forget_stale(self, before: datetime) -> int:
        """Drop the current values last set before ``before``, except rules' metrics: a
        metric nobody reports any more leaves ``/api/metrics``. How many were dropped."""
        watched = {metric for rule in self.rules.values() for metric in rule.metrics}
        stale = [
            metric
            for metric, current in self.current.items()
            if (current.sampled_at or current.at) < before and metric not in watched
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


def _cutoff(rule: Rule | None, at: datetime, default: datetime) -> datetime:
    """The oldest sample time still fresh at ``at`` for a metric ``rule`` judges."""
    if rule is None or rule.stale_after is None:
        return default
    return at - timedelta(seconds=rule.stale_after)
