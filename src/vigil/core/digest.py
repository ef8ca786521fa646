"""Digests: a channel told once per period instead of at each incident event.

A channel's ``delivery`` is ``realtime`` (each event as it happens, the default), ``hourly``
or ``daily``. A daily digest is sent at ``digest_at`` local time in ``timezone`` (IANA) each
day; an hourly one each hour at the minute of ``digest_at``. Local times follow daylight
saving: a daily digest at 02:30 in Europe/Berlin goes out at 03:00 on the day the clocks skip
02:30, and once (the first time) on the day 02:30 happens twice.

Periods are told apart by their end (``period_end``): the digest for a period is due at its
end, and its key is (channel, end), so it is written once however many rounds, restarts or
leaders look. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity
from vigil.core.localtime import first_moment, local_time, time_text, time_zone
from vigil.core.validation import check_aware, check_choice

WORST = 3  # the worst moments a digest shows
MAX_LISTED = 20  # incidents listed per section; the counts are always complete
UTC_ZONE = ZoneInfo("UTC")


class Delivery(StrEnum):
    REALTIME = "realtime"
    HOURLY = "hourly"
    DAILY = "daily"


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestSchedule:
    delivery: Delivery
    at: time = time(9, 0)  # hourly: only its minute counts
    zone: ZoneInfo = UTC_ZONE

    @classmethod
    def of(cls, delivery: object, digest_at: object, timezone: object) -> DigestSchedule:
        """Checked channel fields: ``delivery``, ``digest_at`` (``HH:MM``), ``timezone``."""
        mode = check_choice(Delivery, "delivery", delivery)
        at = time(9, 0) if digest_at is None else local_time("digest_at", digest_at)
        if at.second:
            raise ValidationError("digest_at", "must be whole minutes, like 09:00")
        zone = UTC_ZONE if timezone is None else time_zone(timezone)
        return cls(delivery=mode, at=at, zone=zone)

    @property
    def digest_at(self) -> str:
        text = time_text(self.at)
        assert text is not None
        return text

    @property
    def timezone(self) -> str:
        return self.zone.key


def period_end(schedule: DigestSchedule, now: datetime) -> datetime:
    """The end of the last period that is over at ``now``: its digest is due from then."""
    check_aware("now", now)
    if schedule.delivery is Delivery.REALTIME:
        raise ValidationError("delivery", "a realtime channel has no digest periods")
    now = now.astimezone(UTC)
    if schedule.delivery is Delivery.HOURLY:
        # The latest whole minute at or before now whose local minute is the digest's: at
        # most an hour back, whatever the zone's offset (whole, half or quarter hours).
        moment = now.replace(second=0, microsecond=0)
        while moment.astimezone(schedule.zone).minute != schedule.at.minute:
            moment -= timedelta(minutes=1)
        return moment
    local_day = now.astimezone(schedule.zone).date()
    for back in range(3):
        day = local_day - timedelta(days=back)
        moment = first_moment(datetime.combine(day, schedule.at), schedule.zone)
        if moment <= now:
            return moment
    raise AssertionError("a daily time happens at least once in three days")  # pragma: no cover


def period_start(schedule: DigestSchedule, end: datetime) -> datetime:
    """The start of the period ending at ``end`` (the end of the one before)."""
    return period_end(schedule, end - timedelta(seconds=1))


def next_period_end(schedule: DigestSchedule, now: datetime) -> datetime:
    """When the period running at ``now`` ends."""
    step = timedelta(hours=1) if schedule.delivery is Delivery.HOURLY else timedelta(days=1)
    probe = period_end(schedule, now) + step
    # A day with a skipped or repeated hour: the next end lies within an hour of the probe.
    for minutes in range(-60, 61):
        moment = probe + timedelta(minutes=minutes)
        if moment > now and period_end(schedule, moment) == moment:
            return moment
    raise AssertionError("a period ends within a day and an hour")  # pragma: no cover


# -- what a digest says -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One incident as a digest lists it."""

    incident: str  # id
    rule: str
    metric: str
    severity: Severity
    message: str
    at: datetime  # of the event that put it in the section (opened, escalated, resolved)
    peak_value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "rule": self.rule,
            "metric": self.metric,
            "severity": self.severity.value,
            "message": self.message,
            "at": self.at.isoformat(),
            "peak_value": self.peak_value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        return cls(
            incident=str(data["incident"]),
            rule=str(data["rule"]),
            metric=str(data["metric"]),
            severity=Severity(data["severity"]),
            message=str(data["message"]),
            at=datetime.fromisoformat(data["at"]),
            peak_value=float(data["peak_value"]),
        )

    @classmethod
    def of(cls, incident: Incident, at: datetime) -> Entry:
        return cls(
            incident=str(incident.id),
            rule=incident.rule,
            metric=incident.metric,
            severity=incident.severity,
            message=incident.message,
            at=at,
            peak_value=incident.peak_value,
        )


SECTIONS = ("opened", "escalated", "resolved", "open")


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """What happened in ``[start, end)``: the incidents opened, escalated and resolved in it,
    those still open at its end, how many of each, and the worst moments (most severe first,
    then the highest peak)."""

    channel: str
    start: datetime
    end: datetime
    counts: Mapping[str, int]
    sections: Mapping[str, tuple[Entry, ...]]
    worst: tuple[Entry, ...]

    @property
    def quiet(self) -> bool:
        return not any(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "counts": dict(self.counts),
            "sections": {k: [e.to_dict() for e in v] for k, v in self.sections.items()},
            "worst": [e.to_dict() for e in self.worst],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Digest:
        return cls(
            channel=str(data["channel"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            counts={str(k): int(v) for k, v in dict(data["counts"]).items()},
            sections={
                str(k): tuple(Entry.from_dict(e) for e in v)
                for k, v in dict(data["sections"]).items()
            },
            worst=tuple(Entry.from_dict(e) for e in data["worst"]),
        )


_SECTION_OF = {
    EventKind.INCIDENT_OPENED: "opened",
    EventKind.INCIDENT_ESCALATED: "escalated",
    EventKind.INCIDENT_RESOLVED: "resolved",
}


def summarize(
    *,
    channel: str,
    start: datetime,
    end: datetime,
    events: Iterable[Event],
    still_open: Iterable[Incident],
    min_severity: Severity = Severity.INFO,
) -> Digest:
    """The digest of ``[start, end)`` from the incident events stored in it and the incidents
    open at its end, leaving out incidents below ``min_severity``."""
    sections: dict[str, list[Entry]] = {name: [] for name in SECTIONS}
    for event in sorted(events, key=lambda e: (e.at, e.id or 0)):
        section = _SECTION_OF.get(event.kind)
        incident = event.incident
        if section is None or incident is None or not start <= event.at < end:
            continue
        if incident.severity.rank >= min_severity.rank:
            sections[section].append(Entry.of(incident, event.at))
    for incident in sorted(still_open, key=lambda i: i.triggered_at):
        if incident.severity.rank >= min_severity.rank and incident.triggered_at < end:
            sections["open"].append(Entry.of(incident, incident.triggered_at))
    seen: dict[str, Entry] = {}
    for name in ("opened", "escalated", "open"):
        for entry in sections[name]:
            best = seen.get(entry.incident)
            if best is None or _badness(entry) > _badness(best):
                seen[entry.incident] = entry
    worst = sorted(seen.values(), key=_badness, reverse=True)[:WORST]
    return Digest(
        channel=channel,
        start=start,
        end=end,
        counts={name: len(entries) for name, entries in sections.items()},
        sections={name: tuple(entries[:MAX_LISTED]) for name, entries in sections.items()},
        worst=tuple(worst),
    )


def _badness(entry: Entry) -> tuple[int, float]:
    return (entry.severity.rank, entry.peak_value)
