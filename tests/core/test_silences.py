"""Silences (snoozes and maintenance windows), with time passed in: tables, DST days, and
properties."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vigil.core import Evaluator, EventKind, ValidationError
from vigil.core.silences import (
    MaintenanceWindow,
    Snooze,
    Weekday,
    WindowKind,
    next_silence_change,
    silenced_metrics,
)

from .support import latency_rule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ALL_DAYS = list(Weekday)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def berlin(text: str, *, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN, fold=fold)


def weekly(
    days: list[str] | list[Weekday], start: str, end: str, zone: str = "Europe/Berlin"
) -> MaintenanceWindow:
    return MaintenanceWindow.weekly(
        "window", weekdays=days, start_time=start, end_time=end, timezone=zone
    )


def snooze(**overrides: Any) -> Snooze:
    fields: dict[str, Any] = {
        "metric": "gateway_latency",
        "until": utc("2026-11-27T12:00:00"),
        "reason": "deploying the new gateway",
        "by": "alice",
        "created_at": utc("2026-11-27T10:00:00"),
    }
    fields.update(overrides)
    return Snooze(**fields)


# -- snoozes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "active"),
    [
        ("2026-11-27T10:00:00", True),
        ("2026-11-27T11:59:59.999999", True),
        ("2026-11-27T12:00:00", False),  # ends exactly at ``until``
        ("2026-11-28T00:00:00", False),
    ],
)
def test_snooze_is_active_until_it_expires(now: str, active: bool) -> None:
    assert snooze().is_active(utc(now)) is active


def test_snooze_for_a_duration_starts_now() -> None:
    now = utc("2026-11-27T10:00:00")
    s = Snooze.for_duration(
        "gateway_latency", duration=timedelta(minutes=30), reason="  deploy ", by="bob", now=now
    )
    assert (s.created_at, s.until, s.reason) == (now, utc("2026-11-27T10:30:00"), "deploy")
    assert s.is_active(now + timedelta(minutes=29)) and not s.is_active(now + timedelta(minutes=30))


def test_snooze_events_say_who_why_and_until_when() -> None:
    s = snooze()
    started = s.started_event()
    assert (started.kind, started.metric, started.by, started.at) == (
        EventKind.SNOOZE_STARTED,
        "gateway_latency",
        "alice",
        s.created_at,
    )
    assert started.data == {"until": "2026-11-27T12:00:00+00:00", "reason": s.reason}
    expired = s.ended_event(at=s.until)
    assert (expired.kind, expired.by, expired.data["expired"]) == (
        EventKind.SNOOZE_ENDED,
        None,
        True,
    )
    lifted = s.ended_event(at=utc("2026-11-27T11:00:00"), by="carol")
    assert (lifted.by, lifted.data["expired"]) == ("carol", False)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"metric": "Gateway"}, "metric", "a-z"),
        ({"until": utc("2026-11-27T10:00:00")}, "until", "after created_at"),
        ({"until": utc("2026-11-27T09:00:00")}, "until", "after created_at"),
        ({"until": datetime(2026, 11, 27, 12)}, "until", "time zone offset"),
        ({"created_at": "yesterday"}, "created_at", "date and time"),
        ({"reason": "   "}, "reason", "required"),
        ({"reason": "x" * 501}, "reason", "at most 500"),
        ({"by": ""}, "by", "required"),
    ],
)
def test_invalid_snoozes_name_the_field(
    overrides: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        snooze(**overrides)
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_snooze_for_a_non_positive_duration_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Snooze.for_duration(
            "gateway_latency", duration=timedelta(0), reason="r", by="a", now=utc("2026-01-01")
        )
    assert caught.value.field == "duration"


def test_snooze_round_trips_through_a_dict() -> None:
    s = snooze(until=datetime(2026, 11, 27, 13, tzinfo=BERLIN))
    assert Snooze.from_dict(s.to_dict()) == s
    with pytest.raises(ValidationError) as caught:
        Snooze.from_dict({**s.to_dict(), "colour": "red"})
    assert caught.value.field == "colour"
    with pytest.raises(ValidationError) as caught:
        Snooze.from_dict({**s.to_dict(), "until": "soon"})
    assert caught.value.field == "until"


# -- one-off windows ---------------------------------------------------------------------------


ONE_OFF = MaintenanceWindow.once(
    "db-upgrade",
    start=berlin("2026-11-27T22:00:00"),
    end=berlin("2026-11-28T01:30:00"),
    metrics=["database_query_time"],
    reason="PostgreSQL 17 upgrade",
    by="alice",
)


@pytest.mark.parametrize(
    ("now", "active", "next_change"),
    [
        ("2026-11-27T20:59:59", False, "2026-11-27T21:00:00"),
        ("2026-11-27T21:00:00", True, "2026-11-28T00:30:00"),  # start is inclusive
        ("2026-11-28T00:29:59", True, "2026-11-28T00:30:00"),
        ("2026-11-28T00:30:00", False, None),  # end is exclusive
        ("2027-01-01T00:00:00", False, None),
    ],
)
def test_one_off_window_boundaries(now: str, active: bool, next_change: str | None) -> None:
    assert ONE_OFF.is_active(utc(now)) is active
    assert ONE_OFF.next_change(utc(now)) == (utc(next_change) if next_change else None)


def test_one_off_window_applies_to_its_metrics_only() -> None:
    assert ONE_OFF.applies_to("database_query_time")
    assert not ONE_OFF.applies_to("gateway_latency")
    everything = MaintenanceWindow.once(
        "all", start=utc("2026-11-27T00:00:00"), end=utc("2026-11-28T00:00:00")
    )
    assert everything.applies_to("gateway_latency")


# -- weekly windows ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "active"),
    [
        ("2026-11-27T22:59:59", False),  # Friday, before the start
        ("2026-11-27T23:00:00", True),  # Friday 23:00: start inclusive
        ("2026-11-28T00:00:00", True),  # past midnight, into Saturday
        ("2026-11-28T01:59:59", True),
        ("2026-11-28T02:00:00", False),  # end exclusive
        ("2026-11-28T23:30:00", False),  # Saturday night: not a listed day
        ("2026-11-27T01:00:00", False),  # Friday early morning belongs to Thursday's night
        ("2026-12-04T23:30:00", True),  # the next Friday
    ],
)
def test_recurring_window_crossing_midnight(local: str, active: bool) -> None:
    window = weekly(["fri"], "23:00", "02:00")
    assert window.is_active(berlin(local)) is active


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-27T12:00:00", "2026-11-27T22:00:00"),  # Friday noon -> 23:00 CET
        ("2026-11-27T22:00:00", "2026-11-28T01:00:00"),  # inside -> 02:00 CET on Saturday
        ("2026-11-28T01:00:00", "2026-12-04T22:00:00"),  # just ended -> next Friday
    ],
)
def test_next_change_of_a_recurring_window(now: str, expected: str) -> None:
    assert weekly(["fri"], "23:00", "02:00").next_change(utc(now)) == utc(expected)


def test_whole_day_windows_back_to_back_are_one_period() -> None:
    weekend = weekly(["sat", "sun"], "00:00", "00:00")
    friday = utc("2026-11-27T12:00:00")
    assert weekend.next_change(friday) == utc("2026-11-27T23:00:00")  # Saturday 00:00 CET
    # Saturday -> Sunday midnight is no change: the window runs on to Monday 00:00.
    assert weekend.next_change(utc("2026-11-28T12:00:00")) == utc("2026-11-29T23:00:00")
    always = weekly(ALL_DAYS, "06:00", "06:00")
    assert always.is_active(friday) and always.next_change(friday) is None


# Sunday 01:00-04:00 local time: three hours, except on the DST nights, when the clock skips
# or repeats the hour between: two hours in spring, four in autumn.
@pytest.mark.parametrize(
    ("zone", "sunday", "start", "end"),
    [
        ("Europe/Berlin", "2026-03-22", "2026-03-22T00:00:00", "2026-03-22T03:00:00"),
        ("Europe/Berlin", "2026-03-29", "2026-03-29T00:00:00", "2026-03-29T02:00:00"),
        ("Europe/Berlin", "2026-04-05", "2026-04-04T23:00:00", "2026-04-05T02:00:00"),
        ("Europe/Berlin", "2026-10-18", "2026-10-17T23:00:00", "2026-10-18T02:00:00"),
        ("Europe/Berlin", "2026-10-25", "2026-10-24T23:00:00", "2026-10-25T03:00:00"),
        ("Europe/Berlin", "2026-11-01", "2026-11-01T00:00:00", "2026-11-01T03:00:00"),
        ("America/New_York", "2026-03-08", "2026-03-08T06:00:00", "2026-03-08T08:00:00"),
        ("America/New_York", "2026-11-01", "2026-11-01T05:00:00", "2026-11-01T09:00:00"),
    ],
)
def test_window_keeps_local_time_across_both_dst_changes(
    zone: str, sunday: str, start: str, end: str
) -> None:
    window = weekly(["sun"], "01:00", "04:00", zone)
    saturday_noon = datetime.combine(date.fromisoformat(sunday), time(12)) - timedelta(days=1)
    before = saturday_noon.replace(tzinfo=ZoneInfo(zone))
    assert window.next_change(before) == utc(start)
    assert window.next_change(utc(start)) == utc(end)
    assert not window.is_active(utc(start) - timedelta(seconds=1))
    assert window.is_active(utc(start))
    assert window.is_active(utc(end) - timedelta(seconds=1))
    assert not window.is_active(utc(end))


# A boundary the clock skips falls on the jump (03:00 CEST); one it shows twice falls on its
# first, summer-time occurrence.
@pytest.mark.parametrize(
    ("start", "end", "sunday", "expected"),
    [
        # 02:30 does not exist on 29 March: the window starts when the clock jumps to 03:00.
        ("02:30", "03:30", "2026-03-29", ("2026-03-29T01:00:00", "2026-03-29T01:30:00")),
        ("01:30", "02:30", "2026-03-29", ("2026-03-29T00:30:00", "2026-03-29T01:00:00")),
        # Entirely inside the skipped hour: the clock never shows it, so no window that day.
        ("02:10", "02:40", "2026-03-29", None),
        # 02:30 happens twice on 25 October; the first (CEST) one counts, start or end.
        ("02:30", "03:30", "2026-10-25", ("2026-10-25T00:30:00", "2026-10-25T02:30:00")),
        ("01:30", "02:30", "2026-10-25", ("2026-10-24T23:30:00", "2026-10-25T00:30:00")),
        ("02:10", "02:40", "2026-10-25", ("2026-10-25T00:10:00", "2026-10-25T00:40:00")),
    ],
)
def test_missing_and_repeated_local_times_on_dst_days(
    start: str, end: str, sunday: str, expected: tuple[str, str] | None
) -> None:
    window = weekly(["sun"], start, end)
    saturday = datetime.fromisoformat(sunday).replace(tzinfo=UTC) - timedelta(hours=12)
    first = window.next_change(saturday)
    if expected is None:
        assert first is not None and first > saturday + timedelta(days=6)
        assert not any(
            window.is_active(saturday + timedelta(minutes=m)) for m in range(0, 24 * 60, 5)
        )
        return
    assert first == utc(expected[0])
    assert window.next_change(first) == utc(expected[1])


def test_brute_force_minutes_per_night_over_a_dst_year() -> None:
    """Walk 2026 in Berlin minute by minute: every night 01:00-04:00 lasts 180 minutes,
    except 120 on the spring-forward night and 240 on the fall-back night."""
    window = weekly(ALL_DAYS, "01:00", "04:00")
    minutes: Counter[date] = Counter()
    spans = [
        (utc("2026-03-20T12:00:00"), utc("2026-04-02T12:00:00")),  # nights of 21 Mar - 2 Apr
        (utc("2026-10-18T12:00:00"), utc("2026-10-30T12:00:00")),  # nights of 19 - 30 Oct
    ]
    for moment, end in spans:
        while moment < end:
            if window.is_active(moment):
                minutes[(moment + timedelta(hours=6)).date()] += 1  # the Berlin date of the night
            moment += timedelta(minutes=1)
    dst_nights = {date(2026, 3, 29): 120, date(2026, 10, 25): 240}
    assert {day: minutes[day] for day in dst_nights} == dst_nights
    others = {day: count for day, count in minutes.items() if day not in dst_nights}
    assert len(others) == 23 and set(others.values()) == {180}


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"end": berlin("2026-11-27T21:59:00")}, "end", "must be after start"),
        ({"end": berlin("2026-11-27T22:00:00")}, "end", "must be after start"),
        ({"start": datetime(2026, 11, 27, 22)}, "start", "time zone offset"),
        ({"start": None}, "start", "required for a one-off"),
        ({"timezone": "Europe/Berlin"}, "timezone", "only for a weekly"),
        ({"name": "DB upgrade"}, "name", "a-z"),
        ({"kind": "monthly"}, "kind", "once, weekly"),
        ({"metrics": []}, "metrics", "at least one metric"),
        ({"metrics": "gateway_latency"}, "metrics", "list of metrics"),
        ({"metrics": ["Gateway"]}, "metrics", "a-z"),
        ({"reason": "x" * 501}, "reason", "at most 500"),
    ],
)
def test_invalid_one_off_windows_name_the_field(
    fields: dict[str, Any], field: str, fragment: str
) -> None:
    values: dict[str, Any] = {
        "name": "db-upgrade",
        "kind": "once",
        "start": berlin("2026-11-27T22:00:00"),
        "end": berlin("2026-11-28T01:30:00"),
    }
    values.update(fields)
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow(**values)
    assert caught.value.field == field
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "timezone", "unknown time zone"),
        ({"timezone": ""}, "timezone", "IANA time zone"),
        ({"timezone": None}, "timezone", "IANA time zone"),
        ({"weekdays": []}, "weekdays", "at least one"),
        ({"weekdays": ["monday"]}, "weekdays", "mon, tue"),
        ({"weekdays": "mon"}, "weekdays", "at least one"),
        ({"start_time": "25:00"}, "start_time", "like 23:00"),
        ({"end_time": None}, "end_time", "local time"),
        ({"start_time": time(1, tzinfo=UTC)}, "start_time", "'timezone'"),
        ({"start": berlin("2026-11-27T22:00:00")}, "start", "only for a one-off"),
    ],
)
def test_invalid_weekly_windows_name_the_field(
    fields: dict[str, Any], field: str, fragment: str
) -> None:
    values: dict[str, Any] = {
        "name": "nightly",
        "kind": WindowKind.WEEKLY,
        "weekdays": ["fri"],
        "start_time": "23:00",
        "end_time": "02:00",
        "timezone": "Europe/Berlin",
    }
    values.update(fields)
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow(**values)
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_windows_round_trip_through_a_dict() -> None:
    nightly = MaintenanceWindow.weekly(
        "nightly",
        weekdays=["sun", "mon"],
        start_time=time(23, 0, 30),
        end_time="02:00",
        timezone="America/New_York",
        metrics=["gateway_latency", "error_rate"],
        reason="backups",
    )
    data = nightly.to_dict()
    assert data["weekdays"] == ["mon", "sun"]
    assert (data["start_time"], data["end_time"]) == ("23:00:30", "02:00")
    assert data["metrics"] == ["error_rate", "gateway_latency"]
    assert MaintenanceWindow.from_dict(data) == nightly
    assert MaintenanceWindow.from_dict(ONE_OFF.to_dict()) == ONE_OFF
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow.from_dict({"name": "x"})
    assert caught.value.field == "kind"


# -- what the evaluator is told ----------------------------------------------------------------


def test_silenced_metrics_combines_snoozes_and_windows() -> None:
    metrics = ["gateway_latency", "database_query_time", "error_rate"]
    snoozes = [snooze(), snooze(metric="error_rate", until=utc("2026-11-27T10:30:00"))]
    windows = [ONE_OFF]
    at = {
        "2026-11-27T10:15:00": {"gateway_latency", "error_rate"},
        "2026-11-27T11:00:00": {"gateway_latency"},
        "2026-11-27T21:30:00": {"database_query_time"},
        "2026-11-28T02:00:00": set(),
    }
    for now, expected in at.items():
        got = silenced_metrics(utc(now), metrics=metrics, snoozes=snoozes, windows=windows)
        assert got == expected, now
    everything = MaintenanceWindow.once(
        "all", start=utc("2026-11-27T00:00:00"), end=utc("2026-11-28T00:00:00")
    )
    assert silenced_metrics(
        utc("2026-11-27T09:00:00"), metrics=metrics, windows=[everything]
    ) == set(metrics)
    # A snooze for a metric that has no rule is not reported.
    assert silenced_metrics(utc("2026-11-27T10:15:00"), metrics=["other"], snoozes=snoozes) == set()


def test_next_silence_change_is_the_earliest_expiry_or_window_edge() -> None:
    snoozes = [snooze(), snooze(metric="error_rate", until=utc("2026-11-27T10:30:00"))]
    now = utc("2026-11-27T10:15:00")
    assert next_silence_change(now, snoozes=snoozes, windows=[ONE_OFF]) == utc(
        "2026-11-27T10:30:00"
    )
    assert next_silence_change(
        utc("2026-11-27T13:00:00"), snoozes=snoozes, windows=[ONE_OFF]
    ) == utc("2026-11-27T21:00:00")
    assert next_silence_change(utc("2026-12-01T00:00:00"), snoozes=snoozes) is None


def test_a_rule_in_maintenance_opens_no_incident_and_resumes_by_itself() -> None:
    rule = latency_rule(breaches_required=2)
    evaluator = Evaluator([rule])
    window = weekly(["sat"], "23:00", "01:00", "UTC")
    start = utc("2026-11-28T23:58:00")  # Saturday
    opened: list[datetime] = []
    for minute in range(65):
        now = start + timedelta(minutes=minute)
        silent = silenced_metrics(now, metrics=evaluator.rules, windows=[window])
        result = evaluator.evaluate({rule.metric: 250.0}, now=now, silenced=silent)
        opened += [e.at for e in result.events if e.kind is EventKind.INCIDENT_OPENED]
    # Breaching all along: nothing while the window lasts, an incident on its first reading
    # after the window (the breach streak kept counting).
    assert opened == [utc("2026-11-29T01:00:00")]


# -- properties --------------------------------------------------------------------------------

PROPERTY = settings(deadline=None, max_examples=300)
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",  # southern hemisphere: DST around new year
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Santiago",  # changes at midnight
    "Pacific/Chatham",  # +12:45 / +13:45
    "UTC",
]


def _transitions(zone: ZoneInfo) -> list[datetime]:
    found = []
    moment = utc("2025-06-01T00:00:00")
    offset = moment.astimezone(zone).utcoffset()
    while moment < utc("2027-06-01T00:00:00"):
        moment += timedelta(hours=1)
        current = moment.astimezone(zone).utcoffset()
        if current != offset:
            found.append(moment)
            offset = current
    return found


TRANSITIONS = {name: _transitions(ZoneInfo(name)) for name in ZONES}
local_times = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))


@st.composite
def weekly_windows(draw: st.DrawFn) -> MaintenanceWindow:
    return MaintenanceWindow.weekly(
        "w",
        weekdays=draw(st.sets(st.sampled_from(ALL_DAYS), min_size=1)),
        start_time=draw(local_times),
        end_time=draw(local_times),
        timezone=draw(st.sampled_from(ZONES)),
    )


@st.composite
def moments(draw: st.DrawFn, zone: str) -> datetime:
    """A whole minute, often within two days of a DST change of ``zone``."""
    near = TRANSITIONS[zone]
    close_to_a_change = draw(st.booleans())
    if near and close_to_a_change:
        base = draw(st.sampled_from(near))
        return base + timedelta(minutes=draw(st.integers(-2 * 24 * 60, 2 * 24 * 60)))
    return utc("2025-06-01T00:00:00") + timedelta(minutes=draw(st.integers(0, 2 * 365 * 24 * 60)))


def wall_clock_says_active(window: MaintenanceWindow, moment: datetime) -> bool:
    """The brute-force reading: look at the local clock and calendar at ``moment``."""
    assert window.timezone and window.weekdays and window.start_time and window.end_time
    local = moment.astimezone(ZoneInfo(window.timezone))
    today, clock = local.date(), local.time().replace(tzinfo=None)
    listed = {d.number for d in window.weekdays}
    start, end = window.start_time, window.end_time
    if end > start:
        return today.weekday() in listed and start <= clock < end
    yesterday = (today - timedelta(days=1)).weekday()
    return (today.weekday() in listed and clock >= start) or (yesterday in listed and clock < end)


def is_ambiguous(moment: datetime, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


@pytest.mark.untraced
@PROPERTY
@given(data=st.data(), window=weekly_windows())
def test_is_active_agrees_with_the_local_wall_clock(
    data: st.DataObject, window: MaintenanceWindow
) -> None:
    assert window.timezone is not None
    moment = data.draw(moments(window.timezone))
    # While the clock repeats an hour it cannot tell which pass it is in; the rule there is
    # "the first pass", covered by the DST tables above.
    assume(not is_ambiguous(moment, ZoneInfo(window.timezone)))
    assert window.is_active(moment) is wall_clock_says_active(window, moment)


@pytest.mark.untraced
@settings(deadline=None, max_examples=60)
@given(data=st.data(), window=weekly_windows())
def test_is_active_agrees_with_the_wall_clock_minute_by_minute(
    data: st.DataObject, window: MaintenanceWindow
) -> None:
    assert window.timezone is not None
    zone = ZoneInfo(window.timezone)
    start = data.draw(moments(window.timezone))
    for minute in range(26 * 60):
        moment = start + timedelta(minutes=minute)
        if not is_ambiguous(moment, zone):
            assert window.is_active(moment) is wall_clock_says_active(window, moment), moment


@pytest.mark.untraced
@PROPERTY
@given(data=st.data(), window=weekly_windows())
def test_next_change_is_the_next_flip(data: st.DataObject, window: MaintenanceWindow) -> None:
    assert window.timezone is not None
    now = data.draw(moments(window.timezone)) + timedelta(
        seconds=data.draw(st.integers(0, 59)), microseconds=data.draw(st.integers(0, 999_999))
    )
    active = window.is_active(now)
    change = window.next_change(now)
    if change is None:
        assert active and all(window.is_active(now + timedelta(hours=h)) for h in range(0, 400, 7))
        return
    assert now < change <= now + timedelta(days=15)
    assert window.is_active(change) is not active
    fraction = data.draw(st.floats(0, 1))
    for probe in (change - timedelta(seconds=1), now + (change - now) * fraction):
        if now <= probe < change:
            assert window.is_active(probe) is active


@pytest.mark.untraced
@PROPERTY
@given(window=weekly_windows())
def test_weekly_windows_round_trip(window: MaintenanceWindow) -> None:
    assert MaintenanceWindow.from_dict(window.to_dict()) == window
