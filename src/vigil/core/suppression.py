"""Snoozes and maintenance windows: when a rule opens no incident. Pure; time is passed in.

A weekly window is defined in the local wall-clock time of an IANA time zone and stays there
across daylight-saving changes: "Sunday 01:00-04:00 Europe/Berlin" is 01:00 CET in winter and
01:00 CEST in summer. On the two DST days a local time can be missing or happen twice; each
boundary (start or end) then falls on the first moment the local clock reaches that time:

- a time the clock skips (02:30 on the spring-forward night) falls on the jump itself, the
  first moment after it (03:00 CEST); a window lying wholly inside the skipped hour does not
  occur that day, because the clock never shows its times;
- a time the clock shows twice (02:30 on the fall-back night) falls on its first occurrence,
  the summer-time one.

This is what cron does with jobs in those hours. Every interval is start-inclusive and
end-exclusive.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.rules import METRIC_PATTERN

NAME_PATTERN = re.compile(r"[a-z0-9_-]{1,50}")
MAX_REASON = 500
MAX_ACTOR = 200
_DAY = timedelta(days=1)


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
        _check_metric("metric", self.metric)
        _check_aware("created_at", self.created_at)
        _check_aware("until", self.until)
        if self.until <= self.created_at:
            raise ValidationError(
                "until",
                f"must be after created_at ({self.until.isoformat()} <= "
                f"{self.created_at.isoformat()})",
            )
        object.__setattr__(self, "reason", _text("reason", self.reason, MAX_REASON))
        object.__setattr__(self, "by", _text("by", self.by, MAX_ACTOR))

    @classmethod
    def for_duration(
        cls, metric: str, *, duration: timedelta, reason: str, by: str, now: datetime
    ) -> Snooze:
        """What an admin asks for: snooze this rule for ``duration`` from ``now``."""
        if not isinstance(duration, timedelta) or duration <= timedelta(0):
            raise ValidationError("duration", f"must be a positive duration, got {duration!r}")
        _check_aware("now", now)
        return cls(metric=metric, until=now + duration, reason=reason, by=by, created_at=now)

    def is_active(self, now: datetime) -> bool:
        _check_aware("now", now)
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
        _check_aware("at", at)
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
        _check_keys(data, _SNOOZE_FIELDS, "snooze")
        return cls(
            metric=data.get("metric"),  # type: ignore[arg-type]  # validated in __post_init__
            until=_parse_datetime("until", data.get("until")),
            reason=data.get("reason"),  # type: ignore[arg-type]
            by=data.get("by"),  # type: ignore[arg-type]
            created_at=_parse_datetime("created_at", data.get("created_at")),
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
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise ValidationError(
                "name", f"{self.name!r} must be 1-50 characters of a-z, 0-9, '_' and '-'"
            )
        object.__setattr__(self, "kind", _kind(self.kind))
        object.__setattr__(self, "metrics", _metrics(self.metrics))
        if not isinstance(self.reason, str) or len(self.reason) > MAX_REASON:
            raise ValidationError("reason", f"must be a string of at most {MAX_REASON} characters")
        object.__setattr__(self, "reason", self.reason.strip())
        if self.by is not None:
            object.__setattr__(self, "by", _text("by", self.by, MAX_ACTOR))
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
            _check_aware(name, getattr(self, name))
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
        object.__setattr__(self, "start_time", _local_time("start_time", self.start_time))
        object.__setattr__(self, "end_time", _local_time("end_time", self.end_time))
        object.__setattr__(self, "_zone", _zone(self.timezone))

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
            metrics=_frozen(metrics),
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
            weekdays=_frozen(weekdays),
            start_time=start_time,  # type: ignore[arg-type]  # "HH:MM" parsed in __post_init__
            end_time=end_time,  # type: ignore[arg-type]
            timezone=timezone,
            metrics=_frozen(metrics),
            reason=reason,
            by=by,
        )

    def applies_to(self, metric: str) -> bool:
        return self.metrics is None or metric in self.metrics

    def is_active(self, now: datetime) -> bool:
        _check_aware("now", now)
        if self.kind is WindowKind.ONCE:
            assert self.start is not None and self.end is not None
            return self.start <= now < self.end
        return any(start <= now < end for start, end in self._occurrences(now, days_after=1))

    def next_change(self, now: datetime) -> datetime | None:
        """The next moment after ``now`` at which ``is_active`` changes, in UTC; None if never.

        Back-to-back occurrences (a whole-day window on consecutive days) are one period, so
        the answer is always a real change.
        """
        _check_aware("now", now)
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
        for start, end in _merged(self._occurrences(now, days_after=15)):
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
        """Occurrences (UTC start, UTC end) starting from two local days before ``now``.

        An occurrence lasts at most a local day (25 hours on a fall-back day), so none that
        starts earlier can still be running.
        """
        zone, days = self._zone, self.weekdays
        assert zone is not None and days is not None
        assert self.start_time is not None and self.end_time is not None
        overnight = self.end_time <= self.start_time
        today = now.astimezone(zone).date()
        indexes = {day.number for day in days}
        for offset in range(-2, days_after + 1):
            day = today + timedelta(days=offset)
            if day.weekday() not in indexes:
                continue
            start = _first_moment(_wall(day, self.start_time), zone)
            end = _first_moment(_wall(day + _DAY if overnight else day, self.end_time), zone)
            if start < end:  # empty only when both ends lie in a skipped hour
                yield start, end

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
            "start_time": _time_text(self.start_time),
            "end_time": _time_text(self.end_time),
            "timezone": self.timezone,
            "reason": self.reason,
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MaintenanceWindow:
        _check_keys(data, _WINDOW_FIELDS, "maintenance window")
        for name in ("name", "kind"):
            if name not in data:
                raise ValidationError(name, "is required")
        values = dict(data)
        for name in ("start", "end"):
            if values.get(name) is not None:
                values[name] = _parse_datetime(name, values[name])
        for name in ("metrics", "weekdays"):
            values[name] = _frozen(values.get(name))
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


def wall_clock(field: str, text: str | None, timezone: str) -> datetime:
    """A date and time as a person types it (``2026-12-01T22:00``): without an offset it is
    local time in ``timezone``; with one, the offset wins."""
    if not text:
        raise ValidationError(field, "is required for a one-off window")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, f"{text!r} is not an ISO date and time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_zone(timezone))


def suppressed_metrics(
    now: datetime,
    *,
    metrics: Iterable[str],
    snoozes: Iterable[Snooze] = (),
    windows: Iterable[MaintenanceWindow] = (),
) -> frozenset[str]:
    """The metrics among ``metrics`` that are snoozed or in maintenance at ``now``.

    This is what ``Evaluator.evaluate(..., suppressed=...)`` takes.
    """
    _check_aware("now", now)
    wanted = frozenset(metrics)
    quiet = {s.metric for s in snoozes if s.metric in wanted and s.is_active(now)}
    for window in windows:
        if window.is_active(now):
            if window.metrics is None:
                return wanted
            quiet.update(window.metrics & wanted)
    return frozenset(quiet)


def next_suppression_change(
    now: datetime,
    *,
    snoozes: Iterable[Snooze] = (),
    windows: Iterable[MaintenanceWindow] = (),
) -> datetime | None:
    """The next moment (UTC) a snooze expires or a window starts or ends; None if none will."""
    _check_aware("now", now)
    moments = [s.until.astimezone(UTC) for s in snoozes if s.is_active(now)]
    moments.extend(m for w in windows if (m := w.next_change(now)) is not None)
    return min(moments, default=None)


# -- local time ------------------------------------------------------------------------------


def _wall(day: date, at: time) -> datetime:
    return datetime.combine(day, at)


def _first_moment(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first moment (UTC) at which the local clock in ``zone`` reaches ``wall``."""
    # fold=0 is the earlier of two moments showing an ambiguous wall time (PEP 495).
    moment = wall.replace(tzinfo=zone).astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) == wall:
        return moment
    # The clock skips ``wall``. fold=1 maps it with the offset after the jump, a moment
    # before the jump; fold=0 with the offset before it, a moment after. The jump lies in
    # between, on a whole second like every tz database transition.
    before = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    after = int(moment.timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _merged(intervals: Iterable[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, datetime]]:
    current: tuple[datetime, datetime] | None = None
    for start, end in intervals:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


# -- validation ------------------------------------------------------------------------------


def _check_metric(name: str, metric: object) -> None:
    if not isinstance(metric, str) or not METRIC_PATTERN.fullmatch(metric):
        raise ValidationError(name, f"{metric!r} must be 1-100 characters of a-z, 0-9, '_' and '.'")


def _check_aware(name: str, value: object) -> None:
    if not isinstance(value, datetime):
        raise ValidationError(name, f"must be a date and time, got {value!r}")
    if value.utcoffset() is None:
        raise ValidationError(name, "must include a time zone offset")


def _text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "is required")
    if len(value) > limit:
        raise ValidationError(name, f"must be at most {limit} characters")
    return value.strip()


def _kind(value: object) -> WindowKind:
    if isinstance(value, str):
        try:
            return WindowKind(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in WindowKind)
    raise ValidationError("kind", f"must be one of {allowed}, got {value!r}")


def _frozen(values: Any) -> Any:
    """A frozenset of an iterable; anything else (None, a lone string) is left for validation."""
    if values is None or isinstance(values, str) or not isinstance(values, Iterable):
        return values
    return frozenset(values)


def _metrics(metrics: object) -> frozenset[str] | None:
    if metrics is None:
        return None
    if isinstance(metrics, str) or not isinstance(metrics, Collection):
        raise ValidationError("metrics", "must be a list of metrics, or null for every rule")
    if not metrics:
        raise ValidationError("metrics", "list at least one metric, or null for every rule")
    for metric in metrics:
        _check_metric("metrics", metric)
    return frozenset(metrics)


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


def _local_time(name: str, value: object) -> time:
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value)
        except ValueError:
            raise ValidationError(name, f"must be a time like 23:00, got {value!r}") from None
    if not isinstance(value, time):
        raise ValidationError(name, f"must be a local time like 23:00, got {value!r}")
    if value.tzinfo is not None:
        raise ValidationError(name, "must be a local time; the zone goes in 'timezone'")
    if value.microsecond:
        raise ValidationError(name, "must be whole seconds")
    return value


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValidationError("timezone", "an IANA time zone such as Europe/Berlin is required")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(
            "timezone", f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from None


def _time_text(value: time | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")


def _parse_datetime(name: str, value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(name, f"must be an ISO-8601 date and time, got {value!r}")


def _check_keys(data: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(unknown[0], f"is not a {what} field")
