"""The buttons and the select on an incident's message, and the forms they open.

They are discord.py *dynamic items*: the incident id is in each ``custom_id``, and the bot
recognises them by pattern, so the buttons of a message posted before a restart (or by another
instance) still work, with no view kept in memory. Pressing one acts through the operator,
which checks the member's roles first.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import discord
from discord import ui

from vigil.core import Incident, Status
from vigil.core.errors import VigilError
from vigil.integrations._operations import SNOOZE_CHOICES, DiscordOperator, reply
from vigil.store.records import Role

_ID = r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
MAX_NOTE = 1000
MAX_REASON = 500


class AcknowledgeButton(ui.DynamicItem[ui.Button[Any]], template=rf"vigil:ack:{_ID}"):
    def __init__(self, incident_id: uuid.UUID, *, disabled: bool = False) -> None:
        super().__init__(acknowledge_button("Acknowledge", f"vigil:ack:{incident_id}", disabled))
        self.incident_id = incident_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> AcknowledgeButton:
        return cls(uuid.UUID(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        operator = DiscordOperator.of(interaction.client)
        if await operator.permitted(interaction, Role.ADMIN):
            await interaction.response.send_modal(
                AcknowledgeForm(self.incident_id, opened_by=interaction.id)
            )


class ResolveButton(ui.DynamicItem[ui.Button[Any]], template=rf"vigil:resolve:{_ID}"):
    def __init__(self, incident_id: uuid.UUID, *, disabled: bool = False) -> None:
        super().__init__(resolve_button("Resolve", f"vigil:resolve:{incident_id}", disabled))
        self.incident_id = incident_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> ResolveButton:
        return cls(uuid.UUID(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await DiscordOperator.of(interaction.client).resolve(interaction, self.incident_id, None)


class SnoozeSelect(ui.DynamicItem[ui.Select[Any]], template=rf"vigil:snooze:{_ID}"):
    def __init__(self, incident_id: uuid.UUID, *, disabled: bool = False) -> None:
        super().__init__(
            snooze_select("Snooze this rule…", f"vigil:snooze:{incident_id}", disabled)
        )
        self.incident_id = incident_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> SnoozeSelect:
        return cls(uuid.UUID(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        operator = DiscordOperator.of(interaction.client)
        seconds = await snooze_choice(operator, interaction, self.item.values)
        if seconds is None:
            return
        try:
            incident = await operator.vigil.store.get_incident(self.incident_id)
        except VigilError as exc:  # told to the person; nothing changed
            await reply(interaction, f"Nothing changed: {exc}")
            return
        await interaction.response.send_modal(
            SnoozeForm(incident, seconds, opened_by=interaction.id)
        )


class AcknowledgeForm(ui.Modal, title="Acknowledge incident"):
    note: ui.TextInput[AcknowledgeForm] = ui.TextInput(
        label="Note (optional)",
        style=discord.TextStyle.paragraph,
        required=False,
        max_length=MAX_NOTE,
        placeholder="What you are doing about it",
    )

    def __init__(self, incident_id: uuid.UUID, *, opened_by: int) -> None:
        # One form per press: discord.py finds an open form by its custom_id alone.
        super().__init__(custom_id=f"vigil:ack-form:{incident_id}:{opened_by}", timeout=900)
        self.incident_id = incident_id

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        operator = DiscordOperator.of(interaction.client)
        await operator.acknowledge(interaction, self.incident_id, self.note.value.strip() or None)


class SnoozeForm(ui.Modal, title="Snooze rule"):
    reason: ui.TextInput[SnoozeForm] = ui.TextInput(
        label="Reason (optional)",
        required=False,
        max_length=MAX_REASON,
        placeholder="Why it may stay quiet",
    )

    def __init__(self, incident: Incident, seconds: int, *, opened_by: int) -> None:
        from vigil.integrations._embeds import rule_name

        self.rule = rule_name(incident)
        label = dict((s, label) for label, s in SNOOZE_CHOICES)[seconds]
        super().__init__(
            title=f"Snooze {self.rule} for {label}"[:45],
            custom_id=f"vigil:snooze-form:{incident.id}:{seconds}:{opened_by}",
            timeout=900,
        )
        self.seconds = seconds

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        operator = DiscordOperator.of(interaction.client)
        await operator.snooze(interaction, self.rule, self.seconds, self.reason.value.strip())


DYNAMIC_ITEMS: tuple[type[ui.DynamicItem[Any]], ...] = (
    AcknowledgeButton,
    ResolveButton,
    SnoozeSelect,
)


def incident_view(incident: Incident, *, link: str | None) -> ui.View:
    """The controls under an incident's message: those that still make sense are enabled;
    a resolved incident keeps only its link."""
    if incident.status is Status.RESOLVED:
        return controls(link=link)
    acknowledge = AcknowledgeButton(incident.id, disabled=incident.status is not Status.ACTIVE)
    return controls(acknowledge, ResolveButton(incident.id), SnoozeSelect(incident.id), link=link)


def controls(*items: ui.Item[Any], link: str | None) -> ui.View:
    """A message's controls: acknowledge, resolve, the link to Vigil, then (on a row of its
    own) the snooze select; none but the link for what is resolved."""
    view = ui.View(timeout=None)
    for item in items[:-1]:
        view.add_item(item)
    if link is not None:
        view.add_item(ui.Button(label="Open in Vigil", style=discord.ButtonStyle.link, url=link))
    if items:
        items[-1].row = 1
        view.add_item(items[-1])
    return view


def acknowledge_button(label: str, custom_id: str, disabled: bool) -> ui.Button[Any]:
    return ui.Button(
        label=label, style=discord.ButtonStyle.primary, custom_id=custom_id, disabled=disabled
    )


def resolve_button(label: str, custom_id: str, disabled: bool) -> ui.Button[Any]:
    return ui.Button(
        label=label, style=discord.ButtonStyle.success, custom_id=custom_id, disabled=disabled
    )


def snooze_select(placeholder: str, custom_id: str, disabled: bool) -> ui.Select[Any]:
    return ui.Select(
        placeholder=placeholder,
        custom_id=custom_id,
        options=[
            discord.SelectOption(label=label, value=str(seconds))
            for label, seconds in SNOOZE_CHOICES
        ],
        disabled=disabled,
    )


async def snooze_choice(
    operator: DiscordOperator, interaction: discord.Interaction[Any], values: list[str]
) -> int | None:
    """The snooze chosen, in seconds; ``None`` (the person told why) when they may not snooze
    or the choice is not one offered."""
    if not await operator.permitted(interaction, Role.ADMIN):
        return None
    choices = {seconds for _, seconds in SNOOZE_CHOICES}
    if not values or not values[0].isdigit() or int(values[0]) not in choices:
        await reply(interaction, f"Nothing changed: unknown snooze choice {values!r}.")
        return None
    return int(values[0])
