"""What the learning kinds remember of a series: a seasonal baseline (anomaly rules) and a
trend (forecast rules). Both live in the evaluator's slot of the series, in bounded memory,
and do a small, bounded amount of work per reading. Pure: no I/O, times are passed in.

**Baseline** (anomaly). Each hour of the week keeps a uniform sample of its readings (a
reservoir of ``KEPT_PER_HOUR``, drawn by a seeded generator so that the same readings always
give the same baseline: the preview replays exactly what the monitor did). A reading is judged
against the median and spread (1.4826 MADs, as ``vigil.core.suggest``) of the readings of the
same hour of the week *before the current hour began* (a young series with no baseline yet
tries again every ``MIN_PER_HOUR`` readings); while that hour has fewer than
``MIN_PER_HOUR`` readings (the first week), the same hour of the day over every day stands in.
The statistics of an hour are worked out once, when it begins (at most a few hundred values
sorted once an hour), so a cycle costs a lookup, two comparisons and one reservoir step.

**Trend** (forecast). The lookback is cut into ``BUCKETS`` buckets; each closed bucket is
reduced to the median of its readings (at most ``KEPT_PER_BUCKET`` kept, evenly strided), and
the trend is the Theil-Sen line through the bucket medians: the median of the pairwise slopes,
and the median intercept. Medians of medians: a spike, or a few, moves neither (unlike a
least-squares fit such as Prometheus's ``predict_linear``). The line is refitted only when a
bucket closes (``BUCKETS`` points: under 200 slopes), so a cycle costs a bucket append.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vigil.core.rules import Kind, Rule
from vigil.core.suggest import (
    HOURS_OF_WEEK,
    SPREAD_PER_MAD,
    SPREAD_PER_MEAN_DEVIATION,
    _quantile,
)

KEPT_PER_HOUR = 96  # readings kept per hour of the week: 16,128 floats at most per series
MIN_PER_HOUR = 12  # readings an hour needs before it can stand as a baseline
BUCKETS = 20  # buckets a forecast's lookback is cut into
MIN_BUCKETS = 5  # closed buckets a trend needs before it exists
KEPT_PER_BUCKET = 64
_EPOCH_HOUR_OF_WEEK = 72  # 1970-01-01 00:00 UTC was a Thursday: hour 72 of its week (Mon 0)
_MASK = (1 << 64) - 1
WEEK = 7 * 86_400.0
HOUR = 3600.0


def learning_window(rule: Rule) -> float:
    """Seconds of history a learning rule's series needs to be learned afresh (after a
    restart, or to draw what it judged by): enough to fire again (``min_history``) and, for
    an anomaly rule, a week (every hour of the week its own baseline), plus an hour; for a
    forecast, its lookback plus a bucket. 0 for the other kinds."""
    if rule.kind is Kind.ANOMALY:
        assert rule.min_history is not None
        return max(rule.min_history, WEEK) + HOUR
    if rule.kind is Kind.FORECAST:
        assert rule.min_history is not None and rule.lookback is not None
        return max(rule.min_history, rule.lookback) + rule.lookback / BUCKETS
    return 0.0


@dataclass(frozen=True, slots=True)
class Band:
    """What an hour's normal is: ``median`` and ``spread``; ``hours`` were learned from."""

    median: float
    spread: float
    weekly: bool  # from the same hour of the week (else the same hour of the day)

    def edges(self, sensitivity: float) -> tuple[float, float]:
        return self.median - sensitivity * self.spread, self.median + sensitivity * self.spread


class Baseline:
    """A series' readings by hour of the week, in bounded memory."""

    __slots__ = (
        "_band",
        "_band_from",
        "_band_until",
        "_hour",
        "_kept",
        "_next",
        "_readings",
        "_retry_at",
        "_rng",
        "_seen",
        "_spreads",
        "_w",
        "first",
    )

    def __init__(self) -> None:
        self._kept: list[list[float]] = [[] for _ in range(HOURS_OF_WEEK)]
        self._seen = [0] * HOURS_OF_WEEK
        self._next = [0] * HOURS_OF_WEEK  # the reading of the hour that next enters its sample
        self._w = [0.0] * HOURS_OF_WEEK
        # Each hour's own spread when last worked out (keys past 167: an hour of the day).
        self._spreads: dict[int, float] = {}
        self._rng = 0x9E3779B97F4A7C15  # fixed seed: the same readings, the same baseline
        self._band: Band | None = None
        self._band_from = math.inf  # the hour (seconds since the epoch) ``_band`` serves
        self._band_until = -math.inf
        self._hour = 0  # its hour of the week
        self._readings = 0
        self._retry_at = 0  # with no band yet: the reading count at which to try again
        self.first: float | None = None  # the first reading's time (seconds since the epoch)

    @property
    def band(self) -> Band | None:
        """The band the latest reading was judged by."""
        return self._band

    def observe(self, at: float, value: float) -> Band | None:
        """The band a reading at ``at`` (seconds since the epoch) is judged by, then the
        reading learned. ``None`` while neither its hour of the week nor its hour of the day
        has enough readings."""
        if not self._band_from <= at < self._band_until or (
            self._band is None and self._readings >= self._retry_at
        ):
            # Worked out once an hour; while there is none (a young series), again every
            # MIN_PER_HOUR readings, so the first hour of history can serve before it ends.
            hour = int(at // 3600)
            self._band_from, self._band_until = hour * 3600.0, (hour + 1) * 3600.0
            self._hour = (hour + _EPOCH_HOUR_OF_WEEK) % HOURS_OF_WEEK
            self._band = self._work_out(self._hour)
            self._retry_at = self._readings + MIN_PER_HOUR
        if self.first is None:
            self.first = at
        self._readings += 1
        # Reservoir sampling with skips (Li's algorithm L): every reading of the hour is kept
        # with equal chance, and only the readings that enter the sample draw random numbers
        # (a seeded 64-bit LCG, with no ``random.Random``, 2.5 KB, per series). Inline: this
        # runs every cycle for every series.
        hour = self._hour
        seen = self._seen[hour] = self._seen[hour] + 1
        if seen < self._next[hour]:
            return self._band
        self._add(hour, seen, value)
        return self._band

    def _add(self, hour: int, seen: int, value: float) -> None:
        kept = self._kept[hour]
        if len(kept) < KEPT_PER_HOUR:
            kept.append(value)
            if len(kept) == KEPT_PER_HOUR:
                self._w[hour] = math.exp(math.log(self._uniform()) / KEPT_PER_HOUR)
                self._skip(hour, seen)
            return
        kept[int(self._uniform() * KEPT_PER_HOUR)] = value
        self._w[hour] *= math.exp(math.log(self._uniform()) / KEPT_PER_HOUR)
        self._skip(hour, seen)

    def _skip(self, hour: int, seen: int) -> None:
        gap = math.log(self._uniform()) / math.log1p(-self._w[hour])
        self._next[hour] = seen + int(min(gap, 1e15)) + 1

    def _uniform(self) -> float:
        """A number in (0, 1)."""
        self._rng = (self._rng * 6364136223846793005 + 1442695040888963407) & _MASK
        return ((self._rng >> 11) + 0.5) / 9007199254740992.0  # 2**53

    def _work_out(self, hour: int) -> Band | None:
        """An hour's spread is at least the typical hour's: a dozen readings (an hour at
        5-minute intervals) estimate a median well, but a spread poorly, and often too low."""
        own = self._kept[hour]
        weekly = len(own) >= MIN_PER_HOUR
        if not weekly:
            own = [v for day in range(7) for v in self._kept[(hour + 24 * day) % HOURS_OF_WEEK]]
            if len(own) < MIN_PER_HOUR:
                return None
        median, spread = _median_and_spread(own)
        self._spreads[hour if weekly else HOURS_OF_WEEK + hour % 24] = spread
        spread = max(spread, _quantile(sorted(self._spreads.values()), 0.5))
        return Band(median, spread, weekly)


def _median_and_spread(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    median = _quantile(ordered, 0.5)
    deviations = sorted(abs(v - median) for v in ordered)
    spread = SPREAD_PER_MAD * _quantile(deviations, 0.5)
    if spread == 0.0:  # over half the readings are the median (an error rate at 0)
        spread = SPREAD_PER_MEAN_DEVIATION * math.fsum(deviations) / len(deviations)
    return median, spread


@dataclass(frozen=True, slots=True)
class Line:
    """``value(t) = level + slope * (t - at)``: the trend, anchored at ``at``."""

    at: float
    level: float
    slope: float  # per second

    def value(self, t: float) -> float:
        return self.level + self.slope * (t - self.at)


class Trend:
    """A series' recent trend: bucket medians over the lookback, and their Theil-Sen line."""

    __slots__ = (
        "_count",
        "_index",
        "_kept",
        "_medians",
        "_stride",
        "first",
        "line",
        "quiet_line",
        "quiet_until",
        "width",
    )

    def __init__(self, lookback: float) -> None:
        self.width = lookback / BUCKETS
        self._medians: list[tuple[float, float]] = []  # closed buckets: (mid time, median)
        self._index = -1  # the open bucket
        self._kept: list[float] = []
        self._stride = 1
        self._count = 0
        self.first: float | None = None
        self.line: Line | None = None
        # Until when ``quiet_line`` keeps an idle series normal (see ``quiet_until``).
        self.quiet_line: Line | None = None
        self.quiet_until = -math.inf

    def add(self, at: float, value: float) -> None:
        if self.first is None:
            self.first = at
        index = int(at // self.width)
        if index != self._index:
            if index < self._index:
                return  # out of order: a trend only moves forward
            self._close(index)
        self._count += 1
        if (self._count - 1) % self._stride == 0:
            self._kept.append(value)
            if len(self._kept) > KEPT_PER_BUCKET:  # keep every other one, from now on too
                del self._kept[1::2]
                self._stride *= 2

    def _close(self, index: int) -> None:
        if self._kept:
            mid = (self._index + 0.5) * self.width
            self._medians.append((mid, _quantile(sorted(self._kept), 0.5)))
            oldest = (index - BUCKETS) * self.width
            self._medians = [point for point in self._medians if point[0] >= oldest]
            self.line = theil_sen(self._medians) if len(self._medians) >= MIN_BUCKETS else None
        self._index = index
        self._kept = []
        self._stride = 1
        self._count = 0


def theil_sen(points: list[tuple[float, float]]) -> Line:
    """The median of the pairwise slopes, through the median intercept (at the last point)."""
    slopes = sorted(
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(points)
        for x2, y2 in points[i + 1 :]
        if x2 != x1
    )
    slope = _quantile(slopes, 0.5) if slopes else 0.0
    anchor = points[-1][0]
    level = _quantile(sorted(y - slope * (x - anchor) for x, y in points), 0.5)
    return Line(anchor, level, slope)


def quiet_until(line: Line, at: float, *, first: float, above: bool, horizon: float) -> float:
    """Until when (seconds since the epoch, from ``at`` on) both the trend and the trend
    ``horizon`` seconds ahead stay on the normal side of ``first`` (the least severe
    threshold); ``-inf`` if they do not now. A second short of the exact crossing, so that
    near it the evaluator judges by the full computation (``kinds.forecast``) rather than by
    this one's rounding."""
    sign = 1.0 if above else -1.0
    slope = sign * line.slope
    if sign * line.value(at + horizon) >= sign * first or sign * line.value(at) >= sign * first:
        return -math.inf
    if slope <= 0.0:
        return math.inf  # moving away from the threshold, or not moving
    crossing = line.at + (first - line.level) / line.slope - horizon
    return crossing - 1.0
