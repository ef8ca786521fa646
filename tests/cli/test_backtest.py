"""``vigil backtest``: reading a CSV trace, --rule overrides and the report, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.cli.backtest import TraceError, apply_overrides, read_trace
from vigil.core import DEFAULT_RULES, ValidationError

SAMPLE = Path(__file__).parents[2] / "src" / "vigil" / "data" / "sample_trace.csv"
RULES = {rule.name: rule for rule in DEFAULT_RULES}
runner = CliRunner()
ROW = "2026-01-01T00:00:00Z,gateway_latency,1"


def trace(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(["timestamp,metric,value", *rows]) + "\n")
    return path


def json_incidents(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["backtest", *args, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_sample_day_raises_the_expected_incidents() -> None:
    incidents = json_incidents(str(SAMPLE))
    opened = {(i["metric"], i["severity"]) for i in incidents}
    assert opened == {
        ("gateway_latency", "critical"),
        ("error_rate", "critical"),
        ("command_p95_latency", "critical"),
        ("api_rate_limit_usage", "warning"),
        ("api_rate_limit_hits", "warning"),
        ("memory_usage", "warning"),
        ("database_query_time", "warning"),
        ("bot_disconnected", "critical"),
        ("event_loop_lag", "warning"),
        ("service_failure", "critical"),
    }
    assert all(i["resolved_at"] is not None for i in incidents)
    gateway = next(i for i in incidents if i["metric"] == "gateway_latency")
    assert gateway["opened_at"] == "2026-11-26T03:11:00Z"
    assert gateway["escalated_at"] == "2026-11-26T03:17:00Z"
    # the 06:40 one-minute blip of 420 ms opened nothing
    assert not any(str(i["opened_at"]).startswith("2026-11-26T06:") for i in incidents)


def test_json_output_has_exactly_the_documented_keys(tmp_path: Path) -> None:
    rows = (f"2026-01-01T00:00:{s}Z,gateway_latency,150" for s in ("00", "30"))
    path = trace(tmp_path, *rows)
    [incident] = json_incidents(str(path))
    assert incident == {
        "rule": "gateway_latency",
        "metric": "gateway_latency",
        "instance": None,
        "severity": "warning",
        "opened_at": "2026-01-01T00:00:30Z",
        "escalated_at": None,
        "resolved_at": None,
        "flapping_at": None,
        "threshold": 100.0,
        "value": 150.0,
        "peak_value": 150.0,
    }


def test_a_rule_override_changes_the_outcome() -> None:
    default = [i for i in json_incidents(str(SAMPLE)) if i["metric"] == "database_query_time"]
    assert len(default) == 1
    relaxed = json_incidents(str(SAMPLE), "--rule", "database_query_time:warning=90,critical=120")
    assert not any(i["metric"] == "database_query_time" for i in relaxed)
    strict = json_incidents(str(SAMPLE), "--rule", "gateway_latency:breaches=7")
    gateway = next(i for i in strict if i["metric"] == "gateway_latency")
    assert gateway["opened_at"] == "2026-11-26T03:16:00Z"


def test_the_table_shows_incidents_and_a_summary_per_rule(tmp_path: Path) -> None:
    path = trace(
        tmp_path,
        *(f"2026-01-01T00:0{i}:00Z,gateway_latency,{v}" for i, v in enumerate([150, 150, 50])),
        "2026-01-01T00:00:00Z,error_rate,0.1",
    )
    result = runner.invoke(app, ["backtest", str(path)])
    assert result.exit_code == 0, result.output
    assert "still open" in result.stdout
    assert "gateway_latency: 1 incident, 0:01:00 in incident" in result.stdout
    assert "error_rate: 0 incidents, 0:00:00 in incident" in result.stdout
    assert "memory_usage" not in result.stdout  # no readings, no summary line


def test_cycles_follow_time_order_not_file_order(tmp_path: Path) -> None:
    path = trace(
        tmp_path,
        "2026-01-01T00:02:00Z,gateway_latency,50",
        "2026-01-01T00:00:00Z,gateway_latency,150",
        "2026-01-01T00:01:00Z,gateway_latency,150",
    )
    cycles = read_trace(path.read_text().splitlines(), RULES).cycles
    assert [c.label for c in cycles] == [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:00Z",
        "2026-01-01T00:02:00Z",
    ]


@pytest.mark.parametrize(
    ("rows", "line", "reason"),
    [
        (["2026-01-01T00:00:00Z,gateway_latency"], 2, "expected 3 fields"),
        (["yesterday,gateway_latency,1"], 2, "not ISO-8601 or Unix seconds"),
        (["2026-01-01T00:00:00Z,gateway_latency,fast"], 2, "'fast' is not a number"),
        (["2026-01-01T00:00:00Z,gateway_latency,nan"], 2, "not a finite number"),
        (["2026-01-01T00:00:00Z,gateway_latency,inf"], 2, "not a finite number"),
        (["1e400,gateway_latency,1"], 2, "not ISO-8601"),
        (
            [ROW, "", ROW],
            4,
            "already has a value at 2026-01-01T00:00:00Z (line 2)",
        ),
    ],
)
def test_malformed_lines_name_line_and_reason(
    tmp_path: Path, rows: list[str], line: int, reason: str
) -> None:
    path = trace(tmp_path, *rows)
    with pytest.raises(TraceError) as caught:
        read_trace(path.read_text().splitlines(), RULES)
    assert caught.value.line == line
    assert reason in caught.value.reason
    result = runner.invoke(app, ["backtest", str(path)])
    assert result.exit_code == 2
    assert f"line {line}: " in result.stderr and reason in result.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [("", "the file is empty"), ("time,name,value\n", "expected the header")],
)
def test_a_missing_header_is_line_one(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = runner.invoke(app, ["backtest", str(path)])
    assert result.exit_code == 2
    assert "line 1: " in result.stderr and reason in result.stderr


def test_unix_seconds_and_naive_times_are_utc() -> None:
    lines = ["timestamp,metric,value", "0,gateway_latency,1", "1970-01-01T00:00:30,error_rate,1"]
    cycles = read_trace(lines, RULES).cycles
    assert [c.time.isoformat() for c in cycles] == [
        "1970-01-01T00:00:00+00:00",
        "1970-01-01T00:00:30+00:00",
    ]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("gateway_latency", "expected NAME:KEY=VALUE"),
        ("gateway_latency:speed=3", "unknown setting 'speed'"),
        ("gateway_latency:warning=high", "warning 'high' is not a number"),
        ("gateway_latency:warning=300", "must be below critical"),
        ("gateway_latency:enabled=maybe", "enabled must be true or false"),
        ("gateway_latency:warning=null,critical=null", "needs a warning or a critical"),
        ("Bad Metric:critical=1", "a-z"),
    ],
)
def test_bad_rule_overrides_are_clear_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        apply_overrides(RULES, [spec])
    assert caught.value.field == "--rule" and fragment in str(caught.value)
    result = runner.invoke(app, ["backtest", str(SAMPLE), "--rule", spec])
    assert result.exit_code == 2 and fragment in result.stderr


def test_overrides_can_clear_a_threshold_and_define_a_new_rule() -> None:
    rules = apply_overrides(RULES, ["gateway_latency:warning=null", "queue_depth:critical=50"])
    assert rules["gateway_latency"].warning is None
    assert rules["gateway_latency"].critical == 200
    assert rules["queue_depth"].critical == 50


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    result = runner.invoke(app, ["backtest", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "No such file" in result.stderr


def test_an_error_quoting_brackets_shows_them(tmp_path: Path) -> None:
    missing = tmp_path / "[x].csv"
    result = runner.invoke(app, ["backtest", str(missing)], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    assert str(missing) in result.stderr  # not eaten as Rich markup


def test_rows_of_a_metric_no_rule_reads_are_skipped_and_said_so(tmp_path: Path) -> None:
    path = trace(tmp_path, ROW, "2026-01-01T00:00:00Z,no_such_metric,1")
    result = runner.invoke(app, ["backtest", str(path)])
    assert result.exit_code == 0, result.output
    assert "skipped the rows of metrics no rule reads: no_such_metric" in result.stderr


RULES_FILE = """\
rules:
  - name: slow_and_failing
    kind: composite
    condition: command_p95_latency >= 500 and error_rate >= 5
  - name: shard_latency
    metric: gateway_latency
    critical: 200
    split_by: instance
"""


def test_a_rules_file_replays_every_kind_and_instances(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_FILE, encoding="utf-8")
    path = tmp_path / "trace.csv"
    rows = ["timestamp,metric,value,instance"]
    for minute in range(3):
        stamp = f"2026-01-01T00:0{minute}:00Z"
        rows += [
            f"{stamp},command_p95_latency,650,bot",
            f"{stamp},error_rate,8,bot",
            f"{stamp},gateway_latency,90,shard-0",
            f"{stamp},gateway_latency,240,shard-1",
        ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    incidents = json_incidents(str(path), "--rules", str(rules))
    opened = {(i["rule"], i["instance"], i["opened_at"]) for i in incidents}
    assert opened == {
        ("slow_and_failing", None, "2026-01-01T00:01:00Z"),
        ("shard_latency", "shard-1", "2026-01-01T00:01:00Z"),
    }
    table = runner.invoke(app, ["backtest", str(path), "--rules", str(rules)])
    assert table.exit_code == 0, table.output
    assert "shard_latency (shard-1)" in table.stdout
    assert "slow_and_failing: 1 incident" in table.stdout


def test_a_bad_rules_file_is_refused_with_its_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_FILE.replace(">= 5", ">= five"), encoding="utf-8")
    result = runner.invoke(app, ["backtest", str(SAMPLE), "--rules", str(rules)])
    assert result.exit_code == 2
    assert f"{rules}:4: rules[0] (slow_and_failing).condition" in result.stderr


def test_the_report_counts_notifications_without_and_with_flap_detection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = [250, 250, 50, 250, 50] + [250, 250, 50, 50, 50] * 8
    rows = (f"2026-01-01T00:{m:02d}:00Z,gateway_latency,{v}" for m, v in enumerate(values))
    path = trace(tmp_path, *rows)
    result = runner.invoke(app, ["backtest", str(path)])
    assert result.exit_code == 0, result.output
    assert "gateway_latency: 1 incident," in result.stdout
    assert "flapping 1 time" in result.stdout
    assert "Notifications: 16 without flap detection, 2 with it (window 21" in result.stdout
    # turned off, the incidents are the plain ones; the comparison still shows both
    monkeypatch.setenv("VIGIL_FLAP_DETECTION", "false")
    result = runner.invoke(app, ["backtest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 8


def test_the_sample_day_sends_as_many_notifications_with_flap_detection() -> None:
    # Nothing in the sample day oscillates: flap detection changes nothing there.
    result = runner.invoke(app, ["backtest", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "Notifications: 22 without flap detection, 22 with it" in result.stdout


def test_the_sample_day_counts_its_notifications_with_and_without_grouping() -> None:
    result = runner.invoke(app, ["backtest", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert (
        "Notifications to a channel hearing every event: 22 one per event; 21 with incident "
        "grouping (120 s window; groups of two or more: 1)"
    ) in " ".join(result.output.split())
    wide = runner.invoke(app, ["backtest", str(SAMPLE), "--group-window", "600"])
    assert "18 with incident grouping (600 s window; groups of two or more: 3)" in " ".join(
        wide.output.split()
    )
    off = runner.invoke(app, ["backtest", str(SAMPLE), "--group-window", "0"])
    assert "with incident grouping" not in off.output
