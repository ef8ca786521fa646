"""The open rule model in storage, one set of checks for MemoryStore and Store on SQLite and
PostgreSQL: rules by name, their events, deletion, apply, series and their incidents."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from vigil.core import (
    CycleResult,
    DuplicateIncidentError,
    Evaluator,
    Event,
    EventKind,
    Kind,
    NameTakenError,
    NotFoundError,
    Resolution,
    Rule,
    RuleState,
    Sample,
    SplitBy,
    Status,
    ValidationError,
)
from vigil.core.silences import Snooze

from .conftest import T0, AnyStore, make_incident


@pytest.fixture
def store(any_store: AnyStore) -> AnyStore:
    """Every check runs on MemoryStore, SQLite and PostgreSQL (the contract's stores)."""
    return any_store


SLOW = Rule(
    name="slow_and_failing",
    kind=Kind.COMPOSITE,
    condition="command_p95_latency >= 500 and error_rate >= 5",
)
HEARTBEAT = Rule(name="cron-heartbeat", kind=Kind.ABSENT, metric="cron.beat", absent_for=300)
BY_SHARD = Rule(
    name="latency-by-shard",
    metric="gateway_latency",
    warning=100,
    critical=200,
    split_by=SplitBy.INSTANCE,
)


async def test_rules_of_every_kind_are_stored_by_name(store: AnyStore) -> None:
    for rule in (SLOW, HEARTBEAT, BY_SHARD):
        added, event = await store.add_rule(rule, by="ana", now=T0)
        assert added == rule.updated({}, by="ana", at=T0)
        assert (event.kind, event.rule, event.by) == (EventKind.RULE_CREATED, rule.name, "ana")
        assert await store.get_rule(rule.name) == added
    names = [rule.name for rule in await store.list_rules()]
    assert names == sorted(names) and {"slow_and_failing", "cron-heartbeat"} <= set(names)
    # two rules on one metric
    assert (await store.get_rule("gateway_latency")).metric == BY_SHARD.metric
    assert (await store.get_rule("slow_and_failing")).metric == ""
    with pytest.raises(NameTakenError):
        await store.add_rule(SLOW, by="ana", now=T0)


async def test_the_rule_limit_is_refused_with_the_field(store: AnyStore) -> None:
    count = len(await store.list_rules())
    with pytest.raises(ValidationError, match="at most") as caught:
        await store.add_rule(HEARTBEAT, by="ana", now=T0, max_rules=count)
    assert caught.value.field == "name"
    await store.add_rule(HEARTBEAT, by="ana", now=T0, max_rules=count + 1)


async def test_replace_and_update_record_old_and_new(store: AnyStore) -> None:
    await store.add_rule(SLOW, by="ana", now=T0)
    later = T0 + timedelta(minutes=1)
    replacement = dataclasses.replace(SLOW, condition="error_rate >= 10", severity=None)
    replaced, event = await store.replace_rule(SLOW.name, replacement, by="ben", now=later)
    assert replaced.condition == "error_rate >= 10" and replaced.updated_by == "ben"
    assert event.kind is EventKind.RULE_CHANGED
    assert event.data["changes"] == {
        "condition": ["command_p95_latency >= 500 and error_rate >= 5", "error_rate >= 10"]
    }
    updated, event = await store.update_rule(SLOW.name, {"severity": "warning"}, by="cy", now=later)
    assert updated.severity == "warning"
    assert event.data["changes"] == {"severity": ["critical", "warning"]}
    assert event.data["rule"] == updated.to_dict()
    with pytest.raises(ValidationError) as caught:
        await store.replace_rule(SLOW.name, HEARTBEAT, by="cy", now=later)
    assert caught.value.field == "name"
    with pytest.raises(NotFoundError):
        await store.replace_rule("nope", dataclasses.replace(SLOW, name="nope"), by="cy", now=later)
    history = await store.rule_events(SLOW.name)
    assert [e.kind for e in history] == [
        EventKind.RULE_CHANGED,
        EventKind.RULE_CHANGED,
        EventKind.RULE_CREATED,
    ]


async def test_deleting_a_rule_resolves_its_open_incidents_and_keeps_the_history(
    store: AnyStore,
) -> None:
    incident = make_incident(metric="error_rate")
    opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0)
    await store.commit_cycle(
        samples=[],
        result=CycleResult(events=[opened], changed={"error_rate": RuleState(2, 0, 0, incident)}),
        now=T0,
    )
    snooze = Snooze.for_duration(
        "error_rate", duration=timedelta(hours=1), reason="deploy", by="ana", now=T0
    )
    await store.set_snooze(snooze)
    later = T0 + timedelta(minutes=5)
    resolved, deleted = await store.delete_rule("error_rate", by="ana", now=later)
    assert resolved.kind is EventKind.INCIDENT_RESOLVED and resolved.incident is not None
    assert (
        resolved.incident.status,
        resolved.incident.resolution,
        resolved.incident.resolved_by,
        resolved.incident.notes,
    ) == (Status.RESOLVED, Resolution.MANUAL, "ana", "rule deleted")
    assert (deleted.kind, deleted.rule, deleted.by) == (EventKind.RULE_DELETED, "error_rate", "ana")
    with pytest.raises(NotFoundError):
        await store.get_rule("error_rate")
    assert await store.get_incident(incident.id) == resolved.incident  # still in the history
    assert await store.active_incidents() == []
    assert "error_rate" not in await store.load_states()
    assert await store.active_snoozes() == []
    with pytest.raises(NotFoundError):
        await store.delete_rule("error_rate", by="ana", now=later)


async def test_apply_plans_adds_changes_and_prunes_in_one_go(store: AnyStore) -> None:
    current = await store.list_rules()
    latency = next(r for r in current if r.name == "gateway_latency")
    wanted = [dataclasses.replace(latency, warning=150.0), SLOW, HEARTBEAT]
    wanted += [r for r in current if r.name not in {"gateway_latency", "error_rate"}]
    before = await store.last_event_id()
    plan = await store.apply_rules(wanted, by="ci", now=T0, dry_run=True)
    assert [r.name for r in plan.added] == [SLOW.name, HEARTBEAT.name]
    assert [(r.name, c) for r, c in plan.changed] == [
        ("gateway_latency", {"warning": [100.0, 150.0]})
    ]
    assert plan.removed == [] and len(plan.unchanged) == len(current) - 2
    assert await store.last_event_id() == before and plan.events == []
    assert await store.list_rules() == current

    plan = await store.apply_rules(wanted, by="ci", now=T0, prune=True)
    assert plan.removed == ["error_rate"]
    assert [e.kind for e in plan.events] == [
        EventKind.RULE_DELETED,
        EventKind.RULE_CREATED,
        EventKind.RULE_CREATED,
        EventKind.RULE_CHANGED,
    ]
    names = {r.name for r in await store.list_rules()}
    assert names == {r.name for r in wanted}
    assert (await store.get_rule("gateway_latency")).updated_by == "ci"
    # idempotent: applying the same again changes nothing
    again = await store.apply_rules(wanted, by="ci", now=T0, prune=True)
    assert (again.added, again.changed, again.removed, again.events) == ([], [], [], [])


async def test_apply_is_all_or_nothing(store: AnyStore) -> None:
    current = await store.list_rules()
    with pytest.raises(ValidationError, match="at most"):
        await store.apply_rules(
            [*current, SLOW, HEARTBEAT], by="ci", now=T0, max_rules=len(current) + 1
        )
    with pytest.raises(ValidationError, match="twice"):
        await store.apply_rules([SLOW, SLOW], by="ci", now=T0)
    assert await store.list_rules() == current


async def test_series_of_a_split_rule_have_their_own_streaks_and_incidents(store: AnyStore) -> None:
    await store.add_rule(BY_SHARD, by="ana", now=T0)
    rules = await store.list_rules()
    evaluator = Evaluator(rules, new_id=lambda: uuid.uuid4())
    events = []
    for i in range(2):
        now = T0 + timedelta(seconds=30 * i)
        readings = {"gateway_latency": {"shard-0": (250.0, now), "shard-1": (250.0, now)}}
        result = evaluator.evaluate_series(readings, now=now)
        events += await store.commit_cycle(samples=[], result=result, now=now)
    opened = sorted(
        (e.incident.rule, e.incident.instance)
        for e in events
        if e.kind is EventKind.INCIDENT_OPENED and e.incident is not None
    )
    assert opened == [
        ("gateway_latency", None),
        ("latency-by-shard", "shard-0"),
        ("latency-by-shard", "shard-1"),
    ]
    states = await store.load_states()
    for key in ("latency-by-shard/shard-0", "latency-by-shard/shard-1", "gateway_latency"):
        assert states[key] == evaluator.states()[key]
    restarted = Evaluator(rules, states=states)
    assert restarted.series("latency-by-shard") == ["shard-0", "shard-1"]
    for incident in await store.active_incidents():
        assert await store.get_incident(incident.id) == incident
    # the database (or the fake) refuses a second open incident for one series
    [one] = [i for i in await store.active_incidents() if i.instance == "shard-0"]
    twin = dataclasses.replace(one, id=uuid.uuid4())
    with pytest.raises(DuplicateIncidentError):
        await store.commit_cycle(
            samples=[],
            result=CycleResult(events=[Event.for_incident(EventKind.INCIDENT_OPENED, twin, at=T0)]),
            now=T0,
        )


async def test_composite_incidents_keep_their_condition_and_values(store: AnyStore) -> None:
    await store.add_rule(SLOW, by="ana", now=T0)
    evaluator = Evaluator([SLOW])
    events = []
    for i in range(2):
        now = T0 + timedelta(seconds=30 * i)
        result = evaluator.evaluate({"command_p95_latency": 612, "error_rate": 7.5}, now=now)
        events += await store.commit_cycle(samples=[], result=result, now=now)
    [opened] = events
    assert opened.incident is not None
    stored = await store.get_incident(opened.incident.id)
    assert stored == opened.incident
    assert (stored.rule, stored.condition, stored.values, stored.no_data) == (
        SLOW.name,
        SLOW.condition,
        {"command_p95_latency": 612.0, "error_rate": 7.5},
        False,
    )
    [from_log] = [e for e in await store.events_after(0) if e.kind is EventKind.INCIDENT_OPENED]
    assert from_log.incident == stored and from_log.rule == SLOW.name


async def test_a_snooze_names_any_rule(store: AnyStore) -> None:
    await store.add_rule(HEARTBEAT, by="ana", now=T0)
    snooze = Snooze.for_duration(
        HEARTBEAT.name, duration=timedelta(hours=1), reason="maintenance", by="ana", now=T0
    )
    await store.set_snooze(snooze)
    assert [s.metric for s in await store.active_snoozes(now=T0)] == [HEARTBEAT.name]


async def test_latest_readings_carry_each_instance_newest_sample_and_its_time(
    store: AnyStore,
) -> None:
    minute = timedelta(minutes=1)
    await store.add_samples(
        [
            Sample("bot-1", "gateway_latency", T0, 1.0),
            Sample("bot-1", "gateway_latency", T0 + minute, 3.0),
            Sample("bot-2", "gateway_latency", T0, 7.0),
            Sample("bot-2", "error_rate", T0 + minute, 0.5),
        ]
    )
    assert await store.latest_readings(since=T0) == {
        "gateway_latency": {"bot-1": (3.0, T0 + minute), "bot-2": (7.0, T0)},
        "error_rate": {"bot-2": (0.5, T0 + minute)},
    }
    assert await store.latest_readings(since=T0 + minute, exclude_instance="bot-2") == {
        "gateway_latency": {"bot-1": (3.0, T0 + minute)},
    }
