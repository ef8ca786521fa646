"""An anomaly rule's band on the charts: the incident page's and the rule preview's chart data
carry the band the rule judged by (computed by replaying the stored samples through the
monitor's evaluator), and a threshold rule's do not; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from vigil.core import Event, EventKind, Incident, Rule, Sample

from .support import LATENCY, Api
from .test_pages import html, sign_in
from .test_rules_page import add_form

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

ODD = "odd_latency"
# 15 usual readings (a baseline needs 12), then a reading far outside 52 +- a few ms but under
# the default latency rule's warning (100): only the anomaly rule opens.
USUAL = [50.0 + i % 5 for i in range(15)]
UNUSUAL = 90.0


def anomaly_rule() -> Rule:
    return Rule.from_dict(
        {
            "name": ODD,
            "kind": "anomaly",
            "metric": LATENCY,
            "unit": "ms",
            "min_history": 60,
        }
    )


def opened_by(events: list[Event], rule: str) -> Incident:
    [incident] = [
        e.incident
        for e in events
        if e.kind is EventKind.INCIDENT_OPENED and e.incident is not None and e.rule == rule
    ]
    return incident


def chart_of(page: Any, script_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(page.find("script", id=script_id).text)
    return data


def in_force(band: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
    """The step of ``band`` in force at ``at``."""
    return [step for step in band if datetime.fromisoformat(step["t"]) <= at][-1]


async def test_the_incident_chart_carries_the_band_the_rule_judged_by(api: Api) -> None:
    await api.vigil.add_rule(anomaly_rule(), by="test")
    for value in USUAL:
        await api.cycle({LATENCY: value})
    odd = opened_by(await api.breach(LATENCY, UNUSUAL), ODD)
    assert odd.values is not None
    await sign_in(api, "vic")

    chart = chart_of(html(await api.client.get(f"/incidents/{odd.id}")), "incident-chart-data")
    band = chart["band"]
    assert band, chart
    judged = in_force(band, odd.triggered_at)
    # The same numbers the monitor judged by when it opened the incident.
    assert (judged["low"], judged["baseline"], judged["high"]) == (
        odd.values["low"],
        odd.values["baseline"],
        odd.values["high"],
    )
    assert judged["high"] == odd.threshold < UNUSUAL
    assert chart["thresholds"]["warning"] is None  # an anomaly rule has no fixed levels
    # Before the baseline had its readings, nothing was judged: a gap, not a made-up band.
    assert band[0]["baseline"] is None
    steps = html(await api.client.get(f"/incidents/{odd.id}")).find(id="incident-band")
    assert steps is not None and "Usual range" in steps.find("summary").text

    # A threshold rule's incident: no band.
    latency = opened_by(await api.breach(LATENCY, 150.0), LATENCY)
    plain = chart_of(html(await api.client.get(f"/incidents/{latency.id}")), "incident-chart-data")
    assert plain["band"] is None
    assert plain["thresholds"]["warning"] == 100.0


async def test_a_split_rule_draws_the_band_and_readings_of_the_incident_instance(api: Api) -> None:
    rule = anomaly_rule().updated({"split_by": "instance"})
    await api.vigil.add_rule(rule, by="test")
    # Another instance pushes its own usual level (80 ms) beside the monitor's own ("test").
    for value in [*USUAL, UNUSUAL, UNUSUAL]:
        pushed = api.clock.now + timedelta(seconds=30)  # the next cycle's moment
        await api.vigil.store.add_samples([Sample("shard-1", LATENCY, pushed, 80.0)])
        events = await api.cycle({LATENCY: value})
    odd = opened_by(events, ODD)
    assert odd.instance == "test" and odd.values is not None
    await sign_in(api, "vic")
    chart = chart_of(html(await api.client.get(f"/incidents/{odd.id}")), "incident-chart-data")
    judged = in_force(chart["band"], odd.triggered_at)
    assert (judged["low"], judged["high"]) == (odd.values["low"], odd.values["high"])
    means = [point["mean"] for point in chart["points"]]
    assert max(means) == UNUSUAL and 80.0 not in means  # the incident's instance alone


async def test_the_preview_chart_carries_the_band_of_the_version_in_the_form(api: Api) -> None:
    for value in USUAL:
        await api.cycle({LATENCY: value})
    await api.breach(LATENCY, UNUSUAL)
    await api.cycle({LATENCY: USUAL[0]})  # the period ends before this cycle's sample
    await api.vigil.add_rule(anomaly_rule(), by="test")
    csrf = await sign_in(api)
    fields = {
        **add_form(csrf, kind="anomaly", metric=LATENCY, unit="ms"),
        "sensitivity": "3",
        "min_history": "60",
        "preview_since": "24h",
    }
    del fields["name"]
    response = await api.client.post(f"/rules/{ODD}/preview", data=fields)
    assert response.status_code == 200, response.text[:500]
    page = html(response)
    chart = chart_of(page, "preview-chart-data")
    body = {"name": ODD, "kind": "anomaly", "metric": LATENCY, "unit": "ms"}
    result = (
        await api.post(
            "/api/alerts/rules/preview",
            json={**body, "sensitivity": 3, "min_history": 60, "since": "24h"},
        )
    ).json()
    band = result["proposed"]["band"]
    assert band and any(step["baseline"] is not None for step in band)
    assert [(s["low"], s["baseline"], s["high"]) for s in chart["band"]] == [
        (s["low"], s["baseline"], s["high"]) for s in band
    ]
    [incident] = result["proposed"]["incidents"]
    judged = in_force(chart["band"], datetime.fromisoformat(incident["opened_at"]))
    assert judged["high"] == incident["threshold"]
    assert page.find(id="preview-band") is not None

    threshold = {"name": LATENCY, "metric": LATENCY, "critical": 80, "since": "24h"}
    plain = (await api.post("/api/alerts/rules/preview", json=threshold)).json()
    assert plain["proposed"]["band"] is None and plain["saved"]["band"] is None
