"""The workload of bench_peer.py and its translation into Prometheus and Alertmanager
configuration (written as JSON, which their YAML readers accept, so no YAML library).

The ten rules are DESIGN §2's, checked at run time against what the Vigil under test serves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

INTERVAL = 1.0  # seconds: Vigil's VIGIL_INTERVAL, Prometheus's scrape and evaluation interval
BREACHES_REQUIRED = 2  # Vigil's default: the incident opens on the 2nd breaching reading
RECOVERIES_REQUIRED = 3  # Vigil's default: it resolves on the 3rd normal reading


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    warning: float | None
    critical: float
    normal: float  # the value both systems see at rest


# DESIGN §2: every rule is "above" (higher is worse), level crossed at >=.
WORKLOAD: tuple[Threshold, ...] = (
    Threshold("gateway_latency", 100, 200, 42.0),
    Threshold("command_p95_latency", 300, 500, 120.0),
    Threshold("error_rate", 1, 5, 0.2),
    Threshold("memory_usage", 400, 480, 150.0),
    Threshold("api_rate_limit_usage", 85, 95, 30.0),
    Threshold("api_rate_limit_hits", 1, 10, 0.0),
    Threshold("database_query_time", 50, 100, 4.0),
    Threshold("event_loop_lag", 100, 500, 2.0),
    Threshold("bot_disconnected", None, 1, 0.0),
    Threshold("service_failure", None, 1, 0.0),
)
NORMAL = {t.metric: t.normal for t in WORKLOAD}
PROBE = "gateway_latency"  # the metric the detection runs break and repair
BAD = 250.0  # past its critical threshold: a critical incident / the _critical alert
GOOD = NORMAL[PROBE]

# The 10,000-rule cycle: every 50th series breaching its warning threshold, as in
# bench_monitor.py ("mostly quiet, a few rules breaching").
BIG_WARNING = 100.0
BIG_CRITICAL = 200.0


def big_values(count: int) -> list[float]:
    return [150.0 if i % 50 == 0 else 20.0 for i in range(count)]


def seconds(value: float) -> str:
    return f"{round(value * 1000)}ms"


# Vigil opens on the BREACHES_REQUIRED-th breaching reading: Prometheus's `for` of one interval
# less fires on the same evaluation (pending at the 1st, firing at the 2nd). Vigil resolves on
# the RECOVERIES_REQUIRED-th normal reading: `keep_firing_for` of two intervals less resolves
# on the 3rd normal evaluation too.
FOR = seconds((BREACHES_REQUIRED - 1) * INTERVAL)
KEEP_FIRING_FOR = seconds((RECOVERIES_REQUIRED - 1) * INTERVAL)


def _alert(name: str, expr: str, severity: str) -> dict[str, object]:
    return {
        "alert": name,
        "expr": expr,
        "for": FOR,
        "keep_firing_for": KEEP_FIRING_FOR,
        "labels": {"severity": severity},
    }


def default_rules() -> str:
    """The ten rules as one group: a warning alert while warning <= value < critical, a
    critical alert while value >= critical (one Vigil incident covers both levels)."""
    rules = []
    for t in WORKLOAD:
        if t.warning is not None:
            expr = f"{t.metric} >= {t.warning:g} < {t.critical:g}"
            rules.append(_alert(f"{t.metric}_warning", expr, "warning"))
        rules.append(_alert(f"{t.metric}_critical", f"{t.metric} >= {t.critical:g}", "critical"))
    group = {"name": "vigil_defaults", "interval": seconds(INTERVAL), "rules": rules}
    return json.dumps({"groups": [group]}, indent=1)


BIG_GROUP = "ten_thousand"


def big_rules(metric: str) -> str:
    """The same two thresholds over every series of ``metric``, in one group."""
    rules = [
        _alert("big_warning", f"{metric} >= {BIG_WARNING:g} < {BIG_CRITICAL:g}", "warning"),
        _alert("big_critical", f"{metric} >= {BIG_CRITICAL:g}", "critical"),
    ]
    group = {"name": BIG_GROUP, "interval": seconds(INTERVAL), "rules": rules}
    return json.dumps({"groups": [group]}, indent=1)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    port: int
    path: str
    interval: float


def prometheus_config(*, jobs: Sequence[Job], rule_file: str | None, alertmanager: int) -> str:
    config: dict[str, object] = {
        "global": {
            "scrape_interval": seconds(INTERVAL),
            "scrape_timeout": seconds(INTERVAL),
            "evaluation_interval": seconds(INTERVAL),
        },
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": job.name,
                "metrics_path": job.path,
                "scrape_interval": seconds(job.interval),
                "scrape_timeout": seconds(job.interval),
                "static_configs": [{"targets": [f"127.0.0.1:{job.port}"]}],
            }
            for job in jobs
        ],
    }
    if rule_file is not None:
        config["rule_files"] = [rule_file]
    return json.dumps(config, indent=1)


def alertmanager_config(*, receiver_url: str, group_interval: float) -> str:
    """One webhook receiver; every alert its own group (``...``), sent at once (group_wait
    0) and its resolution within ``group_interval`` (Alertmanager refuses 0)."""
    route = {
        "receiver": "bench",
        "group_by": ["..."],
        "group_wait": "0s",
        "group_interval": seconds(group_interval),
        "repeat_interval": "1h",
    }
    receiver = {
        "name": "bench",
        "webhook_configs": [{"url": receiver_url, "send_resolved": True}],
    }
    return json.dumps({"route": route, "receivers": [receiver]}, indent=1)
