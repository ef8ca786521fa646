"""Backtesting: replay past readings through the real evaluator and report the incidents.

Pure: no I/O and no clock. A replay is a sequence of cycles in time order, each holding that
moment's reading per metric and instance; a metric with no reading in a cycle has no data in
it. Every kind of rule replays: thresholds, absent rules (timed by the cycles' moments),
composite conditions, and rules split per instance, with flap detection when given its
settings (``vigil.core.flapping``). Reading a
trace from a file and showing the report is the ``vigil backtest`` command's business
(``vigil.cli.backtest``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vigil.core import Evaluator, EventKind, Rule
from vigil.core.evaluation import Edges, split_key
from vigil.core.flapping import FlapSettings
from vigil.core.grouping import GroupedMessages

# What a channel subscribed to everything is sent (nobody acknowledges during a replay).
_NOTIFIED = frozenset(
    {
        EventKind.INCIDENT_OPENED,
        EventKind.INCIDENT_ESCALATED,
        EventKind.INCIDENT_RESOLVED,
        EventKind.INCIDENT_FLAPPING,
    }
)


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
    flapping_at: str | None = None  # when its series started flapping (held open from then)
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
            "flapping_at": self.flapping_at,
            "threshold": self.threshold,
            "value": self.value,
            "peak_value": self.peak_value,
        }


@dataclass(slots=True)
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    cycles: int = 0
    metrics: set[str] = field(default_factory=set)  # those with at least one reading
    flaps: Counter[str] = field(default_factory=Counter)  # rule -> times a series began to flap
    # What a channel hearing every incident event is sent: one message per opened, escalated,
    # resolved and flapping event; and with incident grouping (``vigil.core.grouping``), as
    # the outbox writes a group's messages, with the window used and the groups of two or more.
    notifications: int = 0
    grouped_notifications: int = 0
    group_window: float = 0.0
    groups: int = 0

    def per_rule(self) -> dict[str, tuple[int, float]]:
        """rule name -> (incidents, seconds in incident), every series counted."""
        totals: dict[str, tuple[int, float]] = {}
        for o in self.outcomes:
            count, seconds = totals.get(o.rule, (0, 0.0))
            totals[o.rule] = (count + 1, seconds + o.duration_s)
        return totals


Readings = dict[str, dict[str, tuple[float, datetime]]]  # metric -> instance -> (value, time)
BandStep = tuple[datetime, "Edges | None"]  # from then on, the band judged by (None: none)


def replay(
    cycles: Sequence[Cycle],
    rules: Mapping[str, Rule],
    *,
    flap: FlapSettings | None = None,
    group_window: float = 0.0,
) -> Report:
    """Evaluate ``cycles`` (in time order) with ``rules`` from a clean slate, with flap
    detection when ``flap`` is given. An incident still open at the end lasts until the last
    cycle. ``group_window`` (seconds): count the notifications incident grouping would send
    too."""
    run = Replay(rules, flap=flap, group_window=group_window)
    for cycle in cycles:
        readings = {
            metric: {instance: (value, cycle.time) for instance, value in values.items()}
            for metric, values in cycle.readings.items()
        }
        run.step(cycle.label, cycle.time, readings)
    return run.finish()


class Replay:
    """A replay fed one cycle at a time (``step``), so a long history need not be held in
    memory; ``finish`` closes the report. Each cycle's readings carry their sample times,
    as the monitor gives them to the evaluator (a reading older than its rule's staleness
    limit is no data). ``bands``: series of anomaly rules (by ``series_key``: a rule's name
    when it is not split) whose band is traced in ``self.bands``, one step each time it
    changes (``Evaluator.band``)."""

    def __init__(
        self,
        rules: Mapping[str, Rule],
        *,
        stale_after: float | None = None,
        flap: FlapSettings | None = None,
        group_window: float = 0.0,
        bands: Iterable[str] = (),
    ) -> None:
        self.evaluator = Evaluator(rules.values(), stale_after=stale_after, flap=flap)
        self.bands: dict[str, list[BandStep]] = {name: [] for name in bands}
        self.report = Report(group_window=group_window)
        labels = {name: r.group_label for name, r in rules.items() if r.group_label}
        self.grouped = GroupedMessages(group_window, labels)
        self.last: datetime | None = None
        self.notifications = 0  # what a channel is sent (``_NOTIFIED``)
        self._live: dict[object, Outcome] = {}

    def skip(self, time: datetime, metrics: Iterable[str]) -> None:
        """A cycle at ``time`` known to change nothing (``Evaluator.quiet_range``): counted,
        not evaluated."""
        self.report.cycles += 1
        self.report.metrics.update(metrics)
        self.last = time

    def step(self, label: str | None, time: datetime, readings: Readings) -> None:
        """One cycle at ``time``; ``label`` is how the report shows the moment (``None``: its
        ISO-8601 text, made only when something happens)."""
        report = self.report
        report.cycles += 1
        report.metrics.update(readings)
        self.last = time
        events = self.evaluator.evaluate_series(readings, now=time).events
        for key, steps in self.bands.items():
            edges = self.evaluator.band(*split_key(key), at=time)
            if (steps[-1][1] if steps else None) != edges or not steps:
                steps.append((time, edges))
        self.grouped.take([e for e in events if e.incident is not None], now=time)
        for event in events:
            if label is None:
                label = time.isoformat()
            if event.kind is EventKind.INCIDENT_FLAPPING and event.rule is not None:
                report.flaps[event.rule] += 1
            incident = event.incident
            if incident is None:
                continue  # flapping with no incident open: recorded, nothing to send
            if event.kind in _NOTIFIED:
                self.notifications += 1
                report.notifications += 1
            if event.kind is EventKind.INCIDENT_OPENED:
                outcome = Outcome(
                    rule=incident.rule,
                    metric=incident.metric,
                    instance=incident.instance,
                    severity=incident.severity.value,
                    opened_at=label,
                    threshold=incident.threshold,
                    value=incident.value,
                    peak_value=incident.peak_value,
                )
                self._live[incident.id] = outcome
                report.outcomes.append(outcome)
                continue
            outcome = self._live[incident.id]
            outcome.severity = incident.severity.value
            outcome.threshold = incident.threshold
            outcome.peak_value = incident.peak_value
            if event.kind is EventKind.INCIDENT_ESCALATED:
                outcome.escalated_at = label
            elif event.kind is EventKind.INCIDENT_FLAPPING:
                outcome.flapping_at = label
            elif event.kind is EventKind.INCIDENT_RESOLVED:
                outcome.resolved_at = label
                outcome.duration_s = incident.duration_s(time)
                del self._live[incident.id]

    def finish(self) -> Report:
        """The report; an incident still open lasts until the last cycle."""
        self.report.notifications = self.notifications
        self.report.grouped_notifications = self.grouped.sent
        self.report.groups = self.grouped.groups_of_several()
        for incident in self.evaluator.open_incidents():  # none unless there was a cycle
            assert self.last is not None
            outcome = self._live[incident.id]
            outcome.peak_value = incident.peak_value
            outcome.duration_s = incident.duration_s(self.last)
        return self.report
