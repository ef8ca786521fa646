"""Transitions: one series of one rule, one cycle's observation, the new state and events.

``advance`` is the whole semantics of DESIGN section 1 "Evaluation" for every kind
(``vigil.core.kinds`` makes each kind's observations); ``step`` is its threshold form.
Pure: no I/O, time passed in.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vigil.core import kinds
from vigil.core.errors import ValidationError
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Severity, Status, resolve
from vigil.core.kinds import Observation
from vigil.core.rules import MAX_STREAK, Level, Rule

IdFactory = Callable[[], uuid.UUID]


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where one series of one rule stands. ``normal_streak`` counts only while an incident is
    open. ``flap_history`` holds the levels of the latest evaluations, oldest first, one
    letter each (``vigil.core.flapping``; "" when they were all normal), and ``flapping``
    whether the series is flapping."""

    breach_streak: int = 0
    normal_streak: int = 0
    critical_streak: int = 0
    incident: Incident | None = None
    flap_history: str = ""
    flapping: bool = False

    @property
    def is_idle(self) -> bool:
        return (
            self.incident is None
            and self.breach_streak == 0
            and self.critical_streak == 0
            and not self.flap_history
            and not self.flapping
        )

    def without_incident(self) -> RuleState:
        """Idle streaks, the flap history kept: the state after an incident is closed by hand
        (a manual resolution does not make a flapping series calm)."""
        return RuleState(flap_history=self.flap_history, flapping=self.flapping)


IDLE = RuleState()


def step(
    rule: Rule,
    state: RuleState,
    value: float | None,
    *,
    now: datetime,
    silenced: bool = False,
    new_id: IdFactory = uuid.uuid4,
) -> tuple[RuleState, list[Event]]:
    """One reading of one threshold rule (``None``: no data, under the rule's policy)."""
    if value is None:
        seen = kinds.no_data(rule)
    else:
        _check_reading(rule.metric, value)
        seen = kinds.threshold(rule, value)
    return advance(rule, state, seen, now=now, silenced=silenced, new_id=new_id)


def advance(
    rule: Rule,
    state: RuleState,
    seen: Observation | None,
    *,
    now: datetime,
    silenced: bool = False,
    new_id: IdFactory = uuid.uuid4,
    instance: str | None = None,
    hold_open: bool = False,
) -> tuple[RuleState, list[Event]]:
    """One observation of one series: the new state and the events it causes.

    ``None`` (no data under ``no_data: keep``) changes nothing. A ``silenced`` rule (snoozed,
    in maintenance) and a disabled one still count streaks and may auto-resolve, but neither
    open nor escalate an incident. ``hold_open`` (a flapping series) keeps an open incident
    open: the normal streak goes on counting, and the recovery happens when it is lifted.
    """
    if seen is None:
        return state, []
    level = seen.level
    incident = state.incident
    held = silenced or not rule.enabled

    if level is Level.NORMAL:
        if incident is None:
            return IDLE, []
        incident = _observe(rule, incident, seen)
        if not seen.recovered:
            # Hysteresis band: neither breach nor normal.
            return RuleState(normal_streak=state.normal_streak, incident=incident), []
        normal = min(state.normal_streak + 1, MAX_STREAK)
        if normal >= rule.recoveries_required and not hold_open:
            _, event = resolve(incident, now=now)
            return IDLE, [event]
        return RuleState(normal_streak=normal, incident=incident), []

    # Capped at the largest count a rule may require: beyond it the state stops changing,
    # so a long breach without an incident (a snoozed rule) is not rewritten every cycle.
    breach = min(state.breach_streak + 1, MAX_STREAK)
    critical = min(state.critical_streak + 1, MAX_STREAK) if level is Level.CRITICAL else 0
    if incident is None:
        if breach >= rule.breaches_required and not held:
            opened = _open(rule, level, seen, now=now, new_id=new_id, instance=instance)
            event = Event.for_incident(EventKind.INCIDENT_OPENED, opened, at=now)
            return RuleState(breach, 0, critical, opened), [event]
        return RuleState(breach, 0, critical, None), []

    incident = _observe(rule, incident, seen)
    events: list[Event] = []
    if incident.severity is Severity.WARNING and critical >= rule.breaches_required and not held:
        # The incident keeps the threshold and value that opened it; the escalation's own
        # are in its event (and its message, which follows the severity).
        threshold = kinds.threshold_of(rule, Level.CRITICAL, seen)
        incident = dataclasses.replace(
            incident,
            severity=Severity.CRITICAL,
            message=kinds.message(
                rule, Level.CRITICAL, seen, threshold=threshold, instance=instance
            ),
        )
        data = {"from": "warning", "threshold": threshold, "value": seen.value}
        events.append(Event.for_incident(EventKind.INCIDENT_ESCALATED, incident, at=now, data=data))
    return RuleState(breach, 0, critical, incident), events


def message(
    rule: Rule, level: Level, value: float, threshold: float, *, instance: str | None = None
) -> str:
    """``Gateway Latency exceeded critical threshold: 231.40 ms >= 200.00 ms``."""
    return kinds.threshold_message(rule, level, value, threshold, instance=instance)


def _open(
    rule: Rule,
    level: Level,
    seen: Observation,
    *,
    now: datetime,
    new_id: IdFactory,
    instance: str | None,
) -> Incident:
    threshold = kinds.threshold_of(rule, level, seen)
    value = seen.value if seen.value is not None else threshold
    metric = rule.metric or rule.parsed_condition.terms()[0].metric
    return Incident(
        id=new_id(),
        metric=metric,
        severity=Severity(level.value),
        status=Status.ACTIVE,
        triggered_at=now,
        threshold=threshold,
        value=value,
        peak_value=value,
        last_value=value,
        message=kinds.message(rule, level, seen, threshold=threshold, instance=instance),
        rule=rule.name,
        instance=instance,
        condition=rule.condition,
        values=dict(seen.values) if seen.values is not None else None,
        no_data=seen.no_data,
    )


def _observe(rule: Rule, incident: Incident, seen: Observation) -> Incident:
    missing = seen.no_data and seen.level is not Level.NORMAL
    value = seen.value
    if value is None:
        if incident.no_data == missing:
            return incident
        return dataclasses.replace(incident, no_data=missing)
    peak = kinds.worse(rule)(incident.peak_value, value)
    if value == incident.last_value and peak == incident.peak_value and missing == incident.no_data:
        return incident  # a steady breach: the same incident, not a copy of it every cycle
    return incident.observed(last_value=value, peak_value=peak, no_data=missing)


def _check_reading(metric: str, value: object) -> None:
    # bool is an int: a source may report a state such as ``bot_disconnected`` as True.
    if not isinstance(value, int | float):
        raise ValidationError(metric, f"reading must be a number or None, got {value!r}")
    if not math.isfinite(value):
        raise ValidationError(metric, f"reading must be a finite number, got {value!r}")
