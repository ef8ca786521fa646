"""The bounded series model for pushed samples: how many distinct metrics and series (instance,
metric) this process accepts, and when a series that stopped being pushed is forgotten.

Without a bound, one ingest token pushing a new metric name per sample grows every per-metric
structure without end: the live view, ``/api/metrics``, the Overview, the monitor's combining
query. ``SeriesBudget`` is pure bookkeeping (time passed in): ``admit`` checks a batch and
records its series, refusing the whole batch when a new series would pass a cap;
``evict`` forgets series not pushed for ``retention``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from vigil.core import Sample, ValidationError


class SeriesLimitError(ValidationError):
    """A batch would add a series past a cap (422, naming the first such sample)."""


@dataclass(frozen=True, slots=True)
class SeriesStatus:
    series: int  # distinct (instance, metric) pushed within the retention
    metrics: int  # distinct metric names among them
    max_series: int
    max_metrics: int
    refused_samples: int  # samples of new series refused for a cap, since start
    evicted_series: int  # series forgotten after the retention, since start


class SeriesBudget:
    def __init__(self, *, max_metrics: int, max_series: int, retention: timedelta) -> None:
        if max_metrics < 1 or max_series < 1:
            raise ValidationError("max_series", "the caps must be at least 1")
        if retention <= timedelta(0):
            raise ValidationError("series_retention", "must be a positive duration")
        self.max_metrics = max_metrics
        self.max_series = max_series
        self.retention = retention
        # Least recently pushed first, so eviction only looks at what it removes.
        self._seen: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        self._per_metric: dict[str, int] = {}
        self._refused = 0
        self._evicted = 0

    def admit(self, samples: Sequence[Sample], *, now: datetime) -> None:
        """Record the series of ``samples`` as pushed at ``now``; ``SeriesLimitError`` (and
        nothing recorded) when one of them is new and would pass ``max_series`` or
        ``max_metrics``. Series older than the retention are evicted first, so a slot freed
        by a series that stopped is available at once."""
        self.evict(now)
        keys = {(s.instance, s.metric) for s in samples}
        if self._seen.keys() >= keys:
            # The common push: series already known, nothing to refuse (no sample by sample
            # search for the one that would be refused).
            self._touch(keys, now)
            return
        new_series: dict[tuple[str, str], int] = {}  # -> index of its first sample
        new_metrics: set[str] = set()
        for index, sample in enumerate(samples):
            key = (sample.instance, sample.metric)
            if key in self._seen or key in new_series:
                continue
            new_series[key] = index
            if sample.metric not in self._per_metric:
                new_metrics.add(sample.metric)
            if len(self._seen) + len(new_series) > self.max_series:
                self._refuse(samples)
                raise SeriesLimitError(
                    f"samples[{index}].metric",
                    f"{sample.metric!r} from {sample.instance!r} would be a new series past "
                    f"the limit of {self.max_series:,} series (VIGIL_MAX_SERIES); series not "
                    f"pushed for {_duration(self.retention)} are forgotten",
                )
            if len(self._per_metric) + len(new_metrics) > self.max_metrics:
                self._refuse(samples)
                raise SeriesLimitError(
                    f"samples[{index}].metric",
                    f"{sample.metric!r} would be a new metric past the limit of "
                    f"{self.max_metrics:,} metrics (VIGIL_MAX_METRICS); metrics not pushed "
                    f"for {_duration(self.retention)} are forgotten",
                )
        self._touch(keys, now)

    def _touch(self, keys: set[tuple[str, str]], now: datetime) -> None:
        """Record ``keys`` as pushed at ``now`` (counting the new ones)."""
        for key in keys:
            if key not in self._seen:
                self._per_metric[key[1]] = self._per_metric.get(key[1], 0) + 1
            self._seen[key] = now
            self._seen.move_to_end(key)

    def evict(self, now: datetime) -> int:
        """Forget the series not pushed since ``now - retention``; how many were."""
        cutoff = now - self.retention
        evicted = 0
        while self._seen:
            key, last = next(iter(self._seen.items()))
            if last > cutoff:
                break
            del self._seen[key]
            left = self._per_metric[key[1]] - 1
            if left:
                self._per_metric[key[1]] = left
            else:
                del self._per_metric[key[1]]
            evicted += 1
        self._evicted += evicted
        return evicted

    def knows(self, metric: str) -> bool:
        """Whether ``metric`` was pushed (by any instance) within the retention."""
        return metric in self._per_metric

    def status(self) -> SeriesStatus:
        return SeriesStatus(
            series=len(self._seen),
            metrics=len(self._per_metric),
            max_series=self.max_series,
            max_metrics=self.max_metrics,
            refused_samples=self._refused,
            evicted_series=self._evicted,
        )

    def _refuse(self, samples: Sequence[Sample]) -> None:
        """Count the samples of the batch's new series: the ones a cap refused."""
        self._refused += sum(1 for s in samples if (s.instance, s.metric) not in self._seen)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
