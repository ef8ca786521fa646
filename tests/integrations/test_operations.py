"""Operating Vigil from Discord: real discord.py bots, connected over the gateway to the fake
Discord, post and edit incident messages and answer buttons, forms and slash commands."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .fake_discord import ADMIN, ADMIN_ROLE, FakeDiscordAPI
from .operations_support import (
    CRITICAL,
    NORMAL,
    TOKEN,
    WARNING,
    Ops,
    custom_ids,
    point_discord_py_at,
    rendered,
    running_ops,
)


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscordAPI]:
    async with FakeDiscordAPI(token=TOKEN, limit=1000) as fake:
        point_discord_py_at(fake, monkeypatch)
        yield fake


@pytest.fixture
async def ops(api: FakeDiscordAPI, sqlite_url: str) -> AsyncIterator[Ops]:
    async with running_ops(api, sqlite_url) as running:
        yield running


async def test_one_message_follows_the_incident_from_open_to_resolved(ops: Ops) -> None:
    await ops.start_bot()
    incident = await ops.open_incident(WARNING)
    message = await ops.shown(incident, "Active for")
    assert "WARNING" in rendered(message)
    assert f"vigil:ack:{incident.id}" in custom_ids(message)

    await ops.cycle(CRITICAL, 2)  # escalated
    await ops.shown(incident, "CRITICAL")

    ack = await ops.press(message, f"vigil:ack:{incident.id}", user=ADMIN, roles=(ADMIN_ROLE,))
    answer = await ops.submit(ack, ["restarting the shard"], user=ADMIN, roles=(ADMIN_ROLE,))
    assert answer.ephemeral and "Acknowledged" in answer.text
    shown = await ops.shown(incident, "Acknowledged by alice [discord:3001]")
    assert "restarting the shard" in rendered(shown)

    await ops.cycle(NORMAL, 3)  # recovered
    resolved = await ops.shown(incident, "Resolved automatically")
    assert custom_ids(resolved) == []  # nothing left to press
    assert len(ops.messages()) == 1  # one message, edited in place
