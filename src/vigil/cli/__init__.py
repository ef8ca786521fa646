"""The ``vigil`` command line. Every command reads the same settings as the server.

A command module imports at its top only what the help needs: the store, the web layer and
the notification libraries are imported inside the commands that use them, so ``vigil --help``
starts at once (``tests/test_public_api.py`` checks it)."""

from __future__ import annotations

import typer

from vigil.cli._common import fail
from vigil.cli.backtest import backtest_command
from vigil.cli.channels import channels_app
from vigil.cli.cleanup import cleanup_command
from vigil.cli.db import db_app
from vigil.cli.demo import demo_command
from vigil.cli.escalations import escalations_app
from vigil.cli.rules import rules_app
from vigil.cli.samples import samples_app
from vigil.cli.serve import serve_command
from vigil.cli.silences import SILENCES, maintenance_app, snooze_command
from vigil.cli.tokens import tokens_app
from vigil.cli.users import users_app
from vigil.settings import Settings, SettingsError

app = typer.Typer(
    name="vigil",
    help="Performance alerting and incidents for Discord bots and asyncio services.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Vigil watches a service's performance and raises incidents on sustained breaches."""
    # Every command reads the settings: a wrong one is one line naming it, before any work.
    try:
        Settings.from_env()
    except SettingsError as exc:
        raise fail(exc, code=2) from None


app.command("backtest")(backtest_command)
app.command("demo")(demo_command)
app.add_typer(rules_app, name="rules")
app.add_typer(db_app, name="db")
app.add_typer(samples_app, name="samples")
app.command("cleanup")(cleanup_command)
app.command("serve")(serve_command)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(channels_app, name="channels")
app.add_typer(escalations_app, name="escalations")
app.command("snooze", rich_help_panel=SILENCES)(snooze_command)
app.add_typer(maintenance_app, name="maintenance", rich_help_panel=SILENCES)


def main() -> None:
    app()
