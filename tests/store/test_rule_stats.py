"""Each rule's noise figures, on a history written down by hand (SQLite and PostgreSQL).

The history, for ``gateway_latency`` (times UTC, "now" is 10 March 12:00):

- B opened 2 March 23:00, resolved by a person 4 March 01:00 (26 h);
- A opened 9 March 22:00, acknowledged 22:10 (10 min), resolved on its own 10 March 02:00 (4 h);
- C opened 10 March 11:00, acknowledged 11:30 (30 min), still open (1 h so far);
- two flapping events (5 March and 1 March), and the notifications of A and C sent.

``error_rate`` has one incident, D, opened 8 March 10:00 and still open.

The 7 days are 4..10 March: B's opening is before them, its resolution and its last hour in
them. The 30 days hold everything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident
from vigil.store import RuleStats, Store

from .conftest import add_channel, auto_resolve, make_incident, open_incident, raw

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HOUR = 3600.0


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


async def flapping(store: Store, incident: Incident, when: datetime) -> None:
    event = Event(kind=EventKind.INCIDENT_FLAPPING, at=when, incident=incident)
    await store.append_events([event])


async def send_everything(store: Store, *, now: datetime) -> int:
    """Deliver every pending notification (one incident's in order, a claim at a time)."""
    sent = 0
    while deliveries := await store.claim_notifications(now=now, lease=timedelta(minutes=5)):
        sent += await store.settle_sent([d.item.id for d in deliveries], now=now)
    return sent


async def hand_made_history(store: Store) -> None:
    await add_channel(store)
    b = await open_incident(store, at=at(2, 23))
    await store.resolve_incident(b.id, by="ana", now=at(4, 1))
    await send_everything(store, now=at(3, 0))  # B's opening: sent 3 March, before the 7 days
    a = await open_incident(store, at=at(9, 22))
    await store.acknowledge_incident(a.id, by="ana", now=at(9, 22, 10))
    await auto_resolve(store, a, at=at(10, 2))
    c = await open_incident(store, at=at(10, 11))
    await store.acknowledge_incident(c.id, by="bo", now=at(10, 11, 30))
    await flapping(store, c, at(5, 8))
    await flapping(store, c, at(1, 8))
    d = await open_incident(store, metric="error_rate", at=at(8, 10))
    del d


async def test_the_figures_of_one_rule_over_7_and_30_days(store: Store) -> None:
    await hand_made_history(store)
    # B's resolution, A's opening, acknowledgement and resolution, C's opening,
    # acknowledgement and two flapping messages, D's opening: 9 notifications, sent now.
    assert await send_everything(store, now=NOW) == 9

    week = await store.rule_stats("gateway_latency", days=7, now=NOW)
    assert week == RuleStats(
        rule="gateway_latency",
        days=7,
        first_day=at(4, 0).date(),
        incidents=2,  # A and C
        open_incidents=1,
        seconds_in_incident=HOUR + 4 * HOUR + HOUR,  # B's last hour, A, C so far
        acknowledged=2,
        mean_seconds_to_acknowledge=(600 + 1800) / 2,
        resolved_auto=1,
        resolved_manual=1,
        mean_seconds_to_resolve=(26 * HOUR + 4 * HOUR) / 2,
        flaps=1,
        notifications_sent=8,  # B's resolution, A's three, C's four
    )
    # Given the open incidents (as the live view knows them), the answer is the same.
    known = await store.active_incidents()
    assert await store.rule_stats("gateway_latency", days=7, now=NOW, open_incidents=known) == week
    assert week.incidents_per_day == pytest.approx(2 / 7)
    assert week.auto_resolved_share == 0.5

    month = await store.rule_stats("gateway_latency", days=30, now=NOW)
    assert (month.incidents, month.flaps, month.notifications_sent) == (3, 2, 9)
    assert month.seconds_in_incident == 26 * HOUR + 4 * HOUR + HOUR
    assert month.first_day == datetime(2026, 2, 9, tzinfo=UTC).date()

    # An hour later the open incident has been open an hour longer; nothing else moved.
    later = await store.rule_stats("gateway_latency", days=7, now=NOW + timedelta(hours=1))
    assert later.seconds_in_incident == week.seconds_in_incident + HOUR


async def test_a_rule_without_history_has_zeros_and_no_means(store: Store) -> None:
    stats = await store.rule_stats("memory_usage", days=90, now=NOW)
    assert (stats.incidents, stats.seconds_in_incident, stats.notifications_sent) == (0, 0.0, 0)
    assert stats.mean_seconds_to_acknowledge is None
    assert stats.mean_seconds_to_resolve is None
    assert stats.auto_resolved_share is None
    assert stats.quiet


async def test_the_noisiest_rules_come_first_and_quiet_ones_not_at_all(store: Store) -> None:
    await hand_made_history(store)
    noisiest = await store.noisiest_rules(days=7, now=NOW)
    assert [s.rule for s in noisiest] == ["gateway_latency", "error_rate"]
    known = await store.active_incidents()
    assert await store.noisiest_rules(days=7, now=NOW, open_incidents=known) == noisiest
    [top] = await store.noisiest_rules(days=7, now=NOW, limit=1)
    assert top == await store.rule_stats("gateway_latency", days=7, now=NOW)
    error_rate = noisiest[1]
    assert (error_rate.incidents, error_rate.open_incidents) == (1, 1)
    assert error_rate.seconds_in_incident == 2 * 24 * HOUR + 2 * HOUR  # 8 March 10:00 to now


async def test_a_deleted_rule_is_not_among_the_noisiest(store: Store) -> None:
    await hand_made_history(store)
    await store.delete_rule("error_rate", by="ana", now=NOW)
    assert [s.rule for s in await store.noisiest_rules(days=7, now=NOW)] == ["gateway_latency"]
    # Its incident was resolved by the deletion (manual), which its figures kept.
    kept = await store.rule_stats("error_rate", days=7, now=NOW)
    assert (kept.resolved_manual, kept.open_incidents) == (1, 0)


async def test_an_incident_spanning_midnight_counts_each_day_its_share(store: Store) -> None:
    incident = await open_incident(store, make_incident(at=at(2, 18)))  # 8 days before NOW
    await auto_resolve(store, incident, at=at(4, 6))
    week = await store.rule_stats("gateway_latency", days=7, now=NOW)
    assert week.seconds_in_incident == 6 * HOUR  # only 4 March's part
    assert week.mean_seconds_to_resolve == 36 * HOUR  # the whole of it, resolved that day
    assert week.incidents == 0


@pytest.mark.parametrize("days", [0, 1, 14, 365, -7, True])
async def test_a_window_other_than_7_30_or_90_days_is_refused(store: Store, days: int) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.rule_stats("gateway_latency", days=days, now=NOW)
    assert caught.value.field == "days"
    with pytest.raises(ValidationError):
        await store.noisiest_rules(days=days, now=NOW)


async def test_a_notification_settled_alone_is_counted_once(store: Store) -> None:
    await add_channel(store)
    await open_incident(store, at=at(10, 1))
    [delivery] = await store.claim_notifications(now=at(10, 1), lease=timedelta(minutes=5))
    await store.settle_notification(delivery.item.id, now=at(10, 2))
    # Settling it again (a dispatcher that lost its lease) leaves it sent and counted once.
    await store.settle_notification(delivery.item.id, now=at(10, 3))
    assert (await store.rule_stats("gateway_latency", days=7, now=NOW)).notifications_sent == 1
    # A failed delivery is not a sent one.
    await open_incident(store, metric="error_rate", at=at(10, 4))
    [failed] = await store.claim_notifications(now=at(10, 4), lease=timedelta(minutes=5))
    await store.settle_notification(failed.item.id, now=at(10, 5), error="refused")
    assert (await store.rule_stats("error_rate", days=7, now=NOW)).notifications_sent == 0


async def test_cleanup_keeps_a_years_counters_and_drops_older_ones(
    store: Store, migrated_url: str
) -> None:
    old = await open_incident(store, at=NOW - timedelta(days=400))
    await auto_resolve(store, old, at=NOW - timedelta(days=400) + timedelta(hours=1))
    await open_incident(store, metric="error_rate", at=NOW - timedelta(days=20))
    await store.cleanup(now=NOW, incident_retention_days=1000, sample_retention_days=1)
    async with raw(migrated_url) as connection:
        rows = await connection.execute(text("SELECT rule, opened FROM rule_daily_stats"))
        assert [(rule, opened) for rule, opened in rows] == [("error_rate", 1)]


async def test_a_flapping_event_counts_with_or_without_its_incident(store: Store) -> None:
    incident = await open_incident(store, at=at(9, 1))
    await flapping(store, incident, at(9, 2))
    bare = Event(kind=EventKind.INCIDENT_FLAPPING, at=at(9, 3), rule="gateway_latency")
    await store.append_events([bare])
    assert (await store.rule_stats("gateway_latency", days=7, now=NOW)).flaps == 2
