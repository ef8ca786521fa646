"""``/vigil``: status, incidents, ack, resolve, snooze and rules, as slash commands.

Every answer is an embed seen only by the person who asked (ephemeral): incident
details stay between Vigil and its operators. Reading needs the viewer role, acting the admin
role; anyone else is told so, privately, and nothing changes.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from vigil.core import Incident, Severity
from vigil.integrations._embeds import COLOURS, RESOLVED, rule_name, status_line
from vigil.integrations._operations import ANSWER_COLOUR, SNOOZE_CHOICES
from vigil.store.records import Role

if TYPE_CHECKING:
    from vigil.integrations._operations import DiscordOperator

PAGE_SIZE = 10
MAX_CHOICES = 25  # Discord shows at most 25 autocomplete choices


def vigil_group(operator: DiscordOperator) -> app_commands.Group:
    group = app_commands.Group(name="vigil", description="Vigil: incidents and alert rules")
    vigil = operator.vigil

    async def incident_choices(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        if operator.config.role_of(interaction.user) is None:
            return []  # nothing of Vigil shows to a member it does not know
        typed = current.strip().lower()
        choices = []
        for incident in vigil.view.active():
            label = f"{rule_name(incident)} · {incident.severity.value} · {incident.status.value}"
            if typed and typed not in label.lower() and not str(incident.id).startswith(typed):
                continue
            choices.append(
                app_commands.Choice(
                    name=f"{label} · {str(incident.id)[:8]}"[:100], value=str(incident.id)
                )
            )
        return choices[:MAX_CHOICES]

    async def rule_choices(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        if operator.config.role_of(interaction.user) is None:
            return []
        typed = current.strip().lower()
        return [
            app_commands.Choice(name=name, value=name)
            for name in sorted(vigil.view.rules)
            if typed in name.lower()
        ][:MAX_CHOICES]

    @group.command(name="status", description="Open incidents by severity and the key metrics now")
    async def status(interaction: discord.Interaction[Any]) -> None:
        if not await operator.permitted(interaction, Role.VIEWER):
            return
        await interaction.response.send_message(embed=status_embed(operator), ephemeral=True)

    @group.command(name="incidents", description="Open and recent incidents, newest first")
    @app_commands.describe(page="Page number, from 1")
    async def incidents(
        interaction: discord.Interaction[Any], page: app_commands.Range[int, 1, 10_000] = 1
    ) -> None:
        if not await operator.permitted(interaction, Role.VIEWER):
            return
        found = await vigil.store.incident_history(page=page, page_size=PAGE_SIZE)
        await interaction.response.send_message(
            embed=incidents_embed(
                found.items, page=page, pages=found.pages, total=found.total, now=vigil.clock()
            ),
            ephemeral=True,
        )

    @group.command(name="ack", description="Acknowledge an open incident")
    @app_commands.describe(incident="The incident (start typing its rule)", note="Optional note")
    @app_commands.autocomplete(incident=incident_choices)
    async def ack(
        interaction: discord.Interaction[Any], incident: str, note: str | None = None
    ) -> None:
        await operator.acknowledge(interaction, _incident_id(incident), note)

    @group.command(name="resolve", description="Resolve an open incident")
    @app_commands.describe(incident="The incident (start typing its rule)", note="Optional note")
    @app_commands.autocomplete(incident=incident_choices)
    async def resolve(
        interaction: discord.Interaction[Any], incident: str, note: str | None = None
    ) -> None:
        await operator.resolve(interaction, _incident_id(incident), note)

    @group.command(name="snooze", description="Silence a rule for a while")
    @app_commands.describe(rule="The rule", duration="For how long", reason="Why")
    @app_commands.autocomplete(rule=rule_choices)
    @app_commands.choices(
        duration=[
            app_commands.Choice(name=label, value=seconds) for label, seconds in SNOOZE_CHOICES
        ]
    )
    async def snooze(
        interaction: discord.Interaction[Any],
        rule: str,
        duration: app_commands.Choice[int],
        reason: str | None = None,
    ) -> None:
        await operator.snooze(interaction, rule, duration.value, reason)

    @group.command(name="rules", description="The alert rules, their thresholds and levels now")
    async def rules(interaction: discord.Interaction[Any]) -> None:
        if not await operator.permitted(interaction, Role.VIEWER):
            return
        await interaction.response.send_message(embed=rules_embed(operator), ephemeral=True)

    return group


def _incident_id(text: str) -> str:
    """What was typed or chosen: the full id (an unknown one is refused by the store)."""
    text = text.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def status_embed(operator: DiscordOperator) -> discord.Embed:
    view = operator.vigil.view
    counts = view.summary()
    open_total = sum(counts.values())
    worst = next(
        (s for s in (Severity.CRITICAL, Severity.WARNING, Severity.INFO) if counts[s]), None
    )
    embed = discord.Embed(
        title="Vigil status",
        description=(
            "All clear: no open incident."
            if open_total == 0
            else f"{open_total} open incident{'s' if open_total != 1 else ''}."
        ),
        colour=RESOLVED if worst is None else COLOURS[worst],
    )
    embed.add_field(
        name="Open by severity",
        value=" · ".join(
            f"{s.value}: {counts[s]}" for s in (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
        ),
        inline=False,
    )
    lines = []
    for name, current in sorted(view.current.items()):
        rule = view.rules.get(name)
        if rule is None:
            continue
        unit = f" {rule.unit}" if rule.unit else ""
        value = "no data" if current.value is None else f"{current.value:.2f}{unit}"
        level = f" ({current.level.value})" if current.level is not None else ""
        lines.append(f"**{rule.display_name}**: {value}{level}")
    embed.add_field(name="Metrics now", value=_lines(lines, "No readings yet."), inline=False)
    for incident in view.active()[:5]:
        embed.add_field(
            name=f"{rule_name(incident)} ({incident.severity.value})",
            value=status_line(incident, now=operator.vigil.clock())[:1024],
            inline=False,
        )
    return embed


def incidents_embed(
    items: list[Incident], *, page: int, pages: int, total: int, now: Any
) -> discord.Embed:
    embed = discord.Embed(title="Incidents", colour=ANSWER_COLOUR)
    if not items:
        embed.description = "No incident on this page." if total else "No incident yet."
    for incident in items:
        embed.add_field(
            name=f"{rule_name(incident)} · {incident.severity.value} · {incident.status.value}"[
                :256
            ],
            value=(
                f"{status_line(incident, now=now)}\n"
                f"<t:{int(incident.triggered_at.timestamp())}:f> · `{incident.id}`"
            )[:1024],
            inline=False,
        )
    embed.set_footer(
        text=f"Page {page} of {max(pages, 1)} · {total} incidents · /vigil incidents page:N"
    )
    return embed


def rules_embed(operator: DiscordOperator) -> discord.Embed:
    view = operator.vigil.view
    embed = discord.Embed(title="Alert rules", colour=ANSWER_COLOUR)
    lines = []
    for name, rule in sorted(view.rules.items()):
        unit = f" {rule.unit}" if rule.unit else ""
        levels = []
        for level in ("warning", "critical"):
            threshold = getattr(rule, level, None)
            if threshold is not None:
                levels.append(f"{level} {threshold:g}{unit}")
        current = view.current.get(name)
        now = "" if current is None or current.level is None else f" · now {current.level.value}"
        state = "" if rule.enabled else " · disabled"
        lines.append(f"**{name}**: {', '.join(levels) or 'no thresholds'}{now}{state}")
    embed.description = _lines(lines, "No rules.", limit=4096)
    return embed


def _lines(lines: list[str], empty: str, *, limit: int = 1024) -> str:
    if not lines:
        return empty
    text = ""
    for n, line in enumerate(lines):
        if len(text) + len(line) + 1 > limit - 20:
            return text + f"… and {len(lines) - n} more"
        text += line + "\n"
    return text.rstrip()
