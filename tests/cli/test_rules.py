"""``vigil rules``, run as a user runs it."""

from __future__ import annotations

import asyncio
import getpass
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from vigil.cli import app
from vigil.cli.rules import parse_rule_spec
from vigil.core import EventKind, Rule, ValidationError
from vigil.rulesfile import load
from vigil.store import Store


def rules(url: str, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["rules", *args], env={"VIGIL_DATABASE_URL": url, "COLUMNS": "200"}
    )


def stored(url: str, metric: str) -> tuple[Rule, list[str | None]]:
    async def read() -> tuple[Rule, list[str | None]]:
        async with await Store.open(url) as store:
            events = await store.events_after(0, limit=100)
            authors = [e.by for e in events if e.kind is EventKind.RULE_CHANGED]
            return await store.get_rule(metric), authors

    return asyncio.run(read())


def test_list_shows_every_rule(sqlite_url: str) -> None:
    """On a new, empty SQLite file, as a first command: it migrates the file first. The other
    tests start from a migrated copy (``migrated_sqlite_url``), which costs no migration."""
    result = rules(sqlite_url, "list")
    assert result.exit_code == 0, result.output
    for metric in ("gateway_latency", "error_rate", "service_failure"):
        assert metric in result.stdout


def test_the_learning_kinds_are_added_from_a_spec_and_listed(migrated_sqlite_url: str) -> None:
    leak = "leak:kind=forecast,metric=memory_usage,unit=MB,critical=480,horizon=2h"
    odd = "odd:kind=anomaly,metric=gateway_latency,sensitivity=5,min_history=7d"
    for spec in (leak, odd):
        result = rules(migrated_sqlite_url, "add", spec, "--by", "ana")
        assert result.exit_code == 0, result.output
    forecast, _ = stored(migrated_sqlite_url, "leak")
    assert (forecast.horizon, forecast.lookback, forecast.critical) == (7200, 7200, 480)
    anomaly, _ = stored(migrated_sqlite_url, "odd")
    assert (anomaly.sensitivity, anomaly.min_history) == (5, 604800)
    listed = rules(migrated_sqlite_url, "list").stdout
    assert "critical >= 480 within 7200 s" in listed
    assert "outside 5 spreads of its baseline (critical)" in listed


def test_set_changes_the_rule_and_records_who(migrated_sqlite_url: str) -> None:
    result = rules(
        migrated_sqlite_url, "set", "gateway_latency:warning=150,critical=null", "--by", "ana"
    )
    assert result.exit_code == 0, result.output
    rule, authors = stored(migrated_sqlite_url, "gateway_latency")
    assert (rule.warning, rule.critical, rule.updated_by) == (150, None, "ana")
    assert authors == ["ana"]


def test_a_change_without_by_is_recorded_under_the_os_user_like_every_command(
    migrated_sqlite_url: str,
) -> None:
    result = rules(migrated_sqlite_url, "set", "gateway_latency:warning=150")
    assert result.exit_code == 0, result.output
    rule, authors = stored(migrated_sqlite_url, "gateway_latency")
    assert rule.updated_by == authors[0] == f"{getpass.getuser()} (cli)"


@pytest.mark.parametrize(
    ("spec", "message", "status"),
    [
        ("gateway_latency:speed=1", "NAME:FIELDS: 'gateway_latency:speed=1': unknown", 2),
        ("gateway_latency", "expected NAME:KEY=VALUE", 2),  # a malformed argument
        ("gateway_latency:warning=900", "must be below critical", 1),  # refused by the rule
        ("no_such_metric:warning=1", "rule no_such_metric not found", 1),
    ],
)
def test_bad_changes_are_refused_and_nothing_changes(
    migrated_sqlite_url: str, spec: str, message: str, status: int
) -> None:
    result = rules(migrated_sqlite_url, "set", spec)
    assert result.exit_code == status
    assert message in result.stderr
    rule, authors = stored(migrated_sqlite_url, "gateway_latency")
    assert (rule.warning, rule.critical, authors) == (100, 200, [])


@pytest.mark.parametrize(
    ("spec", "changes"),
    [
        ("gateway_latency:warning=150", {"warning": 150.0}),
        (" error_rate : critical=null,breaches=3", {"critical": None, "breaches_required": 3}),
        (
            "m:enabled=FALSE,direction=below,unit=ms",
            {"enabled": False, "direction": "below", "unit": "ms"},
        ),
        (
            "m:recoveries_required=4,recovery=none,aggregate=avg",
            {"recoveries_required": 4, "recovery": None, "aggregate": "avg"},
        ),
    ],
)
def test_a_rule_spec_reads_as_written(spec: str, changes: dict[str, object]) -> None:
    metric, parsed = parse_rule_spec(spec)
    assert metric == spec.partition(":")[0].strip()
    assert parsed == changes


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("gateway_latency", "expected NAME:KEY=VALUE"),
        ("gateway_latency:", "expected NAME:KEY=VALUE"),
        ("gateway_latency:warning", "unknown setting 'warning'"),
        ("gateway_latency:speed=3", "unknown setting 'speed'"),
        ("gateway_latency:warning=high", "warning 'high' is not a number"),
        ("gateway_latency:breaches=2.5", "breaches_required '2.5' is not a number"),
        ("gateway_latency:enabled=maybe", "enabled must be true or false"),
    ],
)
def test_a_malformed_rule_spec_names_the_field_it_came_from(spec: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_rule_spec(spec, field="--rule")
    assert caught.value.field == "--rule" and fragment in caught.value.message


@pytest.mark.parametrize(
    ("spec", "changes"),
    [
        (
            "slow_and_failing:kind=composite,condition=command_p95_latency >= 500 and "
            "error_rate >= 5,severity=warning",
            {
                "kind": "composite",
                "condition": "command_p95_latency >= 500 and error_rate >= 5",
                "severity": "warning",
            },
        ),
        (
            "heartbeat:kind=absent,metric=cron_heartbeat,absent_for=5m,stale_after=90",
            {"kind": "absent", "metric": "cron_heartbeat", "absent_for": 300, "stale_after": 90},
        ),
        (
            'shard_latency:split=instance,no_data=alerting,description="slow, then down"',
            {"split_by": "instance", "no_data": "alerting", "description": "slow, then down"},
        ),
        ("m:unit='',display_name=\"Queue, depth\"", {"unit": "", "display_name": "Queue, depth"}),
    ],
)
def test_every_field_of_every_kind_can_be_written_in_a_spec(
    spec: str, changes: dict[str, object]
) -> None:
    assert parse_rule_spec(spec)[1] == changes


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ('m:description="open', 'a quote (") is not closed'),
        ("m:absent_for=soon", "absent_for 'soon' is not a duration"),
    ],
)
def test_a_malformed_spec_of_a_new_field_says_why(spec: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        parse_rule_spec(spec)


def test_add_show_disable_enable_a_rule_of_each_kind(migrated_sqlite_url: str) -> None:
    added = [
        ("queue_backlog:metric=queue_depth,unit=jobs,critical=500", "queue_depth"),
        (
            "slow_and_failing:kind=composite,condition=command_p95_latency>=500 and "
            "error_rate >= 5,severity=warning",
            "command_p95_latency >= 500 and error_rate >= 5",
        ),
        ("heartbeat:kind=absent,metric=cron_heartbeat,absent_for=5m", "cron_heartbeat"),
    ]
    for spec, watches in added:
        result = rules(migrated_sqlite_url, "add", spec, "--by", "ana")
        assert result.exit_code == 0, result.output
        assert watches in result.stdout
    listed = rules(migrated_sqlite_url, "list")
    assert listed.exit_code == 0, listed.output
    for name in ("queue_backlog", "slow_and_failing", "heartbeat", "gateway_latency"):
        assert name in listed.stdout
    shown = rules(migrated_sqlite_url, "show", "heartbeat")
    assert shown.exit_code == 0, shown.output
    assert "absent_for" in shown.stdout and "300" in shown.stdout

    assert rules(migrated_sqlite_url, "disable", "queue_backlog").exit_code == 0
    rule, _ = stored(migrated_sqlite_url, "queue_backlog")
    assert (rule.enabled, rule.metric, rule.critical) == (False, "queue_depth", 500)
    assert rules(migrated_sqlite_url, "enable", "queue_backlog").exit_code == 0
    assert stored(migrated_sqlite_url, "queue_backlog")[0].enabled is True


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (("add", "gateway_latency:metric=gateway_latency,critical=1"), "already", 1),
        (("add", "x:kind=composite,condition=a >= "), "at position", 1),
        (("add", "x:kind=composite,metric=m,condition=a > 1"), "metric: does not apply", 1),
        (("add", "Bad Name:critical=1"), "'Bad Name' must be", 1),
        (("show", "nothing_here"), "rule nothing_here not found", 1),
        (("disable", "nothing_here"), "rule nothing_here not found", 1),
    ],
)
def test_a_refused_rule_says_why(
    migrated_sqlite_url: str, args: tuple[str, ...], message: str, status: int
) -> None:
    result = rules(migrated_sqlite_url, *args)
    assert result.exit_code == status, result.output
    assert message in result.stderr


def test_export_writes_a_file_that_reads_back_as_the_rules(
    migrated_sqlite_url: str, tmp_path: Path
) -> None:
    assert (
        rules(migrated_sqlite_url, "add", "slow:kind=composite,condition=error_rate > 5").exit_code
        == 0
    )
    printed = rules(migrated_sqlite_url, "export")
    assert printed.exit_code == 0, printed.output
    target = tmp_path / "rules.yaml"
    assert rules(migrated_sqlite_url, "export", "--output", str(target)).exit_code == 0
    assert target.read_text(encoding="utf-8") == printed.stdout
    names = [rule.name for rule in load(target)]
    assert "slow" in names and "gateway_latency" in names


def test_remove_deletes_a_rule_and_says_so(migrated_sqlite_url: str) -> None:
    assert rules(migrated_sqlite_url, "add", "queue_depth:critical=500").exit_code == 0
    result = rules(migrated_sqlite_url, "remove", "queue_depth", "--by", "ana")
    assert result.exit_code == 0, result.output
    assert "Removed rule queue_depth." in result.stdout
    gone = rules(migrated_sqlite_url, "show", "queue_depth")
    assert gone.exit_code == 1 and "rule queue_depth not found" in gone.stderr


APPLIED = """\
rules:
  - name: gateway_latency
    metric: gateway_latency
    warning: 150
    critical: 250
  - name: queue_depth
    metric: queue_depth
    critical: 500
"""


def test_apply_dry_run_then_apply_then_prune(migrated_sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(APPLIED, encoding="utf-8")
    before = rules(migrated_sqlite_url, "export").stdout

    dry = rules(migrated_sqlite_url, "apply", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "+ add queue_depth" in dry.stdout
    assert "~ change gateway_latency (critical, description, unit, warning)" in dry.stdout
    assert "Dry run, nothing changed: 1 to add, 1 to change, 0 to remove" in dry.stdout
    assert rules(migrated_sqlite_url, "export").stdout == before

    applied = rules(migrated_sqlite_url, "apply", str(path), "--by", "ana")
    assert applied.exit_code == 0, applied.output
    assert "Applied: 1 to add, 1 to change, 0 to remove, 0 unchanged." in applied.stdout
    rule, authors = stored(migrated_sqlite_url, "gateway_latency")
    assert (rule.warning, rule.critical, rule.updated_by) == (150, 250, "ana")
    assert authors == ["ana"]
    again = rules(migrated_sqlite_url, "apply", str(path))
    assert "Applied: 0 to add, 0 to change, 0 to remove, 2 unchanged." in again.stdout

    pruned = rules(migrated_sqlite_url, "apply", str(path), "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert "- remove error_rate" in pruned.stdout
    assert [r.name for r in load_exported(migrated_sqlite_url, tmp_path)] == [
        "gateway_latency",
        "queue_depth",
    ]


def load_exported(url: str, tmp_path: Path) -> list[Rule]:
    target = tmp_path / "exported.yaml"
    assert rules(url, "export", "-o", str(target)).exit_code == 0
    return load(target)


def test_a_bad_file_changes_nothing_and_names_its_line(
    migrated_sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(APPLIED.replace("critical: 500", "critical: lots"), encoding="utf-8")
    before = rules(migrated_sqlite_url, "export").stdout
    result = rules(migrated_sqlite_url, "apply", str(path), "--prune")
    assert result.exit_code == 2
    assert f"{path}:8: rules[1] (queue_depth).critical: must be a number" in result.stderr
    assert rules(migrated_sqlite_url, "export").stdout == before


def test_rules_set_declares_a_rule_related_by_its_group_label(migrated_sqlite_url: str) -> None:
    result = rules(migrated_sqlite_url, "set", "error_rate:group=discord")
    assert result.exit_code == 0, result.output
    shown = rules(migrated_sqlite_url, "show", "error_rate")
    assert "discord" in shown.output


def test_the_rule_limit_of_the_settings_holds_for_the_cli(
    migrated_sqlite_url: str, tmp_path: Path
) -> None:
    """``VIGIL_MAX_RULES`` binds ``rules add`` and ``rules apply`` as it binds the API (the
    store's own default is 1,000). The new database holds the ten default rules."""
    env = {"VIGIL_DATABASE_URL": migrated_sqlite_url, "COLUMNS": "200", "VIGIL_MAX_RULES": "10"}
    added = CliRunner().invoke(app, ["rules", "add", "queue_backlog:critical=500"], env=env)
    assert added.exit_code == 1
    assert "at most 10 rules (VIGIL_MAX_RULES)" in added.stderr
    path = tmp_path / "rules.yaml"
    path.write_text(APPLIED, encoding="utf-8")
    applied = CliRunner().invoke(app, ["rules", "apply", str(path)], env=env)
    assert applied.exit_code == 1 and "at most 10 rules" in applied.stderr
    assert "queue_backlog" not in rules(migrated_sqlite_url, "list").stdout
