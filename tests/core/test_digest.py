"""Digest periods, pure: tables of moments and the period each falls in, across Berlin's
daylight-saving changes; and what a digest of some events says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core import Event, EventKind, Incident, Severity, Status, ValidationError
from vigil.core.digest import (
    Delivery,
    Digest,
    DigestSchedule,
    next_period_end,
    period_end,
    period_start,
    summarize,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def daily(at: str, zone: str = "Europe/Berlin") -> DigestSchedule:
    return DigestSchedule.of("daily", at, zone)


def hourly(at: str = "00:15", zone: str = "Europe/Berlin") -> DigestSchedule:
    return DigestSchedule.of("hourly", at, zone)


@pytest.mark.parametrize(
    ("schedule", "now", "start", "end"),
    [
        # Winter (CET, +1): 09:00 local is 08:00 UTC.
        (daily("09:00"), "2026-01-15T08:00:00", "2026-01-14T08:00:00", "2026-01-15T08:00:00"),
        (daily("09:00"), "2026-01-15T07:59:59", "2026-01-13T08:00:00", "2026-01-14T08:00:00"),
        # Summer (CEST, +2): 07:00 UTC.
        (daily("09:00"), "2026-07-15T12:00:00", "2026-07-14T07:00:00", "2026-07-15T07:00:00"),
        # Spring forward, 29 March 2026: the period that holds the change is 23 hours long.
        (daily("09:00"), "2026-03-29T07:00:00", "2026-03-28T08:00:00", "2026-03-29T07:00:00"),
        # Fall back, 25 October 2026: 25 hours long.
        (daily("09:00"), "2026-10-25T08:00:00", "2026-10-24T07:00:00", "2026-10-25T08:00:00"),
        # A time the clocks skip (02:30 on 29 March) is sent at the jump, 03:00 CEST.
        (daily("02:30"), "2026-03-29T01:00:00", "2026-03-28T01:30:00", "2026-03-29T01:00:00"),
        (daily("02:30"), "2026-03-30T00:30:00", "2026-03-29T01:00:00", "2026-03-30T00:30:00"),
        # A time that happens twice (02:30 on 25 October) is sent the first time only.
        (daily("02:30"), "2026-10-25T00:30:00", "2026-10-24T00:30:00", "2026-10-25T00:30:00"),
        (daily("02:30"), "2026-10-25T01:30:00", "2026-10-24T00:30:00", "2026-10-25T00:30:00"),
        (daily("02:30"), "2026-10-26T01:30:00", "2026-10-25T00:30:00", "2026-10-26T01:30:00"),
        # UTC, midnight.
        (
            daily("00:00", "UTC"),
            "2026-12-02T19:00:00",
            "2026-12-01T00:00:00",
            "2026-12-02T00:00:00",
        ),
        # Hourly at :15 past the local hour, through both changes: always an hour long.
        (hourly(), "2026-03-29T01:14:00", "2026-03-28T23:15:00", "2026-03-29T00:15:00"),
        (hourly(), "2026-03-29T01:15:00", "2026-03-29T00:15:00", "2026-03-29T01:15:00"),
        (hourly(), "2026-10-25T01:20:00", "2026-10-25T00:15:00", "2026-10-25T01:15:00"),
        # A zone half an hour off UTC: :15 local is :45 UTC.
        (
            hourly("00:15", "Asia/Kolkata"),
            "2026-12-02T10:50:00",
            "2026-12-02T09:45:00",
            "2026-12-02T10:45:00",
        ),
    ],
)
def test_periods(schedule: DigestSchedule, now: str, start: str, end: str) -> None:
    found_end = period_end(schedule, utc(now))
    assert found_end == utc(end)
    assert period_start(schedule, found_end) == utc(start)


@pytest.mark.parametrize(
    ("now", "following"),
    [
        ("2026-03-28T08:00:00", "2026-03-29T07:00:00"),  # over the spring change
        ("2026-10-24T07:00:00", "2026-10-25T08:00:00"),  # over the autumn change
        ("2026-01-15T08:00:00", "2026-01-16T08:00:00"),
    ],
)
def test_next_period_end(now: str, following: str) -> None:
    assert next_period_end(daily("09:00"), utc(now)) == utc(following)


@pytest.mark.untraced
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
    st.sampled_from(["00:00", "02:30", "09:00", "23:59"]),
)
def test_every_moment_lies_in_exactly_one_period(naive: datetime, at: str) -> None:
    schedule = daily(at)
    now = naive.replace(tzinfo=UTC)
    end = period_end(schedule, now)
    start = period_start(schedule, end)
    following = next_period_end(schedule, now)
    assert start < end <= now < following
    assert period_end(schedule, following) == following
    assert timedelta(hours=23) <= following - end <= timedelta(hours=25)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (("weekly", "09:00", "UTC"), "delivery"),
        (("daily", "9 o'clock", "UTC"), "digest_at"),
        (("daily", "09:00:30", "UTC"), "digest_at"),
        (("daily", "09:00", "Mars/Olympus"), "timezone"),
    ],
)
def test_bad_schedules_name_the_field(values: tuple[str, str, str], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        DigestSchedule.of(*values)
    assert raised.value.field == field


def test_realtime_has_no_periods() -> None:
    schedule = DigestSchedule.of("realtime", None, None)
    assert schedule.delivery is Delivery.REALTIME
    with pytest.raises(ValidationError):
        period_end(schedule, utc("2026-01-01T00:00:00"))


T0 = utc("2026-12-01T08:00:00")


def incident(rule: str, severity: Severity, peak: float, at: datetime = T0) -> Incident:
    return Incident(
        id=uuid.uuid4(),
        metric=rule,
        severity=severity,
        status=Status.ACTIVE,
        triggered_at=at,
        threshold=1.0,
        value=peak,
        peak_value=peak,
        last_value=peak,
        message=f"{rule} is bad",
        rule=rule,
    )


def test_a_digest_counts_sections_and_the_worst_moments() -> None:
    latency = incident("gateway_latency", Severity.CRITICAL, 900.0, T0 + timedelta(hours=1))
    errors = incident("error_rate", Severity.WARNING, 3.0, T0 + timedelta(hours=2))
    old = incident("memory_usage", Severity.WARNING, 450.0, T0 - timedelta(days=2))
    info = incident("api_rate_limit_hits", Severity.INFO, 1.0, T0 + timedelta(hours=3))
    events = [
        Event.for_incident(EventKind.INCIDENT_OPENED, latency, at=latency.triggered_at),
        Event.for_incident(EventKind.INCIDENT_OPENED, errors, at=errors.triggered_at),
        Event.for_incident(EventKind.INCIDENT_OPENED, info, at=info.triggered_at),
        Event.for_incident(EventKind.INCIDENT_RESOLVED, errors, at=T0 + timedelta(hours=4)),
        # Outside the period: left out.
        Event.for_incident(EventKind.INCIDENT_OPENED, old, at=old.triggered_at),
        Event.for_incident(EventKind.INCIDENT_ACKNOWLEDGED, latency, at=T0 + timedelta(hours=5)),
    ]
    digest = summarize(
        channel="ops",
        start=T0,
        end=T0 + timedelta(days=1),
        events=events,
        still_open=[latency, old, info],
        min_severity=Severity.WARNING,
    )
    assert dict(digest.counts) == {"opened": 2, "escalated": 0, "resolved": 1, "open": 2}
    assert [e.rule for e in digest.sections["open"]] == ["memory_usage", "gateway_latency"]
    assert [e.rule for e in digest.worst] == ["gateway_latency", "memory_usage", "error_rate"]
    assert Digest.from_dict(digest.to_dict()) == digest
    assert not digest.quiet
    assert summarize(channel="ops", start=T0, end=T0, events=[], still_open=[]).quiet
