"""Samples: one metric's value from one instance at one time, and how instances combine."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from vigil.core.errors import ValidationError
from vigil.core.rules import Aggregate
from vigil.core.validation import METRIC_PATTERN


@dataclass(frozen=True, slots=True)
class Sample:
    instance: str
    metric: str
    time: datetime
    value: float

    def __post_init__(self) -> None:
        if not METRIC_PATTERN.fullmatch(self.metric):
            raise ValidationError("metric", f"{self.metric!r} is not a valid metric name")
        if not self.instance or len(self.instance) > 100:
            raise ValidationError("instance", "must be 1-100 characters")
        value = self.value
        if not isinstance(value, int | float):
            raise ValidationError("value", f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValidationError("value", f"must be a finite number, got {value!r}")
        object.__setattr__(self, "value", float(value))
        if self.time.tzinfo is None:
            raise ValidationError("time", "must carry a time zone (UTC)")

    @classmethod
    def checked(cls, instance: str, metric: str, time: datetime, value: float) -> Sample:
        """A sample whose fields the caller has already checked exactly as ``__post_init__``
        does (a metric name of the pattern, an instance of 1-100 characters, a finite
        ``float``, an aware time): the ingest route's fast path, where checking twice cost
        as much as the rest of a push. Everything else makes samples with ``Sample(...)``."""
        sample = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(sample, "instance", instance)
        setattr_(sample, "metric", metric)
        setattr_(sample, "time", time)
        setattr_(sample, "value", value)
        return sample


def combine(values: Iterable[float], how: Aggregate) -> float | None:
    """Combine one metric's current values across instances; ``None`` when there are none."""
    items = list(values)
    if not items:
        return None
    if how is Aggregate.MAX:
        return max(items)
    if how is Aggregate.MIN:
        return min(items)
    if how is Aggregate.SUM:
        return math.fsum(items)
    return math.fsum(items) / len(items)
