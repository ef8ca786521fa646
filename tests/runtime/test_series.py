"""The bounded series model: caps on new series and metrics, eviction after the retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core import Sample
from vigil.runtime.series import SeriesBudget, SeriesLimitError

from .support import T0


def samples(*pairs: tuple[str, str]) -> list[Sample]:
    return [Sample(instance, metric, T0, 1.0) for instance, metric in pairs]


def budget(metrics: int = 3, series: int = 4, retention: float = 60) -> SeriesBudget:
    return SeriesBudget(
        max_metrics=metrics, max_series=series, retention=timedelta(seconds=retention)
    )


@pytest.mark.parametrize(
    ("caps", "batch", "field", "cap_named"),
    [
        # a new metric past max_metrics, the first sample of it named
        (
            (2, 10),
            [("a", "m1"), ("a", "m2"), ("a", "m1"), ("a", "m3")],
            "samples[3].metric",
            "VIGIL_MAX_METRICS",
        ),
        # a new series past max_series (same metric, another instance)
        ((10, 2), [("a", "m1"), ("b", "m1"), ("c", "m1")], "samples[2].metric", "VIGIL_MAX_SERIES"),
    ],
)
def test_a_batch_past_a_cap_is_refused_whole_naming_the_sample(
    caps: tuple[int, int], batch: list[tuple[str, str]], field: str, cap_named: str
) -> None:
    series = budget(*caps)
    with pytest.raises(SeriesLimitError) as raised:
        series.admit(samples(*batch), now=T0)
    assert raised.value.field == field and cap_named in raised.value.message
    status = series.status()
    assert (status.series, status.metrics) == (0, 0)  # nothing of it recorded
    assert status.refused_samples == len(batch)  # every sample was of a new series


def test_known_series_pass_at_the_cap_and_only_new_ones_are_counted_refused() -> None:
    series = budget(metrics=10, series=2)
    series.admit(samples(("a", "m1"), ("a", "m2")), now=T0)
    series.admit(samples(("a", "m1"), ("a", "m2"), ("a", "m1")), now=T0)  # known: fine
    with pytest.raises(SeriesLimitError):
        series.admit(samples(("a", "m1"), ("a", "m3"), ("a", "m3")), now=T0)
    assert series.status().refused_samples == 2


def test_series_not_pushed_for_the_retention_are_forgotten_and_free_their_slot() -> None:
    series = budget(metrics=2, series=2, retention=60)
    series.admit(samples(("a", "m1")), now=T0)
    series.admit(samples(("a", "m2")), now=T0 + timedelta(seconds=30))
    assert series.evict(T0 + timedelta(seconds=59)) == 0
    assert series.evict(T0 + timedelta(seconds=60)) == 1  # m1: 60 s without a sample
    assert not series.knows("m1") and series.knows("m2")
    series.admit(samples(("a", "m3")), now=T0 + timedelta(seconds=61))  # its slot, reused
    status = series.status()
    assert (status.series, status.metrics, status.evicted_series) == (2, 2, 1)


def test_pushing_again_keeps_a_series() -> None:
    series = budget(retention=60)
    series.admit(samples(("a", "m1"), ("a", "m2")), now=T0)
    series.admit(samples(("a", "m1")), now=T0 + timedelta(seconds=50))
    assert series.evict(T0 + timedelta(seconds=100)) == 1  # m2 only
    assert series.knows("m1") and not series.knows("m2")


def test_a_metric_stays_known_while_one_of_its_series_is_pushed() -> None:
    series = budget(retention=60)
    series.admit(samples(("a", "m1"), ("b", "m1")), now=T0)
    series.admit(samples(("b", "m1")), now=T0 + timedelta(seconds=50))
    assert series.evict(T0 + timedelta(seconds=100)) == 1  # instance a's only
    assert series.knows("m1")
    status = series.status()
    assert (status.series, status.metrics) == (1, 1)
    assert series.evict(T0 + timedelta(seconds=110)) == 1  # b's too: the metric goes
    assert not series.knows("m1")


@pytest.mark.parametrize(
    ("retention", "said"), [(7200, "2 h"), (120, "2 min"), (90, "90 s"), (3660, "61 min")]
)
def test_a_refusal_says_when_series_are_forgotten(retention: float, said: str) -> None:
    series = budget(metrics=10, series=1, retention=retention)
    with pytest.raises(SeriesLimitError) as raised:
        series.admit(samples(("a", "m1"), ("b", "m1")), now=T0)
    assert raised.value.message.endswith(f"series not pushed for {said} are forgotten")


names = st.sampled_from([f"m{n}" for n in range(8)])
instances = st.sampled_from(["a", "b", "c"])
batches = st.lists(st.lists(st.tuples(instances, names), min_size=1, max_size=6), max_size=30)


@pytest.mark.untraced  # the table tests above reach every line it does
@given(batches=batches, metrics=st.integers(1, 5), series_cap=st.integers(1, 10))
def test_the_caps_are_never_passed(
    batches: list[list[tuple[str, str]]], metrics: int, series_cap: int
) -> None:
    series = budget(metrics=metrics, series=series_cap, retention=45)
    for step, batch in enumerate(batches):
        now = T0 + timedelta(seconds=10 * step)
        try:
            series.admit(samples(*batch), now=now)
        except SeriesLimitError:
            pass
        else:  # an admitted batch's metrics are all known until the retention passes
            assert all(series.knows(metric) for _, metric in batch)
        status = series.status()
        assert status.series <= series_cap and status.metrics <= metrics
