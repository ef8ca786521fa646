"""Operating Vigil from Discord: the settings, who may do what, and the actions themselves.

``DiscordOperations`` is what a host passes to ``instrument(bot, vigil, operations=...)``;
``DiscordOperator`` is what that call attaches to the bot: the incident poster, the buttons
on its messages and the ``/vigil`` commands, all acting through the running ``Vigil`` with the
Discord user as the actor.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import uuid
import weakref
from collections.abc import Awaitable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import discord
from discord.ext import commands

from vigil.core import Incident, Severity, Status
from vigil.core.errors import (
    IllegalTransitionError,
    NotFoundError,
    ValidationError,
    VigilError,
)
from vigil.store.records import Role

if TYPE_CHECKING:
    from vigil.runtime.vigil import Vigil

_log = logging.getLogger(__name__)
T = TypeVar("T")

SOURCE = "discord"
ANSWER_COLOUR = 0x5865F2  # Discord's own blue: an answer, not an incident's state
DEFER_AFTER = 2.0  # seconds an action may take before its interaction is deferred
ENV_PREFIX = "VIGIL_DISCORD_"
_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
_ACTOR = re.compile(r"^(?P<name>.*) \[discord:(?P<id>\d+)\]$")

# The snooze choices offered on the message and by /vigil snooze: (label, seconds).
SNOOZE_CHOICES: tuple[tuple[str, int], ...] = (
    ("15 minutes", 900),
    ("1 hour", 3600),
    ("4 hours", 14_400),
    ("1 day", 86_400),
)

_operators: weakref.WeakKeyDictionary[discord.Client, DiscordOperator] = weakref.WeakKeyDictionary()


def _ids(name: str, values: Collection[int]) -> frozenset[int]:
    if isinstance(values, str | bytes | int):
        raise ValidationError(name, f"must be a list of Discord ids, got {values!r}")
    found: set[int] = set()
    for value in values:
        _check_id(name, value)
        found.add(int(value))
    return frozenset(found)


def _env_id(variable: str, text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValidationError(
            variable, f"must be a Discord id (digits), got {text.strip()!r}"
        ) from None
    return _check_id(variable, value)


def _check_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ValidationError(
            name, f"must be a Discord id (a positive whole number), got {value!r}"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class DiscordOperations:
    """Where incidents are posted and who may act on them.

    ``channel_id``: the operations channel every incident is posted to, unless
    ``severity_channels`` names another for its severity (``{"critical": 123}``; an incident
    stays in the channel it was first posted to when it escalates). ``admin_roles`` /
    ``admin_users`` may acknowledge, resolve and snooze; ``viewer_roles`` / ``viewer_users``
    may read (``/vigil status``, ``incidents``, ``rules``); anyone else is refused. ``guild_id``
    registers ``/vigil`` in that guild only (at once; global commands take up to an hour to
    appear) when ``sync_commands`` is on. ``base_url`` puts a link to the incident's page
    on each message (by default the Vigil's ``VIGIL_BASE_URL``, when set).
    """

    channel_id: int
    severity_channels: Mapping[str, int] = field(default_factory=dict)
    admin_roles: Collection[int] = ()
    admin_users: Collection[int] = ()
    viewer_roles: Collection[int] = ()
    viewer_users: Collection[int] = ()
    guild_id: int | None = None
    sync_commands: bool = True
    base_url: str | None = None
    check_every: float = 30.0  # the poster's periodic look, besides the wake-ups by events
    retry_after: float = 2.0  # first wait after a failed round; doubles up to max_retry
    max_retry: float = 300.0

    def __post_init__(self) -> None:
        _check_id("channel_id", self.channel_id)
        channels: dict[str, int] = {}
        for severity, channel in dict(self.severity_channels).items():
            try:
                key = Severity(severity)
            except ValueError:
                raise ValidationError(
                    "severity_channels", f"{severity!r} is not a severity (info, warning, critical)"
                ) from None
            channels[key.value] = _check_id("severity_channels", channel)
        object.__setattr__(self, "severity_channels", channels)
        for name in ("admin_roles", "admin_users", "viewer_roles", "viewer_users"):
            object.__setattr__(self, name, _ids(name, getattr(self, name)))
        if self.guild_id is not None:
            _check_id("guild_id", self.guild_id)
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValidationError(
                "base_url", f"must start with http:// or https://, got {self.base_url!r}"
            )
        for name in ("check_every", "retry_after", "max_retry"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValidationError(name, f"must be a positive number of seconds, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DiscordOperations | None:
        """The settings from ``VIGIL_DISCORD_*`` variables; None when
        ``VIGIL_DISCORD_CHANNEL_ID`` is not set (operations off). Lists are comma-separated
        ids; a value that is not one raises ``ValidationError`` naming the variable."""
        env = os.environ if environ is None else environ
        channel = env.get(ENV_PREFIX + "CHANNEL_ID", "").strip()
        if not channel:
            return None
        values: dict[str, Any] = {"channel_id": _env_id(ENV_PREFIX + "CHANNEL_ID", channel)}
        for name in ("admin_roles", "admin_users", "viewer_roles", "viewer_users"):
            variable = ENV_PREFIX + name.upper()
            values[name] = [
                _env_id(variable, part) for part in env.get(variable, "").split(",") if part.strip()
            ]
        for severity in Severity:
            variable = f"{ENV_PREFIX}{severity.value.upper()}_CHANNEL_ID"
            if env.get(variable, "").strip():
                values.setdefault("severity_channels", {})[severity.value] = _env_id(
                    variable, env[variable]
                )
        if env.get(ENV_PREFIX + "GUILD_ID", "").strip():
            values["guild_id"] = _env_id(ENV_PREFIX + "GUILD_ID", env[ENV_PREFIX + "GUILD_ID"])
        sync = env.get(ENV_PREFIX + "SYNC_COMMANDS", "").strip().lower()
        if sync:
            if sync not in _BOOLEANS:
                raise ValidationError(
                    ENV_PREFIX + "SYNC_COMMANDS", f"must be true or false, got {sync!r}"
                )
            values["sync_commands"] = _BOOLEANS[sync]
        return cls(**values)

    def channel_for(self, severity: Severity) -> int:
        return self.severity_channels.get(severity.value, self.channel_id)

    def role_of(self, user: discord.abc.User) -> Role | None:
        """The Vigil role a Discord user has here: by user id first (a user mapped to
        ``viewer`` stays a viewer whatever their Discord roles), then by any role."""
        if user.id in self.admin_users:
            return Role.ADMIN
        if user.id in self.viewer_users:
            return Role.VIEWER
        roles = {role.id for role in getattr(user, "roles", ())}
        if roles & set(self.admin_roles):
            return Role.ADMIN
        if roles & set(self.viewer_roles):
            return Role.VIEWER
        return None


def actor(user: discord.abc.User) -> str:
    """How a Discord user is recorded as the actor of a change: name and id, marked as coming
    from Discord (``alice [discord:1234]``)."""
    return f"{user.name} [{SOURCE}:{user.id}]"


def parse_actor(by: str | None) -> tuple[str, int] | None:
    """The Discord user's name and id in an actor written by ``actor``; None for others."""
    match = _ACTOR.match(by or "")
    return None if match is None else (match["name"], int(match["id"]))


class DiscordOperator:
    """What ``instrument(..., operations=...)`` attached to a bot."""

    def __init__(self, bot: commands.Bot, vigil: Vigil, config: DiscordOperations) -> None:
        from vigil.integrations._buttons import DYNAMIC_ITEMS
        from vigil.integrations._group_buttons import GROUP_ITEMS
        from vigil.integrations._poster import IncidentPoster
        from vigil.integrations._slash import vigil_group

        if bot in _operators:
            raise RuntimeError("this bot already operates a Vigil; detach it first")
        self.bot = bot
        self.vigil = vigil
        self.config = config
        self.poster = IncidentPoster(self)
        self._synced = False
        self._group = vigil_group(self)
        self._guild = discord.Object(config.guild_id) if config.guild_id is not None else None
        self._items = DYNAMIC_ITEMS + GROUP_ITEMS
        bot.add_dynamic_items(*self._items)
        bot.tree.add_command(self._group, guild=self._guild, override=True)
        self._listeners = {"on_ready": self._on_ready, "on_resumed": self._on_resumed}
        for event, listener in self._listeners.items():
            bot.add_listener(listener, event)
        _operators[bot] = self
        vigil.add_closer(self.poster.stop)
        if bot.is_ready():  # instrumented after the bot connected: start now
            self.poster.start(catch_up=True)

    @staticmethod
    def of(client: discord.Client) -> DiscordOperator:
        operator = _operators.get(client)
        if operator is None:
            raise RuntimeError("this bot does not operate a Vigil")
        return operator

    @property
    def base_url(self) -> str | None:
        if self.config.base_url is not None:
            return self.config.base_url.rstrip("/")
        configured = getattr(self.vigil.settings, "base_url", None)
        return str(configured).rstrip("/") if configured else None

    def incident_url(self, incident_id: uuid.UUID) -> str | None:
        base = self.base_url
        return None if base is None else f"{base}/incidents/{incident_id}"

    def group_url(self, group_id: uuid.UUID) -> str | None:
        """The group on the Alerts page (its panel of incident groups)."""
        base = self.base_url
        return None if base is None else f"{base}/alerts#group-{group_id}"

    def detach(self) -> None:
        """Take the commands, buttons and listeners off the bot and stop posting."""
        if _operators.get(self.bot) is not self:
            return
        for event, listener in self._listeners.items():
            self.bot.remove_listener(listener, event)
        self.bot.tree.remove_command(self._group.name, guild=self._guild)
        self.bot.remove_dynamic_items(*self._items)
        self.poster.cancel()
        _operators.pop(self.bot, None)

    async def _on_ready(self) -> None:
        if self.config.sync_commands and not self._synced:
            self._synced = True
            try:
                await self.bot.tree.sync(guild=self._guild)
            except discord.HTTPException as exc:
                self._synced = False
                _log.warning("Vigil could not register the /vigil commands: %s", exc)
        # Back on the gateway: messages missed while away are brought up to date.
        self.poster.start(catch_up=True)

    async def _on_resumed(self) -> None:
        self.poster.start(catch_up=True)

    # -- who may act -----------------------------------------------------------------------

    async def permitted(self, interaction: discord.Interaction[Any], needed: Role) -> bool:
        """Whether the user holds ``needed`` (admin covers viewer); if not, says so to them
        alone and nothing changes."""
        role = self.config.role_of(interaction.user)
        if role is Role.ADMIN or (role is Role.VIEWER and needed is Role.VIEWER):
            return True
        what = "act on incidents" if needed is Role.ADMIN else "read Vigil here"
        reason = (
            "your Discord roles give you viewer access only"
            if role is Role.VIEWER
            else "none of your Discord roles is mapped to Vigil"
        )
        await reply(interaction, f"You may not {what}: {reason}.")
        return False

    # -- the actions: each answers the person privately; the message follows the event ------

    async def acknowledge(
        self, interaction: discord.Interaction[Any], incident_id: uuid.UUID | str, note: str | None
    ) -> Incident | None:
        return await self._transition(interaction, incident_id, note, "acknowledge")

    async def resolve(
        self, interaction: discord.Interaction[Any], incident_id: uuid.UUID | str, note: str | None
    ) -> Incident | None:
        return await self._transition(interaction, incident_id, note, "resolve")

    async def _transition(
        self,
        interaction: discord.Interaction[Any],
        incident_id: uuid.UUID | str,
        note: str | None,
        verb: Literal["acknowledge", "resolve"],
    ) -> Incident | None:
        if not await self.permitted(interaction, Role.ADMIN):
            return None
        by = actor(interaction.user)
        act = self.vigil.acknowledge if verb == "acknowledge" else self.vigil.resolve

        async def work() -> tuple[Incident | None, str]:
            try:
                done = await act(incident_id, by=by, notes=note or None)
            except IllegalTransitionError:
                return None, await self._already(incident_id, verb)
            except VigilError as exc:
                return None, _refusal(exc)
            return done, f"{verb.capitalize()}d **{_label(done)}**."

        incident, text = await in_time(interaction, work())
        await reply(interaction, text)
        return incident

    async def snooze(
        self, interaction: discord.Interaction[Any], rule: str, seconds: int, reason: str | None
    ) -> bool:
        if not await self.permitted(interaction, Role.ADMIN):
            return False
        label = dict((s, label) for label, s in SNOOZE_CHOICES).get(seconds, f"{seconds} s")
        by = actor(interaction.user)

        async def work() -> tuple[bool, str]:
            try:
                snooze = await self.vigil.snooze(
                    rule,
                    duration=timedelta(seconds=seconds),
                    reason=reason or f"snoozed from Discord for {label}",
                    by=by,
                )
            except VigilError as exc:
                return False, _refusal(exc)
            until = int(snooze.until.timestamp())
            return True, f"Snoozed **{rule}** for {label} (until <t:{until}:f>)."

        snoozed, text = await in_time(interaction, work())
        await reply(interaction, text)
        return snoozed

    async def _already(self, incident_id: uuid.UUID | str, action: str) -> str:
        """What happened to an incident someone else acted on first."""
        try:
            current = await self.vigil.store.get_incident(incident_id)
        except NotFoundError:
            return f"There is no incident {incident_id}."
        if current.status is Status.RESOLVED:
            who = current.resolved_by or "automatically (the metric recovered)"
            return f"Too late to {action}: **{_label(current)}** was already resolved by {who}."
        at = current.acknowledged_at
        when = f" <t:{int(at.timestamp())}:R>" if at is not None else ""
        return (
            f"Already acknowledged by {current.acknowledged_by}{when}: "
            f"**{_label(current)}** is {current.status.value}."
        )


async def in_time(interaction: discord.Interaction[Any], work: Awaitable[T]) -> T:
    """``work``'s result; if it takes longer than ``DEFER_AFTER`` (a slow database), the
    interaction is deferred first: Discord drops an interaction not answered in 3 seconds,
    and the answer then comes as a follow-up."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=DEFER_AFTER)
    if not done and not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)
    return await task


async def reply(interaction: discord.Interaction[Any], text: str) -> None:
    """Answer privately (ephemeral), as an embed like every answer, whether or not the
    interaction was answered yet."""
    embed = discord.Embed(description=text, colour=ANSWER_COLOUR)
    if interaction.response.is_done():
        await interaction.followup.send(embed=embed, ephemeral=True)
    else:
        await interaction.response.send_message(embed=embed, ephemeral=True)


def _label(incident: Incident) -> str:
    from vigil.integrations._embeds import rule_name

    return f"{rule_name(incident)} ({incident.severity.value})"


def _refusal(exc: VigilError) -> str:
    if isinstance(exc, NotFoundError):
        return f"Nothing changed: {exc}."
    if isinstance(exc, ValidationError):
        return f"Nothing changed: {exc.field}: {exc.message}"
    return f"Nothing changed: {exc}"
