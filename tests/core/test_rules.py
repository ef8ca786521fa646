from __future__ import annotations

import math
from typing import Any

import pytest

from vigil.core import DEFAULT_RULES, Direction, Level, Rule, ValidationError

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
