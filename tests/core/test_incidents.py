from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

import pytest

from vigil.core import (
    Event,
    EventKind,
    IllegalTransitionError,
    Incident,
    Resolution,
    Severity,
    Status,
    ValidationError,
    acknowledge,
    resolve,
)

from .support import T0, at

ACTIVE = Incident(
    id=uuid.UUID(int=1),
    metric="gateway_latency",
    severity=Severity.WARNING,
    status=Status.ACTIVE,
    triggered_at=T0,
    threshold=100,
    value=150,
    peak_value=180,
    last_value=120,
    message="Gateway Latency exceeded warning threshold: 150.00 ms >= 100.00 ms",
)
ACKNOWLEDGED, _ = acknowledge(ACTIVE, by="ana", now=at(1), notes="on it")
RESOLVED, _ = resolve(ACTIVE, now=at(2))

Action = Callable[[Incident], tuple[Incident, Event]]
ACK: Action = lambda i: acknowledge(i, by="ben", now=at(9))  # noqa: E731
MANUAL: Action = lambda i: resolve(i, by="ben", now=at(9))  # noqa: E731
AUTO: Action = lambda i: resolve(i, now=at(9))  # noqa: E731


@pytest.mark.parametrize(
    ("incident", "action", "status", "kind"),
    [
        (ACTIVE, ACK, Status.ACKNOWLEDGED, EventKind.INCIDENT_ACKNOWLEDGED),
        (ACTIVE, MANUAL, Status.RESOLVED, EventKind.INCIDENT_RESOLVED),
        (ACTIVE, AUTO, Status.RESOLVED, EventKind.INCIDENT_RESOLVED),
        (ACKNOWLEDGED, MANUAL, Status.RESOLVED, EventKind.INCIDENT_RESOLVED),
        (ACKNOWLEDGED, AUTO, Status.RESOLVED, EventKind.INCIDENT_RESOLVED),
    ],
)
def test_legal_transitions_record_an_event(
    incident: Incident, action: Action, status: Status, kind: EventKind
) -> None:
    updated, event = action(incident)
    assert updated.status is status
    assert (event.kind, event.incident, event.metric, event.at) == (
        kind,
        updated,
        "gateway_latency",
        at(9),
    )


def test_incident_ids_print_in_full() -> None:
    assert str(ACTIVE.id) == "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("incident", "action", "words"),
    [
        (ACKNOWLEDGED, ACK, f"cannot acknowledge incident {ACTIVE.id}: it is acknowledged"),
        (RESOLVED, ACK, f"cannot acknowledge incident {ACTIVE.id}: it is resolved"),
        (RESOLVED, MANUAL, f"cannot resolve incident {ACTIVE.id}: it is resolved"),
        (RESOLVED, AUTO, "cannot resolve"),
    ],
)
def test_illegal_transitions_are_errors(incident: Incident, action: Action, words: str) -> None:
    with pytest.raises(IllegalTransitionError) as caught:
        action(incident)
    assert str(caught.value).startswith(words)


def test_acknowledgement_records_who_when_and_notes() -> None:
    assert (ACKNOWLEDGED.acknowledged_by, ACKNOWLEDGED.acknowledged_at) == ("ana", at(1))
    assert ACKNOWLEDGED.notes == "on it"
    blank, _ = acknowledge(ACTIVE, by="ana", now=at(1), notes="   ")
    assert blank.notes is None


def test_resolution_records_how_and_by_whom() -> None:
    manual, event = resolve(ACKNOWLEDGED, by="ben", now=at(3), notes="restarted the shard")
    assert (manual.resolution, manual.resolved_by, manual.resolved_at) == (
        Resolution.MANUAL,
        "ben",
        at(3),
    )
    assert manual.notes == "restarted the shard" and event.by == "ben"
    auto, event = resolve(ACKNOWLEDGED, now=at(3))
    assert (auto.resolution, auto.resolved_by, auto.notes, event.by) == (
        Resolution.AUTO,
        None,
        "on it",
        None,
    )


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: acknowledge(ACTIVE, by="  ", now=T0), "by"),
        (lambda: acknowledge(ACTIVE, by="ana", now=T0, notes="x" * 2001), "notes"),
        (lambda: resolve(ACTIVE, by="", now=T0), "by"),
    ],
)
def test_bad_action_input_names_the_field(call: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.field == field


def test_duration_runs_until_now_while_open_and_stops_at_resolution() -> None:
    assert ACTIVE.duration_s(at(4)) == 120
    assert RESOLVED.duration_s(at(400)) == 60


@pytest.mark.parametrize("incident", [ACTIVE, ACKNOWLEDGED, RESOLVED])
def test_incident_and_event_round_trip_through_json_ready_dicts(incident: Incident) -> None:
    assert Incident.from_dict(incident.to_dict()) == incident
    event = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0, data={"from": "x"})
    event = dataclasses.replace(event, id=7)
    assert Event.from_dict(event.to_dict()) == event
    assert event.to_dict()["incident"]["id"] == str(incident.id)


def test_observed_is_replace_of_the_cycle_fields() -> None:
    incident = Incident(
        id=uuid.UUID(int=1),
        metric="m",
        severity=Severity.WARNING,
        status=Status.ACKNOWLEDGED,
        triggered_at=T0,
        threshold=1,
        value=2,
        peak_value=3,
        last_value=2,
        message="x",
        acknowledged_by="ana",
        acknowledged_at=T0,
        notes="n",
        rule="r",
        instance="i",
        condition="m > 1",
        values={"m": 2.0},
    )
    assert incident.observed(last_value=5, peak_value=6, no_data=True) == dataclasses.replace(
        incident, last_value=5, peak_value=6, no_data=True
    )
