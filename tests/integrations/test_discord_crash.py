"""Crash tests: a real bot process operating Vigil, SIGKILLed between the incident's commit and
its post, and between the post and storing its message id. After a restart the fake Discord's
channel holds exactly one message for the incident, and the database knows its id.

Each runs with incident grouping off (one incident, its own message) and on with three rules
breaching together (one group, one message for the three)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import pytest

from tests.child import PATIENCE, Child, child_process
from vigil.store import Store

from .fake_discord import OPS_CHANNEL, FakeDiscordAPI
from .operations_support import TOKEN

pytestmark = pytest.mark.slow

GROUPINGS = ["off", "three"]


@pytest.fixture
async def api() -> AsyncIterator[FakeDiscordAPI]:
    async with FakeDiscordAPI(token=TOKEN, limit=1000) as fake:
        yield fake


def bot_process(
    url: str, api: FakeDiscordAPI, mode: str, grouping: str
) -> AbstractAsyncContextManager[Child]:
    return child_process(
        "tests.integrations.discord_crash_main", url, api.base, api.gateway_url, mode, grouping
    )


async def recorded_message(url: str) -> int | None:
    """The message id stored for the incident, or for the incidents' group; the incidents
    of a group have no message of their own."""
    async with await Store.open(url) as store:
        incidents = await store.active_incidents()
        groups = {incident.group for incident in incidents}
        assert len(groups) == 1, "the incidents opened together are in one group (or none)"
        own = [await store.discord_message(incident.id) for incident in incidents]
        [group] = groups
        if group is None:
            [row] = own
        else:
            assert len(incidents) == 3 and own == [None, None, None]
            row = await store.discord_message(group, group=True)
        return None if row is None else row.message_id


async def eventually_recorded(url: str) -> int:
    async def poll() -> int:
        # Another process writes the database: nothing here to await, so poll it.
        while (found := await recorded_message(url)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return found

    return await asyncio.wait_for(poll(), PATIENCE)


@pytest.mark.parametrize("grouping", GROUPINGS)
async def test_killed_between_the_commit_and_the_post(
    migrated_url: str, api: FakeDiscordAPI, grouping: str
) -> None:
    async with bot_process(migrated_url, api, "hold-post", grouping) as first:
        await first.line("held")  # the incident and the claim are committed; nothing posted
        await first.kill()
    assert api.messages_in(OPS_CHANNEL) == []
    assert await recorded_message(migrated_url) is None

    async with bot_process(migrated_url, api, "run", grouping):
        message_id = await eventually_recorded(migrated_url)
    [message] = api.messages_in(OPS_CHANNEL)
    assert int(message["id"]) == message_id


@pytest.mark.parametrize("grouping", GROUPINGS)
async def test_killed_between_the_post_and_storing_its_id(
    migrated_url: str, api: FakeDiscordAPI, grouping: str
) -> None:
    async with bot_process(migrated_url, api, "hold-record", grouping) as first:
        posted = int(await first.line("posted"))
        await first.kill()
    assert [int(m["id"]) for m in api.messages_in(OPS_CHANNEL)] == [posted]
    assert await recorded_message(migrated_url) is None

    async with bot_process(migrated_url, api, "run", grouping):
        assert await eventually_recorded(migrated_url) == posted
        # found again and brought up to date: edited, never posted twice
        await asyncio.wait_for(_edited(api, posted), PATIENCE)
    assert [int(m["id"]) for m in api.messages_in(OPS_CHANNEL)] == [posted]


async def _edited(api: FakeDiscordAPI, message_id: int) -> None:
    while not any(  # noqa: ASYNC110 - the fake's state has no event to await
        int(m["id"]) == message_id and m.get("edits") for m in api.messages_in(OPS_CHANNEL)
    ):
        await asyncio.sleep(0.05)
