"""``vigil backtest``: replay a CSV trace of readings through the real evaluator.

The CSV has a header ``timestamp,metric,value``, or ``timestamp,metric,value,instance`` for
rules split per instance. Every distinct timestamp is one evaluation cycle whose readings are
that timestamp's rows; a metric with no row at a timestamp has no data in that cycle. The
rules are the built-in ones, or a rules file's (``--rules``), with ``--rule`` changes on top.
The replay itself is ``vigil.backtest``; this module reads the files and prints the report.

Flap detection follows the settings (``VIGIL_FLAP_*``); the report ends with the
notifications the trace sends without flap detection and with it, so its effect shows before
it is turned on (or off).
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
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vigil.backtest import Cycle, Report, replay
from vigil.cli._common import console, print_error, utcnow, with_store
from vigil.cli.rules import new_rule, parse_rule_spec
from vigil.core import DEFAULT_RULES, Rule, ValidationError, VigilError
from vigil.core.flapping import FlapSettings
from vigil.core.rules import Kind
from vigil.preview import Preview, parse_since, preview
from vigil.rulesfile import load
from vigil.settings import Settings

if TYPE_CHECKING:
    from vigil.store import Store

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
        line = f"{name}: {count} {noun}, {_duration(seconds)} in incident"
        flaps = report.flaps.get(name, 0)
        if flaps:
            line += f", flapping {flaps} {'time' if flaps == 1 else 'times'}"
        console.print(line)
    if report.group_window > 0:
        console.print(
            f"Notifications to a channel hearing every event: {report.notifications} one per "
            f"event; {report.grouped_notifications} with incident grouping "
            f"({report.group_window:g} s window; groups of two or more: {report.groups})",
            highlight=False,
        )


def flap_choice() -> tuple[FlapSettings, bool]:
    """Flap detection as the settings have it, and whether they turn it on."""
    settings = Settings.from_env()
    flap = FlapSettings(window=settings.flap_window, high=settings.flap_high, low=settings.flap_low)
    return flap, settings.flap_detection


def print_flap_comparison(
    without: Report, with_flap: Report, flap: FlapSettings, out: Console
) -> None:
    flaps = sum(with_flap.flaps.values())
    out.print(
        f"Notifications: {without.notifications} without flap detection, "
        f"{with_flap.notifications} with it (window {flap.window}, flapping above "
        f"{flap.high:g}%, calm below {flap.low:g}%; {flaps} "
        "series began to flap)",
        highlight=False,
    )


def backtest_command(
    trace: Annotated[
        Path | None,
        typer.Argument(
            help="CSV file with the header timestamp,metric,value (and optionally instance); "
            "not with --from-db.",
            show_default=False,
        ),
    ] = None,
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
    from_db: Annotated[
        bool,
        typer.Option(
            "--from-db",
            help="Replay the samples stored in the database (VIGIL_DATABASE_URL) instead of "
            "a file, with the saved rules; beside them, what the saved rules did when "
            "--rules or --rule changes them.",
        ),
    ] = False,
    group_window: Annotated[
        float | None,
        typer.Option(
            "--group-window",
            min=0,
            max=86_400,
            help="Seconds of incident grouping's correlation window, for the count of "
            "notifications with grouping (0: leave it out). Default: two of the trace's "
            "cycles, as the monitor's default is two intervals.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="With --from-db: how far back (30m, 24h, 7d, 2w) or an ISO-8601 start. "
            "Default 24h.",
        ),
    ] = None,
) -> None:
    """Replay a trace of readings through the evaluator and show the incidents it raises."""
    if from_db:
        if trace is not None:
            print_error("give a trace file or --from-db, not both")
            raise typer.Exit(2)
        from_database(since or "24h", rules_file, rule or [], as_json=as_json)
        return
    if trace is None:
        print_error("give a trace file (CSV), or --from-db to replay the stored samples")
        raise typer.Exit(2)
    if since is not None:
        print_error("--since goes with --from-db")
        raise typer.Exit(2)
    try:
        flap, flap_on = flap_choice()
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
    if group_window is None:
        group_window = default_group_window(parsed.cycles)
    without = replay(parsed.cycles, rules, group_window=group_window)
    with_flap = replay(parsed.cycles, rules, flap=flap, group_window=group_window)
    report = with_flap if flap_on else without
    if as_json:
        for outcome in report.outcomes:
            sys.stdout.write(json.dumps(outcome.to_json()) + "\n")
    else:
        out = console()
        print_report(report, rules, out)
        print_flap_comparison(without, with_flap, flap, out)


def default_group_window(cycles: Sequence[Cycle]) -> float:
    """Two of the trace's cycles (the first two's spacing): the monitor's default window is
    two intervals."""
    if len(cycles) < 2:
        return 0.0
    return 2 * (cycles[1].time - cycles[0].time).total_seconds()


def _open(path: Path) -> TextIO:
    if str(path) == "-":
        return sys.stdin
    return path.open(newline="", encoding="utf-8")


def choose_rules(
    saved: Mapping[str, Rule], rules_file: Path | None, specs: Sequence[str]
) -> dict[str, Rule]:
    """The rules to replay from the database: the rules file's or the saved ones, changed by
    ``--rule NAME:KEY=VALUE``; only those named by ``--rule`` when any is given (a bare
    ``--rule NAME`` must name one of them)."""
    base = load_rules(rules_file) if rules_file is not None else dict(saved)
    changes = [spec for spec in specs if ":" in spec]
    rules = apply_overrides(base, changes)
    if not specs:
        return rules
    chosen: dict[str, Rule] = {}
    for spec in specs:
        name = spec.partition(":")[0].strip()
        if name not in rules:
            where = "the rules file" if rules_file is not None else "the database"
            known = ", ".join(sorted(rules)) or "none"
            raise ValidationError("--rule", f"no rule named {name!r} in {where} (rules: {known})")
        chosen[name] = rules[name]
    return chosen


def from_database(
    since: str, rules_file: Path | None, specs: Sequence[str], *, as_json: bool
) -> None:
    """``vigil backtest --from-db``: replay the stored samples (see ``vigil.preview``)."""

    end = utcnow()
    try:
        start = parse_since(since, end, field="--since")
        if rules_file is not None:
            load_rules(rules_file)  # its problems before the database's
    except (VigilError, OSError) as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    settings = Settings.from_env()

    async def work(store: Store) -> tuple[dict[str, Rule], dict[str, Rule], Preview]:
        saved_rules = {r.name: r for r in await store.list_rules()}
        rules = choose_rules(saved_rules, rules_file, specs)
        saved = {n: saved_rules[n] for n in rules if n in saved_rules}
        compare = saved if saved != rules else None
        result = await preview(
            store,
            rules,
            saved=compare,
            start=start,
            end=end,
            interval=settings.interval,
            own_instance=settings.instance,
            flap=settings.flap,
            group_window=settings.effective_group_window,
        )
        return rules, saved, result

    rules, saved, result = with_store(work)
    if as_json:
        for outcome in result.proposed.report.outcomes:
            sys.stdout.write(json.dumps(outcome.to_json()) + "\n")
        return
    out = console()
    out.print(
        f"{result.samples} samples from {result.start:%Y-%m-%d %H:%M:%S} to "
        f"{result.end:%Y-%m-%d %H:%M:%S} UTC",
        highlight=False,
    )
    print_report(result.proposed.report, rules, out)
    if result.proposed.group_window <= 0:  # else print_report told both counts
        out.print(f"{result.proposed.notifications} notifications", highlight=False)
    if result.saved is not None:
        out.print("\nThe saved rules over the same period:", highlight=False)
        print_report(result.saved.report, saved, out)
        if result.saved.group_window <= 0:
            out.print(f"{result.saved.notifications} notifications", highlight=False)
