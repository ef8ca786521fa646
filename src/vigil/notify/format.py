"""What a notification says: one message per incident event and channel.

Every message has a title and a body in plain text and in Markdown, plus the facts as named
fields, a tone (which sets the colour) and a link to the incident. How it is rendered depends on
the channel's service (``Message.body_for``): Discord gets an embed, Markdown-capable services
(Slack, Telegram, e-mail as HTML) Markdown, everything else plain text.

The text depends only on the event, never on the clock at sending time, so a retried delivery
sends the very same message under the same idempotency key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Resolution, Severity
from vigil.core.rules import Rule
from vigil.notify.channels import Channel, NotifyOn, Service

# Fixed forever: changing it would change every idempotency key.
_KEY_NAMESPACE = uuid.UUID("5d7c2f4e-3b1a-4c55-9a0e-6f1d2b8c9e47")
_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>#|~"})
# A zero-width space after every "@": "@everyone", "@here", "<@123>" and "<@&456>" in a note or
# a name are shown as typed but ping no one (apprise turns any it finds into a ping).
_NO_MENTIONS = str.maketrans({"@": "@\u200b"})
MAX_FIELD = 1000


class Tone(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    RESOLVED = "resolved"

    @property
    def colour(self) -> int:
        """RGB as an integer, as Discord embeds take it."""
        return _COLOURS[self]


_COLOURS = {
    Tone.CRITICAL: 0xE53935,  # red
    Tone.WARNING: 0xFFA000,  # amber
    Tone.INFO: 0x1E88E5,  # blue
    Tone.RESOLVED: 0x43A047,  # green
}


class BodyFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    title: str
    lead: str  # one sentence: what happened
    fields: tuple[tuple[str, str], ...]
    tone: Tone
    link: str | None
    idempotency_key: str
    base_url: str | None = None  # the dashboard, where the service can link "Vigil" to

    @property
    def text(self) -> str:
        lines = [self.lead, "", *(f"{name}: {value}" for name, value in self.fields)]
        if self.link:
            lines += ["", f"Incident: {self.link}"]
        return "\n".join(lines)

    @property
    def markdown(self) -> str:
        lines = [_escape(self.lead), ""]
        lines += [f"- **{name}:** {_escape(value)}" for name, value in self.fields]
        if self.link:
            # The address is the link's text: the plain-text part of an e-mail (made from its
            # HTML, which drops every href) and any client that shows no links keep it.
            lines += ["", f"Open incident: [{_escape(self.link)}]({self.link})"]
        return "\n".join(lines)

    @property
    def discord_markdown(self) -> str:
        """The layout apprise turns into a Discord embed: text before the first heading is the
        description, each heading and the line below it one field. Mentions are disarmed
        (a channel that wants a ping says so with apprise's ``ping=`` option)."""
        lines = [_quiet(_escape(self.lead))]
        if self.link:
            lines += ["", f"[Open incident]({self.link})"]
        for name, value in self.fields:
            # apprise puts each value in a code block; only a leading "#" would still be
            # read as the next heading, and a zero-width space in front hides it.
            value = _quiet(value)
            lines += [f"# {name}", f"\u200b{value}" if value.startswith("#") else value]
        return "\n".join(lines)

    def title_for(self, service: Service) -> str:
        return _quiet(self.title) if service.schema == "discord" else self.title

    def body_for(self, service: Service) -> tuple[str, BodyFormat]:
        if service.schema == "discord":
            return self.discord_markdown, BodyFormat.MARKDOWN
        if service.rich:
            return self.markdown, BodyFormat.MARKDOWN
        return self.text, BodyFormat.TEXT


def format_event(
    event: Event,
    channel: Channel,
    *,
    base_url: str | None = None,
    rule: Rule | None = None,
    repeat: int = 0,
    now: datetime | None = None,
) -> Message:
    """The message telling ``channel`` about an incident event.

    ``rule`` supplies the display name and unit. ``repeat`` > 0 makes it the n-th reminder of
    an open incident, with its own idempotency key; ``now`` is then the time of the reminder
    (the duration shown runs to it; by default it runs to the event).
    """
    incident = event.incident
    on = NotifyOn.of(event.kind)
    if incident is None or on is None:
        raise ValidationError("event", f"{event.kind} is not an incident event; nothing to send")
    if event.id is None:
        raise ValidationError("event", "must be stored (have an id) before it is sent")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise ValidationError("repeat", f"must be a whole number from 0, got {repeat!r}")
    if repeat and not incident.is_open:
        raise ValidationError("repeat", "only an open incident is sent again")
    if rule is not None and rule.name != incident.rule:
        raise ValidationError("rule", f"is {rule.name!r}, not the incident's {incident.rule!r}")

    name = rule.display_name if rule is not None else _title(incident.metric)
    unit = rule.unit if rule is not None else ""
    duration = short_duration(incident.duration_s(now or event.at))
    severity = incident.severity.value.upper()
    if repeat:
        title = f"[{severity}] Reminder: {name} is still unacknowledged"
    elif event.kind is EventKind.INCIDENT_OPENED:
        title = f"[{severity}] {name}: incident opened"
    elif event.kind is EventKind.INCIDENT_ESCALATED:
        was = str(event.data.get("from", "warning"))
        title = f"[{severity}] {name}: escalated from {was}"
    elif event.kind is EventKind.INCIDENT_ACKNOWLEDGED:
        title = f"[{severity}] {name}: acknowledged by {incident.acknowledged_by}"
    elif event.kind is EventKind.INCIDENT_FLAPPING:
        title = f"[{severity}] {name}: flapping"
    else:
        how = (
            f"by {incident.resolved_by}"
            if incident.resolution is Resolution.MANUAL
            else "automatically"
        )
        title = f"[RESOLVED] {name}: resolved {how} after {duration}"

    fields = [
        ("Metric", incident.metric),
        ("Value", _amount(incident.last_value, unit)),
        ("Threshold", _amount(incident.threshold, unit)),
        ("Peak", _amount(incident.peak_value, unit)),
        ("Duration", duration),
        ("Status", _status(incident)),
    ]
    if incident.notes:
        fields.append(("Notes", incident.notes))
    lead = incident.message
    if event.kind is EventKind.INCIDENT_FLAPPING:
        percent = event.data.get("percent")
        change = f" ({float(percent):.1f}% state change)" if percent is not None else ""
        lead = (
            f"{name} is flapping{change}: the incident stays open and its changes are not "
            "notified until it settles."
        )
        fields.insert(0, ("Flapping", f"{change.strip(' ()') or 'yes'}"))
    return Message(
        title=_one_line(title),
        lead=_one_line(lead),
        fields=tuple((label, _one_line(value)) for label, value in fields),
        tone=_tone(event.kind, incident),
        link=incident_link(base_url, incident.id),
        idempotency_key=idempotency_key(incident.id, event.id, channel.name, repeat=repeat),
        base_url=_base(base_url),
    )


def format_test(channel: Channel, *, now: datetime, base_url: str | None = None) -> Message:
    """The "send a test message" message."""
    return Message(
        title="Vigil test message",
        lead=(
            f"This is a test of the notification channel {channel.name!r}. "
            "If you can read it, Vigil can reach you here."
        ),
        fields=(("Channel", channel.name), ("Sent", now.isoformat(timespec="seconds"))),
        tone=Tone.INFO,
        link=_base(base_url),
        idempotency_key=str(uuid.uuid5(_KEY_NAMESPACE, f"test/{channel.name}/{now.isoformat()}")),
        base_url=_base(base_url),
    )


def idempotency_key(
    incident_id: uuid.UUID, event_id: int, channel_name: str, *, repeat: int = 0
) -> str:
    """Stable per (incident, event, channel) and reminder number: a retry after a crash
    carries the same key, so a receiver that deduplicates (``Idempotency-Key`` header on
    JSON/form/XML webhooks) shows the message once."""
    name = f"{incident_id}/{event_id}/{channel_name}"
    if repeat:
        name += f"/repeat/{repeat}"
    return str(uuid.uuid5(_KEY_NAMESPACE, name))


def incident_link(base_url: str | None, incident_id: uuid.UUID) -> str | None:
    base = _base(base_url)
    return f"{base}/incidents/{incident_id}" if base is not None else None


def _base(base_url: str | None) -> str | None:
    if base_url is None:
        return None
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValidationError("base_url", f"must start with http:// or https://, got {base_url!r}")
    if any(char.isspace() for char in base_url):
        raise ValidationError("base_url", "must not contain spaces")
    return base_url.rstrip("/")


def _tone(kind: EventKind, incident: Incident) -> Tone:
    if kind is EventKind.INCIDENT_RESOLVED:
        return Tone.RESOLVED
    return {
        Severity.CRITICAL: Tone.CRITICAL,
        Severity.WARNING: Tone.WARNING,
        Severity.INFO: Tone.INFO,
    }[incident.severity]


def _status(incident: Incident) -> str:
    if incident.acknowledged_by and incident.is_open:
        return f"acknowledged by {incident.acknowledged_by}"
    if incident.resolution is Resolution.MANUAL:
        return f"resolved by {incident.resolved_by}"
    if incident.resolution is Resolution.AUTO:
        return "resolved automatically"
    return incident.status.value


def _amount(value: float, unit: str) -> str:
    if unit == "event":  # a count: "1 event", "3 events", as the pages say it
        return f"{value:g} {'event' if value == 1 else 'events'}"
    return f"{value:.2f} {unit}" if unit else f"{value:.2f}"


def short_duration(seconds: float) -> str:
    """``3d 4h``, ``2h 05m``, ``4m 09s``, ``12s``: how long, at a glance."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _title(metric: str) -> str:
    return metric.replace("_", " ").replace(".", " ").title()


def _one_line(text: str) -> str:
    """Collapse whitespace: a newline would break a field or start a Markdown heading."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_FIELD else flat[: MAX_FIELD - 1] + "…"


def _escape(text: str) -> str:
    return text.translate(_MARKDOWN_SPECIAL)


def _quiet(text: str) -> str:
    return text.translate(_NO_MENTIONS)
