"""The shared checks: what each accepts (and returns), and how it names what it refuses."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from vigil.core import Direction, Severity, ValidationError
from vigil.core.validation import (
    check_aware,
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_keys,
    check_metric,
    check_name,
    check_optional_finite,
    check_text,
    frozen,
    parse_datetime,
)

MOMENT = datetime(2026, 11, 27, 10, tzinfo=UTC)


def _in_range(field: str, value: object) -> int:
    return check_int(field, value, 1, 100)


def _short_text(field: str, value: object) -> str:
    return check_text(field, value, max_length=5)


def _severity(field: str, value: object) -> Severity:
    return check_choice(Severity, field, value)


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (check_metric, "gateway_latency", "gateway_latency"),
        (check_metric, "db.query_time", "db.query_time"),
        (check_metric, "x" * 100, "x" * 100),
        (check_name, "ops-alerts_2", "ops-alerts_2"),
        (check_name, "x" * 50, "x" * 50),
        (_short_text, " bob ", " bob "),  # returned as given: the caller trims if it wants to
        (check_text, "x" * 100, "x" * 100),  # the default limit
        (check_aware, MOMENT, MOMENT),
        (check_aware, MOMENT.astimezone(timezone(timedelta(hours=5))), MOMENT),
        (parse_datetime, "2026-11-27T10:00:00+00:00", MOMENT),
        (parse_datetime, MOMENT, MOMENT),
        (parse_datetime, "2026-11-27T10:00", datetime(2026, 11, 27, 10)),  # naive: as it is
        (_in_range, 1, 1),
        (_in_range, 100, 100),
        (check_bool, False, False),
        (check_finite, 3, 3.0),
        (check_finite, -1.5, -1.5),
        (check_optional_finite, None, None),
        (check_optional_finite, 2, 2.0),
        (_severity, "warning", Severity.WARNING),
        (_severity, Severity.CRITICAL, Severity.CRITICAL),
    ],
)
def test_accepted_values_come_back(
    check: Callable[[str, object], Any], value: object, expected: object
) -> None:
    got = check("field", value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("check", "value", "fragment"),
    [
        (check_metric, "Gateway", "1-100 characters of a-z, 0-9, '_' and '.'"),
        (check_metric, "a-b", "1-100 characters"),
        (check_metric, "x" * 101, "1-100 characters"),
        (check_metric, None, "None must be"),
        (check_name, "ops.alerts", "1-50 characters of a-z, 0-9, '_' and '-'"),
        (check_name, "", "1-50 characters"),
        (check_name, 7, "7 must be"),
        (_short_text, "", "is required"),
        (_short_text, "   ", "is required"),
        (_short_text, None, "is required"),
        (_short_text, "abcdef", "at most 5 characters"),
        (check_text, "x" * 101, "at most 100 characters"),
        (check_aware, "2026-11-27", "must be a date and time"),
        (check_aware, datetime(2026, 11, 27), "must include a time zone offset"),
        (parse_datetime, "soon", "ISO-8601"),
        (parse_datetime, 1700000000, "ISO-8601"),
        (_in_range, 0, "between 1 and 100, got 0"),
        (_in_range, 101, "between 1 and 100"),
        (_in_range, True, "must be an integer"),
        (_in_range, 1.0, "must be an integer"),
        (_in_range, "3", "must be an integer"),
        (check_bool, "yes", "true or false"),
        (check_bool, 1, "true or false"),
        (check_finite, math.nan, "finite number"),
        (check_finite, math.inf, "finite number"),
        (check_finite, True, "finite number"),
        (check_finite, "1", "finite number"),
        (check_optional_finite, "high", "number or null"),
        (check_optional_finite, False, "number or null"),
        (check_optional_finite, -math.inf, "finite number"),
        (_severity, "fatal", "must be one of info, warning, critical, got 'fatal'"),
        (_severity, 2, "must be one of"),
        (_severity, Direction.ABOVE, "must be one of"),  # another enum's member
    ],
)
def test_refused_values_name_the_field(
    check: Callable[[str, object], Any], value: object, fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        check("field", value)
    assert caught.value.field == "field"
    assert fragment in caught.value.message


def test_unknown_keys_are_named_first_in_order() -> None:
    check_keys({"name": 1, "url": 2}, {"name", "url", "enabled"}, "a channel")
    with pytest.raises(ValidationError) as caught:
        check_keys({"name": 1, "zebra": 2, "colour": 3}, {"name"}, "a channel")
    assert (caught.value.field, caught.value.message) == ("colour", "is not a channel field")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a", "b", "a"], frozenset({"a", "b"})),
        (("x",), frozenset({"x"})),
        (None, None),
        ("ab", "ab"),  # a lone string is not a list of its letters
        (b"ab", b"ab"),
        (7, 7),
    ],
)
def test_frozen_makes_sets_of_lists_only(values: object, expected: object) -> None:
    assert frozen(values) == expected
