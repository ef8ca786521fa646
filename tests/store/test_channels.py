"""Channels in the database, and the outbox: written in the transaction of its events,
claimed and settled by the dispatcher, reminders keyed by their number."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from vigil.core.errors import DuplicateIncidentError, NotFoundError, ValidationError
from vigil.core.evaluation import CycleResult
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity
from vigil.notify import Channel, idempotency_key
from vigil.store import OutboxStatus, Store, models

from .conftest import T0, make_incident, open_incident

HOOK = "json://127.0.0.1:8080/hook?+Authorization=Bearer%20s3cret"
LEASE = timedelta(minutes=5)


async def _channel(store: Store, name: str = "ops", **fields: object) -> Channel:
    stored, _ = await store.add_channel({"name": name, "url": HOOK, **fields}, now=T0)
    return stored.channel


async def _escalate(store: Store, incident: Incident, *, at: timedelta) -> Event:
    critical = dataclasses.replace(incident, severity=Severity.CRITICAL, threshold=200.0)
    event = Event.for_incident(
        EventKind.INCIDENT_ESCALATED, critical, at=T0 + at, data={"from": "warning"}
    )
    [stored] = await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=T0)
    return stored


# -- channels ----------------------------------------------------------------------------------


async def test_a_channel_is_stored_in_full_and_shown_masked(store: Store) -> None:
    added, _ = await store.add_channel(
        {"name": "ops", "url": HOOK, "min_severity": "warning", "renotify_minutes": 30},
        now=T0,
    )
    assert added.channel.url == HOOK  # delivery needs the secret
    shown = added.to_dict()
    assert shown["url"] == "json://127.0.0.1:8080/***?***"
    assert "s3cret" not in str(shown) and "s3cret" not in repr(added)
    assert (shown["service"], shown["min_severity"], shown["renotify_minutes"]) == (
        "JSON",
        "warning",
        30,
    )
    assert await store.get_channel("ops") == added
    assert [c.name for c in await store.list_channels()] == ["ops"]


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"url": "nope://somewhere"}, "url", "unsupported scheme nope://"),
        ({"url": "https://example.com/hook"}, "url", "json://"),
        ({"url": "discord://only-an-id"}, "url", "Discord"),
        ({"url": "json://127.0.0.1/hook", "events": []}, "events", "at least one"),
        ({"url": "json://127.0.0.1/hook", "min_severity": "loud"}, "min_severity", "loud"),
        ({"url": "json://127.0.0.1/hook", "name": "Ops Team"}, "name", "a-z"),
        ({"url": "json://127.0.0.1/hook", "colour": "red"}, "colour", "not a channel field"),
    ],
)
async def test_bad_channel_input_is_refused_and_nothing_is_stored(
    store: Store, data: dict[str, object], field: str, says: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.add_channel({"name": "ops", **data}, now=T0)
    assert caught.value.field == field
    assert says in caught.value.message
    assert await store.list_channels() == []


async def test_every_change_is_an_event_naming_who_with_the_url_masked(store: Store) -> None:
    later = T0 + timedelta(minutes=5)
    _, added = await store.add_channel({"name": "ops", "url": HOOK}, now=T0, by="ana")
    _, changed = await store.update_channel(
        "ops", {"min_severity": "critical", "enabled": False}, now=later, by="bob"
    )
    _, unchanged = await store.update_channel("ops", {"enabled": False}, now=later, by="bob")
    removed = await store.delete_channel("ops", now=later, by="cli")

    logged = await store.events_after(0)
    assert [(e.kind, e.by, e.at) for e in logged] == [
        (EventKind.CHANNEL_ADDED, "ana", T0),
        (EventKind.CHANNEL_CHANGED, "bob", later),
        (EventKind.CHANNEL_CHANGED, "bob", later),
        (EventKind.CHANNEL_REMOVED, "cli", later),
    ]
    assert [e.id for e in logged] == [added.id, changed.id, unchanged.id, removed.id]
    assert "s3cret" not in str([e.to_dict() for e in logged])  # every viewer reads the log
    assert added.data["channel"]["url"] == "json://127.0.0.1:8080/***?***"
    assert changed.data["changed"] == ["enabled", "min_severity"]
    assert changed.data["channel"]["min_severity"] == "critical"
    assert unchanged.data["changed"] == []
    assert removed.data == {"channel": {"name": "ops"}}


async def test_a_channel_whose_url_apprise_no_longer_accepts_can_still_be_removed(
    store: Store,
) -> None:
    await _channel(store)
    async with store.engine.begin() as connection:  # as if apprise dropped the service
        await connection.execute(models.channels.update().values(url="nosuchservice://gone/token"))
    event = await store.delete_channel("ops", now=T0, by="ana")
    assert event.kind is EventKind.CHANNEL_REMOVED
    assert await store.list_channels() == []


async def test_a_taken_name_is_refused(store: Store) -> None:
    await _channel(store)
    with pytest.raises(ValidationError, match="already exists") as caught:
        await store.add_channel({"name": "ops", "url": "json://127.0.0.1/other"}, now=T0)
    assert caught.value.field == "name"
    assert [c.channel.url for c in await store.list_channels()] == [HOOK]


async def test_an_update_changes_only_what_it_names(store: Store) -> None:
    before, _ = await store.add_channel({"name": "ops", "url": HOOK}, now=T0)
    later = T0 + timedelta(hours=1)
    # what an edit form sends back: every field as shown, the URL masked
    form = {**before.to_dict(), "min_severity": "critical", "enabled": False}
    for key in ("service", "created_at", "updated_at"):
        del form[key]
    updated, _ = await store.update_channel("ops", form, now=later)
    assert updated.channel.url == HOOK  # the masked URL did not replace the real one
    assert (updated.channel.min_severity, updated.channel.enabled) == (Severity.CRITICAL, False)
    assert (updated.created_at, updated.updated_at) == (T0, later)

    moved, _ = await store.update_channel("ops", {"url": "json://127.0.0.1:9000/new"}, now=later)
    assert moved.channel.url == "json://127.0.0.1:9000/new"
    assert moved.channel.min_severity is Severity.CRITICAL

    with pytest.raises(ValidationError) as caught:
        await store.update_channel("ops", {"url": "nope://x"}, now=later)
    assert caught.value.field == "url"
    with pytest.raises(ValidationError, match="cannot be changed"):
        await store.update_channel("ops", {"name": "other"}, now=later)
    with pytest.raises(NotFoundError):
        await store.update_channel("missing", {"enabled": True}, now=later)
    assert await store.get_channel("ops") == moved


# -- the outbox, written with its events -------------------------------------------------------


async def test_an_incident_event_writes_a_row_for_each_channel_that_wants_it(
    store: Store,
) -> None:
    await _channel(store, "everything")
    await _channel(store, "critical-only", min_severity="critical")
    await _channel(store, "resolutions", events=["resolved"])
    await _channel(store, "off", enabled=False)
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


async def test_events_that_are_not_about_incidents_write_no_rows(store: Store) -> None:
    await _channel(store)
    await store.update_rule("gateway_latency", {"warning": 120}, by="ana", now=T0)
    await store.append_events([Event(kind=EventKind.LEADER_CHANGED, at=T0, data={})])
    assert await store.list_notifications() == []


async def test_a_cycle_that_fails_writes_no_notification(store: Store) -> None:
    await _channel(store)
    await open_incident(store)
    before = await store.list_notifications()
    second = make_incident()  # the same rule: the database refuses a second open incident
    event = Event.for_incident(EventKind.INCIDENT_OPENED, second, at=T0)
    with pytest.raises(DuplicateIncidentError):
        await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=T0)
    assert await store.list_notifications() == before


async def test_removing_a_channel_fails_what_it_has_not_received(store: Store) -> None:
    await _channel(store)
    await open_incident(store)
    await store.delete_channel("ops", now=T0)
    [row] = await store.list_notifications()
    assert (row.status, row.last_error) == (OutboxStatus.FAILED, "the channel was removed")
    assert await store.claim_notifications(now=T0, lease=LEASE) == []
    with pytest.raises(NotFoundError):
        await store.delete_channel("ops", now=T0)


# -- claiming and settling -----------------------------------------------------------------------


async def test_a_claim_counts_the_attempt_and_holds_the_row_for_the_lease(store: Store) -> None:
    await _channel(store)
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
    await _channel(store)
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
    await _channel(store, "a")
    await _channel(store, "b")
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
    await _channel(store, renotify_minutes=10)
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


async def test_migration_0002_goes_down_and_up_keeping_the_outbox(store: Store) -> None:
    await _channel(store)
    incident = await open_incident(store)
    await store.downgrade("0001")
    tables = await store.table_names()
    assert "notification_channels" not in tables and "snoozes" not in tables
    assert "notification_outbox" in tables
    await store.upgrade()
    # the row written before the round trip learned its incident again from its event
    [row] = await store.list_notifications()
    assert (row.incident_id, row.repeat, row.channel) == (incident.id, 0, "ops")
    assert await store.list_channels() == []


async def test_deliveries_recorded_together_mark_only_pending_rows(store: Store) -> None:
    await _channel(store, "a")
    await _channel(store, "b")
    await _channel(store, "c")
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
