"""``POST /api/alerts/rules/preview``: a rule replayed over the stored samples before it is
saved, beside the saved rule of that name, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from vigil.core import Sample

from ..runtime.support import T0
from .support import LATENCY, Api
from .test_pages import html, sign_in
from .test_rules_page import add_form

PREVIEW = "/api/alerts/rules/preview"
# gateway_latency (saved, a default rule): warning 100, critical 200, 2 breaches, 3 recoveries.
SHAPE = [50.0] * 5 + [150.0] * 3 + [250.0] * 3 + [50.0] * 5
START = T0 - timedelta(hours=1)  # the test Vigil's clock stands at T0


def at(index: int) -> str:
    return (START + timedelta(seconds=30 * index)).isoformat().replace("+00:00", "Z")


async def store_shape(api: Api) -> None:
    await api.vigil.store.add_samples(
        [
            Sample("bot", LATENCY, START + timedelta(seconds=30 * i), value)
            for i, value in enumerate(SHAPE)
        ]
    )


async def test_a_changed_rule_beside_the_saved_one(api: Api) -> None:
    await store_shape(api)
    body = {"name": LATENCY, "metric": LATENCY, "warning": 200, "critical": 240, "since": "2h"}
    response = await api.post(PREVIEW, json=body, role="viewer")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["samples"] == len(SHAPE)
    proposed, saved = result["proposed"], result["saved"]
    [incident] = proposed["incidents"]
    assert incident["severity"] == "critical"
    assert (incident["opened_at"], incident["escalated_at"]) == (at(9), None)
    assert incident["resolved_at"] == at(13)  # three readings of 50 from index 11
    assert (incident["value"], incident["peak_value"], incident["threshold"]) == (250, 250, 240)
    assert incident["duration_s"] == 4 * 30
    assert (proposed["opened"], proposed["escalated"], proposed["resolved"]) == (1, 0, 1)
    assert proposed["notifications"] == 2
    assert proposed["cycles"] == len(SHAPE)
    [before] = saved["incidents"]
    assert (before["opened_at"], before["escalated_at"], before["resolved_at"]) == (
        at(6),
        at(9),
        at(13),
    )
    assert saved["notifications"] == 3
    assert saved["seconds_in_incident"] == 7 * 30
    # nothing was saved
    rule = (await api.get(f"/api/alerts/rules/{LATENCY}")).json()
    assert (rule["warning"], rule["critical"]) == (100, 200)


async def test_a_new_rule_has_no_saved_side(api: Api) -> None:
    await store_shape(api)
    body = {"name": "latency_watch", "metric": LATENCY, "critical": 100, "breaches_required": 1}
    response = await api.post(PREVIEW, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["saved"] is None
    [incident] = result["proposed"]["incidents"]
    assert (incident["opened_at"], incident["resolved_at"]) == (at(5), at(13))
    assert (await api.get("/api/alerts/rules/latency_watch")).status_code == 404


async def test_a_period_without_samples_replays_nothing(api: Api) -> None:
    await store_shape(api)
    body = {"name": LATENCY, "metric": LATENCY, "critical": 100, "since": "10m"}
    result = (await api.post(PREVIEW, json=body)).json()
    assert result["samples"] == 0
    assert result["proposed"] == {
        "incidents": [],
        "opened": 0,
        "escalated": 0,
        "resolved": 0,
        "notifications": 0,
        "grouped_notifications": 0,
        "group_window": api.vigil.settings.effective_group_window,
        "groups": 0,
        "seconds_in_incident": 0,
        "cycles": 0,
        "band": None,  # a threshold rule has none
    }


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"warning": 600}, "warning", "must be below critical"),
        ({"breaches_required": 0}, "breaches_required", ""),
        ({"kind": "seasonal"}, "kind", ""),
        ({"name": "Not A Name"}, "name", "pattern"),
        ({"colour": "red"}, "colour", ""),
        ({"since": "7y"}, "since", "neither a period"),
        ({"since": "400d"}, "since", "more than 366 days"),
        ({"since": "2030-01-01T00:00:00Z"}, "since", "not in the past"),
        ({"since": ""}, "since", ""),
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(
    api: Api, changes: dict[str, Any], field: str, fragment: str
) -> None:
    body = {"name": "queue_backlog", "metric": "queue_depth", "critical": 500, **changes}
    response = await api.post(PREVIEW, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert fragment in error["message"]


async def test_a_viewer_may_preview_and_a_stranger_may_not(api: Api) -> None:
    body = {"name": LATENCY, "metric": LATENCY, "critical": 100}
    assert (await api.post(PREVIEW, json=body, role="viewer")).status_code == 200
    assert (await api.post(PREVIEW, json=body, role="ingest")).status_code == 403
    assert (await api.client.post(PREVIEW, json=body)).status_code == 401


async def test_the_route_is_in_the_openapi_document(api: Api) -> None:
    document = (await api.get("/api/openapi.json")).json()
    operation = document["paths"][PREVIEW]["post"]
    assert set(operation["responses"]) >= {"200", "401", "403", "422", "503"}
    assert "since" in document["components"]["schemas"]["RulePreviewIn"]["properties"]


async def test_the_preview_path_is_the_preview_route_alone(api: Api) -> None:
    response = await api.get(PREVIEW)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    body = {"name": "preview", "metric": "queue_depth", "critical": 500}
    created = await api.post("/api/alerts/rules", json=body)
    assert created.status_code == 422
    assert created.json()["error"]["field"] == "name"
    assert "reserved" in created.json()["error"]["message"]
    document = (await api.get("/api/openapi.json")).json()
    assert "/api/alerts/rules/{name}" in document["paths"]


async def test_the_preview_counts_notifications_with_the_servers_grouping(api: Api) -> None:
    """Two instances breach together: a rule split per instance opens two incidents, told in
    one grouped message, and resolves them in another; the API and the edit form say so."""
    await api.vigil.store.add_samples(
        [
            Sample(instance, LATENCY, START + timedelta(seconds=30 * i), value)
            for i, value in enumerate(SHAPE)
            for instance in ("bot", "shard-1")
        ]
    )
    window = api.vigil.settings.effective_group_window
    assert window > 0
    body = {"name": LATENCY, "metric": LATENCY, "warning": 200, "critical": 240}
    split = {**body, "split_by": "instance", "since": "2h"}
    result = (await api.post(PREVIEW, json=split, role="viewer")).json()
    proposed, saved = result["proposed"], result["saved"]
    assert proposed["opened"] == 2
    assert (proposed["notifications"], proposed["grouped_notifications"]) == (4, 2)
    assert (proposed["group_window"], proposed["groups"]) == (window, 1)
    # The saved rule (not split): opened, escalated, resolved; nothing to group.
    assert (saved["notifications"], saved["grouped_notifications"], saved["groups"]) == (3, 3, 0)

    csrf = await sign_in(api)
    fields = {
        **add_form(csrf, metric=LATENCY, warning="200", critical="240", split_by="instance"),
        "next": "/rules",
        "preview_since": "24h",
    }
    del fields["name"]
    response = await api.client.post(f"/rules/{LATENCY}/preview", data=fields)
    assert response.status_code == 200, response.text[:500]
    row = html(response).find(id="preview-grouped")
    assert row.find("th").text == "Notifications with incident grouping"
    assert [cell.text for cell in row.find_all("td")] == ["2", "3"]
