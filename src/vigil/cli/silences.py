"""Silences from the shell: ``vigil snooze`` (one rule, for a while) and ``vigil maintenance``
(planned one-off or weekly windows). A silenced rule keeps its history but opens no incident.

Each command opens the database the server uses (``VIGIL_DATABASE_URL``), does one thing and
closes it. Changes are events in the log, so a running Vigil picks them up within a second or
two (at once on PostgreSQL).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._common import ByOption, default_actor, utcnow, with_store
from vigil.core.errors import ValidationError
from vigil.core.localtime import wall_clock
from vigil.core.silences import MaintenanceWindow, Snooze, WindowKind

if TYPE_CHECKING:
    from vigil.store.repository import Store

# Where `vigil --help` lists the two commands: one concept, as on the dashboard and in the API.
SILENCES = "Silences: rules that open no incident for a while"

maintenance_app = typer.Typer(
    help="Maintenance windows: planned periods in which rules open no incident.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


# -- snooze -----------------------------------------------------------------------------------


def snooze_command(
    metric: Annotated[
        str,
        typer.Argument(
            help="The rule's metric to snooze; or `list`, or `end` followed by the metric."
        ),
    ],
    end_metric: Annotated[
        str | None, typer.Argument(metavar="[METRIC]", help="With `end`: the rule to resume.")
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--for", help="How long: 30m, 2h, 1d, 1h30m.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (required to snooze).")] = None,
    by: ByOption = None,
) -> None:
    """Snooze a rule for a while: it opens no incident and sends nothing, then resumes by itself.

    `vigil snooze METRIC --for 30m --reason "..."` snoozes it;
    `vigil snooze end METRIC` resumes it now;
    `vigil snooze list` shows the active snoozes."""
    actor = by or default_actor()
    if metric == "list":
        _list_snoozes()
        return
    if metric == "end":
        if end_metric is None:
            raise typer.BadParameter("name the rule: vigil snooze end METRIC")
        with_store(lambda store: store.end_snooze(end_metric, by=actor, now=utcnow()))
        Console().print(f"{end_metric} resumed.", highlight=False)
        return
    if end_metric is not None:
        raise typer.BadParameter(f"unexpected argument {end_metric!r}")
    if duration is None:
        raise typer.BadParameter("say for how long: --for 30m")

    async def work(store: Store) -> Snooze:
        snooze = Snooze.for_duration(
            metric,
            duration=parse_duration(duration),
            reason=reason or "",
            by=actor,
            now=utcnow(),
        )
        await store.set_snooze(snooze)
        return snooze

    snooze = with_store(work)
    Console().print(
        f"{metric} snoozed until {snooze.until.isoformat(timespec='seconds')}.", highlight=False
    )


def _list_snoozes() -> None:
    snoozes = with_store(lambda store: store.active_snoozes(now=utcnow()))
    if not snoozes:
        Console().print("No rule is snoozed.")
        return
    table = Table("metric", "until", "by", "reason")
    for snooze in snoozes:
        table.add_row(
            snooze.metric, snooze.until.isoformat(timespec="seconds"), snooze.by, snooze.reason
        )
    Console().print(table)


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``1h30m``, ``90s``: a positive duration."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValidationError("for", f"{text!r} is not a duration like 30m, 2h, 1d or 1h30m")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration <= timedelta(0):
        raise ValidationError("for", "must be longer than zero")
    return duration


# -- maintenance windows ---------------------------------------------------------------------


@maintenance_app.command("add")
def add_window_command(
    name: Annotated[str, typer.Argument(help="Name: a-z, 0-9, '_' and '-'.")],
    start: Annotated[
        str | None, typer.Option(help="One-off: start, ISO date and time (2026-12-01T22:00).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="One-off: end, ISO date and time.")] = None,
    weekly: Annotated[
        str | None, typer.Option(help="Weekly: the days it starts on, e.g. sat,sun or mon-fri.")
    ] = None,
    start_time: Annotated[
        str | None, typer.Option("--from", help="Weekly: local start time, e.g. 23:00.")
    ] = None,
    end_time: Annotated[
        str | None,
        typer.Option("--to", help="Weekly: local end time; at or before --from ends next day."),
    ] = None,
    timezone: Annotated[
        str,
        typer.Option(help="IANA time zone of --from/--to, and of --start/--end without offset."),
    ] = "UTC",
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="A rule it silences; repeat. All if none.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    by: ByOption = None,
) -> None:
    """Add a one-off window (--start/--end) or a weekly one (--weekly DAYS --from --to)."""
    if weekly is not None and (start is not None or end is not None):
        raise typer.BadParameter("a weekly window takes --from/--to, not --start/--end")
    if weekly is None and (start_time is not None or end_time is not None):
        raise typer.BadParameter("--from/--to are for a weekly window (--weekly DAYS)")
    data: dict[str, object] = {
        "name": name,
        "metrics": metric or None,
        "reason": reason,
        "by": by or default_actor(),
    }

    async def work(store: Store) -> MaintenanceWindow:
        if weekly is not None:
            data.update(
                kind=WindowKind.WEEKLY.value,
                weekdays=_weekdays(weekly),
                start_time=start_time,
                end_time=end_time,
                timezone=timezone,
            )
        else:
            data.update(
                kind=WindowKind.ONCE.value,
                start=_one_off("start", start, timezone),
                end=_one_off("end", end, timezone),
            )
        window, _ = await store.add_window(data, now=utcnow())
        return window

    window = with_store(work)
    Console().print(f"Added maintenance window {window.name}: {_when(window)}.", highlight=False)


@maintenance_app.command("list")
def list_windows_command() -> None:
    """List the maintenance windows and whether each is active now."""
    windows = with_store(lambda store: store.list_windows())
    if not windows:
        Console().print("No maintenance windows.")
        return
    now = utcnow()
    table = Table("name", "when", "rules", "active now", "next change", "reason")
    for window in windows:
        change = window.next_change(now)
        table.add_row(
            window.name,
            _when(window),
            ", ".join(sorted(window.metrics)) if window.metrics is not None else "all",
            "yes" if window.is_active(now) else "no",
            change.isoformat(timespec="minutes") if change else "never",
            window.reason,
        )
    Console().print(table)


@maintenance_app.command("remove")
def remove_window_command(
    name: Annotated[str, typer.Argument(help="The window to remove.")],
    by: ByOption = None,
) -> None:
    """Remove a maintenance window (rules it silences resume at once)."""
    actor = by or default_actor()
    with_store(lambda store: store.delete_window(name, by=actor, now=utcnow()))
    Console().print(f"Removed maintenance window {name}.", highlight=False)


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekdays(text: str) -> list[str]:
    """``sat,sun``, ``mon-fri``, ``fri-mon``; the core checks each name."""
    days: list[str] = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        first, dash, last = part.partition("-")
        if not dash:
            days.append(part)
            continue
        if first not in _DAYS or last not in _DAYS:
            raise ValidationError("weekdays", f"{part!r} is not a range like mon-fri")
        i, j = _DAYS.index(first), _DAYS.index(last)
        days.extend(_DAYS[(i + k) % 7] for k in range((j - i) % 7 + 1))
    return days


def _one_off(field: str, text: str | None, timezone: str) -> datetime:
    if text is None:
        raise ValidationError(field, "is required for a one-off window (or use --weekly)")
    return wall_clock(field, text, timezone)


def _when(window: MaintenanceWindow) -> str:
    data = window.to_dict()
    if window.kind is WindowKind.ONCE:
        return f"{data['start']} to {data['end']}"
    days = ",".join(data["weekdays"])
    return f"{days} {data['start_time']}-{data['end_time']} {data['timezone']}"
