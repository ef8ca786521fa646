"""The message of a digest: one per channel and period, listing what opened, escalated,
resolved and is still open, with counts and the worst moments."""

from __future__ import annotations

import uuid
from datetime import datetime

from vigil.core.digest import Digest, Entry
from vigil.core.incidents import Severity
from vigil.notify.channels import Channel
from vigil.notify.format import Message, Tone, _base, _one_line

_KEY_NAMESPACE = uuid.UUID("9d7f3c1e-2b4a-4c8e-9f61-0d5a7b3e2c48")
_SECTIONS = (
    ("opened", "Opened"),
    ("escalated", "Escalated"),
    ("resolved", "Resolved"),
    ("open", "Still open"),
)


def digest_key(channel: str, end: datetime) -> str:
    """Stable per (channel, period): the outbox row's key and the message's, so a digest is
    written once and a receiver that deduplicates shows it once."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"digest/{channel}/{end.isoformat()}"))


def format_digest(digest: Digest, channel: Channel, *, base_url: str | None = None) -> Message:
    zone = channel.schedule.zone
    start, end = digest.start.astimezone(zone), digest.end.astimezone(zone)
    span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {channel.timezone}"
    counts = digest.counts
    if digest.quiet:
        summary = "No incidents"
    else:
        summary = (
            f"{counts['opened']} opened, {counts['escalated']} escalated, "
            f"{counts['resolved']} resolved, {counts['open']} still open"
        )
    lead = f"{summary}, from {span}." if not digest.quiet else f"No incidents from {span}."
    fields: list[tuple[str, str]] = []
    for n, entry in enumerate(digest.worst, start=1):
        fields.append((f"Worst {n}", _entry(entry, channel)))
    for name, label in _SECTIONS:
        entries = digest.sections.get(name, ())
        if entries:
            shown = "; ".join(_entry(entry, channel) for entry in entries)
            more = counts[name] - len(entries)
            fields.append(
                (f"{label} ({counts[name]})", shown + (f"; and {more} more" if more else ""))
            )
    worst = max((entry.severity for entry in digest.worst), key=lambda s: s.rank, default=None)
    tone = {
        Severity.CRITICAL: Tone.CRITICAL,
        Severity.WARNING: Tone.WARNING,
        Severity.INFO: Tone.INFO,
        None: Tone.RESOLVED,
    }[worst]
    base = _base(base_url)
    every = "Hourly" if channel.delivery.value == "hourly" else "Daily"
    return Message(
        title=_one_line(f"{every} digest: {summary}"),
        lead=_one_line(lead),
        fields=tuple((label, _one_line(value)) for label, value in fields),
        tone=tone,
        link=f"{base}/alerts" if base is not None else None,
        idempotency_key=digest_key(channel.name, digest.end),
        base_url=base,
    )


def _entry(entry: Entry, channel: Channel) -> str:
    at = entry.at.astimezone(channel.schedule.zone)
    return (
        f"{entry.severity.value.upper()} {entry.rule} at {at:%Y-%m-%d %H:%M} "
        f"(peak {entry.peak_value:.2f}): {entry.message}"
    )
