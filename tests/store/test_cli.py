"""The storage commands, run as a user runs them, against both databases."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.core.samples import Sample
from vigil.store import Store
from vigil.store.migrate import head_revision

from .conftest import T0, table_names


def _run(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"VIGIL_DATABASE_URL": url})
    return result.exit_code, result.output


async def _table_count(url: str) -> int:
    return len(await table_names(url))


def test_db_upgrade_downgrade_and_current(database_url: str) -> None:
    code, output = _run(database_url, "db", "current")
    assert code == 0 and "none" in output

    code, output = _run(database_url, "db", "upgrade")
    assert code == 0 and head_revision() in output
    assert asyncio.run(_table_count(database_url)) > 5

    code, output = _run(database_url, "db", "current")
    assert code == 0 and "up to date" in output

    code, output = _run(database_url, "db", "downgrade", "base", "--yes")
    assert code == 0 and "base" in output
    code, output = _run(database_url, "db", "current")
    assert "none" in output


def test_downgrade_asks_first(database_url: str) -> None:
    _run(database_url, "db", "upgrade")
    result = CliRunner().invoke(
        app, ["db", "downgrade", "base"], input="n\n", env={"VIGIL_DATABASE_URL": database_url}
    )
    assert result.exit_code != 0
    _, output = _run(database_url, "db", "current")
    assert "up to date" in output


async def _old_samples(url: str) -> None:
    store = await Store.open(url, upgrade=True)
    try:
        await store.add_samples([Sample("bot", "gateway_latency", T0, 1.0)] * 3)
    finally:
        await store.close()


def test_cleanup_reports_what_it_deleted(database_url: str) -> None:
    asyncio.run(_old_samples(database_url))  # T0 is long past the 30-day sample retention

    code, output = _run(database_url, "cleanup", "--dry-run")
    assert code == 0 and "Would delete 0 incidents, 0 events, 3 samples" in output
    code, output = _run(database_url, "cleanup", "--batch-size", "2")
    assert code == 0 and "Deleted 0 incidents, 0 events, 3 samples" in output
    code, output = _run(database_url, "cleanup")
    assert code == 0 and "Deleted 0 incidents, 0 events, 0 samples" in output


@pytest.mark.postgres
def test_a_database_error_is_a_message_not_a_traceback() -> None:
    code, output = _run("postgresql+asyncpg://postgres@127.0.0.1:1/none", "db", "upgrade")
    assert code == 1
    assert "error:" in output and "Traceback" not in output
