"""A group's message: what it says for each moment of the group, and that a group of one
is told of as its incident."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.grouping import summarize
from vigil.core.incidents import Incident, Severity, Status, acknowledge, resolve
from vigil.notify import Channel, Tone, format_event
from vigil.notify.grouped import MAX_LISTED, format_group

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GROUP = uuid.UUID(int=7)
CHANNEL = Channel.from_dict({"name": "ops", "url": "json://127.0.0.1/hook"})


def member(rule: str, severity: str = "warning", *, after: int = 0) -> Incident:
    return Incident(
        id=uuid.uuid4(),
        rule=rule,
        metric=rule,
        severity=Severity(severity),
        status=Status.ACTIVE,
        triggered_at=T0 + timedelta(seconds=after),
        threshold=1.0,
        value=2.0,
        peak_value=2.0,
        last_value=2.0,
        message=f"{rule} is high",
        group=GROUP,
    )


def stored(kind: EventKind, incident: Incident, **fields: object) -> Event:
    event = Event.for_incident(kind, incident, at=T0, **fields)  # type: ignore[arg-type]
    return dataclasses.replace(event, id=42)


MEMBERS = [
    member("gateway_latency", "critical"),
    member("error_rate", "warning", after=5),
    member("command_p95_latency", "warning", after=9),
]


def test_the_opening_message_lists_every_member_with_the_worst_severity() -> None:
    message = format_group(
        summarize(GROUP, MEMBERS),
        stored(EventKind.INCIDENT_OPENED, MEMBERS[0]),
        CHANNEL,
        base_url="http://vigil.example",
    )
    assert message.title == (
        "[CRITICAL] 3 incidents: gateway_latency, error_rate, command_p95_latency; "
        "most severe critical"
    )
    assert message.tone is Tone.CRITICAL
    assert [name for name, _ in message.fields] == [
        "gateway_latency",
        "error_rate",
        "command_p95_latency",
    ]
    assert message.fields[1][1] == "[WARNING] error_rate is high (active)"
    assert message.link == f"http://vigil.example/incidents/{MEMBERS[0].id}"


@pytest.mark.parametrize(
    ("kind", "title_end", "tone"),
    [
        (EventKind.INCIDENT_RESOLVED, "all resolved automatically", Tone.RESOLVED),
        (EventKind.INCIDENT_ACKNOWLEDGED, "acknowledged by ana", Tone.CRITICAL),
    ],
)
def test_resolution_and_acknowledgement_messages(
    kind: EventKind, title_end: str, tone: Tone
) -> None:
    if kind is EventKind.INCIDENT_RESOLVED:
        members = [resolve(m, now=T0 + timedelta(minutes=5))[0] for m in MEMBERS]
        event = stored(kind, members[-1])
    else:
        members = [acknowledge(m, by="ana", now=T0)[0] for m in MEMBERS]
        event = stored(kind, members[0], by="ana", data={"group": str(GROUP)})
    message = format_group(summarize(GROUP, members), event, CHANNEL)
    assert message.title.endswith(title_end)
    assert message.tone is tone


def test_a_group_of_one_is_told_of_as_its_incident() -> None:
    alone = MEMBERS[0]
    event = stored(EventKind.INCIDENT_OPENED, alone)
    assert format_group(summarize(GROUP, [alone]), event, CHANNEL) == format_event(event, CHANNEL)


def test_a_large_group_lists_some_members_and_counts_the_rest() -> None:
    many = [member(f"rule{n}", after=n) for n in range(MAX_LISTED + 5)]
    message = format_group(
        summarize(GROUP, many), stored(EventKind.INCIDENT_OPENED, many[0]), CHANNEL
    )
    assert len(message.fields) == MAX_LISTED + 1
    assert message.fields[-1] == ("More", "5 more incidents in the group")


def test_an_event_about_another_group_is_refused() -> None:
    stranger = dataclasses.replace(MEMBERS[0], group=uuid.UUID(int=8))
    with pytest.raises(ValidationError, match="event"):
        format_group(
            summarize(GROUP, MEMBERS), stored(EventKind.INCIDENT_OPENED, stranger), CHANNEL
        )


def test_an_acknowledgement_sent_after_a_member_opened_says_the_group_is_active() -> None:
    acknowledged = [acknowledge(m, by="ana", now=T0)[0] for m in MEMBERS]
    newcomer = member("memory_usage", "critical", after=30)
    event = stored(
        EventKind.INCIDENT_ACKNOWLEDGED, acknowledged[0], by="ana", data={"group": str(GROUP)}
    )
    message = format_group(summarize(GROUP, [*acknowledged, newcomer]), event, CHANNEL)
    assert message.title.startswith("[CRITICAL] 4 incidents: ")
    assert "acknowledged by" not in message.title
    assert "(1 open" not in message.lead and "(4 open)" in message.lead
