"""``vigil backtest``: replay a CSV trace of readings through the real evaluator.

The CSV has a header ``timestamp,metric,value``, or ``timestamp,metric,value,instance`` for
rules split per instance. Every distinct timestamp is one evaluation cycle whose readings are
that timestamp's rows; a metric with no row at a timestamp has no data in that cycle. The
rules are the built-in ones, or a rules file's (``--rules``), with ``--rule`` changes on top.
The replay itself is ``vigil.backtest``; this module reads the files and prints the report.
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
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vigil.backtest import Cycle, Report, replay
from vigil.cli._common import console, print_error
from vigil.cli.rules import new_rule, parse_rule_spec
from vigil.core import DEFAULT_RULES, Rule, ValidationError, VigilError
from vigil.core.rules import Kind
from vigil.rulesfile import load

HEADER = ["timestamp", "metric", "value"]
HEADER_WITH_INSTANCE = [*HEADER, "instance"]


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


@dataclass
class Trace:
    """A parsed trace: its cycles in time order, and the metrics of rows that no rule reads
    (skipped, and said so)."""

    cycles: list[Cycle]
    unread: set[str] = field(default_factory=set)


def read_trace(lines: Iterable[str], rules: Mapping[str, Rule]) -> Trace:
    """Parse and check a whole trace; the first bad line raises ``TraceError``."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise TraceError(1, "the file is empty; expected the header timestamp,metric,value")
    columns = [h.strip().lower() for h in header]
    if columns not in (HEADER, HEADER_WITH_INSTANCE):
        raise TraceError(
            1,
            "expected the header timestamp,metric,value (or timestamp,metric,value,instance), "
            f"got {','.join(header)}",
        )
    width = len(columns)
    read = {metric for rule in rules.values() for metric in rule.metrics}
    trace = Trace([])
    cycles: dict[datetime, Cycle] = {}
    first_line: dict[tuple[datetime, str, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != width:
            raise TraceError(line, f"expected {width} fields ({','.join(columns)}), got {len(row)}")
        stamp, metric, raw, *rest = (cell.strip() for cell in row)
        instance = rest[0] if rest else ""
        try:
            moment = parse_time(stamp)
        except ValueError:
            raise TraceError(line, f"timestamp {stamp!r} is not ISO-8601 or Unix seconds") from None
        try:
            value = float(raw)
        except ValueError:
            raise TraceError(line, f"value {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise TraceError(line, f"value {raw!r} is not a finite number")
        key = (moment, metric, instance)
        if key in first_line:
            at = f"{stamp} on {instance}" if instance else stamp
            raise TraceError(line, f"{metric} already has a value at {at} (line {first_line[key]})")
        first_line[key] = line
        if metric not in read:
            trace.unread.add(metric)
            continue
        cycle = cycles.setdefault(moment, Cycle(stamp, moment, {}))
        cycle.readings.setdefault(metric, {})[instance] = value
    trace.cycles = [cycles[moment] for moment in sorted(cycles)]
    return trace


def apply_overrides(rules: Mapping[str, Rule], specs: Sequence[str]) -> dict[str, Rule]:
    """``name:key=value,key=value``; ``null`` clears a field; an unknown name defines a new
    rule (watching the metric of that name unless the spec says otherwise)."""
    result = dict(rules)
    for spec in specs:
        name, changes = parse_rule_spec(spec, field="--rule")
        try:
            if name in result:
                result[name] = result[name].updated(changes)
            else:
                result[name] = new_rule(name, changes)
        except ValidationError as exc:
            raise ValidationError("--rule", f"{spec!r}: {exc}") from None
    return result


def load_rules(path: Path | None) -> dict[str, Rule]:
    """The rules of a rules file, or the built-in ones."""
    found = load(path) if path is not None else DEFAULT_RULES
    return {rule.name: rule for rule in found}


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def print_report(report: Report, rules: Mapping[str, Rule], console: Console) -> None:
    table = Table(title=f"Incidents over {report.cycles} cycles", title_justify="left")
    for column in ("rule", "severity", "opened", "escalated", "resolved", "value", "peak"):
        table.add_column(column)
    for o in report.outcomes:
        rule = rules.get(o.rule)
        unit = rule.unit if rule is not None else ""
        table.add_row(
            f"{o.rule} ({o.instance})" if o.instance else o.rule,
            o.severity,
            o.opened_at,
            o.escalated_at or "-",
            o.resolved_at or "still open",
            f"{o.value:.2f} {unit}",
            f"{o.peak_value:.2f} {unit}",
        )
    console.print(table)
    totals = report.per_rule()
    for name, rule in rules.items():
        if not report.metrics.intersection(rule.metrics) and rule.kind is not Kind.ABSENT:
            continue  # no reading for it: nothing to say
        count, seconds = totals.get(name, (0, 0.0))
        noun = "incident" if count == 1 else "incidents"
        console.print(f"{name}: {count} {noun}, {_duration(seconds)} in incident")


def backtest_command(
    trace: Annotated[
        Path,
        typer.Argument(
            help="CSV file with the header timestamp,metric,value (and optionally instance)."
        ),
    ],
    rules_file: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="A YAML rules file (as `vigil rules export` writes): its rules, of every "
            "kind, instead of the built-in ones.",
        ),
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="Change or add a rule: NAME:KEY=VALUE[,KEY=VALUE], as `vigil rules set` "
            "and `vigil rules add` take it. null clears a field.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per incident.")
    ] = False,
) -> None:
    """Replay a trace of readings through the evaluator and show the incidents it raises."""
    try:
        rules = apply_overrides(load_rules(rules_file), rule or [])
        with _open(trace) as handle:
            parsed = read_trace(handle, rules)
    except (VigilError, OSError, UnicodeDecodeError) as exc:
        where = f"{trace}: " if isinstance(exc, TraceError) else ""
        print_error(f"{where}{exc}")
        raise typer.Exit(2) from None
    if parsed.unread:
        metrics = ", ".join(sorted(parsed.unread))
        Console(stderr=True, soft_wrap=True).print(
            f"note: skipped the rows of metrics no rule reads: {escape(metrics)}", highlight=False
        )
    report = replay(parsed.cycles, rules)
    if as_json:
        for outcome in report.outcomes:
            sys.stdout.write(json.dumps(outcome.to_json()) + "\n")
    else:
        print_report(report, rules, console())


def _open(path: Path) -> TextIO:
    if str(path) == "-":
        return sys.stdin
    return path.open(newline="", encoding="utf-8")
