"""The digest message: its title, its lines in the channel's time zone, and its key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from vigil.core import Event, EventKind, Incident, Severity, Status
from vigil.core.digest import summarize
from vigil.notify import Channel, Tone
from vigil.notify.digest import digest_key, format_digest

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
CHANNEL = Channel(
    name="ops",
    url="json://127.0.0.1:9/hook",
    delivery="daily",  # type: ignore[arg-type]
    digest_at="09:00",
    timezone="Europe/Berlin",
)


def test_a_digest_lists_what_happened_in_the_channels_time_zone() -> None:
    incident = Incident(
        id=uuid.uuid4(),
        metric="gateway_latency",
        severity=Severity.CRITICAL,
        status=Status.ACTIVE,
        triggered_at=T0 + timedelta(hours=13, minutes=14),
        threshold=200.0,
        value=412.0,
        peak_value=412.0,
        last_value=300.0,
        message="Gateway Latency exceeded critical threshold: 412.00 ms >= 200.00 ms",
        rule="gateway_latency",
    )
    opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=incident.triggered_at)
    end = T0 + timedelta(days=1)
    digest = summarize(channel="ops", start=T0, end=end, events=[opened], still_open=[incident])
    message = format_digest(digest, CHANNEL, base_url="https://vigil.example.com")
    assert message.title == "Daily digest: 1 opened, 0 escalated, 0 resolved, 1 still open"
    assert message.lead.endswith("from 2026-12-01 09:00 to 2026-12-02 09:00 Europe/Berlin.")
    fields = dict(message.fields)
    assert fields["Worst 1"].startswith(
        "CRITICAL gateway_latency at 2026-12-01 22:14 (peak 412.00)"
    )
    assert "Opened (1)" in fields and "Still open (1)" in fields
    assert message.tone is Tone.CRITICAL
    assert message.link == "https://vigil.example.com/alerts"
    assert message.idempotency_key == digest_key("ops", end)
    assert digest_key("ops", end) != digest_key("ops", end + timedelta(days=1))


def test_a_quiet_period_still_sends_one_saying_so() -> None:
    digest = summarize(
        channel="ops", start=T0, end=T0 + timedelta(days=1), events=[], still_open=[]
    )
    message = format_digest(digest, CHANNEL)
    assert message.title == "Daily digest: No incidents"
    assert message.fields == () and message.tone is Tone.RESOLVED
