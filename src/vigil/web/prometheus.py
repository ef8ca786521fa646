"""``GET /metrics``: Vigil in the Prometheus text format, from a registry of the app's own.

Everything is read at scrape time from the live view and the monitor (no query): each
metric's current value and level, each rule's thresholds, open incidents by severity and by
status, the monitor's cycles, and the web side's own counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from vigil.core import Level, Status

if TYPE_CHECKING:
    from prometheus_client import Metric

    from vigil.runtime import Vigil
    from vigil.web.live import LiveStream

_LEVEL_VALUE = {Level.NORMAL: 0.0, Level.WARNING: 1.0, Level.CRITICAL: 2.0}


class VigilCollector(Collector):
    def __init__(self, vigil: Vigil, live: LiveStream) -> None:
        self.vigil = vigil
        self.live = live

    def collect(self) -> Iterator[Metric]:
        if not self.vigil.running:
            return
        view = self.vigil.view
        value = GaugeMetricFamily(
            "vigil_metric_value", "The last cycle's value of each metric.", labels=["metric"]
        )
        level = GaugeMetricFamily(
            "vigil_metric_level",
            "Each metric's level against its rule: 0 normal, 1 warning, 2 critical.",
            labels=["metric"],
        )
        for metric, current in sorted(view.current.items()):
            if current.value is not None and not current.stale:  # a stale value is no data
                value.add_metric([metric], current.value)
            if current.level is not None:
                level.add_metric([metric], _LEVEL_VALUE[current.level])
        yield value
        yield level

        threshold = GaugeMetricFamily(
            "vigil_rule_threshold",
            "Each rule's thresholds.",
            labels=["rule", "metric", "level"],
        )
        enabled = GaugeMetricFamily(
            "vigil_rule_enabled", "1 when the rule may open incidents.", labels=["rule", "metric"]
        )
        for name, rule in sorted(view.rules.items()):
            metric = rule.metric or ""  # a composite rule reads several
            if rule.warning is not None:
                threshold.add_metric([name, metric, "warning"], rule.warning)
            if rule.critical is not None:
                threshold.add_metric([name, metric, "critical"], rule.critical)
            enabled.add_metric([name, metric], 1.0 if rule.enabled else 0.0)
        yield threshold
        yield enabled

        active = view.active()
        by_severity = GaugeMetricFamily(
            "vigil_open_incidents",
            "Open incidents (active or acknowledged) by severity.",
            labels=["severity"],
        )
        for severity, count in view.summary().items():
            by_severity.add_metric([severity.value], float(count))
        yield by_severity
        by_status = GaugeMetricFamily(
            "vigil_open_incidents_by_status", "Open incidents by status.", labels=["status"]
        )
        for status in (Status.ACTIVE, Status.ACKNOWLEDGED):
            by_status.add_metric([status.value], float(sum(i.status is status for i in active)))
        yield by_status

        monitor = self.vigil.monitor.status()
        yield CounterMetricFamily(
            "vigil_monitor_cycles", "Monitor cycles run.", value=float(monitor.cycles)
        )
        yield CounterMetricFamily(
            "vigil_monitor_cycles_late",
            "Cycle ticks skipped because a cycle overran its interval.",
            value=float(monitor.cycles_late),
        )
        yield CounterMetricFamily(
            "vigil_monitor_dropped_samples",
            "Samples dropped while the database was unavailable.",
            value=float(monitor.dropped_samples),
        )
        yield _gauge("vigil_monitor_leader", "1 when this instance evaluates.", monitor.leader)
        yield _gauge(
            "vigil_database_up", "1 when the last cycle reached the database.", monitor.database_ok
        )
        yield _gauge(
            "vigil_monitor_pending_samples",
            "Samples kept in memory for the next commit.",
            monitor.pending_samples,
        )
        if monitor.last_cycle_seconds is not None:
            yield _gauge(
                "vigil_monitor_last_cycle_seconds",
                "How long the last cycle took.",
                monitor.last_cycle_seconds,
            )
        if monitor.last_cycle_at is not None:
            yield _gauge(
                "vigil_monitor_last_cycle_timestamp_seconds",
                "When the last cycle ran (Unix time).",
                monitor.last_cycle_at.timestamp(),
            )
        failing = GaugeMetricFamily(
            "vigil_task_failing", "1 for a background task in error or stale.", labels=["task"]
        )
        for task in self.vigil.metrics.health.snapshot():
            failing.add_metric([task.name], 1.0 if task.status.failing else 0.0)
        yield failing
        yield _gauge("vigil_last_event_id", "The newest event id seen.", self.vigil.bus.last_id)
        yield _gauge("vigil_stream_clients", "Clients connected to /api/events.", self.live.clients)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


class WebMetrics:
    """The registry one app exposes, with the web side's own counters."""

    def __init__(self, vigil: Vigil, live: LiveStream) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(VigilCollector(vigil, live))
        self.ingested = Counter(
            "vigil_ingested_samples",
            "Samples accepted by POST /api/ingest.",
            registry=self.registry,
        )
        self.sign_in_failures = Counter(
            "vigil_sign_in_failures",
            "Failed or refused sign-ins.",
            registry=self.registry,
        )
