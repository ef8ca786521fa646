"""The buttons on an incident group's message, the forms they open, and what they do.

A group's message carries the group's id in its buttons' ``custom_id`` (dynamic items, as an
incident's do, so they work across restarts), and they act on the group as it is when pressed:

- *Acknowledge* acknowledges every active member, as ``POST /api/alerts/groups/{id}/acknowledge``
  does, in one transaction (members acknowledged or resolved already stay as they are);
- *Resolve* resolves every open member, each as if resolved on its own (one resolved meanwhile
  is left as it is);
- *Snooze* snoozes the rules of the open members (each rule once), for the chosen time.

A group of one incident is shown as that incident, with that incident's buttons.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import discord
from discord import ui

from vigil.core import Status
from vigil.core.errors import IllegalTransitionError, NotFoundError, VigilError
from vigil.core.grouping import GroupSummary
from vigil.integrations._buttons import (
    _ID,
    MAX_NOTE,
    MAX_REASON,
    acknowledge_button,
    controls,
    incident_view,
    resolve_button,
    snooze_choice,
    snooze_select,
)
from vigil.integrations._embeds import rule_name
from vigil.integrations._operations import (
    SNOOZE_CHOICES,
    DiscordOperator,
    _label,
    _refusal,
    actor,
    in_time,
    reply,
)
from vigil.store.records import Role

MAX_NAMED = 5  # incidents or rules named in an answer; the rest are counted


class GroupAcknowledgeButton(ui.DynamicItem[ui.Button[Any]], template=rf"vigil:group-ack:{_ID}"):
    def __init__(self, group_id: uuid.UUID, *, disabled: bool = False) -> None:
        super().__init__(
            acknowledge_button("Acknowledge all", f"vigil:group-ack:{group_id}", disabled)
        )
        self.group_id = group_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> GroupAcknowledgeButton:
        return cls(uuid.UUID(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        operator = DiscordOperator.of(interaction.client)
        if await operator.permitted(interaction, Role.ADMIN):
            await interaction.response.send_modal(
                GroupAcknowledgeForm(self.group_id, opened_by=interaction.id)
            )


class GroupResolveButton(ui.DynamicItem[ui.Button[Any]], template=rf"vigil:group-resolve:{_ID}"):
    def __init__(self, group_id: uuid.UUID, *, disabled: bool = False) -> None:
        super().__init__(resolve_button("Resolve all", f"vigil:group-resolve:{group_id}", disabled))
        self.group_id = group_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> GroupResolveButton:
        return cls(uuid.UUID(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await resolve_group(DiscordOperator.of(interaction.client), interaction, self.group_id)


class GroupSnoozeSelect(ui.DynamicItem[ui.Select[Any]], template=rf"vigil:group-snooze:{_ID}"):
    def __init__(self, group_id: uuid.UUID, *, disabled: bool = False) -> None:
        super().__init__(
            snooze_select("Snooze these rules…", f"vigil:group-snooze:{group_id}", disabled)
        )
        self.group_id = group_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> GroupSnoozeSelect:
        return cls(uuid.UUID(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        operator = DiscordOperator.of(interaction.client)
        seconds = await snooze_choice(operator, interaction, self.item.values)
        if seconds is None:
            return
        try:
            group = await operator.vigil.store.get_group(self.group_id)
        except VigilError as exc:
            await reply(interaction, _refusal(exc))
            return
        rules = open_rules(group)
        if not rules:
            await reply(interaction, "Nothing changed: every incident of the group is resolved.")
            return
        await interaction.response.send_modal(
            GroupSnoozeForm(group.id, rules, seconds, opened_by=interaction.id)
        )


class GroupAcknowledgeForm(ui.Modal, title="Acknowledge the group's incidents"):
    note: ui.TextInput[GroupAcknowledgeForm] = ui.TextInput(
        label="Note (optional)",
        style=discord.TextStyle.paragraph,
        required=False,
        max_length=MAX_NOTE,
        placeholder="What you are doing about them",
    )

    def __init__(self, group_id: uuid.UUID, *, opened_by: int) -> None:
        super().__init__(custom_id=f"vigil:group-ack-form:{group_id}:{opened_by}", timeout=900)
        self.group_id = group_id

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        operator = DiscordOperator.of(interaction.client)
        await acknowledge_group(
            operator, interaction, self.group_id, self.note.value.strip() or None
        )


class GroupSnoozeForm(ui.Modal, title="Snooze rules"):
    reason: ui.TextInput[GroupSnoozeForm] = ui.TextInput(
        label="Reason (optional)",
        required=False,
        max_length=MAX_REASON,
        placeholder="Why they may stay quiet",
    )

    def __init__(
        self, group_id: uuid.UUID, rules: list[str], seconds: int, *, opened_by: int
    ) -> None:
        # The rules the person was shown when choosing: those are the ones snoozed.
        self.rules = rules
        label = dict((s, label) for label, s in SNOOZE_CHOICES)[seconds]
        what = rules[0] if len(rules) == 1 else f"{len(rules)} rules"
        super().__init__(
            title=f"Snooze {what} for {label}"[:45],
            custom_id=f"vigil:group-snooze-form:{group_id}:{seconds}:{opened_by}",
            timeout=900,
        )
        self.seconds = seconds

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        operator = DiscordOperator.of(interaction.client)
        await snooze_rules(
            operator, interaction, self.rules, self.seconds, self.reason.value.strip()
        )


GROUP_ITEMS: tuple[type[ui.DynamicItem[Any]], ...] = (
    GroupAcknowledgeButton,
    GroupResolveButton,
    GroupSnoozeSelect,
)


def group_view(group: GroupSummary, *, link: str | None, incident_link: str | None) -> ui.View:
    """The controls under a group's message: a group of one has its incident's; a resolved
    group keeps only its link (``link`` for a group, ``incident_link`` for a group of one)."""
    if group.size == 1:
        return incident_view(group.members[0], link=incident_link)
    if group.status is Status.RESOLVED:
        return controls(link=link)
    any_active = any(m.status is Status.ACTIVE for m in group.members)
    return controls(
        GroupAcknowledgeButton(group.id, disabled=not any_active),
        GroupResolveButton(group.id),
        GroupSnoozeSelect(group.id),
        link=link,
    )


def open_rules(group: GroupSummary) -> list[str]:
    """The rules of the group's open members, each once, in the group's order."""
    return list(dict.fromkeys(rule_name(m) for m in group.members if m.is_open))


# -- the actions: each answers the person privately; the message follows the events ----------


async def acknowledge_group(
    operator: DiscordOperator,
    interaction: discord.Interaction[Any],
    group_id: uuid.UUID,
    note: str | None,
) -> int:
    """Acknowledge the group's active members; returns how many were."""
    if not await operator.permitted(interaction, Role.ADMIN):
        return 0
    by = actor(interaction.user)

    async def work() -> tuple[int, str]:
        try:
            changed = await operator.vigil.acknowledge_group(group_id, by=by, notes=note)
        except IllegalTransitionError:
            return 0, await _group_already(operator, group_id, "acknowledge")
        except VigilError as exc:
            return 0, _refusal(exc)
        return len(changed), f"Acknowledged {_count(len(changed))}: {_names(changed)}."

    count, text = await in_time(interaction, work())
    await reply(interaction, text)
    return count


async def resolve_group(
    operator: DiscordOperator, interaction: discord.Interaction[Any], group_id: uuid.UUID
) -> int:
    """Resolve the group's open members; returns how many this press resolved."""
    if not await operator.permitted(interaction, Role.ADMIN):
        return 0
    by = actor(interaction.user)

    async def work() -> tuple[int, str]:
        try:
            group = await operator.vigil.store.get_group(group_id)
        except VigilError as exc:
            return 0, _refusal(exc)
        resolved = []
        for member in group.members:
            if not member.is_open:
                continue
            try:
                resolved.append(await operator.vigil.resolve(member.id, by=by))
            except (IllegalTransitionError, NotFoundError):
                continue  # resolved (or deleted) meanwhile: nothing left to do for it
        if not resolved:
            return 0, await _group_already(operator, group_id, "resolve")
        return len(resolved), f"Resolved {_count(len(resolved))}: {_names(resolved)}."

    count, text = await in_time(interaction, work())
    await reply(interaction, text)
    return count


async def snooze_rules(
    operator: DiscordOperator,
    interaction: discord.Interaction[Any],
    rules: list[str],
    seconds: int,
    reason: str | None,
) -> int:
    """Snooze each of ``rules``; returns how many were."""
    if not await operator.permitted(interaction, Role.ADMIN):
        return 0
    label = dict((s, label) for label, s in SNOOZE_CHOICES).get(seconds, f"{seconds} s")
    by = actor(interaction.user)

    async def work() -> tuple[int, str]:
        snoozed: list[str] = []
        refused: list[str] = []
        until = None
        for rule in rules:
            try:
                snooze = await operator.vigil.snooze(
                    rule,
                    duration=timedelta(seconds=seconds),
                    reason=reason or f"snoozed from Discord for {label}",
                    by=by,
                )
            except VigilError as exc:
                refused.append(f"{rule}: {_refusal(exc)}")
                continue
            snoozed.append(rule)
            until = snooze.until
        parts = []
        if snoozed and until is not None:
            names = ", ".join(f"**{rule}**" for rule in snoozed)
            parts.append(f"Snoozed {names} for {label} (until <t:{int(until.timestamp())}:f>).")
        parts += refused
        return len(snoozed), "\n".join(parts)

    count, text = await in_time(interaction, work())
    await reply(interaction, text)
    return count


async def _group_already(operator: DiscordOperator, group_id: uuid.UUID, action: str) -> str:
    """What happened to a group someone else (or the metrics) acted on first."""
    try:
        group = await operator.vigil.store.get_group(group_id)
    except NotFoundError:
        return f"There is no incident group {group_id}."
    if group.status is Status.RESOLVED:
        return f"Too late to {action}: all {_count(group.size)} were already resolved."
    who = sorted({m.acknowledged_by for m in group.members if m.acknowledged_by and m.is_open})
    by = f" by {', '.join(who)}" if who else ""
    return f"Nothing to {action}: the group's open incidents were already acknowledged{by}."


def _count(number: int) -> str:
    return f"{number} incident" if number == 1 else f"{number} incidents"


def _names(incidents: list[Any]) -> str:
    names = ", ".join(f"**{_label(i)}**" for i in incidents[:MAX_NAMED])
    more = len(incidents) - MAX_NAMED
    return names + (f" and {more} more" if more > 0 else "")
