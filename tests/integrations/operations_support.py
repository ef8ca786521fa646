"""A running Vigil and real discord.py bots connected to the fake Discord, for the tests of
operating Vigil from Discord.

Incidents come from the real monitor: a scripted ``memory_usage`` source (warning 400 MB,
critical 480 MB, two readings to open or escalate, three to recover) and cycles run by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest
import yarl
from discord.ext import commands

from vigil.core import Event, Incident
from vigil.integrations.discord import DiscordInstrumentation, DiscordOperations, instrument
from vigil.runtime import Vigil
from vigil.settings import Settings

from ..runtime.support import Clock, Script, settings
from .fake_discord import ADMIN_ROLE, OPS_CHANNEL, VIEWER_ROLE, Callback, FakeDiscordAPI
from .teardown import ended

DEADLINE = 60.0
TOKEN = "bot-token"
METRIC = "memory_usage"
WARNING, CRITICAL, NORMAL = 450.0, 500.0, 100.0


async def eventually(condition: Callable[[], bool], *, what: str = "condition") -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - a fake's state has no event to await
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"{what} not met within {DEADLINE} s") from None


def point_discord_py_at(api: FakeDiscordAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py's REST base and gateway address, as its own tests would set them."""
    monkeypatch.setattr(discord.http.Route, "BASE", api.base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(api.gateway_url)
    )


def operations(**overrides: Any) -> DiscordOperations:
    values: dict[str, Any] = {
        "channel_id": int(OPS_CHANNEL),
        "admin_roles": [int(ADMIN_ROLE)],
        "viewer_roles": [int(VIEWER_ROLE)],
        "retry_after": 0.05,
        "max_retry": 0.5,
    }
    return DiscordOperations(**(values | overrides))


def make_bot() -> commands.Bot:
    # guild_ready_timeout: discord.py waits this long after the last GUILD_CREATE before
    # on_ready; the fake sends its one guild at once.
    return commands.Bot(
        command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05
    )


@dataclass
class Ops:
    api: FakeDiscordAPI
    vigil: Vigil
    clock: Clock
    script: Script
    bots: list[tuple[commands.Bot, asyncio.Task[None], DiscordInstrumentation]] = field(
        default_factory=list
    )

    async def start_bot(
        self, config: DiscordOperations | None = None, *, bot: commands.Bot | None = None
    ) -> commands.Bot:
        bot = bot if bot is not None else make_bot()
        wired = instrument(
            bot, self.vigil, operations=config if config is not None else operations()
        )
        task = asyncio.create_task(bot.start(TOKEN))
        self.bots.append((bot, task, wired))
        await eventually(bot.is_ready, what="the bot is ready")
        return bot

    async def run_bot(self, bot: commands.Bot) -> commands.Bot:
        """Start a bot that instruments itself (in its ``setup_hook``)."""
        task = asyncio.create_task(bot.start(TOKEN))
        await eventually(bot.is_ready, what="the bot is ready")
        from vigil.integrations.discord import _instrumented

        self.bots.append((bot, task, _instrumented[bot]))
        return bot

    async def stop_bot(self, bot: commands.Bot) -> None:
        for entry in list(self.bots):
            if entry[0] is bot:
                self.bots.remove(entry)
                entry[2].detach()  # its sources leave the Vigil, as when its process ends
                await bot.close()
                # Closed, its task has nothing left to do but it may be asleep in discord.py's
                # reconnect back-off (up to minutes, if the gateway dropped it before): ended
                # here rather than waited for.
                entry[1].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await entry[1]

    async def close(self) -> None:
        """Stop the bots, then Vigil."""
        for bot, _, _ in list(self.bots):
            await ended(self.stop_bot(bot), "stopping a bot")
        await ended(self.vigil.aclose(), "closing Vigil")

    async def cycle(self, value: float | None, times: int = 1) -> list[Event]:
        return await self.cycle_values({METRIC: value}, times)

    async def cycle_values(self, values: Mapping[str, float | None], times: int = 1) -> list[Event]:
        """Cycles reading ``values`` (several metrics at once)."""
        events: list[Event] = []
        for _ in range(times):
            self.clock.advance()
            self.script.values = dict(values)
            events += await self.vigil.monitor.cycle()
        return events

    async def open_incident(self, value: float = WARNING) -> Incident:
        events = await self.cycle(value, 2)
        opened = [e.incident for e in events if e.incident is not None]
        assert opened, "the rule opened no incident"
        return opened[-1]

    def messages(self, channel: str = OPS_CHANNEL) -> list[dict[str, Any]]:
        return self.api.messages_in(channel)

    def message_of(self, incident: Incident, channel: str = OPS_CHANNEL) -> dict[str, Any]:
        [message] = [m for m in self.messages(channel) if shows(m, incident)]
        return message

    async def posted(self, incident: Incident, channel: str = OPS_CHANNEL) -> dict[str, Any]:
        await eventually(
            lambda: any(shows(m, incident) for m in self.messages(channel)),
            what=f"a message for incident {incident.id}",
        )
        return self.message_of(incident, channel)

    async def shown(
        self, incident: Incident, text: str, channel: str = OPS_CHANNEL
    ) -> dict[str, Any]:
        """Wait until the incident's message shows ``text``."""
        await self.posted(incident, channel)
        await eventually(
            lambda: text in rendered(self.message_of(incident, channel)),
            what=f"the message showing {text!r}",
        )
        return self.message_of(incident, channel)

    async def interact(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: Mapping[str, Any],
        roles: tuple[str, ...] = (),
        message: dict[str, Any] | None = None,
        answers: int = 1,
    ) -> list[Callback]:
        """Send an interaction over the gateway; wait for its answers (callback and follow-ups
        counted together)."""
        payload = self.api.interaction(
            kind, data, user=dict(user), roles=list(roles), message=message
        )
        interaction_id = await self.api.press(payload)
        await eventually(
            lambda: len(self.api.answers_to(interaction_id)) >= answers,
            what="the interaction's answer",
        )
        return self.api.answers_to(interaction_id)

    async def press(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        user: Mapping[str, Any],
        roles: tuple[str, ...] = (),
        values: list[str] | None = None,
    ) -> Callback:
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
        if values is not None:
            data = {"custom_id": custom_id, "component_type": 3, "values": values}
        [answer] = await self.interact(3, data, user=user, roles=roles, message=message)
        return answer

    async def submit(
        self,
        modal: Callback,
        values: list[str],
        *,
        user: Mapping[str, Any],
        roles: tuple[str, ...] = (),
        message: dict[str, Any] | None = None,
    ) -> Callback:
        """Fill in the modal the bot opened (the answer ``modal``) and submit it."""
        [answer] = await self.interact(
            5, modal_submission(modal, values), user=user, roles=roles, message=message
        )
        return answer

    async def slash(
        self,
        subcommand: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: Mapping[str, Any],
        roles: tuple[str, ...] = (),
        autocomplete: str | None = None,
    ) -> Callback:
        registered = self.api.commands.get(None) or []
        command_id = next((c["id"] for c in registered if c["name"] == "vigil"), "1")
        sub_options = [
            {"name": name, "type": 4 if isinstance(value, int) else 3, "value": value}
            | ({"focused": True} if name == autocomplete else {})
            for name, value in (options or {}).items()
        ]
        data = {
            "id": command_id,
            "name": "vigil",
            "type": 1,
            "options": [{"name": subcommand, "type": 1, "options": sub_options}],
        }
        kind = 4 if autocomplete is not None else 2
        [answer] = await self.interact(kind, data, user=user, roles=roles)
        return answer


def custom_ids(message: Mapping[str, Any]) -> list[str]:
    return [
        component.get("custom_id", component.get("url", ""))
        for row in message.get("components") or []
        for component in row.get("components") or []
    ]


def shows(message: Mapping[str, Any], incident: Incident) -> bool:
    return any(
        (embed.get("footer") or {}).get("text") == f"Incident {incident.id}"
        for embed in message.get("embeds") or []
    )


def rendered(message: Mapping[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


def modal_submission(modal: Callback, values: list[str]) -> dict[str, Any]:
    """The MODAL_SUBMIT data for the modal the bot sent, its text inputs filled in order."""
    assert modal.type == 9, f"expected a modal, the bot answered {modal.type}: {modal.data}"
    inputs = []
    for row in modal.data["components"]:
        inner = row.get("components") or ([row["component"]] if "component" in row else [])
        inputs += [c for c in inner if c.get("type") == 4]
    filled = [
        {"type": 1, "components": [{"type": 4, "custom_id": c["custom_id"], "value": v}]}
        for c, v in zip(inputs, values, strict=True)
    ]
    return {"custom_id": modal.data["custom_id"], "components": filled}


async def start_ops(
    api: FakeDiscordAPI, url: str, *, instance: str = "test", group_window: float | None = None
) -> Ops:
    """A started Vigil (its first cycle over) on ``url``, with no bot yet. ``group_window``:
    incident grouping's window in seconds (0: off); by default two intervals, as shipped."""
    clock, script = Clock(), Script()
    configured: Settings = settings(url, instance=instance)
    if group_window is not None:
        configured = configured.model_copy(update={"group_window": group_window})
    vigil = Vigil(configured, sources=[script], process_metrics=False, clock=clock)
    await vigil.start()
    ops = Ops(api, vigil, clock, script)
    try:
        await eventually(lambda: vigil.monitor.status().cycles >= 1, what="the first cycle")
    except BaseException:
        await ops.close()
        raise
    return ops


@contextlib.asynccontextmanager
async def running_ops(
    api: FakeDiscordAPI, url: str, *, group_window: float | None = None
) -> AsyncIterator[Ops]:
    ops = await start_ops(api, url, group_window=group_window)
    try:
        yield ops
    finally:
        await ops.close()
