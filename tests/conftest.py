"""Shared fixtures: real databases. PostgreSQL tests skip with instructions on a machine
without it, and fail under CI=true, where a missing database is a broken environment."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

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
