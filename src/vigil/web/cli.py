"""``vigil users add|list|remove|passwd``, ``vigil tokens create|list|revoke``, ``vigil serve``.

They open the database directly (``VIGIL_DATABASE_URL``), so they work beside a running
server; a server notices changes within its auth cache time (2 s).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._common import with_store
from vigil.core import VigilError
from vigil.settings import Settings
from vigil.web.accounts import add_user, check_password, create_token, set_password

users_app = typer.Typer(help="Dashboard and API users (viewer or admin).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: viewer, admin, or ingest-only.", no_args_is_help=True)


class UserRole(StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"


class TokenRole(StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"
    INGEST = "ingest"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return check_password(password)
    except VigilError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from None


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
    password = _password(password_stdin)
    with_store(lambda store: set_password(store, name, password=password))
    Console().print(f"Password of {name!r} changed.", highlight=False)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'prometheus'.")],
    role: Annotated[TokenRole, typer.Option(help="viewer, admin, or ingest (push only).")],
) -> None:
    """Create an API token and print it. It is shown this once: only its hash is kept."""
    record, secret = with_store(lambda store: create_token(store, name, role=role.value))
    Console(stderr=True).print(
        f"Token {record.id} ({record.role}) for {record.name!r}; store it now, it is not "
        "shown again:",
        highlight=False,
    )
    print(secret)  # alone on stdout, for `TOKEN=$(vigil tokens create ...)`


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    tokens = with_store(lambda store: store.list_tokens())
    table = Table("id", "name", "role", "created", "last used", "revoked")
    for token in tokens:
        table.add_row(
            str(token.id),
            token.name,
            str(token.role),
            f"{token.created_at:%Y-%m-%d %H:%M}",
            f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never",
            f"{token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "",
        )
    Console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(help="The id from `tokens list`.")],
) -> None:
    """Revoke a token: requests with it fail from now on (within 2 s on a running server)."""
    token = with_store(lambda store: store.revoke_token(token_id, now=datetime.now(UTC)))
    Console().print(f"Revoked token {token.id} ({token.name!r}).", highlight=False)


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
    settings = Settings.from_env(**overrides)
    # The command is the application here, so it configures logging (the library never does).
    logging.basicConfig(
        level=log_level.value.upper(), format="%(levelname)s: %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(settings, log_level=log_level.value))
    except VigilError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once everything has stopped
        raise typer.Exit(code=130) from None
