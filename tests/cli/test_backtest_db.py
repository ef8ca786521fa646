"""``vigil backtest --from-db`` and ``vigil samples export``, run as a user runs them, against
both databases: the stored samples replayed with the saved rules (or changed ones, beside the
saved), and exported as the CSV ``vigil backtest`` reads, which replays to the same incidents."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.core.samples import Sample
from vigil.store import Store

from .support import vigil

# gateway_latency (a default rule): warning 100, critical 200, 2 breaches, 3 recoveries.
SHAPE = [50.0] * 10 + [150.0] * 4 + [250.0] * 4 + [50.0] * 10 + [120.0] * 3 + [50.0] * 10


def _stored(url: str, *, hours_ago: float = 2.0) -> list[Sample]:
    """The shape at a 30 s interval from ``hours_ago`` (seconds rounded, so the CSV's text
    is exact), plus an error_rate series no changed rule reads."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)
    samples = [
        Sample("bot", "gateway_latency", start + timedelta(seconds=30 * i), value)
        for i, value in enumerate(SHAPE)
    ]
    samples += [
        Sample("bot", "error_rate", start + timedelta(seconds=30 * i), 0.5)
        for i in range(len(SHAPE))
    ]

    async def add() -> None:
        async with await Store.open(url, upgrade=True) as store:
            await store.add_samples(samples)

    asyncio.run(add())
    return samples


def incidents(url: str, *args: str) -> list[dict[str, object]]:
    code, output = vigil(url, "backtest", *args, "--json")
    assert code == 0, output
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_saved_rules_over_the_stored_samples(migrated_url: str) -> None:
    samples = _stored(migrated_url)
    incident, later = incidents(migrated_url, "--from-db", "--since", "7d")
    first = samples[0].time
    assert incident["rule"] == "gateway_latency"
    assert incident["severity"] == "critical"
    assert incident["opened_at"] == (first + timedelta(seconds=30 * 11)).isoformat()
    assert incident["escalated_at"] == (first + timedelta(seconds=30 * 15)).isoformat()
    # three recoveries: 50, 50, 50 from index 18; resolved on the third
    assert incident["resolved_at"] == (first + timedelta(seconds=30 * 20)).isoformat()
    assert incident["peak_value"] == 250.0
    assert (later["severity"], later["value"]) == ("warning", 120.0)
    assert later["opened_at"] == (first + timedelta(seconds=30 * 29)).isoformat()


def test_a_changed_rule_is_shown_beside_the_saved_one(migrated_url: str) -> None:
    _stored(migrated_url)
    code, output = vigil(
        migrated_url,
        "backtest",
        "--from-db",
        "--since",
        "24h",
        "--rule",
        "gateway_latency:warning=200,critical=240",
    )
    assert code == 0, output
    assert "The saved rules over the same period" in output
    proposed, _, saved = output.partition("The saved rules over the same period")
    assert "gateway_latency: 1 incident," in proposed
    assert "gateway_latency: 2 incidents" in saved
    assert "error_rate" not in proposed  # only the rule named is replayed


def test_a_period_before_the_samples_replays_nothing(migrated_url: str) -> None:
    _stored(migrated_url, hours_ago=3)
    assert incidents(migrated_url, "--from-db", "--since", "30m") == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--from-db", "--since", "7x"], "--since: '7x' is neither a period"),
        (["--from-db", "--since", "500d"], "more than 366 days"),
        (["--from-db", "--rule", "no_such_rule"], "no rule named 'no_such_rule' in the database"),
        (["--from-db", "trace.csv"], "not both"),
        (["--since", "7d"], "give a trace file"),
        (["trace.csv", "--since", "7d"], "--since goes with --from-db"),
        (["--from-db", "--rules", "missing.yaml"], "missing.yaml"),
    ],
)
def test_bad_input_is_one_clear_line(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], fragment: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trace.csv").write_text("timestamp,metric,value\n")
    code, output = vigil(sqlite_url, "backtest", *args)
    assert code != 0
    assert "error:" in output and fragment in output, output


def test_export_then_backtest_round_trips(migrated_url: str, tmp_path: Path) -> None:
    samples = _stored(migrated_url)
    code, output = vigil(migrated_url, "samples", "export", "--since", "7d")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == "timestamp,metric,value,instance"
    assert len(lines) == 1 + len(samples)
    assert lines[1] == f"{samples[0].time.isoformat()},gateway_latency,50.0,bot"
    path = tmp_path / "export.csv"
    path.write_text(output)
    from_file = incidents(migrated_url, str(path))
    from_db = incidents(migrated_url, "--from-db", "--since", "7d")
    assert from_file == from_db
    assert len(from_file) == 2


def test_export_of_one_metric(migrated_url: str) -> None:
    _stored(migrated_url)
    code, output = vigil(migrated_url, "samples", "export", "--metric", "error_rate")
    assert code == 0, output
    rows = output.splitlines()[1:]
    assert len(rows) == len(SHAPE)
    assert all(",error_rate,0.5,bot" in row for row in rows)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is neither a period"),
        (["--metric", "Not A Metric"], "is not a metric name"),
    ],
)
def test_export_refuses_bad_input(sqlite_url: str, args: list[str], fragment: str) -> None:
    code, output = vigil(sqlite_url, "samples", "export", *args)
    assert code != 0
    assert "error:" in output and fragment in output, output
