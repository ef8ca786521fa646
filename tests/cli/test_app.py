"""The assembled ``vigil`` command: every command in its place, and the help a user reads."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from vigil.cli import app

COMMANDS = {
    "backtest": None,
    "channels": {"add", "list", "test", "remove"},
    "cleanup": None,
    "db": {"upgrade", "downgrade", "current"},
    "demo": None,
    "escalations": {"add", "list", "show", "set", "remove"},
    "maintenance": {"add", "list", "remove"},
    "rules": {
        "list",
        "show",
        "add",
        "set",
        "remove",
        "enable",
        "disable",
        "suggest",
        "export",
        "apply",
    },
    "samples": {"export"},
    "serve": None,
    "snooze": None,
    "tokens": {"create", "list", "revoke"},
    "users": {"add", "list", "remove", "passwd"},
}


def test_every_command_and_subcommand_is_there() -> None:
    root = typer.main.get_command(app)
    found = {
        name: set(command.commands) if hasattr(command, "commands") else None
        for name, command in getattr(root, "commands", {}).items()
    }
    assert found == COMMANDS


def test_the_help_lists_snooze_and_maintenance_together_as_silences() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    commands, _, silences = result.stdout.partition("Silences")
    assert "snooze" in silences and "maintenance" in silences
    assert "snooze" not in commands and "maintenance" not in commands
    assert "channels" in commands and "rules" in commands
    # one line per command: the snooze summary is its first sentence, not the whole usage
    [snooze] = [line for line in silences.splitlines() if "snooze" in line]
    assert "Snooze a rule for a while" in snooze and "vigil snooze end" not in silences
