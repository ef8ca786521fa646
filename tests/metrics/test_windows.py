"""Window maths against statistics and numpy, on random data."""

from __future__ import annotations

import math
import statistics
import sys
from array import array

import numpy
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vigil.metrics.windows import percentile, summarize

PROPERTY = settings(deadline=None, max_examples=300)
# Magnitudes a metric can have (ms, MB, %, counts) with room to spare either way.
finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=1, max_size=400)


def close(actual: float | None, expected: float, scale: float) -> bool:
    """Equal but for rounding, relative to the values' ``scale``. Among subnormal values
    (below ``sys.float_info.min``) a tolerance relative to the scale rounds to zero, while
    the interpolations still differ by a unit of the last place: the p50 of
    [0.0, -5e-324] is -5e-324 here and -0.0 to ``statistics.quantiles``."""
    tolerance = max(1e-9 * scale, sys.float_info.min)
    return actual is not None and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=tolerance)


@pytest.mark.untraced
@PROPERTY
@given(samples, st.booleans())
def test_statistics_match_statistics_and_numpy(values: list[float], fast: bool) -> None:
    """Both engines: pure Python, and numpy over the ring's array buffer."""
    stats = summarize(array("d", values), seconds=30.0, fast=fast)
    scale = max(abs(v) for v in values) or 1.0
    expected = numpy.percentile(numpy.array(values), [50, 95, 99])  # numpy's default: linear

    assert stats.count == len(values)
    assert close(stats.total, math.fsum(values), scale * len(values))
    assert close(stats.mean, statistics.fmean(values), scale)
    assert stats.min == min(values)
    assert stats.max == max(values)
    assert close(stats.p50, float(expected[0]), scale)
    assert close(stats.p95, float(expected[1]), scale)
    assert close(stats.p99, float(expected[2]), scale)


@pytest.mark.untraced
@PROPERTY
@given(st.lists(finite, min_size=2, max_size=400))
@example([0.0, -5e-324])  # subnormal: found by a run of the suite (``close``)
def test_percentiles_match_statistics_quantiles_inclusive(values: list[float]) -> None:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    stats = summarize(values, seconds=30.0)
    scale = max(abs(v) for v in values) or 1.0
    assert close(stats.p50, cuts[49], scale)
    assert close(stats.p95, cuts[94], scale)
    assert close(stats.p99, cuts[98], scale)


@pytest.mark.untraced
@PROPERTY
@given(samples, st.booleans())
def test_statistics_are_ordered_and_inside_the_range(values: list[float], fast: bool) -> None:
    stats = summarize(array("d", values), seconds=30.0, fast=fast)
    assert stats.min is not None and stats.max is not None and stats.mean is not None
    assert stats.p50 is not None and stats.p95 is not None and stats.p99 is not None
    assert stats.min <= stats.p50 <= stats.p95 <= stats.p99 <= stats.max
    assert stats.min <= stats.mean <= stats.max


@pytest.mark.parametrize("fast", [False, True])
def test_an_empty_window_has_no_statistics_but_counts_zero(fast: bool) -> None:
    stats = summarize(array("d"), seconds=60.0, fast=fast)
    assert stats.count == 0
    assert stats.total == 0.0
    assert stats.rate == 0.0
    assert (stats.mean, stats.min, stats.max) == (None, None, None)
    assert (stats.p50, stats.p95, stats.p99) == (None, None, None)
    assert not stats.truncated


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([7.0], 0.5, 7.0),
        ([7.0], 0.99, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 0.0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 1.0, 4.0),
        (list(map(float, range(1, 101))), 0.95, 95.05),
        (list(map(float, range(1, 101))), 0.99, 99.01),
    ],
)
def test_percentile_interpolates_between_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 1.5)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_rate_is_per_second_of_the_covered_span() -> None:
    assert summarize([1.0] * 90, seconds=30.0).rate == 3.0
    truncated = summarize([1.0] * 90, seconds=30.0, covered=10.0)
    assert truncated.truncated
    assert truncated.rate == 9.0
