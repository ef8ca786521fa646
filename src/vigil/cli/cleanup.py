"""``vigil cleanup``: delete what the retention settings no longer keep, in short batches."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vigil.cli._common import fail, utcnow
from vigil.core.errors import VigilError
from vigil.settings import Settings

if TYPE_CHECKING:
    from vigil.store.records import CleanupReport

_KINDS = ("incidents", "events", "samples", "rollups", "outbox", "sessions", "compacted")


def cleanup_command(
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows deleted per transaction.")
    ] = 5000,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
) -> None:
    """Delete resolved incidents, events, samples and delivered notifications past retention,
    and compact samples older than VIGIL_SAMPLE_RAW_HOURS into one-minute rollups.

    Open incidents are never deleted. Each batch is a short transaction, so a running monitor
    is not held up.
    """
    settings = Settings.from_env()
    try:
        report = asyncio.run(_cleanup(settings, batch_size=batch_size, dry_run=dry_run))
    except VigilError as exc:
        raise fail(exc) from exc
    verb, compact = ("Would delete", "would compact") if dry_run else ("Deleted", "compacted")
    Console().print(
        f"{verb} {report.incidents} incidents, {report.events} events, "
        f"{report.samples} samples, {report.rollups} minute rollups, "
        f"{report.outbox} delivered notifications, {report.sessions} expired sign-outs; "
        f"{compact} {report.compacted} older samples into minute rollups.",
        highlight=False,
    )


async def _cleanup(settings: Settings, *, batch_size: int, dry_run: bool) -> CleanupReport:
    from vigil.store.repository import Store  # here: `vigil --help` needs no database

    now = utcnow()
    retention = {
        "incident_retention_days": settings.incident_retention_days,
        "sample_retention_days": settings.sample_retention_days,
        "sample_raw_hours": settings.sample_raw_hours,
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
