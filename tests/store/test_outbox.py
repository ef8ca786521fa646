"""The outbox: written in the transaction of its events, claimed and settled by the
dispatcher, reminders keyed by their number."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from vigil.core.errors import DuplicateIncidentError, NotFoundError, ValidationError
from vigil.core.evaluation import CycleResult
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity
from vigil.notify import idempotency_key
from vigil.store import OutboxStatus, Store

from .conftest import T0, add_channel, make_incident, open_incident

LEASE = timedelta(minutes=5)


async def _escalate(store: Store, incident: Incident, *, at: timedelta) -> Event:
    critical = dataclasses.replace(incident, severity=Severity.CRITICAL, threshold=200.0)
    event = Event.for_incident(
        EventKind.INCIDENT_ESCALATED, critical, at=T0 + at, data={"from": "warning"}
    )
    [stored] = await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=T0)
    return stored


# -- the outbox, written with its events -------------------------------------------------------


async def test_an_incident_event_writes_a_row_for_each_channel_that_wants_it(
    store: Store,
) -> None:
    await add_channel(store, "everything")
    await add_channel(store, "critical-only", min_severity="critical")
    await add_channel(store, "resolutions", events=["resolved"])
    await add_channel(store, "off", enabled=False)
    [*_, last] = await store.events_after(0)  # the channels' own events

    incident = await open_incident(store)  # a warning
    [opened] = await store.events_after(last.id or 0)
    rows = await store.list_notifications()
    assert [row.channel for row in rows] == ["everything"]
    [row] = rows
    assert row.idempotency_key == idempotency_key(incident.id, opened.id or 0, "everything")
    assert (row.event_id, row.incident_id, row.status, row.attempts, row.repeat) == (
        opened.id,
        incident.id,
        OutboxStatus.PENDING,
        0,
        0,
    )

    escalated = await _escalate(store, incident, at=timedelta(minutes=1))
    assert escalated.id is not None
    new = [row.channel for row in await store.list_notifications() if row.event_id == escalated.id]
    assert sorted(new) == ["critical-only", "everything"]

    _, acknowledged = await store.acknowledge_incident(incident.id, by="ana", now=T0)
    _, resolved = await store.resolve_incident(incident.id, by="ana", now=T0)
    by_event = {
        event_id: sorted(
            r.channel for r in await store.list_notifications() if r.event_id == event_id
        )
        for event_id in (acknowledged.id, resolved.id)
    }
    assert by_event == {
        acknowledged.id: ["critical-only", "everything"],
        resolved.id: ["critical-only", "everything", "resolutions"],
    }


async def test_the_cycle_reads_the_channels_once_for_its_notifications(store: Store) -> None:
    """Subscriptions and digest deliveries come from one read of the channels: every statement
    of the cycle's transaction delays its message."""
    await add_channel(store, "live")
    await add_channel(store, "daily", delivery="daily")
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(store._engine.sync_engine, "before_cursor_execute", record)
    try:
        await open_incident(store)
    finally:
        event.remove(store._engine.sync_engine, "before_cursor_execute", record)
    assert len([s for s in statements if "FROM notification_channels" in s]) == 1
    assert [row.channel for row in await store.list_notifications()] == ["live"]


async def test_events_that_are_not_about_incidents_write_no_rows(store: Store) -> None:
    await add_channel(store)
    await store.update_rule("gateway_latency", {"warning": 120}, by="ana", now=T0)
    await store.append_events([Event(kind=EventKind.LEADER_CHANGED, at=T0, data={})])
    assert await store.list_notifications() == []


async def test_a_cycle_that_fails_writes_no_notification(store: Store) -> None:
    await add_channel(store)
    await open_incident(store)
    before = await store.list_notifications()
    second = make_incident()  # the same rule: the database refuses a second open incident
    event = Event.for_incident(EventKind.INCIDENT_OPENED, second, at=T0)
    with pytest.raises(DuplicateIncidentError):
        await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=T0)
    assert await store.list_notifications() == before


async def test_removing_a_channel_fails_what_it_has_not_received(store: Store) -> None:
    await add_channel(store)
    await open_incident(store)
    await store.delete_channel("ops", now=T0)
    [row] = await store.list_notifications()
    assert (row.status, row.last_error) == (OutboxStatus.FAILED, "the channel was removed")
    assert await store.claim_notifications(now=T0, lease=LEASE) == []
    with pytest.raises(NotFoundError):
        await store.delete_channel("ops", now=T0)


# -- claiming and settling -----------------------------------------------------------------------


async def test_a_claim_counts_the_attempt_and_holds_the_row_for_the_lease(store: Store) -> None:
    await add_channel(store)
    incident = await open_incident(store)
    [delivery] = await store.claim_notifications(now=T0, lease=LEASE)
    assert delivery.event.kind is EventKind.INCIDENT_OPENED
    assert delivery.event.incident == incident
    assert (delivery.item.attempts, delivery.item.next_attempt_at) == (1, T0 + LEASE)
    # the claimer died without settling: nobody else gets it until the lease is over
    assert await store.claim_notifications(now=T0 + LEASE - timedelta(seconds=1), lease=LEASE) == []
    [again] = await store.claim_notifications(now=T0 + LEASE, lease=LEASE)
    assert (again.item.id, again.item.attempts) == (delivery.item.id, 2)


async def test_one_incident_reaches_a_channel_in_order(store: Store) -> None:
    await add_channel(store)
    incident = await open_incident(store)
    other = await open_incident(store, metric="memory_usage")
    await _escalate(store, incident, at=timedelta(minutes=1))
    first = await store.claim_notifications(now=T0 + timedelta(minutes=2), lease=LEASE)
    # the escalation waits behind the opening of the same incident; the other incident does not
    assert sorted(d.event.metric or "" for d in first) == ["gateway_latency", "memory_usage"]
    assert all(d.event.kind is EventKind.INCIDENT_OPENED for d in first)
    assert other.id in {d.item.incident_id for d in first}
    for delivery in first:
        await store.settle_notification(delivery.item.id, now=T0)
    [second] = await store.claim_notifications(now=T0 + timedelta(minutes=2), lease=LEASE)
    assert second.event.kind is EventKind.INCIDENT_ESCALATED


async def test_settling_sent_retry_and_failed(store: Store) -> None:
    await add_channel(store, "a")
    await add_channel(store, "b")
    await open_incident(store)
    a, b = sorted(
        await store.claim_notifications(now=T0, lease=LEASE), key=lambda d: d.item.channel
    )

    sent = await store.settle_notification(a.item.id, now=T0 + timedelta(seconds=1))
    assert (sent.status, sent.sent_at) == (OutboxStatus.SENT, T0 + timedelta(seconds=1))
    # a late report of a failure cannot make a sent row pending again
    still = await store.settle_notification(
        a.item.id, now=T0, error="timeout", retry_at=T0 + timedelta(minutes=1)
    )
    assert (still.status, still.last_error) == (OutboxStatus.SENT, None)

    retry_at = T0 + timedelta(seconds=20)
    retried = await store.settle_notification(
        b.item.id, now=T0, error="error=500", retry_at=retry_at
    )
    assert (retried.status, retried.next_attempt_at, retried.last_error) == (
        OutboxStatus.PENDING,
        retry_at,
        "error=500",
    )
    counts = await store.outbox_counts()
    assert (counts.pending, counts.sent, counts.failed) == (1, 1, 0)
    assert counts.next_attempt_at == retry_at

    [b_again] = await store.claim_notifications(now=retry_at, lease=LEASE)
    failed = await store.settle_notification(b_again.item.id, now=retry_at, error="error=500")
    assert (failed.status, failed.attempts) == (OutboxStatus.FAILED, 2)
    assert await store.list_notifications(status="failed") == [failed]
    counts = await store.outbox_counts()
    assert (counts.pending, counts.sent, counts.failed, counts.next_attempt_at) == (0, 1, 1, None)
    with pytest.raises(NotFoundError):
        await store.settle_notification(9999, now=T0)
    with pytest.raises(ValidationError):
        await store.list_notifications(status="lost")


async def test_reminders_are_numbered_and_written_once(store: Store) -> None:
    await add_channel(store, renotify_minutes=10)
    incident = await open_incident(store, severity=Severity.CRITICAL)
    [last] = await store.last_notifications([incident.id])
    assert (last.channel, last.repeats, last.pending, last.at) == ("ops", 0, True, T0)

    [delivery] = await store.claim_notifications(now=T0, lease=LEASE)
    sent_at = T0 + timedelta(seconds=2)
    await store.settle_notification(delivery.item.id, now=sent_at)
    [last] = await store.last_notifications([incident.id])
    assert (last.pending, last.at, last.event_id) == (False, sent_at, delivery.item.event_id)

    later = T0 + timedelta(minutes=10)
    reminder = await store.enqueue_reminder(last, now=later)
    assert reminder is not None
    assert (reminder.repeat, reminder.event_id, reminder.created_at) == (1, last.event_id, later)
    assert reminder.idempotency_key == idempotency_key(incident.id, last.event_id, "ops", repeat=1)
    assert await store.enqueue_reminder(last, now=later) is None  # a second writer adds nothing
    [last] = await store.last_notifications([incident.id])
    assert (last.repeats, last.pending) == (1, True)
    assert await store.last_notifications([]) == []


async def test_deliveries_recorded_together_mark_only_pending_rows(store: Store) -> None:
    await add_channel(store, "a")
    await add_channel(store, "b")
    await add_channel(store, "c")
    await open_incident(store)
    a, b, c = sorted(
        await store.claim_notifications(now=T0, lease=LEASE), key=lambda d: d.item.channel
    )
    await store.settle_notification(c.item.id, now=T0, error="gone")  # failed meanwhile
    assert await store.settle_sent([a.item.id, b.item.id, c.item.id], now=T0) == 2
    assert await store.settle_sent([a.item.id], now=T0) == 0  # already sent: unchanged
    status = {row.channel: row.status for row in await store.list_notifications()}
    assert status == {"a": OutboxStatus.SENT, "b": OutboxStatus.SENT, "c": OutboxStatus.FAILED}
    assert await store.settle_sent([], now=T0) == 0
