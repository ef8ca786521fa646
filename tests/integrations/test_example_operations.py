"""examples/discord_bot.py operating Vigil from Discord, connected to the fake Discord: the
whole flow an operator sees, from the incident's message to its resolution."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from vigil.core import Status
from vigil.core.errors import ValidationError
from vigil.integrations.discord import DiscordOperations

from .fake_discord import (
    ADMIN,
    ADMIN_ROLE,
    OPS_CHANNEL,
    STRANGER,
    VIEWER,
    VIEWER_ROLE,
    FakeDiscordAPI,
)
from .operations_support import (
    CRITICAL,
    NORMAL,
    TOKEN,
    WARNING,
    Ops,
    custom_ids,
    eventually,
    point_discord_py_at,
    rendered,
    running_ops,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "discord_bot.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_operations_bot", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_operations_bot"] = module  # discord.py resolves annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def ops(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> AsyncIterator[Ops]:
    async with FakeDiscordAPI(token=TOKEN, limit=1000) as api:
        point_discord_py_at(api, monkeypatch)
        async with running_ops(api, sqlite_url) as running:
            yield running


async def test_the_example_bot_runs_the_whole_flow_in_discord(
    example: ModuleType, ops: Ops, tmp_path: Path
) -> None:
    # What the example's main() reads from the environment.
    operations = DiscordOperations.from_env(
        {
            "VIGIL_DISCORD_CHANNEL_ID": OPS_CHANNEL,
            "VIGIL_DISCORD_ADMIN_ROLES": ADMIN_ROLE,
            "VIGIL_DISCORD_VIEWER_ROLES": f" {VIEWER_ROLE} ,",
        }
    )
    assert operations is not None
    database = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    bot: Any = example.ExampleBot(ops.vigil, database, operations)
    bot._connection.guild_ready_timeout = 0.05  # the fake sends its one guild at once
    try:
        await ops.run_bot(bot)
        await eventually(lambda: None in ops.api.commands, what="the commands registered")
        assert {"roll", "note", "vigil"} <= {c["name"] for c in ops.api.commands[None]}

        incident = await ops.open_incident(WARNING)
        message = await ops.shown(incident, "Active for")
        await ops.cycle(CRITICAL, 2)
        await ops.shown(incident, "CRITICAL")

        status = await ops.slash("status", user=VIEWER, roles=(VIEWER_ROLE,))
        assert "1 open incident" in status.text
        refused = await ops.press(message, f"vigil:ack:{incident.id}", user=STRANGER)
        assert refused.ephemeral and "You may not act on incidents" in refused.text

        form = await ops.press(message, f"vigil:ack:{incident.id}", user=ADMIN, roles=(ADMIN_ROLE,))
        await ops.submit(form, ["looking"], user=ADMIN, roles=(ADMIN_ROLE,))
        await ops.shown(incident, "Acknowledged by alice [discord:3001]")
        assert (await ops.vigil.store.get_incident(incident.id)).status is Status.ACKNOWLEDGED

        await ops.cycle(NORMAL, 3)
        done = await ops.shown(incident, "Resolved automatically")
        assert custom_ids(done) == [] and "looking" in rendered(done)
        assert len(ops.messages()) == 1
    finally:
        await database.dispose()


def test_operations_from_the_environment_name_the_variable_at_fault() -> None:
    assert DiscordOperations.from_env({}) is None
    with pytest.raises(ValidationError) as caught:
        DiscordOperations.from_env(
            {"VIGIL_DISCORD_CHANNEL_ID": "6000", "VIGIL_DISCORD_ADMIN_ROLES": "12,abc"}
        )
    assert caught.value.field == "VIGIL_DISCORD_ADMIN_ROLES"
    full = DiscordOperations.from_env(
        {
            "VIGIL_DISCORD_CHANNEL_ID": "6000",
            "VIGIL_DISCORD_CRITICAL_CHANNEL_ID": "6001",
            "VIGIL_DISCORD_ADMIN_USERS": "1,2",
            "VIGIL_DISCORD_GUILD_ID": "5000",
            "VIGIL_DISCORD_SYNC_COMMANDS": "off",
        }
    )
    assert full == DiscordOperations(
        channel_id=6000,
        severity_channels={"critical": 6001},
        admin_users=[1, 2],
        guild_id=5000,
        sync_commands=False,
    )
