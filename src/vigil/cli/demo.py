"""``vigil demo``: the whole of Vigil fed by a simulated bot (what ``make demo`` runs)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli._common import fail
from vigil.core import VigilError


def demo_command(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for the dashboard.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    database: Annotated[
        Path, typer.Option(help="SQLite file for the demo; replaced at every start.")
    ] = Path("vigil-demo.db"),
) -> None:
    """Run Vigil with a simulated bot: dashboard, API, incidents and notifications."""
    from vigil.demo.server import run_demo  # the runtime, web and aiohttp only for this command

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    try:
        asyncio.run(run_demo(database=database, host=host, port=port, say=_say))
    except VigilError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        print("\nVigil demo stopped.", flush=True)


def _say(text: str) -> None:
    print(text, flush=True)
