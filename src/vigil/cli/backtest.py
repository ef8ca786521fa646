"""``vigil backtest``: replay a CSV trace of readings through the real evaluator.

The CSV has a header ``timestamp,metric,value``. Every distinct timestamp is one evaluation
cycle whose readings are that timestamp's rows; a rule with no row at a timestamp has no data
in that cycle. The replay itself is ``vigil.backtest``; this module reads the file, applies
``--rule`` overrides and prints the report.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.table import Table

from vigil.backtest import Cycle, Report, replay
from vigil.cli._common import console, print_error
from vigil.cli.rules import parse_rule_spec
from vigil.core import DEFAULT_RULES, Rule, ValidationError, VigilError

HEADER = ["timestamp", "metric", "value"]


class TraceError(VigilError):
    """A malformed line in a trace: names the line and the reason."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


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
        metric, changes = parse_rule_spec(spec, field="--rule")
        try:
            if metric in result:
                result[metric] = result[metric].updated(changes)
            else:
                result[metric] = Rule(metric=metric, **changes)
        except ValidationError as exc:
            raise ValidationError("--rule", f"{spec!r}: {exc}") from None
    return result


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
    try:
        rules = apply_overrides({r.metric: r for r in DEFAULT_RULES}, rule or [])
        with _open(trace) as handle:
            cycles = read_trace(handle, rules)
    except (VigilError, OSError, UnicodeDecodeError) as exc:
        where = f"{trace}: " if isinstance(exc, TraceError) else ""
        print_error(f"{where}{exc}")
        raise typer.Exit(2) from None
    report = replay(cycles, rules)
    if as_json:
        for outcome in report.outcomes:
            sys.stdout.write(json.dumps(outcome.to_json()) + "\n")
    else:
        print_report(report, rules, console())


def _open(path: Path) -> TextIO:
    if str(path) == "-":
        return sys.stdin
    return path.open(newline="", encoding="utf-8")
