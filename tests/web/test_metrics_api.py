"""Current values and history, push ingestion, health and the Prometheus exposition."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.web import create_app

from .support import LATENCY, T0, Api, running_api

CUSTOM = "queue.depth"


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


# -- current values and history -----------------------------------------------------------------


async def test_current_values_carry_their_rule_and_level(api: Api) -> None:
    await api.cycle({LATENCY: 150, "memory_usage": 10})
    response = await api.get("/api/metrics")
    assert response.status_code == 200
    values = {item["metric"]: item for item in response.json()}
    latency = values[LATENCY]
    assert {k: v for k, v in latency.items() if k != "rule"} == {
        "metric": LATENCY,
        "display_name": "Gateway Latency",
        "unit": "ms",
        "value": 150.0,
        "level": "warning",
        "at": iso(30),
        "sampled_at": iso(30),
        "stale": False,
    }
    assert latency["rule"]["critical"] == 200.0
    assert (values["memory_usage"]["value"], values["memory_usage"]["level"]) == (10.0, "normal")
    # a rule without data this cycle is listed, with no value
    assert (values["error_rate"]["value"], values["error_rate"]["level"]) == (None, None)
    assert list(values) == sorted(values)


async def test_history_is_bucketed_over_the_range(api: Api) -> None:
    for value in (10, 20, 30, 40):
        await api.cycle({LATENCY: value})
    await api.vigil.monitor.flush()  # the monitor writes its own samples in batches
    params = {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=2)).isoformat()}
    response = await api.get(f"/api/metrics/{LATENCY}/history", params={**params, "max_points": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["metric"], body["start"], body["end"], body["max_points"]) == (
        LATENCY,
        iso(0),
        iso(120),
        2,
    )
    # samples at 30, 60, 90 s fall in [0, 60) and [60, 120); the one at 120 s is past the end
    assert body["points"] == [
        {"time": iso(0), "mean": 10.0, "min": 10.0, "max": 10.0, "count": 1},
        {"time": iso(60), "mean": 25.0, "min": 20.0, "max": 30.0, "count": 2},
    ]
    api.clock.advance(1)  # the range ends before now: the newest sample is just inside
    default = (await api.get(f"/api/metrics/{LATENCY}/history")).json()
    assert default["end"] == iso(121) and default["start"] == iso(121 - 3600)
    assert sum(point["count"] for point in default["points"]) == 4
    unknown = await api.get("/api/metrics/nothing_here/history")
    assert (unknown.status_code, unknown.json()["points"]) == (200, [])


async def test_history_rejects_bad_ranges_by_name(api: Api) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        (LATENCY, {"start": iso(60), "end": iso(0)}, "end"),
        (LATENCY, {"max_points": 0}, "max_points"),
        (LATENCY, {"max_points": 2001}, "max_points"),
        (LATENCY, {"end": "2026-11-27T10:00:00"}, "end"),
        (LATENCY, {"instance": "a b"}, "instance"),
        ("Bad-Metric", {}, "metric"),
    ]
    for metric, params, field in cases:
        response = await api.get(f"/api/metrics/{metric}/history", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["field"] == field


# -- ingestion ----------------------------------------------------------------------------------


async def ingest(api: Api, body: Any, *, role: str = "ingest") -> httpx.Response:
    content = json.dumps(body, allow_nan=True).encode()
    return await api.post(
        "/api/ingest", role=role, content=content, headers={"Content-Type": "application/json"}
    )


async def test_pushed_samples_are_stored_and_evaluated(api: Api) -> None:
    body = {
        "instance": "shard-0",
        "samples": [
            {"metric": LATENCY, "value": 250, "time": iso(-5)},
            {"metric": CUSTOM, "value": 7.5},  # time: now
        ],
    }
    response = await ingest(api, body)
    assert (response.status_code, response.json()) == (200, {"accepted": 2})
    # this instance reads nothing itself: the pushed 250 is the rule's value this cycle
    await api.cycle({})
    values = {item["metric"]: item for item in (await api.get("/api/metrics")).json()}
    assert (values[LATENCY]["value"], values[LATENCY]["level"]) == (250.0, "critical")
    assert (values[CUSTOM]["value"], values[CUSTOM]["rule"]) == (7.5, None)
    assert values[CUSTOM]["display_name"] == CUSTOM
    await ingest(api, {"instance": "shard-0", "samples": [{"metric": LATENCY, "value": 260}]})
    await api.cycle({})
    [incident] = (await api.get("/api/alerts/active")).json()
    assert (incident["metric"], incident["severity"], incident["value"]) == (
        LATENCY,
        "critical",
        260.0,
    )
    history = await api.get(
        f"/api/metrics/{CUSTOM}/history", params={"instance": "shard-0", "max_points": 1}
    )
    [point] = history.json()["points"]
    assert (point["count"], point["mean"]) == (1, 7.5)


async def test_one_invalid_sample_rejects_the_whole_batch_naming_its_index(api: Api) -> None:
    good = {"metric": LATENCY, "value": 1.0}

    def batch(*samples: Any, instance: str = "s") -> dict[str, Any]:
        return {"instance": instance, "samples": list(samples)}

    cases: list[tuple[Any, str]] = [
        (batch(good, good, {"metric": LATENCY, "value": "x"}), "samples[2].value"),
        (batch(good, {"metric": LATENCY, "value": float("nan")}), "samples[1].value"),
        (batch(good, {"metric": LATENCY, "value": float("inf")}), "samples[1].value"),
        (batch(good, {"metric": LATENCY, "value": True}), "samples[1].value"),
        (batch({"metric": "Bad Name", "value": 1}), "samples[0].metric"),
        (batch(good, {"value": 1}), "samples[1].metric"),
        (batch({**good, "time": "2026-11-27T10:00:00"}), "samples[0].time"),
        (batch({**good, "time": iso(301)}), "samples[0].time"),  # too far ahead
        (batch({**good, "extra": 1}), "samples[0].extra"),
        (batch(*[good] * 10_001), "samples"),
        (batch(good, instance="shard 0"), "instance"),
        (batch(good, instance=""), "instance"),
        (batch(good, instance="x" * 101), "instance"),
        ({"samples": [good]}, "instance"),
        ([good], "body"),
    ]
    for body, field in cases:
        response = await ingest(api, body)
        assert response.status_code == 422, (field, response.text)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid", field)
        assert field in error["message"] or field == "body"
    await api.cycle({})
    values = {item["metric"]: item for item in (await api.get("/api/metrics")).json()}
    assert values[LATENCY]["value"] is None  # nothing of any rejected batch was stored


async def test_a_full_batch_is_accepted_and_only_ingest_tokens_may_push(api: Api) -> None:
    batch = {"instance": "bulk", "samples": [{"metric": CUSTOM, "value": n} for n in range(10_000)]}
    response = await ingest(api, batch)
    assert (response.status_code, response.json()) == (200, {"accepted": 10_000})
    for role in ("viewer", "admin"):
        assert (await ingest(api, batch, role=role)).status_code == 403
    anonymous = await api.client.post("/api/ingest", json=batch)
    assert anonymous.status_code == 401


# -- health ---------------------------------------------------------------------------------------


async def test_health_is_public_and_detailed_for_viewers(api: Api) -> None:
    anonymous = await api.client.get("/api/health")
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "ok", "details": None})
    for headers in (api.auth("ingest"), {"Authorization": "Bearer vgl_not-a-real-token-at-all"}):
        response = await api.client.get("/api/health", headers=headers)
        assert (response.status_code, response.json()["details"]) == (200, None)
    details = (await api.get("/api/health")).json()["details"]
    assert details["instance"] == "test" and details["leader"] is True
    assert details["cycles"] >= 1 and details["database_ok"] is True
    assert details["last_event_id"] == api.vigil.bus.last_id
    assert "vigil.monitor" in [task["name"] for task in details["tasks"]]

    api.vigil.metrics.health.report_error("mailer", RuntimeError("smtp down"))
    degraded = (await api.get("/api/health")).json()
    assert degraded["status"] == "degraded"
    [mailer] = [task for task in degraded["details"]["tasks"] if task["name"] == "mailer"]
    assert (mailer["status"], mailer["last_error"]) == ("error", "RuntimeError: smtp down")


async def test_a_stopped_vigil_answers_503(sqlite_url: str) -> None:
    app = create_app(Vigil(Settings(database_url=sqlite_url), process_metrics=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_running"


# -- Prometheus ---------------------------------------------------------------------------------


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_exposition_has_values_incidents_and_counters(api: Api) -> None:
    await api.breach(LATENCY, 150)
    await ingest(api, {"instance": "s", "samples": [{"metric": CUSTOM, "value": 3}]})
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples_of(response.text)
    assert found[("vigil_metric_value", (("metric", LATENCY),))] == 150.0
    assert found[("vigil_metric_level", (("metric", LATENCY),))] == 1.0
    threshold = (("level", "critical"), ("metric", LATENCY), ("rule", LATENCY))
    assert found[("vigil_rule_threshold", threshold)] == 200
    assert found[("vigil_open_incidents", (("severity", "warning"),))] == 1.0
    assert found[("vigil_open_incidents", (("severity", "critical"),))] == 0.0
    assert found[("vigil_open_incidents_by_status", (("status", "active"),))] == 1.0
    assert found[("vigil_monitor_cycles_total", ())] == api.vigil.monitor.status().cycles
    assert found[("vigil_monitor_cycles_late_total", ())] == 0
    assert found[("vigil_monitor_leader", ())] == 1.0
    assert found[("vigil_ingested_samples_total", ())] == 1.0
    assert found[("vigil_last_event_id", ())] == api.vigil.bus.last_id
    # the app has a registry of its own: nothing leaks into the process-wide default one
    assert REGISTRY.get_sample_value("vigil_ingested_samples_total") is None


async def test_metrics_needs_a_reading_role(api: Api) -> None:
    assert (await api.client.get("/metrics")).status_code == 401
    assert (await api.get("/metrics", role="ingest")).status_code == 403
    assert (await api.get("/metrics", role="admin")).status_code == 200


async def test_two_apps_over_one_vigil_do_not_collide(api: Api) -> None:
    second = create_app(api.vigil)
    transport = httpx.ASGITransport(app=second)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/metrics", headers=api.auth("viewer"))
    assert response.status_code == 200
    assert ("vigil_ingested_samples_total", ()) in samples_of(response.text)


async def test_an_oversized_body_is_refused_before_it_is_read(api: Api) -> None:
    huge = b'{"instance": "s", "samples": [' + b" " * (9 * 1024 * 1024) + b"]}"
    response = await api.post(
        "/api/ingest", role="ingest", content=huge, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_an_oversized_body_without_a_length_is_cut_off_too(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"instance": "s", "samples": ['
        for _ in range(10):
            yield b" " * (1024 * 1024)
        yield b"]}"

    response = await api.post(
        "/api/ingest", role="ingest", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_a_rule_named_apart_from_its_metric_is_that_metric_s_judge(api: Api) -> None:
    """Rules are keyed by name, values by metric: ``queue_backlog`` watching ``queue.depth``
    gives that metric its name and level, and no metric called ``queue_backlog`` appears."""
    rule = {"name": "queue_backlog", "metric": CUSTOM, "unit": "jobs", "critical": 100}
    assert (await api.post("/api/alerts/rules", json=rule)).status_code == 201
    await ingest(api, {"instance": "s", "samples": [{"metric": CUSTOM, "value": 150}]})
    await api.cycle({})
    values = {item["metric"]: item for item in (await api.get("/api/metrics")).json()}
    assert "queue_backlog" not in values
    queue = values[CUSTOM]
    assert (queue["display_name"], queue["unit"], queue["level"]) == (
        "Queue Backlog",
        "jobs",
        "critical",
    )
    assert queue["rule"]["name"] == "queue_backlog"
    found = samples_of((await api.get("/metrics")).text)
    labels = (("level", "critical"), ("metric", CUSTOM), ("rule", "queue_backlog"))
    assert found[("vigil_rule_threshold", labels)] == 100


async def test_a_rule_exports_only_the_thresholds_it_has(api: Api) -> None:
    """A warning-only rule exports its warning threshold, a composite rule (thresholds in its
    condition) none; both say whether they are enabled."""
    warning_only = {"name": "queue_warning", "metric": CUSTOM, "warning": 50}
    composite = {"name": "slow_and_failing", "kind": "composite", "condition": "error_rate >= 5"}
    for rule in (warning_only, composite):
        assert (await api.post("/api/alerts/rules", json=rule)).status_code == 201, rule
    found = samples_of((await api.get("/metrics")).text)
    thresholds = {labels for name, labels in found if name == "vigil_rule_threshold"}
    warning = (("level", "warning"), ("metric", CUSTOM), ("rule", "queue_warning"))
    assert found[("vigil_rule_threshold", warning)] == 50
    assert (("level", "critical"), ("metric", CUSTOM), ("rule", "queue_warning")) not in thresholds
    assert not [labels for labels in thresholds if ("rule", "slow_and_failing") in labels]
    enabled = (("metric", ""), ("rule", "slow_and_failing"))
    assert found[("vigil_rule_enabled", enabled)] == 1.0


async def test_a_stale_value_is_not_exported_as_current(api: Api) -> None:
    await api.cycle({LATENCY: 150})
    found = samples_of((await api.get("/metrics")).text)
    assert found[("vigil_metric_value", (("metric", LATENCY),))] == 150.0
    api.clock.advance(3 * api.vigil.settings.interval)  # the source falls silent
    await api.cycle({})
    [latency] = [m for m in (await api.get("/api/metrics")).json() if m["metric"] == LATENCY]
    assert (latency["value"], latency["stale"], latency["level"]) == (150.0, True, None)
    assert latency["sampled_at"] == iso(30)
    found = samples_of((await api.get("/metrics")).text)
    assert ("vigil_metric_value", (("metric", LATENCY),)) not in found
    assert ("vigil_metric_level", (("metric", LATENCY),)) not in found


async def test_health_tells_of_a_split_rule_refusing_series(migrated_url: str) -> None:
    """VIGIL_MAX_SERIES_PER_RULE: the instances beyond it are refused, and health says so."""
    by_shard = {
        "name": "by_shard",
        "metric": "shard_lag",
        "critical": 100,
        "split_by": "instance",
        "breaches_required": 1,
    }
    async with running_api(migrated_url, settings_changes={"max_series_per_rule": 2}) as api:
        assert (await api.post("/api/alerts/rules", json=by_shard)).status_code == 201
        samples = [{"metric": "shard_lag", "value": 500, "instance": f"s{i}"} for i in range(4)]
        for sample in samples:
            answer = await ingest(api, {"instance": sample.pop("instance"), "samples": [sample]})
            assert answer.status_code == 200, answer.text
        await api.cycle({})
        details = (await api.get("/api/health")).json()["details"]
        assert details["series_overflow"] == {"by_shard": 2}
