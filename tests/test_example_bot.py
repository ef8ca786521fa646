"""examples/discord_bot.py, wired for real but never connected to Discord."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from vigil import Settings, Vigil, dashboard

EXAMPLE = Path(__file__).parents[1] / "examples" / "discord_bot.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_bot", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_bot"] = module  # discord.py resolves the cog's annotations through it
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def vigil(sqlite_url: str) -> AsyncIterator[Vigil]:
    settings = Settings(
        database_url=sqlite_url, interval=3600, instance="example", port=free_port()
    )
    async with Vigil(settings, process_metrics=False) as running:
        yield running


async def test_the_example_bot_is_watched_and_serves_its_dashboard(
    example: ModuleType, vigil: Vigil, tmp_path: Path
) -> None:
    database = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    bot: Any = example.ExampleBot(vigil, database)
    try:
        async with bot:  # discord.py's own set-up, without logging in
            await bot.setup_hook()
            sources = {source.name for source in vigil.metrics.sources}
            assert {"commands", "gateway", "http", "database"} <= sources
            assert bot.get_command("ping") is not None
            assert {c.name for c in bot.tree.get_commands()} >= {"roll", "note"}
            # the database is timed: a query lands in the recorder
            async with database.connect() as connection:
                await connection.execute(text("SELECT count(*) FROM notes"))
            readings = await vigil.metrics.read()
            assert readings["database_query_time"] is not None
            # the background task is in the health registry
            assert vigil.metrics.health.get("ExampleBot.remind") is not None
            async with dashboard(vigil):
                url = f"http://127.0.0.1:{vigil.settings.port}"
                async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                    health = await client.get("/api/health")
                    assert health.status_code == 200
                    login = await client.get("/login")
                    assert login.status_code == 200 and "Sign in" in login.text
    finally:
        await database.dispose()
