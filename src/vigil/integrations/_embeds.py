"""How an incident looks in Discord: one embed, rebuilt from the incident's current state.

Everything shown comes from the incident (and the live snooze of its rule), never from the
event that caused the edit: any edit, a late one included, shows the truth.
"""

from __future__ import annotations

from datetime import datetime

import discord

from vigil.core import Incident, Rule, Severity, Status
from vigil.core.incidents import Resolution
from vigil.core.silences import Snooze
from vigil.notify.format import short_duration

COLOURS = {
    Severity.CRITICAL: 0xE74C3C,
    Severity.WARNING: 0xE67E22,
    Severity.INFO: 0x3498DB,
}
ACKNOWLEDGED = 0xF1C40F
RESOLVED = 0x2ECC71
ICONS = {Severity.CRITICAL: "\N{LARGE RED CIRCLE}", Severity.WARNING: "\N{LARGE ORANGE CIRCLE}"}
MAX_FIELD = 1024


def rule_name(incident: Incident) -> str:
    """The name of the rule that opened ``incident`` (its metric, until rules have names of
    their own)."""
    return str(getattr(incident, "rule", None) or incident.metric)


def incident_embed(
    incident: Incident,
    *,
    rule: Rule | None,
    snooze: Snooze | None,
    now: datetime,
) -> discord.Embed:
    name = rule.display_name if rule is not None else rule_name(incident)
    unit = f" {rule.unit}" if rule is not None and rule.unit else ""
    if incident.status is Status.RESOLVED:
        colour, icon = RESOLVED, "\N{WHITE HEAVY CHECK MARK}"
    elif incident.status is Status.ACKNOWLEDGED:
        colour, icon = ACKNOWLEDGED, "\N{EYES}"
    else:
        colour = COLOURS[incident.severity]
        icon = ICONS.get(incident.severity, "\N{LARGE BLUE CIRCLE}")
    embed = discord.Embed(
        title=f"{icon} {incident.severity.value.upper()} · {name}"[:256],
        description=_clip(incident.message, 4096),
        colour=colour,
        timestamp=incident.triggered_at,
    )
    embed.add_field(name="Status", value=_clip(status_line(incident, now=now)), inline=False)
    embed.add_field(name="Value", value=f"{incident.last_value:.2f}{unit}")
    embed.add_field(name="Peak", value=f"{incident.peak_value:.2f}{unit}")
    embed.add_field(name="Threshold", value=f"{incident.threshold:.2f}{unit}")
    if incident.flapping and incident.is_open:
        embed.add_field(
            name="Flapping",
            value="Held open: its changes are not notified until it settles.",
            inline=False,
        )
    if incident.notes:
        embed.add_field(
            name="Note", value=_clip(discord.utils.escape_markdown(incident.notes)), inline=False
        )
    if snooze is not None and incident.is_open:
        embed.add_field(
            name="Snoozed",
            value=_clip(
                f"{rule_name(incident)} until {_when(snooze.until, 'f')} by "
                f"{_person(snooze.by)}: {discord.utils.escape_markdown(snooze.reason)}"
            ),
            inline=False,
        )
    embed.add_field(
        name="Triggered",
        value=f"{_when(incident.triggered_at, 'f')} ({_when(incident.triggered_at, 'R')})",
        inline=False,
    )
    embed.set_footer(text=footer(incident))
    return embed


def footer(incident: Incident) -> str:
    """The line a restarted poster recognises its own message by."""
    return f"Incident {incident.id}"


def status_line(incident: Incident, *, now: datetime) -> str:
    if incident.status is Status.RESOLVED:
        duration = short_duration(incident.duration_s(now))
        if incident.resolution is Resolution.MANUAL:
            return f"Resolved by {_person(incident.resolved_by)} after {duration}"
        return f"Resolved automatically (the metric recovered) after {duration}"
    if incident.status is Status.ACKNOWLEDGED:
        when = _when(incident.acknowledged_at, "R") if incident.acknowledged_at else ""
        return f"Acknowledged by {_person(incident.acknowledged_by)} {when}".rstrip()
    return f"Active for {short_duration(incident.duration_s(now))}, not acknowledged"


def _person(actor: str | None) -> str:
    return discord.utils.escape_markdown(actor or "someone")


def _when(moment: datetime, style: str) -> str:
    return f"<t:{int(moment.timestamp())}:{style}>"


def _clip(text: str, limit: int = MAX_FIELD) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
