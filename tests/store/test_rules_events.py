"""Rules and the event log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.core.errors import NameTakenError, NotFoundError, ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.rules import Direction, Rule
from vigil.store import Store

from .conftest import T0, open_incident


async def test_update_rule_writes_the_rule_and_its_event(store: Store) -> None:
    updated, event = await store.update_rule(
        "gateway_latency", {"warning": 120, "breaches_required": 3}, by="alice", now=T0
    )
    assert (updated.warning, updated.critical, updated.breaches_required) == (120.0, 200.0, 3)
    assert (updated.updated_by, updated.updated_at) == ("alice", T0)
    assert await store.get_rule("gateway_latency") == updated
    assert event.kind is EventKind.RULE_CHANGED and event.metric == "gateway_latency"
    assert event.data["changes"] == {"warning": [100.0, 120.0], "breaches_required": [2, 3]}
    assert await store.events_after(0) == [event]


async def test_an_explicit_null_clears_a_threshold(store: Store) -> None:
    cleared, _ = await store.update_rule("gateway_latency", {"warning": None}, by="al", now=T0)
    assert (cleared.warning, cleared.critical) == (None, 200.0)
    assert (await store.get_rule("gateway_latency")).warning is None
    kept, _ = await store.update_rule("gateway_latency", {"critical": 250}, by="al", now=T0)
    assert (kept.warning, kept.critical) == (None, 250.0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"warning": None, "critical": None}, "critical"),
        ({"warning": 300}, "warning"),  # above critical for an "above" rule
        ({"breaches_required": 0}, "breaches_required"),
        ({"metric": "other"}, "metric"),
        ({"colour": "red"}, "colour"),
        ({"direction": "sideways"}, "direction"),
    ],
)
async def test_an_invalid_rule_change_names_the_field_and_changes_nothing(
    store: Store, changes: dict[str, object], field: str
) -> None:
    before = await store.get_rule("gateway_latency")
    with pytest.raises(ValidationError) as caught:
        await store.update_rule("gateway_latency", changes, by="al", now=T0)
    assert caught.value.field == field
    assert await store.get_rule("gateway_latency") == before
    assert await store.last_event_id() == 0


async def test_unknown_rules_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.get_rule("no_such_metric")
    with pytest.raises(NotFoundError):
        await store.update_rule("no_such_metric", {"warning": 1}, by="al", now=T0)


async def test_add_rule_for_a_custom_metric(store: Store) -> None:
    rule = Rule(metric="queue_depth", warning=10, critical=5, direction=Direction.BELOW)
    added, event = await store.add_rule(rule, by="al", now=T0)
    assert await store.get_rule("queue_depth") == added
    assert event.data["rule"]["direction"] == "below"
    assert (event.kind, event.rule) == (EventKind.RULE_CREATED, "queue_depth")
    with pytest.raises(NameTakenError) as caught:
        await store.add_rule(rule, by="al", now=T0)
    assert caught.value.field == "name"


async def test_events_come_back_in_id_order_from_any_point(store: Store) -> None:
    stored = await store.append_events(
        [
            Event(kind=EventKind.LEADER_CHANGED, at=T0, data={"leader": "a"}),
            Event(kind=EventKind.SNOOZE_STARTED, at=T0, metric="error_rate", by="al"),
        ]
    )
    opened = await open_incident(store, at=T0 + timedelta(minutes=1))
    log = await store.events_after(0)
    assert [event.kind for event in log] == [
        EventKind.LEADER_CHANGED,
        EventKind.SNOOZE_STARTED,
        EventKind.INCIDENT_OPENED,
    ]
    assert log[:2] == stored
    assert log[2].incident == opened
    ids = [event.id or 0 for event in log]
    assert ids == sorted(set(ids))
    assert await store.events_after(ids[0]) == log[1:]
    assert await store.events_after(ids[0], limit=1) == log[1:2]
    assert await store.last_event_id() == ids[-1]
    assert await store.events_after(ids[-1]) == []


async def test_event_data_must_be_json(store: Store) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.append_events([Event(kind=EventKind.LEADER_CHANGED, at=T0, data={"x": {1, 2}})])
    assert caught.value.field == "data"
    assert await store.last_event_id() == 0


@pytest.mark.parametrize(("last_id", "limit", "field"), [(-1, 10, "last_id"), (0, 0, "limit")])
async def test_event_reads_check_their_arguments(
    store: Store, last_id: int, limit: int, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.events_after(last_id, limit=limit)
    assert caught.value.field == field
