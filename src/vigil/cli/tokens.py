"""``vigil tokens create|list|revoke``: API tokens, shown once and stored hashed.

Like ``vigil users``, they work beside a running server, which notices a change within its
auth cache time (2 s).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._common import utcnow, with_store

tokens_app = typer.Typer(help="API tokens: viewer, admin, or ingest-only.", no_args_is_help=True)


class TokenRole(StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"
    INGEST = "ingest"


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'prometheus'.")],
    role: Annotated[TokenRole, typer.Option(help="viewer, admin, or ingest (push only).")],
    instance: Annotated[
        str | None,
        typer.Option(
            help="Ingest tokens only: the one instance name it may push samples for "
            "(e.g. shard-0); unset, any."
        ),
    ] = None,
) -> None:
    """Create an API token and print it. It is shown this once: only its hash is kept."""
    from vigil.web.accounts import create_token  # here: `vigil --help` needs no store

    record, secret = with_store(
        lambda store: create_token(store, name, role=role.value, instance=instance)
    )
    bound = f", instance {record.instance!r} only" if record.instance is not None else ""
    Console(stderr=True).print(
        f"Token {record.id} ({record.role}{bound}) for {record.name!r}; store it now, it is "
        "not shown again:",
        highlight=False,
    )
    print(secret)  # alone on stdout, for `TOKEN=$(vigil tokens create ...)`


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    tokens = with_store(lambda store: store.list_tokens())
    table = Table("id", "name", "role", "instance", "created", "last used", "revoked")
    for token in tokens:
        table.add_row(
            str(token.id),
            token.name,
            str(token.role),
            token.instance or "",
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
    token = with_store(lambda store: store.revoke_token(token_id, now=utcnow()))
    Console().print(f"Revoked token {token.id} ({token.name!r}).", highlight=False)
