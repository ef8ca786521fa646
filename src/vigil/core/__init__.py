"""The alerting core: rules, evaluation, incidents, events, silences. Stdlib only; time is
passed in."""

from __future__ import annotations

from vigil.core.catalogue import DEFAULT_RULES
from vigil.core.condition import Condition, ConditionError, parse
from vigil.core.errors import (
    DuplicateIncidentError,
    IllegalTransitionError,
    NameTakenError,
    NotFoundError,
    ValidationError,
    VigilError,
)
from vigil.core.evaluation import CycleResult, Evaluator, RuleState, step
from vigil.core.events import Event, EventKind
from vigil.core.incidents import Incident, Resolution, Severity, Status, acknowledge, resolve
from vigil.core.rules import Aggregate, Direction, Kind, Level, NoData, Rule, SplitBy
from vigil.core.samples import Sample, combine
from vigil.core.silences import (
    MaintenanceWindow,
    Snooze,
    Weekday,
    WindowKind,
    next_silence_change,
    silenced_metrics,
)

__all__ = [
    "DEFAULT_RULES",
    "Aggregate",
    "Condition",
    "ConditionError",
    "CycleResult",
    "Direction",
    "DuplicateIncidentError",
    "Evaluator",
    "Event",
    "EventKind",
    "IllegalTransitionError",
    "Incident",
    "Kind",
    "Level",
    "MaintenanceWindow",
    "NameTakenError",
    "NoData",
    "NotFoundError",
    "Resolution",
    "Rule",
    "RuleState",
    "Sample",
    "Severity",
    "Snooze",
    "SplitBy",
    "Status",
    "ValidationError",
    "VigilError",
    "Weekday",
    "WindowKind",
    "acknowledge",
    "combine",
    "next_silence_change",
    "parse",
    "resolve",
    "silenced_metrics",
    "step",
]
