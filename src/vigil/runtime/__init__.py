"""The runtime: the embedded monitor, its event bus, live view and notification dispatcher."""

from __future__ import annotations

from vigil.runtime.bus import EventBus
from vigil.runtime.health import Health
from vigil.runtime.monitor import Monitor, MonitorStatus
from vigil.runtime.view import CurrentValue, LiveView
from vigil.runtime.vigil import NotStartedError, Vigil
from vigil.store import MonitorRunningError  # what a second monitor on one SQLite file raises

__all__ = [
    "CurrentValue",
    "EventBus",
    "Health",
    "LiveView",
    "Monitor",
    "MonitorRunningError",
    "MonitorStatus",
    "NotStartedError",
    "Vigil",
]
