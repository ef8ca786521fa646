"""Shared fixtures: real databases. PostgreSQL tests skip with instructions on a machine
without it, and fail under CI=true, where a missing database is a broken environment."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

# The receivers' fixtures (webhook, smtp) serve the sender tests in tests/notify and the
# dispatcher tests in tests/runtime.
pytest_plugins = ["tests.notify.receiver"]

POSTGRES_ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _unavailable(what: str, how: str) -> None:
    message = f"{what} is not available: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(message)


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test run, as an asyncpg SQLAlchemy URL."""
    name = f"vigil_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, ImportError) as exc:
        _unavailable(
            f"PostgreSQL at {POSTGRES_ADMIN_URL}",
            f"{exc}. Start it (pg_ctlcluster <version> main start) or point "
            "VIGIL_TEST_POSTGRES_URL at a server where the user may create databases.",
        )
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    yield base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"


async def _reset_postgres(url: str) -> None:
    """Empty the run's database: one schema dropped and recreated is far cheaper than a
    database per test, and just as clean."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_kind(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Run the test on each database. Synchronous on purpose: the session's postgres_url
    fixture runs its own event loop."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.param, request.getfixturevalue(fixture)


@pytest.fixture
async def database_url(database_kind: tuple[str, str]) -> str:
    """An empty database of each kind."""
    kind, url = database_kind
    if kind == "postgres":
        await _reset_postgres(url)
    return url


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """A database of each kind with Vigil's schema and default rules."""
    from vigil.store import Store

    store = await Store.open(database_url, upgrade=True)
    await store.close()
    return database_url


@pytest.fixture
async def migrated_postgres_url(postgres_url: str) -> str:
    """This run's PostgreSQL database, emptied, with Vigil's schema and default rules."""
    from vigil.store import Store

    await _reset_postgres(postgres_url)
    store = await Store.open(postgres_url, upgrade=True)
    await store.close()
    return postgres_url
