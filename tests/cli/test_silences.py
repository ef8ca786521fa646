"""``vigil snooze`` and ``vigil maintenance`` (silences), run as a user runs them, against
both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.cli.silences import parse_duration
from vigil.core import EventKind
from vigil.core.silences import WindowKind
from vigil.runtime.vigil import utcnow
from vigil.store import Store

from .support import in_thread


async def test_snooze_list_and_end(migrated_url: str) -> None:
    code, output = await in_thread(
        migrated_url, "snooze", "gateway_latency", "--for", "1h30m", "--reason", "deploy"
    )
    assert code == 0 and "gateway_latency snoozed until" in output, output
    code, output = await in_thread(migrated_url, "snooze", "list")
    assert "gateway_latency" in output and "deploy" in output and "(cli)" in output
    code, output = await in_thread(migrated_url, "snooze", "end", "gateway_latency", "--by", "ana")
    assert code == 0 and "resumed" in output
    assert "No rule is snoozed" in (await in_thread(migrated_url, "snooze", "list"))[1]

    async with await Store.open(migrated_url) as store:
        events = await store.events_after(0)
    assert [e.kind for e in events] == [EventKind.SNOOZE_STARTED, EventKind.SNOOZE_ENDED]
    started, ended = events
    assert started.data["until"] == ((started.at + timedelta(hours=1, minutes=30)).isoformat())
    assert ended.by == "ana"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["gateway_latency", "--for", "soon", "--reason", "x"], "for: 'soon' is not a duration"),
        (["gateway_latency", "--for", "0m", "--reason", "x"], "for: must be longer than zero"),
        (["gateway_latency", "--for", "1h"], "reason: is required"),
        (["no_such_rule", "--for", "1h", "--reason", "x"], "rule no_such_rule not found"),
        (["end", "gateway_latency"], "snooze gateway_latency not found"),
    ],
)
async def test_a_bad_snooze_is_an_error_and_stores_nothing(
    migrated_url: str, args: list[str], says: str
) -> None:
    code, output = await in_thread(migrated_url, "snooze", *args)
    assert code == 1 and says in output
    async with await Store.open(migrated_url) as store:
        assert await store.events_after(0) == []


def test_durations() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1d2h") == timedelta(days=1, hours=2)
    assert parse_duration(" 90S ") == timedelta(seconds=90)


async def test_maintenance_add_list_remove(migrated_url: str) -> None:
    code, output = await in_thread(
        migrated_url,
        "maintenance",
        "add",
        "nightly",
        "--weekly",
        "fri-mon",
        "--from",
        "23:00",
        "--to",
        "02:00",
        "--timezone",
        "Europe/Berlin",
        "--reason",
        "backups",
    )
    assert code == 0, output
    assert "mon,fri,sat,sun 23:00-02:00 Europe/Berlin" in output  # fri-mon, in week order
    code, output = await in_thread(
        migrated_url,
        "maintenance",
        "add",
        "db-move",
        "--start",
        "2026-12-01T22:00",
        "--end",
        "2026-12-02T01:00",
        "--timezone",
        "America/New_York",
        "--metric",
        "database_query_time",
    )
    assert code == 0, output
    assert "2026-12-01T22:00:00-05:00 to 2026-12-02T01:00:00-05:00" in output
    code, output = await in_thread(migrated_url, "maintenance", "list")
    assert "nightly" in output and "db-move" in output and "database_query_time" in output

    async with await Store.open(migrated_url) as store:
        windows = {w.name: w for w in await store.list_windows()}
    assert windows["nightly"].kind is WindowKind.WEEKLY and windows["nightly"].metrics is None
    assert windows["db-move"].start is not None
    assert windows["db-move"].start.utcoffset() == timedelta(hours=-5)

    code, output = await in_thread(migrated_url, "maintenance", "remove", "db-move")
    assert code == 0 and "Removed maintenance window db-move" in output
    assert "db-move" not in (await in_thread(migrated_url, "maintenance", "list"))[1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--start", "2026-12-01T22:00", "--end", "2026-12-01T21:00"], "end: must be after start"),
        (["--start", "2026-12-01T22:00"], "end: is required"),
        (["--start", "yesterday", "--end", "2026-12-01T21:00"], "start: 'yesterday'"),
        (
            ["--weekly", "sat", "--from", "23:00", "--to", "02:00", "--timezone", "Mars/Base"],
            "timezone",
        ),
        (["--weekly", "caturday", "--from", "23:00", "--to", "02:00"], "weekdays"),
        (
            ["--start", "2026-12-01T20:00", "--end", "2026-12-01T21:00", "--metric", "nope"],
            "metrics",
        ),
    ],
)
async def test_a_bad_window_is_an_error_and_stores_nothing(
    migrated_url: str, args: list[str], says: str
) -> None:
    code, output = await in_thread(migrated_url, "maintenance", "add", "w", *args)
    assert code == 1 and says in output, output
    async with await Store.open(migrated_url) as store:
        assert await store.list_windows() == []
        assert await store.events_after(0) == []


async def test_a_command_needs_no_running_vigil_and_leaves_an_event_for_one(
    migrated_url: str,
) -> None:
    before = utcnow()
    await in_thread(
        migrated_url,
        "maintenance",
        "add",
        "now",
        "--start",
        before.isoformat(),
        "--end",
        (before + timedelta(hours=1)).isoformat(),
    )
    async with await Store.open(migrated_url) as store:
        [event] = await store.events_after(0)
    assert event.kind is EventKind.MAINTENANCE_ADDED and event.data["window"]["name"] == "now"
