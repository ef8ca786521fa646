"""The SQLite file Vigil creates is its owner's alone: it holds channel URLs (webhook tokens,
passwords) and password hashes. Its statements go to the driver's thread in one hand-off."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, insert, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from vigil.core import Event, EventKind, Sample, ValidationError
from vigil.core.escalation import Notice
from vigil.core.evaluation import CycleResult
from vigil.core.incidents import Status
from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.store import Store, models
from vigil.store._own import WaitedOnTheLoopError
from vigil.store.engine import create_engine
from vigil.store.errors import VigilStorageError
from vigil.store.records import Claim, OutboxStatus

from .conftest import T0, add_channel, make_incident, open_incident

USER = {"name": "ada", "role": "viewer", "password_hash": "x", "created_at": T0}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def journal_of(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(("-wal", "-shm"))]


async def test_a_new_sqlite_file_and_its_journal_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask, under which SQLite makes files 0644
    try:
        database = tmp_path / "vigil.db"
        async with await Store.open(f"sqlite+aiosqlite:///{database}") as store:
            assert await store.list_users() == []  # migrated, so written
            assert mode(database) == 0o600
            journal = journal_of(tmp_path)
            assert journal, "WAL mode writes beside the database"
            assert {p.name: mode(p) for p in journal} == {p.name: 0o600 for p in journal}
    finally:
        os.umask(previous)


async def test_an_existing_file_keeps_the_mode_its_owner_chose(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    database.touch(mode=0o640)
    database.chmod(0o640)
    async with await Store.open(f"sqlite+aiosqlite:///{database}"):
        pass
    assert mode(database) == 0o640


# -- one hand-off per statement (engine.OneHopCursor) ---------------------------------------


async def test_a_sqlite_statement_is_one_hand_off_to_the_driver_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's own adapter hands each statement to aiosqlite's thread four times (open a
    cursor, execute, fetch, close): on a loaded machine each is a wait for two threads."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'hops.db'}")
    hand_offs = 0
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal hand_offs
        hand_offs += 1
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
            rows = (await connection.execute(text("SELECT 1, 'a' UNION SELECT 2, 'b'"))).all()
            assert hand_offs == 1
            assert [tuple(row) for row in rows] == [(1, "a"), (2, "b")]
    finally:
        await engine.dispose()


async def test_one_hop_statements_keep_what_the_driver_reports(tmp_path: Path) -> None:
    """Row counts, the last row id, many parameter sets, RETURNING, errors as SQLAlchemy's."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'hops.db'}")
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"
            )
            inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
            assert inserted.lastrowid == 1
            many = await connection.execute(
                text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}]
            )
            assert many.rowcount == 2
            changed = await connection.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))
            assert changed.rowcount == 2
            returned = await connection.execute(
                text("INSERT INTO t (v) VALUES ('d') RETURNING id, v")
            )
            assert [tuple(row) for row in returned] == [(4, "d")]
            with pytest.raises(sa_exc.IntegrityError):
                await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
            values = await connection.scalars(text("SELECT v FROM t ORDER BY id"))
            assert values.all() == ["a", "b!", "c!", "d"]
    finally:
        await engine.dispose()


# -- a whole write transaction in one hand-off (_own.drive, StoreBase._write_all) -------------


def count_hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-item list counting every hand-off to any aiosqlite connection's thread."""
    count = [0]
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return count


async def test_a_notifying_cycle_is_one_hand_off_to_the_driver_thread(
    migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cycle that opens an incident runs a dozen statements (its sample, the incident, its
    event, the daily count, the outbox row and its claim, the rule's counters...): on SQLite
    the whole transaction, its BEGIN and COMMIT included, is one hand-off."""
    async with await Store.open(migrated_sqlite_url) as store:
        await add_channel(store)
        statements: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(store._engine.sync_engine, "before_cursor_execute", record)
        incident = make_incident()
        opened = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0)
        claim = Claim(lease=timedelta(seconds=30))
        hand_offs = count_hand_offs(monkeypatch)
        [stored] = await store.commit_cycle(
            samples=[Sample("bot", incident.metric, T0, 150.0)],
            result=CycleResult(events=[opened]),
            now=T0,
            claim=claim,
        )
        assert hand_offs == [1]
        assert len(statements) >= 8, statements
        monkeypatch.undo()
        event.remove(store._engine.sync_engine, "before_cursor_execute", record)
        # ...and it is all there, committed.
        assert stored.incident is not None
        assert (await store.get_incident(incident.id)).status is Status.ACTIVE
        assert [(d.event.id, d.item.channel) for d in claim.deliveries] == [(stored.id, "ops")]
        history = await store.metric_history(
            incident.metric, start=T0, end=T0 + timedelta(seconds=1)
        )
        assert [(point.mean, point.count) for point in history] == [(150.0, 1)]


async def test_claiming_and_recording_deliveries_are_one_hand_off_each(
    migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher's own claim (the rows no cycle claimed for it), its lease renewals and
    its record of each attempt run in the driver's thread as a whole, as a cycle does: one
    hand-off each, BEGIN and COMMIT included, however many statements (the claim reads the
    event and the group; the record counts the rule's notifications)."""
    async with await Store.open(migrated_sqlite_url) as store:
        await add_channel(store)
        await open_incident(store)
        opened_id = await store.last_event_id()
        lease = timedelta(seconds=30)
        hand_offs = count_hand_offs(monkeypatch)
        [delivery] = await store.claim_notifications(now=T0, lease=lease)
        assert hand_offs == [1]
        assert (delivery.event.id, delivery.item.channel) == (opened_id, "ops")
        hand_offs[0] = 0
        assert await store.renew_claims([delivery.item.id], now=T0, lease=lease) == 1
        assert hand_offs == [1]
        hand_offs[0] = 0
        retry_at = T0 + timedelta(seconds=5)
        failed = await store.settle_notification(
            delivery.item.id, now=T0, error="refused", retry_at=retry_at
        )
        assert hand_offs == [1]
        assert (failed.status, failed.next_attempt_at) == (OutboxStatus.PENDING, retry_at)
        [delivery] = await store.claim_notifications(now=retry_at, lease=lease)
        hand_offs[0] = 0
        assert await store.settle_sent([delivery.item.id], now=retry_at) == 1
        assert hand_offs == [1]
        monkeypatch.undo()
        # ...and both committed: the row is sent, and nothing is left to claim.
        counts = await store.outbox_counts()
        assert (counts.pending, counts.sent) == (0, 1)
        assert await store.claim_notifications(now=T0 + timedelta(hours=1), lease=lease) == []


async def test_the_discord_posters_writes_are_one_hand_off_each(
    migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Discord poster records each step of a post (the claim before it, the message id
    after it, each edit, its cursor) in a write of a few statements each: one hand-off each
    on SQLite, so a post waits on one round trip to the driver's thread, not six."""
    async with await Store.open(migrated_sqlite_url) as store:
        incident = await open_incident(store)
        opened_id = await store.last_event_id()
        hand_offs = count_hand_offs(monkeypatch)
        claimed = await store.claim_discord_post(incident.id, channel_id=5, nonce="n", now=T0)
        posted = await store.record_discord_post(
            incident.id, message_id=77, event_id=opened_id, now=T0
        )
        await store.record_discord_edit(incident.id, event_id=opened_id + 1, now=T0)
        cursor = await store.set_discord_cursor("poster", opened_id, now=T0)
        assert hand_offs == [4]
        monkeypatch.undo()
        assert (claimed.message_id, claimed.nonce, posted.message_id) == (None, "n", 77)
        assert cursor == opened_id == await store.discord_cursor("poster")
        kept = await store.discord_message(incident.id)
        assert kept is not None
        assert (kept.message_id, kept.rendered_event_id) == (77, opened_id + 1)


async def test_acknowledging_and_resolving_are_one_hand_off_each(
    migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a person does to incidents (the Acknowledge button, resolving by hand, a group's
    acknowledgement, acknowledging all) is one transaction of several statements and its
    event: one hand-off each on SQLite, so the answer waits on one round trip to the
    driver's thread."""
    async with await Store.open(migrated_sqlite_url) as store:
        await add_channel(store)
        first, second, third = (
            make_incident(metric=metric)
            for metric in ("gateway_latency", "memory_usage", "error_rate")
        )
        await store.commit_cycle(
            samples=[],
            result=CycleResult(
                events=[
                    Event.for_incident(EventKind.INCIDENT_OPENED, i, at=T0) for i in (first, second)
                ]
            ),
            now=T0,
            group_window=timedelta(minutes=5),
        )
        group = (await store.get_incident(first.id)).group
        assert group is not None
        hand_offs = count_hand_offs(monkeypatch)
        acknowledged = await store.acknowledge_group(group, by="ana", now=T0)
        assert hand_offs == [1]
        assert {incident.id for incident, _ in acknowledged} == {first.id, second.id}
        hand_offs[0] = 0
        resolved, _ = await store.resolve_incident(first.id, by="ana", now=T0)
        assert hand_offs == [1]
        monkeypatch.undo()
        await open_incident(store, third)
        hand_offs = count_hand_offs(monkeypatch)
        [(all_acknowledged, _)] = await store.acknowledge_all(by="ana", now=T0)
        assert hand_offs == [1]
        monkeypatch.undo()
        incident = await open_incident(store, metric="cpu_usage")
        hand_offs = count_hand_offs(monkeypatch)
        one, event = await store.acknowledge_incident(incident.id, by="ana", now=T0)
        assert hand_offs == [1]
        monkeypatch.undo()
        # ...each committed, with its event in the log.
        assert resolved.status is Status.RESOLVED
        assert (await store.get_incident(first.id)).status is Status.RESOLVED
        assert (await store.get_incident(second.id)).status is Status.ACKNOWLEDGED
        assert all_acknowledged.id == third.id
        assert (await store.get_incident(third.id)).status is Status.ACKNOWLEDGED
        assert (await store.get_incident(incident.id)).status is Status.ACKNOWLEDGED
        assert (one.status, event.id) == (Status.ACKNOWLEDGED, await store.last_event_id())


async def test_follow_ups_are_written_in_one_hand_off_each(
    migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notifier's follow-ups (a reminder, an escalation step's notices) check that the
    incident is still active, read its opening and write the rows: one hand-off each."""
    async with await Store.open(migrated_sqlite_url) as store:
        await add_channel(store)
        incident = await open_incident(store)
        [last] = await store.last_notifications([incident.id])
        later = T0 + timedelta(minutes=10)
        notice = Notice(incident.id, "night", 1, 0, 1, "ops", later)
        hand_offs = count_hand_offs(monkeypatch)
        reminder = await store.enqueue_reminder(last, now=later)
        assert hand_offs == [1]
        hand_offs[0] = 0
        assert await store.enqueue_escalations([notice], now=later) == 1
        assert hand_offs == [1]
        monkeypatch.undo()
        assert reminder is not None
        assert (reminder.repeat, reminder.event_id) == (1, last.event_id)
        assert (await store.outbox_counts()).pending == 3  # the opening's, the reminder, the step


async def test_a_transaction_that_waits_on_the_event_loop_is_refused_and_rolled_back(
    migrated_sqlite_url: str,
) -> None:
    """What runs in the driver's thread must wait on nothing but its statements: a body that
    waits on the event loop is a bug, reported as such, and nothing of it is written."""
    async with await Store.open(migrated_sqlite_url) as store:

        async def waits(connection: AsyncConnection) -> None:
            await connection.execute(insert(models.users).values(USER))
            await asyncio.sleep(0)

        with pytest.raises(WaitedOnTheLoopError):
            await store._write_all("a test's write", waits)
        assert await store.list_users() == []

        async def writes(connection: AsyncConnection) -> int:
            await connection.execute(insert(models.users).values(USER))
            return 7

        assert await store._write_all("a test's write", writes) == 7  # the connection is fine
        assert [user.name for user in await store.list_users()] == [USER["name"]]


async def test_a_transaction_cancelled_in_the_driver_thread_ends_there_first(
    migrated_sqlite_url: str,
) -> None:
    """Once handed over, a transaction runs to its end in the driver's thread: the cancelled
    caller waits for that end, so its connection goes back to the pool idle, and what the
    transaction committed stays committed, as after a crash past its commit."""
    started, release = threading.Event(), threading.Event()
    async with await Store.open(migrated_sqlite_url) as store:

        async def slow(connection: AsyncConnection) -> None:
            await connection.execute(insert(models.users).values(USER))
            started.set()
            release.wait(60)  # in the driver's thread: the event loop goes on meanwhile

        writing = asyncio.ensure_future(store._write_all("a test's write", slow))
        assert await asyncio.to_thread(started.wait, 60)
        writing.cancel()
        for _ in range(20):  # the cancellation delivered: the caller waits for the thread
            await asyncio.sleep(0)
        assert not writing.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert [user.name for user in await store.list_users()] == [USER["name"]]
        assert await store.list_channels() == []  # and the pool's connection serves again


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite:///file:vigil?mode=memory&cache=shared&uri=true",
        "sqlite+aiosqlite:///file::memory:?uri=true",
    ],
)
async def test_an_in_memory_database_is_refused_with_what_to_give_instead(url: str) -> None:
    """Each of Vigil's tasks holds a connection and a transaction of its own; on one shared
    in-memory connection they collided ("cannot start a transaction within a transaction")
    and the monitor and the notifier failed every round."""
    with pytest.raises(ValidationError) as refused:
        await Store.open(url)
    assert refused.value.field == "database_url"
    assert "in-memory" in str(refused.value) and "sqlite+aiosqlite:///vigil.db" in str(
        refused.value
    )
    with pytest.raises(ValidationError, match="in-memory"):
        await Vigil(Settings(database_url=url), process_metrics=False).start()


async def test_a_file_uri_names_the_same_file_as_its_path(tmp_path: Path) -> None:
    """A ``file:`` URI was read as a path relative to the working directory: every such
    database was refused, its directory said not to exist."""
    database = tmp_path / "vigil.db"
    async with await Store.open(f"sqlite+aiosqlite:///file:{database}?uri=true") as store:
        await store.add_user("ada", role="viewer", password_hash="x", now=T0)
        assert mode(database) == 0o600  # owner-only, as a database named by its path
        lock = getattr(store.leadership(), "path", None)
        assert lock == tmp_path / "vigil.db.monitor.lock"  # one monitor per file, either way
    async with await Store.open(f"sqlite+aiosqlite:///{database}") as store:
        assert [user.name for user in await store.list_users()] == ["ada"]


async def test_a_file_uri_in_a_missing_directory_names_that_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(VigilStorageError, match=f"the directory {missing} does not exist"):
        await Store.open(f"sqlite+aiosqlite:///file:{missing / 'vigil.db'}?uri=true")


async def test_a_tilde_is_not_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite opens ``~/vigil.db`` in a directory named ``~``; Vigil made the file in the home
    directory instead, left it there empty, and failed with "unable to open database file"."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VigilStorageError, match="does not expand ~") as refused:
        await Store.open("sqlite+aiosqlite:///~/vigil.db")
    assert str(tmp_path / "~") in str(refused.value)
    assert list(home.iterdir()) == []
