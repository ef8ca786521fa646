"""Snoozes and maintenance windows in the database: each change an event, bad input stored
nowhere, an expired snooze recorded once."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta

import pytest

from vigil.core.errors import NotFoundError, ValidationError
from vigil.core.events import EventKind
from vigil.core.silences import MaintenanceWindow, Snooze, WindowKind
from vigil.store import Store

from .conftest import T0

LATENCY = "gateway_latency"


def _snooze(minutes: int = 30, *, at: timedelta = timedelta(0), by: str = "ana") -> Snooze:
    return Snooze.for_duration(
        LATENCY, duration=timedelta(minutes=minutes), reason="deploy", by=by, now=T0 + at
    )


async def test_a_snooze_is_stored_with_its_event(store: Store) -> None:
    snooze = _snooze()
    [started] = await store.set_snooze(snooze)
    assert (started.kind, started.metric, started.by) == (EventKind.SNOOZE_STARTED, LATENCY, "ana")
    assert started.data == {"until": snooze.until.isoformat(), "reason": "deploy"}
    assert await store.events_after(0) == [started]
    assert await store.active_snoozes() == [snooze]
    assert await store.active_snoozes(now=snooze.until) == []  # over, though not yet recorded


async def test_snoozing_again_replaces_the_snooze(store: Store) -> None:
    first = _snooze(30)
    await store.set_snooze(first)
    second = _snooze(120, at=timedelta(minutes=5), by="bo")
    ended, started = await store.set_snooze(second)
    assert (ended.kind, ended.by, ended.data["expired"]) == (EventKind.SNOOZE_ENDED, "bo", False)
    assert ended.at == second.created_at
    assert started.kind is EventKind.SNOOZE_STARTED
    assert await store.active_snoozes() == [second]


async def test_ending_a_snooze_early(store: Store) -> None:
    snooze = _snooze()
    await store.set_snooze(snooze)
    lifted_at = T0 + timedelta(minutes=3)
    ended = await store.end_snooze(LATENCY, by="bo", now=lifted_at)
    assert (ended.kind, ended.by, ended.at, ended.data["expired"]) == (
        EventKind.SNOOZE_ENDED,
        "bo",
        lifted_at,
        False,
    )
    assert await store.active_snoozes() == []
    with pytest.raises(NotFoundError):
        await store.end_snooze(LATENCY, by="bo", now=lifted_at)


async def test_an_expired_snooze_is_recorded_once(store: Store) -> None:
    snooze = _snooze(10)
    await store.set_snooze(snooze)
    assert await store.expire_snoozes(now=snooze.until - timedelta(seconds=1)) == []
    # two leaders (or one, twice) at the same moment: one of them records the end
    results = await asyncio.gather(*(store.expire_snoozes(now=snooze.until) for _ in range(3)))
    ended = [event for result in results for event in result]
    assert len(ended) == 1
    [event] = ended
    assert (event.kind, event.metric, event.by, event.at) == (
        EventKind.SNOOZE_ENDED,
        LATENCY,
        None,
        snooze.until,
    )
    assert event.data["expired"] is True
    assert await store.active_snoozes() == []
    assert await store.expire_snoozes(now=snooze.until + timedelta(days=1)) == []


async def test_a_snooze_needs_a_rule_and_a_reason(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.set_snooze(
            Snooze.for_duration(
                "no.such_rule", duration=timedelta(hours=1), reason="x", by="a", now=T0
            )
        )
    with pytest.raises(ValidationError) as caught:
        Snooze.for_duration(LATENCY, duration=timedelta(hours=1), reason=" ", by="a", now=T0)
    assert caught.value.field == "reason"
    assert await store.active_snoozes() == []
    assert await store.events_after(0) == []


# -- maintenance windows -------------------------------------------------------------------------


async def test_windows_are_stored_listed_and_removed_with_events(store: Store) -> None:
    nightly = MaintenanceWindow.weekly(
        "nightly",
        weekdays=["fri", "sat"],
        start_time="23:00",
        end_time="02:00",
        timezone="Europe/Berlin",
        reason="backups",
        by="ana",
    )
    added, event = await store.add_window(nightly, now=T0)
    assert added == nightly
    assert (event.kind, event.by, event.data["window"]) == (
        EventKind.MAINTENANCE_ADDED,
        "ana",
        nightly.to_dict(),
    )
    once, _ = await store.add_window(
        {
            "name": "db-move",
            "kind": "once",
            "start": (T0 + timedelta(days=1)).isoformat(),
            "end": (T0 + timedelta(days=1, hours=2)).isoformat(),
            "metrics": [LATENCY, "database_query_time"],
        },
        now=T0,
    )
    assert once.kind is WindowKind.ONCE and once.metrics == frozenset(
        {LATENCY, "database_query_time"}
    )
    assert await store.list_windows() == [once, nightly]
    stored = await store.get_window("nightly")
    assert stored.start_time == time(23, 0) and stored.timezone == "Europe/Berlin"

    removed = await store.delete_window("db-move", by="bo", now=T0)
    assert (removed.kind, removed.by) == (EventKind.MAINTENANCE_REMOVED, "bo")
    assert await store.list_windows() == [nightly]
    with pytest.raises(NotFoundError):
        await store.delete_window("db-move", by="bo", now=T0)
    with pytest.raises(NotFoundError):
        await store.get_window("db-move")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {
                "kind": "once",
                "start": "2026-03-02T10:00:00+00:00",
                "end": "2026-03-02T09:00:00+00:00",
            },
            "end",
        ),
        ({"kind": "once", "start": "2026-03-02T10:00:00", "end": "2026-03-02T12:00:00"}, "start"),
        (
            {
                "kind": "weekly",
                "weekdays": ["sun"],
                "start_time": "01:00",
                "end_time": "04:00",
                "timezone": "Mars/Olympus",
            },
            "timezone",
        ),
        (
            {
                "kind": "weekly",
                "weekdays": ["someday"],
                "start_time": "01:00",
                "end_time": "04:00",
                "timezone": "UTC",
            },
            "weekdays",
        ),
        (
            {
                "kind": "once",
                "start": "2026-03-02T10:00:00+00:00",
                "end": "2026-03-02T12:00:00+00:00",
                "metrics": ["no_such_rule"],
            },
            "metrics",
        ),
    ],
)
async def test_a_bad_window_is_refused_and_nothing_is_stored(
    store: Store, data: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await store.add_window({"name": "w", **data}, now=T0)
    assert caught.value.field == field
    assert await store.list_windows() == []
    assert await store.events_after(0) == []


async def test_a_taken_window_name_is_refused(store: Store) -> None:
    window = MaintenanceWindow.once("w", start=T0, end=T0 + timedelta(hours=1))
    await store.add_window(window, now=T0)
    with pytest.raises(ValidationError, match="already exists"):
        await store.add_window(window, now=T0)
    assert await store.list_windows() == [window]
