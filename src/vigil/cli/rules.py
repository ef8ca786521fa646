"""``vigil rules list|set``: read and change rules from the shell, beside a running server
(which picks the change up from the event log within a second or two).

``METRIC:KEY=VALUE[,KEY=VALUE]`` is how a rule change is written on the command line, here
and in ``vigil backtest --rule``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from vigil.cli._common import ByOption, console, default_actor, fail, utcnow, with_store
from vigil.core import Rule, ValidationError, VigilError
from vigil.rulesfile import parse_duration
from vigil.store import Store

rules_app = typer.Typer(
    help="Alert rules: list them, change their thresholds.", no_args_is_help=True
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
        "display_name",
        "description",
    }
)
DURATION_KEYS = frozenset({"absent_for", "stale_after"})
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


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _table(rules: list[Rule]) -> Table:
    table = Table(title="Rules", title_justify="left")
    for column in (
        "metric",
        "unit",
        "warning",
        "critical",
        "direction",
        "breaches",
        "recoveries",
        "recovery",
        "aggregate",
        "enabled",
    ):
        table.add_column(column)
    for rule in rules:
        table.add_row(
            rule.metric,
            rule.unit,
            _number(rule.warning),
            _number(rule.critical),
            rule.direction.value,
            str(rule.breaches_required),
            str(rule.recoveries_required),
            _number(rule.recovery),
            rule.aggregate.value,
            "yes" if rule.enabled else "no",
        )
    return table


@rules_app.command("list")
def rules_list() -> None:
    """Every rule and its thresholds."""
    console().print(_table(with_store(lambda store: store.list_rules())))


@rules_app.command("set")
def rules_set(
    spec: Annotated[
        str,
        typer.Argument(
            help="METRIC:KEY=VALUE[,KEY=VALUE]; keys: warning, critical, recovery, breaches, "
            "recoveries, direction, enabled, aggregate, unit. null clears a threshold.",
            metavar="NAME:CHANGES",
        ),
    ],
    by: ByOption = None,
) -> None:
    """Change a rule, e.g. `vigil rules set gateway_latency:warning=150,critical=null`."""
    try:
        metric, changes = parse_rule_spec(spec, field="NAME:CHANGES")
    except VigilError as exc:
        raise fail(exc, code=2) from None
    author = by or default_actor()

    async def change(store: Store) -> Rule:
        rule, _ = await store.update_rule(metric, changes, by=author, now=utcnow())
        return rule

    console().print(_table([with_store(change)]))
