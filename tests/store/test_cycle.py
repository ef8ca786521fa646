"""The monitor's cycle: one transaction, and what a restart finds."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from vigil.core.catalogue import DEFAULT_RULES
from vigil.core.errors import DuplicateIncidentError, IllegalTransitionError
from vigil.core.evaluation import CycleResult, Evaluator, RuleState
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Resolution, Severity, Status
from vigil.core.samples import Sample
from vigil.store import Store

from .conftest import T0, make_incident, open_incident

READINGS = [150.0, 150.0, 250.0, 250.0, 90.0, 10.0, 10.0, 10.0]


async def _run(
    store: Store, evaluator: Evaluator, readings: list[float], start: int = 0
) -> list[Event]:
    stored: list[Event] = []
    for offset, value in enumerate(readings, start=start):
        now = T0 + timedelta(seconds=30 * offset)
        result = evaluator.evaluate({"gateway_latency": value}, now=now)
        samples = [Sample("bot-1", "gateway_latency", now, value)]
        stored += await store.commit_cycle(samples=samples, result=result, now=now)
    return stored


async def test_a_cycle_stores_an_incident_its_life_and_every_event(store: Store) -> None:
    evaluator = Evaluator(await store.list_rules())
    stored = await _run(store, evaluator, READINGS)

    assert [event.kind for event in stored] == [
        EventKind.INCIDENT_OPENED,
        EventKind.INCIDENT_ESCALATED,
        EventKind.INCIDENT_RESOLVED,
    ]
    ids = [event.id or 0 for event in stored]
    assert 0 < ids[0] < ids[1] < ids[2]
    assert await store.events_after(0) == stored

    [incident] = (await store.incident_history()).items
    assert incident.status is Status.RESOLVED
    assert incident.resolution is Resolution.AUTO
    assert incident.severity is Severity.CRITICAL
    assert (incident.value, incident.peak_value, incident.last_value) == (150.0, 250.0, 10.0)
    assert incident.resolved_at == T0 + timedelta(seconds=30 * 6)
    assert await store.active_incidents() == []

    history = await store.metric_history(
        "gateway_latency", start=T0, end=T0 + timedelta(hours=1), max_points=1000
    )
    assert [point.mean for point in history] == READINGS


async def test_escalation_moves_the_day_count_to_critical(store: Store) -> None:
    evaluator = Evaluator(await store.list_rules())
    await _run(store, evaluator, READINGS[:4])
    [today] = await store.frequency(days=1, now=T0)
    assert (today.warning, today.critical) == (0, 1)


async def test_a_restart_resumes_streaks_and_the_open_incident(store: Store) -> None:
    before = Evaluator(await store.list_rules())
    await _run(store, before, READINGS[:5])  # opened, escalated, one normal reading
    open_before = before.state("gateway_latency").incident
    assert open_before is not None

    after = Evaluator(await store.list_rules(), states=await store.load_states())
    assert after.state("gateway_latency") == before.state("gateway_latency")

    # The restarted monitor carries on: two more normal readings resolve the same incident.
    events = await _run(store, after, [10.0, 10.0], start=5)
    assert [event.kind for event in events] == [EventKind.INCIDENT_RESOLVED]
    assert events[0].incident is not None and events[0].incident.id == open_before.id
    assert (await store.incident_history()).total == 1


async def test_a_streak_short_of_an_incident_survives_a_restart(store: Store) -> None:
    evaluator = Evaluator(await store.list_rules())
    await _run(store, evaluator, [150.0])  # one breach; two are required
    restarted = Evaluator(await store.list_rules(), states=await store.load_states())
    assert restarted.state("gateway_latency").breach_streak == 1
    [event] = await _run(store, restarted, [150.0], start=1)
    assert event.kind is EventKind.INCIDENT_OPENED


async def test_a_second_open_incident_for_a_rule_is_refused_and_nothing_is_written(
    store: Store,
) -> None:
    await open_incident(store)
    events_before = await store.last_event_id()
    duplicate = make_incident(at=T0 + timedelta(minutes=1))
    opened = Event.for_incident(EventKind.INCIDENT_OPENED, duplicate, at=duplicate.triggered_at)
    sample = Sample("bot-1", "gateway_latency", duplicate.triggered_at, 1.0)

    with pytest.raises(DuplicateIncidentError) as caught:
        await store.commit_cycle(
            samples=[sample], result=CycleResult(events=[opened]), now=duplicate.triggered_at
        )

    assert caught.value.metric == "gateway_latency"
    assert len(await store.active_incidents()) == 1
    assert await store.last_event_id() == events_before
    assert await store.latest_values(since=T0) == {}  # the cycle's sample went with it


async def test_two_concurrent_openings_for_one_rule_one_wins(database_url: str) -> None:
    first = await Store.open(database_url, upgrade=True)
    second = await Store.open(database_url)
    try:
        attempts = [make_incident(at=T0), make_incident(at=T0 + timedelta(seconds=1))]
        outcomes = await asyncio.gather(
            *(
                open_incident(s, incident)
                for s, incident in zip((first, second), attempts, strict=True)
            ),
            return_exceptions=True,
        )
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        winners = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        assert len(winners) == 1 and len(errors) == 1, outcomes
        assert isinstance(errors[0], DuplicateIncidentError)
        assert [incident.id for incident in await first.active_incidents()] == [winners[0].id]
        assert len(await second.events_after(0)) == 1
        [today] = await first.frequency(days=1, now=T0)
        assert today.total == 1
    finally:
        await first.close()
        await second.close()


async def test_a_cycle_does_not_undo_an_acknowledgement_made_elsewhere(store: Store) -> None:
    incident = await open_incident(store)
    await store.acknowledge_incident(incident.id, by="alice", now=T0, notes="looking")
    # The monitor still holds the unacknowledged copy and updates its last value.
    stale = dataclasses.replace(incident, last_value=170.0, peak_value=170.0)
    await store.commit_cycle(
        samples=[],
        result=CycleResult(changed={"gateway_latency": _state_with(stale)}),
        now=T0 + timedelta(seconds=30),
    )
    stored = await store.get_incident(incident.id)
    assert stored.status is Status.ACKNOWLEDGED
    assert (stored.acknowledged_by, stored.notes) == ("alice", "looking")
    assert stored.peak_value == 170.0


async def test_updating_an_incident_resolved_elsewhere_aborts_the_cycle(store: Store) -> None:
    incident = await open_incident(store)
    await store.resolve_incident(incident.id, by="alice", now=T0)
    last_event = await store.last_event_id()
    stale = dataclasses.replace(incident, last_value=170.0)
    with pytest.raises(IllegalTransitionError):
        await store.commit_cycle(
            samples=[Sample("bot-1", "gateway_latency", T0, 170.0)],
            result=CycleResult(changed={"gateway_latency": _state_with(stale)}),
            now=T0 + timedelta(seconds=30),
        )
    assert (await store.get_incident(incident.id)).last_value == 150.0
    assert await store.last_event_id() == last_event
    assert await store.latest_values(since=T0) == {}


def _state_with(incident: Incident) -> RuleState:
    return RuleState(breach_streak=3, incident=incident)


async def test_every_default_rule_can_hold_a_state(store: Store) -> None:
    evaluator = Evaluator(await store.list_rules())
    readings = {rule.metric: rule.critical for rule in DEFAULT_RULES}
    result = evaluator.evaluate(readings, now=T0)
    await store.commit_cycle(samples=[], result=result, now=T0)
    states = await store.load_states()
    assert {metric: state.breach_streak for metric, state in states.items()} == {
        rule.metric: 1 for rule in DEFAULT_RULES
    }
