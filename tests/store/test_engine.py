"""The SQLite file Vigil creates is its owner's alone: it holds channel URLs (webhook tokens,
passwords) and password hashes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vigil.store import Store


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
