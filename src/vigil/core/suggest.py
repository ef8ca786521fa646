"""Suggested thresholds: warning and critical levels learned from a metric's own history.

Robust statistics, so that the incidents already in the history do not drag the levels up
with them: the median, and the spread as the median absolute deviation scaled to a normal
distribution's standard deviation (1.4826 times the MAD). A level is the larger of a far percentile
(which follows a skewed tail, such as a latency's) and the median plus a number of spreads:

- warning  = max(p99,   median + 4 spreads)
- critical = max(p99.9, median + 6 spreads)

The percentiles leave out the outliers beyond 12 spreads (past incidents and spikes), so a
history that holds an outage still suggests the levels of its normal days. Mirrored for a
rule whose direction is ``below``. Where the history shows a weekly shape
(the medians of the hours of the week differ by more than twice their typical spread), the
levels are worked out per hour of the week and the highest is kept, so a fixed threshold sits
above the busiest hour's normal rather than above the whole week's mixture.

Memory is bounded whatever the history's length: each hour of the week keeps a uniform
random sample of its readings (a seeded reservoir, so the same readings give the same
answer). Pure: no I/O, times are passed in.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vigil.core.rules import Direction

SPREAD_PER_MAD = 1.4826  # a normal distribution's standard deviation, in MADs
SPREAD_PER_MEAN_DEVIATION = 1.2533  # the same, in mean absolute deviations
WARNING_SPREADS = 4.0
CRITICAL_SPREADS = 6.0
WARNING_QUANTILE = 0.99
CRITICAL_QUANTILE = 0.999
OUTLIER_SPREADS = 12.0
HOURS_OF_WEEK = 7 * 24
KEPT_PER_HOUR = 1000  # the reservoir of each hour of the week: 168,000 values at most
MIN_READINGS = 500
MIN_SPAN = timedelta(hours=24)
WEEKLY_SPAN = timedelta(days=13)  # two weeks, less a day of slack, before a weekly shape
WEEKLY_HOURS = 120  # hours of the week that must have readings for a weekly shape
WEEKLY_READINGS = 20  # readings an hour of the week needs to count
SIGNIFICANT = 3  # digits a suggested level is rounded to, away from the normal range

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class Suggestion:
    warning: float
    critical: float
    direction: Direction
    readings: int
    median: float
    spread: float  # 1.4826 times the MAD of all the readings
    weekly: bool  # the levels follow the busiest hour of the week
    busiest_hour: int | None  # hour of the week (0: Monday 00:00 UTC) that set them


@dataclass(frozen=True, slots=True)
class NoSuggestion:
    """Why nothing can be suggested from this history."""

    reason: str
    readings: int


def hour_name(hour: int) -> str:
    """``Mon 20:00 UTC`` for hour of the week 20."""
    return f"{DAYS[hour // 24]} {hour % 24:02d}:00 UTC"


class History:
    """A metric's readings, accumulated one by one in bounded memory."""

    def __init__(self, *, kept_per_hour: int = KEPT_PER_HOUR, seed: int = 0) -> None:
        self._kept_per_hour = kept_per_hour
        self._random = random.Random(seed)
        self._kept: list[list[float]] = [[] for _ in range(HOURS_OF_WEEK)]
        self._seen = [0] * HOURS_OF_WEEK
        self.readings = 0
        self.first: datetime | None = None
        self.last: datetime | None = None

    def add(self, at: datetime, value: float) -> None:
        """One reading; ``at`` is timezone-aware. Readings need not come in time order."""
        if not math.isfinite(value):
            return
        utc = at.astimezone(UTC)
        hour = utc.weekday() * 24 + utc.hour
        self.readings += 1
        self.first = at if self.first is None or at < self.first else self.first
        self.last = at if self.last is None or at > self.last else self.last
        seen = self._seen[hour] = self._seen[hour] + 1
        kept = self._kept[hour]
        if len(kept) < self._kept_per_hour:
            kept.append(value)
        else:  # reservoir sampling: every reading of the hour is kept with equal chance
            slot = self._random.randrange(seen)
            if slot < self._kept_per_hour:
                kept[slot] = value

    def suggest(self, direction: Direction) -> Suggestion | NoSuggestion:
        span = self.last - self.first if self.first and self.last else timedelta(0)
        if self.readings < MIN_READINGS or span < MIN_SPAN:
            return NoSuggestion(
                f"{self.readings:,} readings over {_span(span)}: a suggestion needs at least "
                f"{MIN_READINGS:,} readings over {_span(MIN_SPAN)}",
                self.readings,
            )
        sign = 1.0 if direction is Direction.ABOVE else -1.0
        hours = [[sign * v for v in kept] for kept in self._kept]
        everything = sorted(v for kept in hours for v in kept)
        median = _quantile(everything, 0.5)
        deviations = [abs(v - median) for v in everything]
        spread = SPREAD_PER_MAD * _quantile(sorted(deviations), 0.5)
        if spread == 0.0:  # over half the readings are the median (an error rate at 0)
            spread = SPREAD_PER_MEAN_DEVIATION * math.fsum(deviations) / len(deviations)
        if spread == 0.0:
            return NoSuggestion(
                f"the metric read {sign * median:g} throughout: nothing to learn a threshold from",
                self.readings,
            )
        warning, critical = _levels(everything, median, spread)
        busiest = None
        if span >= WEEKLY_SPAN:
            weekly = _weekly(hours, spread)
            if weekly is not None:
                warning, critical, busiest = weekly
        warning = _round_out(warning)
        critical = _round_out(max(critical, warning + spread))
        return Suggestion(
            warning=sign * warning,
            critical=sign * critical,
            direction=direction,
            readings=self.readings,
            median=sign * median,
            spread=spread,
            weekly=busiest is not None,
            busiest_hour=busiest,
        )


def _levels(ordered: list[float], median: float, spread: float) -> tuple[float, float]:
    if spread > 0.0:
        ordered = ordered[: bisect.bisect_right(ordered, median + OUTLIER_SPREADS * spread)]
    warning = max(_quantile(ordered, WARNING_QUANTILE), median + WARNING_SPREADS * spread)
    critical = max(_quantile(ordered, CRITICAL_QUANTILE), median + CRITICAL_SPREADS * spread)
    return warning, critical


def _weekly(hours: list[list[float]], spread: float) -> tuple[float, float, int] | None:
    """The levels of the busiest hour of the week, when the week has a shape. An hour's
    spread is at least the typical hour's (``spread``, the whole week's, when that is 0)."""
    stats: list[tuple[int, float, float, list[float]]] = []
    for hour, values in enumerate(hours):
        if len(values) < WEEKLY_READINGS:
            continue
        ordered = sorted(values)
        median = _quantile(ordered, 0.5)
        mad = _quantile(sorted(abs(v - median) for v in ordered), 0.5)
        stats.append((hour, median, SPREAD_PER_MAD * mad, ordered))
    if len(stats) < WEEKLY_HOURS:
        return None
    medians = [median for _, median, _, _ in stats]
    typical = _quantile(sorted(s for _, _, s, _ in stats), 0.5)
    if max(medians) - min(medians) <= 2.0 * max(typical, 1e-12):
        return None  # the hours look alike: the whole week's levels stand
    floor = typical or spread
    levels = [
        (_levels(ordered, median, max(own, floor)), hour) for hour, median, own, ordered in stats
    ]
    (warning, _), busiest = max(levels)
    critical = max(critical for (_, critical), _ in levels)
    return warning, critical, busiest


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _round_out(value: float) -> float:
    """``value`` to ``SIGNIFICANT`` digits, rounded up (away from the normal range)."""
    if value == 0.0:
        return 0.0
    exponent = math.floor(math.log10(abs(value))) - SIGNIFICANT + 1
    digits = math.ceil(round(value / 10.0**exponent, 9))
    return float(f"{digits}e{exponent}")


def _span(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    amount, unit = (hours / 24, "days") if hours >= 48 else (hours, "hours")
    return f"{amount:.1f}".removesuffix(".0") + f" {unit}"
