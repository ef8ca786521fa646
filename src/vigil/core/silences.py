"""Silences: a rule is *silenced* (opens no incident, sends nothing) while it is snoozed or in
a maintenance window. Pure; time is passed in.

A snooze silences one rule until a time, with a reason and who set it. A maintenance window
silences some rules (or all) once, between two moments, or every week at the same local time in
an IANA time zone (how that local time maps to moments across DST is ``vigil.core.localtime``).
A silenced rule still counts its readings: when the silence ends, a rule still breaching opens
its incident on the next one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.localtime import daily_occurrences, local_time, merged, time_text, time_zone
from vigil.core.validation import (
    check_aware,
    check_choice,
    check_keys,
    check_name,
    check_rule_name,
    check_text,
    frozen,
    parse_datetime,
)

MAX_REASON = 500
MAX_ACTOR = 200


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday is 0, as ``date.weekday()``."""
        return _WEEKDAY_INDEX[self]


_WEEKDAY_INDEX = {day: i for i, day in enumerate(Weekday)}


class WindowKind(StrEnum):
    ONCE = "once"
    WEEKLY = "weekly"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snooze:
    """A rule silenced by a person until ``until``, with a reason."""

    metric: str
    until: datetime
    reason: str
    by: str
    created_at: datetime

    def __post_init__(self) -> None:
        check_rule_name("metric", self.metric)  # the snoozed rule's name
        check_aware("created_at", self.created_at)
        check_aware("until", self.until)
        if self.until <= self.created_at:
            raise ValidationError(
                "until",
                f"must be after created_at ({self.until.isoformat()} <= "
                f"{self.created_at.isoformat()})",
            )
        object.__setattr__(self, "reason", _trimmed("reason", self.reason, MAX_REASON))
        object.__setattr__(self, "by", _trimmed("by", self.by, MAX_ACTOR))

    @classmethod
    def for_duration(
        cls, metric: str, *, duration: timedelta, reason: str, by: str, now: datetime
    ) -> Snooze:
        """What an admin asks for: snooze this rule for ``duration`` from ``now``."""
        if not isinstance(duration, timedelta) or duration <= timedelta(0):
            raise ValidationError("duration", f"must be a positive duration, got {duration!r}")
        check_aware("now", now)
        return cls(metric=metric, until=now + duration, reason=reason, by=by, created_at=now)

    def is_active(self, now: datetime) -> bool:
        check_aware("now", now)
        return now < self.until

    def started_event(self) -> Event:
        return Event(
            kind=EventKind.SNOOZE_STARTED,
            at=self.created_at,
            metric=self.metric,
            by=self.by,
            data={"until": self.until.isoformat(), "reason": self.reason},
        )

    def ended_event(self, *, at: datetime, by: str | None = None) -> Event:
        """The snooze ran out (``by`` None) or a person lifted it early."""
        check_aware("at", at)
        return Event(
            kind=EventKind.SNOOZE_ENDED,
            at=at,
            metric=self.metric,
            by=by,
            data={"until": self.until.isoformat(), "expired": by is None},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "until": self.until.isoformat(),
            "reason": self.reason,
            "by": self.by,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snooze:
        check_keys(data, _SNOOZE_FIELDS, "a snooze")
        return cls(
            metric=data.get("metric"),  # type: ignore[arg-type]  # validated in __post_init__
            until=parse_datetime("until", data.get("until")),
            reason=data.get("reason"),  # type: ignore[arg-type]
            by=data.get("by"),  # type: ignore[arg-type]
            created_at=parse_datetime("created_at", data.get("created_at")),
        )


_SNOOZE_FIELDS = frozenset({"metric", "until", "reason", "by", "created_at"})


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceWindow:
    """A planned period in which the listed rules (or all, ``metrics=None``) open no incident.

    ``once``: from ``start`` to ``end``, aware datetimes. ``weekly``: on each of ``weekdays``
    from ``start_time`` to ``end_time`` local time in ``timezone``; an ``end_time`` at or before
    ``start_time`` ends on the next day (23:00-02:00 crosses midnight, 00:00-00:00 is a whole
    day). The weekday is the day the window starts.
    """

    name: str
    kind: WindowKind
    metrics: frozenset[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    weekdays: frozenset[Weekday] | None = None
    start_time: time | None = None
    end_time: time | None = None
    timezone: str | None = None
    reason: str = ""
    by: str | None = None
    _zone: ZoneInfo | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name("name", self.name)
        object.__setattr__(self, "kind", check_choice(WindowKind, "kind", self.kind))
        object.__setattr__(self, "metrics", _metrics(self.metrics))
        if not isinstance(self.reason, str) or len(self.reason) > MAX_REASON:
            raise ValidationError("reason", f"must be a string of at most {MAX_REASON} characters")
        object.__setattr__(self, "reason", self.reason.strip())
        if self.by is not None:
            object.__setattr__(self, "by", _trimmed("by", self.by, MAX_ACTOR))
        if self.kind is WindowKind.ONCE:
            self._check_once()
        else:
            self._check_weekly()

    def _check_once(self) -> None:
        for name in ("weekdays", "start_time", "end_time", "timezone"):
            if getattr(self, name) is not None:
                raise ValidationError(name, "is only for a weekly window")
        for name in ("start", "end"):
            if getattr(self, name) is None:
                raise ValidationError(name, "is required for a one-off window")
            check_aware(name, getattr(self, name))
        assert self.start is not None and self.end is not None
        if self.end <= self.start:
            raise ValidationError(
                "end",
                f"must be after start ({self.end.isoformat()} <= {self.start.isoformat()})",
            )

    def _check_weekly(self) -> None:
        for name in ("start", "end"):
            if getattr(self, name) is not None:
                raise ValidationError(name, "is only for a one-off window")
        object.__setattr__(self, "weekdays", _weekdays(self.weekdays))
        object.__setattr__(self, "start_time", local_time("start_time", self.start_time))
        object.__setattr__(self, "end_time", local_time("end_time", self.end_time))
        object.__setattr__(self, "_zone", time_zone(self.timezone))

    @classmethod
    def once(
        cls,
        name: str,
        *,
        start: datetime,
        end: datetime,
        metrics: Iterable[str] | None = None,
        reason: str = "",
        by: str | None = None,
    ) -> MaintenanceWindow:
        return cls(
            name=name,
            kind=WindowKind.ONCE,
            start=start,
            end=end,
            metrics=frozen(metrics),
            reason=reason,
            by=by,
        )

    @classmethod
    def weekly(
        cls,
        name: str,
        *,
        weekdays: Iterable[Weekday | str],
        start_time: time | str,
        end_time: time | str,
        timezone: str,
        metrics: Iterable[str] | None = None,
        reason: str = "",
        by: str | None = None,
    ) -> MaintenanceWindow:
        return cls(
            name=name,
            kind=WindowKind.WEEKLY,
            weekdays=frozen(weekdays),
            start_time=start_time,  # type: ignore[arg-type]  # "HH:MM" parsed in __post_init__
            end_time=end_time,  # type: ignore[arg-type]
            timezone=timezone,
            metrics=frozen(metrics),
            reason=reason,
            by=by,
        )

    def applies_to(self, metric: str) -> bool:
        return self.metrics is None or metric in self.metrics

    def is_active(self, now: datetime) -> bool:
        check_aware("now", now)
        if self.kind is WindowKind.ONCE:
            assert self.start is not None and self.end is not None
            return self.start <= now < self.end
        return any(start <= now < end for start, end in self._occurrences(now, days_after=1))

    def next_change(self, now: datetime) -> datetime | None:
        """The next moment after ``now`` at which ``is_active`` changes, in UTC; None if never.

        Back-to-back occurrences (a whole-day window on consecutive days) are one period, so
        the answer is always a real change.
        """
        check_aware("now", now)
        if self.kind is WindowKind.ONCE:
            assert self.start is not None and self.end is not None
            if now < self.start:
                return self.start.astimezone(UTC)
            if now < self.end:
                return self.end.astimezone(UTC)
            return None
        if self._always():
            return None
        # Two weeks ahead hold at least two occurrences, enough to find the end of any run of
        # back-to-back ones: a run is broken by a missing weekday or a gap between days.
        for start, end in merged(self._occurrences(now, days_after=15)):
            if now < start:
                return start
            if now < end:
                return end
        raise AssertionError("a weekly window always changes within two weeks")  # pragma: no cover

    def _always(self) -> bool:
        return len(self.weekdays or ()) == len(Weekday) and self.start_time == self.end_time

    def _occurrences(
        self, now: datetime, *, days_after: int
    ) -> Iterator[tuple[datetime, datetime]]:
        """Occurrences (UTC start, UTC end) from two local days before ``now``."""
        assert self._zone is not None and self.weekdays is not None
        assert self.start_time is not None and self.end_time is not None
        return daily_occurrences(
            now,
            zone=self._zone,
            weekdays={day.number for day in self.weekdays},
            start=self.start_time,
            end=self.end_time,
            days_after=days_after,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "metrics": sorted(self.metrics) if self.metrics is not None else None,
            "start": self.start.isoformat() if self.start is not None else None,
            "end": self.end.isoformat() if self.end is not None else None,
            "weekdays": (
                [day.value for day in sorted(self.weekdays, key=lambda d: d.number)]
                if self.weekdays is not None
                else None
            ),
            "start_time": time_text(self.start_time),
            "end_time": time_text(self.end_time),
            "timezone": self.timezone,
            "reason": self.reason,
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MaintenanceWindow:
        check_keys(data, _WINDOW_FIELDS, "a maintenance window")
        for name in ("name", "kind"):
            if name not in data:
                raise ValidationError(name, "is required")
        values = dict(data)
        for name in ("start", "end"):
            if values.get(name) is not None:
                values[name] = parse_datetime(name, values[name])
        for name in ("metrics", "weekdays"):
            values[name] = frozen(values.get(name))
        return cls(**values)


_WINDOW_FIELDS = frozenset(
    {
        "name",
        "kind",
        "metrics",
        "start",
        "end",
        "weekdays",
        "start_time",
        "end_time",
        "timezone",
        "reason",
        "by",
    }
)


def silenced_metrics(
    now: datetime,
    *,
    metrics: Iterable[str],
    snoozes: Iterable[Snooze] = (),
    windows: Iterable[MaintenanceWindow] = (),
) -> frozenset[str]:
    """The metrics among ``metrics`` that are silenced (snoozed or in maintenance) at ``now``.

    This is what ``Evaluator.evaluate(..., silenced=...)`` takes.
    """
    check_aware("now", now)
    wanted = frozenset(metrics)
    silenced = {s.metric for s in snoozes if s.metric in wanted and s.is_active(now)}
    for window in windows:
        if window.is_active(now):
            if window.metrics is None:
                return wanted
            silenced.update(window.metrics & wanted)
    return frozenset(silenced)


def next_silence_change(
    now: datetime,
    *,
    snoozes: Iterable[Snooze] = (),
    windows: Iterable[MaintenanceWindow] = (),
) -> datetime | None:
    """The next moment (UTC) a snooze expires or a window starts or ends; None if none will."""
    check_aware("now", now)
    moments = [s.until.astimezone(UTC) for s in snoozes if s.is_active(now)]
    moments.extend(m for w in windows if (m := w.next_change(now)) is not None)
    return min(moments, default=None)


# -- checks of these types' own fields ----------------------------------------------------------


def _trimmed(field: str, value: object, limit: int) -> str:
    return check_text(field, value, max_length=limit).strip()


def _metrics(metrics: object) -> frozenset[str] | None:
    if metrics is None:
        return None
    if isinstance(metrics, str) or not isinstance(metrics, Collection):
        raise ValidationError("metrics", "must be a list of metrics, or null for every rule")
    if not metrics:
        raise ValidationError("metrics", "list at least one metric, or null for every rule")
    return frozenset(check_rule_name("metrics", metric) for metric in metrics)


def _weekdays(days: object) -> frozenset[Weekday]:
    allowed = ", ".join(day.value for day in Weekday)
    if isinstance(days, str) or not isinstance(days, Collection) or not days:
        raise ValidationError("weekdays", f"list at least one of {allowed}")
    checked: set[Weekday] = set()
    for day in days:
        try:
            checked.add(Weekday(day))
        except ValueError:
            raise ValidationError("weekdays", f"must be among {allowed}, got {day!r}") from None
    return frozenset(checked)
