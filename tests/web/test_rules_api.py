"""``/api/alerts/rules``: rules by name, of every kind, through a real Vigil."""

from __future__ import annotations

from typing import Any

import pytest

from vigil.core import EventKind

from .support import LATENCY, Api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

COMPOSITE = {
    "name": "slow_and_failing",
    "kind": "composite",
    "condition": "command_p95_latency >= 500 and error_rate >= 5",
    "severity": "warning",
}
ABSENT = {"name": "heartbeat", "kind": "absent", "metric": "cron_heartbeat", "absent_for": 120}
QUEUE = {"name": "queue_backlog", "metric": "queue_depth", "unit": "jobs", "critical": 500}
ANOMALY = {"name": "odd_latency", "kind": "anomaly", "metric": "gateway_latency", "sensitivity": 3}
FORECAST = {
    "name": "memory_leak",
    "kind": "forecast",
    "metric": "memory_usage",
    "unit": "MB",
    "critical": 480,
    "horizon": 7200,
    "lookback": 3600,
    "min_history": 1800,
}


async def test_a_rule_of_each_kind_is_created_read_and_listed(api: Api) -> None:
    stream = api.vigil.subscribe()
    for body in (QUEUE, COMPOSITE, ABSENT, ANOMALY, FORECAST):
        response = await api.post("/api/alerts/rules", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        assert {key: created[key] for key in body} == body
        assert created["updated_by"] == "admin-bot"
        assert response.headers["location"].endswith(f"/api/alerts/rules/{body['name']}")
        event = await anext(stream)
        assert (event.kind, event.by, event.rule) == (
            EventKind.RULE_CREATED,
            "admin-bot",
            body["name"],
        )
        one = await api.get(f"/api/alerts/rules/{body['name']}")
        assert one.status_code == 200 and one.json() == created
    composite = (await api.get("/api/alerts/rules/slow_and_failing")).json()
    assert (composite["metric"], composite["warning"], composite["breaches_required"]) == (
        None,
        None,
        2,
    )
    listed = (await api.get("/api/alerts/rules")).json()
    names = [rule["name"] for rule in listed]
    assert names == sorted(names)
    assert {"queue_backlog", "slow_and_failing", "heartbeat", LATENCY} <= set(names)
    anomaly = (await api.get("/api/alerts/rules/odd_latency")).json()
    assert (anomaly["min_history"], anomaly["severity"], anomaly["horizon"]) == (
        86400.0,
        "critical",
        None,
    )


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({**COMPOSITE, "condition": "error_rate >= 5 and"}, "condition", "at position"),
        ({**COMPOSITE, "warning": 3}, "warning", "does not apply to a composite rule"),
        ({**QUEUE, "warning": 600}, "warning", "must be below critical"),
        ({**ABSENT, "absent_for": None}, "absent_for", "needs absent_for"),
        ({**QUEUE, "name": "Not A Name"}, "name", "pattern"),
        ({**QUEUE, "kind": "anomaly"}, "critical", "does not apply to an anomaly rule"),
        ({**QUEUE, "kind": "seasonal"}, "kind", ""),
        ({**FORECAST, "horizon": None}, "horizon", "needs horizon"),
        ({**FORECAST, "horizon": -5}, "horizon", ""),
        ({**FORECAST, "sensitivity": 2}, "sensitivity", "does not apply to a forecast rule"),
        ({**ANOMALY, "sensitivity": 100}, "sensitivity", "between 0.5 and 50"),
        ({**ANOMALY, "horizon": 60}, "horizon", "does not apply to an anomaly rule"),
        ({**QUEUE, "breaches_required": 0}, "breaches_required", ""),
        ({**QUEUE, "colour": "red"}, "colour", ""),
        ({key: value for key, value in QUEUE.items() if key != "name"}, "name", ""),
    ],
)
async def test_a_bad_rule_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str, fragment: str
) -> None:
    response = await api.post("/api/alerts/rules", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert fragment in error["message"]
    assert (await api.get(f"/api/alerts/rules/{body.get('name', 'x')}")).status_code == 404


async def test_a_condition_error_gives_its_position(api: Api) -> None:
    text = "error_rate >= five"
    response = await api.post("/api/alerts/rules", json={**COMPOSITE, "condition": text})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "condition"
    assert error["position"] == text.index("five")


async def test_a_taken_name_is_a_409_and_an_unknown_one_a_404(api: Api) -> None:
    taken = await api.post("/api/alerts/rules", json={**QUEUE, "name": LATENCY})
    assert taken.status_code == 409, taken.text
    assert taken.json()["error"]["code"] == "conflict"
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = await api.request(
            method, "/api/alerts/rules/nothing_here", role="admin", json={"critical": 5}
        )
        assert response.status_code == 404, (method, response.text)


async def test_put_replaces_and_patch_changes_only_what_it_is_given(api: Api) -> None:
    await api.post("/api/alerts/rules", json={**QUEUE, "warning": 300, "breaches_required": 4})
    stream = api.vigil.subscribe()
    patched = await api.request(
        "PATCH", "/api/alerts/rules/queue_backlog", role="admin", json={"warning": None}
    )
    assert patched.status_code == 200, patched.text
    rule = patched.json()
    assert (rule["warning"], rule["critical"], rule["breaches_required"]) == (None, 500, 4)
    event = await anext(stream)
    assert event.kind is EventKind.RULE_CHANGED and event.rule == "queue_backlog"
    assert event.data["changes"] == {"warning": [300, None]}

    replaced = await api.put(
        "/api/alerts/rules/queue_backlog", json={"metric": "queue_depth", "critical": 800}
    )
    assert replaced.status_code == 200, replaced.text
    rule = replaced.json()
    assert (rule["critical"], rule["unit"], rule["breaches_required"]) == (800, "", 2)

    to_composite = await api.put("/api/alerts/rules/queue_backlog", json=COMPOSITE)
    assert to_composite.status_code == 422
    assert to_composite.json()["error"]["field"] == "name"  # the body names another rule
    mismatch = await api.request(
        "PATCH", "/api/alerts/rules/queue_backlog", role="admin", json={"name": "other"}
    )
    assert mismatch.status_code == 422


async def test_a_rule_s_history_lists_who_changed_what(api: Api) -> None:
    await api.post("/api/alerts/rules", json={**QUEUE, "warning": 300})
    await api.request(
        "PATCH", "/api/alerts/rules/queue_backlog", role="admin", json={"critical": 900}
    )
    response = await api.get("/api/alerts/rules/queue_backlog/events")
    assert response.status_code == 200, response.text
    history = response.json()
    assert [e["kind"] for e in history] == ["rule.changed", "rule.created"]  # newest first
    assert history[0]["data"]["changes"] == {"critical": [500, 900]}
    assert {e["by"] for e in history} == {"admin-bot"} and {e["rule"] for e in history} == {
        "queue_backlog"
    }
    one = await api.get("/api/alerts/rules/queue_backlog/events", params={"limit": 1})
    assert [e["kind"] for e in one.json()] == ["rule.changed"]
    bad = await api.get("/api/alerts/rules/queue_backlog/events", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "limit"
    missing = await api.get("/api/alerts/rules/nothing_here/events")
    assert missing.status_code == 404


async def test_delete_resolves_the_open_incident_and_keeps_its_history(api: Api) -> None:
    await api.post("/api/alerts/rules", json={**QUEUE, "breaches_required": 1})
    events = await api.cycle({"queue_depth": 900})
    [opened] = [e.incident for e in events if e.incident is not None]
    assert opened.rule == "queue_backlog"
    active = (await api.get("/api/alerts/active")).json()
    assert [(i["rule"], i["instance"]) for i in active] == [("queue_backlog", None)]

    stream = api.vigil.subscribe()
    response = await api.request("DELETE", "/api/alerts/rules/queue_backlog", role="admin")
    assert response.status_code == 204, response.text
    kinds = {(await anext(stream)).kind for _ in range(2)}
    assert kinds == {EventKind.RULE_DELETED, EventKind.INCIDENT_RESOLVED}
    gone = await api.get("/api/alerts/rules/queue_backlog")
    assert gone.status_code == 404
    incident = (await api.get(f"/api/alerts/incidents/{opened.id}")).json()
    assert (incident["status"], incident["resolution"], incident["resolved_by"]) == (
        "resolved",
        "manual",
        "admin-bot",
    )
    assert incident["notes"] == "rule deleted"
    history = (await api.get("/api/alerts/incidents", params={"rule": "queue_backlog"})).json()
    assert [item["id"] for item in history["items"]] == [str(opened.id)]
    other = (await api.get("/api/alerts/incidents", params={"rule": LATENCY})).json()
    assert other["items"] == []


async def test_a_viewer_reads_rules_and_changes_none(api: Api) -> None:
    assert (await api.get("/api/alerts/rules", role="viewer")).status_code == 200
    for method, path in (
        ("POST", "/api/alerts/rules"),
        ("PUT", f"/api/alerts/rules/{LATENCY}"),
        ("PATCH", f"/api/alerts/rules/{LATENCY}"),
        ("DELETE", f"/api/alerts/rules/{LATENCY}"),
    ):
        response = await api.request(method, path, role="viewer", json=QUEUE)
        assert response.status_code == 403, (method, path)
    assert (await api.get(f"/api/alerts/rules/{LATENCY}")).json()["warning"] == 100
