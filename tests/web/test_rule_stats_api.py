"""``GET /api/alerts/rules/{name}/stats`` and ``GET /api/alerts/rules/stats``: each rule's
noise, through a real Vigil, as people acknowledge and resolve its incidents."""

from __future__ import annotations

from datetime import datetime

import pytest

from .support import LATENCY, Api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only


async def test_a_rules_figures_follow_its_incident_through_acknowledgement_and_resolution(
    api: Api,
) -> None:
    [opened] = [e for e in await api.breach(LATENCY, 250) if e.incident is not None]
    assert opened.incident is not None
    incident = opened.incident.id
    triggered_at = opened.incident.triggered_at
    api.clock.advance(60)
    acknowledged = await api.post(f"/api/alerts/incidents/{incident}/acknowledge", json={})
    assert acknowledged.status_code == 200, acknowledged.text
    api.clock.advance(120)

    response = await api.get(f"/api/alerts/rules/{LATENCY}/stats", params={"days": 7})
    assert response.status_code == 200, response.text
    open_now = response.json()
    waited = (api.clock.now - triggered_at).total_seconds()
    assert open_now["incidents"] == 1 and open_now["open_incidents"] == 1
    assert open_now["seconds_in_incident"] == pytest.approx(waited)  # open: counted to now
    assert open_now["resolved"] == 0 and open_now["mean_seconds_to_resolve"] is None

    resolved = await api.post(f"/api/alerts/incidents/{incident}/resolve", json={})
    assert resolved.status_code == 200, resolved.text
    api.clock.advance(3600)  # a resolved incident's time stops at its resolution
    response = await api.get(f"/api/alerts/rules/{LATENCY}/stats", params={"days": 7})
    figures = response.json()
    acknowledged_at = datetime.fromisoformat(acknowledged.json()["acknowledged_at"])
    assert figures == {
        "rule": LATENCY,
        "display_name": figures["display_name"],
        "days": 7,
        "first_day": figures["first_day"],
        "incidents": 1,
        "incidents_per_day": pytest.approx(1 / 7),
        "open_incidents": 0,
        "seconds_in_incident": pytest.approx(waited),
        "acknowledged": 1,
        "mean_seconds_to_acknowledge": pytest.approx(
            (acknowledged_at - triggered_at).total_seconds()
        ),
        "resolved": 1,
        "resolved_auto": 0,
        "resolved_manual": 1,
        "mean_seconds_to_resolve": pytest.approx(waited),
        "auto_resolved_share": 0.0,
        "flaps": 0,
        "notifications_sent": 0,
    }
    assert figures["display_name"] == api.vigil.view.rules[LATENCY].display_name

    # The default window is 30 days; the noisiest rules list this one alone, figure for figure.
    month = (await api.get(f"/api/alerts/rules/{LATENCY}/stats")).json()
    assert month["days"] == 30 and month["incidents"] == 1
    noisiest = await api.get("/api/alerts/rules/stats")
    assert noisiest.status_code == 200 and noisiest.json() == [month]
    week = await api.get("/api/alerts/rules/stats", params={"days": 7, "limit": 1})
    assert week.json() == [figures]


@pytest.mark.parametrize("days", ["14", "0", "365", "seven", "-7"])
async def test_a_window_other_than_7_30_or_90_days_is_a_422_naming_days(
    api: Api, days: str
) -> None:
    for path in (f"/api/alerts/rules/{LATENCY}/stats", "/api/alerts/rules/stats"):
        response = await api.get(path, params={"days": days})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "days"


async def test_an_unknown_rule_is_a_404_and_a_bad_limit_a_422(api: Api) -> None:
    assert (await api.get("/api/alerts/rules/nobody/stats")).status_code == 404
    assert (await api.get("/api/alerts/rules/nobody/stats?days=14")).status_code == 404
    response = await api.get("/api/alerts/rules/stats", params={"limit": 0})
    assert response.status_code == 422 and response.json()["error"]["field"] == "limit"
    assert (await api.get("/api/alerts/rules/stats")).json() == []  # nothing happened yet


async def test_no_rule_may_be_named_stats(api: Api) -> None:
    body = {"name": "stats", "metric": "queue_depth", "critical": 1}
    response = await api.post("/api/alerts/rules", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == "name"
