"""``vigil channels add|list|test|remove``: where Vigil sends incidents.

Each command opens the database the server uses (``VIGIL_DATABASE_URL``), does one thing and
closes it. Changes are events in the log, so a running Vigil picks them up within a second or
two (at once on PostgreSQL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._common import ByOption, default_actor, utcnow, with_store
from vigil.notify.channels import NotifyOn
from vigil.settings import Settings

if TYPE_CHECKING:
    from vigil.store.repository import Store

channels_app = typer.Typer(
    help="Notification channels: where Vigil sends incidents (any apprise URL).",
    no_args_is_help=True,
)

_EVENTS = ", ".join(on.value for on in NotifyOn)


@channels_app.command("add")
def add_channel_command(
    name: Annotated[str, typer.Argument(help="Name: a-z, 0-9, '_' and '-'.")],
    url: Annotated[
        str,
        typer.Argument(help="An apprise URL: discord://ID/TOKEN, mailtos://..., json://host/path"),
    ],
    min_severity: Annotated[
        str, typer.Option(help="info, warning or critical: lower incidents are not sent.")
    ] = "info",
    events: Annotated[
        str, typer.Option(help=f"Comma-separated, among {_EVENTS}.")
    ] = "opened,escalated,acknowledged,resolved",
    renotify_minutes: Annotated[
        int | None,
        typer.Option(help="Resend an open, unacknowledged critical incident this often."),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    delivery: Annotated[
        str, typer.Option(help="realtime (each event), or an hourly or daily digest.")
    ] = "realtime",
    digest_at: Annotated[
        str, typer.Option(help="HH:MM local time of a daily digest (hourly: its minute).")
    ] = "09:00",
    timezone: Annotated[str, typer.Option(help="IANA time zone of --digest-at.")] = "UTC",
    by: ByOption = None,
) -> None:
    """Add a channel. The URL is checked by apprise; nothing is stored if it is refused."""
    data = {
        "name": name,
        "url": url,
        "min_severity": min_severity,
        "events": [part.strip() for part in events.split(",") if part.strip()],
        "enabled": not disabled,
        "renotify_minutes": renotify_minutes,
        "delivery": delivery,
        "digest_at": digest_at,
        "timezone": timezone,
    }
    actor = by or default_actor()
    stored, _ = with_store(lambda store: store.add_channel(data, now=utcnow(), by=actor))
    Console().print(
        f"Added channel {stored.name} ({stored.channel.service.name}, "
        f"{stored.channel.redacted_url}).",
        highlight=False,
    )


@channels_app.command("list")
def list_channels_command() -> None:
    """List the channels; URLs are shown masked."""
    stored = with_store(lambda store: store.list_channels())
    if not stored:
        Console().print("No channels. Add one with `vigil channels add NAME URL`.")
        return
    table = Table(
        "name", "service", "url", "min severity", "events", "enabled", "renotify", "delivery"
    )
    for item in stored:
        data = item.to_dict()
        minutes = data["renotify_minutes"]
        table.add_row(
            data["name"],
            data["service"],
            data["url"],
            data["min_severity"],
            ",".join(data["events"]),
            "yes" if data["enabled"] else "no",
            f"{minutes} min" if minutes else "off",
            _delivery(data),
        )
    Console().print(table)


@channels_app.command("test")
def test_channel_command(
    name: Annotated[str, typer.Argument(help="The channel to send a test message to.")],
) -> None:
    """Send a test message now (also to a disabled channel)."""
    from vigil.notify.sender import send_test  # aiohttp, for this command only

    settings = Settings.from_env()

    async def work(store: Store) -> str:
        stored = await store.get_channel(name)
        await send_test(stored.channel, base_url=settings.public_url)
        return stored.channel.redacted_url

    shown = with_store(work)
    Console().print(f"Test message delivered to {name} ({shown}).", highlight=False)


@channels_app.command("remove")
def remove_channel_command(
    name: Annotated[str, typer.Argument(help="The channel to remove.")],
    by: ByOption = None,
) -> None:
    """Remove a channel; notifications not yet delivered to it are marked failed."""
    actor = by or default_actor()
    with_store(lambda store: store.delete_channel(name, now=utcnow(), by=actor))
    Console().print(f"Removed channel {name}.", highlight=False)


def _delivery(data: dict[str, Any]) -> str:
    if data["delivery"] == "realtime":
        return "realtime"
    at = data["digest_at"] if data["delivery"] == "daily" else f":{data['digest_at'][3:]}"
    return f"{data['delivery']} at {at} {data['timezone']}"
