"""What a group's notification says: one message for the incidents that opened together.

A group's message is written when it is sent, from the group as it is then: members that
joined while it waited are in it, so a retry may list more members than the first attempt
did (its idempotency key stays the same; it is about the same row). A group of one incident
is told of with that incident's own message (``format_event``).
"""

from __future__ import annotations

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.grouping import GroupSummary
from vigil.core.incidents import Incident, Resolution, Severity, Status
from vigil.notify.channels import Channel
from vigil.notify.format import (
    Message,
    Tone,
    format_event,
    idempotency_key,
    incident_link,
)
from vigil.notify.format import _one_line as one_line

MAX_LISTED = 20  # members listed by name; the rest are counted


def format_group(
    group: GroupSummary, event: Event, channel: Channel, *, base_url: str | None = None
) -> Message:
    """The message telling ``channel`` about ``group``, prompted by ``event`` (a member
    opened, the last member resolved, or the group was acknowledged)."""
    if event.incident is None or event.id is None:
        raise ValidationError("event", "must be a stored incident event")
    if event.incident.group != group.id:
        raise ValidationError("event", f"is not about a member of group {group.id}")
    if group.size == 1:
        return format_event(event, channel, base_url=base_url)
    headline = group.headline()
    if event.kind is EventKind.INCIDENT_RESOLVED or group.status is Status.RESOLVED:
        auto = all(m.resolution is Resolution.AUTO for m in group.members)
        how = "automatically" if auto else "(some by hand)"
        title = f"[RESOLVED] {headline}: all resolved {how}"
        lead = f"All {group.size} incidents of the group are resolved."
        tone = Tone.RESOLVED
    elif event.kind is EventKind.INCIDENT_ACKNOWLEDGED and group.status is Status.ACKNOWLEDGED:
        title = f"[{group.severity.value.upper()}] {headline}: acknowledged by {event.by}"
        lead = f"{group.size} related incidents were acknowledged together."
        tone = _tone(group.severity)
    else:  # opened, or acknowledged but a member opened since: the group is active
        title = f"[{group.severity.value.upper()}] {headline}"
        lead = (
            f"{group.size} incidents opened together "
            f"({group.open_count} open); most severe {group.severity.value}."
        )
        tone = _tone(group.severity)
    fields = [
        (m.rule if not m.instance else f"{m.rule} ({m.instance})", _member_line(m))
        for m in group.members[:MAX_LISTED]
    ]
    if group.size > MAX_LISTED:
        fields.append(("More", f"{group.size - MAX_LISTED} more incidents in the group"))
    first = group.members[0]
    return Message(
        title=one_line(title),
        lead=one_line(lead),
        fields=tuple((name, one_line(value)) for name, value in fields),
        tone=tone,
        link=incident_link(base_url, first.id),
        idempotency_key=idempotency_key(event.incident.id, event.id, channel.name),
        base_url=base_url.rstrip("/") if base_url else None,
    )


def _member_line(member: Incident) -> str:
    state = member.status.value
    if member.status is Status.ACKNOWLEDGED and member.acknowledged_by:
        state = f"acknowledged by {member.acknowledged_by}"
    return f"[{member.severity.value.upper()}] {member.message} ({state})"


def _tone(severity: Severity) -> Tone:
    return {
        Severity.CRITICAL: Tone.CRITICAL,
        Severity.WARNING: Tone.WARNING,
        Severity.INFO: Tone.INFO,
    }[severity]
