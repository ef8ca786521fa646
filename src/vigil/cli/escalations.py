"""``vigil escalations add|list|show|set|remove``: who hears of an unacknowledged incident,
and when.

A step is written ``CHANNELS[:MINUTES]``: ``ops,team:15`` tells ops and team, and goes on to
the next step if the incident is still unacknowledged 15 minutes later (15 when left out).
Each command opens the database the server uses (``VIGIL_DATABASE_URL``); a running Vigil
reads the policies on its next check (within ``VIGIL_DELIVERY_CHECK_EVERY`` seconds).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._common import ByOption, default_actor, fail, utcnow, with_store
from vigil.core.errors import ValidationError
from vigil.core.escalation import EscalationPolicy

escalations_app = typer.Typer(
    help="Escalation policies: steps of channels an unacknowledged incident goes through.",
    no_args_is_help=True,
)

StepsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--step",
        help="A step, CHANNELS[:MINUTES], e.g. 'ops,team:15'; repeat the option for each, "
        "in order.",
    ),
]
RepeatOption = Annotated[
    int | None,
    typer.Option(help="After the last step, tell its channels again this often (minutes)."),
]
RulesOption = Annotated[
    list[str] | None, typer.Option("--rule", help="A rule that follows this policy (repeatable).")
]
SeveritiesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--severity",
        help="info, warning or critical: the default policy for it (repeatable).",
    ),
]


def parse_step(n: int, text: str) -> dict[str, Any]:
    """``ops,team:15`` as a step; ``ValidationError`` naming ``steps[n]`` if it is not one."""
    channels, _, minutes = text.partition(":")
    step: dict[str, Any] = {
        "channels": [part.strip() for part in channels.split(",") if part.strip()]
    }
    if minutes:
        try:
            step["wait_minutes"] = int(minutes)
        except ValueError:
            raise ValidationError(
                f"steps[{n}].wait_minutes", f"must be whole minutes, got {minutes!r}"
            ) from None
    return step


def _steps(texts: list[str]) -> list[dict[str, Any]]:
    try:
        return [parse_step(n, text) for n, text in enumerate(texts)]
    except ValidationError as exc:
        raise fail(exc) from None


def step_text(policy: EscalationPolicy) -> str:
    return " -> ".join(f"{','.join(s.channels)} ({s.wait_minutes} min)" for s in policy.steps)


@escalations_app.command("add")
def add_policy_command(
    name: Annotated[str, typer.Argument(help="Name: a-z, 0-9, '_' and '-'.")],
    step: StepsOption = None,
    repeat_minutes: RepeatOption = None,
    rule: RulesOption = None,
    severity: SeveritiesOption = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    by: ByOption = None,
) -> None:
    """Add a policy. Its steps must name existing channels; a rule, or a severity, follows
    at most one policy."""
    data = {
        "name": name,
        "description": description,
        "steps": _steps(step or []),
        "repeat_minutes": repeat_minutes,
        "rules": rule or [],
        "severities": severity or [],
    }
    actor = by or default_actor()
    policy = with_store(lambda store: store.add_policy(data, now=utcnow(), by=actor))
    Console().print(f"Added escalation policy {policy.name}: {step_text(policy)}.", highlight=False)


@escalations_app.command("set")
def set_policy_command(
    name: Annotated[str, typer.Argument(help="The policy to change.")],
    step: StepsOption = None,
    repeat_minutes: RepeatOption = None,
    no_repeat: Annotated[
        bool, typer.Option("--no-repeat", help="Stop after the last step.")
    ] = False,
    rule: RulesOption = None,
    no_rules: Annotated[bool, typer.Option("--no-rules", help="Follow no rule.")] = False,
    severity: SeveritiesOption = None,
    no_severities: Annotated[
        bool, typer.Option("--no-severities", help="The default for no severity.")
    ] = False,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    by: ByOption = None,
) -> None:
    """Change a policy: the options given replace those fields; the rest keep theirs."""
    changes: dict[str, Any] = {}
    if step:
        changes["steps"] = _steps(step)
    if no_repeat:
        changes["repeat_minutes"] = None
    elif repeat_minutes is not None:
        changes["repeat_minutes"] = repeat_minutes
    if no_rules or rule:
        changes["rules"] = rule or []
    if no_severities or severity:
        changes["severities"] = severity or []
    if description is not None:
        changes["description"] = description
    actor = by or default_actor()
    policy = with_store(lambda store: store.update_policy(name, changes, now=utcnow(), by=actor))
    Console().print(
        f"Changed escalation policy {policy.name}: {step_text(policy)}.", highlight=False
    )


@escalations_app.command("list")
def list_policies_command() -> None:
    """List the policies."""
    policies = with_store(lambda store: store.list_policies())
    if not policies:
        Console().print("No escalation policies. Add one with `vigil escalations add NAME`.")
        return
    table = Table("name", "steps", "repeat", "rules", "severities")
    for policy in policies:
        data = policy.to_dict()
        minutes = data["repeat_minutes"]
        table.add_row(
            policy.name,
            step_text(policy),
            f"every {minutes} min" if minutes else "stop",
            ",".join(data["rules"]) or "-",
            ",".join(data["severities"]) or "-",
        )
    Console().print(table)


@escalations_app.command("show")
def show_policy_command(
    name: Annotated[str, typer.Argument(help="The policy to show, as JSON.")],
) -> None:
    """Show a policy as JSON (what the API takes and answers)."""
    policy = with_store(lambda store: store.get_policy(name))
    typer.echo(json.dumps(policy.to_dict(), indent=2))


@escalations_app.command("remove")
def remove_policy_command(
    name: Annotated[str, typer.Argument(help="The policy to remove.")],
    by: ByOption = None,
) -> None:
    """Remove a policy: its incidents are notified as their channels say from then on."""
    actor = by or default_actor()
    with_store(lambda store: store.delete_policy(name, now=utcnow(), by=actor))
    Console().print(f"Removed escalation policy {name}.", highlight=False)
