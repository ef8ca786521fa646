"""Wall-clock time in an IANA time zone, and the two days a year it misbehaves. Pure.

A weekly maintenance window is written in local time and stays there across daylight-saving
changes: "Sunday 01:00-04:00 Europe/Berlin" is 01:00 CET in winter and 01:00 CEST in summer.
On the two DST days a local time can be missing or happen twice; a boundary (start or end)
then falls on the first moment the local clock reaches that time:

- a time the clock skips (02:30 on the spring-forward night) falls on the jump itself, the
  first moment after it (03:00 CEST); an occurrence lying wholly inside the skipped hour does
  not happen that day, because the clock never shows its times;
- a time the clock shows twice (02:30 on the fall-back night) falls on its first occurrence,
  the summer-time one.

This is what cron does with jobs in those hours. Every interval is start-inclusive and
end-exclusive, and every moment returned is in UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigil.core.errors import ValidationError

DAY = timedelta(days=1)


def first_moment(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first moment (UTC) at which the local clock in ``zone`` reaches ``wall`` (naive)."""
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


def daily_occurrences(
    now: datetime,
    *,
    zone: ZoneInfo,
    weekdays: Collection[int],
    start: time,
    end: time,
    days_after: int,
) -> Iterator[tuple[datetime, datetime]]:
    """The periods (UTC start, UTC end) from ``start`` to ``end`` local time on each day of
    ``weekdays`` (Monday is 0, as ``date.weekday()``), in order, from two local days before
    ``now`` to ``days_after`` days after it. An ``end`` at or before ``start`` ends on the
    next day.

    A period lasts at most a local day (25 hours on a fall-back day), so none that starts
    before the first day looked at can still be running at ``now``.
    """
    overnight = end <= start
    today = now.astimezone(zone).date()
    for offset in range(-2, days_after + 1):
        day = today + timedelta(days=offset)
        if day.weekday() not in weekdays:
            continue
        began = first_moment(_wall(day, start), zone)
        ended = first_moment(_wall(day + DAY if overnight else day, end), zone)
        if began < ended:  # empty only when both ends lie in a skipped hour
            yield began, ended


def merged(intervals: Iterable[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, datetime]]:
    """Intervals sorted by start, with those that overlap or touch joined into one."""
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


def wall_clock(field: str, text: str | None, timezone: str) -> datetime:
    """A date and time as a person types it (``2026-12-01T22:00``): without an offset it is
    local time in ``timezone``; with one, the offset wins."""
    if not text:
        raise ValidationError(field, "is required for a one-off window")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, f"{text!r} is not an ISO date and time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=time_zone(timezone))


def time_zone(name: object) -> ZoneInfo:
    """The IANA time zone ``name`` (the field is ``timezone``)."""
    if not isinstance(name, str) or not name:
        raise ValidationError("timezone", "an IANA time zone such as Europe/Berlin is required")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(
            "timezone", f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from None


def local_time(field: str, value: object) -> time:
    """A time of day without a zone, in whole seconds: a ``time`` or text such as ``23:00``."""
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, f"must be a time like 23:00, got {value!r}") from None
    if not isinstance(value, time):
        raise ValidationError(field, f"must be a local time like 23:00, got {value!r}")
    if value.tzinfo is not None:
        raise ValidationError(field, "must be a local time; the zone goes in 'timezone'")
    if value.microsecond:
        raise ValidationError(field, "must be whole seconds")
    return value


def time_text(value: time | None) -> str | None:
    """``23:00``, or ``23:00:30`` when the seconds matter; ``None`` stays ``None``."""
    if value is None:
        return None
    return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")


def _wall(day: date, at: time) -> datetime:
    return datetime.combine(day, at)
