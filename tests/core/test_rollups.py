"""Rollups, pure: minute buckets, what a bucket adds up, and which figure a rule replays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from vigil.core.rollups import Bucket, Rollup, bucket_start, buckets_of, wanted
from vigil.core.rules import Rule

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "start"),
    [
        (T0, T0),
        (T0 + timedelta(seconds=59, microseconds=999_999), T0),
        (T0 + timedelta(seconds=60), T0 + timedelta(minutes=1)),
        (T0 - timedelta(microseconds=1), T0 - timedelta(minutes=1)),
        # Another zone is the same moment, its bucket in UTC.
        (datetime(2026, 3, 1, 14, 0, 30, tzinfo=timezone(timedelta(hours=2))), T0),
    ],
)
def test_a_bucket_is_the_minute_holding_the_moment(moment: datetime, start: datetime) -> None:
    found = bucket_start(moment)
    assert found == start and found.tzinfo is UTC


def test_samples_are_summed_up_per_series_and_minute_the_last_stored_newest() -> None:
    late = T0 + timedelta(seconds=50)
    found = buckets_of(
        [
            ("lag", "a", late, 3.0),
            ("lag", "a", T0 + timedelta(seconds=5), 1.0),
            ("lag", "a", late, 7.0),  # same time, stored later: the minute's last
            ("lag", "b", T0, 2.0),  # another instance
            ("rss", "a", T0, 4.0),  # another metric
            ("lag", "a", T0 + timedelta(minutes=1), 5.0),  # the next minute
        ]
    )
    summed = {key: (b.count, b.min, b.max, b.sum, b.last, b.last_at) for key, b in found.items()}
    assert summed == {
        ("lag", T0, "a"): (3, 1.0, 7.0, 11.0, 7.0, late),
        ("lag", T0, "b"): (1, 2.0, 2.0, 2.0, 2.0, T0),
        ("rss", T0, "a"): (1, 4.0, 4.0, 4.0, 4.0, T0),
        ("lag", T0 + timedelta(minutes=1), "a"): (1, 5.0, 5.0, 5.0, 5.0, T0 + timedelta(minutes=1)),
    }


def test_a_bucket_adds_up_its_samples_and_keeps_the_newest() -> None:
    bucket = Bucket.of(5.0, T0 + timedelta(seconds=30))
    bucket.add(1.0, T0 + timedelta(seconds=10))  # older: not the last
    bucket.add(9.0, T0 + timedelta(seconds=30))  # same time, stored later: the newest
    assert (bucket.count, bucket.min, bucket.max, bucket.sum, bucket.last) == (
        3,
        1.0,
        9.0,
        15.0,
        9.0,
    )
    assert bucket.mean == 5.0
    assert [bucket.value(r) for r in Rollup] == [5.0, 1.0, 9.0, 9.0]


def test_merging_two_parts_of_a_minute_is_adding_their_samples() -> None:
    values = [(3.0, 5), (8.0, 50), (-2.0, 20), (4.0, 40)]
    whole = Bucket.of(*_at(values[0]))
    for item in values[1:]:
        whole.add(*_at(item))
    first, second = Bucket.of(*_at(values[0])), Bucket.of(*_at(values[2]))
    first.add(*_at(values[1]))
    second.add(*_at(values[3]))
    second.merge(first)
    assert second == whole


def _at(item: tuple[float, int]) -> tuple[float, datetime]:
    return item[0], T0 + timedelta(seconds=item[1])


def rule(**fields: object) -> Rule:
    return Rule.from_dict({"name": "r", **fields})


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([rule(metric="m", critical=100)], {"m": Rollup.MAX}),
        ([rule(metric="m", direction="below", critical=1)], {"m": Rollup.MIN}),
        (
            [rule(kind="composite", condition="a >= 5 and b < 2")],
            {"a": Rollup.MAX, "b": Rollup.MIN},
        ),
        ([rule(kind="absent", metric="m", absent_for=120)], {"m": Rollup.MEAN}),
        # An absent rule beside a threshold rule leaves it the worst value.
        (
            [rule(kind="absent", metric="m", absent_for=120), rule(metric="m", critical=100)],
            {"m": Rollup.MAX},
        ),
        # Higher is worse for one, lower for the other: no single worst.
        (
            [rule(metric="m", critical=100), rule(metric="m", direction="below", critical=1)],
            {"m": Rollup.MEAN},
        ),
        ([rule(kind="anomaly", metric="m")], {"m": Rollup.MEAN}),
    ],
)
def test_a_replay_takes_the_worst_of_a_minute_for_its_rules(
    rules: list[Rule], expected: dict[str, Rollup]
) -> None:
    assert wanted(rules) == expected
