"""Vigil: performance alerting and incidents for Discord bots and asyncio services.

The public API. Everything else is reachable through its module (``vigil.store``,
``vigil.web``, ``vigil.integrations.discord``...) and may change between releases.
"""

from __future__ import annotations

from vigil._version import __version__
from vigil.core import (
    DEFAULT_RULES,
    Aggregate,
    Direction,
    DuplicateIncidentError,
    Event,
    EventKind,
    IllegalTransitionError,
    Incident,
    Level,
    NotFoundError,
    Resolution,
    Rule,
    Severity,
    Status,
    ValidationError,
    VigilError,
)
from vigil.metrics import HealthRegistry, Metrics, MetricSource, Recorder, WindowSource
from vigil.runtime import Vigil
from vigil.settings import Settings

__all__ = [
    "DEFAULT_RULES",
    "Aggregate",
    "Direction",
    "DuplicateIncidentError",
    "Event",
    "EventKind",
    "HealthRegistry",
    "IllegalTransitionError",
    "Incident",
    "Level",
    "MetricSource",
    "Metrics",
    "NotFoundError",
    "Recorder",
    "Resolution",
    "Rule",
    "Settings",
    "Severity",
    "Status",
    "ValidationError",
    "Vigil",
    "VigilError",
    "WindowSource",
    "__version__",
]
