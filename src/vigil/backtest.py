"""``vigil backtest``: replay a CSV trace of readings through the real evaluator.

The CSV has a header ``timestamp,metric,value``. Every distinct timestamp is one evaluation
cycle whose readings are that timestamp's rows; a rule with no row at a timestamp has no data
in that cycle.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli.rules import parse_rule_spec
from vigil.core import DEFAULT_RULES, Evaluator, EventKind, Rule, ValidationError, VigilError

HEADER = ["timestamp", "metric", "value"]


class TraceError(VigilError):
    """A malformed line in a trace: names the line and the reason."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Cycle:
    label: str  # the timestamp as written in the CSV
    time: datetime
    readings: dict[str, float]


@dataclass(slots=True)
class Outcome:
    """What happened to one incident during the replay."""

    metric: str
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
            "metric": self.metric,
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
        """metric -> (incidents, seconds in incident)."""
        totals: dict[str, tuple[int, float]] = {}
        for o in self.outcomes:
            count, seconds = totals.get(o.metric, (0, 0.0))
            totals[o.metric] = (count + 1, seconds + o.duration_s)
        return totals


def parse_time(text: str) -> datetime:
    """ISO-8601 (naive means UTC) or Unix seconds."""
    try:
        moment = datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except OverflowError as exc:
        raise ValueError(str(exc)) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_trace(lines: Iterable[str], rules: Mapping[str, Rule]) -> list[Cycle]:
    """Parse and check a whole trace; the first bad line raises ``TraceError``."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise TraceError(1, "the file is empty; expected the header timestamp,metric,value")
    if [h.strip().lower() for h in header] != HEADER:
        raise TraceError(1, f"expected the header timestamp,metric,value, got {','.join(header)}")
    cycles: dict[datetime, Cycle] = {}
    first_line: dict[tuple[datetime, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise TraceError(line, f"expected 3 fields (timestamp,metric,value), got {len(row)}")
        stamp, metric, raw = (cell.strip() for cell in row)
        try:
            moment = parse_time(stamp)
        except ValueError:
            raise TraceError(line, f"timestamp {stamp!r} is not ISO-8601 or Unix seconds") from None
        if metric not in rules:
            raise TraceError(
                line, f"no rule for metric {metric!r} (define one with --rule {metric}:critical=N)"
            )
        try:
            value = float(raw)
        except ValueError:
            raise TraceError(line, f"value {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise TraceError(line, f"value {raw!r} is not a finite number")
        if (moment, metric) in first_line:
            earlier = first_line[moment, metric]
            raise TraceError(line, f"{metric} already has a value at {stamp} (line {earlier})")
        first_line[moment, metric] = line
        cycle = cycles.setdefault(moment, Cycle(stamp, moment, {}))
        cycle.readings[metric] = value
    return [cycles[moment] for moment in sorted(cycles)]


def apply_overrides(rules: Mapping[str, Rule], specs: Sequence[str]) -> dict[str, Rule]:
    """``metric:key=value,key=value``; ``null`` clears a threshold; an unknown metric with a
    threshold defines a new rule."""
    result = dict(rules)
    for spec in specs:
        metric, changes = parse_rule_spec(spec)
        try:
            if metric in result:
                result[metric] = result[metric].updated(changes)
            else:
                result[metric] = Rule(metric=metric, **changes)
        except ValidationError as exc:
            raise ValidationError("--rule", f"{spec!r}: {exc}") from None
    return result


def replay(cycles: Sequence[Cycle], rules: Mapping[str, Rule]) -> Report:
    evaluator = Evaluator(rules.values())
    report = Report(cycles=len(cycles))
    for cycle in cycles:
        report.metrics.update(cycle.readings)
    live: dict[object, tuple[Outcome, datetime]] = {}
    for cycle in cycles:
        for event in evaluator.evaluate(cycle.readings, now=cycle.time).events:
            incident = event.incident
            assert incident is not None
            if event.kind is EventKind.INCIDENT_OPENED:
                outcome = Outcome(
                    metric=incident.metric,
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
    end = cycles[-1].time if cycles else datetime.now(UTC)
    for incident in evaluator.open_incidents():
        outcome, _ = live[incident.id]
        outcome.peak_value = incident.peak_value
        outcome.duration_s = incident.duration_s(end)
    return report


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def print_report(report: Report, rules: Mapping[str, Rule], console: Console) -> None:
    units = {metric: rule.unit for metric, rule in rules.items()}
    table = Table(title=f"Incidents over {report.cycles} cycles", title_justify="left")
    for column in ("metric", "severity", "opened", "escalated", "resolved", "value", "peak"):
        table.add_column(column)
    for o in report.outcomes:
        unit = units.get(o.metric, "")
        table.add_row(
            o.metric,
            o.severity,
            o.opened_at,
            o.escalated_at or "-",
            o.resolved_at or "still open",
            f"{o.value:.2f} {unit}",
            f"{o.peak_value:.2f} {unit}",
        )
    console.print(table)
    totals = report.per_rule()
    for metric in sorted(report.metrics, key=list(rules).index):
        count, seconds = totals.get(metric, (0, 0.0))
        noun = "incident" if count == 1 else "incidents"
        console.print(f"{metric}: {count} {noun}, {_duration(seconds)} in incident")


def backtest_command(
    trace: Annotated[Path, typer.Argument(help="CSV file with the header timestamp,metric,value.")],
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="Override or add a rule: METRIC:KEY=VALUE[,KEY=VALUE]; keys: warning, "
            "critical, recovery, breaches, recoveries, direction, enabled. null clears.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per incident.")
    ] = False,
) -> None:
    """Replay a trace of readings through the evaluator and show the incidents it raises."""
    err = Console(stderr=True)
    try:
        rules = apply_overrides({r.metric: r for r in DEFAULT_RULES}, rule or [])
        with _open(trace) as handle:
            cycles = read_trace(handle, rules)
    except (VigilError, OSError, UnicodeDecodeError) as exc:
        where = f"{trace}: " if isinstance(exc, TraceError) else ""
        err.print(f"[red]error:[/] {where}{exc}", highlight=False)
        raise typer.Exit(2) from None
    report = replay(cycles, rules)
    if as_json:
        for outcome in report.outcomes:
            sys.stdout.write(json.dumps(outcome.to_json()) + "\n")
    else:
        console = Console(highlight=False)
        if not console.is_terminal:
            console.width = 160  # a pipe or a file has no width: do not wrap the table
        print_report(report, rules, console)


def _open(path: Path) -> TextIO:
    if str(path) == "-":
        return sys.stdin
    return path.open(newline="", encoding="utf-8")
