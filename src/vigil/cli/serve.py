"""``vigil serve``: the monitor and the web API in one process, until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Annotated

import typer

from vigil.cli._common import fail
from vigil.core import VigilError
from vigil.logmask import install_on_handlers
from vigil.settings import Settings


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to listen on (VIGIL_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on (VIGIL_PORT).")
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="How much to log.")] = LogLevel.INFO,
) -> None:
    """Run the monitor and the web API (REST, live events, /metrics) until Ctrl-C."""
    from vigil.web.serve import serve  # FastAPI and uvicorn only for this command

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        settings = Settings.from_env(**overrides)
    except VigilError as exc:
        raise fail(exc, code=2) from None
    # The command is the application here, so it configures logging (the library never does).
    logging.basicConfig(
        level=log_level.value.upper(), format="%(levelname)s: %(name)s: %(message)s"
    )
    # Secrets masked in whatever reaches the handlers, at every level (docs/security.md).
    install_on_handlers(logging.getLogger().handlers)
    try:
        asyncio.run(serve(settings, log_level=log_level.value))
    except VigilError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once everything has stopped
        raise typer.Exit(code=130) from None
