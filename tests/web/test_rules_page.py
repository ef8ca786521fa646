"""The Rules page from the server side, without a browser: every rule of every kind with its
state, and the plain forms an admin adds, edits, switches and deletes rules with (a refused
form shown again with the message beside its field). A real Vigil, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from .support import LATENCY, Api
from .test_admin_pages import changes_forms, invalid
from .test_pages import Node, html, location, post_form, sign_in

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

COMPOSITE = {
    "name": "slow_and_failing",
    "kind": "composite",
    "condition": "command_p95_latency >= 500 and error_rate >= 5",
    "severity": "warning",
    "split_by": "none",
    "breaches_required": "2",
    "recoveries_required": "3",
    "enabled": "on",
}


def hidden(page: Node, form_id: str) -> dict[str, str]:
    form = page.find(id=form_id).find("form")
    return {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input", type="hidden")}


def add_form(csrf: str, **fields: str) -> dict[str, str]:
    """What the Add form sends: every field, as a browser sends it, with ``fields`` typed in."""
    sent = {
        "csrf_token": csrf,
        "next": "/rules",
        "name": "",
        "kind": "threshold",
        "display_name": "",
        "description": "",
        "metric": "",
        "unit": "",
        "condition": "",
        "warning": "",
        "critical": "",
        "direction": "above",
        "recovery": "",
        "absent_for": "",
        "severity": "critical",
        "split_by": "none",
        "aggregate": "max",
        "breaches_required": "2",
        "recoveries_required": "3",
        "no_data": "keep",
        "stale_after": "",
        "enabled": "on",
    }
    sent.update(fields)
    return sent


async def test_an_admin_adds_a_rule_of_each_kind_with_plain_forms(api: Api) -> None:
    csrf = await sign_in(api)
    page = html(await api.client.get("/rules"))
    nav = {a.text: a for a in page.find("nav", class_="nav").find_all("a")}
    assert nav["Rules"].attrs == {"href": "/rules", "aria-current": "page"}
    assert hidden(page, "add-rule") == {"csrf_token": csrf, "next": "/rules"}
    assert page.find_all(id=f"rule-{LATENCY}")

    sent = [
        add_form(csrf, name="queue_backlog", metric="queue_depth", unit="jobs", critical="500"),
        # a value left in a field of another kind is not sent on: only the chosen kind's are
        add_form(
            csrf,
            name="slow_and_failing",
            kind="composite",
            condition="command_p95_latency >= 500 and error_rate >= 5",
            severity="warning",
            warning="12",
        ),
        add_form(
            csrf,
            name="heartbeat",
            kind="absent",
            metric="cron_heartbeat",
            absent_for="5m",
            split_by="instance",
        ),
        add_form(
            csrf,
            name="odd_latency",
            kind="anomaly",
            metric="gateway_latency",
            sensitivity="5",
            min_history="2d",
            warning="12",  # another kind's field: not sent on
        ),
        add_form(
            csrf,
            name="leak",
            kind="forecast",
            metric="memory_usage",
            unit="MB",
            critical="480",
            horizon="2h",
            lookback="1h",
        ),
    ]
    for fields in sent:
        response = await post_form(api, "/rules", fields)
        assert location(response) == "/rules?done=rule-added"
    rules = api.vigil.view.rules
    assert (rules["queue_backlog"].metric, rules["queue_backlog"].critical) == ("queue_depth", 500)
    assert rules["slow_and_failing"].warning is None
    assert (rules["heartbeat"].absent_for, rules["heartbeat"].split_by) == (300, "instance")
    assert (rules["odd_latency"].sensitivity, rules["odd_latency"].min_history) == (5, 172800)
    assert (rules["leak"].horizon, rules["leak"].lookback, rules["leak"].critical) == (
        7200,
        3600,
        480,
    )

    after = html(await api.client.get("/rules?done=rule-added"))
    assert after.find(class_="flash").text == "✓ Rule added."
    row = after.find("tr", id="rule-slow_and_failing")
    assert "command_p95_latency >= 500 and error_rate >= 5" in row.text
    assert "composite" in row.find("td", data_label="Kind").text
    absent = after.find("tr", id="rule-heartbeat")
    assert "no sample for 300 s" in absent.text and "per instance" in absent.text
    assert "outside 5 spreads of its usual range" in after.find("tr", id="rule-odd_latency").text
    assert "within 7,200 s, by its trend" in after.find("tr", id="rule-leak").text


async def test_an_invalid_condition_is_shown_beside_its_field(api: Api) -> None:
    csrf = await sign_in(api)
    fields = add_form(csrf, name="broken", kind="composite", condition="error_rate >= and x > 1")
    response = await post_form(api, "/rules", fields)
    assert response.status_code == 422
    page = html(response)
    condition = page.find(id="add-condition")
    assert invalid(condition)
    assert condition.attrs["value"] == "error_rate >= and x > 1"  # what was sent, kept
    error = page.find(id="add-condition-error").text
    assert error.startswith("✗ ") and "at position 14" in error
    assert "add-condition-error" in condition.attrs["aria-describedby"]
    assert "broken" not in api.vigil.view.rules


async def test_an_admin_edits_disables_enables_and_deletes_a_rule(api: Api) -> None:
    csrf = await sign_in(api)
    await post_form(
        api, "/rules", add_form(csrf, name="queue_backlog", metric="queue_depth", critical="500")
    )
    page = html(await api.client.get("/rules/queue_backlog"))
    form = page.find(id="edit-rule").find("form")
    assert form.attrs["action"] == "/rules/queue_backlog"
    assert page.find(id="edit-critical").attrs["value"] == "500"
    fields = {
        **add_form(
            csrf,
            metric="queue_depth",
            warning="300",
            critical="600",
            breaches_required="4",
            no_data="ok",
            stale_after="90",
        ),
        "next": "/rules#rule-queue_backlog",
    }
    del fields["name"]
    saved = await post_form(api, "/rules/queue_backlog", fields)
    assert location(saved) == "/rules?done=rule-saved#rule-queue_backlog"
    rule = api.vigil.view.rules["queue_backlog"]
    assert (rule.warning, rule.critical, rule.breaches_required) == (300, 600, 4)
    assert (rule.no_data, rule.stale_after, rule.updated_by) == ("ok", 90, "ana")

    refused = await post_form(api, "/rules/queue_backlog", {**fields, "warning": "700"})
    assert refused.status_code == 422
    again = html(refused)
    assert invalid(again.find(id="edit-warning"))
    assert "must be below critical" in again.find(id="edit-warning-error").text

    off = await post_form(
        api, "/rules/queue_backlog/disable", {"csrf_token": csrf, "next": "/rules"}
    )
    assert location(off) == "/rules?done=rule-disabled"
    assert api.vigil.view.rules["queue_backlog"].enabled is False
    row = html(await api.client.get("/rules")).find("tr", id="rule-queue_backlog")
    assert row.find("button").text.startswith("Enable")
    on = await post_form(api, "/rules/queue_backlog/enable", {"csrf_token": csrf, "next": "/rules"})
    assert location(on) == "/rules?done=rule-enabled"
    assert api.vigil.view.rules["queue_backlog"].enabled is True

    # the rule's page lists its changes, newest first, with who and each field's values
    changes = html(await api.client.get("/rules/queue_backlog")).find(id="changes")
    lines = [li.text.split(" · ", 1)[1].split(":", 1)[1].split() for li in changes.find_all("li")]
    assert lines[0] == ["enabled", "False", "→", "True"]
    assert lines[1] == ["enabled", "True", "→", "False"]
    assert ["warning", "—", "→", "300.0,"] == lines[2][:4] and lines[-1] == ["created"]
    assert all(" · ana:" in li.text for li in changes.find_all("li"))

    confirm = html(await api.client.get("/rules/queue_backlog/delete"))
    assert "Delete rule" in confirm.find("h1").text
    button = confirm.find("main").find("form")
    assert button.attrs["action"] == "/rules/queue_backlog/delete"
    deleted = await post_form(api, "/rules/queue_backlog/delete", {"csrf_token": csrf})
    assert location(deleted) == "/rules?done=rule-deleted"
    assert "queue_backlog" not in api.vigil.view.rules


async def test_a_viewer_sees_every_rule_and_no_form(api: Api) -> None:
    await sign_in(api, "vic")
    page = html(await api.client.get("/rules"))
    assert page.find_all(id="add-rule") == []
    assert changes_forms(page) == []
    assert "Read-only" in page.find(id="rule-list").text
    detail = html(await api.client.get(f"/rules/{LATENCY}"))
    assert changes_forms(detail) == []
    refused = await post_form(api, "/rules/gateway_latency/disable", {"next": "/rules"})
    assert refused.status_code == 403
    assert api.vigil.view.rules[LATENCY].enabled is True


async def test_the_alerts_page_links_its_rules_to_the_rules_page(api: Api) -> None:
    await sign_in(api)
    page = html(await api.client.get("/alerts"))
    links = [a.attrs.get("href") for a in page.find(id="rules").find_all("a")]
    assert "/rules" in links


async def test_each_series_shows_its_value_level_and_streak(api: Api) -> None:
    """A rule split per instance lists each instance's value with its level and streak, and
    the open incident with its recoveries; a composite rule lists each term's value."""
    by_shard = {
        "name": "by_shard",
        "metric": "shard_lag",
        "unit": "ms",
        "warning": 100,
        "critical": 200,
        "split_by": "instance",
        "breaches_required": 2,
    }
    assert (await api.post("/api/alerts/rules", json=by_shard)).status_code == 201
    composite = {
        "name": "slow_and_failing",
        "kind": "composite",
        "condition": COMPOSITE["condition"],
        "severity": "warning",
    }
    added = await api.post("/api/alerts/rules", json=composite)
    assert added.status_code == 201, added.text

    async def push(**values: float) -> None:
        for instance, value in values.items():
            sample = {"metric": "shard_lag", "value": value}
            answer = await api.post(
                "/api/ingest", role="ingest", json={"instance": instance, "samples": [sample]}
            )
            assert answer.status_code == 200, answer.text

    await push(s0=250, s1=20)
    await api.cycle({"command_p95_latency": 600, "error_rate": 1})
    await sign_in(api, "vic")
    row = html(await api.client.get("/rules")).find("tr", id="rule-by_shard")
    now = [li.text.split() for li in row.find("td", data_label="Now").find_all("li")]
    assert now[0][:3] == ["s0:", "250", "ms"] and "Critical" in now[0]
    assert now[1][:3] == ["s1:", "20", "ms"] and "Normal" in now[1]
    state = row.find("td", data_label="State").text.split()
    assert state == ["s0:", "1/2", "breaches"]  # s1 reads normal: nothing to remember

    await push(s0=250, s1=20)
    await api.cycle({"command_p95_latency": 600, "error_rate": 1})
    row = html(await api.client.get("/rules")).find("tr", id="rule-by_shard")
    cell = row.find("td", data_label="State")
    assert "s0:" in cell.text and "open incident" in cell.text and "0/3 recoveries" in cell.text
    assert cell.find("a").attrs["href"].startswith("/incidents/")

    terms = html(await api.client.get("/rules")).find("tr", id="rule-slow_and_failing")
    now_terms = terms.find("td", data_label="Now").text
    assert "command_p95_latency" in now_terms and "600" in now_terms
    assert "error_rate" in now_terms
