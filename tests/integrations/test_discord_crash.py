"""Crash tests: a real bot process operating Vigil, SIGKILLed between the incident's commit and
its post, and between the post and storing its message id. After a restart the fake Discord's
channel holds exactly one message for the incident, and the database knows its id."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from vigil.store import Store

from .fake_discord import OPS_CHANNEL, FakeDiscordAPI
from .operations_support import TOKEN

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
PATIENCE = 120.0


@pytest.fixture
async def api() -> AsyncIterator[FakeDiscordAPI]:
    async with FakeDiscordAPI(token=TOKEN, limit=1000) as fake:
        yield fake


class Child:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self, prefix: str) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(PATIENCE):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"the bot process ended before printing {prefix!r}")
                text = raw.decode().strip()
                if text.startswith(prefix):
                    return text[len(prefix) :].strip()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@asynccontextmanager
async def bot_process(url: str, api: FakeDiscordAPI, mode: str) -> AsyncIterator[Child]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integrations.discord_crash_main",
        url,
        api.base,
        api.gateway_url,
        mode,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=asyncio.subprocess.PIPE,
    )
    child = Child(process)
    try:
        await child.line("started")
        yield child
    finally:
        await child.kill()


async def recorded_message(url: str) -> int | None:
    async with await Store.open(url) as store:
        [incident] = await store.active_incidents()
        row = await store.discord_message(incident.id)
        return None if row is None else row.message_id


async def eventually_recorded(url: str) -> int:
    async def poll() -> int:
        # Another process writes the database: nothing here to await, so poll it.
        while (found := await recorded_message(url)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return found

    return await asyncio.wait_for(poll(), PATIENCE)


async def test_killed_between_the_commit_and_the_post(
    migrated_url: str, api: FakeDiscordAPI
) -> None:
    async with bot_process(migrated_url, api, "hold-post") as first:
        await first.line("held")  # the incident and the claim are committed; nothing posted
        await first.kill()
    assert api.messages_in(OPS_CHANNEL) == []
    assert await recorded_message(migrated_url) is None

    async with bot_process(migrated_url, api, "run"):
        message_id = await eventually_recorded(migrated_url)
    [message] = api.messages_in(OPS_CHANNEL)
    assert int(message["id"]) == message_id


async def test_killed_between_the_post_and_storing_its_id(
    migrated_url: str, api: FakeDiscordAPI
) -> None:
    async with bot_process(migrated_url, api, "hold-record") as first:
        posted = int(await first.line("posted"))
        await first.kill()
    assert [int(m["id"]) for m in api.messages_in(OPS_CHANNEL)] == [posted]
    assert await recorded_message(migrated_url) is None

    async with bot_process(migrated_url, api, "run"):
        assert await eventually_recorded(migrated_url) == posted
        # found again and brought up to date: edited, never posted twice
        await asyncio.wait_for(_edited(api, posted), PATIENCE)
    assert [int(m["id"]) for m in api.messages_in(OPS_CHANNEL)] == [posted]


async def _edited(api: FakeDiscordAPI, message_id: int) -> None:
    while not any(  # noqa: ASYNC110 - the fake's state has no event to await
        int(m["id"]) == message_id and m.get("edits") for m in api.messages_in(OPS_CHANNEL)
    ):
        await asyncio.sleep(0.05)
