"""Real incident events for notification tests, made by the core evaluator."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta

from vigil.core import Evaluator, Event, Rule

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
INCIDENT_ID = uuid.UUID(int=7)
RULE = Rule(metric="gateway_latency", unit="ms", warning=100.0, critical=200.0)


def lifecycle() -> dict[str, Event]:
    """One incident from start to end, each event numbered as the store would:
    opened (warning), escalated (critical), acknowledged by alice, resolved automatically."""
    ids = itertools.repeat(INCIDENT_ID)
    evaluator = Evaluator([RULE], new_id=lambda: next(ids))
    numbers = itertools.count(1)
    events: dict[str, Event] = {}

    def keep(found: list[Event]) -> None:
        for event in found:
            events[event.kind.value.split(".")[1]] = dataclasses.replace(event, id=next(numbers))

    readings = [150.0, 160.0, 231.4, 250.0]
    for i, value in enumerate(readings):
        keep(evaluator.evaluate({RULE.metric: value}, now=T0 + timedelta(seconds=30 * i)).events)
    ack = evaluator.acknowledge(
        INCIDENT_ID, by="alice", now=T0 + timedelta(minutes=3), notes="looking at the gateway"
    )
    keep([ack])
    for i, value in enumerate([50.0, 40.0, 45.0]):
        now = T0 + timedelta(minutes=5, seconds=30 * i)
        keep(evaluator.evaluate({RULE.metric: value}, now=now).events)
    assert set(events) == {"opened", "escalated", "acknowledged", "resolved"}
    return events
