"""The suite's database fixtures (tests/conftest.py): a migrated database given to a test is
as fresh as one migrated for it, whatever the test before it did, and an empty one is empty."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from vigil.core.catalogue import DEFAULT_RULES
from vigil.store import Store, migrate
from vigil.store.migrate import head_revision

from .conftest import MigratedPostgres

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _dirty(url: str) -> None:
    """What a test leaves behind: rows of its own, a default rule gone, sequences moved on."""
    async with await Store.open(url) as store:
        await store.add_user("alice", role="admin", password_hash="x", now=T0)
        await store.add_user("bob", role="viewer", password_hash="x", now=T0)
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute("DELETE FROM rules WHERE metric = $1", DEFAULT_RULES[0].metric)
    finally:
        await connection.close()


async def _as_fresh(url: str) -> None:
    async with await Store.open(url) as store:
        assert await store.list_users() == []
        assert await store.list_rules() == sorted(DEFAULT_RULES, key=lambda rule: rule.metric)
        # The sequences start again: the first row gets the id it gets in a new database.
        user = await store.add_user("carol", role="viewer", password_hash="x", now=T0)
        assert user.id == 1


@pytest.mark.postgres
async def test_a_reset_postgres_database_is_as_freshly_migrated(
    postgres_template: MigratedPostgres,
) -> None:
    await postgres_template.reset()
    await _dirty(postgres_template.url)
    await postgres_template.reset()
    await _as_fresh(postgres_template.url)


@pytest.mark.postgres
async def test_a_schema_changed_by_a_test_is_migrated_again(
    postgres_template: MigratedPostgres,
) -> None:
    await postgres_template.reset()
    await migrate.downgrade(postgres_template.url, "base")
    await postgres_template.reset()
    assert await migrate.current(postgres_template.url) == head_revision()
    await _as_fresh(postgres_template.url)

    connection = await asyncpg.connect(postgres_template.url.replace("+asyncpg", ""))
    try:
        await connection.execute("ALTER TABLE users ADD COLUMN extra integer")
    finally:
        await connection.close()
    await postgres_template.reset()
    connection = await asyncpg.connect(postgres_template.url.replace("+asyncpg", ""))
    try:
        columns = await connection.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
        )
    finally:
        await connection.close()
    assert "extra" not in {row["column_name"] for row in columns}
    await _as_fresh(postgres_template.url)


async def test_a_migrated_sqlite_copy_is_fresh_and_the_tests_own(migrated_sqlite_url: str) -> None:
    assert await migrate.current(migrated_sqlite_url) == head_revision()
    await _as_fresh(migrated_sqlite_url)


async def test_database_url_is_empty_for_a_test_that_migrates_it_itself(database_url: str) -> None:
    assert await migrate.current(database_url) is None


async def test_database_url_is_the_migrated_database_beside_migrated_url(
    migrated_url: str, database_url: str
) -> None:
    assert database_url == migrated_url
    assert await migrate.current(database_url) == head_revision()
