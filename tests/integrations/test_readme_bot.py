"""The README's "Embedding in a bot" example, taken from the README itself and run against the
local stand-in for Discord: what a bot author copies must record what the README promises and
shut down cleanly when the login fails."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import discord
import pytest

from vigil import Settings, Vigil

from .fake_discord import FakeDiscordAPI

README = Path(__file__).parents[2] / "README.md"
TOKEN = "the-bots-token"


def embedding_example() -> str:
    """The first Python block under the README's "Embedding in a bot" heading."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Embedding in a bot") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "the README's embedding section has no Python example"
    return found.group(1)


@pytest.fixture
def readme_bot() -> ModuleType:
    module = ModuleType("readme_bot")  # not __main__: the example's asyncio.run stays unrun
    exec(compile(embedding_example(), f"{README}:Embedding in a bot", "exec"), module.__dict__)
    return module


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscordAPI]:
    async with FakeDiscordAPI(token=TOKEN) as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.base)
        yield fake


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[aiohttp.ClientSession]]:
    """Every aiohttp session created during the test (discord.py makes one at login)."""
    created: list[aiohttp.ClientSession] = []
    original = aiohttp.ClientSession.__init__

    def recording(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", recording)
    yield created


async def test_the_readme_bot_records_the_rate_limit_metrics(
    readme_bot: ModuleType, api: FakeDiscordAPI, sqlite_url: str
) -> None:
    settings = Settings(database_url=sqlite_url, interval=3600, instance="readme")
    async with Vigil(settings, process_metrics=False) as vigil, readme_bot.Bot(vigil) as bot:
        await bot.login(TOKEN)
        for _ in range(3):
            await bot.fetch_user(3001)
        api.rate_limit_next(retry_after=0.01)
        await bot.fetch_user(3002)  # discord.py waits out the 429 and retries
        readings = await vigil.metrics.read()
    assert readings["api_rate_limit_hits"] == 1.0
    assert readings["api_rate_limit_usage"] == 100.0  # the 429 announced 0 remaining
    assert readings["api_p95_latency"] is not None


async def test_the_readme_bot_closes_cleanly_when_the_login_fails(
    readme_bot: ModuleType,
    api: FakeDiscordAPI,
    sessions: list[aiohttp.ClientSession],
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "a-wrong-token")
    monkeypatch.setenv("VIGIL_DATABASE_URL", sqlite_url)
    with pytest.raises(discord.LoginFailure) as failure:
        await readme_bot.main()
    chain: list[BaseException] = []
    error: BaseException | None = failure.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert not [e for e in chain if isinstance(e, AttributeError)], chain
    assert ("GET", "/users/@me") in api.requests  # it did try, and Discord said no
    # aiohttp warns "Unclosed client session" for exactly the sessions left open.
    assert sessions, "discord.py created no HTTP session: the login was never tried"
    assert [session for session in sessions if not session.closed] == []
