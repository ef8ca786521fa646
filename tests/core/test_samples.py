from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest

from vigil.core import Aggregate, Sample, ValidationError, combine

from .support import T0


@pytest.mark.parametrize(
    ("how", "values", "expected"),
    [
        (Aggregate.MAX, [1, 5, 3], 5),
        (Aggregate.MIN, [1, 5, 3], 1),
        (Aggregate.SUM, [0.1, 0.2, 0.3], 0.6),
        (Aggregate.AVG, [1, 2, 6], 3),
        (Aggregate.MAX, [], None),
        (Aggregate.AVG, [], None),
    ],
)
def test_combine(how: Aggregate, values: list[float], expected: float | None) -> None:
    result = combine(values, how)
    assert result == expected if expected is None else math.isclose(result or 0, expected)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metric": "Bad Name"}, "metric"),
        ({"instance": ""}, "instance"),
        ({"value": math.nan}, "value"),
        ({"value": "1"}, "value"),
        ({"time": datetime(2026, 1, 1)}, "time"),
    ],
)
def test_invalid_samples_name_the_field(fields: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {"instance": "shard-0", "metric": "m", "time": T0, "value": 1.0}
    with pytest.raises(ValidationError) as caught:
        Sample(**(values | fields))
    assert caught.value.field == field


def test_sample_values_are_stored_as_floats() -> None:
    assert Sample("shard-0", "bot_disconnected", T0, True).value == 1.0
