"""The alerts API against a real Vigil: rules, the incident lifecycle, summary and stats."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from vigil.core import EventKind, Severity

from .support import LATENCY, T0, Api, past_incident

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

MEMORY = "memory_usage"


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


# -- rules ------------------------------------------------------------------------------------


async def test_the_rules_are_listed_with_every_field(api: Api) -> None:
    response = await api.get("/api/alerts/config")
    assert response.status_code == 200
    rules = response.json()
    assert [rule["metric"] for rule in rules] == sorted(rule["metric"] for rule in rules)
    assert len(rules) == 10
    [latency] = [rule for rule in rules if rule["metric"] == LATENCY]
    assert latency == {
        "name": LATENCY,
        "kind": "threshold",
        "metric": LATENCY,
        "display_name": "Gateway Latency",
        "description": "Discord gateway heartbeat latency (discord.py Client.latency).",
        "unit": "ms",
        "warning": 100.0,
        "critical": 200.0,
        "direction": "above",
        "recovery": None,
        "aggregate": "max",
        "absent_for": None,
        "condition": None,
        "severity": None,
        "enabled": True,
        "breaches_required": 2,
        "recoveries_required": 3,
        "split_by": "none",
        "no_data": "keep",
        "stale_after": None,
        "group_label": None,
        "sensitivity": None,
        "horizon": None,
        "lookback": None,
        "min_history": None,
        "updated_at": None,
        "updated_by": None,
    }
    one = await api.get(f"/api/alerts/config/{LATENCY}")
    assert one.status_code == 200 and one.json() == latency


async def test_an_unknown_or_malformed_rule_is_404(api: Api) -> None:
    for metric in ("no_such_metric", "Not-A-Metric", "x" * 150):
        response = await api.get(f"/api/alerts/config/{metric}")
        assert response.status_code == 404, metric
        assert response.json()["error"]["code"] == "not_found"
    response = await api.put("/api/alerts/config/no_such_metric", json={"warning": 1})
    assert response.status_code == 404


async def test_a_rule_change_keeps_left_out_fields_and_clears_explicit_nulls(api: Api) -> None:
    stream = api.vigil.subscribe()
    response = await api.put(
        f"/api/alerts/config/{LATENCY}", json={"warning": None, "breaches_required": 4}
    )
    assert response.status_code == 200, response.text
    rule = response.json()
    assert (rule["warning"], rule["critical"], rule["breaches_required"]) == (None, 200.0, 4)
    assert rule["updated_by"] == "admin-bot"
    assert rule["updated_at"] == stamp(0)
    # left out: unchanged, and still so on a second, unrelated change
    response = await api.put(f"/api/alerts/config/{LATENCY}", json={"unit": "milliseconds"})
    assert (response.json()["warning"], response.json()["unit"]) == (None, "milliseconds")
    assert (await api.get(f"/api/alerts/config/{LATENCY}")).json() == response.json()

    event = await anext(stream)
    assert event.kind is EventKind.RULE_CHANGED and event.by == "admin-bot"
    assert event.data["changes"] == {"breaches_required": [2, 4], "warning": [100, None]}
    assert event.rule == LATENCY
    # the evaluator uses the new rule: 150 is no longer a breach
    assert await api.breach(LATENCY, 150, times=4) == []


async def test_an_invalid_rule_change_names_the_field_and_changes_nothing(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"warning": 300}, "warning"),  # above critical for 'above'
        ({"warning": None, "critical": None}, "critical"),  # no threshold left
        ({"display_name": None}, "display_name"),  # only thresholds may be null
        ({"breaches_required": 0}, "breaches_required"),
        ({"breaches_required": 2.5}, "breaches_required"),
        ({"enabled": "yes"}, "enabled"),
        ({"direction": "sideways"}, "direction"),
        ({"recovery": 150}, "recovery"),  # on the unsafe side of the warning threshold
        ({"metric": "other"}, "metric"),  # not editable
        ({"unit": "\x00"}, "unit"),
    ]
    before = (await api.get(f"/api/alerts/config/{LATENCY}")).json()
    for body, field in cases:
        response = await api.put(f"/api/alerts/config/{LATENCY}", json=body)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid", field), body
    response = await api.put(
        f"/api/alerts/config/{LATENCY}",
        content=b'{"warning": Infinity}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "warning"
    assert (await api.get(f"/api/alerts/config/{LATENCY}")).json() == before


# -- the lifecycle ----------------------------------------------------------------------------


async def test_a_breach_shows_in_active_summary_and_one_incident_with_its_exact_shape(
    api: Api,
) -> None:
    [opened] = await api.breach(LATENCY, 150)
    assert opened.incident is not None
    api.clock.advance(15)  # duration counts to now while open
    [incident] = (await api.get("/api/alerts/active")).json()
    assert incident == {
        "id": str(opened.incident.id),
        "rule": LATENCY,
        "metric": LATENCY,
        "instance": None,
        "severity": "warning",
        "status": "active",
        "triggered_at": stamp(60),
        "resolved_at": None,
        "resolution": None,
        "threshold": 100.0,
        "value": 150.0,
        "peak_value": 150.0,
        "last_value": 150.0,
        "message": "Gateway Latency exceeded warning threshold: 150.00 ms >= 100.00 ms",
        "acknowledged_by": None,
        "acknowledged_at": None,
        "notes": None,
        "resolved_by": None,
        "condition": None,
        "values": None,
        "no_data": False,
        "flapping": False,
        "group": str(opened.incident.group),  # a group of one: it opened alone
        "duration_s": 15.0,
    }
    assert opened.incident.group is not None
    assert (await api.get(f"/api/alerts/incidents/{incident['id']}")).json() == incident
    summary = (await api.get("/api/alerts/summary")).json()
    assert summary == {
        "total": 1,
        "active": 1,
        "acknowledged": 0,
        "critical": 0,
        "warning": 1,
        "info": 0,
    }


async def test_active_is_most_severe_first_and_summary_counts_statuses(api: Api) -> None:
    await api.cycle({LATENCY: 150, MEMORY: 500})
    await api.cycle({LATENCY: 150, MEMORY: 500})  # memory critical, latency warning
    active = (await api.get("/api/alerts/active")).json()
    assert [(i["metric"], i["severity"]) for i in active] == [
        (MEMORY, "critical"),
        (LATENCY, "warning"),
    ]
    await api.post(f"/api/alerts/incidents/{active[1]['id']}/acknowledge")
    summary = (await api.get("/api/alerts/summary")).json()
    assert summary == {
        "total": 2,
        "active": 1,
        "acknowledged": 1,
        "critical": 1,
        "warning": 1,
        "info": 0,
    }


async def test_acknowledge_then_resolve_records_who_and_emits_events(api: Api) -> None:
    [opened] = await api.breach(LATENCY, 150)
    assert opened.incident is not None
    ident = opened.incident.id
    stream = api.vigil.subscribe()

    response = await api.post(
        f"/api/alerts/incidents/{ident}/acknowledge", json={"notes": "looking into it"}
    )
    assert response.status_code == 200, response.text
    acked = response.json()
    assert (acked["status"], acked["acknowledged_by"], acked["notes"]) == (
        "acknowledged",
        "admin-bot",
        "looking into it",
    )
    assert acked["acknowledged_at"] == stamp(60)

    api.clock.advance(90)
    response = await api.post(f"/api/alerts/incidents/{ident}/resolve")
    assert response.status_code == 200, response.text
    resolved = response.json()
    assert resolved["status"] == "resolved"
    assert (resolved["resolution"], resolved["resolved_by"]) == ("manual", "admin-bot")
    assert resolved["resolved_at"] == stamp(150)
    assert resolved["duration_s"] == 90.0
    assert resolved["notes"] == "looking into it"  # kept when resolving without notes
    assert (await api.get(f"/api/alerts/incidents/{ident}")).json() == resolved
    assert (await api.get("/api/alerts/active")).json() == []

    kinds = [(await anext(stream)).kind for _ in range(2)]
    assert kinds == [EventKind.INCIDENT_ACKNOWLEDGED, EventKind.INCIDENT_RESOLVED]


async def test_illegal_transitions_are_409_and_change_nothing(api: Api) -> None:
    [opened] = await api.breach(LATENCY, 150)
    assert opened.incident is not None
    ident = opened.incident.id
    assert (await api.post(f"/api/alerts/incidents/{ident}/acknowledge")).status_code == 200
    again = await api.post(f"/api/alerts/incidents/{ident}/acknowledge")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "illegal_transition"
    assert "acknowledged" in again.json()["error"]["message"]
    assert (await api.post(f"/api/alerts/incidents/{ident}/resolve")).status_code == 200
    for action in ("acknowledge", "resolve"):
        response = await api.post(f"/api/alerts/incidents/{ident}/{action}")
        assert response.status_code == 409, action
    assert (await api.get(f"/api/alerts/incidents/{ident}")).json()["status"] == "resolved"


async def test_unknown_and_malformed_incident_ids_are_404(api: Api) -> None:
    for ident in (str(uuid.uuid4()), "not-a-uuid", "1", "%00"):
        for method, path in (
            ("GET", f"/api/alerts/incidents/{ident}"),
            ("POST", f"/api/alerts/incidents/{ident}/acknowledge"),
            ("POST", f"/api/alerts/incidents/{ident}/resolve"),
        ):
            role = "viewer" if method == "GET" else "admin"
            response = await api.client.request(method, path, headers=api.auth(role))
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found"


async def test_notes_are_checked(api: Api) -> None:
    [opened] = await api.breach(LATENCY, 150)
    assert opened.incident is not None
    path = f"/api/alerts/incidents/{opened.incident.id}/acknowledge"
    for body, field in (
        ({"notes": "x" * 2001}, "notes"),
        ({"notes": 5}, "notes"),
        ({"note": "typo"}, "note"),
        ([], "body"),
    ):
        response = await api.post(path, json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["field"] == field, body
    assert (await api.get(f"/api/alerts/incidents/{opened.incident.id}")).json()["status"] == (
        "active"
    )


async def test_acknowledge_all_acknowledges_only_active_ones(api: Api) -> None:
    await api.cycle({LATENCY: 150, MEMORY: 500})
    await api.cycle({LATENCY: 150, MEMORY: 500})
    active = (await api.get("/api/alerts/active")).json()
    await api.post(f"/api/alerts/incidents/{active[0]['id']}/acknowledge", json={"notes": "mine"})
    stream = api.vigil.subscribe()

    response = await api.post("/api/alerts/incidents/acknowledge-all", json={"notes": "all"})
    assert response.status_code == 200, response.text
    [acked] = response.json()
    assert (acked["id"], acked["notes"], acked["status"]) == (
        active[1]["id"],
        "all",
        "acknowledged",
    )
    event = await anext(stream)
    assert (event.kind, event.by) == (EventKind.INCIDENT_ACKNOWLEDGED, "admin-bot")
    # nothing left to acknowledge: an empty list, not an error; no body at all is fine too
    response = await api.post("/api/alerts/incidents/acknowledge-all")
    assert (response.status_code, response.json()) == (200, [])
    statuses = {i["id"]: i["notes"] for i in (await api.get("/api/alerts/active")).json()}
    assert statuses == {active[0]["id"]: "mine", active[1]["id"]: "all"}


async def test_escalation_and_auto_resolution_show_up(api: Api) -> None:
    await api.breach(LATENCY, 150)
    await api.breach(LATENCY, 250)  # escalates the same incident
    [incident] = (await api.get("/api/alerts/active")).json()
    assert (incident["severity"], incident["peak_value"]) == ("critical", 250.0)
    for _ in range(3):
        await api.cycle({LATENCY: 20})
    assert (await api.get("/api/alerts/active")).json() == []
    [recovered] = (await api.get("/api/alerts/auto-recovery")).json()
    assert recovered["id"] == incident["id"]
    assert (recovered["resolution"], recovered["resolved_by"]) == ("auto", None)
    assert recovered["duration_s"] == 150.0


# -- statistics -------------------------------------------------------------------------------


async def test_stats_have_every_day_oldest_first(api: Api) -> None:
    store = api.vigil.store
    await past_incident(store, at=T0 - timedelta(days=2), severity=Severity.CRITICAL)
    await past_incident(store, at=T0 - timedelta(days=2, hours=1))
    await past_incident(store, at=T0 - timedelta(days=9))  # outside a 7-day window
    response = await api.get("/api/alerts/stats", params={"days": 7})
    assert response.status_code == 200
    days = response.json()
    assert [day["day"] for day in days] == [
        (T0 - timedelta(days=n)).date().isoformat() for n in range(6, -1, -1)
    ]
    by_day = {day["day"]: day for day in days}
    assert by_day[(T0 - timedelta(days=2)).date().isoformat()] == {
        "day": (T0 - timedelta(days=2)).date().isoformat(),
        "info": 0,
        "warning": 1,
        "critical": 1,
        "total": 2,
    }
    assert sum(day["total"] for day in days) == 2
    assert len((await api.get("/api/alerts/stats")).json()) == 30  # the default
    assert len((await api.get("/api/alerts/stats", params={"days": 365})).json()) == 365
    for days_param in (0, 366, "week"):
        response = await api.get("/api/alerts/stats", params={"days": days_param})
        assert response.status_code == 422 and response.json()["error"]["field"] == "days"


async def test_auto_recovery_lists_only_automatic_resolutions_newest_first(api: Api) -> None:
    store = api.vigil.store
    first = await past_incident(store, at=T0 - timedelta(hours=3))
    await past_incident(store, at=T0 - timedelta(hours=2), auto=False)
    second = await past_incident(store, at=T0 - timedelta(hours=1))
    await past_incident(store, at=T0 - timedelta(minutes=30), resolved_after=None)
    found = (await api.get("/api/alerts/auto-recovery")).json()
    assert [i["id"] for i in found] == [str(second.id), str(first.id)]
    limited = (await api.get("/api/alerts/auto-recovery", params={"limit": 1})).json()
    assert [i["id"] for i in limited] == [str(second.id)]
    assert (await api.get("/api/alerts/auto-recovery", params={"limit": 0})).status_code == 422
