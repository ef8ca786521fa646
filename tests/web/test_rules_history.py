"""A rule tried on the stored history before it is saved: ``GET
/api/alerts/rules/{name}/suggestion`` (thresholds learned from it, explained, with a preview of
the rule with them), and the rule's page, which suggests levels, puts them in the edit form,
and previews the form's version beside the saved rule. Nothing is saved. SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

from vigil.core import Sample

from ..runtime.support import T0
from .support import LATENCY, Api
from .test_pages import html, sign_in
from .test_rules_page import add_form

STEP = timedelta(minutes=5)
READINGS = 2 * 24 * 12  # two days every five minutes
OUTAGE = range(300, 303)  # three readings of 300 ms: the one real incident


def value(i: int) -> float:
    return 300.0 if i in OUTAGE else 50.0 + i % 7


def when(i: int) -> str:
    return (T0 - READINGS * STEP + i * STEP).strftime("%Y-%m-%d %H:%M UTC")


async def store_history(api: Api, readings: int = READINGS) -> None:
    start = T0 - READINGS * STEP
    await api.vigil.store.add_samples(
        [Sample("bot", LATENCY, start + i * STEP, value(i)) for i in range(readings)]
    )


def url(name: str = LATENCY, since: str = "3d") -> str:
    return f"/api/alerts/rules/{name}/suggestion?since={since}"


async def test_levels_learned_from_the_history_with_what_they_would_have_done(api: Api) -> None:
    await store_history(api)
    response = await api.get(url(), role="viewer")
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["readings"] == READINGS and found["reason"] is None
    assert found["direction"] == "above" and not found["weekly_shape"]
    assert found["median"] == 53
    # Above the normal 50-56 ms, below the outage's 300 ms, which did not drag them up.
    assert 56 < found["warning"] < found["critical"] < 100
    proposed, saved = found["proposed"], found["saved"]
    [incident] = proposed["incidents"]
    assert incident["severity"] == "critical" and incident["peak_value"] == 300
    assert saved["opened"] == 1  # the saved rule (critical 200) saw the outage too
    explanation = found["explanation"]
    assert explanation.startswith(f"From {READINGS:,} readings over 3 days (median 53 ms")
    assert f"warning at {found['warning']:g} ms, critical at {found['critical']:g} ms" in (
        explanation
    )
    assert f"Critical would have fired once in 3 days, at {when(OUTAGE[0] + 1)}" in explanation
    assert explanation.endswith("warning alone never.")
    rule = (await api.get(f"/api/alerts/rules/{LATENCY}")).json()
    assert (rule["warning"], rule["critical"]) == (100, 200)  # nothing saved


async def test_too_little_history_says_why(api: Api) -> None:
    await store_history(api, readings=100)
    found = (await api.get(url())).json()
    assert (found["warning"], found["critical"], found["proposed"]) == (None, None, None)
    assert found["readings"] == 100
    assert found["reason"].startswith("100 readings over 8.2 hours: a suggestion needs")
    assert found["explanation"] == f"No suggestion: {found['reason']}."


async def test_refusals_name_what_was_wrong(api: Api) -> None:
    absent = {"name": "silent", "kind": "absent", "metric": LATENCY, "absent_for": 60}
    assert (await api.post("/api/alerts/rules", json=absent)).status_code == 201
    response = await api.get(url("silent"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "kind"
    assert "threshold rules; silent is absent" in response.json()["error"]["message"]
    response = await api.get(url(since="soon"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "since"
    assert (await api.get(url("no_such_rule"))).status_code == 404


# -- the rule's page: the same suggestion, put into the edit form at the admin's word ----------


async def test_the_rule_page_suggests_and_puts_the_levels_in_the_form(api: Api) -> None:
    await store_history(api)
    await sign_in(api)
    page = html(await api.client.get(f"/rules/{LATENCY}"))
    section = page.find(id="suggest")
    assert [o.attrs["value"] for o in section.find_all("option")] == ["24h", "7d", "30d"]
    assert not section.find_all(id="suggestion")  # computed only when asked

    asked = html(await api.client.get(f"/rules/{LATENCY}?suggest=3d"))
    found = (await api.get(url())).json()
    assert asked.find(id="suggestion").text.strip() == found["explanation"]
    apply = asked.find(id="apply-suggestion").attrs["href"]
    assert apply == f"/rules/{LATENCY}?suggest=3d&apply=1#edit-rule"

    applied = html(await api.client.get(apply.split("#")[0]))
    form = applied.find(id="edit-rule")
    assert form.find(id="edit-warning").attrs["value"] == f"{found['warning']:g}"
    assert form.find(id="edit-critical").attrs["value"] == f"{found['critical']:g}"
    assert "nothing is saved" in applied.find(id="suggestion-applied").text
    rule = (await api.get(f"/api/alerts/rules/{LATENCY}")).json()
    assert (rule["warning"], rule["critical"]) == (100, 200)


async def test_the_rule_page_says_what_is_wrong_and_shows_viewers_no_form(api: Api) -> None:
    await store_history(api)
    await sign_in(api, "vic")
    refused = await api.client.get(f"/rules/{LATENCY}?suggest=forever")
    assert refused.status_code == 200
    assert "is neither a period" in html(refused).find(id="suggest-error").text
    page = html(await api.client.get(f"/rules/{LATENCY}?suggest=3d"))
    assert page.find(id="suggestion").text.startswith("From 576 readings")
    assert not page.find_all(id="apply-suggestion")  # viewers read; only admins edit
    absent = {"name": "silent", "kind": "absent", "metric": LATENCY, "absent_for": 60}
    assert (await api.post("/api/alerts/rules", json=absent)).status_code == 201
    assert not html(await api.client.get("/rules/silent")).find_all(id="suggest")


async def test_the_edit_form_previews_its_version_beside_the_saved_rule(api: Api) -> None:
    await store_history(api)
    csrf = await sign_in(api)
    page = html(await api.client.get(f"/rules/{LATENCY}"))
    form = page.find(id="edit-rule").find("form")
    [preview_button] = [b for b in form.find_all("button") if b.text == "Preview"]
    assert preview_button.attrs["formaction"] == f"/rules/{LATENCY}/preview"
    fields = {
        **add_form(csrf, metric=LATENCY, unit="ms", warning="58", critical="250"),
        "next": f"/rules#rule-{LATENCY}",
        "preview_since": "7d",
    }
    del fields["name"]
    response = await api.client.post(f"/rules/{LATENCY}/preview", data=fields)
    assert response.status_code == 200, response.text[:500]
    shown = html(response)
    assert shown.find(id="edit-warning").attrs["value"] == "58"  # the form as typed
    assert shown.find(id="preview-h").text == "Preview over the last 7 days"
    body = {"name": LATENCY, "metric": LATENCY, "unit": "ms", "warning": 58, "critical": 250}
    api_result = (await api.post("/api/alerts/rules/preview", json={**body, "since": "7d"})).json()
    rows = {
        row.find("th").text: [cell.text for cell in row.find_all("td")]
        for row in shown.find(id="preview-summary").find("tbody").find_all("tr")
    }
    proposed, saved = api_result["proposed"], api_result["saved"]
    assert rows["Incidents opened"] == [str(proposed["opened"]), str(saved["opened"])]
    assert rows["Escalated to critical"] == ["0", "0"]  # the outage opens at critical
    assert rows["Notifications"] == [str(proposed["notifications"]), str(saved["notifications"])]
    assert proposed["opened"] == saved["opened"] == 1  # 50-56 ms stay below both warnings
    chart = json.loads(shown.find(id="preview-chart-data").text)
    assert len(chart["points"]) > 50  # two days of readings in 7-day buckets
    assert max(point["mean"] for point in chart["points"]) > 100  # the outage shows
    assert [(t["label"], t["value"]) for t in chart["thresholds"]] == [
        ("This version: warning", 58),
        ("This version: critical", 250),
        ("Saved: warning", 100),
        ("Saved: critical", 200),
    ]
    [window] = chart["windows"]
    assert window["from"] == proposed["incidents"][0]["opened_at"].replace("Z", "+00:00")
    rule = (await api.get(f"/api/alerts/rules/{LATENCY}")).json()
    assert (rule["warning"], rule["critical"]) == (100, 200)  # nothing saved


async def test_a_refused_preview_names_the_field_and_keeps_the_form(api: Api) -> None:
    csrf = await sign_in(api)
    fields = {**add_form(csrf, metric=LATENCY, warning="300", critical="200"), "next": "/rules"}
    del fields["name"]
    response = await api.client.post(f"/rules/{LATENCY}/preview", data=fields)
    assert response.status_code == 422
    shown = html(response)
    assert shown.find(id="edit-warning").attrs["value"] == "300"
    assert "must be below critical" in shown.find(id="edit-warning-error").text
    assert not shown.find_all(id="preview")
    refused = await api.client.post(
        f"/rules/{LATENCY}/preview", data={**fields, "warning": "", "preview_since": "ever"}
    )
    assert refused.status_code == 422
    assert "is neither a period" in html(refused).find(id="edit-error").text
