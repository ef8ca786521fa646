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
        sample = _new(cls)
        _set_instance(sample, instance)
        _set_metric(sample, metric)
        _set_time(sample, time)
        _set_value(sample, value)
        return sample


# The fields' slot setters: past the frozen ``__setattr__``, at half the cost of
# ``object.__setattr__`` (``Sample.checked`` runs once for every pushed sample).
_new = object.__new__
_set_instance, _set_metric, _set_time, _set_value = (
    Sample.__dict__[field].__set__ for field in ("instance", "metric", "time", "value")
)


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
