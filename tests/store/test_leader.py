"""Leader election: one monitor per SQLite file, one leader among PostgreSQL instances."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vigil.store import Store
from vigil.store.leader import (
    FileLeadership,
    MonitorRunningError,
    PostgresLeadership,
    SoleLeadership,
    leadership_for,
)


async def test_a_second_monitor_on_one_sqlite_file_is_refused_clearly(tmp_path: Path) -> None:
    database = tmp_path / "vigil.db"
    first, second = FileLeadership(database), FileLeadership(database)
    assert await first.try_acquire()
    with pytest.raises(MonitorRunningError) as caught:
        await second.try_acquire()
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message and str(database) in message
    assert "PostgreSQL" in message
    assert not second.is_leader
    await first.release()
    assert await second.try_acquire()
    await second.release()


def test_the_database_url_picks_the_kind_of_leadership(tmp_path: Path) -> None:
    assert isinstance(leadership_for("sqlite+aiosqlite://"), SoleLeadership)
    assert isinstance(leadership_for("sqlite+aiosqlite:///:memory:"), SoleLeadership)
    file_lock = leadership_for(f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    assert isinstance(file_lock, FileLeadership)
    assert file_lock.path == tmp_path / "v.db.monitor.lock"
    assert isinstance(leadership_for("postgresql+asyncpg://u@h/db"), PostgresLeadership)


async def test_a_store_hands_out_the_leadership_of_its_database(sqlite_url: str) -> None:
    async with await Store.open(sqlite_url) as store, await Store.open(sqlite_url) as other:
        first, second = store.leadership(), other.leadership()
        assert isinstance(first, FileLeadership)
        assert await first.try_acquire()
        with pytest.raises(MonitorRunningError):
            await second.try_acquire()
        await first.release()


@pytest.mark.postgres
async def test_exactly_one_postgres_instance_leads_and_a_dead_leader_is_replaced(
    postgres_url: str,
) -> None:
    key = 4242  # a key of this test's own, apart from the real monitors'
    first = PostgresLeadership(postgres_url, key=key)
    second = PostgresLeadership(postgres_url, key=key)
    try:
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await first.still_leader()
        # the leader's connection dies (a crashed process): the server frees the lock
        await first._connection.close()
        assert not await first.still_leader()
        assert await second.try_acquire()
        assert not await first.try_acquire()
        await second.release()
        assert await first.try_acquire()
    finally:
        await first.release()
        await second.release()
