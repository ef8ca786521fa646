"""Rules: what a metric's thresholds are and how a reading is judged against them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.core.errors import ValidationError
from vigil.core.validation import (
    check_bool,
    check_choice,
    check_int,
    check_keys,
    check_metric,
    check_optional_finite,
)

MAX_STREAK = 100


class Direction(StrEnum):
    ABOVE = "above"  # higher is worse
    BELOW = "below"  # lower is worse


class Aggregate(StrEnum):
    MAX = "max"
    AVG = "avg"
    SUM = "sum"
    MIN = "min"


class Level(StrEnum):
    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK = {Level.NORMAL: 0, Level.WARNING: 1, Level.CRITICAL: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One metric's alerting rule. Construction validates; an invalid rule cannot exist."""

    metric: str
    display_name: str = ""
    description: str = ""
    unit: str = ""
    warning: float | None = None
    critical: float | None = None
    direction: Direction = Direction.ABOVE
    enabled: bool = True
    breaches_required: int = 2
    recoveries_required: int = 3
    recovery: float | None = None
    aggregate: Aggregate = Aggregate.MAX
    updated_at: datetime | None = None
    updated_by: str | None = None

    def __post_init__(self) -> None:
        check_metric("metric", self.metric)
        if not self.display_name:
            object.__setattr__(self, "display_name", _title(self.metric))
        object.__setattr__(self, "direction", check_choice(Direction, "direction", self.direction))
        object.__setattr__(self, "aggregate", check_choice(Aggregate, "aggregate", self.aggregate))
        for name in ("warning", "critical", "recovery"):
            object.__setattr__(self, name, check_optional_finite(name, getattr(self, name)))
        for name in ("breaches_required", "recoveries_required"):
            check_int(name, getattr(self, name), 1, MAX_STREAK)
        check_bool("enabled", self.enabled)
        for name in ("display_name", "description", "unit"):
            if not isinstance(getattr(self, name), str):
                raise ValidationError(name, "must be a string")
        if self.warning is None and self.critical is None:
            raise ValidationError("critical", "a rule needs a warning or a critical threshold")
        if self.warning is not None and self.critical is not None:
            if self.direction is Direction.ABOVE and not self.warning < self.critical:
                raise ValidationError(
                    "warning",
                    f"must be below critical for direction 'above' "
                    f"({self.warning:g} >= {self.critical:g})",
                )
            if self.direction is Direction.BELOW and not self.warning > self.critical:
                raise ValidationError(
                    "warning",
                    f"must be above critical for direction 'below' "
                    f"({self.warning:g} <= {self.critical:g})",
                )
        if self.recovery is not None:
            first = self.first_threshold
            if self.direction is Direction.ABOVE and self.recovery > first:
                raise ValidationError(
                    "recovery", f"must be at or below the lowest threshold {first:g}"
                )
            if self.direction is Direction.BELOW and self.recovery < first:
                raise ValidationError(
                    "recovery", f"must be at or above the lowest threshold {first:g}"
                )

    @property
    def first_threshold(self) -> float:
        """The least severe threshold set: the one a worsening reading crosses first."""
        value = self.warning if self.warning is not None else self.critical
        assert value is not None  # guaranteed by validation
        return value

    @property
    def recovery_value(self) -> float:
        """A reading counts as recovered only once strictly past this value."""
        return self.first_threshold if self.recovery is None else self.recovery

    def level(self, value: float) -> Level:
        if self.direction is Direction.ABOVE:
            if self.critical is not None and value >= self.critical:
                return Level.CRITICAL
            if self.warning is not None and value >= self.warning:
                return Level.WARNING
        else:
            if self.critical is not None and value <= self.critical:
                return Level.CRITICAL
            if self.warning is not None and value <= self.warning:
                return Level.WARNING
        return Level.NORMAL

    def is_recovered(self, value: float) -> bool:
        if self.direction is Direction.ABOVE:
            return value < self.recovery_value
        return value > self.recovery_value

    def threshold_for(self, level: Level) -> float:
        threshold = self.critical if level is Level.CRITICAL else self.warning
        if threshold is None:
            raise ValidationError(level.value, f"rule {self.metric!r} has no {level} threshold")
        return threshold

    def updated(
        self, changes: Mapping[str, Any], *, by: str | None = None, at: datetime | None = None
    ) -> Rule:
        """A copy with ``changes`` applied and validated.

        A key present with ``None`` clears that field (a threshold, the recovery value);
        a key left out keeps the current value. ``metric`` cannot change.
        """
        unknown = sorted(set(changes) - EDITABLE_FIELDS)
        if unknown:
            raise ValidationError(unknown[0], "is not an editable rule field")
        return dataclasses.replace(self, **changes, updated_by=by, updated_at=at)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["direction"] = self.direction.value
        data["aggregate"] = self.aggregate.value
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        check_keys(data, ALL_FIELDS, "a rule")
        values = dict(data)
        if isinstance(values.get("updated_at"), str):
            values["updated_at"] = datetime.fromisoformat(values["updated_at"])
        return cls(**values)


ALL_FIELDS = frozenset(f.name for f in dataclasses.fields(Rule))
EDITABLE_FIELDS = ALL_FIELDS - {"metric", "updated_at", "updated_by"}


def _title(metric: str) -> str:
    return metric.replace("_", " ").replace(".", " ").title()
