"""Retention: old rows go in batches; open incidents never do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from vigil.core.errors import ValidationError
from vigil.core.evaluation import CycleResult
from vigil.core.events import Event, EventKind
from vigil.core.samples import Sample
from vigil.store import CleanupReport, Store

from .conftest import HOOK, T0, auto_resolve, make_incident, open_incident, raw

LATER = T0 + timedelta(days=100)


async def _populate(store: Store) -> dict[str, object]:
    """Old and recent rows of every kind, with ids of the ones that must survive."""
    old_resolved = []
    for n in range(5):
        opened = await open_incident(store, metric="error_rate", at=T0 + timedelta(minutes=n))
        old_resolved.append(await auto_resolve(store, opened, at=opened.triggered_at))
    old_but_open = await open_incident(store, at=T0)  # 100 days open: still kept
    recent = await open_incident(store, metric="memory_usage", at=LATER - timedelta(days=1))
    # Two channels hear of the recent resolution: one delivery sent long ago (past the outbox
    # retention, odd as that is for a recent event), one still pending.
    for name in ("a", "b"):
        await store.add_channel({"name": name, "url": HOOK}, now=LATER - timedelta(days=1))
    recent = await auto_resolve(store, recent, at=LATER - timedelta(hours=1))
    await store.add_samples(
        [Sample("bot-1", "gateway_latency", T0 + timedelta(seconds=n), 1.0) for n in range(7)]
        + [Sample("bot-1", "gateway_latency", LATER - timedelta(days=1), 2.0)]
    )
    sent, pending = sorted(
        await store.claim_notifications(now=LATER, lease=timedelta(minutes=5)),
        key=lambda delivery: delivery.item.channel,
    )
    await store.settle_notification(sent.item.id, now=T0)
    [pending_row] = await store.list_notifications(status="pending")
    assert pending_row.id == pending.item.id
    return {"open": old_but_open, "recent": recent, "pending": pending_row}


async def test_cleanup_deletes_only_what_is_past_retention(store: Store) -> None:
    kept = await _populate(store)
    settings = {"now": LATER, "incident_retention_days": 90, "sample_retention_days": 30}
    due = await store.expired(**settings)  # type: ignore[arg-type]
    # 5 opened+resolved pairs of events (10), plus the open incident's opening event.
    assert due == CleanupReport(incidents=5, events=11, samples=7, outbox=1)

    batches: list[tuple[str, int]] = []
    report = await store.cleanup(
        **settings,  # type: ignore[arg-type]
        batch_size=2,
        progress=lambda kind, count: batches.append((kind, count)),
    )
    assert report == due
    assert [count for kind, count in batches if kind == "incidents"] == [2, 2, 1]
    assert sum(count for kind, count in batches if kind == "samples") == 7
    assert max(count for _, count in batches) <= 2

    history = (await store.incident_history()).items
    assert sorted(i.id for i in history) == sorted([kept["open"].id, kept["recent"].id])  # type: ignore[attr-defined]
    assert await store.active_incidents() == [kept["open"]]
    assert len(await store.metric_history("gateway_latency", start=T0, end=LATER)) == 1
    assert await store.list_notifications(status="pending") == [kept["pending"]]
    assert await store.expired(**settings) == CleanupReport()  # type: ignore[arg-type]


async def test_frequency_outlives_incident_retention(store: Store) -> None:
    opened = await open_incident(store, at=T0)
    await auto_resolve(store, opened, at=T0)
    await store.cleanup(now=LATER, incident_retention_days=90, sample_retention_days=30)
    assert (await store.incident_history()).total == 0
    counts = await store.frequency(days=101, now=LATER)
    assert counts[0].day == T0.date() and counts[0].total == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"incident_retention_days": 0}, "incident_retention_days"),
        ({"sample_retention_days": -3}, "sample_retention_days"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
async def test_cleanup_arguments_are_checked(
    store: Store, arguments: dict[str, int], field: str
) -> None:
    call = {"incident_retention_days": 90, "sample_retention_days": 30} | arguments
    with pytest.raises(ValidationError) as caught:
        await store.cleanup(
            now=LATER,
            incident_retention_days=call["incident_retention_days"],
            sample_retention_days=call["sample_retention_days"],
            batch_size=call.get("batch_size", 100),
        )
    assert caught.value.field == field


async def test_cleanup_drops_groups_whose_members_are_all_gone(
    store: Store, migrated_url: str
) -> None:
    async def stored_groups() -> int:
        async with raw(migrated_url) as connection:
            return int(await connection.scalar(text("SELECT count(*) FROM incident_groups")))

    async def grouped(metric: str, at: timedelta) -> None:
        incident = make_incident(metric=metric, at=T0 + at)
        event = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0 + at)
        [stored] = await store.commit_cycle(
            samples=[],
            result=CycleResult(events=[event]),
            now=T0 + at,
            group_window=timedelta(minutes=1),
        )
        assert stored.incident is not None
        await auto_resolve(store, stored.incident, at=T0 + at)

    await grouped("error_rate", timedelta(0))  # long gone at LATER
    await grouped("memory_usage", timedelta(days=99))  # recent: its group stays
    assert len(await store.list_groups()) == 2
    await store.cleanup(now=LATER, incident_retention_days=90, sample_retention_days=30)
    assert await stored_groups() == 1
    [left] = await store.list_groups()
    assert [m.rule for m in left.members] == ["memory_usage"]
