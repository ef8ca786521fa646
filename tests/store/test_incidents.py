"""Incident reads and people's actions, as the API will call them."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vigil.core.errors import IllegalTransitionError, NotFoundError, ValidationError
from vigil.core.events import EventKind
from vigil.core.incidents import Incident, Resolution, Severity, Status
from vigil.store import Store

from .conftest import T0, auto_resolve, open_incident

METRICS = ["gateway_latency", "error_rate", "memory_usage"]


async def _history(store: Store, count: int) -> list[Incident]:
    """``count`` resolved incidents, one an hour back from T0, metrics and severities mixed,
    newest first."""
    made = []
    for n in range(count):
        at = T0 - timedelta(hours=count - n)
        severity = Severity.CRITICAL if n % 3 == 0 else Severity.WARNING
        opened = await open_incident(store, metric=METRICS[n % 3], severity=severity, at=at)
        made.append(await auto_resolve(store, opened, at=at + timedelta(minutes=5)))
    return made[::-1]


async def _snapshot(store: Store) -> tuple[object, ...]:
    history = await store.incident_history(page_size=200)
    return (history.items, await store.last_event_id(), await store.active_incidents())


# -- reads ------------------------------------------------------------------------------------


async def test_active_list_is_most_severe_first_then_newest(store: Store) -> None:
    older_warning = await open_incident(store, metric="error_rate", at=T0)
    critical = await open_incident(
        store, metric="memory_usage", severity=Severity.CRITICAL, at=T0 + timedelta(minutes=1)
    )
    newer_warning = await open_incident(store, at=T0 + timedelta(minutes=2))
    acknowledged, _ = await store.acknowledge_incident(older_warning.id, by="al", now=T0)
    resolved = await open_incident(store, metric="event_loop_lag", at=T0 + timedelta(minutes=3))
    await auto_resolve(store, resolved, at=T0 + timedelta(minutes=4))

    assert await store.active_incidents() == [critical, newer_warning, acknowledged]


async def test_history_filters_and_pages(store: Store) -> None:
    made = await _history(store, 12)
    page = await store.incident_history(page=2, page_size=5)
    assert page.items == made[5:10]
    assert (page.total, page.page, page.page_size, page.pages) == (12, 2, 5, 3)

    critical = await store.incident_history(severity="critical", page_size=200)
    assert critical.items == [i for i in made if i.severity is Severity.CRITICAL]
    by_metric = await store.incident_history(metric="error_rate", status=Status.RESOLVED)
    assert by_metric.items == [i for i in made if i.metric == "error_rate"]
    window = await store.incident_history(
        start=T0 - timedelta(hours=5), end=T0 - timedelta(hours=2)
    )
    assert window.items == [
        i for i in made if T0 - timedelta(hours=5) <= i.triggered_at < T0 - timedelta(hours=2)
    ]
    assert window.total == 3
    assert (await store.incident_history(status="active")).total == 0


async def test_a_cursor_walks_the_same_rows_as_page_numbers(store: Store) -> None:
    made = await _history(store, 11)
    seen: list[Incident] = []
    cursor = None
    while True:
        page = await store.incident_history(page_size=4, cursor=cursor)
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == made
    numbered = [
        item
        for number in (1, 2, 3)
        for item in (await store.incident_history(page=number, page_size=4)).items
    ]
    assert numbered == made


async def test_a_cursor_keeps_its_place_when_new_incidents_arrive(store: Store) -> None:
    made = await _history(store, 6)
    first = await store.incident_history(page_size=3)
    await open_incident(store, at=T0 + timedelta(hours=1))  # lands on top, shifts page numbers
    second = await store.incident_history(page_size=3, cursor=first.next_cursor)
    assert second.items == made[3:6]


async def test_one_incident_by_id(store: Store) -> None:
    opened = await open_incident(store)
    assert await store.get_incident(opened.id) == opened
    assert await store.get_incident(str(opened.id)) == opened


async def test_frequency_has_every_day_oldest_first_and_matches_the_incidents(
    store: Store,
) -> None:
    days = [0, 0, 1, 3, 3, 3]
    for n, back in enumerate(days):
        severity = Severity.CRITICAL if n % 2 else Severity.WARNING
        opened = await open_incident(
            store,
            metric=METRICS[n % 3],
            severity=severity,
            at=T0 - timedelta(days=back, minutes=n),
        )
        await auto_resolve(store, opened, at=opened.triggered_at + timedelta(minutes=1))

    counts = await store.frequency(days=5, now=T0)
    assert [c.day for c in counts] == [T0.date() - timedelta(days=d) for d in (4, 3, 2, 1, 0)]
    history = (await store.incident_history(page_size=200)).items
    expected = Counter((i.triggered_at.date(), i.severity.value) for i in history)
    for count in counts:
        assert count.warning == expected[count.day, "warning"]
        assert count.critical == expected[count.day, "critical"]
        assert count.info == 0
    assert [c.total for c in counts] == [0, 3, 0, 1, 2]


async def test_frequency_counts_utc_days(store: Store) -> None:
    # 23:30 on March 1st at UTC-5 is 04:30 on March 2nd in UTC.
    await open_incident(
        store, at=datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    )
    march_1, march_2 = await store.frequency(days=2, now=datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert (march_1.total, march_2.total) == (0, 1)


async def test_auto_recoveries_are_newest_first_and_only_automatic(store: Store) -> None:
    first = await open_incident(store, at=T0)
    first = await auto_resolve(store, first, at=T0 + timedelta(minutes=10))
    manual = await open_incident(store, metric="error_rate", at=T0)
    await store.resolve_incident(manual.id, by="al", now=T0 + timedelta(minutes=20))
    second = await open_incident(store, metric="memory_usage", at=T0)
    second = await auto_resolve(store, second, at=T0 + timedelta(minutes=30))
    assert await store.auto_recoveries() == [second, first]
    assert await store.auto_recoveries(limit=1) == [second]


# -- actions ----------------------------------------------------------------------------------


async def test_acknowledge_writes_the_incident_and_its_event_together(store: Store) -> None:
    opened = await open_incident(store)
    later = T0 + timedelta(minutes=3)
    updated, event = await store.acknowledge_incident(
        str(opened.id), by="alice", now=later, notes="on it"
    )
    assert updated.status is Status.ACKNOWLEDGED
    assert (updated.acknowledged_by, updated.acknowledged_at, updated.notes) == (
        "alice",
        later,
        "on it",
    )
    assert await store.get_incident(opened.id) == updated
    assert event.kind is EventKind.INCIDENT_ACKNOWLEDGED and event.by == "alice"
    assert (await store.events_after(event.id - 1)) == [event]  # type: ignore[operator]


async def test_acknowledge_all_takes_only_active_incidents(store: Store) -> None:
    first = await open_incident(store)
    second = await open_incident(store, metric="error_rate")
    third = await open_incident(store, metric="memory_usage")
    await store.acknowledge_incident(third.id, by="bob", now=T0)

    changed = await store.acknowledge_all(by="alice", now=T0 + timedelta(minutes=1))
    assert sorted(incident.id for incident, _ in changed) == sorted([first.id, second.id])
    assert all(event.kind is EventKind.INCIDENT_ACKNOWLEDGED for _, event in changed)
    assert (await store.get_incident(third.id)).acknowledged_by == "bob"
    assert await store.acknowledge_all(by="alice", now=T0) == []
    open_now = await store.active_incidents()
    assert [i.status for i in open_now] == [Status.ACKNOWLEDGED] * 3


async def test_manual_resolution_frees_the_rule_for_a_new_incident(store: Store) -> None:
    opened = await open_incident(store)
    resolved, event = await store.resolve_incident(opened.id, by="alice", now=T0, notes="fixed")
    assert resolved.resolution is Resolution.MANUAL and resolved.resolved_by == "alice"
    assert event.kind is EventKind.INCIDENT_RESOLVED
    assert await store.active_incidents() == []
    again = await open_incident(store, at=T0 + timedelta(minutes=1))
    assert await store.active_incidents() == [again]


# -- bad input: a clear domain error, and nothing changed --------------------------------------


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"severity": "fatal"}, "severity"),
        ({"status": "open"}, "status"),
        ({"metric": "Bad Metric!"}, "metric"),
        ({"start": datetime(2026, 1, 1)}, "start"),
        ({"start": T0, "end": T0 - timedelta(hours=1)}, "end"),
        ({"page": 0}, "page"),
        ({"page_size": 10_000}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_invalid_history_requests_name_the_field(
    store: Store, filters: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.incident_history(**filters)  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize("days", [0, 366, -1])
async def test_frequency_days_out_of_range(store: Store, days: int) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.frequency(days=days, now=T0)
    assert caught.value.field == "days"


@pytest.mark.parametrize("ident", [uuid.uuid4(), "not-a-uuid"])
async def test_unknown_incident_ids_are_not_found_and_change_nothing(
    store: Store, ident: object
) -> None:
    await open_incident(store)
    before = await _snapshot(store)
    with pytest.raises(NotFoundError):
        await store.get_incident(ident)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await store.acknowledge_incident(ident, by="al", now=T0)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await store.resolve_incident(ident, by="al", now=T0)  # type: ignore[arg-type]
    assert await _snapshot(store) == before


async def test_illegal_transitions_are_refused_and_change_nothing(store: Store) -> None:
    opened = await open_incident(store)
    resolved = await auto_resolve(store, opened, at=T0 + timedelta(minutes=1))
    before = await _snapshot(store)
    with pytest.raises(IllegalTransitionError):
        await store.acknowledge_incident(resolved.id, by="al", now=T0 + timedelta(minutes=2))
    with pytest.raises(IllegalTransitionError):
        await store.resolve_incident(resolved.id, by="al", now=T0 + timedelta(minutes=2))
    assert await _snapshot(store) == before

    other = await open_incident(store, metric="error_rate")
    await store.acknowledge_incident(other.id, by="al", now=T0)
    before = await _snapshot(store)
    with pytest.raises(IllegalTransitionError):
        await store.acknowledge_incident(other.id, by="bo", now=T0)
    assert await _snapshot(store) == before


async def test_an_action_without_a_person_is_refused(store: Store) -> None:
    opened = await open_incident(store)
    before = await _snapshot(store)
    with pytest.raises(ValidationError) as caught:
        await store.acknowledge_incident(opened.id, by=" ", now=T0)
    assert caught.value.field == "by"
    with pytest.raises(ValidationError):
        await store.resolve_incident(opened.id, by="", now=T0)
    with pytest.raises(ValidationError):
        await store.acknowledge_incident(opened.id, by="al", now=T0, notes="x" * 5000)
    assert await _snapshot(store) == before
