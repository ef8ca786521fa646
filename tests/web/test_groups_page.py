"""The Alerts page's incident groups: shown with their members (expandable without
JavaScript), refreshed as a section, and acknowledged by an admin's form."""

from __future__ import annotations

import pytest

from vigil.core import Status

from .support import LATENCY, Api
from .test_pages import html, location, post_form, sign_in

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

BREACHING = {LATENCY: 250.0, "error_rate": 7.0, "command_p95_latency": 350.0}


async def breach_together(api: Api) -> list[str]:
    events = []
    for _ in range(2):
        events += await api.cycle(BREACHING)
    return [str(e.incident.id) for e in events if e.incident is not None]


async def test_the_alerts_page_shows_a_group_with_its_members(api: Api) -> None:
    ids = await breach_together(api)
    await sign_in(api, "vic")
    page = html(await api.client.get("/alerts"))
    section = page.find("section", id="groups")
    [card] = section.find_all("li", class_="group sev-critical st-active")
    summary = card.find("details").find("summary")
    assert "3 incidents:" in summary.text and "most severe critical" in summary.text
    links = [a.attrs["href"] for a in card.find("ul", class_="group-members").find_all("a")]
    assert sorted(links) == sorted(f"/incidents/{ident}" for ident in ids)
    assert card.find_all("form") == []  # a viewer cannot acknowledge
    # The section alone, as the script refreshes it.
    alone = html(await api.client.get("/sections/alerts/groups"))
    assert alone.find("section", id="groups").find_all("li", class_="group sev-critical st-active")


async def test_a_lone_incident_is_not_shown_as_a_group(api: Api) -> None:
    await api.breach(LATENCY, 150)
    await sign_in(api, "vic")
    section = html(await api.client.get("/alerts")).find("section", id="groups")
    assert section.find_all("li") == []
    assert "No related incidents are open together." in section.text


async def test_an_admin_acknowledges_a_group_from_the_page_without_javascript(api: Api) -> None:
    ids = await breach_together(api)
    csrf = await sign_in(api, "ana")
    page = html(await api.client.get("/alerts"))
    form = page.find("section", id="groups").find("form", class_="ack")
    response = await post_form(
        api, form.attrs["action"], {"notes": "all of it", "csrf_token": csrf}
    )
    assert "done=group-acknowledged" in location(response)
    for ident in ids:
        incident = await api.vigil.store.get_incident(ident)
        assert (incident.status, incident.notes) == (Status.ACKNOWLEDGED, "all of it")
    page = html(await api.client.get(location(response)))
    assert "Group acknowledged" in page.text
    assert page.find("section", id="groups").find_all(
        "li", class_="group sev-critical st-acknowledged"
    )


async def test_a_viewer_s_group_form_is_refused(api: Api) -> None:
    await breach_together(api)
    [group] = await api.vigil.store.list_groups()
    csrf = await sign_in(api, "vic")
    response = await post_form(api, f"/alerts/groups/{group.id}/acknowledge", {"csrf_token": csrf})
    assert response.status_code == 403
    assert (await api.vigil.store.get_group(group.id)).status is Status.ACTIVE
