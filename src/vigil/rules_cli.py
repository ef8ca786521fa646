"""``vigil rules list|set``: read and change rules from the shell, beside a running server
(which picks the change up from the event log within a second or two)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.backtest import parse_rule_spec
from vigil.cli._common import with_store
from vigil.core import Rule, VigilError
from vigil.store import Store

rules_app = typer.Typer(
    help="Alert rules: list them, change their thresholds.", no_args_is_help=True
)


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 160  # a pipe or a file has no width: do not squeeze the table
    return console


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
    _console().print(_table(with_store(lambda store: store.list_rules())))


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
    by: Annotated[str | None, typer.Option(help="Who changes it (recorded).")] = None,
) -> None:
    """Change a rule, e.g. `vigil rules set gateway_latency:warning=150,critical=null`."""
    try:
        metric, changes = parse_rule_spec(spec)
    except VigilError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    author = by or f"cli:{getpass.getuser()}"

    async def change(store: Store) -> Rule:
        rule, _ = await store.update_rule(metric, changes, by=author, now=datetime.now(UTC))
        return rule

    _console().print(_table([with_store(change)]))
