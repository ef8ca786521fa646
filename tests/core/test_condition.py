from __future__ import annotations

import operator
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core import ValidationError
from vigil.core.condition import ConditionError, parse


@pytest.mark.parametrize(
    ("text", "values", "holds"),
    [
        ("a >= 500 and b >= 5", {"a": 500, "b": 5}, True),
        ("a >= 500 and b >= 5", {"a": 499.9, "b": 5}, False),
        ("a > 1", {"a": 1}, False),
        ("a < 1", {"a": 0.5}, True),
        ("a <= -2.5", {"a": -2.5}, True),
        # ``and`` binds tighter than ``or``: a or (b and c)
        ("a > 0 or b > 0 and c > 0", {"a": 1, "b": 0, "c": 0}, True),
        ("a > 0 or b > 0 and c > 0", {"a": 0, "b": 1, "c": 0}, False),
        # parentheses override it
        ("(a > 0 or b > 0) and c > 0", {"a": 1, "b": 0, "c": 0}, False),
        ("(a > 0 or b > 0) and c > 0", {"a": 0, "b": 1, "c": 1}, True),
        ("((a > 0))", {"a": 1}, True),
        ("a>0 AND b>0", {"a": 1, "b": 1}, True),
        ("x.y_z >= 1e3", {"x.y_z": 1000}, True),
    ],
)
def test_condition_semantics(text: str, values: dict[str, float], holds: bool) -> None:
    assert parse(text).holds(values) is holds


def test_a_term_without_data_makes_the_whole_condition_no_data() -> None:
    condition = parse("a > 0 or b > 0")
    assert condition.holds({"a": 1}) is None
    assert condition.holds({"a": 1, "b": None}) is None
    assert condition.holds({"a": 1, "b": 0}) is True


def test_canonical_text_and_metrics() -> None:
    condition = parse("(a>=500   and (b>=5 and c<1)) or (d<2 or a>1)")
    assert str(condition) == "a >= 500 and b >= 5 and c < 1 or d < 2 or a > 1"
    assert condition.metrics == ("a", "b", "c", "d")
    assert str(parse("(a > 1 or b > 2) and c > 3.25")) == "(a > 1 or b > 2) and c > 3.25"


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "expected a term"),
        ("a >", 3, "expected a number"),
        ("a >= high", 5, "expected a number"),
        ("a == 1", 2, "unknown operator '=='"),
        ("a = 1", 2, "unknown operator '='"),
        ("(a > 1", 6, "expected ')'"),
        ("a > 1)", 5, "expected 'and', 'or' or the end"),
        ("a > 1 b < 2", 6, "found 'b'"),
        ("Latency > 1", 0, "is not a metric name"),
        ("and > 1", 0, "expected a metric name"),
        ("a > 1 and", 9, "expected a term"),
        ("a 1", 2, "expected >, >=, < or <="),
        ("a > 1e999", 4, "not a finite number"),
        ("a > 1 & b > 2", 6, "unexpected character '&'"),
        ("(" * 30 + "a > 1" + ")" * 30, 20, "deeper than"),
    ],
)
def test_errors_point_at_the_culprit(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(text)
    assert caught.value.position == position
    assert caught.value.field == "condition"
    assert fragment in str(caught.value)
    assert f"at position {position}" in str(caught.value)
    assert isinstance(caught.value, ValidationError)


@pytest.mark.untraced
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_a_positioned_condition_error(text: str) -> None:
    try:
        condition = parse(text)
    except ConditionError as exc:
        assert 0 <= exc.position <= len(text)
    else:
        assert parse(str(condition)) == condition


_metric = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda m: m not in {"and", "or"}
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
# A generated condition: its text, and an independent oracle of when it holds.
Oracle = Callable[[Mapping[str, float]], bool]


@st.composite
def _terms(draw: st.DrawFn) -> tuple[str, Oracle]:
    metric, op = draw(_metric), draw(st.sampled_from(sorted(_OPS)))
    number = draw(st.floats(allow_nan=False, allow_infinity=False, width=32))
    return f"{metric} {op} {number!r}", lambda values: _OPS[op](values[metric], number)


@st.composite
def _conditions(draw: st.DrawFn, depth: int = 0) -> tuple[str, Oracle]:
    if depth > 2 or draw(st.booleans()):
        return draw(_terms())
    items = draw(st.lists(_conditions(depth + 1), min_size=2, max_size=3))
    both = draw(st.booleans())
    text = "(" + (" and " if both else " or ").join(t for t, _ in items) + ")"
    combine = all if both else any
    return text, lambda values: combine(oracle(values) for _, oracle in items)


@pytest.mark.untraced
@given(_conditions())
def test_generated_conditions_parse_and_round_trip(generated: tuple[str, Oracle]) -> None:
    condition = parse(generated[0])
    assert parse(str(condition)) == condition
    assert set(condition.metrics) == {term.metric for term in condition.terms()}


@pytest.mark.untraced
@given(_conditions(), st.data())
def test_holds_agrees_with_an_independent_oracle(
    generated: tuple[str, Oracle], data: st.DataObject
) -> None:
    text, oracle = generated
    condition = parse(text)
    values = {m: data.draw(st.floats(-1e6, 1e6)) for m in condition.metrics}
    assert condition.holds(values) is oracle(values)
