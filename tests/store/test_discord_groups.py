"""The incident group -> Discord message mapping (``group=True``), on SQLite and PostgreSQL:
the same guarantees as an incident's, keyed by the group, and which groups were posted one
incident at a time before group messages existed."""

from __future__ import annotations

import uuid
from datetime import timedelta

from vigil.core.evaluation import CycleResult
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity
from vigil.store import Store
from vigil.store._discord import group_nonce, incident_nonce

from .conftest import T0, make_incident

CHANNEL = 4242
WINDOW = timedelta(seconds=60)


async def open_together(store: Store, *metrics: str) -> list[Incident]:
    incidents = [make_incident(metric=m, severity=Severity.WARNING) for m in metrics]
    events = [Event.for_incident(EventKind.INCIDENT_OPENED, i, at=T0) for i in incidents]
    stored = await store.commit_cycle(
        samples=[], result=CycleResult(events=events), now=T0, group_window=WINDOW
    )
    opened = [e.incident for e in stored if e.incident is not None]
    assert len({i.group for i in opened}) == 1
    return opened


async def test_a_group_message_is_claimed_posted_and_kept_like_an_incidents(store: Store) -> None:
    opened = await open_together(store, "gateway_latency", "error_rate")
    group = opened[0].group
    assert group is not None
    nonce = group_nonce(group)
    claimed = await store.claim_discord_post(
        group, channel_id=CHANNEL, nonce=nonce, now=T0, group=True
    )
    assert (claimed.group_id, claimed.incident_id, claimed.grouped) == (group, None, True)
    assert (claimed.message_id, claimed.nonce) == (None, nonce)
    # The group's row and the incidents' rows are apart: no incident has a message.
    assert [await store.discord_message(i.id) for i in opened] == [None, None]
    assert await store.discord_messages_behind(group=True) == [group]

    newest = await store.last_event_id()
    posted = await store.record_discord_post(
        group, message_id=77, event_id=newest, now=T0, group=True
    )
    assert (posted.message_id, posted.rendered_event_id) == (77, newest)
    kept = await store.record_discord_post(group, message_id=78, event_id=1, now=T0, group=True)
    assert kept.message_id == 77  # the first recorded stays
    assert await store.discord_messages_behind(group=True) == []

    # Any member's change puts the group's message behind.
    await store.acknowledge_incident(opened[1].id, by="alice [discord:3000]", now=T0)
    assert await store.discord_messages_behind(group=True) == [group]
    assert await store.discord_messages_behind() == []  # incidents' messages: none
    await store.record_discord_edit(group, event_id=await store.last_event_id(), now=T0, group=True)
    assert await store.discord_messages_behind(group=True) == []

    await store.forget_discord_post(group, nonce=group_nonce(group, 1), now=T0, group=True)
    forgotten = await store.discord_message(group, group=True)
    assert forgotten is not None
    assert (forgotten.message_id, forgotten.nonce) == (None, group_nonce(group, 1))


async def test_groups_posted_one_by_one_are_those_with_member_messages_only(
    store: Store,
) -> None:
    old = await open_together(store, "gateway_latency", "error_rate")
    old_group = old[0].group
    assert old_group is not None
    await store.claim_discord_post(
        old[0].id, channel_id=CHANNEL, nonce=incident_nonce(old[0].id), now=T0
    )
    unposted = uuid.uuid4()
    assert await store.discord_groups_posted_one_by_one([old_group, unposted]) == {old_group}
    assert await store.discord_groups_posted_one_by_one([]) == set()
    # Once the group has a message of its own, it is shown by it.
    await store.claim_discord_post(old_group, channel_id=CHANNEL, nonce="g", now=T0, group=True)
    assert await store.discord_groups_posted_one_by_one([old_group]) == set()


def test_group_nonces_fit_discord_and_differ_from_incident_nonces() -> None:
    ident = uuid.UUID(int=2**128 - 1)
    assert len(group_nonce(ident, 99)) <= 25
    assert group_nonce(ident) != incident_nonce(ident)
    assert group_nonce(ident) != group_nonce(ident, 1)


async def test_an_unknown_group_has_no_message(store: Store) -> None:
    assert await store.discord_message(uuid.uuid4(), group=True) is None
