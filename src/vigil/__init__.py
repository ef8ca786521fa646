"""Vigil: performance alerting and incidents for Discord bots and asyncio services."""

from __future__ import annotations

from vigil.core import (
    DEFAULT_RULES,
    Aggregate,
    Direction,
    DuplicateIncidentError,
    Evaluator,
    Event,
    EventKind,
    IllegalTransitionError,
    Incident,
    Level,
    NotFoundError,
    Resolution,
    Rule,
    RuleState,
    Severity,
    Status,
    ValidationError,
    VigilError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_RULES",
    "Aggregate",
    "Direction",
    "DuplicateIncidentError",
    "Evaluator",
    "Event",
    "EventKind",
    "IllegalTransitionError",
    "Incident",
    "Level",
    "NotFoundError",
    "Resolution",
    "Rule",
    "RuleState",
    "Severity",
    "Status",
    "ValidationError",
    "VigilError",
    "__version__",
]
