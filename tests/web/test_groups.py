"""The incident groups API against a real Vigil: rules breaching together are listed as one
group with its members, incidents name their group, and an admin acknowledges a group."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .support import LATENCY, Api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

ERRORS = "error_rate"
COMMANDS = "command_p95_latency"


async def breach_together(api: Api) -> list[str]:
    """Three rules breach in the same cycles: three incidents open together."""
    events = []
    for _ in range(2):
        events += await api.cycle({LATENCY: 250.0, ERRORS: 7.0, COMMANDS: 350.0})
    return [str(e.incident.id) for e in events if e.incident is not None]


async def test_incidents_opening_together_are_listed_as_one_group(api: Api) -> None:
    ids = await breach_together(api)
    assert len(ids) == 3
    response = await api.get("/api/alerts/groups")
    assert response.status_code == 200
    [group] = response.json()
    assert (group["size"], group["open"], group["status"], group["severity"]) == (
        3,
        3,
        "active",
        "critical",
    )
    assert sorted(m["id"] for m in group["members"]) == sorted(ids)
    assert group["headline"].startswith("3 incidents: ")
    assert group["resolved_at"] is None
    # Each incident names its group, in the active list and on its own.
    active = (await api.get("/api/alerts/active")).json()
    assert {i["group"] for i in active} == {group["id"]}
    one = (await api.get(f"/api/alerts/incidents/{ids[0]}")).json()
    assert one["group"] == group["id"]
    assert (await api.get(f"/api/alerts/groups/{group['id']}")).json() == group


async def test_filters_by_status_and_size(api: Api) -> None:
    await breach_together(api)
    assert len((await api.get("/api/alerts/groups?status=open&min_size=2")).json()) == 1
    assert (await api.get("/api/alerts/groups?status=resolved")).json() == []
    assert (await api.get("/api/alerts/groups?min_size=4")).json() == []


async def test_an_admin_acknowledges_a_group_and_its_members(api: Api) -> None:
    ids = await breach_together(api)
    [group] = (await api.get("/api/alerts/groups")).json()
    assert [g["id"] for g in (await api.get("/api/alerts/groups?status=active")).json()] == [
        group["id"]
    ]
    assert (await api.get("/api/alerts/groups?status=acknowledged")).json() == []
    path = f"/api/alerts/groups/{group['id']}/acknowledge"
    assert (await api.post(path, role="viewer", json={})).status_code == 403
    response = await api.post(path, json={"notes": "on it"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "acknowledged"
    for ident in ids:
        incident = (await api.get(f"/api/alerts/incidents/{ident}")).json()
        assert (incident["status"], incident["acknowledged_by"], incident["notes"]) == (
            "acknowledged",
            "admin-bot",
            "on it",
        )
    again = await api.post(path, json={})
    assert again.status_code == 409
    listed = (await api.get("/api/alerts/groups?status=acknowledged")).json()
    assert [(g["id"], g["status"]) for g in listed] == [(group["id"], "acknowledged")]
    assert (await api.get("/api/alerts/groups?status=active")).json() == []


async def test_bad_input_names_the_field_and_an_unknown_group_is_404(api: Api) -> None:
    response = await api.get("/api/alerts/groups?status=sleeping")
    assert response.status_code == 422
    assert "status" in response.text
    assert (await api.get("/api/alerts/groups?limit=0")).status_code == 422
    unknown = uuid.uuid4()
    assert (await api.get(f"/api/alerts/groups/{unknown}")).status_code == 404
    assert (await api.post(f"/api/alerts/groups/{unknown}/acknowledge", json={})).status_code == 404
    notes = {"notes": "x" * 5000}
    assert (
        await api.post(f"/api/alerts/groups/{unknown}/acknowledge", json=notes)
    ).status_code == 422


async def test_rules_declared_related_through_the_api_join_one_group_hours_apart(
    api: Api,
) -> None:
    for rule in (LATENCY, ERRORS):
        response = await api.request(
            "PATCH", f"/api/alerts/rules/{rule}", role="admin", json={"group_label": "discord"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["group_label"] == "discord"
    bad = await api.request(
        "PATCH", f"/api/alerts/rules/{LATENCY}", role="admin", json={"group_label": "Not Slug"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "group_label"
    await api.breach(LATENCY, 250)
    api.clock.advance(3 * 3600)  # far outside any window
    await api.breach(ERRORS, 7)
    [group] = (await api.get("/api/alerts/groups")).json()
    assert (group["label"], group["size"]) == ("discord", 2)


async def test_the_list_is_read_once_between_changes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the read cache, as the Alerts page reads it on every view; a cycle (new
    values, no event) and an action (an event) show up in the next read all the same."""
    await breach_together(api)
    store = api.vigil.store
    reads: list[dict[str, object]] = []
    real = store.list_groups

    async def counted(**kwargs: Any) -> Any:
        reads.append(kwargs)
        return await real(**kwargs)

    monkeypatch.setattr(store, "list_groups", counted)
    first = (await api.get("/api/alerts/groups")).json()
    assert (await api.get("/api/alerts/groups")).json() == first
    assert len(reads) == 1
    await api.cycle({LATENCY: 300.0, ERRORS: 7.0, COMMANDS: 350.0})
    [group] = (await api.get("/api/alerts/groups")).json()
    assert [m["last_value"] for m in group["members"] if m["metric"] == LATENCY] == [300.0]
    assert len(reads) == 2
    response = await api.post(f"/api/alerts/groups/{group['id']}/acknowledge", json={})
    assert response.status_code == 200, response.text
    [group] = (await api.get("/api/alerts/groups")).json()
    assert group["status"] == "acknowledged"
    assert len(reads) == 3
