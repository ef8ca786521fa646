"""``vigil rules list|show|add|set|remove|enable|disable|suggest|export|apply``: the rules from the
shell, beside a running server (which picks each change up from the event log within a second
or two).

``NAME:KEY=VALUE[,KEY=VALUE]`` is how a rule (or a change to one) is written on the command
line, here and in ``vigil backtest --rule``. ``export`` and ``apply`` speak the YAML rules file
of ``vigil.rulesfile``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from vigil.cli._common import ByOption, console, default_actor, fail, utcnow, with_store
from vigil.core import Direction, Rule, ValidationError, VigilError
from vigil.core.rules import Kind
from vigil.preview import Suggested, parse_since, suggest
from vigil.rulesfile import RulesFileError, dump, load, parse_duration
from vigil.settings import Settings

if TYPE_CHECKING:
    from vigil.store import RulePlan, Store

rules_app = typer.Typer(
    help="Alert rules: list, show, add, change, remove; export to and apply a YAML file.",
    no_args_is_help=True,
)

RULE_KEYS = {
    "kind": "kind",
    "metric": "metric",
    "condition": "condition",
    "severity": "severity",
    "warning": "warning",
    "critical": "critical",
    "recovery": "recovery",
    "breaches": "breaches_required",
    "breaches_required": "breaches_required",
    "recoveries": "recoveries_required",
    "recoveries_required": "recoveries_required",
    "direction": "direction",
    "enabled": "enabled",
    "aggregate": "aggregate",
    "unit": "unit",
    "absent_for": "absent_for",
    "split": "split_by",
    "split_by": "split_by",
    "no_data": "no_data",
    "stale_after": "stale_after",
    "group": "group_label",
    "group_label": "group_label",
    "sensitivity": "sensitivity",
    "horizon": "horizon",
    "lookback": "lookback",
    "min_history": "min_history",
    "display_name": "display_name",
    "description": "description",
}
TEXT_KEYS = frozenset(
    {
        "kind",
        "metric",
        "condition",
        "severity",
        "direction",
        "aggregate",
        "unit",
        "split_by",
        "no_data",
        "group_label",
        "display_name",
        "description",
    }
)
DURATION_KEYS = frozenset({"absent_for", "stale_after", "horizon", "lookback", "min_history"})
SPEC_FORMAT = "NAME:KEY=VALUE[,KEY=VALUE]"


def parse_rule_spec(spec: str, *, field: str = "--rule") -> tuple[str, dict[str, Any]]:
    """``name:key=value,key=value`` -> (name, changes); ``null`` clears a field.

    A value holding a comma is quoted (``description="slow, then down"``); a quoted value is
    taken as written (``unit=""`` is empty text, not a cleared field). ``field`` is what an
    error names: the option or argument the spec was given as."""
    name, sep, body = spec.partition(":")
    if not sep or not body.strip():
        raise ValidationError(field, f"{spec!r}: expected {SPEC_FORMAT}")
    changes: dict[str, Any] = {}
    for item in _items(body, spec, field):
        key, eq, raw = item.partition("=")
        key_name = RULE_KEYS.get(key.strip())
        if not eq or key_name is None:
            known = ", ".join(sorted(RULE_KEYS))
            reason = f"{spec!r}: unknown setting {key.strip()!r} (known: {known})"
            raise ValidationError(field, reason)
        changes[key_name] = _setting(key_name, raw.strip(), spec, field)
    return name.strip(), changes


def _items(body: str, spec: str, field: str) -> list[str]:
    """``body`` split at the commas outside quotes."""
    items: list[str] = []
    current: list[str] = []
    quote = ""
    for char in body:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ",":
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote:
        raise ValidationError(field, f"{spec!r}: a quote ({quote}) is not closed")
    items.append("".join(current))
    return items


def _setting(name: str, raw: str, spec: str, field: str) -> object:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]  # quoted: the text as written
    if raw.lower() in ("null", "none", ""):
        return None
    if name in TEXT_KEYS:
        return raw
    if name == "enabled":
        if raw.lower() not in ("true", "false"):
            raise ValidationError(field, f"{spec!r}: enabled must be true or false")
        return raw.lower() == "true"
    if name in DURATION_KEYS:
        try:
            return parse_duration(raw)
        except ValueError as exc:
            raise ValidationError(field, f"{spec!r}: {name} {exc}") from None
    try:
        return int(raw) if name.endswith("_required") else float(raw)
    except ValueError:
        raise ValidationError(field, f"{spec!r}: {name} {raw!r} is not a number") from None


def new_rule(name: str, fields: dict[str, Any]) -> Rule:
    """The rule a spec defines; a rule that watches a metric watches the one of its name
    unless the spec names another (``queue_depth:critical=500``)."""
    data = {"name": name, **fields}
    if data.get("kind", Kind.THRESHOLD) != Kind.COMPOSITE:
        data.setdefault("metric", name)
    return Rule.from_dict(data)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _watches(rule: Rule) -> str:
    """What a rule looks at, in a word: its metric, or its condition."""
    if rule.condition is not None:
        return str(rule.condition)
    return rule.metric or "-"


def _limits(rule: Rule) -> str:
    if rule.kind is Kind.ABSENT:
        return f"no sample for {_number(rule.absent_for)} s ({rule.severity})"
    if rule.kind is Kind.COMPOSITE:
        return f"holds ({rule.severity})"
    if rule.kind is Kind.ANOMALY:
        return f"outside {_number(rule.sensitivity)} spreads of its baseline ({rule.severity})"
    ahead = f" within {_number(rule.horizon)} s" if rule.kind is Kind.FORECAST else ""
    sign = ">=" if rule.direction is Direction.ABOVE else "<="
    parts = [
        f"{level} {sign} {_number(value)}"
        for level, value in (("warning", rule.warning), ("critical", rule.critical))
        if value is not None
    ]
    return ", ".join(parts) + ahead


def _table(rules: list[Rule]) -> Table:
    table = Table(title="Rules", title_justify="left")
    for column in ("name", "kind", "watches", "alerts when", "unit", "split", "enabled"):
        table.add_column(column)
    for rule in rules:
        table.add_row(
            rule.name,
            rule.kind.value,
            _watches(rule),
            _limits(rule),
            rule.unit,
            rule.split_by.value,
            "yes" if rule.enabled else "no",
        )
    return table


def _details(rule: Rule) -> Table:
    table = Table(title=f"Rule {rule.name}", title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for key, value in rule.to_dict().items():
        table.add_row(key, "-" if value is None else str(value))
    return table


def _spec(spec: str, argument: str) -> tuple[str, dict[str, Any]]:
    """A spec from the command line; a malformed one is a usage error (status 2)."""
    try:
        return parse_rule_spec(spec, field=argument)
    except VigilError as exc:
        raise fail(exc, code=2) from None


SpecArgument = Annotated[
    str,
    typer.Argument(
        help="NAME:KEY=VALUE[,KEY=VALUE]; keys: " + ", ".join(sorted(RULE_KEYS)) + ". null "
        "clears a field; quote a value that holds a comma.",
        metavar="NAME:FIELDS",
    ),
]
NameArgument = Annotated[str, typer.Argument(help="The rule's name.")]


@rules_app.command("list")
def rules_list() -> None:
    """Every rule: its kind, what it watches and when it alerts."""
    console().print(_table(with_store(lambda store: store.list_rules())))


@rules_app.command("show")
def rules_show(name: NameArgument) -> None:
    """Every field of one rule."""
    console().print(_details(with_store(lambda store: store.get_rule(name))))


@rules_app.command("add")
def rules_add(spec: SpecArgument, by: ByOption = None) -> None:
    """Add a rule, e.g. `vigil rules add queue_backlog:metric=queue_depth,critical=500`
    or `vigil rules add slow:kind=composite,condition="p95_latency >= 500 and errors >= 5"`."""
    name, fields = _spec(spec, "NAME:FIELDS")
    try:
        rule = new_rule(name, fields)
    except VigilError as exc:
        raise fail(exc, code=1) from None
    author = by or default_actor()

    async def add(store: Store) -> Rule:
        limit = Settings.from_env().max_rules
        added, _ = await store.add_rule(rule, by=author, now=utcnow(), max_rules=limit)
        return added

    console().print(_table([with_store(add)]))


@rules_app.command("set")
def rules_set(spec: SpecArgument, by: ByOption = None) -> None:
    """Change some fields of a rule, e.g.
    `vigil rules set gateway_latency:warning=150,critical=null`."""
    name, changes = _spec(spec, "NAME:FIELDS")
    console().print(_table([_change(name, changes, by)]))


@rules_app.command("enable")
def rules_enable(name: NameArgument, by: ByOption = None) -> None:
    """Switch a rule on."""
    console().print(_table([_change(name, {"enabled": True}, by)]))


@rules_app.command("disable")
def rules_disable(name: NameArgument, by: ByOption = None) -> None:
    """Switch a rule off: it keeps its history and opens no incident."""
    console().print(_table([_change(name, {"enabled": False}, by)]))


def _change(name: str, changes: dict[str, Any], by: str | None) -> Rule:
    author = by or default_actor()

    async def change(store: Store) -> Rule:
        rule, _ = await store.update_rule(name, changes, by=author, now=utcnow())
        return rule

    return with_store(change)


@rules_app.command("remove")
def rules_remove(name: NameArgument, by: ByOption = None) -> None:
    """Delete a rule. Its open incidents are resolved (note "rule deleted"); its history stays."""
    author = by or default_actor()
    with_store(lambda store: store.delete_rule(name, by=author, now=utcnow()))
    console().print(f"Removed rule {name}.")


@rules_app.command("suggest")
def rules_suggest(
    name: NameArgument,
    since: Annotated[
        str, typer.Option(help="How far back: 24h, 7d, 30d, 2w... or an ISO-8601 start.")
    ] = "30d",
) -> None:
    """Thresholds for a threshold rule learned from its metric's stored history, and what they
    would have done over it. Nothing is saved: apply them with `vigil rules set`."""
    end = utcnow()
    try:
        start = parse_since(since, end, field="--since")
    except VigilError as exc:
        raise fail(exc, code=2) from None
    settings = Settings.from_env()

    async def work(store: Store) -> Suggested:
        rule = await store.get_rule(name)
        return await suggest(
            store,
            rule,
            start=start,
            end=end,
            interval=settings.interval,
            own_instance=settings.instance,
            flap=settings.flap,
        )

    result = with_store(work)
    console().print(result.explanation(), highlight=False)
    if result.rule is not None:
        console().print(
            f"Apply: vigil rules set {name}:warning={result.rule.warning:g},"
            f"critical={result.rule.critical:g}",
            highlight=False,
            soft_wrap=True,
        )


@rules_app.command("export")
def rules_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Every rule as a YAML rules file, e.g. `vigil rules export > rules.yaml`."""
    text = dump(with_store(lambda store: store.list_rules()))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@rules_app.command("apply")
def rules_apply(
    file: Annotated[Path, typer.Argument(help="A YAML rules file (see `vigil rules export`).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also remove the rules the file does not list.")
    ] = False,
    by: ByOption = None,
) -> None:
    """Make the rules match a file: add the new, change the different, keep the same (and with
    --prune remove the others), in one transaction. A bad file changes nothing."""
    try:
        rules = load(file)
    except RulesFileError as exc:
        raise fail(exc, code=2) from None
    author = by or default_actor()

    async def apply(store: Store) -> RulePlan:
        return await store.apply_rules(
            rules,
            by=author,
            now=utcnow(),
            prune=prune,
            dry_run=dry_run,
            max_rules=Settings.from_env().max_rules,
        )

    plan = with_store(apply)
    out = console()
    for rule in plan.added:
        out.print(f"+ add {rule.name}")
    for rule, changes in plan.changed:
        fields = ", ".join(sorted(changes))
        out.print(f"~ change {rule.name} ({fields})")
    for name in plan.removed:
        out.print(f"- remove {name}")
    counts = (
        f"{len(plan.added)} to add, {len(plan.changed)} to change, {len(plan.removed)} to "
        f"remove, {len(plan.unchanged)} unchanged"
    )
    out.print(f"Dry run, nothing changed: {counts}." if dry_run else f"Applied: {counts}.")
