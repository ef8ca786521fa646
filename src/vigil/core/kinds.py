"""What each kind of rule makes of one series' readings in one cycle, and how it says so.

Each kind maps its input to an ``Observation`` (a level, and what to remember about it); the
evaluator (``vigil.core.evaluation``) turns observations into streaks and incidents the same
way for every kind. Pure: no I/O, time passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

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


def no_data(rule: Rule) -> Observation | None:
    """What missing data counts as under the rule's policy; ``None``: nothing (keep)."""
    if rule.kind is Kind.ABSENT or rule.no_data is NoData.KEEP:
        return None
    if rule.no_data is NoData.OK:
        return Observation(Level.NORMAL, no_data=True)
    return Observation(rule.top_level, no_data=True)


def threshold_of(rule: Rule, level: Level) -> float:
    """The snapshot an incident keeps of what was crossed at ``level``."""
    if rule.kind is Kind.THRESHOLD:
        return rule.threshold_for(level)
    if rule.kind is Kind.ABSENT:
        assert rule.absent_for is not None
        return rule.absent_for
    return rule.parsed_condition.terms()[0].number


def worse(rule: Rule) -> Callable[[float, float], float]:
    """Which of two values is the worse one, for an incident's peak."""
    if rule.kind is Kind.THRESHOLD:
        return max if rule.direction is Direction.ABOVE else min
    if rule.kind is Kind.ABSENT:
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
