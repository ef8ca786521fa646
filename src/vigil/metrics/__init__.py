"""Metrics: the hot-path recorder, windows over it, and the sources a monitor reads each cycle.

Importing this package imports neither discord.py, aiohttp, SQLAlchemy nor psutil: each is
imported by the one source that needs it, when that source is used.
"""

from __future__ import annotations

from vigil.metrics.commands import CommandStats
from vigil.metrics.database import QueryTimer
from vigil.metrics.gateway import GatewaySource
from vigil.metrics.health import HealthRegistry, TaskHealth, TaskStatus
from vigil.metrics.http_trace import HttpTracker
from vigil.metrics.hub import MetricHost, Metrics
from vigil.metrics.loop_lag import LoopLagProbe
from vigil.metrics.process import ProcessSource
from vigil.metrics.recorder import BYTES_PER_SAMPLE, DEFAULT_CAPACITY, Recorder, Timer
from vigil.metrics.source import DEFAULT_WINDOW, MetricSource, Reading, WindowSource, collect
from vigil.metrics.windows import WindowStats, percentile

__all__ = [
    "BYTES_PER_SAMPLE",
    "DEFAULT_CAPACITY",
    "DEFAULT_WINDOW",
    "CommandStats",
    "GatewaySource",
    "HealthRegistry",
    "HttpTracker",
    "LoopLagProbe",
    "MetricHost",
    "MetricSource",
    "Metrics",
    "ProcessSource",
    "QueryTimer",
    "Reading",
    "Recorder",
    "TaskHealth",
    "TaskStatus",
    "Timer",
    "WindowSource",
    "WindowStats",
    "collect",
    "percentile",
]
