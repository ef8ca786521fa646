"""``vigil db``, run as a user runs it, against both databases."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.store.migrate import head_revision

from ..store.conftest import table_names
from .support import vigil


async def _table_count(url: str) -> int:
    return len(await table_names(url))


def test_db_upgrade_downgrade_and_current(database_url: str) -> None:
    code, output = vigil(database_url, "db", "current")
    assert code == 0 and "none" in output

    code, output = vigil(database_url, "db", "upgrade")
    assert code == 0 and head_revision() in output
    assert asyncio.run(_table_count(database_url)) > 5

    code, output = vigil(database_url, "db", "current")
    assert code == 0 and "up to date" in output

    code, output = vigil(database_url, "db", "downgrade", "base", "--yes")
    assert code == 0 and "base" in output
    code, output = vigil(database_url, "db", "current")
    assert "none" in output


def test_downgrade_asks_first(database_url: str) -> None:
    vigil(database_url, "db", "upgrade")
    result = CliRunner().invoke(
        app, ["db", "downgrade", "base"], input="n\n", env={"VIGIL_DATABASE_URL": database_url}
    )
    assert result.exit_code != 0
    _, output = vigil(database_url, "db", "current")
    assert "up to date" in output


@pytest.mark.postgres
def test_a_database_error_is_a_message_not_a_traceback() -> None:
    code, output = vigil("postgresql+asyncpg://postgres@127.0.0.1:1/none", "db", "upgrade")
    assert code == 1
    assert "error:" in output and "Traceback" not in output
