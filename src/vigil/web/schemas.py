"""The API's shared JSON shapes: rules, incidents, metrics, events, and the input types the
routes share. Shapes only one route module uses live in it (health and ingestion, sign-in).
Pydantic stays in ``vigil.web``; the domain is plain dataclasses.

Times are UTC ISO-8601, enums lowercase strings, names snake_case (DESIGN section 4).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from vigil.core import (
    Aggregate,
    Direction,
    Event,
    Incident,
    Level,
    Resolution,
    Rule,
    Severity,
    Status,
    ValidationError,
)
from vigil.core.condition import MAX_LENGTH as MAX_CONDITION
from vigil.core.incidents import MAX_NOTES
from vigil.core.rules import MAX_SECONDS, MAX_STREAK, Kind, NoData, SplitBy
from vigil.core.validation import METRIC_PATTERN, NAME_PATTERN, RULE_NAME_PATTERN
from vigil.runtime import CurrentValue
from vigil.store import Page

# The core's patterns, anchored, as OpenAPI and pydantic want them.
METRIC_REGEX = f"^{METRIC_PATTERN.pattern}$"
NAME_REGEX = f"^{NAME_PATTERN.pattern}$"
INSTANCE_PATTERN = re.compile(r"[A-Za-z0-9_.:@/-]{1,100}")
INSTANCE_REGEX = f"^{INSTANCE_PATTERN.pattern}$"
_UNSAFE_TEXT = re.compile(r"[\x00\ud800-\udfff]")  # PostgreSQL and UTF-8 refuse these


def _safe_text(value: str) -> str:
    if _UNSAFE_TEXT.search(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _iso_only(value: object) -> object:
    """Pydantic would read a number as Unix time; the API speaks ISO-8601 only."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO-8601 date and time with a time zone")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$"), AfterValidator(_safe_text)]
UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_utc)]
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]


def utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


UtcOut = Annotated[datetime, AfterValidator(lambda value: value.astimezone(UTC))]
"""A time in an answer, shown in UTC whatever offset the domain object carries."""


def fields_of(model: type[BaseModel], source: object, **given: Any) -> dict[str, Any]:
    """``model``'s fields read off ``source``: each the attribute of the same name, except
    those ``given`` (derived values)."""
    return {
        name: given[name] if name in given else getattr(source, name) for name in model.model_fields
    }


class Shown(BaseModel):
    """An answer that is a domain object's attributes of the same names, as they are."""

    @classmethod
    def of(cls, source: object) -> Self:
        return cls.model_validate(fields_of(cls, source))


# -- rules ----------------------------------------------------------------------------------


RULE_NAME_REGEX = f"^{RULE_NAME_PATTERN.pattern}$"


class RuleOut(Shown):
    """A rule, every field of every kind (those its kind does not use are null)."""

    name: str
    kind: Kind
    metric: str | None
    display_name: str
    description: str
    unit: str
    warning: float | None
    critical: float | None
    direction: Direction
    recovery: float | None
    aggregate: Aggregate
    absent_for: float | None
    condition: str | None
    severity: Level | None = Field(description="Kinds without thresholds: the incident's.")
    enabled: bool
    breaches_required: int
    recoveries_required: int
    split_by: SplitBy
    no_data: NoData
    stale_after: float | None
    group_label: str | None = Field(
        description="Rules with the same label are related: their incidents join one group."
    )
    sensitivity: float | None = Field(description="Anomaly: the band's half-width in spreads.")
    horizon: float | None = Field(description="Forecast: seconds ahead the trend is followed.")
    lookback: float | None = Field(description="Forecast: seconds of readings the trend fits.")
    min_history: float | None = Field(
        description="Anomaly and forecast: seconds of readings before the rule may fire."
    )
    updated_at: UtcOut | None
    updated_by: str | None

    @classmethod
    def of(cls, source: object) -> Self:
        data = fields_of(cls, source)
        data["metric"] = data["metric"] or None  # a composite rule watches no one metric
        return cls.model_validate(data)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(**kwargs: Any) -> Any:
    """A field that may be left out but, when given, must not be null: its type stays
    non-nullable in the schema and an explicit null fails validation."""
    return Field(default=None, json_schema_extra=_no_default, **kwargs)


class Changes(BaseModel):
    """A partial update: only the fields the client sent count."""

    def changes(self) -> dict[str, Any]:
        """Only what the client sent: an explicit null is kept, a left-out field is not."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class RuleUpdate(Changes):
    """Fields to change; a field left out keeps its value. ``warning``, ``critical`` and
    ``recovery`` accept an explicit ``null``, which clears them."""

    model_config = ConfigDict(extra="forbid")

    display_name: Text = optional(min_length=1, max_length=200)
    description: Text = optional(max_length=2000)
    unit: Text = optional(max_length=32)
    warning: Finite | None = None
    critical: Finite | None = None
    recovery: Finite | None = None
    direction: Direction = optional()
    enabled: StrictBool = optional()
    breaches_required: StrictInt = optional(ge=1, le=MAX_STREAK)
    recoveries_required: StrictInt = optional(ge=1, le=MAX_STREAK)
    aggregate: Aggregate = optional()


Seconds = Annotated[float, Field(allow_inf_nan=False, gt=0, le=MAX_SECONDS)]
RuleSeverity = Literal["warning", "critical"]


class RulePatch(RuleUpdate):
    """Fields of a rule to change (``PATCH``): a field left out keeps its value, an explicit
    ``null`` clears it (a threshold, the recovery value, the staleness limit...). The name
    cannot change; the result is validated whole, as the kind requires."""

    kind: Kind = optional()
    metric: Annotated[str, Field(pattern=METRIC_REGEX)] | None = None
    absent_for: Seconds | None = None
    condition: Annotated[Text, Field(max_length=MAX_CONDITION)] | None = None
    severity: RuleSeverity = optional()
    split_by: SplitBy = optional()
    no_data: NoData = optional()
    stale_after: Seconds | None = None
    group_label: Annotated[str, Field(pattern=RULE_NAME_REGEX)] | None = None
    sensitivity: Annotated[float, Field(allow_inf_nan=False)] | None = None
    horizon: Seconds | None = None
    lookback: Seconds | None = None
    min_history: Seconds | None = None


class RuleReplace(RulePatch):
    """A whole rule that replaces one (``PUT``): a field left out takes its default
    (``kind`` threshold, ``severity`` critical, ``breaches_required`` 2...), not its current
    value. A ``name`` given must be the path's."""

    name: Annotated[str, Field(pattern=RULE_NAME_REGEX)] = optional()

    def rule(self, *, name: str | None = None) -> Rule:
        """The rule this body describes, validated by the core (a problem names its field);
        ``name`` is the path's, which the body's own must match."""
        data = self.changes()
        if name is not None and data.setdefault("name", name) != name:
            raise ValidationError("name", f"must be {name!r}, the name in the path")
        return Rule.from_dict(data)


class RuleIn(RuleReplace):
    """A new rule (``POST``): ``name`` is required, every other field has its default."""

    name: Annotated[str, Field(pattern=RULE_NAME_REGEX)]


# -- incidents ------------------------------------------------------------------------------


class IncidentOut(BaseModel):
    id: uuid.UUID
    rule: str = Field(description="The rule's name.")
    metric: str
    instance: str | None = Field(description="The series of a split rule; null when not split.")
    severity: Severity
    status: Status
    triggered_at: UtcOut
    resolved_at: UtcOut | None
    resolution: Resolution | None
    threshold: float
    value: float
    peak_value: float
    last_value: float
    message: str
    acknowledged_by: str | None
    acknowledged_at: UtcOut | None
    notes: str | None
    resolved_by: str | None
    condition: str | None = Field(description="A composite rule's condition.")
    values: dict[str, float] | None = Field(
        description="A composite rule's term values when it opened; a forecast rule's "
        "predicted crossing (eta_s: seconds from triggered_at, rate_per_s, projected: the "
        "value at the horizon); an anomaly rule's band (baseline, low, high, weekly)."
    )
    no_data: bool = Field(description="Opened or kept open by missing data (no_data alerting).")
    flapping: bool = Field(
        description="Its series is flapping (or was when it was resolved by hand): held "
        "open, its changes not notified; see docs/rules.md, Flapping."
    )
    group: uuid.UUID | None = Field(
        default=None,
        description="The incident group it joined when it opened; null when grouping was off.",
    )
    duration_s: float = Field(description="Seconds from trigger to resolution, or to now.")

    @classmethod
    def of(cls, incident: Incident, *, now: datetime) -> IncidentOut:
        duration = max(0.0, incident.duration_s(now))
        return cls.model_validate(fields_of(cls, incident, duration_s=duration))

    def at(self, now: datetime) -> IncidentOut:
        """This incident with its duration counted to ``now`` if it is still open."""
        if self.status is Status.RESOLVED:
            return self
        duration = max(0.0, (now - self.triggered_at).total_seconds())
        return self.model_copy(update={"duration_s": duration})


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    total: int
    page: int
    page_size: int
    pages: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` (same filters) for the next page in constant time; "
        "null on the last page."
    )

    @classmethod
    def of(cls, page: Page[Incident], *, now: datetime) -> IncidentPage:
        items = [IncidentOut.of(item, now=now) for item in page.items]
        return cls.model_validate(fields_of(cls, page, items=items))

    def at(self, now: datetime) -> IncidentPage:
        """The same page with open incidents' durations counted to ``now`` (a cached page is
        built once; only these change until the data does)."""
        if all(item.status is Status.RESOLVED for item in self.items):
            return self
        return self.model_copy(update={"items": [item.at(now) for item in self.items]})


class IncidentAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: Text | None = Field(None, max_length=MAX_NOTES)


class SummaryOut(BaseModel):
    """Open incidents (active or acknowledged), by severity and by status."""

    total: int
    active: int
    acknowledged: int
    critical: int
    warning: int
    info: int


class DayCountOut(Shown):
    day: date
    info: int
    warning: int
    critical: int
    total: int


class RuleStatsOut(Shown):
    """A rule's noise over the last `days` UTC days (today included, from `first_day`)."""

    rule: str
    display_name: str
    days: int
    first_day: date
    incidents: int = Field(description="Incidents opened in the window.")
    incidents_per_day: float
    open_incidents: int = Field(description="Incidents of the rule open now.")
    seconds_in_incident: float = Field(
        description="Time its incidents (every series) were open within the window, the open "
        "ones counted up to now."
    )
    acknowledged: int = Field(description="Acknowledgements in the window.")
    mean_seconds_to_acknowledge: float | None = Field(
        description="From trigger to acknowledgement, over those acknowledged in the window; "
        "null when none was."
    )
    resolved: int = Field(description="Resolutions in the window.")
    resolved_auto: int
    resolved_manual: int
    mean_seconds_to_resolve: float | None = Field(
        description="From trigger to resolution, over those resolved in the window; null "
        "when none was."
    )
    auto_resolved_share: float | None = Field(
        description="Of those resolved in the window, the share that resolved on their own "
        "(0..1); null when none was."
    )
    flaps: int = Field(description="`incident.flapping` events in the window.")
    notifications_sent: int = Field(description="Notifications delivered in the window.")

    @classmethod
    def of_rule(cls, stats: object, *, display_name: str) -> RuleStatsOut:
        return cls.model_validate(fields_of(cls, stats, display_name=display_name))


# -- metrics --------------------------------------------------------------------------------


class CurrentValueOut(BaseModel):
    metric: str
    display_name: str
    unit: str
    value: float | None = Field(description="The last cycle's value; null without data.")
    level: Level | None
    at: datetime | None
    rule: RuleOut | None
    sampled_at: datetime | None = Field(
        None, description="When the newest sample behind the value was taken."
    )
    stale: bool = Field(
        False, description="Older than the staleness limit: no data now (no level)."
    )

    @classmethod
    def of(cls, metric: str, current: CurrentValue | None, rule: Rule | None) -> CurrentValueOut:
        return cls(
            metric=metric,
            display_name=rule.display_name if rule is not None else metric,
            unit=rule.unit if rule is not None else "",
            value=current.value if current is not None else None,
            level=current.level if current is not None else None,
            at=utc(current.at) if current is not None else None,
            rule=RuleOut.of(rule) if rule is not None else None,
            sampled_at=utc(current.sampled_at)
            if current is not None and current.sampled_at is not None
            else None,
            stale=current.stale if current is not None else False,
        )


class MetricPointOut(Shown):
    time: UtcOut = Field(description="Start of the bucket.")
    mean: float
    min: float
    max: float
    count: int


class MetricHistoryOut(BaseModel):
    metric: str
    start: datetime
    end: datetime
    max_points: int
    points: list[MetricPointOut]


# -- events ---------------------------------------------------------------------------------


class EventOut(BaseModel):
    """One event of the log, as the live stream sends it (the SSE `data:` line)."""

    id: int
    kind: str
    at: UtcOut
    metric: str | None
    rule: str | None
    by: str | None
    incident: IncidentOut | None
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> EventOut:
        assert event.id is not None
        incident = event.incident
        shown = IncidentOut.of(incident, now=event.at) if incident is not None else None
        return cls.model_validate(
            fields_of(cls, event, kind=event.kind.value, incident=shown, data=dict(event.data))
        )


# -- rule preview ---------------------------------------------------------------------------


class RulePreviewIn(RuleIn):
    """A rule as ``POST /api/alerts/rules`` takes it, and the period to replay it over."""

    since: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default="24h",
        description="How far back: a period (`30m`, `24h`, `7d`, `2w`; at most a year) or an "
        "ISO-8601 start time.",
    )

    def rule(self, *, name: str | None = None) -> Rule:
        data = self.changes()
        data.pop("since", None)
        return Rule.from_dict(data)


class PreviewIncidentOut(BaseModel):
    rule: str
    metric: str
    instance: str | None = Field(description="The instance, for a rule split per instance.")
    severity: str = Field(description="The highest severity it reached.")
    opened_at: datetime
    escalated_at: datetime | None
    resolved_at: datetime | None = Field(description="null: still open at the period's end.")
    threshold: float
    value: float = Field(description="The reading that opened it.")
    peak_value: float
    duration_s: float = Field(description="Seconds in incident (to the period's last cycle).")


class BandStepOut(BaseModel):
    """From ``time`` on (until the next step), the band an anomaly rule judged by; the edges
    and baseline are null while it could not fire (too little history)."""

    time: datetime
    low: float | None
    baseline: float | None
    high: float | None


class PreviewRunOut(BaseModel):
    """What one version of the rule would have done."""

    incidents: list[PreviewIncidentOut]
    opened: int
    escalated: int
    resolved: int
    notifications: int = Field(
        description="What a channel hearing every event is sent, one message per event "
        "(opened, escalated, resolved, flapping)."
    )
    grouped_notifications: int = Field(
        description="The same with incident grouping over `group_window` seconds, as the "
        "outbox sends a group's messages (equal to `notifications` when grouping is off)."
    )
    group_window: float = Field(
        description="The server's correlation window in seconds (0: grouping off)."
    )
    groups: int = Field(description="Incident groups of two or more incidents.")
    seconds_in_incident: float
    cycles: int
    band: list[BandStepOut] | None = Field(
        default=None,
        description="An anomaly rule of one series: its band as it judged the readings, a "
        "step each time it changed (once an hour); null for other rules.",
    )


class RulePreviewOut(BaseModel):
    start: datetime
    end: datetime
    samples: int = Field(description="Stored samples replayed.")
    proposed: PreviewRunOut
    saved: PreviewRunOut | None = Field(
        description="The saved rule of that name over the same period; null when none."
    )


class RuleSuggestionOut(BaseModel):
    """Thresholds suggested from the metric's stored history, and what they would have done."""

    start: datetime
    end: datetime
    readings: int = Field(description="The metric's stored samples in the period.")
    warning: float | None = Field(description="null: nothing suggested (see `reason`).")
    critical: float | None
    direction: str
    median: float | None
    spread: float | None = Field(
        description="The readings' typical spread: 1.4826 times their median absolute deviation."
    )
    weekly_shape: bool = Field(
        description="The levels follow the busiest hour of the week (the history shows a "
        "weekly shape)."
    )
    busiest_hour: str | None = Field(description="That hour, e.g. `Mon 20:00 UTC`.")
    reason: str | None = Field(description="Why nothing is suggested; null when something is.")
    explanation: str = Field(description="All of it in words, for the rule editor.")
    proposed: PreviewRunOut | None = Field(
        description="The rule with the suggested thresholds over the same period."
    )
    saved: PreviewRunOut | None = Field(description="The rule as saved, over the same period.")
