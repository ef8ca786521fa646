"""Migrations: up from empty, down to empty, up again; the models match the migrated schema."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from vigil.core.catalogue import DEFAULT_RULES
from vigil.store import Store, VigilStorageError, migrate
from vigil.store.migrate import head_revision
from vigil.store.models import Base

from .conftest import raw, table_names

VIGIL_TABLES = sorted(Base.metadata.tables)


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    store = await Store.open(database_url, upgrade=True)
    try:
        assert await migrate.current(database_url) == head_revision()
        assert set(VIGIL_TABLES) <= set(await table_names(database_url))

        assert await migrate.downgrade(database_url, "base") is None
        assert set(await table_names(database_url)) <= {"alembic_version"}

        assert await migrate.upgrade(database_url) == head_revision()
        assert set(VIGIL_TABLES) <= set(await table_names(database_url))
        # The seed ran again after the round trip: the catalogue is back, once.
        assert [rule.metric for rule in await store.list_rules()] == sorted(
            rule.metric for rule in DEFAULT_RULES
        )
    finally:
        await store.close()


async def test_models_match_the_migrated_schema(store: Store, database_url: str) -> None:
    async with raw(database_url) as connection:
        differences = await connection.run_sync(_schema_differences)
    assert differences == []


async def test_first_migration_seeds_the_default_catalogue(store: Store) -> None:
    rules = {rule.metric: rule for rule in await store.list_rules()}
    assert rules == {rule.metric: rule for rule in DEFAULT_RULES}


async def test_an_empty_sqlite_file_is_migrated_on_open(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    try:
        assert await migrate.current(sqlite_url) == head_revision()
        assert len(await store.list_rules()) == len(DEFAULT_RULES)
    finally:
        await store.close()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(sqlite_url: str) -> None:
    await (await Store.open(sqlite_url)).close()
    async with raw(sqlite_url) as connection:  # configured as the store's own connections
        journal = await connection.scalar(text("PRAGMA journal_mode"))
        foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
        busy_timeout = await connection.scalar(text("PRAGMA busy_timeout"))
    assert (journal, foreign_keys) == ("wal", 1)
    assert busy_timeout is not None and busy_timeout >= 1000


def test_head_names_the_newest_migration() -> None:
    assert migrate.HEAD == head_revision(), (
        f"a migration was added: set HEAD in vigil/store/migrate.py to {head_revision()!r}"
    )


async def test_a_database_behind_this_vigil_is_refused_or_upgraded(database_url: str) -> None:
    """Opening compares the database's revision with HEAD: one revision behind is refused
    with both named when upgrading is off, and brought up to HEAD when it is on."""
    await migrate.upgrade(database_url)
    previous = f"{int(migrate.HEAD) - 1:04d}"
    assert await migrate.downgrade(database_url, previous) == previous
    with pytest.raises(
        VigilStorageError, match=f"revision {previous}; this Vigil needs {migrate.HEAD}"
    ):
        await Store.open(database_url, upgrade=False)
    await (await Store.open(database_url, upgrade=True)).close()
    assert await migrate.current(database_url) == migrate.HEAD


def test_opening_an_up_to_date_store_does_not_load_alembic(migrated_sqlite_url: str) -> None:
    code = (
        "import asyncio, json, sys\n"
        "from vigil.store import Store\n"
        "async def main():\n"
        "    store = await Store.open(sys.argv[1])\n"
        "    rules = len(await store.list_rules())\n"
        "    await store.close()\n"
        "    return rules\n"
        "print(json.dumps([asyncio.run(main()), 'alembic' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, migrated_sqlite_url], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"[{len(DEFAULT_RULES)}, false]"


@pytest.mark.postgres
async def test_an_unmigrated_postgres_database_is_refused_with_the_fix(
    postgres_url: str,
) -> None:
    from tests.conftest import _reset_postgres

    await _reset_postgres(postgres_url)
    with pytest.raises(VigilStorageError, match="vigil db upgrade"):
        await Store.open(postgres_url)


async def test_an_unreachable_database_is_a_storage_error(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'vigil.db'}"
    with pytest.raises(VigilStorageError):
        await Store.open(url)


@pytest.mark.postgres
async def test_an_unreachable_postgres_server_is_a_storage_error() -> None:
    # Port 1 on localhost: nothing listens there, the connection is refused at once.
    with pytest.raises(VigilStorageError, match="failed"):
        await Store.open("postgresql+asyncpg://postgres@127.0.0.1:1/none")
