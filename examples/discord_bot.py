"""A small discord.py bot watched by Vigil, with the dashboard served beside it.

    pip install 'vigil-alerts[discord]'
    vigil users add admin --role admin          # once: who may sign in to the dashboard
    DISCORD_TOKEN=... python examples/discord_bot.py

Then open http://127.0.0.1:8000. The bot has a prefix command (`!ping`), slash commands
(`/roll`, `/note`), a background task (`tasks.loop`) and a database; the lines marked
"Vigil" are all it takes to watch them.

To operate Vigil from Discord through this bot (incidents posted to a channel with buttons,
and the /vigil commands), also set the channel and who may act:

    VIGIL_DISCORD_CHANNEL_ID=123... VIGIL_DISCORD_ADMIN_ROLES=456... \
        DISCORD_TOKEN=... python examples/discord_bot.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import random

import discord
from discord import app_commands
from discord.ext import commands, tasks
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vigil import Settings, Vigil, dashboard
from vigil.integrations.discord import (
    DiscordOperations,
    instrument,
    track_loop,
    vigil_trace_config,
)
from vigil.metrics import QueryTimer

log = logging.getLogger("example_bot")


class ExampleBot(commands.Bot):
    def __init__(
        self, vigil: Vigil, database: AsyncEngine, operations: DiscordOperations | None = None
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # for the prefix command
        super().__init__(
            command_prefix="!",
            intents=intents,
            http_trace=vigil_trace_config(vigil.recorder, window=vigil.window),  # Vigil
        )
        self.vigil = vigil
        self.database = database
        self.operations = operations

    async def setup_hook(self) -> None:
        # Vigil: commands, errors, gateway, rate limits; with operations, incidents in Discord
        instrument(self, self.vigil, operations=self.operations)
        queries = QueryTimer(self.vigil.recorder, window=self.vigil.window)  # Vigil:
        queries.attach(self.database)  # database query time
        self.vigil.add_source(queries)
        track_loop(self.remind, self.vigil.metrics.health)  # Vigil: the task's heartbeat

        async with self.database.begin() as connection:
            await connection.execute(
                text("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")
            )
        await self.add_cog(Commands(self))
        self.remind.start()

    async def close(self) -> None:
        self.remind.cancel()
        await super().close()

    @tasks.loop(minutes=1)
    async def remind(self) -> None:
        async with self.database.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM notes"))
        log.info("%s notes stored", count)


class Commands(commands.Cog):
    def __init__(self, bot: ExampleBot) -> None:
        self.bot = bot

    @commands.command()
    async def ping(self, ctx: commands.Context[ExampleBot]) -> None:
        """Prefix command: !ping"""
        await ctx.send(f"pong ({self.bot.latency * 1000:.0f} ms)")

    @app_commands.command(description="Roll a die")
    async def roll(self, interaction: discord.Interaction, sides: int = 6) -> None:
        await interaction.response.send_message(f"{random.randint(1, max(2, sides))}")

    @app_commands.command(description="Keep a note")
    async def note(self, interaction: discord.Interaction, body: str) -> None:
        async with self.bot.database.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": body})
        await interaction.response.send_message("noted", ephemeral=True)

    @commands.command()
    @commands.is_owner()
    async def sync(self, ctx: commands.Context[ExampleBot]) -> None:
        """!sync: publish the slash commands (once, by the owner)."""
        synced = await self.bot.tree.sync()
        await ctx.send(f"synced {len(synced)} commands")


async def main() -> None:
    logging.basicConfig(level=logging.INFO)
    database = create_async_engine(os.environ.get("BOT_DATABASE", "sqlite+aiosqlite:///bot.db"))
    async with Vigil(Settings.from_env()) as vigil, dashboard(vigil):  # Vigil
        operations = DiscordOperations.from_env()  # None unless VIGIL_DISCORD_CHANNEL_ID is set
        bot = ExampleBot(vigil, database, operations)
        async with bot:
            await bot.start(os.environ["DISCORD_TOKEN"])
    await database.dispose()


if __name__ == "__main__":
    asyncio.run(main())
