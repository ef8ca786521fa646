"""Vigil: performance alerting and incidents for Discord bots and asyncio services.

The public API: every name a bot author meets in ``Vigil``'s signatures, and the errors to
catch around ``start()``. Everything else is reachable through its module (``vigil.store``,
``vigil.web``, ``vigil.integrations.discord``...) and may change between releases.

Importing ``vigil`` imports none of them: each name is looked up in its module the first time
it is used (PEP 562), so ``import vigil`` loads no database, web or notification library, and a
process that only records metrics (``vigil.Recorder``) never does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil._lazy import lazy_names

if TYPE_CHECKING:
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
        MaintenanceWindow,
        NotFoundError,
        Resolution,
        Rule,
        Sample,
        Severity,
        Snooze,
        Status,
        ValidationError,
        VigilError,
    )
    from vigil.metrics import HealthRegistry, Metrics, MetricSource, Recorder, WindowSource
    from vigil.runtime.notifier import DeliveryPolicy
    from vigil.runtime.vigil import NotStartedError, Vigil
    from vigil.settings import Settings
    from vigil.store.errors import VigilStorageError
    from vigil.store.leader import MonitorRunningError
    from vigil.store.records import CleanupReport, StoredChannel
    from vigil.web.serve import dashboard

from vigil._version import __version__

# Where each public name lives, by the module that defines it (the lightest way to reach it).
_HOMES = {
    "vigil.core": (
        "DEFAULT_RULES",
        "Aggregate",
        "Direction",
        "DuplicateIncidentError",
        "Event",
        "EventKind",
        "IllegalTransitionError",
        "Incident",
        "Level",
        "MaintenanceWindow",
        "NotFoundError",
        "Resolution",
        "Rule",
        "Sample",
        "Severity",
        "Snooze",
        "Status",
        "ValidationError",
        "VigilError",
    ),
    "vigil.metrics": ("HealthRegistry", "MetricSource", "Metrics", "Recorder", "WindowSource"),
    "vigil.settings": ("Settings",),
    "vigil.runtime.vigil": ("NotStartedError", "Vigil"),
    "vigil.store.leader": ("MonitorRunningError",),
    "vigil.runtime.notifier": ("DeliveryPolicy",),
    "vigil.store.errors": ("VigilStorageError",),
    "vigil.store.records": ("CleanupReport", "StoredChannel"),
    "vigil.web.serve": ("dashboard",),
}

__all__ = [
    "DEFAULT_RULES",
    "Aggregate",
    "CleanupReport",
    "DeliveryPolicy",
    "Direction",
    "DuplicateIncidentError",
    "Event",
    "EventKind",
    "HealthRegistry",
    "IllegalTransitionError",
    "Incident",
    "Level",
    "MaintenanceWindow",
    "MetricSource",
    "Metrics",
    "MonitorRunningError",
    "NotFoundError",
    "NotStartedError",
    "Recorder",
    "Resolution",
    "Rule",
    "Sample",
    "Settings",
    "Severity",
    "Snooze",
    "Status",
    "StoredChannel",
    "ValidationError",
    "Vigil",
    "VigilError",
    "VigilStorageError",
    "WindowSource",
    "__version__",
    "dashboard",
]


if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name
    __getattr__ = lazy_names(__name__, _HOMES, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
