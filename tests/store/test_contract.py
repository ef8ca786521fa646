"""The runtime's ports, one set of checks for ``MemoryStore`` and for ``Store`` on SQLite and
PostgreSQL: the fake the runtime's unit tests use cannot drift from the real thing.

Each check goes through what the runtime calls (``vigil.runtime.ports``) and the actions that
change what it sees (incident transitions, rules, snoozes, windows, channels)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from vigil.core import (
    DEFAULT_RULES,
    CycleResult,
    DuplicateIncidentError,
    Event,
    EventKind,
    IllegalTransitionError,
    Incident,
    NotFoundError,
    RuleState,
    Sample,
    Severity,
    Status,
    ValidationError,
    resolve,
)
from vigil.core.silences import MaintenanceWindow, Snooze
from vigil.notify import Channel, idempotency_key
from vigil.runtime.ports import MonitorStore, NotifierStore, SilenceStore
from vigil.store import Claim, OutboxStatus

from .conftest import HOOK, T0, AnyStore, make_incident

LEASE = timedelta(minutes=5)
LATENCY = "gateway_latency"


@pytest.fixture
def store(any_store: AnyStore) -> AnyStore:
    return any_store


def _ports(store: AnyStore) -> tuple[MonitorStore, NotifierStore, SilenceStore]:
    """Both kinds of store are what the runtime's parts take (checked by mypy)."""
    return store, store, store


async def _open(store: AnyStore, incident: Incident | None = None, **fields: object) -> Incident:
    opened = incident if incident is not None else make_incident(**fields)  # type: ignore[arg-type]
    event = Event.for_incident(EventKind.INCIDENT_OPENED, opened, at=opened.triggered_at)
    [stored] = await store.commit_cycle(
        samples=[], result=CycleResult(events=[event]), now=opened.triggered_at
    )
    assert stored.incident is not None
    return stored.incident


async def _cycle(store: AnyStore, *events: Event, **changed: RuleState) -> list[Event]:
    return await store.commit_cycle(
        samples=[], result=CycleResult(events=list(events), changed=changed), now=T0
    )


async def _channel(store: AnyStore, name: str = "ops", **fields: object) -> None:
    await store.add_channel({"name": name, "url": HOOK, **fields}, now=T0)


# -- the monitor's side ---------------------------------------------------------------------


async def test_a_new_store_has_the_default_rules_and_nothing_else(store: AnyStore) -> None:
    _ports(store)
    assert await store.list_rules() == sorted(DEFAULT_RULES, key=lambda rule: rule.metric)
    assert await store.load_states() == {}
    assert await store.active_incidents() == []
    assert await store.events_after(0) == []
    assert await store.last_event_id() == 0
    assert await store.latest_values(since=T0) == {}


async def test_a_cycle_stores_samples_states_incidents_and_events_together(
    store: AnyStore,
) -> None:
    incident = make_incident()
    opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0)
    samples = [Sample("bot-1", LATENCY, T0, 150.0), Sample("bot-2", LATENCY, T0, 90.0)]
    state = RuleState(breach_streak=2, incident=incident)
    streak_only = RuleState(breach_streak=1)
    result = CycleResult(events=[opened], changed={LATENCY: state, "error_rate": streak_only})
    [stored] = await store.commit_cycle(samples=samples, result=result, now=T0)
    assert stored.id == 1 and stored.incident == incident

    assert await store.load_states() == {LATENCY: state, "error_rate": streak_only}
    assert await store.active_incidents() == [incident]
    assert await store.latest_values(since=T0) == {LATENCY: [150.0, 90.0]}
    assert await store.latest_values(since=T0, exclude_instance="bot-1") == {LATENCY: [90.0]}
    assert await store.events_after(0) == [stored]
    assert await store.last_event_id() == 1

    # the incident is updated (peak, escalation) and resolved by later cycles
    worse = dataclasses.replace(incident, severity=Severity.CRITICAL, peak_value=250.0)
    escalated = Event.for_incident(
        EventKind.INCIDENT_ESCALATED, worse, at=T0, data={"from": "warning"}
    )
    [second] = await _cycle(store, escalated, **{LATENCY: RuleState(incident=worse)})
    assert second.incident == worse and await store.active_incidents() == [worse]
    done, resolved = resolve(worse, now=T0 + timedelta(minutes=5))
    await _cycle(store, resolved, **{LATENCY: RuleState()})
    assert await store.active_incidents() == []
    assert await store.load_states() == {LATENCY: RuleState(), "error_rate": streak_only}
    assert [e.incident for e in await store.events_after(2)] == [done]


async def test_a_manual_resolution_leaves_the_series_idle_after_a_restart(
    store: AnyStore,
) -> None:
    """As the live evaluator does (``Evaluator.sync``): after a restart the series must not
    resume the streaks that opened the incident, or one breach would open the next at once."""
    incident = make_incident()
    opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0)
    state = RuleState(breach_streak=3, critical_streak=1, incident=incident)
    await store.commit_cycle(samples=[], result=CycleResult([opened], {LATENCY: state}), now=T0)
    await store.resolve_incident(incident.id, by="al", now=T0 + timedelta(minutes=1))
    assert await store.load_states() == {}


async def test_a_manual_resolution_keeps_the_series_flapping_after_a_restart(
    store: AnyStore,
) -> None:
    """As the live evaluator does: resolving by hand does not calm a flapping series."""
    incident = dataclasses.replace(make_incident(), flapping=True)
    opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0)
    state = RuleState(breach_streak=3, incident=incident, flap_history="cnc", flapping=True)
    await store.commit_cycle(samples=[], result=CycleResult([opened], {LATENCY: state}), now=T0)
    await store.resolve_incident(incident.id, by="al", now=T0 + timedelta(minutes=1))
    assert await store.load_states() == {LATENCY: RuleState(flap_history="cnc", flapping=True)}


async def test_a_normal_streak_counts_only_while_an_incident_is_open(store: AnyStore) -> None:
    await _cycle(store, **{LATENCY: RuleState(breach_streak=1, normal_streak=2)})
    assert await store.load_states() == {LATENCY: RuleState(breach_streak=1)}


async def test_open_incidents_are_most_severe_first_then_newest(store: AnyStore) -> None:
    older = await _open(store, metric="error_rate", at=T0)
    critical = await _open(store, metric="memory_usage", severity=Severity.CRITICAL, at=T0)
    newer = await _open(store, at=T0 + timedelta(minutes=1))
    acknowledged, _ = await store.acknowledge_incident(older.id, by="al", now=T0)
    assert await store.active_incidents() == [critical, newer, acknowledged]


async def test_a_second_open_incident_for_a_rule_is_refused_and_nothing_is_written(
    store: AnyStore,
) -> None:
    first = await _open(store)
    before = await store.events_after(0)
    second = make_incident()
    opened = Event.for_incident(EventKind.INCIDENT_OPENED, second, at=T0)
    with pytest.raises(DuplicateIncidentError):
        await store.commit_cycle(
            samples=[Sample("bot-1", LATENCY, T0, 1.0)],
            result=CycleResult(events=[opened], changed={LATENCY: RuleState(incident=second)}),
            now=T0,
        )
    assert await store.events_after(0) == before
    assert await store.active_incidents() == [first]
    assert await store.latest_values(since=T0) == {}
    assert await store.load_states() == {LATENCY: RuleState(incident=first)}


async def test_a_cycle_never_undoes_what_people_did_meanwhile(store: AnyStore) -> None:
    incident = await _open(store)
    await store.acknowledge_incident(incident.id, by="ana", now=T0)
    # the evaluator still holds the unacknowledged copy: its update keeps the acknowledgement
    peaked = dataclasses.replace(incident, peak_value=300.0, last_value=300.0)
    await _cycle(store, **{LATENCY: RuleState(incident=peaked)})
    [now_open] = await store.active_incidents()
    assert (now_open.status, now_open.acknowledged_by, now_open.peak_value) == (
        Status.ACKNOWLEDGED,
        "ana",
        300.0,
    )
    # resolved by a person meanwhile: the cycle's update is refused, nothing of it written
    await store.resolve_incident(incident.id, by="ana", now=T0)
    last = await store.last_event_id()
    with pytest.raises(IllegalTransitionError):
        await store.commit_cycle(
            samples=[Sample("bot-1", LATENCY, T0, 1.0)],
            result=CycleResult(changed={LATENCY: RuleState(incident=peaked)}),
            now=T0,
        )
    assert await store.last_event_id() == last
    assert await store.latest_values(since=T0) == {}


async def test_latest_values_take_each_instance_newest_sample(store: AnyStore) -> None:
    minute = timedelta(minutes=1)
    await store.add_samples(
        [
            Sample("bot-1", LATENCY, T0, 1.0),
            Sample("bot-1", LATENCY, T0 + minute, 2.0),
            Sample("bot-2", LATENCY, T0 + minute, 7.0),
            Sample("bot-2", "error_rate", T0, 0.5),
            Sample("bot-1", LATENCY, T0 + minute, 3.0),  # same time, stored last: it wins
        ]
    )
    assert await store.latest_values(since=T0 + minute) == {LATENCY: [3.0, 7.0]}
    assert await store.latest_values(since=T0, exclude_instance="bot-2") == {LATENCY: [3.0]}
    assert await store.latest_values(since=T0 + 2 * minute) == {}


async def test_events_are_numbered_in_order_and_read_back_as_stored(store: AnyStore) -> None:
    events = [
        Event(kind=EventKind.LEADER_CHANGED, at=T0, data={"instance": f"i{n}", "n": (n, n)})
        for n in range(5)
    ]
    stored = await store.append_events(events)
    assert [e.id for e in stored] == [1, 2, 3, 4, 5]
    read = await store.events_after(2, limit=2)
    assert [e.id for e in read] == [3, 4]
    assert read[0].data == {"instance": "i2", "n": [2, 2]}  # through JSON, as a log stores it
    assert await store.events_after(5) == []
    with pytest.raises(ValidationError) as caught:
        await store.append_events([Event(kind=EventKind.LEADER_CHANGED, at=T0, data={"x": {1}})])
    assert caught.value.field == "data"
    with pytest.raises(ValidationError) as caught:
        await store.events_after(-1)
    assert caught.value.field == "last_id"
    assert await store.last_event_id() == 5


async def test_a_rule_change_is_stored_with_its_event(store: AnyStore) -> None:
    rule, event = await store.update_rule(LATENCY, {"warning": 120}, by="ana", now=T0)
    assert rule.warning == 120 and rule.updated_by == "ana"
    assert (event.kind, event.metric, event.by) == (EventKind.RULE_CHANGED, LATENCY, "ana")
    assert event.data["changes"] == {"warning": [100.0, 120.0]}
    assert [r for r in await store.list_rules() if r.metric == LATENCY] == [rule]
    with pytest.raises(NotFoundError):
        await store.update_rule("no_such_rule", {"warning": 1}, by="ana", now=T0)
    with pytest.raises(ValidationError):
        await store.update_rule(LATENCY, {"warning": 900}, by="ana", now=T0)  # above critical


async def test_incident_transitions_and_their_errors(store: AnyStore) -> None:
    first = await _open(store)
    second = await _open(store, metric="error_rate")
    acked, event = await store.acknowledge_incident(first.id, by="ana", now=T0, notes="on it")
    assert (acked.status, event.kind, event.incident) == (
        Status.ACKNOWLEDGED,
        EventKind.INCIDENT_ACKNOWLEDGED,
        acked,
    )
    with pytest.raises(IllegalTransitionError):
        await store.acknowledge_incident(first.id, by="ana", now=T0)
    [(only, _)] = await store.acknowledge_all(by="bo", now=T0)
    assert only.id == second.id and only.acknowledged_by == "bo"
    resolved, _ = await store.resolve_incident(first.id, by="ana", now=T0)
    assert resolved.status is Status.RESOLVED
    with pytest.raises(IllegalTransitionError):
        await store.resolve_incident(first.id, by="ana", now=T0)
    with pytest.raises(NotFoundError):
        await store.resolve_incident(uuid.uuid4(), by="ana", now=T0)
    with pytest.raises(NotFoundError):
        await store.acknowledge_incident("not-a-uuid", by="ana", now=T0)
    assert await store.get_incident(first.id) == resolved


# -- silences -------------------------------------------------------------------------------


async def test_snoozes_are_set_replaced_ended_and_expired_once(store: AnyStore) -> None:
    hour = timedelta(hours=1)
    first = Snooze(metric=LATENCY, until=T0 + hour, reason="deploy", by="ana", created_at=T0)
    [started] = await store.set_snooze(first)
    assert started.kind is EventKind.SNOOZE_STARTED
    assert await store.active_snoozes() == [first]

    later = T0 + timedelta(minutes=10)
    second = Snooze(metric=LATENCY, until=later + hour, reason="more", by="bo", created_at=later)
    ended, started = await store.set_snooze(second)
    assert (ended.kind, ended.by, ended.at, ended.data["expired"]) == (
        EventKind.SNOOZE_ENDED,
        "bo",
        later,
        False,
    )
    assert await store.active_snoozes() == [second]
    assert await store.active_snoozes(now=later + 2 * hour) == []

    lifted = await store.end_snooze(LATENCY, by="cy", now=later + timedelta(minutes=1))
    assert (lifted.by, lifted.data["expired"]) == ("cy", False)
    assert await store.active_snoozes() == []
    with pytest.raises(NotFoundError):
        await store.end_snooze(LATENCY, by="cy", now=later)
    with pytest.raises(NotFoundError):
        await store.set_snooze(dataclasses.replace(first, metric="no_such_rule"))
    with pytest.raises(ValidationError) as caught:
        await store.set_snooze(first.to_dict())  # type: ignore[arg-type]
    assert caught.value.field == "snooze"

    short = Snooze(metric="error_rate", until=T0 + hour, reason="x", by="ana", created_at=T0)
    await store.set_snooze(short)
    assert await store.expire_snoozes(now=T0) == []
    [expired] = await store.expire_snoozes(now=T0 + 2 * hour)
    assert (expired.metric, expired.at, expired.by, expired.data["expired"]) == (
        "error_rate",
        T0 + hour,
        None,
        True,
    )
    assert await store.expire_snoozes(now=T0 + 2 * hour) == []  # recorded once
    assert await store.active_snoozes() == []


async def test_windows_are_added_listed_and_removed_with_events(store: AnyStore) -> None:
    window = MaintenanceWindow.once(
        "db-move", start=T0, end=T0 + timedelta(hours=2), metrics=["memory_usage"], by="ana"
    )
    added, event = await store.add_window(window, now=T0)
    assert added == window and (event.kind, event.by) == (EventKind.MAINTENANCE_ADDED, "ana")
    everything = await store.add_window(
        {"name": "all", "kind": "once", "start": T0.isoformat(), "end": T0.isoformat()}
        | {"end": (T0 + timedelta(hours=1)).isoformat()},
        now=T0,
    )
    assert [w.name for w in await store.list_windows()] == ["all", "db-move"]
    assert everything[0].metrics is None
    with pytest.raises(ValidationError) as caught:
        await store.add_window(window, now=T0)
    assert caught.value.field == "name"
    with pytest.raises(ValidationError) as caught:
        await store.add_window(
            dataclasses.replace(window, name="other", metrics=frozenset({"nope"})), now=T0
        )
    assert caught.value.field == "metrics"
    removed = await store.delete_window("db-move", by="bo", now=T0)
    assert (removed.kind, removed.by, removed.data["window"]["name"]) == (
        EventKind.MAINTENANCE_REMOVED,
        "bo",
        "db-move",
    )
    assert [w.name for w in await store.list_windows()] == ["all"]
    with pytest.raises(NotFoundError):
        await store.delete_window("db-move", by="bo", now=T0)


# -- channels and the outbox ------------------------------------------------------------------


async def test_channels_hear_the_incident_events_they_subscribe_to(store: AnyStore) -> None:
    await _channel(store, "everything")
    await _channel(store, "critical-only", min_severity="critical")
    await _channel(store, "resolutions", events=["resolved"])
    await _channel(store, "off", enabled=False)
    await store.append_events([Event(kind=EventKind.LEADER_CHANGED, at=T0, data={})])
    incident = await _open(store)
    opened = await store.last_event_id()
    [row] = await store.list_notifications()
    assert (row.channel, row.event_id, row.incident_id, row.status, row.attempts) == (
        "everything",
        opened,
        incident.id,
        OutboxStatus.PENDING,
        0,
    )
    assert row.idempotency_key == idempotency_key(incident.id, opened, "everything")
    _, resolved = await store.resolve_incident(incident.id, by="ana", now=T0)
    rows = await store.list_notifications(incident_id=incident.id)
    # a warning: the critical-only channel hears none of it
    assert sorted(r.channel for r in rows if r.event_id == resolved.id) == [
        "everything",
        "resolutions",
    ]
    assert set(await store.delivery_channels()) == {
        "everything",
        "critical-only",
        "resolutions",
        "off",
    }


async def test_claims_keep_one_incident_in_order_and_hold_rows_for_their_lease(
    store: AnyStore,
) -> None:
    await _channel(store)
    incident = await _open(store)
    other = await _open(store, metric="memory_usage")
    _, acked = await store.acknowledge_incident(incident.id, by="ana", now=T0)
    first = await store.claim_notifications(now=T0, lease=LEASE)
    # the acknowledgement waits behind the opening of the same incident
    assert sorted(str(d.item.incident_id) for d in first) == sorted(
        [str(incident.id), str(other.id)]
    )
    assert all(d.event.kind is EventKind.INCIDENT_OPENED for d in first)
    assert all((d.item.attempts, d.item.next_attempt_at) == (1, T0 + LEASE) for d in first)
    assert await store.claim_notifications(now=T0 + LEASE - timedelta(seconds=1), lease=LEASE) == []
    again = await store.claim_notifications(now=T0 + LEASE, lease=LEASE)
    assert sorted(d.item.attempts for d in again) == [2, 2]
    for delivery in again:
        await store.settle_notification(delivery.item.id, now=T0)
    [third] = await store.claim_notifications(now=T0, lease=LEASE)
    assert third.event.id == acked.id
    with pytest.raises(ValidationError) as caught:
        await store.claim_notifications(now=T0, lease=timedelta(0))
    assert caught.value.field == "lease"


async def test_a_cycle_claims_its_own_notifications_as_a_claim_would(store: AnyStore) -> None:
    """``Claim``: the dispatcher in the monitor's process gets the cycle's rows from the
    cycle's transaction, leased exactly as ``claim_notifications`` leases them."""
    await _channel(store, "a")
    await _channel(store, "b")
    incident = make_incident()
    opening = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0)
    claim = Claim(LEASE)
    [opened] = await store.commit_cycle(
        samples=[], result=CycleResult(events=[opening]), now=T0, claim=claim
    )
    assert sorted(d.item.channel for d in claim.deliveries) == ["a", "b"]
    assert {name: type(c) for name, c in claim.channels.items()} == {"a": Channel, "b": Channel}
    assert all(d.event == opened for d in claim.deliveries)
    assert all(
        (d.item.attempts, d.item.next_attempt_at) == (1, T0 + LEASE) for d in claim.deliveries
    )
    assert all(d.item.status is OutboxStatus.PENDING for d in claim.deliveries)
    assert await store.claim_notifications(now=T0, lease=LEASE) == []  # held for the lease

    # Resolved while the openings are under way: the resolution waits behind them (one
    # incident reaches a channel in order), so this cycle claims nothing.
    _, resolution = resolve(incident, now=T0 + timedelta(seconds=1))
    later = Claim(LEASE)
    [resolved] = await store.commit_cycle(
        samples=[], result=CycleResult(events=[resolution]), now=T0, claim=later
    )
    assert later.deliveries == []

    # The dispatcher died without sending: the openings come back when the lease ends.
    assert await store.claim_notifications(now=T0 + LEASE - timedelta(seconds=1), lease=LEASE) == []
    again = await store.claim_notifications(now=T0 + LEASE, lease=LEASE)
    assert sorted((d.item.id, d.item.attempts) for d in again) == sorted(
        (d.item.id, 2) for d in claim.deliveries
    )
    await store.settle_sent([d.item.id for d in again], now=T0 + LEASE)
    resolutions = await store.claim_notifications(now=T0 + LEASE, lease=LEASE)
    assert [d.event.id for d in resolutions] == [resolved.id, resolved.id]


async def test_a_cycle_claims_a_batch_at_most_and_nothing_when_it_fails(store: AnyStore) -> None:
    await _channel(store)
    opened = [make_incident(metric=m) for m in (LATENCY, "error_rate", "memory_usage")]
    claim = Claim(LEASE, limit=2)
    await _cycle_claiming(store, claim, *opened)
    assert len(claim.deliveries) == 2
    [rest] = await store.claim_notifications(now=T0, lease=LEASE)  # left for any dispatcher
    assert {rest.item.id} | {d.item.id for d in claim.deliveries} == {
        item.id for item in await store.list_notifications()
    }
    refused = Claim(LEASE)
    with pytest.raises(DuplicateIncidentError):  # a second open incident: nothing written
        await _cycle_claiming(store, refused, make_incident())
    assert refused.deliveries == []
    with pytest.raises(ValidationError) as caught:
        Claim(timedelta(0))
    assert caught.value.field == "lease"


async def test_a_claimed_group_message_is_under_way_so_a_later_member_is_told_after_it(
    store: AnyStore,
) -> None:
    await _channel(store)
    window = timedelta(minutes=1)
    first = [make_incident(metric=m) for m in (LATENCY, "error_rate")]
    claim = Claim(LEASE)
    await _cycle_claiming(store, claim, *first, window=window)
    [delivery] = claim.deliveries
    assert delivery.group is not None and delivery.group.size == 2
    # A member opening meanwhile is not folded into a message whose attempt began: it has a
    # follow-up of its own, due a window after the group's message.
    await _cycle_claiming(store, Claim(LEASE), make_incident(metric="memory_usage"), window=window)
    await store.settle_sent([delivery.item.id], now=T0)
    assert await store.claim_notifications(now=T0, lease=LEASE) == []
    [follow_up] = await store.claim_notifications(now=T0 + window, lease=LEASE)
    assert follow_up.group is not None and follow_up.group.size == 3


async def _cycle_claiming(
    store: AnyStore, claim: Claim, *opened: Incident, window: timedelta = timedelta(0)
) -> list[Event]:
    return await store.commit_cycle(
        samples=[],
        result=CycleResult(
            events=[Event.for_incident(EventKind.INCIDENT_OPENED, i, at=T0) for i in opened]
        ),
        now=T0,
        group_window=window,
        claim=claim,
    )


async def test_settling_sent_retried_failed_and_counted(store: AnyStore) -> None:
    for name in ("a", "b", "c"):
        await _channel(store, name)
    await _open(store)
    a, b, c = sorted(
        await store.claim_notifications(now=T0, lease=LEASE), key=lambda d: d.item.channel
    )
    sent = await store.settle_notification(a.item.id, now=T0 + timedelta(seconds=1))
    assert (sent.status, sent.sent_at) == (OutboxStatus.SENT, T0 + timedelta(seconds=1))
    late = await store.settle_notification(
        a.item.id, now=T0, error="timeout", retry_at=T0 + timedelta(minutes=1)
    )
    assert late == sent  # a sent row never becomes pending again
    retry_at = T0 + timedelta(seconds=20)
    retried = await store.settle_notification(
        b.item.id, now=T0, error="x" * 3000, retry_at=retry_at
    )
    assert (retried.status, retried.next_attempt_at) == (OutboxStatus.PENDING, retry_at)
    assert retried.last_error == "x" * 2000
    counts = await store.outbox_counts()
    assert (counts.pending, counts.sent, counts.failed, counts.next_attempt_at) == (
        2,
        1,
        0,
        retry_at,  # before c's claim runs out
    )
    failed = await store.settle_notification(c.item.id, now=T0, error="gone")
    assert failed.status is OutboxStatus.FAILED
    assert await store.settle_sent([a.item.id, b.item.id, c.item.id], now=T0) == 1  # only b
    counts = await store.outbox_counts()
    assert (counts.pending, counts.sent, counts.failed, counts.next_attempt_at) == (0, 2, 1, None)
    assert await store.list_notifications(status="failed") == [failed]
    assert await store.settle_sent([], now=T0) == 0
    with pytest.raises(NotFoundError):
        await store.settle_notification(9999, now=T0)
    with pytest.raises(ValidationError):
        await store.list_notifications(status="lost")


async def test_reminders_follow_the_last_message_and_are_written_once(store: AnyStore) -> None:
    await _channel(store, renotify_minutes=10)
    incident = await _open(store, severity=Severity.CRITICAL)
    [last] = await store.last_notifications([incident.id])
    assert (last.channel, last.repeats, last.pending, last.at) == ("ops", 0, True, T0)
    [delivery] = await store.claim_notifications(now=T0, lease=LEASE)
    await store.settle_notification(delivery.item.id, now=T0 + timedelta(seconds=2))
    [last] = await store.last_notifications([incident.id])
    assert (last.pending, last.at) == (False, T0 + timedelta(seconds=2))
    later = T0 + timedelta(minutes=10)
    reminder = await store.enqueue_reminder(last, now=later)
    assert reminder is not None
    assert (reminder.repeat, reminder.event_id, reminder.created_at) == (1, last.event_id, later)
    assert await store.enqueue_reminder(last, now=later) is None
    [last] = await store.last_notifications([incident.id])
    assert (last.repeats, last.pending) == (1, True)
    assert await store.last_notifications([]) == []


async def test_channel_changes_are_events_and_a_removal_fails_its_rows(store: AnyStore) -> None:
    await _channel(store)
    stored, changed = await store.update_channel("ops", {"min_severity": "critical"}, now=T0)
    assert stored.channel.min_severity is Severity.CRITICAL
    assert changed.data["changed"] == ["min_severity"]
    assert [c.name for c in await store.list_channels()] == ["ops"]
    masked = stored.to_dict()["url"]  # sent back as an edit form shows it: the URL is kept
    kept, _ = await store.update_channel("ops", {"url": masked, "min_severity": "info"}, now=T0)
    assert kept.channel.url == HOOK and await store.get_channel("ops") == kept
    for name, changes, field in [
        ("ops", {"name": "renamed"}, "name"),
        ("ops", {"url": "nope://x"}, "url"),
    ]:
        with pytest.raises(ValidationError) as caught:
            await store.update_channel(name, changes, now=T0)
        assert caught.value.field == field
    with pytest.raises(NotFoundError):
        await store.update_channel("missing", {"enabled": True}, now=T0)
    with pytest.raises(ValidationError) as caught:
        await _channel(store)
    assert caught.value.field == "name"
    await _open(store)
    removed = await store.delete_channel("ops", now=T0, by="ana")
    assert (removed.kind, removed.data) == (EventKind.CHANNEL_REMOVED, {"channel": {"name": "ops"}})
    [row] = await store.list_notifications()
    assert (row.status, row.last_error) == (OutboxStatus.FAILED, "the channel was removed")
    assert await store.delivery_channels() == {}
    with pytest.raises(NotFoundError):
        await store.delete_channel("ops", now=T0)
    with pytest.raises(NotFoundError):
        await store.get_channel("ops")


# -- incident groups ----------------------------------------------------------------------------


async def test_incidents_opening_together_share_a_group_and_one_message(store: AnyStore) -> None:
    await _channel(store)
    window = timedelta(minutes=1)
    opened = [
        make_incident(metric=metric, severity=severity)
        for metric, severity in (
            (LATENCY, Severity.CRITICAL),
            ("error_rate", Severity.WARNING),
            ("memory_usage", Severity.WARNING),
        )
    ]
    stored = await store.commit_cycle(
        samples=[],
        result=CycleResult(
            events=[Event.for_incident(EventKind.INCIDENT_OPENED, i, at=T0) for i in opened]
        ),
        now=T0,
        group_window=window,
    )
    groups = {event.incident.group for event in stored if event.incident is not None}
    assert len(groups) == 1 and None not in groups
    [delivery] = await store.claim_notifications(now=T0, lease=LEASE)
    assert delivery.group is not None
    assert (delivery.group.size, delivery.group.severity) == (3, Severity.CRITICAL)
    assert delivery.item.group_id in groups
    await store.settle_sent([delivery.item.id], now=T0)

    # Resolved one by one: only the last resolution is a message, about the whole group.
    for event in stored:
        assert event.incident is not None
        _, resolved = resolve(event.incident, now=T0 + timedelta(minutes=5))
        await _cycle(store, resolved)
    [last] = await store.claim_notifications(now=T0 + timedelta(minutes=5), lease=LEASE)
    assert last.group is not None and last.group.status is Status.RESOLVED
    assert await store.claim_notifications(now=T0 + timedelta(minutes=5), lease=LEASE) == []


async def test_without_a_window_nothing_is_grouped(store: AnyStore) -> None:
    await _channel(store)
    incidents = [make_incident(metric=metric) for metric in (LATENCY, "error_rate")]
    stored = await store.commit_cycle(
        samples=[],
        result=CycleResult(
            events=[Event.for_incident(EventKind.INCIDENT_OPENED, i, at=T0) for i in incidents]
        ),
        now=T0,
    )
    assert [event.incident.group for event in stored if event.incident is not None] == [
        None,
        None,
    ]
    deliveries = await store.claim_notifications(now=T0, lease=LEASE)
    assert len(deliveries) == 2 and all(d.group is None for d in deliveries)
