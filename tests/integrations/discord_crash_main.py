"""A bot process operating Vigil from Discord, for the crash tests; the test SIGKILLs it.

    python -m tests.integrations.discord_crash_main DATABASE_URL API_BASE GATEWAY MODE GROUPING

Its source reads memory_usage = 500 MB every second, so a critical incident opens on the
second cycle (or is found open after a restart). GROUPING ``off`` turns incident grouping off
(one message per incident, as before grouping); ``three`` leaves it on and also breaches
event_loop_lag and database_query_time, so three incidents open together in one group (one
message for the group). MODE ``run`` posts normally. ``hold-post``
stops the poster just before the message is posted (the incident and the claim are
committed), printing ``held``; ``hold-record`` stops it after the post and before its message
id is stored, printing ``posted MESSAGE_ID``. It prints ``started`` once the bot is ready.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from typing import Any

import yarl

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
from discord.ext import commands

from vigil.integrations._poster import IncidentPoster
from vigil.integrations.discord import DiscordOperations, instrument
from vigil.metrics import Reading
from vigil.runtime import Vigil
from vigil.settings import Settings

TOKEN = "bot-token"
CHANNEL = 6000


class Breaching:
    name = "breaching"

    def __init__(self, grouping: str) -> None:
        self.grouping = grouping

    async def read(self) -> Reading:
        if self.grouping == "three":
            return {"memory_usage": 500.0, "event_loop_lag": 900.0, "database_query_time": 150.0}
        return {"memory_usage": 500.0}


async def forever(*args: Any, **kwargs: Any) -> Any:
    await asyncio.Event().wait()


async def main(url: str, base: str, gateway: str, mode: str, grouping: str) -> None:
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    if mode == "hold-post":

        async def held_send(self: IncidentPoster, *args: Any) -> int:
            print("held", flush=True)
            return await forever()  # type: ignore[no-any-return]

        IncidentPoster._send = held_send  # type: ignore[method-assign,assignment]
    window = {"group_window": 0.0} if grouping == "off" else {}
    settings = Settings(database_url=url, instance="crash", interval=1.0, **window)
    async with Vigil(settings, sources=[Breaching(grouping)], process_metrics=False) as vigil:
        if mode == "hold-record":

            async def held_record(subject: Any, *, message_id: int, **kwargs: Any) -> Any:
                print(f"posted {message_id}", flush=True)
                return await forever()

            vigil.store.record_discord_post = held_record  # type: ignore[method-assign]
        bot = commands.Bot(
            command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05
        )
        instrument(
            bot,
            vigil,
            operations=DiscordOperations(
                channel_id=CHANNEL,
                admin_roles=[5001],
                sync_commands=False,
                retry_after=0.2,
                max_retry=1.0,
            ),
        )
        bot.add_listener(announce_ready, "on_ready")
        async with bot:
            await bot.start(TOKEN)


async def announce_ready() -> None:
    print("started", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
