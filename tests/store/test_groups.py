"""Incident groups in the database: assignment in the cycle's transaction, the groups as
listed, acknowledging a group, and the outbox rows a group's messages need."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from vigil.core.errors import IllegalTransitionError, NotFoundError, ValidationError
from vigil.core.evaluation import CycleResult
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity, Status, resolve
from vigil.store import OutboxStatus, Store

from .conftest import T0, add_channel, make_incident

WINDOW = timedelta(seconds=60)
LEASE = timedelta(minutes=5)


async def open_together(
    store: Store, incidents: list[Incident], *, at: datetime = T0, window: timedelta = WINDOW
) -> list[Incident]:
    """Open incidents in one cycle, as the monitor does, with grouping on."""
    events = [Event.for_incident(EventKind.INCIDENT_OPENED, i, at=at) for i in incidents]
    stored = await store.commit_cycle(
        samples=[], result=CycleResult(events=events), now=at, group_window=window
    )
    found = [event.incident for event in stored]
    assert all(i is not None for i in found)
    return [i for i in found if i is not None]


def three(at: datetime = T0) -> list[Incident]:
    return [
        make_incident(metric="gateway_latency", at=at),
        make_incident(metric="error_rate", at=at, severity=Severity.CRITICAL),
        make_incident(metric="command_p95_latency", at=at),
    ]


async def resolve_in_cycle(store: Store, incident: Incident, *, at: datetime) -> None:
    _, event = resolve(incident, now=at)
    await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=at)


async def test_incidents_opening_together_form_one_group_stored_with_them(store: Store) -> None:
    opened = await open_together(store, three())
    groups = {i.group for i in opened}
    assert len(groups) == 1 and None not in groups
    [group] = await store.list_groups()
    assert (group.size, group.severity, group.status) == (3, Severity.CRITICAL, Status.ACTIVE)
    # The incident as read back carries its group too.
    assert (await store.get_incident(opened[0].id)).group == group.id


async def test_a_new_groups_message_is_written_without_reading_the_outbox(store: Store) -> None:
    """A group created by the cycle has no rows yet and only the members it opened: its
    message is decided without a query (each would delay the message); a group that existed
    before is read as always."""
    await add_channel(store)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(store._engine.sync_engine, "before_cursor_execute", record)
    try:
        await open_together(store, three())
        new = [s for s in statements if s.startswith("SELECT") and "notification_outbox" in s]
        statements.clear()
        await open_together(store, [make_incident(metric="memory_usage")], at=T0 + WINDOW / 2)
        joined = [s for s in statements if s.startswith("SELECT") and "notification_outbox" in s]
    finally:
        event.remove(store._engine.sync_engine, "before_cursor_execute", record)
    assert new == []
    assert joined  # an existing group: what it was told is read
    [message] = await store.claim_notifications(now=T0, lease=LEASE)
    assert message.group is not None and message.group.size == 4  # not yet sent: all in it
    assert len(await store.list_notifications()) == 1


async def test_a_later_incident_joins_within_the_window_and_not_after_it(store: Store) -> None:
    [first] = await open_together(store, [make_incident(metric="gateway_latency")])
    [near] = await open_together(
        store, [make_incident(metric="error_rate", at=T0 + WINDOW)], at=T0 + WINDOW
    )
    far_at = T0 + 3 * WINDOW
    [far] = await open_together(store, [make_incident(metric="memory_usage", at=far_at)], at=far_at)
    assert near.group == first.group
    assert far.group not in (None, first.group)


async def test_a_resolved_group_takes_no_new_member(store: Store) -> None:
    [first] = await open_together(store, [make_incident(metric="gateway_latency")])
    await resolve_in_cycle(store, first, at=T0 + timedelta(seconds=10))
    [later] = await open_together(
        store, [make_incident(metric="error_rate", at=T0 + timedelta(seconds=20))]
    )
    assert later.group != first.group
    assert [g.status for g in await store.list_groups(status="resolved")] == [Status.RESOLVED]


async def test_rules_declared_related_join_one_group_outside_the_window(store: Store) -> None:
    labels = {"gateway_latency": "discord", "error_rate": "discord"}

    async def opens(metric: str, at: datetime) -> Incident:
        event = Event.for_incident(
            EventKind.INCIDENT_OPENED, make_incident(metric=metric, at=at), at=at
        )
        [stored] = await store.commit_cycle(
            samples=[],
            result=CycleResult(events=[event]),
            now=at,
            group_window=WINDOW,
            group_labels=labels,
        )
        assert stored.incident is not None
        return stored.incident

    first = await opens("gateway_latency", T0)
    unrelated = await opens("memory_usage", T0 + timedelta(minutes=30))
    related = await opens("error_rate", T0 + timedelta(hours=1))
    assert related.group == first.group
    assert unrelated.group not in (None, first.group)
    assert first.group is not None
    group = await store.get_group(first.group)
    assert (group.label, group.size) == ("discord", 2)


async def test_without_a_window_incidents_get_no_group(store: Store) -> None:
    opened = await open_together(store, three(), window=timedelta(0))
    assert [i.group for i in opened] == [None, None, None]
    assert await store.list_groups() == []


async def test_a_group_resolves_when_all_its_members_have(store: Store) -> None:
    opened = await open_together(store, three())
    for n, incident in enumerate(opened):
        [group] = await store.list_groups()
        assert group.status is Status.ACTIVE
        await resolve_in_cycle(store, incident, at=T0 + timedelta(minutes=n + 1))
    [group] = await store.list_groups()
    assert (group.status, group.resolved_at) == (Status.RESOLVED, T0 + timedelta(minutes=3))
    assert await store.list_groups(status="open") == []


async def test_acknowledging_a_group_acknowledges_its_members(store: Store) -> None:
    opened = await open_together(store, three())
    gid = opened[0].group
    assert gid is not None
    changes = await store.acknowledge_group(gid, by="ana", now=T0, notes="looking")
    assert sorted(i.id for i, _ in changes) == sorted(i.id for i in opened)
    for incident in opened:
        stored = await store.get_incident(incident.id)
        assert (stored.status, stored.acknowledged_by, stored.notes) == (
            Status.ACKNOWLEDGED,
            "ana",
            "looking",
        )
    assert (await store.get_group(gid)).status is Status.ACKNOWLEDGED
    with pytest.raises(IllegalTransitionError):
        await store.acknowledge_group(gid, by="ana", now=T0)


async def test_an_unknown_group_is_not_found_and_a_bad_status_names_the_field(
    store: Store,
) -> None:
    with pytest.raises(NotFoundError):
        await store.get_group("not-a-uuid")
    with pytest.raises(NotFoundError):
        await store.acknowledge_group("00000000-0000-0000-0000-000000000001", by="a", now=T0)
    with pytest.raises(ValidationError, match="status"):
        await store.list_groups(status="sleeping")


# -- the group's messages --------------------------------------------------------------------


async def test_three_incidents_opening_together_write_one_message_per_channel(
    store: Store,
) -> None:
    await add_channel(store, "ops")
    await add_channel(store, "pager")
    opened = await open_together(store, three())
    rows = await store.list_notifications()
    assert sorted(r.channel for r in rows) == ["ops", "pager"]
    assert {r.group_id for r in rows} == {opened[0].group}

    claimed = await store.claim_notifications(now=T0, lease=LEASE)
    assert len(claimed) == 2
    for delivery in claimed:
        assert delivery.group is not None
        assert delivery.group.size == 3
        assert delivery.group.headline().startswith("3 incidents: ")


async def test_a_member_joining_while_the_message_waits_adds_no_message(store: Store) -> None:
    await add_channel(store)
    [first] = await open_together(store, [make_incident(metric="gateway_latency")])
    at = T0 + timedelta(seconds=30)
    [joined] = await open_together(store, [make_incident(metric="error_rate", at=at)], at=at)
    assert joined.group == first.group
    assert len(await store.list_notifications()) == 1
    [delivery] = await store.claim_notifications(now=at, lease=LEASE)
    assert delivery.group is not None and delivery.group.size == 2  # written when sent


async def test_what_happens_while_the_message_is_under_way_is_told_after_it(
    store: Store,
) -> None:
    """A message whose attempt has begun was written already: a member opening or the last
    one resolving meanwhile needs a message of its own, else nobody hears of it."""
    await add_channel(store)
    [first] = await open_together(store, [make_incident(metric="gateway_latency")])
    [under_way] = await store.claim_notifications(now=T0, lease=LEASE)
    at = T0 + timedelta(seconds=1)
    [joined] = await open_together(store, [make_incident(metric="error_rate", at=at)], at=at)
    await resolve_in_cycle(store, first, at=at)
    await resolve_in_cycle(store, joined, at=at)
    pending = [
        r
        for r in await store.list_notifications()
        if r.status is OutboxStatus.PENDING and r.id != under_way.item.id
    ]
    assert len(pending) == 1 and pending[0].group_id == first.group
    await store.settle_sent([under_way.item.id], now=at)
    [told] = await store.claim_notifications(now=T0 + WINDOW, lease=LEASE)
    assert told.group is not None
    assert (told.group.size, told.group.status) == (2, Status.RESOLVED)


async def test_a_member_joining_after_the_message_was_sent_brings_one_follow_up_later(
    store: Store,
) -> None:
    await add_channel(store)
    await open_together(store, [make_incident(metric="gateway_latency")])
    [sent] = await store.claim_notifications(now=T0, lease=LEASE)
    await store.settle_sent([sent.item.id], now=T0)
    at = T0 + timedelta(seconds=20)
    await open_together(
        store,
        [make_incident(metric="error_rate", at=at), make_incident(metric="memory_usage", at=at)],
        at=at,
    )
    rows = [r for r in await store.list_notifications() if r.status is OutboxStatus.PENDING]
    [follow_up] = rows  # one for both, not one each
    # Not sooner than the group's window after its last message (group_interval).
    assert follow_up.next_attempt_at == T0 + WINDOW
    assert await store.claim_notifications(now=at, lease=LEASE) == []
    [delivery] = await store.claim_notifications(now=T0 + WINDOW, lease=LEASE)
    assert delivery.group is not None and delivery.group.size == 3


async def test_only_the_last_member_s_resolution_is_told(store: Store) -> None:
    await add_channel(store)
    opened = await open_together(store, three())
    [sent] = await store.claim_notifications(now=T0, lease=LEASE)
    await store.settle_sent([sent.item.id], now=T0)
    for n, incident in enumerate(opened):
        await resolve_in_cycle(store, incident, at=T0 + timedelta(minutes=n + 1))
    pending = [r for r in await store.list_notifications() if r.status is OutboxStatus.PENDING]
    [last] = pending
    assert last.incident_id == opened[-1].id and last.group_id == opened[0].group
    [delivery] = await store.claim_notifications(now=T0 + timedelta(minutes=5), lease=LEASE)
    assert delivery.group is not None and delivery.group.status is Status.RESOLVED


async def test_a_group_s_acknowledgement_is_one_message_and_escalations_stay_their_own(
    store: Store,
) -> None:
    await add_channel(store)
    opened = await open_together(store, three())
    [sent] = await store.claim_notifications(now=T0, lease=LEASE)
    await store.settle_sent([sent.item.id], now=T0)
    gid = opened[0].group
    assert gid is not None
    escalated = dataclasses.replace(opened[0], severity=Severity.CRITICAL)
    event = Event.for_incident(
        EventKind.INCIDENT_ESCALATED, escalated, at=T0, data={"from": "warning"}
    )
    await store.commit_cycle(samples=[], result=CycleResult(events=[event]), now=T0)
    await store.acknowledge_group(gid, by="ana", now=T0 + timedelta(seconds=5))
    pending = [r for r in await store.list_notifications() if r.status is OutboxStatus.PENDING]
    assert sorted((r.group_id is not None) for r in pending) == [False, True]
