"""The Alerts page's *Noisiest rules* panel: the API's listing, linked to each rule, with its
own period and its own section for live updates."""

from __future__ import annotations

import pytest

from .support import LATENCY, Api
from .test_pages import html, sign_in

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only


async def test_the_panel_lists_the_noisy_rules_linked_to_their_pages(api: Api) -> None:
    await sign_in(api, "vic")
    empty = html(await api.client.get("/alerts")).find(id="noisiest")
    assert "No rule has raised an incident" in empty.text

    await api.breach(LATENCY, 250)
    for _ in range(3):  # recovers on its own, then breaches again: two incidents
        await api.cycle({LATENCY: 20})
    await api.breach(LATENCY, 250)
    await api.breach("error_rate", 9)
    panel = html(await api.client.get("/alerts?days=7")).find(id="noisiest")
    rows = panel.find("tbody").find_all("tr")
    assert [row.attrs["data-rule"] for row in rows] == [LATENCY, "error_rate"]
    listed = (await api.get("/api/alerts/rules/stats", params={"days": 7})).json()
    assert [row.attrs["data-rule"] for row in rows] == [item["rule"] for item in listed]
    first = rows[0]
    assert first.find("a").attrs["href"].endswith(f"/rules/{LATENCY}")
    assert (
        first.find("td", **{"data-label": "Incidents"}).text == "2" == str(listed[0]["incidents"])
    )
    assert first.find("td", **{"data-label": "Resolved on their own"}).text.startswith("100%")
    current = panel.find("a", **{"aria-current": "true"})
    assert current.attrs["data-days"] == "7"

    alone = await api.client.get("/sections/alerts/noisiest?days=90")
    assert alone.status_code == 200 and "<html" not in alone.text
    section = html(alone).find("section")
    assert section.attrs["data-section"] == "noisiest"
    assert section.find("a", **{"aria-current": "true"}).attrs["data-days"] == "90"
