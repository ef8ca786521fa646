"""Digest channels in the store: their mode kept, no realtime rows for them, and each period's
digest written once, from the incident events of the period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.core.errors import ValidationError
from vigil.core.events import EventKind
from vigil.core.incidents import Severity
from vigil.store import Store

from .conftest import T0, add_channel, auto_resolve, make_incident, open_incident


async def test_a_channel_keeps_its_delivery_mode(store: Store) -> None:
    channel = await add_channel(
        store, "daily", delivery="daily", digest_at="08:30", timezone="Europe/Berlin"
    )
    assert (channel.delivery, channel.digest_at, channel.timezone) == (
        "daily",
        "08:30",
        "Europe/Berlin",
    )
    assert (await store.get_channel("daily")).channel == channel
    stored, _ = await store.update_channel("daily", {"delivery": "realtime"}, now=T0)
    assert stored.channel.realtime
    with pytest.raises(ValidationError) as raised:
        await store.update_channel("daily", {"timezone": "Nowhere/Else"}, now=T0)
    assert raised.value.field == "timezone"


async def test_a_digest_channel_gets_no_realtime_rows(store: Store) -> None:
    await add_channel(store, "live")
    await add_channel(store, "daily", delivery="daily")
    await open_incident(store)
    assert [row.channel for row in await store.list_notifications()] == ["live"]


async def test_each_period_is_written_once(store: Store) -> None:
    channel = await add_channel(store, "daily", delivery="daily", digest_at="09:00")
    start, end = T0 - timedelta(hours=3), T0 + timedelta(hours=21)  # 09:00 UTC to 09:00
    resolved = await open_incident(store, make_incident(at=T0, metric="error_rate"))
    await auto_resolve(store, resolved, at=T0 + timedelta(hours=1))
    critical = make_incident(at=T0 + timedelta(hours=2), severity=Severity.CRITICAL, value=250)
    await open_incident(store, critical)
    await open_incident(store, make_incident(at=end + timedelta(minutes=1), metric="memory_usage"))

    digest = await store.enqueue_digest(channel, start=start, end=end, now=end)
    assert digest is not None
    assert dict(digest.counts) == {"opened": 2, "escalated": 0, "resolved": 1, "open": 1}
    assert [entry.severity for entry in digest.worst] == ["critical", "warning"]
    assert await store.digest_written("daily", end)
    assert await store.enqueue_digest(channel, start=start, end=end, now=end) is None

    [row] = await store.list_notifications()
    assert (row.channel, row.incident_id, row.status) == ("daily", None, "pending")
    [event] = [e for e in await store.events_after(0) if e.id == row.event_id]
    assert event.kind is EventKind.DIGEST_WRITTEN and event.at == end

    # The next period starts where this one ended.
    following = await store.enqueue_digest(
        channel, start=end, end=end + timedelta(days=1), now=end + timedelta(days=1)
    )
    assert following is not None and following.start == end
    assert dict(following.counts) == {"opened": 1, "escalated": 0, "resolved": 0, "open": 2}


async def test_a_digest_channel_in_an_escalation_policy_hears_of_it_in_its_digest_only(
    store: Store,
) -> None:
    await add_channel(store, "ops")
    await add_channel(store, "daily", delivery="daily")
    policy = {"name": "p", "steps": [{"channels": ["ops", "daily"]}], "severities": ["warning"]}
    await store.add_policy(policy, now=T0)
    await open_incident(store)
    assert [row.channel for row in await store.list_notifications()] == ["ops"]
