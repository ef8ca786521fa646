"""The Escalations page from the server side, without a browser: the policies listed with what
they apply to, their steps and timing; an admin adds, edits and removes one with plain forms
(each change in the event log, as through the API); a refused form is shown again with the
field named and marked, the values kept and nothing stored changed; a viewer reads only; a
form without its CSRF token is refused. On SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from .support import LATENCY, Api
from .test_admin_pages import changes_forms, invalid
from .test_pages import MEMORY, Node, html, location, post_form, sign_in

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

POLICY = {
    "name": "night",
    "description": "ops first, then the pager",
    "steps": [
        {"channels": ["ops"], "wait_minutes": 10},
        {"channels": ["pager"], "wait_minutes": 5},
    ],
    "repeat_minutes": 30,
    "rules": [LATENCY],
    "severities": ["critical"],
}


async def add_channels(api: Api, *names: str) -> None:
    for name in names or ("ops", "pager", "lead"):
        await api.vigil.add_channel({"name": name, "url": "json://127.0.0.1:9/hook"}, by="ana")


def add_form(csrf: str, **fields: str) -> dict[str, str]:
    """What the Add form sends for the policy above, with ``fields`` changed (``""``: left
    out, as a browser leaves out an unticked box)."""
    sent = {
        "csrf_token": csrf,
        "next": "/escalations",
        "name": "night",
        "description": "ops first, then the pager",
        "step0_channel_ops": "on",
        "step0_wait": "10",
        "step1_channel_pager": "on",
        "step1_wait": "5",
        "step2_wait": "",
        "repeat_minutes": "30",
        f"rule_{LATENCY}": "on",
        "severity_critical": "on",
    }
    sent.update(fields)
    return {key: value for key, value in sent.items() if value != "" or key.endswith("_wait")}


async def policy_events(api: Api) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [
        (e.kind.value, e.by, e.data["policy"])
        for e in await api.vigil.store.events_after(0)
        if e.kind.value.startswith("escalation.")
    ]


def step_texts(row: Node) -> list[str]:
    return [li.text for li in row.find("td", data_label="Steps").find_all("li")]


async def test_an_admin_adds_edits_and_removes_a_policy(api: Api) -> None:
    await add_channels(api)
    csrf = await sign_in(api)
    page = html(await api.client.get("/escalations"))
    nav = {a.text: a for a in page.find("nav", class_="nav").find_all("a")}
    assert nav["Escalations"].attrs == {"href": "/escalations", "aria-current": "page"}
    assert "No escalation policy" in page.find(id="policies").text
    form = page.find(id="add-policy").find("form")
    assert form.attrs["action"] == "/escalations"
    hidden = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input", type="hidden")}
    assert hidden == {"csrf_token": csrf, "next": "/escalations"}
    # A box for every channel in every step row, and for every rule.
    boxes = {i.attrs["name"] for i in form.find_all("input", type="checkbox")}
    assert {"step0_channel_ops", "step2_channel_lead", f"rule_{MEMORY}"} <= boxes

    added = await post_form(api, "/escalations", add_form(csrf))
    assert location(added) == "/escalations?done=escalation-added"
    stored = await api.vigil.store.get_policy("night")
    assert stored.to_dict() == POLICY
    shown = html(await api.client.get(location(added)))
    assert shown.find(class_="flash").text == "✓ Escalation policy added."
    row = shown.find("tr", id="policy-night")
    assert "ops first, then the pager" in row.find("th").text
    applies = row.find("td", data_label="Applies to").text
    assert f"Rules: {LATENCY}" in applies and "Default for critical incidents" in applies
    assert step_texts(row) == ["ops when it opens", "pager after 10 min unacknowledged"]
    assert row.find("td", data_label="After the last step").text == (
        "again after 5 min, then every 30 min"
    )
    # The edit form shows the policy as stored, and a blank row to add a step.
    assert "checked" in shown.find("input", name="step1_channel_pager").attrs
    assert shown.find(id="edit-night-step0-wait").attrs["value"] == "10"
    assert shown.find(id="edit-night-step2-wait").attrs["value"] == ""
    assert shown.find(id="edit-night-repeat").attrs["value"] == "30"

    edit = add_form(csrf, name="", step2_channel_lead="on", step2_wait="", repeat_minutes="")
    edit[f"rule_{LATENCY}"] = ""
    edit = {k: v for k, v in edit.items() if v != "" or k.endswith("_wait")}
    saved = await post_form(api, "/escalations/night", {**edit, "next": "/escalations"})
    assert location(saved) == "/escalations?done=escalation-saved"
    changed = await api.vigil.store.get_policy("night")
    assert [list(step.channels) for step in changed.steps] == [["ops"], ["pager"], ["lead"]]
    assert changed.steps[2].wait_minutes == 15  # left empty: the API's default
    assert (changed.repeat_minutes, changed.rules) == (None, frozenset())
    row = html(await api.client.get("/escalations")).find("tr", id="policy-night")
    assert step_texts(row)[2] == "lead after 15 min unacknowledged"
    assert row.find("td", data_label="After the last step").text == "stops"

    removed = await post_form(
        api, "/escalations/night/remove", {"csrf_token": csrf, "next": "/escalations"}
    )
    assert location(removed) == "/escalations?done=escalation-removed"
    assert await api.vigil.store.list_policies() == []
    # Every change went to the event log, by the admin, as through the API.
    logged = await policy_events(api)
    assert [(kind, by) for kind, by, _ in logged] == [
        ("escalation.added", "ana"),
        ("escalation.changed", "ana"),
        ("escalation.removed", "ana"),
    ]
    assert logged[0][2] == POLICY


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"step0_wait": "ten"}, "steps[0].wait_minutes", "'ten' is not a whole number"),
        ({"step0_wait": "0"}, "steps[0].wait_minutes", "greater than or equal to 1"),
        ({"step0_channel_ops": ""}, "steps[0].channels", "tick at least one channel"),
        ({"step1_channel_pager": "", "step2_channel_lead": "on"}, "steps[1].channels", "tick"),
        ({"repeat_minutes": "99999"}, "repeat_minutes", "less than or equal to"),
        ({"name": "Night Shift"}, "name", "pattern"),
        ({"name": "taken"}, "name", "already exists"),
        ({"name": "other", "rules": ""}, "severities", "critical already defaults to policy"),
        ({"name": "other", "severity_critical": ""}, "rules", "already follows policy"),
    ],
)
async def test_a_refused_policy_names_the_field_keeps_the_values_and_stores_nothing(
    api: Api, changes: dict[str, str], field: str, says: str
) -> None:
    await add_channels(api)
    await api.vigil.store.add_policy({**POLICY, "name": "taken"}, now=api.clock())
    before = await api.vigil.store.list_policies()
    csrf = await sign_in(api)
    sent = add_form(csrf, **changes)
    if changes.get("rules") == "":
        sent.pop(f"rule_{LATENCY}")
    response = await post_form(api, "/escalations", sent)
    assert response.status_code == 422, response.text[:300]
    form = html(response).find(id="add-policy")
    error = form.find(id="add-error")
    assert error.attrs["role"] == "alert"
    assert error.text.startswith(f"✗ {field}: ") and says in error.text, error.text
    marked = [node for node in form.find_all() if invalid(node)]
    assert len(marked) == 1, (field, marked)
    if field.startswith("steps["):
        step = int(field[len("steps[")])
        if field.endswith("wait_minutes"):
            assert marked[0].attrs["name"] == f"step{step}_wait"
        else:
            assert marked[0].tag == "fieldset" and f"Step {step + 1}" in marked[0].text
    elif field in ("rules", "severities"):
        assert marked[0].tag == "fieldset"
    else:
        assert marked[0].attrs["name"] == field
    # What was typed and ticked stays.
    assert form.find(id="add-name").attrs["value"] == sent["name"]
    assert form.find(id="add-description").attrs["value"] == "ops first, then the pager"
    assert form.find(id="add-step0-wait").attrs["value"] == sent["step0_wait"]
    for name in ("step0_channel_ops", "step1_channel_pager", "severity_critical"):
        assert ("checked" in form.find("input", name=name).attrs) == (name in sent), name
    assert await api.vigil.store.list_policies() == before


async def test_a_refused_edit_is_shown_in_its_row_and_changes_nothing(api: Api) -> None:
    await add_channels(api)
    await api.vigil.store.add_policy(POLICY, now=api.clock())
    before = await api.vigil.store.get_policy("night")
    csrf = await sign_in(api)
    sent = {**add_form(csrf, name=""), "step1_wait": "-5"}
    response = await post_form(api, "/escalations/night", sent)
    assert response.status_code == 422
    page = html(response)
    row = page.find("tr", id="policy-night")
    assert "open" in row.find("details").attrs
    error = row.find(id="policy-error-night").text
    assert error.startswith("✗ steps[1].wait_minutes: ")
    assert row.find(id="edit-night-step1-wait").attrs["value"] == "-5"
    assert invalid(row.find(id="edit-night-step1-wait"))
    assert page.find_all(id="add-error") == []
    assert await api.vigil.store.get_policy("night") == before
    gone = await post_form(api, "/escalations/nobody", add_form(csrf, name=""))
    assert gone.status_code == 404


async def test_a_viewer_reads_the_policies_and_cannot_change_them(api: Api) -> None:
    await add_channels(api)
    await api.vigil.store.add_policy(POLICY, now=api.clock())
    before = await api.vigil.store.list_policies()
    csrf = await sign_in(api, "vic")
    page = html(await api.client.get("/escalations"))
    assert changes_forms(page) == []
    assert page.find_all("details") == [] and page.find_all(id="add-policy") == []
    assert "Read-only: only admins change escalation policies." in page.find(id="policies").text
    row = page.find("tr", id="policy-night")
    assert step_texts(row) == ["ops when it opens", "pager after 10 min unacknowledged"]
    for path, fields in (
        ("/escalations", add_form(csrf, name="mine")),
        ("/escalations/night", add_form(csrf, name="", repeat_minutes="")),
        ("/escalations/night/remove", {"csrf_token": csrf}),
    ):
        response = await post_form(api, path, fields)
        assert response.status_code == 403, path
        assert "this needs the admin role" in html(response).find(class_="error").text
    assert await api.vigil.store.list_policies() == before
    assert [kind for kind, _, _ in await policy_events(api)] == ["escalation.added"]


async def test_an_admins_form_without_its_csrf_token_is_refused(api: Api) -> None:
    await add_channels(api)
    await api.vigil.store.add_policy(POLICY, now=api.clock())
    before = await api.vigil.store.list_policies()
    await sign_in(api)
    for path, fields in (
        ("/escalations", add_form("", name="other", severity_critical="", rules="")),
        ("/escalations/night", add_form("", name="", repeat_minutes="")),
        ("/escalations/night/remove", {}),
    ):
        for token in ({"csrf_token": ""}, {"csrf_token": "forged"}):
            response = await post_form(api, path, {**fields, **token})
            assert response.status_code == 403, (path, token)
            assert "the form is out of date" in html(response).find(class_="error").text
    assert await api.vigil.store.list_policies() == before


async def test_the_page_without_channels_says_to_add_one_and_its_section_renders_alone(
    api: Api,
) -> None:
    await sign_in(api)
    page = html(await api.client.get("/escalations"))
    assert "add a channel" in page.find(id="add-policy").text
    assert page.find(id="add-policy").find_all("form") == []
    await add_channels(api)
    await api.vigil.store.add_policy(POLICY, now=api.clock())
    response = await api.client.get("/sections/escalations/list")
    assert response.status_code == 200 and "<html" not in response.text
    [section] = [n for n in html(response).children if isinstance(n, Node)]
    assert section.attrs["data-section"] == "list"
    assert section.find("tr", id="policy-night").attrs["data-key"] == "policy-night"
    missing = await api.client.get("/sections/escalations/nothing")
    assert missing.status_code == 404
