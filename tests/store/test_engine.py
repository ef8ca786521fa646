"""The SQLite file Vigil creates is its owner's alone: it holds channel URLs (webhook tokens,
passwords) and password hashes. Its statements go to the driver's thread in one hand-off."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from vigil.store import Store
from vigil.store.engine import create_engine


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
