"""Run ``vigil`` as a user runs it, against a given database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from typer.testing import CliRunner

from vigil.cli import app
from vigil.store import Store

T = TypeVar("T")


def vigil(url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    """The exit code and the output (stdout and stderr) of ``vigil ARGS`` on ``url``."""
    result = CliRunner().invoke(
        app, list(args), input=stdin, env={"VIGIL_DATABASE_URL": url, "COLUMNS": "200"}
    )
    return result.exit_code, result.output


async def in_thread(url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    """Run a command beside this test's event loop (the command runs a loop of its own)."""
    return await asyncio.to_thread(vigil, url, *args, stdin=stdin)


def stored(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """What ``work`` reads from the database at ``url`` (outside any event loop)."""

    async def run() -> T:
        async with await Store.open(url) as store:
            return await work(store)

    return asyncio.run(run())
