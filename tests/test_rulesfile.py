"""The YAML rules file: read with the line of every problem, written so it reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.core import DEFAULT_RULES, Rule
from vigil.rulesfile import RulesFileError, dump, load, loads, parse_duration

GOOD = """\
rules:
  - metric: gateway_latency
    warning: 100
    critical: 200
  - metric: queue_depth
    unit: jobs
    critical: 500
    breaches_required: 1
"""


def test_a_file_gives_its_rules_in_order(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD, encoding="utf-8")
    latency, queue = load(path)
    assert (latency.metric, latency.warning, latency.critical) == ("gateway_latency", 100, 200)
    assert (queue.metric, queue.unit, queue.critical, queue.breaches_required) == (
        "queue_depth",
        "jobs",
        500,
        1,
    )


def test_an_empty_rules_list_is_no_rules() -> None:
    assert loads("rules: []\n") == []
    assert loads("rules:\n") == []


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        # the rule's own check, at the line of the field it names
        (
            GOOD.replace("warning: 100", "warning: 300"),
            3,
            "rules[0] (gateway_latency).warning",
            "must be below critical",
        ),
        (
            GOOD.replace("critical: 500", "critical: lots"),
            7,
            "rules[1] (queue_depth).critical",
            "must be a number",
        ),
        (
            GOOD.replace("unit: jobs", "colour: red"),
            6,
            "rules[1] (queue_depth).colour",
            "is not a rule field",
        ),
        (GOOD + "    unit: again\n", 9, "rules[1].unit", "is given twice (first on line 6)"),
        (
            GOOD + "  - metric: queue_depth\n    critical: 1\n",
            9,
            "rules[2].name",
            "already the name of the rule on line 5",
        ),
        (GOOD + "  - just text\n", 9, "rules[2]", "must be a mapping"),
        (
            GOOD.replace("unit: jobs", "updated_by: someone"),
            6,
            "rules[1].updated_by",
            "set by Vigil",
        ),
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
    rules = [*DEFAULT_RULES, Rule(metric="queue_depth", unit="jobs", critical=500, recovery=400)]
    again = loads(dump(rules))
    assert [r.to_dict() for r in again] == [r.to_dict() for r in rules]


def test_export_leaves_defaults_out_and_writes_whole_numbers_plainly() -> None:
    text = dump([Rule(metric="queue_depth", critical=500)])
    assert "rules:\n- metric: queue_depth\n  critical: 500\n" in text
    assert "display_name" not in text and "breaches_required" not in text


def test_a_duration_is_read_as_seconds() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(120) == 120
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("soon")
