"""What each kind of rule makes of one series' readings in one cycle, and how it says so.

Each kind maps its input to an ``Observation`` (a level, and what to remember about it); the
evaluator (``vigil.core.evaluation``) turns observations into streaks and incidents the same
way for every kind. Pure: no I/O, time passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from vigil.core.learning import Band, Line
from vigil.core.rules import Direction, Kind, Level, NoData, Rule


@dataclass(frozen=True, slots=True)
class Observation:
    """One series' reading in one cycle, as the evaluator needs it.

    ``value`` is what an incident records: a threshold rule's value, an absent rule's age in
    seconds, a composite's first term's value; ``None`` when there is no data. ``recovered``:
    a normal reading past the recovery value (threshold hysteresis; always true otherwise).
    """

    level: Level
    value: float | None = None
    recovered: bool = True
    values: Mapping[str, float] | None = None
    no_data: bool = False


def threshold(rule: Rule, value: float) -> Observation:
    level = rule.level(value)
    recovered = level is not Level.NORMAL or rule.is_recovered(value)
    return Observation(level, value, recovered)


def absent(rule: Rule, age: float) -> Observation:
    """``age``: seconds since the series' newest sample."""
    assert rule.absent_for is not None and rule.severity is not None
    return Observation(rule.severity if age >= rule.absent_for else Level.NORMAL, age)


def composite(rule: Rule, values: Mapping[str, float | None]) -> Observation | None:
    """``None`` when a term has no data."""
    condition = rule.parsed_condition
    holds = condition.holds(values)
    if holds is None:
        return None
    assert rule.severity is not None
    snapshot = {metric: float(values[metric] or 0.0) for metric in condition.metrics}
    first = condition.terms()[0]
    return Observation(
        rule.severity if holds else Level.NORMAL, snapshot[first.metric], values=snapshot
    )


def anomaly(rule: Rule, value: float, band: Band | None, *, history: float) -> Observation:
    """A reading outside ``sensitivity`` spreads of its hour's baseline breaches at the rule's
    severity. ``history``: seconds of readings learned so far; before ``min_history``, or
    with no baseline for the hour yet, every reading is normal."""
    assert rule.min_history is not None and rule.sensitivity is not None
    if band is None or history < rule.min_history:
        return Observation(Level.NORMAL, value)
    low, high = band.edges(rule.sensitivity)
    if low <= value <= high:
        return Observation(Level.NORMAL, value)
    assert rule.severity is not None
    band_values = {
        "baseline": band.median,
        "low": low,
        "high": high,
        "weekly": 1.0 if band.weekly else 0.0,
    }
    return Observation(rule.severity, value, values=band_values)


def forecast(
    rule: Rule, value: float, line: Line | None, at: float, *, history: float
) -> Observation:
    """The worse of the levels the trend is at now and will be at ``horizon`` seconds ahead;
    ``values`` holds when it crosses that level's threshold (``eta_s``, seconds from ``at``:
    0 when it already has), its rate per second and the value it reaches at the horizon.
    A normal trend not yet back past the rule's ``recovery`` is not ``recovered``. Before
    ``min_history`` seconds of readings, or before there is a trend, normal."""
    assert rule.min_history is not None and rule.horizon is not None
    if line is None or history < rule.min_history:
        return Observation(Level.NORMAL, value)
    fitted = line.value(at)
    projected = line.value(at + rule.horizon)
    current, ahead = rule.level(fitted), rule.level(projected)
    level = current if current.rank >= ahead.rank else ahead
    if level is Level.NORMAL:
        # Hysteresis, as a threshold rule's: the trend (now and at the horizon) must be back
        # past ``recovery`` before it counts as normal, so a predicted crossing that hovers
        # about the horizon holds its incident rather than flapping it.
        worst = (max if rule.direction is Direction.ABOVE else min)(fitted, projected)
        return Observation(Level.NORMAL, value, rule.is_recovered(worst))
    threshold = rule.threshold_for(level)
    eta = 0.0 if current is level else (threshold - fitted) / line.slope
    trend = {"eta_s": eta, "rate_per_s": line.slope, "projected": projected}
    return Observation(level, value, values=trend)


def no_data(rule: Rule) -> Observation | None:
    """What missing data counts as under the rule's policy; ``None``: nothing (keep)."""
    if rule.kind is Kind.ABSENT or rule.no_data is NoData.KEEP:
        return None
    if rule.no_data is NoData.OK:
        return Observation(Level.NORMAL, no_data=True)
    return Observation(rule.top_level, no_data=True)


def threshold_of(rule: Rule, level: Level, seen: Observation | None = None) -> float:
    """The snapshot an incident keeps of what was crossed at ``level`` (an anomaly rule: the
    edge of the band that ``seen`` fell outside)."""
    if rule.kind in (Kind.THRESHOLD, Kind.FORECAST):
        return rule.threshold_for(level)
    if rule.kind is Kind.ANOMALY:
        band = (seen.values if seen is not None else None) or {}
        if not band or seen is None or seen.value is None:
            return 0.0  # no data (``no_data: alerting``): no band was crossed
        return band["high"] if seen.value > band["baseline"] else band["low"]
    if rule.kind is Kind.ABSENT:
        assert rule.absent_for is not None
        return rule.absent_for
    return rule.parsed_condition.terms()[0].number


def worse(rule: Rule) -> Callable[[float, float], float]:
    """Which of two values is the worse one, for an incident's peak."""
    if rule.kind in (Kind.THRESHOLD, Kind.FORECAST):
        return max if rule.direction is Direction.ABOVE else min
    if rule.kind in (Kind.ABSENT, Kind.ANOMALY):  # an anomaly's peak: its highest reading
        return max
    return max if rule.parsed_condition.terms()[0].op.startswith(">") else min


# -- messages -------------------------------------------------------------------------------

# Event-unit rules count occurrences: "1.00 event >= 1.00 event" says nothing. Their messages
# say what is going on, in words chosen per built-in metric.
_EVENT_PHRASES: dict[str, Callable[[float], str]] = {
    "bot_disconnected": lambda value: "the bot is disconnected",
    "service_failure": lambda value: (
        f"{value:g} background service{'' if value == 1 else 's'} failing"
    ),
}


def message(
    rule: Rule,
    level: Level,
    seen: Observation,
    *,
    threshold: float,
    instance: str | None = None,
) -> str:
    """The one line an incident, its notification and the dashboard show."""
    on = f" on {instance}" if instance else ""
    if seen.no_data:
        return f"{rule.display_name} has no data{on} (no_data is alerting)"
    assert seen.value is not None
    if rule.kind is Kind.ABSENT:
        return f"{rule.display_name} has had no sample{on} for {seen.value:.0f} s"
    if rule.kind is Kind.ANOMALY:
        return anomaly_message(rule, seen.value, seen.values or {}, instance=instance)
    if rule.kind is Kind.FORECAST:
        return forecast_message(rule, level, seen.value, threshold, seen.values or {}, on=on)
    if rule.kind is Kind.COMPOSITE:
        terms = ", ".join(f"{metric} {value:.2f}" for metric, value in (seen.values or {}).items())
        return f"{rule.display_name}{on}: {rule.condition} holds ({terms})"
    return threshold_message(rule, level, seen.value, threshold, instance=instance)


def threshold_message(
    rule: Rule, level: Level, value: float, threshold: float, *, instance: str | None = None
) -> str:
    """``Gateway Latency exceeded critical threshold: 231.40 ms >= 200.00 ms``."""
    on = f" on {instance}" if instance else ""
    if rule.unit == "event":
        phrase = _EVENT_PHRASES.get(rule.metric)
        if phrase is not None:
            return f"{rule.display_name}{on}: {phrase(value)}"
        count = f"{value:g} event{'' if value == 1 else 's'}"
        return f"{rule.display_name}{on}: {count} ({level} at {threshold:g})"
    unit = f" {rule.unit}" if rule.unit else ""
    if rule.direction is Direction.ABOVE:
        verb, op = "exceeded", ">="
    else:
        verb, op = "fell below", "<="
    return (
        f"{rule.display_name} {verb} {level} threshold{on}: "
        f"{value:.2f}{unit} {op} {threshold:.2f}{unit}"
    )


def anomaly_message(
    rule: Rule, value: float, band: Mapping[str, float], *, instance: str | None = None
) -> str:
    """``Gateway Latency is unusually high: 231.4 ms, usual 80 to 120 ms for this hour of the
    week``."""
    on = f" on {instance}" if instance else ""
    unit = f" {rule.unit}" if rule.unit else ""
    if not band:
        return f"{rule.display_name} is unusual{on}: {_number(value)}{unit}"
    way = "high" if value > band["baseline"] else "low"
    period = "week" if band.get("weekly") else "day"
    return (
        f"{rule.display_name} is unusually {way}{on}: {_number(value)}{unit}, usual "
        f"{_number(band['low'])} to {_number(band['high'])}{unit} for this hour of the {period}"
    )


def forecast_message(
    rule: Rule,
    level: Level,
    value: float,
    threshold: float,
    trend: Mapping[str, float],
    *,
    on: str = "",
) -> str:
    """``Memory Usage will reach critical 480 MB in about 1 h 10 min (now 410 MB, rising
    1 MB/min)``."""
    unit = f" {rule.unit}" if rule.unit else ""
    rate = trend.get("rate_per_s", 0.0)
    eta = trend.get("eta_s", 0.0)
    per_minute = abs(rate) * 60.0
    pace = (
        f"{_number(per_minute)}{unit}/min"
        if per_minute >= 0.1
        else (f"{_number(per_minute * 60.0)}{unit}/h")
    )
    way = "rising" if rate > 0 else "falling" if rate < 0 else "steady"
    when = f"in about {about(eta)}" if eta > 0 else "now, by its trend"
    return (
        f"{rule.display_name}{on} will reach {level} {_number(threshold)}{unit} {when} "
        f"(now {_number(value)}{unit}, {way} {pace})"
    )


def about(seconds: float) -> str:
    """``1 h 10 min``: a duration to the minute, in words for people."""
    minutes = round(seconds / 60.0)
    if minutes < 1:
        return "a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _number(value: float) -> str:
    """Four significant digits, no exponent for everyday sizes: ``410``, ``1.25``, ``0.003``."""
    return f"{value:.4g}" if 1e-4 <= abs(value) < 1e7 or value == 0 else f"{value:.3e}"
