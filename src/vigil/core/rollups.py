"""Rollups: raw samples compacted into one-minute buckets, and which of a bucket's figures a
reader takes in place of the samples it replaced.

A minute is the bucket: the finest a chart of a day or more ever draws (500 points over a day
are almost three minutes each), fine enough that an incident chart of old history still shows
its shape, and at a 1 s interval it keeps one row where there were 60 (2 at the default 30 s).

Which value a bucket stands for depends on who reads it (``wanted``): a threshold rule's
backtest takes the worst of the minute (its maximum for ``above``, its minimum for ``below``),
so a spike that opened an incident is still seen; a composite condition the same per term;
the learning kinds (anomaly, forecast) and charts take the mean; an absent rule needs only
that there was a sample. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from vigil.core.rules import Direction, Kind, Rule

BUCKET_SECONDS = 60
BUCKET = timedelta(seconds=BUCKET_SECONDS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Rollup(StrEnum):
    """The figure of a bucket that stands for its samples."""

    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    LAST = "last"


def bucket_start(moment: datetime) -> datetime:
    """The start of the minute bucket holding ``moment`` (an aware time), in UTC."""
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    return _EPOCH + timedelta(seconds=seconds - seconds % BUCKET_SECONDS)


@dataclass(slots=True)
class Bucket:
    """One series' samples of one minute, summed up."""

    count: int
    min: float
    max: float
    sum: float
    last: float
    last_at: datetime

    @classmethod
    def of(cls, value: float, at: datetime) -> Bucket:
        return cls(1, value, value, value, value, at)

    def add(self, value: float, at: datetime) -> None:
        """One more sample; among equal times the one added last is the newest."""
        self.count += 1
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.sum += value
        if at >= self.last_at:
            self.last, self.last_at = value, at

    def merge(self, other: Bucket) -> None:
        """Another part of the same minute (samples compacted at another time)."""
        self.count += other.count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.sum += other.sum
        if other.last_at >= self.last_at:
            self.last, self.last_at = other.last, other.last_at

    @property
    def mean(self) -> float:
        return self.sum / self.count

    def value(self, rollup: Rollup) -> float:
        if rollup is Rollup.MIN:
            return self.min
        if rollup is Rollup.MAX:
            return self.max
        if rollup is Rollup.LAST:
            return self.last
        return self.mean


def buckets_of(
    samples: Iterable[tuple[str, str, datetime, float]],
) -> dict[tuple[str, datetime, str], Bucket]:
    """Samples ``(metric, instance, time, value)``, in the order they were stored, summed up
    by series and minute: ``(metric, minute start, instance) -> Bucket``. Among equal times
    the one stored last is the newest, as everywhere else."""
    summed: dict[tuple[str, datetime, str], Bucket] = {}
    for metric, instance, at, value in sorted(samples, key=lambda sample: sample[2]):
        key = (metric, bucket_start(at), instance)
        found = summed.get(key)
        if found is None:
            summed[key] = Bucket.of(value, at)
        else:
            found.add(value, at)
    return summed


def wanted(rules: Iterable[Rule]) -> dict[str, Rollup]:
    """Which figure of a bucket each metric the rules read is replayed with: the worst for
    the rules that judge against a level (all agreeing), else the mean. A metric read by rules
    that disagree (one where higher is worse, one where lower is) takes the mean: no single
    figure is the worst for both."""
    preferred: dict[str, set[Rollup]] = {}
    for rule in rules:
        for metric, rollup in _preferences(rule):
            preferred.setdefault(metric, set())
            if rollup is not None:
                preferred[metric].add(rollup)
    return {
        metric: next(iter(choices)) if len(choices) == 1 else Rollup.MEAN
        for metric, choices in preferred.items()
    }


def _preferences(rule: Rule) -> list[tuple[str, Rollup | None]]:
    if rule.kind is Kind.THRESHOLD and rule.metric:
        worst = Rollup.MIN if rule.direction is Direction.BELOW else Rollup.MAX
        return [(rule.metric, worst)]
    if rule.kind is Kind.COMPOSITE:
        return [
            (term.metric, Rollup.MIN if term.op.startswith("<") else Rollup.MAX)
            for term in rule.parsed_condition.terms()
        ]
    if rule.kind is Kind.ABSENT:
        return [(metric, None) for metric in rule.metrics]  # any figure: the sample was there
    return [(metric, Rollup.MEAN) for metric in rule.metrics]
