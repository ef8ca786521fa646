"""Backtesting: replay past readings through the real evaluator and report the incidents.

Pure: no I/O and no clock. A replay is a sequence of cycles in time order, each holding that
moment's reading per metric and instance; a metric with no reading in a cycle has no data in
it. Every kind of rule replays: thresholds, absent rules (timed by the cycles' moments),
composite conditions, and rules split per instance. Reading a
trace from a file and showing the report is the ``vigil backtest`` command's business
(``vigil.cli.backtest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vigil.core import Evaluator, EventKind, Rule


@dataclass(frozen=True, slots=True)
class Cycle:
    label: str  # the moment as the trace wrote it, shown in the report
    time: datetime
    readings: dict[str, dict[str, float]]  # metric -> instance ("" when unnamed) -> value


@dataclass(slots=True)
class Outcome:
    """What happened to one incident during the replay."""

    rule: str
    metric: str
    instance: str | None
    severity: str
    opened_at: str
    threshold: float
    value: float
    peak_value: float
    escalated_at: str | None = None
    resolved_at: str | None = None
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "metric": self.metric,
            "instance": self.instance,
            "severity": self.severity,
            "opened_at": self.opened_at,
            "escalated_at": self.escalated_at,
            "resolved_at": self.resolved_at,
            "threshold": self.threshold,
            "value": self.value,
            "peak_value": self.peak_value,
        }


@dataclass(slots=True)
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    cycles: int = 0
    metrics: set[str] = field(default_factory=set)  # those with at least one reading

    def per_rule(self) -> dict[str, tuple[int, float]]:
        """rule name -> (incidents, seconds in incident), every series counted."""
        totals: dict[str, tuple[int, float]] = {}
        for o in self.outcomes:
            count, seconds = totals.get(o.rule, (0, 0.0))
            totals[o.rule] = (count + 1, seconds + o.duration_s)
        return totals


def replay(cycles: Sequence[Cycle], rules: Mapping[str, Rule]) -> Report:
    """Evaluate ``cycles`` (in time order) with ``rules`` from a clean slate. An incident
    still open at the end lasts until the last cycle."""
    evaluator = Evaluator(rules.values())
    report = Report(cycles=len(cycles))
    for cycle in cycles:
        report.metrics.update(cycle.readings)
    live: dict[object, tuple[Outcome, datetime]] = {}
    for cycle in cycles:
        readings = {
            metric: {instance: (value, cycle.time) for instance, value in values.items()}
            for metric, values in cycle.readings.items()
        }
        for event in evaluator.evaluate_series(readings, now=cycle.time).events:
            incident = event.incident
            assert incident is not None
            if event.kind is EventKind.INCIDENT_OPENED:
                outcome = Outcome(
                    rule=incident.rule,
                    metric=incident.metric,
                    instance=incident.instance,
                    severity=incident.severity.value,
                    opened_at=cycle.label,
                    threshold=incident.threshold,
                    value=incident.value,
                    peak_value=incident.peak_value,
                )
                live[incident.id] = (outcome, incident.triggered_at)
                report.outcomes.append(outcome)
                continue
            outcome, _ = live[incident.id]
            outcome.severity = incident.severity.value
            outcome.threshold = incident.threshold
            outcome.peak_value = incident.peak_value
            if event.kind is EventKind.INCIDENT_ESCALATED:
                outcome.escalated_at = cycle.label
            elif event.kind is EventKind.INCIDENT_RESOLVED:
                outcome.resolved_at = cycle.label
                outcome.duration_s = incident.duration_s(cycle.time)
                del live[incident.id]
    for incident in evaluator.open_incidents():  # none unless there was a cycle
        outcome, _ = live[incident.id]
        outcome.peak_value = incident.peak_value
        outcome.duration_s = incident.duration_s(cycles[-1].time)
    return report
