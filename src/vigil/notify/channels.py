"""Notification channels: a named apprise URL, what it wants to hear, and how it is shown back.

apprise parses and checks every URL, so any service it supports is a channel. The URL holds
secrets (webhook tokens, passwords), so it is left out of reprs and ``to_dict`` masks it unless
the caller (the store) asks for it in full.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

from vigil.core.digest import Delivery, DigestSchedule
from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity, Status
from vigil.core.validation import check_bool, check_choice, check_keys, check_name, frozen
from vigil.logmask import remember

SCHEME_PATTERN = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
MAX_URL = 2000
MAX_RENOTIFY_MINUTES = 7 * 24 * 60
MASK = "***"
INSPECTED_KEPT = 256  # channel URLs whose inspection is remembered


class NotifyOn(StrEnum):
    """The incident events a channel can subscribe to."""

    OPENED = "opened"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FLAPPING = "flapping"  # a series started flapping: its incident is held open (once)

    @classmethod
    def of(cls, kind: EventKind) -> NotifyOn | None:
        """The subscription an event kind falls under; None for events never notified."""
        return _BY_EVENT_KIND.get(kind)


_BY_EVENT_KIND = {
    EventKind.INCIDENT_OPENED: NotifyOn.OPENED,
    EventKind.INCIDENT_ESCALATED: NotifyOn.ESCALATED,
    EventKind.INCIDENT_ACKNOWLEDGED: NotifyOn.ACKNOWLEDGED,
    EventKind.INCIDENT_RESOLVED: NotifyOn.RESOLVED,
    # Only the start: the changes held back while flapping, and its end (recorded, and
    # followed by the resolution when the series has recovered), send nothing.
    EventKind.INCIDENT_FLAPPING: NotifyOn.FLAPPING,
}
ALL_EVENTS = frozenset(NotifyOn)


@dataclass(frozen=True, slots=True)
class Service:
    """What apprise makes of a channel URL."""

    schema: str  # canonical apprise schema: "discord" also for https://discord.com/api/webhooks/
    name: str  # "Discord", "E-Mail", "JSON", ...
    rich: bool  # the service renders Markdown or HTML; plain text is sent otherwise
    setup_url: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    name: str
    url: str = field(repr=False)
    min_severity: Severity = Severity.INFO
    events: frozenset[NotifyOn] = ALL_EVENTS
    enabled: bool = True
    renotify_minutes: int | None = None
    # realtime (each event as it happens), or one digest an hour or a day (vigil.core.digest)
    delivery: Delivery = Delivery.REALTIME
    digest_at: str = "09:00"  # local time of a daily digest; an hourly one uses its minute
    timezone: str = "UTC"  # IANA zone of digest_at
    service: Service = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name("name", self.name)
        object.__setattr__(self, "url", _clean_url(self.url))
        object.__setattr__(self, "service", inspect_url(self.url))
        severity = check_choice(Severity, "min_severity", self.min_severity)
        object.__setattr__(self, "min_severity", severity)
        object.__setattr__(self, "events", _events(self.events))
        check_bool("enabled", self.enabled)
        minutes = self.renotify_minutes
        if minutes is not None:
            if isinstance(minutes, bool) or not isinstance(minutes, int):
                raise ValidationError("renotify_minutes", f"must be whole minutes, got {minutes!r}")
            if not 1 <= minutes <= MAX_RENOTIFY_MINUTES:
                raise ValidationError(
                    "renotify_minutes",
                    f"must be between 1 and {MAX_RENOTIFY_MINUTES} (a week), or null for never",
                )
        schedule = DigestSchedule.of(self.delivery, self.digest_at, self.timezone)
        object.__setattr__(self, "delivery", schedule.delivery)
        object.__setattr__(self, "digest_at", schedule.digest_at)
        object.__setattr__(self, "timezone", schedule.timezone)

    @property
    def schedule(self) -> DigestSchedule:
        """When its digests fall due (a realtime channel has none)."""
        return DigestSchedule.of(self.delivery, self.digest_at, self.timezone)

    @property
    def realtime(self) -> bool:
        return self.delivery is Delivery.REALTIME

    @property
    def redacted_url(self) -> str:
        return redacted_url(self.url)

    def to_dict(self, *, reveal_url: bool = False) -> dict[str, Any]:
        """JSON-ready form. The URL is masked unless ``reveal_url`` (for storage only)."""
        return {
            "name": self.name,
            "url": self.url if reveal_url else self.redacted_url,
            "min_severity": self.min_severity.value,
            "events": [on.value for on in NotifyOn if on in self.events],
            "enabled": self.enabled,
            "renotify_minutes": self.renotify_minutes,
            "delivery": self.delivery.value,
            "digest_at": self.digest_at,
            "timezone": self.timezone,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Channel:
        check_keys(data, _FIELDS, "a channel")
        for required in ("name", "url"):
            if required not in data:
                raise ValidationError(required, "is required")
        values = dict(data)
        if "events" in values:
            values["events"] = frozen(values["events"])
        return cls(**values)


_FIELDS = frozenset(
    {
        "name",
        "url",
        "min_severity",
        "events",
        "enabled",
        "renotify_minutes",
        "delivery",
        "digest_at",
        "timezone",
    }
)


def wants(channel: Channel, event: Event) -> bool:
    """Whether ``channel`` is to be told about ``event``: an incident event it subscribes to,
    at or above its minimum severity, and the channel is enabled."""
    return subscribed(
        event,
        enabled=channel.enabled and channel.realtime,  # a digest channel: its digest only
        events=channel.events,
        min_severity=channel.min_severity,
    )


def subscribed(
    event: Event, *, enabled: bool, events: Collection[NotifyOn], min_severity: Severity
) -> bool:
    """``wants`` on a channel's stored settings alone: the outbox decides with it inside the
    transaction that stores the event, where a channel URL that apprise stopped accepting must
    not stop the incident from being recorded (its delivery fails visibly instead)."""
    on = NotifyOn.of(event.kind)
    incident = event.incident
    return (
        enabled
        and on is not None
        and on in events
        and incident is not None
        and incident.severity.rank >= min_severity.rank
    )


def renotify_due(
    channel: Channel, incident: Incident, *, last_sent_at: datetime, now: datetime
) -> bool:
    """Whether an open, unacknowledged critical incident is due to be sent again.

    Only to channels that have ``renotify_minutes`` set and that were told of the opening.
    """
    return (
        channel.enabled
        and channel.realtime
        and channel.renotify_minutes is not None
        and NotifyOn.OPENED in channel.events
        and incident.status is Status.ACTIVE
        and incident.severity is Severity.CRITICAL
        and incident.severity.rank >= channel.min_severity.rank
        and now - last_sent_at >= timedelta(minutes=channel.renotify_minutes)
    )


def inspect_url(url: str) -> Service:
    """Check ``url`` with apprise's own parser; a ``ValidationError("url", ...)`` says why not."""
    url = _clean_url(url)
    remember(url)  # before apprise sees it: apprise logs a token it refuses, unmasked
    return _inspect(url)


@functools.lru_cache(maxsize=INSPECTED_KEPT)
def _inspect(url: str) -> Service:
    """``inspect_url``'s verdict on a clean URL, which depends on nothing else: kept, since
    every channel read from the database is checked again, and apprise's parsing was most of
    the dispatcher's reading its channels (a refusal is not kept: it raises)."""
    match = SCHEME_PATTERN.match(url)
    if match is None:
        raise ValidationError(
            "url", "must be an apprise URL such as discord://webhook_id/webhook_token"
        )
    scheme = match.group(1).lower()
    _check_port(url)
    import apprise  # here, not above: the store and the command line import this module

    plugins: Any = _plugin_manager()
    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=False)
    except Exception as exc:
        # The plugin refused its arguments. Its message can quote a secret back, so every
        # piece of the URL is masked in it.
        plugin_class = plugins[scheme] if scheme in plugins else None
        raise ValidationError("url", _invalid(plugin_class, scheme, _scrub(exc, url))) from None
    if plugin is None:
        if scheme not in plugins:
            if scheme in ("http", "https"):
                raise ValidationError(
                    "url",
                    "is not a web address apprise recognises (such as a Discord or Slack "
                    "webhook); for a generic webhook use json://host/path or jsons://",
                )
            raise ValidationError(
                "url", f"unsupported scheme {scheme}://: apprise has no service for it"
            )
        plugin_class = plugins[scheme]
        if not plugin_class.enabled:
            raise ValidationError(
                "url", f"{scheme}:// is not available here (a package it needs is missing)"
            )
        raise ValidationError("url", _invalid(plugin_class, scheme))
    formats = plugin.notify_format
    native = formats if isinstance(formats, str) else next(iter(formats), "")
    return Service(
        schema=urlsplit(apprise_url(plugin, privacy=True)).scheme,
        name=str(plugin.service_name),
        rich=native in {apprise.NotifyFormat.MARKDOWN, apprise.NotifyFormat.HTML},
        setup_url=getattr(plugin, "setup_url", None),
    )


def _check_port(url: str) -> None:
    """A port that no server can listen on is refused (apprise would take it and fail at
    every delivery). Only a number counts as a port: ``tgram://123:ABC/`` is a bot token."""
    authority = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0]
    port = re.search(r":(\d+)$", authority.rpartition("@")[2])
    if port is not None and not 1 <= int(port.group(1)) <= 65535:
        raise ValidationError("url", f"the port must be from 1 to 65535, not {port.group(1)}")


def redacted_url(url: str) -> str:
    """``url`` safe to show back: scheme and host; apprise masks the secrets it knows of in
    them (a Discord webhook id shows as ``4...8``, a password as ``****``) and every path and
    query is replaced by ``***``, since webhook tokens, API keys and headers live there."""
    match = SCHEME_PATTERN.match(url) if isinstance(url, str) else None
    if match is None:
        return MASK
    import apprise

    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:
        plugin = None
    if plugin is None:
        return f"{match.group(1).lower()}://{MASK}"
    private = urlsplit(apprise_url(plugin, privacy=True))
    shown = f"{private.scheme}://{private.netloc}"
    if private.path.strip("/"):
        shown += f"/{MASK}"
    if urlsplit(url).query:
        shown += f"?{MASK}"
    return shown


def apprise_url(plugin: Any, *, privacy: bool) -> str:
    """apprise's canonical URL of a service; with ``privacy``, its secrets masked."""
    return str(plugin.url(privacy=privacy))


def _plugin_manager() -> Any:
    import apprise

    registry: Any = apprise.NotificationManager  # the registry of schemas, a singleton
    return registry()


def _invalid(plugin_class: Any, scheme: str, detail: str = "") -> str:
    name = f"{scheme}://" if plugin_class is None else plugin_class.service_name
    message = f"is not a valid {name} URL"
    if detail:
        message += f" ({detail})"
    setup = getattr(plugin_class, "setup_url", None)
    return f"{message}; see {setup} for its format" if setup else message


def _scrub(exc: Exception, url: str) -> str:
    """apprise's reason, with every value taken from ``url`` (3+ characters) masked."""
    text = " ".join(str(exc).split())
    location, _, query = url.partition("://")[2].partition("?")
    pieces = set(re.split(r"[/:@#]+", location))
    for pair in re.split(r"[&;]", query):
        pieces.add(pair.partition("=")[2])  # option names are not secret, values may be
    for piece in sorted({unquote(p) for p in pieces}, key=len, reverse=True):
        if len(piece) >= 3:
            text = text.replace(piece, MASK)
    return text[:300]


def _clean_url(url: object) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("url", "is required")
    url = url.strip()
    if len(url) > MAX_URL:
        raise ValidationError("url", f"must be at most {MAX_URL} characters")
    if any(char.isspace() for char in url):
        # apprise reads whitespace as a separator between several URLs.
        raise ValidationError("url", "must be one URL, without spaces")
    if MASK in url:
        raise ValidationError(
            "url", f"contains {MASK}: that is the masked form; enter the full URL"
        )
    return url


def _events(values: object) -> frozenset[NotifyOn]:
    allowed = ", ".join(on.value for on in NotifyOn)
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError("events", f"must be a list among {allowed}")
    checked: set[NotifyOn] = set()
    for value in values:
        try:
            checked.add(NotifyOn(value))
        except ValueError:
            raise ValidationError(
                "events", f"unknown event {value!r}; choose among {allowed}"
            ) from None
    if not checked:
        raise ValidationError("events", f"choose at least one of {allowed}")
    return frozenset(checked)
