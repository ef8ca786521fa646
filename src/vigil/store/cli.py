"""``vigil db upgrade|downgrade|current`` and ``vigil cleanup``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vigil.core.errors import VigilError
from vigil.settings import Settings
from vigil.store import migrate
from vigil.store.records import CleanupReport
from vigil.store.repository import Store

db_app = typer.Typer(
    help="The database schema: apply or roll back Vigil's migrations.",
    no_args_is_help=True,
)

_KINDS = ("incidents", "events", "samples", "outbox")


T = TypeVar("T")


def _fail(exc: VigilError) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=1)


def with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """For CLI commands: open the store the settings name (``VIGIL_DATABASE_URL``), do
    ``work``, close it. A ``VigilError`` becomes a one-line message and exit status 1."""

    async def run() -> T:
        async with await Store.open(Settings.from_env().database_url) as store:
            return await work(store)

    try:
        return asyncio.run(run())
    except VigilError as exc:
        raise _fail(exc) from None


@db_app.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = Settings.from_env()
    try:
        reached = asyncio.run(migrate.upgrade(settings.database_url, revision))
    except VigilError as exc:
        raise _fail(exc) from exc
    Console().print(f"Database schema at revision {reached}.", highlight=False)


@db_app.command("downgrade")
def downgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Roll migrations back to REVISION. Data in dropped tables is lost."""
    settings = Settings.from_env()
    if not yes:
        typer.confirm(f"Roll the schema back to {revision}? Dropped data is lost.", abort=True)
    try:
        reached = asyncio.run(migrate.downgrade(settings.database_url, revision))
    except VigilError as exc:
        raise _fail(exc) from exc
    Console().print(f"Database schema at revision {reached or 'base'}.", highlight=False)


@db_app.command("current")
def current_command() -> None:
    """Show the database's schema revision and the newest this Vigil knows."""
    settings = Settings.from_env()
    try:
        revision = asyncio.run(migrate.current(settings.database_url))
    except VigilError as exc:
        raise _fail(exc) from exc
    head = migrate.head_revision()
    note = "up to date" if revision == head else f"newest is {head}: run `vigil db upgrade`"
    Console().print(f"Database schema at revision {revision or 'none'} ({note}).")


def cleanup_command(
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows deleted per transaction.")
    ] = 5000,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
) -> None:
    """Delete resolved incidents, events, samples and delivered notifications past retention.

    Open incidents are never deleted. Each batch is a short transaction, so a running monitor
    is not held up.
    """
    settings = Settings.from_env()
    try:
        report = asyncio.run(_cleanup(settings, batch_size=batch_size, dry_run=dry_run))
    except VigilError as exc:
        raise _fail(exc) from exc
    verb = "Would delete" if dry_run else "Deleted"
    Console().print(
        f"{verb} {report.incidents} incidents, {report.events} events, "
        f"{report.samples} samples, {report.outbox} delivered notifications.",
        highlight=False,
    )


async def _cleanup(settings: Settings, *, batch_size: int, dry_run: bool) -> CleanupReport:
    now = datetime.now(UTC)
    retention = {
        "incident_retention_days": settings.incident_retention_days,
        "sample_retention_days": settings.sample_retention_days,
    }
    store = await Store.open(settings.database_url)
    try:
        due = await store.expired(now=now, **retention)
        if dry_run:
            return due
        with Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        ) as progress:
            tasks = {kind: progress.add_task(kind, total=getattr(due, kind)) for kind in _KINDS}
            return await store.cleanup(
                now=now,
                batch_size=batch_size,
                progress=lambda kind, count: progress.advance(tasks[kind], count),
                **retention,
            )
    finally:
        await store.close()
