"""Wall-clock maths, pure: tables of local times and the moments they fall on."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from vigil.core import ValidationError
from vigil.core.localtime import (
    daily_occurrences,
    first_moment,
    local_time,
    merged,
    time_text,
    time_zone,
    wall_clock,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # its clocks move by half an hour


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "wall", "moment"),
    [
        # An ordinary day: the offset of the day (CET +1, CEST +2).
        (BERLIN, "2026-01-15T12:00:00", "2026-01-15T11:00:00"),
        (BERLIN, "2026-07-15T12:00:00", "2026-07-15T10:00:00"),
        # Spring forward in Berlin (29 March, 02:00 -> 03:00): a skipped time is the jump.
        (BERLIN, "2026-03-29T01:59:59", "2026-03-29T00:59:59"),
        (BERLIN, "2026-03-29T02:00:00", "2026-03-29T01:00:00"),
        (BERLIN, "2026-03-29T02:30:00", "2026-03-29T01:00:00"),
        (BERLIN, "2026-03-29T03:00:00", "2026-03-29T01:00:00"),
        (BERLIN, "2026-03-29T03:00:01", "2026-03-29T01:00:01"),
        # Fall back (25 October, 03:00 -> 02:00): a repeated time is its first, summer one.
        (BERLIN, "2026-10-25T02:00:00", "2026-10-25T00:00:00"),
        (BERLIN, "2026-10-25T02:30:00", "2026-10-25T00:30:00"),
        (BERLIN, "2026-10-25T03:00:00", "2026-10-25T02:00:00"),
        # New York springs forward at 02:00 on 8 March and falls back on 1 November.
        (NEW_YORK, "2026-03-08T02:15:00", "2026-03-08T07:00:00"),
        (NEW_YORK, "2026-11-01T01:30:00", "2026-11-01T05:30:00"),
        # A half-hour jump: Lord Howe goes from 02:00 to 02:30 on 4 October.
        (LORD_HOWE, "2026-10-04T02:10:00", "2026-10-03T15:30:00"),
    ],
)
def test_first_moment_a_local_clock_shows_a_time(zone: ZoneInfo, wall: str, moment: str) -> None:
    got = first_moment(datetime.fromisoformat(wall), zone)
    assert got == utc(moment) and got.tzinfo is UTC


def _periods(pairs: list[tuple[str, str]]) -> list[tuple[datetime, datetime]]:
    return [(utc(start), utc(end)) for start, end in pairs]


@pytest.mark.parametrize(
    ("now", "weekdays", "start", "end", "days_after", "expected"),
    [
        # Fridays 23:00-02:00 Berlin, around Friday 27 November 2026: the previous Friday is
        # more than two days back, so the first period is this Friday's.
        (
            "2026-11-27T12:00:00",
            {4},
            "23:00",
            "02:00",
            7,
            [
                ("2026-11-27T22:00:00", "2026-11-28T01:00:00"),
                ("2026-12-04T22:00:00", "2026-12-05T01:00:00"),
            ],
        ),
        # Every day 00:00-00:00: whole days, back to back; two days before "today" come first.
        (
            "2026-11-27T12:00:00",
            {0, 1, 2, 3, 4, 5, 6},
            "00:00",
            "00:00",
            0,
            [
                ("2026-11-24T23:00:00", "2026-11-25T23:00:00"),
                ("2026-11-25T23:00:00", "2026-11-26T23:00:00"),
                ("2026-11-26T23:00:00", "2026-11-27T23:00:00"),
            ],
        ),
        # Sunday 02:10-02:40 on the spring-forward night never shows on the clock: no period.
        ("2026-03-28T12:00:00", {6}, "02:10", "02:40", 1, []),
        # The fall-back Sunday 01:00-04:00 lasts four hours.
        (
            "2026-10-24T12:00:00",
            {6},
            "01:00",
            "04:00",
            1,
            [("2026-10-24T23:00:00", "2026-10-25T03:00:00")],
        ),
    ],
)
def test_daily_occurrences_in_berlin(
    now: str,
    weekdays: set[int],
    start: str,
    end: str,
    days_after: int,
    expected: list[tuple[str, str]],
) -> None:
    found = daily_occurrences(
        utc(now),
        zone=BERLIN,
        weekdays=weekdays,
        start=time.fromisoformat(start),
        end=time.fromisoformat(end),
        days_after=days_after,
    )
    assert list(found) == _periods(expected)


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        ([], []),
        (
            [("2026-01-01T00:00:00", "2026-01-01T01:00:00")],
            [("2026-01-01T00:00:00", "2026-01-01T01:00:00")],
        ),
        # Touching intervals are one.
        (
            [
                ("2026-01-01T00:00:00", "2026-01-01T01:00:00"),
                ("2026-01-01T01:00:00", "2026-01-01T02:00:00"),
            ],
            [("2026-01-01T00:00:00", "2026-01-01T02:00:00")],
        ),
        # One inside another adds nothing; a gap keeps two.
        (
            [
                ("2026-01-01T00:00:00", "2026-01-01T03:00:00"),
                ("2026-01-01T01:00:00", "2026-01-01T02:00:00"),
                ("2026-01-01T04:00:00", "2026-01-01T05:00:00"),
            ],
            [
                ("2026-01-01T00:00:00", "2026-01-01T03:00:00"),
                ("2026-01-01T04:00:00", "2026-01-01T05:00:00"),
            ],
        ),
    ],
)
def test_merged_joins_what_overlaps_or_touches(
    intervals: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    assert list(merged(_periods(intervals))) == _periods(expected)


@pytest.mark.parametrize(
    ("text", "zone", "moment"),
    [
        ("2026-12-01T22:00", "Europe/Berlin", "2026-12-01T21:00:00"),
        ("2026-07-01T22:00", "Europe/Berlin", "2026-07-01T20:00:00"),
        ("2026-12-01T22:00+05:00", "Europe/Berlin", "2026-12-01T17:00:00"),  # the offset wins
        ("2026-12-01T22:00", "UTC", "2026-12-01T22:00:00"),
    ],
)
def test_wall_clock_reads_what_a_person_types(text: str, zone: str, moment: str) -> None:
    assert wall_clock("start", text, zone) == utc(moment)


@pytest.mark.parametrize(
    ("text", "zone", "field", "fragment"),
    [
        ("", "UTC", "start", "is required"),
        (None, "UTC", "start", "is required"),
        ("tomorrow", "UTC", "start", "not an ISO date"),
        ("2026-12-01T22:00", "Mars/Olympus", "timezone", "unknown time zone"),
    ],
)
def test_wall_clock_names_what_is_wrong(
    text: str | None, zone: str, field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        wall_clock("start", text, zone)
    assert caught.value.field == field and fragment in str(caught.value)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (None, "is required"),
        ("", "is required"),
        ("Nowhere/Atlantis", "unknown"),
        ("../etc", "unknown"),
    ],
)
def test_unknown_time_zones_are_refused(name: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        time_zone(name)
    assert caught.value.field == "timezone" and fragment in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("23:00", time(23)), ("07:30:15", time(7, 30, 15)), (time(6), time(6))],
)
def test_local_times(value: object, expected: time) -> None:
    assert local_time("start_time", value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("25:00", "a time like 23:00"),
        (2300, "a local time like 23:00"),
        (time(23, tzinfo=UTC), "the zone goes in 'timezone'"),
        (time(23, 0, 0, 5), "whole seconds"),
    ],
)
def test_local_times_refused(value: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        local_time("start_time", value)
    assert caught.value.field == "start_time" and fragment in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"), [(None, None), (time(23), "23:00"), (time(23, 0, 30), "23:00:30")]
)
def test_time_text(value: time | None, text: str | None) -> None:
    assert time_text(value) == text
