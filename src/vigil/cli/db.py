"""``vigil db upgrade|downgrade|current``: Vigil's schema migrations."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from vigil.cli._common import fail
from vigil.core.errors import VigilError
from vigil.settings import Settings

db_app = typer.Typer(
    help="The database schema: apply or roll back Vigil's migrations.",
    no_args_is_help=True,
)


@db_app.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from vigil.store import migrate  # Alembic and SQLAlchemy, for these commands only

    settings = Settings.from_env()
    try:
        reached = asyncio.run(migrate.upgrade(settings.database_url, revision))
    except VigilError as exc:
        raise fail(exc) from exc
    Console().print(f"Database schema at revision {reached}.", highlight=False)


@db_app.command("downgrade")
def downgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Roll migrations back to REVISION. Data in dropped tables is lost."""
    from vigil.store import migrate

    settings = Settings.from_env()
    if not yes:
        typer.confirm(f"Roll the schema back to {revision}? Dropped data is lost.", abort=True)
    try:
        reached = asyncio.run(migrate.downgrade(settings.database_url, revision))
    except VigilError as exc:
        raise fail(exc) from exc
    Console().print(f"Database schema at revision {reached or 'base'}.", highlight=False)


@db_app.command("current")
def current_command() -> None:
    """Show the database's schema revision and the newest this Vigil knows."""
    from vigil.store import migrate

    settings = Settings.from_env()
    try:
        revision = asyncio.run(migrate.current(settings.database_url))
    except VigilError as exc:
        raise fail(exc) from exc
    head = migrate.head_revision()
    note = "up to date" if revision == head else f"newest is {head}: run `vigil db upgrade`"
    Console().print(f"Database schema at revision {revision or 'none'} ({note}).")
