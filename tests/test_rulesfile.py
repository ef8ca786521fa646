"""The YAML rules file: read with the line of every problem, written so it reads back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.core import DEFAULT_RULES, Direction, Level, Rule
from vigil.core.rules import Kind, NoData, SplitBy
from vigil.rulesfile import RulesFileError, dump, load, loads, parse_duration

GOOD = """\
rules:
  - name: gateway_latency
    metric: gateway_latency
    warning: 100
    critical: 200
  - name: queue_backlog
    metric: queue_depth
    unit: jobs
    critical: 500
    breaches_required: 1
  - name: slow_and_failing
    kind: composite
    condition: command_p95_latency >= 500 and error_rate >= 5
    severity: warning
  - name: heartbeat
    kind: absent
    metric: cron_heartbeat
    absent_for: 5m
    split_by: instance
"""


def test_a_file_gives_its_rules_of_every_kind_in_order(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD, encoding="utf-8")
    latency, queue, composite, absent = load(path)
    assert (latency.name, latency.warning, latency.critical) == ("gateway_latency", 100, 200)
    assert (queue.name, queue.metric, queue.unit, queue.critical) == (
        "queue_backlog",
        "queue_depth",
        "jobs",
        500,
    )
    assert queue.breaches_required == 1
    assert (composite.kind, composite.severity) == (Kind.COMPOSITE, Level.WARNING)
    assert composite.metrics == ("command_p95_latency", "error_rate")
    assert (absent.kind, absent.absent_for, absent.split_by) == (
        Kind.ABSENT,
        300,
        SplitBy.INSTANCE,
    )


def test_an_empty_rules_list_is_no_rules() -> None:
    assert loads("rules: []\n") == []
    assert loads("rules:\n") == []


def _with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        # the rule's own check, at the line of the field it names
        (
            _with("warning: 100", "warning: 300"),
            4,
            "rules[0] (gateway_latency).warning",
            "must be below critical",
        ),
        (
            _with("critical: 500", "critical: lots"),
            9,
            "rules[1] (queue_backlog).critical",
            "must be a number",
        ),
        (
            _with("unit: jobs", "colour: red"),
            8,
            "rules[1] (queue_backlog).colour",
            "is not a rule field",
        ),
        (
            _with("error_rate >= 5", "error_rate >="),
            13,
            "rules[2] (slow_and_failing).condition",
            "at position",
        ),
        (
            _with("    severity: warning\n", "    severity: warning\n    warning: 3\n"),
            15,
            "rules[2] (slow_and_failing).warning",
            "does not apply to a composite rule",
        ),
        (_with("absent_for: 5m", "absent_for: soon"), 18, "rules[3].absent_for", "not a duration"),
        (GOOD + "    split_by: none\n", 20, "rules[3].split_by", "given twice (first on line 19)"),
        (
            GOOD + "  - name: queue_backlog\n    metric: other\n    critical: 1\n",
            20,
            "rules[4].name",
            "already the name of the rule on line 6",
        ),
        (GOOD + "  - just text\n", 20, "rules[4]", "must be a mapping"),
        (_with("unit: jobs", "updated_by: someone"), 8, "rules[1].updated_by", "set by Vigil"),
        ("rules: gateway_latency\n", 1, "rules", "must be a list"),
        ("alerts:\n  - name: x\n", 1, "alerts", "unknown top-level key"),
        ("- name: x\n", 1, None, "expected a mapping with a 'rules' list"),
        ("rules:\n  - name: x\n    critical: [1\n", 4, None, "not valid YAML"),
        ("base: &b\n  critical: 1\nrules:\n  - <<: *b\n", 1, None, "anchors and aliases"),
    ],
)
def test_a_bad_file_is_refused_whole_naming_line_and_field(
    text: str, line: int, field: str | None, reason: str
) -> None:
    with pytest.raises(RulesFileError) as caught:
        loads(text, source="rules.yaml")
    error = caught.value
    assert (error.path, error.line, error.field) == ("rules.yaml", line, field)
    assert reason in error.reason
    assert str(error).startswith(f"rules.yaml:{line}: ")


def test_an_empty_or_missing_file_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(RulesFileError, match=r"empty\.yaml: the file is empty"):
        load(empty)
    with pytest.raises(RulesFileError, match=r"missing\.yaml: No such file"):
        load(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"rules:\n  - name: \xff\n")
    with pytest.raises(RulesFileError, match=r"binary.yaml:2: is not UTF-8"):
        load(binary)


def test_export_reads_back_as_the_same_rules() -> None:
    rules = [
        *DEFAULT_RULES,
        Rule(metric="queue_depth", unit="jobs", critical=500, recovery=400),
        *loads(GOOD)[1:],  # DEFAULT_RULES has gateway_latency
        Rule(
            name="per_shard",
            metric="gateway_latency",
            critical=300,
            split_by=SplitBy.INSTANCE,
            no_data=NoData.ALERTING,
            stale_after=90,
            enabled=False,
            description="one incident per shard: a, b",
        ),
    ]
    again = loads(dump(rules))
    assert [r.to_dict() for r in again] == [r.to_dict() for r in rules]


def test_export_leaves_defaults_out_and_writes_whole_numbers_plainly() -> None:
    text = dump([Rule(metric="queue_depth", critical=500)])
    assert "rules:\n- name: queue_depth\n  metric: queue_depth\n  critical: 500\n" in text
    assert "display_name" not in text and "breaches_required" not in text


def test_a_duration_is_read_as_seconds() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(120) == 120
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("soon")


WORDS = st.sampled_from(["queue", "depth", "latency", "shard.0", "p95", "x", "errors_total"])
METRICS = st.lists(WORDS, min_size=1, max_size=3).map("_".join)
NAMES = st.tuples(METRICS, st.sampled_from(["", "-a", ".b", "-2"])).map("".join)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=40)
NUMBERS = st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: round(x, 3))
COUNTS = st.integers(1, 100)
SECONDS = st.one_of(st.integers(1, 86_400), st.floats(0.5, 86_400).map(lambda x: round(x, 2)))


@st.composite
def threshold_rules(draw: st.DrawFn) -> Rule:
    low, high = sorted(draw(st.lists(NUMBERS, min_size=2, max_size=2, unique=True)))
    direction = draw(st.sampled_from(list(Direction)))
    warning, critical = (low, high) if direction is Direction.ABOVE else (high, low)
    keep = draw(st.sampled_from(["both", "warning", "critical"]))
    return Rule(
        name=draw(NAMES),
        metric=draw(METRICS),
        warning=None if keep == "critical" else warning,
        critical=None if keep == "warning" else critical,
        direction=direction,
        unit=draw(TEXT),
        description=draw(TEXT),
        enabled=draw(st.booleans()),
        breaches_required=draw(COUNTS),
        recoveries_required=draw(COUNTS),
        split_by=draw(st.sampled_from(list(SplitBy))),
        no_data=draw(st.sampled_from(list(NoData))),
        stale_after=draw(st.none() | SECONDS),
    )


@st.composite
def other_rules(draw: st.DrawFn) -> Rule:
    if draw(st.booleans()):
        return Rule(
            name=draw(NAMES),
            kind=Kind.ABSENT,
            metric=draw(METRICS),
            absent_for=draw(SECONDS),
            severity=draw(st.sampled_from([Level.WARNING, Level.CRITICAL])),
        )
    terms = draw(
        st.lists(
            st.tuples(METRICS, st.sampled_from([">", ">=", "<", "<="]), NUMBERS),
            min_size=1,
            max_size=4,
        )
    )
    joins = draw(st.lists(st.sampled_from(["and", "or"]), min_size=len(terms), max_size=len(terms)))
    text = f"{terms[0][0]} {terms[0][1]} {terms[0][2]}"
    for (metric, op, number), join in zip(terms[1:], joins, strict=False):
        text += f" {join} {metric} {op} {number}"
    return Rule(name=draw(NAMES), kind=Kind.COMPOSITE, condition=text, display_name=draw(TEXT))


@pytest.mark.untraced
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(threshold_rules() | other_rules(), max_size=6, unique_by=lambda r: r.name))
def test_any_rules_read_back_from_their_export(rules: list[Rule]) -> None:
    assert [r.to_dict() for r in loads(dump(rules))] == [r.to_dict() for r in rules]


def test_the_learning_kinds_read_durations_and_export_without_their_defaults() -> None:
    text = """
rules:
  - name: odd_latency
    kind: anomaly
    metric: gateway_latency
    sensitivity: 5
    min_history: 7d
  - name: leak
    kind: forecast
    metric: memory_usage
    unit: MB
    critical: 480
    horizon: 2h
"""
    anomaly, forecast = loads(text)
    assert (anomaly.kind, anomaly.sensitivity, anomaly.min_history) == (Kind.ANOMALY, 5, 604800)
    assert (forecast.horizon, forecast.lookback, forecast.min_history) == (7200, 7200, 7200)
    exported = dump([anomaly, forecast])
    assert "lookback" not in exported and "horizon: 7200" in exported
    assert loads(exported) == [anomaly, forecast]
    with pytest.raises(RulesFileError) as caught:
        loads(text.replace("horizon: 2h", "horizon: soon"))
    assert caught.value.field == "rules[1].horizon"
