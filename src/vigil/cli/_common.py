"""What every command shares: the store runner, errors, the console and who is acting."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vigil.core.errors import VigilError
from vigil.settings import Settings

if TYPE_CHECKING:
    from vigil.store.repository import Store

T = TypeVar("T")

ByOption = Annotated[
    str | None, typer.Option("--by", help="Who is doing this; the OS user by default.")
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_actor() -> str:
    """Who a change from the shell is recorded under: the OS user, marked as the CLI."""
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def console() -> Console:
    """A console for tables: full width on a terminal, and wide enough in a pipe."""
    wide = Console(highlight=False)
    if not wide.is_terminal:
        wide.width = 160  # a pipe or a file has no width: do not squeeze the table
    return wide


def print_error(message: object) -> None:
    # escaped: a message quoting user input ("[x].csv") is text, not Rich markup; one line
    # however narrow the terminal, so a script can grep it
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(str(message))}", highlight=False
    )


def fail(exc: VigilError, *, code: int = 1) -> typer.Exit:
    """Print ``exc`` as a one-line error; the caller raises the returned exit."""
    print_error(exc)
    return typer.Exit(code=code)


def with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """For CLI commands: open the store the settings name (``VIGIL_DATABASE_URL``), do
    ``work``, close it. A ``VigilError`` becomes a one-line message and exit status 1."""
    from vigil.store.repository import Store  # here: `vigil --help` needs no database

    async def run() -> T:
        async with await Store.open(Settings.from_env().database_url) as store:
            return await work(store)

    try:
        return asyncio.run(run())
    except VigilError as exc:
        raise fail(exc) from None
