"""The runtime: the embedded monitor, its event bus and live view, and leadership."""

from __future__ import annotations

from vigil.runtime.bus import EventBus, MemoryEventLog
from vigil.runtime.leader import MonitorRunningError
from vigil.runtime.monitor import Monitor, MonitorStatus
from vigil.runtime.view import CurrentValue, LiveView
from vigil.runtime.vigil import NotStartedError, Vigil

__all__ = [
    "CurrentValue",
    "EventBus",
    "LiveView",
    "MemoryEventLog",
    "Monitor",
    "MonitorRunningError",
    "MonitorStatus",
    "NotStartedError",
    "Vigil",
]
