"""Rules: what is watched, of which kind, per which series, and how a reading is judged.

``Rule`` is one flat, frozen record holding every field of every kind (DESIGN section 1), so
JSON, the database row, the rules file and the dashboard's form all have one shape. Each kind
validates the fields it uses; a field of another kind, when set, is refused by name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.core.condition import Condition, parse
from vigil.core.errors import ValidationError
from vigil.core.validation import (
    check_bool,
    check_choice,
    check_int,
    check_keys,
    check_metric,
    check_optional_finite,
    check_rule_name,
    parse_datetime,
)

MAX_STREAK = 100
MAX_SECONDS = 30 * 86_400.0  # the longest absent_for / stale_after: thirty days
# Learning kinds (anomaly, forecast): their defaults and bounds.
DEFAULT_SENSITIVITY = 4.0  # band half-width in spreads (1.4826 MADs)
MIN_SENSITIVITY, MAX_SENSITIVITY = 0.5, 50.0
MIN_LOOKBACK = 60.0  # seconds of trend a forecast fits; by default, as long as its horizon
DEFAULT_ANOMALY_HISTORY = 86_400.0  # a day of readings before an anomaly rule may fire


class Kind(StrEnum):
    THRESHOLD = "threshold"
    ABSENT = "absent"
    COMPOSITE = "composite"
    ANOMALY = "anomaly"  # outside a band around the series' own seasonal baseline
    FORECAST = "forecast"  # its trend would cross a threshold within a horizon


class SplitBy(StrEnum):
    NONE = "none"  # the instances' values combined by ``aggregate``
    INSTANCE = "instance"  # one series, streak and incident per instance


class NoData(StrEnum):
    KEEP = "keep"  # missing data changes nothing
    OK = "ok"  # counts as a normal reading
    ALERTING = "alerting"  # counts as a breach at the rule's most severe level


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

# Which kinds use which of the kind-specific fields. A field outside its kinds must be left
# at its default ("not set"); the defaults of these fields are None except where noted.
_LEARNING = frozenset({Kind.ANOMALY, Kind.FORECAST})
_KIND_FIELDS: dict[str, frozenset[Kind]] = {
    "unit": frozenset({Kind.THRESHOLD, Kind.ABSENT, *_LEARNING}),
    "warning": frozenset({Kind.THRESHOLD, Kind.FORECAST}),
    "critical": frozenset({Kind.THRESHOLD, Kind.FORECAST}),
    "recovery": frozenset({Kind.THRESHOLD, Kind.FORECAST}),  # default: the first threshold
    "direction": frozenset({Kind.THRESHOLD, Kind.FORECAST}),  # default: above
    "aggregate": frozenset({Kind.THRESHOLD, Kind.COMPOSITE, *_LEARNING}),  # default: max
    "absent_for": frozenset({Kind.ABSENT}),
    "condition": frozenset({Kind.COMPOSITE}),
    "severity": frozenset({Kind.ABSENT, Kind.COMPOSITE, Kind.ANOMALY}),
    "no_data": frozenset({Kind.THRESHOLD, Kind.COMPOSITE, *_LEARNING}),  # default: keep
    "sensitivity": frozenset({Kind.ANOMALY}),  # default: 4 spreads
    "horizon": frozenset({Kind.FORECAST}),  # required
    "lookback": frozenset({Kind.FORECAST}),  # default: the horizon
    "min_history": frozenset(_LEARNING),  # default: a day (anomaly), the lookback (forecast)
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One alerting rule. Construction validates; an invalid rule cannot exist.

    ``name`` defaults to ``metric``, so ``Rule(metric="x", critical=1)`` is the rule named
    after its metric, as every rule was before rules had names of their own.
    """

    name: str = ""
    kind: Kind = Kind.THRESHOLD
    metric: str = ""  # "" for a composite rule (JSON: null); read ``metrics`` instead
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
    absent_for: float | None = None
    condition: str | None = None
    severity: Level | None = None
    split_by: SplitBy = SplitBy.NONE
    no_data: NoData = NoData.KEEP
    stale_after: float | None = None
    # Rules declared related: incidents of rules with the same label join one incident
    # group whenever they open, even outside the correlation window (``core.grouping``).
    group_label: str | None = None
    sensitivity: float | None = None
    horizon: float | None = None
    lookback: float | None = None
    min_history: float | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    def __post_init__(self) -> None:
        kind = check_choice(Kind, "kind", self.kind)
        object.__setattr__(self, "kind", kind)
        if self.metric is None:
            object.__setattr__(self, "metric", "")
        if kind is not Kind.COMPOSITE:
            check_metric("metric", self.metric)
        elif self.metric:
            raise ValidationError("metric", "does not apply to a composite rule (see condition)")
        if not self.name and self.metric:
            object.__setattr__(self, "name", self.metric)
        check_rule_name("name", self.name)
        for name in ("display_name", "description", "unit"):
            if not isinstance(getattr(self, name), str):
                raise ValidationError(name, "must be a string")
        if not self.display_name:
            object.__setattr__(self, "display_name", _title(self.name))
        object.__setattr__(self, "direction", check_choice(Direction, "direction", self.direction))
        object.__setattr__(self, "aggregate", check_choice(Aggregate, "aggregate", self.aggregate))
        object.__setattr__(self, "split_by", check_choice(SplitBy, "split_by", self.split_by))
        object.__setattr__(self, "no_data", check_choice(NoData, "no_data", self.no_data))
        for name in ("warning", "critical", "recovery"):
            object.__setattr__(self, name, check_optional_finite(name, getattr(self, name)))
        for name in ("absent_for", "stale_after", "horizon", "lookback", "min_history"):
            object.__setattr__(self, name, _check_seconds(name, getattr(self, name)))
        for name in ("breaches_required", "recoveries_required"):
            check_int(name, getattr(self, name), 1, MAX_STREAK)
        check_bool("enabled", self.enabled)
        if self.group_label is not None:
            check_rule_name("group_label", self.group_label)
        if self.severity is not None:
            severity = check_choice(Level, "severity", self.severity)
            if severity is Level.NORMAL:
                raise ValidationError("severity", "must be one of warning, critical, got 'normal'")
            object.__setattr__(self, "severity", severity)
        if self.updated_at is not None:
            object.__setattr__(self, "updated_at", parse_datetime("updated_at", self.updated_at))
        object.__setattr__(
            self, "sensitivity", check_optional_finite("sensitivity", self.sensitivity)
        )
        self._check_kind_fields()
        if kind is Kind.THRESHOLD:
            self._check_threshold()
        elif kind is Kind.FORECAST:
            self._check_threshold()
            self._check_forecast()
        elif kind is Kind.ANOMALY:
            self._check_anomaly()
        elif kind is Kind.ABSENT:
            if self.absent_for is None:
                raise ValidationError("absent_for", "an absent rule needs absent_for (seconds)")
        else:
            if not self.condition:
                raise ValidationError("condition", "a composite rule needs a condition")
            # Stored in canonical form, so the same condition written twice is one rule.
            object.__setattr__(self, "condition", str(parse(self.condition)))
        if kind not in (Kind.THRESHOLD, Kind.FORECAST) and self.severity is None:
            object.__setattr__(self, "severity", Level.CRITICAL)

    def _check_kind_fields(self) -> None:
        for name, kinds in _KIND_FIELDS.items():
            if self.kind in kinds:
                continue
            value = getattr(self, name)
            unset = _FIELD_DEFAULTS[name]
            if value != unset and not (name == "severity" and value is None):
                article = "an" if self.kind is Kind.ANOMALY else "a"
                raise ValidationError(name, f"does not apply to {article} {self.kind} rule")

    def _check_forecast(self) -> None:
        if self.horizon is None:
            raise ValidationError("horizon", "a forecast rule needs horizon (seconds ahead)")
        if self.lookback is None:
            object.__setattr__(self, "lookback", max(self.horizon, MIN_LOOKBACK))
        assert self.lookback is not None
        if self.lookback < MIN_LOOKBACK:
            raise ValidationError("lookback", f"must be at least {MIN_LOOKBACK:g} seconds")
        if self.min_history is None:
            object.__setattr__(self, "min_history", self.lookback)

    def _check_anomaly(self) -> None:
        if self.sensitivity is None:
            object.__setattr__(self, "sensitivity", DEFAULT_SENSITIVITY)
        assert self.sensitivity is not None
        if not MIN_SENSITIVITY <= self.sensitivity <= MAX_SENSITIVITY:
            raise ValidationError(
                "sensitivity",
                f"must be between {MIN_SENSITIVITY:g} and {MAX_SENSITIVITY:g} spreads",
            )
        if self.min_history is None:
            object.__setattr__(self, "min_history", DEFAULT_ANOMALY_HISTORY)

    def _check_threshold(self) -> None:
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

    # -- what the evaluator asks -----------------------------------------------------------

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics this rule reads (a composite rule: those of its condition)."""
        if self.kind is Kind.COMPOSITE:
            return self.parsed_condition.metrics
        return (self.metric,)

    @property
    def parsed_condition(self) -> Condition:
        if self.condition is None:
            raise ValidationError("condition", f"rule {self.name!r} has no condition")
        return parse(self.condition)  # cached

    @property
    def top_level(self) -> Level:
        """The most severe level this rule can reach (what ``no_data: alerting`` breaches at)."""
        if self.kind in (Kind.THRESHOLD, Kind.FORECAST):
            return Level.CRITICAL if self.critical is not None else Level.WARNING
        assert self.severity is not None  # set for every other kind
        return self.severity

    @property
    def first_threshold(self) -> float:
        """The least severe threshold set: the one a worsening reading crosses first."""
        value = self.warning if self.warning is not None else self.critical
        if value is None:
            raise ValidationError("kind", f"rule {self.name!r} has no thresholds")
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
            raise ValidationError(level.value, f"rule {self.name!r} has no {level} threshold")
        return threshold

    # -- changes and serialisation ---------------------------------------------------------

    def updated(
        self, changes: Mapping[str, Any], *, by: str | None = None, at: datetime | None = None
    ) -> Rule:
        """A copy with ``changes`` applied and validated.

        A key present with ``None`` clears that field (a threshold, the recovery value; a
        field with a default goes back to it); a key left out keeps the current value.
        ``name`` and ``metric`` cannot change (replace the rule to watch another metric).
        """
        unknown = sorted(set(changes) - EDITABLE_FIELDS - FIXED_FIELDS)
        if unknown:
            raise ValidationError(unknown[0], "is not an editable rule field")
        for fixed in sorted(set(changes) & FIXED_FIELDS):
            if changes[fixed] != getattr(self, fixed):
                raise ValidationError(fixed, "cannot be changed")
        values = _defaults_for_nulls(changes)
        for fixed in FIXED_FIELDS:
            values.pop(fixed, None)
        return dataclasses.replace(self, **values, updated_by=by, updated_at=at)

    def to_dict(self) -> dict[str, Any]:
        """Every field under its JSON name; enums as their values, times as ISO-8601."""
        data: dict[str, Any] = {}
        for name in FIELD_NAMES:
            value = getattr(self, name)
            if isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, datetime):
                value = value.isoformat()
            data[name] = value
        data["metric"] = self.metric or None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """The inverse of ``to_dict``; a ``null`` for a field with a default takes the default.
        Refuses keys that are not rule fields, naming the first."""
        check_keys(data, ALL_FIELDS, "a rule")
        return cls(**_defaults_for_nulls(data))

    def changes_from(self, before: Rule) -> dict[str, list[Any]]:
        """``{field: [old, new]}`` for every field (but the update stamp) that differs."""
        old, new = before.to_dict(), self.to_dict()
        return {
            name: [old[name], new[name]]
            for name in FIELD_NAMES
            if name not in STAMP_FIELDS and old[name] != new[name]
        }

    def same_as(self, other: Rule) -> bool:
        """Equal in everything but who changed it when."""
        return not self.changes_from(other)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Rule))
ALL_FIELDS = frozenset(FIELD_NAMES)
STAMP_FIELDS = frozenset({"updated_at", "updated_by"})
FIXED_FIELDS = frozenset({"name", "metric"})
EDITABLE_FIELDS = ALL_FIELDS - FIXED_FIELDS - STAMP_FIELDS
_FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Rule)}


def _defaults_for_nulls(values: Mapping[str, Any]) -> dict[str, Any]:
    """``None`` for a field whose default is not ``None`` means "back to the default"."""
    return {
        name: (_FIELD_DEFAULTS.get(name) if value is None else value)
        for name, value in values.items()
    }


def _check_seconds(field: str, value: object) -> float | None:
    seconds = check_optional_finite(field, value)
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:
        raise ValidationError(field, f"must be more than 0 and at most {MAX_SECONDS:g} seconds")
    return seconds


def _title(name: str) -> str:
    return re.sub(r"[_.-]", " ", name).title()
