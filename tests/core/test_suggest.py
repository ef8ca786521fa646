"""Suggested thresholds on synthetic histories of a known shape: what is suggested, and what
it leaves quiet."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core.rules import Direction
from vigil.core.suggest import (
    MIN_READINGS,
    History,
    NoSuggestion,
    Suggestion,
    _round_out,
    hour_name,
)

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, 00:00


def history(
    days: float, step: timedelta, value: Callable[[datetime, random.Random], float]
) -> History:
    found = History()
    noise = random.Random(7)
    for at in moments(days, step):
        found.add(at, value(at, noise))
    return found


def moments(days: float, step: timedelta) -> Iterator[datetime]:
    at, end = START, START + timedelta(days=days)
    while at < end:
        yield at
        at += step


def suggested(found: History, direction: Direction = Direction.ABOVE) -> Suggestion:
    result = found.suggest(direction)
    assert isinstance(result, Suggestion), result
    return result


def steady(at: datetime, noise: random.Random) -> float:
    return noise.gauss(100.0, 10.0)


def evening_peak(at: datetime, noise: random.Random) -> float:
    busy = at.weekday() < 5 and 18 <= at.hour < 22
    return noise.gauss(150.0 if busy else 100.0, 5.0)


def test_a_steady_metric_gets_levels_a_few_spreads_above_its_normal() -> None:
    found = suggested(history(3, timedelta(minutes=1), steady))
    assert 95 < found.median < 105
    assert 8 < found.spread < 12
    # warning: median + 4 spreads (p99 of a normal is only 2.3 spreads out); critical: + 6
    assert 130 <= found.warning <= 150
    assert 150 <= found.critical <= 170
    assert not found.weekly and found.busiest_hour is None
    assert found.readings == 3 * 24 * 60


def test_spikes_and_an_outage_in_the_history_do_not_drag_the_levels_up() -> None:
    def spiky(at: datetime, noise: random.Random) -> float:
        outage = START + timedelta(days=1) <= at < START + timedelta(days=1, hours=1)
        if outage or noise.random() < 0.005:
            return 5000.0
        return steady(at, noise)

    clean = suggested(history(3, timedelta(minutes=1), steady))
    dirty = suggested(history(3, timedelta(minutes=1), spiky))
    assert dirty.critical < 200  # not above the outage's 5,000
    assert abs(dirty.warning - clean.warning) < 10
    assert abs(dirty.critical - clean.critical) < 10


def test_a_skewed_metric_takes_its_far_percentiles() -> None:
    def latency(at: datetime, noise: random.Random) -> float:
        return 50.0 * noise.lognormvariate(0.0, 0.6)

    found = history(3, timedelta(minutes=1), latency)
    result = suggested(found)
    values = sorted(
        latency(at, random.Random(i)) for i, at in enumerate(moments(3, timedelta(minutes=1)))
    )
    p99 = values[int(0.99 * len(values))]
    assert (
        result.warning >= p99 * 0.9
    )  # a long right tail: the 99th percentile, not median + 4 MADs
    assert result.critical > result.warning


def test_a_weekly_shape_puts_the_levels_above_the_busiest_hour() -> None:
    found = suggested(history(21, timedelta(minutes=5), evening_peak))
    assert found.weekly
    assert found.busiest_hour is not None
    day, hour = divmod(found.busiest_hour, 24)
    assert day < 5 and 18 <= hour < 22, hour_name(found.busiest_hour)
    assert found.warning > 165  # above the evenings' normal 150 + noise
    assert found.critical > found.warning
    # The same history over less than two weeks is judged as a whole: evenings are outliers.
    short = suggested(history(6, timedelta(minutes=5), evening_peak))
    assert not short.weekly


def test_a_flat_week_is_not_a_weekly_shape() -> None:
    found = suggested(history(15, timedelta(minutes=10), steady))
    assert not found.weekly


def test_a_rule_watching_for_low_values_gets_levels_below_the_normal() -> None:
    found = suggested(history(3, timedelta(minutes=1), steady), Direction.BELOW)
    assert found.direction is Direction.BELOW
    assert 50 <= found.warning <= 70
    assert 30 <= found.critical <= 50
    assert found.critical < found.warning < found.median


def test_a_metric_mostly_at_zero_is_given_levels_above_zero() -> None:
    def errors(at: datetime, noise: random.Random) -> float:
        return noise.uniform(0.5, 3.0) if noise.random() < 0.1 else 0.0

    found = suggested(history(3, timedelta(minutes=1), errors))
    assert found.median == 0.0
    assert 0.0 < found.warning < found.critical


@pytest.mark.parametrize(
    ("days", "step", "reason"),
    [
        (
            3,
            timedelta(hours=1),
            "72 readings over 3 days: a suggestion needs at least 500 readings over 24 hours",
        ),
        (0.5, timedelta(seconds=10), "4,320 readings over 12 hours"),
    ],
)
def test_too_little_history_is_said_in_words(days: float, step: timedelta, reason: str) -> None:
    result = history(days, step, steady).suggest(Direction.ABOVE)
    assert isinstance(result, NoSuggestion)
    assert result.reason.startswith(reason), result.reason


def test_a_constant_metric_has_nothing_to_learn_from() -> None:
    result = history(2, timedelta(minutes=1), lambda at, noise: 1.0).suggest(Direction.ABOVE)
    assert isinstance(result, NoSuggestion)
    assert result.reason == "the metric read 1 throughout: nothing to learn a threshold from"


def test_memory_is_bounded_whatever_the_length_of_the_history() -> None:
    found = History(kept_per_hour=50)
    for i, at in enumerate(moments(2, timedelta(seconds=10))):
        found.add(at, float(i))
    assert found.readings == 2 * 8640
    assert max(len(kept) for kept in found._kept) == 50


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(123.45, 124.0), (0.0012341, 0.00124), (-123.45, -123.0), (99.99, 100.0), (100.0, 100.0)],
)
def test_levels_are_rounded_to_three_digits_away_from_normal(value: float, rounded: float) -> None:
    assert _round_out(value) == rounded


def test_hours_of_the_week_are_named() -> None:
    assert hour_name(0) == "Mon 00:00 UTC"
    assert hour_name(24 * 6 + 23) == "Sun 23:00 UTC"


@pytest.mark.untraced
@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=MIN_READINGS
    ),
    direction=st.sampled_from(Direction),
)
def test_levels_are_ordered_beyond_the_median_and_repeatable(
    values: list[float], direction: Direction
) -> None:
    def fill() -> History:
        found = History()
        step = timedelta(days=2) / len(values)
        for i, value in enumerate(values):
            found.add(START + i * step, value)
        return found

    result = fill().suggest(direction)
    assert result == fill().suggest(direction)  # the same readings, the same answer
    if isinstance(result, NoSuggestion):
        assert len(set(values)) == 1
        return
    if direction is Direction.ABOVE:
        assert result.median < result.warning < result.critical
    else:
        assert result.median > result.warning > result.critical
