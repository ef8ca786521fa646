from __future__ import annotations

import math
from typing import Any

import pytest

from vigil.core import (
    DEFAULT_RULES,
    ConditionError,
    Direction,
    Kind,
    Level,
    NoData,
    Rule,
    SplitBy,
    ValidationError,
)

from .support import T0, latency_rule


@pytest.mark.parametrize(
    ("fields", "value", "level"),
    [
        ({"warning": 100, "critical": 200}, 99.99, Level.NORMAL),
        ({"warning": 100, "critical": 200}, 100, Level.WARNING),
        ({"warning": 100, "critical": 200}, 199.99, Level.WARNING),
        ({"warning": 100, "critical": 200}, 200, Level.CRITICAL),
        ({"warning": 100, "critical": 200}, -5, Level.NORMAL),
        ({"warning": None, "critical": 200}, 199, Level.NORMAL),
        ({"warning": None, "critical": 200}, 200, Level.CRITICAL),
        ({"warning": 100, "critical": None}, 1e12, Level.WARNING),
        ({"warning": 20, "critical": 10, "direction": "below"}, 20.01, Level.NORMAL),
        ({"warning": 20, "critical": 10, "direction": "below"}, 20, Level.WARNING),
        ({"warning": 20, "critical": 10, "direction": "below"}, 10.01, Level.WARNING),
        ({"warning": 20, "critical": 10, "direction": "below"}, 10, Level.CRITICAL),
        ({"warning": None, "critical": 10, "direction": "below"}, 11, Level.NORMAL),
    ],
)
def test_level_boundaries(fields: dict[str, Any], value: float, level: Level) -> None:
    assert latency_rule(**fields).level(value) is level


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"metric": "Gateway Latency"}, "metric", "a-z"),
        ({"metric": ""}, "metric", "1-100"),
        ({"metric": "x" * 101}, "metric", "1-100"),
        ({"warning": None, "critical": None}, "critical", "needs a warning or a critical"),
        ({"warning": math.nan}, "warning", "finite"),
        ({"critical": math.inf}, "critical", "finite"),
        ({"warning": "high"}, "warning", "number or null"),
        ({"warning": True}, "warning", "number or null"),
        ({"warning": 200, "critical": 200}, "warning", "below critical"),
        ({"warning": 300, "critical": 200}, "warning", "below critical"),
        ({"warning": 10, "critical": 20, "direction": "below"}, "warning", "above critical"),
        ({"direction": "sideways"}, "direction", "above, below"),
        ({"aggregate": "median"}, "aggregate", "max, avg, sum, min"),
        ({"breaches_required": 0}, "breaches_required", "between 1 and 100"),
        ({"breaches_required": 101}, "breaches_required", "between 1 and 100"),
        ({"recoveries_required": 2.5}, "recoveries_required", "integer"),
        ({"recovery": 150}, "recovery", "at or below the lowest threshold 100"),
        (
            {"recovery": 15, "warning": 20, "critical": 10, "direction": "below"},
            "recovery",
            "at or above the lowest threshold 20",
        ),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"unit": 5}, "unit", "string"),
    ],
)
def test_invalid_rules_name_the_field(fields: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        latency_rule(**fields)
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_defaults_follow_the_design() -> None:
    rule = Rule(metric="x", critical=1)
    assert (rule.direction, rule.aggregate, rule.enabled) == (Direction.ABOVE, "max", True)
    assert (rule.breaches_required, rule.recoveries_required) == (2, 3)
    assert rule.display_name == "X"
    assert rule.recovery_value == 1


def test_recovery_defaults_to_the_least_severe_threshold() -> None:
    assert latency_rule().recovery_value == 100
    assert latency_rule(warning=None).recovery_value == 200
    assert latency_rule(recovery=80).recovery_value == 80


def test_update_with_explicit_null_clears_and_omission_keeps() -> None:
    rule = latency_rule()
    cleared = rule.updated({"warning": None}, by="ana", at=T0)
    assert cleared.warning is None and cleared.critical == 200
    assert (cleared.updated_by, cleared.updated_at) == ("ana", T0)
    kept = rule.updated({"critical": 250})
    assert kept.warning == 100 and kept.critical == 250


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metric": "other"}, "metric"),
        ({"colour": "red"}, "colour"),
        ({"updated_by": "me"}, "updated_by"),
        ({"warning": None, "critical": None}, "critical"),
        ({"critical": 50}, "warning"),
    ],
)
def test_invalid_updates_leave_the_rule_alone(changes: dict[str, Any], field: str) -> None:
    rule = latency_rule()
    with pytest.raises(ValidationError) as caught:
        rule.updated(changes)
    assert caught.value.field == field
    assert rule == latency_rule()


def test_rule_round_trips_through_its_dict() -> None:
    rule = latency_rule(recovery=80, updated_at=T0, updated_by="ana")
    assert Rule.from_dict(rule.to_dict()) == rule
    with pytest.raises(ValidationError, match="colour"):
        Rule.from_dict({**rule.to_dict(), "colour": "red"})


def test_default_catalogue_matches_the_design_table() -> None:
    table = {
        "gateway_latency": ("ms", 100, 200),
        "command_p95_latency": ("ms", 300, 500),
        "error_rate": ("%", 1, 5),
        "memory_usage": ("MB", 400, 480),
        "api_rate_limit_usage": ("%", 85, 95),
        "api_rate_limit_hits": ("count/h", 1, 10),
        "database_query_time": ("ms", 50, 100),
        "event_loop_lag": ("ms", 100, 500),
        "bot_disconnected": ("event", None, 1),
        "service_failure": ("event", None, 1),
    }
    assert {r.metric: (r.unit, r.warning, r.critical) for r in DEFAULT_RULES} == table


# -- the open rule model: names, kinds, per-kind fields -------------------------------------


def test_name_defaults_to_the_metric() -> None:
    rule = Rule(metric="queue_depth", critical=10)
    assert rule.name == "queue_depth"
    assert rule.kind is Kind.THRESHOLD
    assert rule.metrics == ("queue_depth",)
    named = Rule(name="queue-depth-high", metric="queue_depth", critical=10)
    assert (named.name, named.display_name) == ("queue-depth-high", "Queue Depth High")


def test_each_kind_builds_with_its_own_fields() -> None:
    absent = Rule(name="heartbeat", kind=Kind.ABSENT, metric="cron.heartbeat", absent_for=120)
    assert (absent.kind, absent.severity, absent.absent_for) == (Kind.ABSENT, Level.CRITICAL, 120)
    assert absent.top_level is Level.CRITICAL
    composite = Rule(
        name="slow_and_failing",
        kind=Kind.COMPOSITE,
        condition="command_p95_latency>=500 AND error_rate>=5",
        severity=Level.WARNING,
        split_by=SplitBy.INSTANCE,
        no_data=NoData.ALERTING,
    )
    assert composite.condition == "command_p95_latency >= 500 and error_rate >= 5"
    assert composite.metrics == ("command_p95_latency", "error_rate")
    assert composite.metric == ""
    assert composite.to_dict()["metric"] is None
    assert (composite.split_by, composite.no_data) == (SplitBy.INSTANCE, NoData.ALERTING)
    assert composite.top_level is Level.WARNING
    assert latency_rule(warning=None).top_level is Level.CRITICAL
    assert latency_rule(critical=None).top_level is Level.WARNING


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"name": "Bad Name", "metric": "x", "critical": 1}, "name", "a-z"),
        ({"name": "x" * 101, "metric": "x", "critical": 1}, "name", "1-100"),
        ({"kind": "seasonal", "metric": "x", "critical": 1}, "kind", "threshold, absent"),
        ({"name": "t", "critical": 1}, "metric", "1-100"),
        ({"metric": "x", "critical": 1, "absent_for": 60}, "absent_for", "threshold rule"),
        ({"metric": "x", "critical": 1, "condition": "a > 1"}, "condition", "threshold rule"),
        ({"metric": "x", "critical": 1, "severity": "warning"}, "severity", "threshold rule"),
        ({"kind": "absent", "metric": "x"}, "absent_for", "needs absent_for"),
        ({"kind": "absent", "metric": "x", "absent_for": 0}, "absent_for", "more than 0"),
        ({"kind": "absent", "metric": "x", "absent_for": 60, "critical": 1}, "critical", "absent"),
        ({"kind": "absent", "metric": "x", "absent_for": 60, "no_data": "ok"}, "no_data", "absent"),
        (
            {"kind": "absent", "metric": "x", "absent_for": 60, "direction": "below"},
            "direction",
            "absent",
        ),
        ({"name": "c", "kind": "composite"}, "condition", "needs a condition"),
        ({"name": "c", "kind": "composite", "condition": "a >"}, "condition", "position 3"),
        (
            {"name": "c", "kind": "composite", "condition": "a > 1", "metric": "a"},
            "metric",
            "composite",
        ),
        (
            {"name": "c", "kind": "composite", "condition": "a > 1", "severity": "normal"},
            "severity",
            "warning, critical",
        ),
        ({"metric": "x", "critical": 1, "split_by": "shard"}, "split_by", "none, instance"),
        ({"metric": "x", "critical": 1, "no_data": "drop"}, "no_data", "keep, ok, alerting"),
        ({"metric": "x", "critical": 1, "stale_after": -1}, "stale_after", "more than 0"),
    ],
)
def test_kind_validation_names_the_field(fields: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Rule(**fields)
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_a_bad_condition_keeps_its_position() -> None:
    with pytest.raises(ConditionError) as caught:
        Rule(name="c", kind=Kind.COMPOSITE, condition="a >= 1 and b ! 2")
    assert caught.value.position == 13


@pytest.mark.parametrize(
    "rule",
    [
        latency_rule(recovery=80, split_by=SplitBy.INSTANCE, no_data=NoData.OK, stale_after=90),
        Rule(name="hb", kind=Kind.ABSENT, metric="hb", absent_for=300, severity=Level.WARNING),
        Rule(
            name="c",
            kind=Kind.COMPOSITE,
            condition="(a > 1 or b < 2) and c >= 3",
            no_data=NoData.OK,
        ),
    ],
)
def test_every_kind_round_trips_through_its_dict(rule: Rule) -> None:
    data = rule.to_dict()
    assert list(data) == [
        "name",
        "kind",
        "metric",
        "display_name",
        "description",
        "unit",
        "warning",
        "critical",
        "direction",
        "enabled",
        "breaches_required",
        "recoveries_required",
        "recovery",
        "aggregate",
        "absent_for",
        "condition",
        "severity",
        "split_by",
        "no_data",
        "stale_after",
        "group_label",
        "sensitivity",
        "horizon",
        "lookback",
        "min_history",
        "updated_at",
        "updated_by",
    ]
    assert Rule.from_dict(data) == rule


def test_from_dict_takes_null_as_the_default() -> None:
    rule = Rule.from_dict({"name": "x", "metric": "x", "critical": 1, "direction": None})
    assert rule.direction is Direction.ABOVE


def test_update_cannot_rename_but_may_change_the_kind_fields() -> None:
    rule = Rule(name="hb", kind=Kind.ABSENT, metric="hb", absent_for=60)
    assert rule.updated({"absent_for": 120, "name": "hb"}).absent_for == 120
    with pytest.raises(ValidationError) as caught:
        rule.updated({"name": "other"})
    assert caught.value.field == "name"
    composite = Rule(name="c", kind=Kind.COMPOSITE, condition="a > 1")
    changed = composite.updated({"condition": "a > 2 or b > 1", "severity": None})
    assert (changed.condition, changed.severity) == ("a > 2 or b > 1", Level.CRITICAL)
    assert changed.changes_from(composite) == {"condition": ["a > 1", "a > 2 or b > 1"]}


def test_a_group_label_is_a_rule_name_like_slug_or_null() -> None:
    assert Rule(metric="m", critical=1, group_label="discord-outage").group_label == (
        "discord-outage"
    )
    assert Rule(metric="m", critical=1).group_label is None
    for bad in ("", "Has Spaces", "x" * 101, 5):
        with pytest.raises(ValidationError, match="group_label"):
            Rule(metric="m", critical=1, group_label=bad)  # type: ignore[arg-type]
    rule = Rule(metric="m", critical=1).updated({"group_label": "discord"})
    assert rule.group_label == "discord"
    assert rule.updated({"group_label": None}).group_label is None
