from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.core import EventKind, Rule
from vigil.store import Store

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    monkeypatch.setenv("VIGIL_DATABASE_URL", database)
    return database


def stored(url: str, metric: str) -> tuple[Rule, list[str | None]]:
    async def read() -> tuple[Rule, list[str | None]]:
        async with await Store.open(url) as store:
            events = await store.events_after(0, limit=100)
            authors = [e.by for e in events if e.kind is EventKind.RULE_CHANGED]
            return await store.get_rule(metric), authors

    return asyncio.run(read())


def test_list_shows_every_rule(url: str) -> None:
    result = runner.invoke(app, ["rules", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for metric in ("gateway_latency", "error_rate", "service_failure"):
        assert metric in result.stdout


def test_set_changes_the_rule_and_records_who(url: str) -> None:
    result = runner.invoke(
        app, ["rules", "set", "gateway_latency:warning=150,critical=null", "--by", "ana"]
    )
    assert result.exit_code == 0, result.output
    rule, authors = stored(url, "gateway_latency")
    assert (rule.warning, rule.critical, rule.updated_by) == (150, None, "ana")
    assert authors == ["ana"]


@pytest.mark.parametrize(
    ("spec", "message", "status"),
    [
        ("gateway_latency:speed=1", "unknown setting 'speed'", 2),  # a malformed argument
        ("gateway_latency", "expected METRIC:KEY=VALUE", 2),
        ("gateway_latency:warning=900", "must be below critical", 1),  # refused by the rule
        ("no_such_metric:warning=1", "rule no_such_metric not found", 1),
    ],
)
def test_bad_changes_are_refused_and_nothing_changes(
    url: str, spec: str, message: str, status: int
) -> None:
    result = runner.invoke(app, ["rules", "set", spec])
    assert result.exit_code == status
    assert message in result.stderr
    rule, authors = stored(url, "gateway_latency")
    assert (rule.warning, rule.critical, authors) == (100, 200, [])
