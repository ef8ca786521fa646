"""``vigil samples export``: the stored samples as the CSV ``vigil backtest`` reads
(``timestamp,metric,value,instance``), for offline replays and other tools."""

from __future__ import annotations

import csv
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from vigil.cli._common import print_error, utcnow, with_store
from vigil.core import ValidationError
from vigil.preview import parse_since

if TYPE_CHECKING:
    from vigil.store import Store

samples_app = typer.Typer(help="The stored samples (metric history).", no_args_is_help=True)


@samples_app.command("export")
def export_command(
    since: Annotated[
        str,
        typer.Option("--since", help="How far back (30m, 24h, 7d, 2w) or an ISO-8601 start."),
    ] = "24h",
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="Only this metric (repeat for several); all by default."),
    ] = None,
) -> None:
    """Write the stored samples to standard output as CSV, for `vigil backtest`.

    Oldest first, with the header timestamp,metric,value,instance."""
    end = utcnow()
    try:
        start = parse_since(since, end, field="--since")
    except ValidationError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    writer = csv.writer(sys.stdout, lineterminator="\n")

    async def work(store: Store) -> int:
        writer.writerow(["timestamp", "metric", "value", "instance"])
        count = 0
        async for rows in store.sample_chunks(start=start, end=end, metrics=metric or None):
            writer.writerows(
                (time.isoformat(), name, repr(value), instance)
                for time, name, instance, value in rows
            )
            count += len(rows)
        return count

    with_store(work)
