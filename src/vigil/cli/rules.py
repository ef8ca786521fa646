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
from vigil.store import Store

rules_app = typer.Typer(
    help="Alert rules: list them, change their thresholds.", no_args_is_help=True
)

RULE_KEYS = {
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
}


def parse_rule_spec(spec: str, *, field: str = "--rule") -> tuple[str, dict[str, Any]]:
    """``metric:key=value,key=value`` -> (metric, changes); ``null`` clears a field.

    ``field`` is what an error names: the option or argument the spec was given as."""
    metric, sep, body = spec.partition(":")
    if not sep or not body:
        raise ValidationError(field, f"{spec!r}: expected METRIC:KEY=VALUE[,KEY=VALUE]")
    changes: dict[str, Any] = {}
    for item in body.split(","):
        key, eq, raw = item.partition("=")
        name = RULE_KEYS.get(key.strip())
        if not eq or name is None:
            known = ", ".join(sorted(RULE_KEYS))
            reason = f"{spec!r}: unknown setting {key!r} (known: {known})"
            raise ValidationError(field, reason)
        changes[name] = _setting(name, raw.strip(), spec, field)
    return metric.strip(), changes


def _setting(name: str, raw: str, spec: str, field: str) -> object:
    if raw.lower() in ("null", "none", ""):
        return None
    if name in ("direction", "aggregate", "unit"):
        return raw
    if name == "enabled":
        if raw.lower() not in ("true", "false"):
            raise ValidationError(field, f"{spec!r}: enabled must be true or false")
        return raw.lower() == "true"
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
            metavar="METRIC:CHANGES",
        ),
    ],
    by: ByOption = None,
) -> None:
    """Change a rule, e.g. `vigil rules set gateway_latency:warning=150,critical=null`."""
    try:
        metric, changes = parse_rule_spec(spec, field="METRIC:CHANGES")
    except VigilError as exc:
        raise fail(exc, code=2) from None
    author = by or default_actor()

    async def change(store: Store) -> Rule:
        rule, _ = await store.update_rule(metric, changes, by=author, now=utcnow())
        return rule

    console().print(_table([with_store(change)]))
