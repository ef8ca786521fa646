"""``vigil users add|list|remove|passwd``: dashboard and API accounts.

The commands open the database directly (``VIGIL_DATABASE_URL``), so they work beside a
running server; a server notices changes within its auth cache time (2 s).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._common import fail, with_store
from vigil.core import VigilError

users_app = typer.Typer(help="Dashboard and API users (viewer or admin).", no_args_is_help=True)


class UserRole(StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"


def _password(from_stdin: bool) -> str:
    from vigil.web.accounts import check_password  # here: `vigil --help` needs no store

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return check_password(password)
    except VigilError as exc:
        raise fail(exc) from None


PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user name to sign in with.")],
    role: Annotated[UserRole, typer.Option(help="viewer reads; admin also changes.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user. There is no default account: create the first admin this way."""
    from vigil.web.accounts import add_user

    password = _password(password_stdin)
    user = with_store(lambda store: add_user(store, name, role=role.value, password=password))
    Console().print(f"Added {user.role} {user.name!r}.", highlight=False)


@users_app.command("list")
def users_list() -> None:
    """List users."""
    users = with_store(lambda store: store.list_users())
    table = Table("name", "role", "created")
    for user in users:
        table.add_row(user.name, user.role.value, f"{user.created_at:%Y-%m-%d %H:%M} UTC")
    Console().print(table)


@users_app.command("remove")
def users_remove(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a user; their sessions end."""
    if not yes:
        typer.confirm(f"Remove user {name!r}?", abort=True)
    with_store(lambda store: store.delete_user(name))
    Console().print(f"Removed {name!r}.", highlight=False)


@users_app.command("passwd")
def users_passwd(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password; their other sessions end."""
    from vigil.web.accounts import set_password

    password = _password(password_stdin)
    with_store(lambda store: set_password(store, name, password=password))
    Console().print(f"Password of {name!r} changed.", highlight=False)
