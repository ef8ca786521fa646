"""How an incident, or an incident group, looks in Discord: one embed, rebuilt from the current
state.

Everything shown comes from the incident (and the live snooze of its rule), or from the group's
members, never from the event that caused the edit: any edit, a late one included, shows the
truth. A group of one incident is shown as that incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import discord

from vigil.core import Incident, Rule, Severity, Status
from vigil.core.grouping import GroupSummary
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
MAX_MEMBERS = 20  # members given a line of their own in a group's message; the rest counted


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


def group_footer(group: GroupSummary) -> str:
    """A group's message's footer; a group of one is shown as its incident, footer included."""
    return footer(group.members[0]) if group.size == 1 else f"Incident group {group.id}"


def group_footers(group: GroupSummary) -> frozenset[str]:
    """Every footer the group's message may have had: posted while the group had one member,
    it showed that incident."""
    return frozenset({f"Incident group {group.id}", footer(group.members[0])})


def group_embed(
    group: GroupSummary,
    *,
    rules: Mapping[str, Rule],
    snoozes: Mapping[str, Snooze],
    now: datetime,
) -> discord.Embed:
    """One message for the group: the headline, one line per member with its own state, the
    group's state, and what the members carry (notes, snoozes, flapping)."""
    if group.size == 1:
        member = group.members[0]
        return incident_embed(
            member,
            rule=rules.get(rule_name(member)),
            snooze=snoozes.get(rule_name(member)),
            now=now,
        )
    status = group.status
    open_members = [m for m in group.members if m.is_open]
    if status is Status.RESOLVED:
        colour, icon = RESOLVED, "\N{WHITE HEAVY CHECK MARK}"
    elif status is Status.ACKNOWLEDGED:
        colour, icon = ACKNOWLEDGED, "\N{EYES}"
    else:
        worst = max((m.severity for m in open_members), key=lambda s: s.rank)
        colour = COLOURS[worst]
        icon = ICONS.get(worst, "\N{LARGE BLUE CIRCLE}")
    lines = [member_line(m, rule=rules.get(rule_name(m)), now=now) for m in group.members]
    if len(lines) > MAX_MEMBERS:
        lines = [*lines[:MAX_MEMBERS], f"… and {len(lines) - MAX_MEMBERS} more"]
    embed = discord.Embed(
        title=f"{icon} {group.severity.value.upper()} · {group.headline()}"[:256],
        description=_clip("\n".join(lines), 4096),
        colour=colour,
        timestamp=group.opened_at,
    )
    embed.add_field(name="Status", value=_clip(group_status_line(group, now=now)), inline=False)
    notes = [
        f"{_member(m)}: {discord.utils.escape_markdown(m.notes)}" for m in group.members if m.notes
    ]
    if notes:
        embed.add_field(name="Notes", value=_clip("\n".join(notes)), inline=False)
    snoozed = [
        f"{discord.utils.escape_markdown(rule)} until {_when(snooze.until, 'f')} by "
        f"{_person(snooze.by)}: "
        f"{discord.utils.escape_markdown(snooze.reason)}"
        for rule, snooze in sorted(snoozes.items())
        if any(rule_name(m) == rule for m in open_members)
    ]
    if snoozed:
        embed.add_field(name="Snoozed", value=_clip("\n".join(snoozed)), inline=False)
    flapping = [_member(m) for m in open_members if m.flapping]
    if flapping:
        embed.add_field(
            name="Flapping",
            value=_clip(
                "Held open, their changes not notified until they settle: " + ", ".join(flapping)
            ),
            inline=False,
        )
    embed.add_field(
        name="Opened",
        value=f"{_when(group.opened_at, 'f')} ({_when(group.opened_at, 'R')})",
        inline=False,
    )
    embed.set_footer(text=group_footer(group))
    return embed


def member_line(incident: Incident, *, rule: Rule | None, now: datetime) -> str:
    """A member in its group's message: severity, rule, value and its own state."""
    unit = f" {rule.unit}" if rule is not None and rule.unit else ""
    if incident.status is Status.RESOLVED:
        icon = "\N{WHITE HEAVY CHECK MARK}"
    elif incident.status is Status.ACKNOWLEDGED:
        icon = "\N{EYES}"
    else:
        icon = ICONS.get(incident.severity, "\N{LARGE BLUE CIRCLE}")
    return (
        f"{icon} **{incident.severity.value.upper()}** · {_member(incident)} · "
        f"{incident.last_value:.2f}{unit} — {status_line(incident, now=now)}"
    )


def group_status_line(group: GroupSummary, *, now: datetime) -> str:
    """``2 of 3 open, 1 acknowledged``; ``All 3 resolved automatically after 9m 30s``."""
    if group.status is Status.RESOLVED:
        resolved_at = group.resolved_at or now
        duration = short_duration((resolved_at - group.opened_at).total_seconds())
        by_hand = sum(1 for m in group.members if m.resolution is Resolution.MANUAL)
        how = "automatically" if not by_hand else f"({by_hand} by hand)"
        return f"All {group.size} resolved {how} after {duration}"
    acknowledged = sum(1 for m in group.members if m.status is Status.ACKNOWLEDGED)
    if group.status is Status.ACKNOWLEDGED:
        return f"{group.open_count} of {group.size} open, all acknowledged"
    told = f"{acknowledged} acknowledged" if acknowledged else "none acknowledged"
    return f"{group.open_count} of {group.size} open, {told}"


def _member(incident: Incident) -> str:
    name = rule_name(incident)
    shown = f"{name} ({incident.instance})" if incident.instance else name
    return discord.utils.escape_markdown(shown)


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
