"""Wake-ups for readers of the event log: NOTIFY on PostgreSQL, a poll everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from vigil.core.events import Event, EventKind
from vigil.core.samples import Sample
from vigil.store import EventWatch, Store

from ..conftest import POSTGRES_ADMIN_URL

DEADLINE = 60.0  # generous: reached only when the behaviour under test is broken
FOREVER = 3600.0  # a poll that never comes within a test: only a NOTIFY can wake the watch


async def _append(store: Store) -> None:
    event = Event(kind=EventKind.LEADER_CHANGED, at=datetime.now(UTC), data={"instance": "x"})
    await store.append_events([event])


async def _step(watch: object) -> None:
    await asyncio.wait_for(anext(watch), DEADLINE)  # type: ignore[call-overload]


async def test_without_postgres_a_watch_polls(sqlite_url: str) -> None:
    """Without a version to look at (an in-memory database), every poll is a wake-up."""
    memory = make_url("sqlite+aiosqlite://")
    async with EventWatch(memory, poll=0.01) as watch:
        for _ in range(3):
            await _step(watch)
        assert not watch.listening


async def test_a_sqlite_log_version_moves_only_when_a_process_appends_events(
    sqlite_url: str,
) -> None:
    async with await Store.open(sqlite_url) as store, await Store.open(sqlite_url) as other:
        before = store.log_version()
        assert before is not None
        await other.add_samples([Sample("i", "m", datetime.now(UTC), 1.0)])
        await other.list_rules()
        assert store.log_version() == before  # samples and reads are not events
        await _append(other)  # another process (another store on the file) appends
        after = store.log_version()
        assert after != before and other.log_version() == after
        await _append(store)
        assert store.log_version() != after


async def test_a_sqlite_files_log_read_on_the_reader_is_the_pools_read(sqlite_url: str) -> None:
    """``events_after`` on a SQLite file reads on the store's reader connection, in SQLite's
    words: the same events as the pool's read through SQLAlchemy's types (payloads through
    JSON text: text beyond ASCII, floats, nested values, nulls), what another store on the
    file appended included, and the same pages."""
    from sqlalchemy import select

    from vigil.store import models
    from vigil.store._base import event_from_row

    data = [
        {"instance": "ünïcode ✓", "value": 0.1, "n": [1, [2.5, None]], "nothing": None},
        {"instance": "big", "value": 1e300, "tiny": 5e-324, "flag": True},
    ]
    async with await Store.open(sqlite_url) as store, await Store.open(sqlite_url) as other:
        for n in range(7):
            event = Event(kind=EventKind.LEADER_CHANGED, at=datetime.now(UTC), data=data[n % 2])
            await (store if n % 2 else other).append_events([event])
        async with store._engine.connect() as connection:
            statement = select(models.events).order_by(models.events.c.id)
            expected = [event_from_row(row) for row in (await connection.execute(statement)).all()]
        assert len(expected) == 7
        assert await store.events_after(0) == expected
        assert await store.events_after(2, limit=3) == expected[2:5]
        assert await store.events_after(7) == []


async def test_a_sqlite_watch_wakes_when_events_are_appended_not_before(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store, await Store.open(sqlite_url) as other:
        looks = 0

        def version() -> object:
            nonlocal looks
            looks += 1
            return store.log_version()

        watch = EventWatch(make_url(sqlite_url), poll=0.001, recheck=FOREVER, version=version)
        async with watch:
            await _step(watch)  # the first step says "look now" at once
            waiting = asyncio.ensure_future(anext(watch))
            await _until(lambda: looks >= 20)
            assert not waiting.done()  # twenty looks, nothing appended: still asleep
            await _append(other)
            await asyncio.wait_for(waiting, DEADLINE)


async def test_a_sqlite_watch_rechecks_without_a_signal(sqlite_url: str) -> None:
    """A process killed between its commit and its stamp: the recheck still looks."""
    async with await Store.open(sqlite_url) as store:
        watch = EventWatch(
            make_url(sqlite_url), poll=0.001, recheck=0.01, version=store.log_version
        )
        async with watch:
            for _ in range(3):
                await _step(watch)


async def test_a_watch_cancelled_just_as_it_wakes_is_cancelled() -> None:
    """On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives just as what
    it waits for is done: a reader stopped right after a NOTIFY went on reading, and Vigil's
    ``aclose`` waited for it. Cancelled 0 to 3 loop steps after its wake-up, a step not yet
    over ends cancelled."""
    memory = make_url("sqlite+aiosqlite://")
    async with EventWatch(memory, poll=FOREVER) as watch:
        for steps in range(4):
            waiting = asyncio.ensure_future(anext(watch))
            await asyncio.sleep(0)  # it waits for its wake-up
            watch._wake.set()  # as a NOTIFY does
            for _ in range(steps):
                await asyncio.sleep(0)
            if waiting.done():
                continue  # it took its wake-up before the cancellation came: nothing to lose
            waiting.cancel()
            await asyncio.wait([waiting], timeout=DEADLINE)
            assert waiting.cancelled(), f"not cancelled {steps} steps after its wake-up"


async def _until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), DEADLINE)


@pytest.mark.postgres
async def test_an_event_committed_elsewhere_wakes_the_watch_at_once(
    migrated_postgres_url: str,
) -> None:
    async with (
        await Store.open(migrated_postgres_url) as store,
        await Store.open(migrated_postgres_url) as other,
        store.watch_events(poll=FOREVER, recheck=FOREVER) as watch,
    ):
        await _step(watch)  # listening now; the first step says "look now" at once
        assert watch.listening
        waiting = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(0)
        assert not waiting.done()
        await _append(other)
        await asyncio.wait_for(waiting, DEADLINE)


@pytest.mark.postgres
async def test_a_lost_listen_connection_is_opened_again(migrated_postgres_url: str) -> None:
    name = migrated_postgres_url.rsplit("/", 1)[1]
    async with (
        await Store.open(migrated_postgres_url) as store,
        store.watch_events(poll=FOREVER, recheck=FOREVER) as watch,
    ):
        await _step(watch)
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            # the server cuts every connection of the database: the pool's and the watch's
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        finally:
            await admin.close()
        await _step(watch)  # woken by the loss
        await _step(watch)  # listening again, and looking at once for what it missed
        assert watch.listening
        waiting = asyncio.ensure_future(anext(watch))
        await _append(store)
        await asyncio.wait_for(waiting, DEADLINE)


async def test_an_unreachable_server_is_polled_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = make_url("postgresql+asyncpg://postgres@127.0.0.1:9/vigil")  # nothing on port 9
    async with EventWatch(nowhere, poll=0.01) as watch:
        await _step(watch)
        await _step(watch)
        assert not watch.listening
    assert "cannot LISTEN for events" in caplog.text
