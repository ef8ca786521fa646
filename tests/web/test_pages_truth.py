"""What the pages say is true (issue 15): a metric without a rule, a stale value, deliveries
that are failing, both notes of an incident, the incident's chart. Server side, without a
browser, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from vigil.store import OutboxStatus
from vigil.web.pages.incident import chart_window

from .support import LATENCY, T0, Api, eventually
from .test_pages import MEMORY, html, sign_in

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

QUEUE = "queue_depth"  # a metric some source reports and no rule watches


async def test_a_metric_without_a_rule_shows_its_name_and_value_without_a_level(
    api: Api,
) -> None:
    await api.cycle({LATENCY: 50, QUEUE: 12})
    await sign_in(api, "vic")
    page = html(await api.client.get("/"))
    card = page.find("li", id=f"card-{QUEUE}")
    assert card.find("h3").text == "Queue Depth"
    assert card.find(class_="big").text == "12"
    assert card.find_all(class_="badge") == []  # no "No data" beside a value
    assert "No data" not in card.text
    assert card.find(class_="thresholds").text == "No rule"


async def test_a_value_whose_last_sample_is_old_is_shown_stale_with_its_age(api: Api) -> None:
    await api.cycle({LATENCY: 250, MEMORY: 300})
    # The latency source falls silent; the monitor carries on for three intervals.
    api.clock.advance(3 * api.vigil.settings.interval)
    await api.cycle({MEMORY: 310})
    await sign_in(api, "vic")
    page = html(await api.client.get("/"))
    stale = page.find("li", id=f"card-{LATENCY}")
    assert stale.has_class("lvl-stale") and not stale.has_class("lvl-critical")
    assert stale.find(class_="badge lvl-stale").text == "‖ Stale"
    assert stale.find(class_="stale-age").text.startswith("Last sample 3 h ago")
    assert "Critical" not in stale.find(class_="card-value").text  # no level for an old value
    row = html(await api.client.get("/alerts")).find("tr", id=f"rule-{LATENCY}")
    current = row.find("td", data_label="Current")
    assert current.find(class_="badge lvl-stale").text == "‖ Stale"
    assert "last sample 3 h ago" in current.text and "Critical" not in current.text
    fresh = page.find("li", id=f"card-{MEMORY}")
    assert fresh.has_class("lvl-normal")
    assert fresh.find(class_="badge lvl-normal").text == "✓ Normal"


async def test_a_sparkline_keeps_the_spike_that_opened_an_incident(api: Api) -> None:
    # Two readings a minute: a one-reading spike shares its minute with a calm reading.
    for value in (50, 50, 50, 300, 50, 50):
        await api.cycle({LATENCY: value})
    await sign_in(api, "vic")
    page = html(await api.client.get("/"))
    spark = page.find("li", id=f"card-{LATENCY}").find("svg")
    assert spark.attrs["aria-label"].endswith("from 50\u00a0ms to 300\u00a0ms")


async def test_a_sparkline_keeps_the_dip_of_a_rule_where_lower_is_worse(api: Api) -> None:
    rule = {"name": "disk_free", "metric": "disk_free", "unit": "GB", "warning": 20}
    rule |= {"critical": 10, "direction": "below"}
    assert (await api.post("/api/alerts/rules", json=rule)).status_code == 201
    for value in (50, 50, 50, 5, 50, 50):  # a one-reading dip shares its minute
        await api.cycle({"disk_free": value})
    await sign_in(api, "vic")
    page = html(await api.client.get("/"))
    spark = page.find("li", id="card-disk_free").find("svg")
    assert spark.attrs["aria-label"].endswith("from 5\u00a0GB to 50\u00a0GB")


async def test_the_channels_page_shows_deliveries_failing_and_retrying(api: Api) -> None:
    # Nothing listens on port 1: every attempt fails, and is tried again after a backoff.
    await api.vigil.store.add_channel(
        {"name": "down", "url": "json://127.0.0.1:1/hook"}, now=api.clock.now
    )
    await api.breach(LATENCY, 250)

    async def retrying() -> bool:
        waiting = await api.vigil.store.list_notifications(status=OutboxStatus.PENDING)
        return any(item.attempts >= 1 and item.last_error for item in waiting)

    await eventually(retrying)
    await sign_in(api, "vic")
    page = html(await api.client.get("/channels"))
    deliveries = page.find(id="deliveries")
    assert "No delivery has failed" not in deliveries.text
    [row] = deliveries.find("table", class_="compact retrying").find("tbody").find_all("tr")
    cells = [cell.text for cell in row.find_all("td")]
    assert cells[1] == "down" and cells[3] == "1"
    assert cells[5] != ""  # the last error, as the dispatcher recorded it
    assert "None given up on yet" in deliveries.text


async def test_a_resolve_note_keeps_the_acknowledge_note_each_with_who_and_when(
    api: Api,
) -> None:
    [opened] = await api.breach(LATENCY, 250)
    assert opened.incident is not None
    ident = opened.incident.id
    await api.vigil.acknowledge(ident, by="ana", notes="Restarting shard 3")
    api.clock.advance(300)
    await api.vigil.resolve(ident, by="bob", notes="Rolled back the 2.4 deploy")
    await sign_in(api, "vic")
    section = html(await api.client.get(f"/incidents/{ident}")).find(id="incident")
    notes = section.find("ul", class_="notes").find_all("li")
    assert [note.find("q").text for note in notes] == [
        "Restarting shard 3",
        "Rolled back the 2.4 deploy",
    ]
    assert "acknowledged by ana" in notes[0].text and "resolved by bob" in notes[1].text
    times = [note.find("time").attrs["datetime"] for note in notes]
    assert times[0] != times[1]  # each when it was written
    timeline = [li.find("p").text for li in section.find("ol", class_="timeline").find_all("li")]
    assert timeline[-2:] == [
        "Acknowledged by ana: Restarting shard 3",
        "Resolved by bob: Rolled back the 2.4 deploy",
    ]
    # The event log keeps each note with its event, for the API's stream and other readers.
    events = await api.vigil.store.incident_events(ident)
    assert [e.data.get("note") for e in events][-2:] == [
        "Restarting shard 3",
        "Rolled back the 2.4 deploy",
    ]
    # ... and the API reads them: the incident holds only the latest note, its events all
    answer = await api.get(f"/api/alerts/incidents/{ident}/events")
    assert answer.status_code == 200, answer.text
    told = [(e["kind"], e["by"], e["data"].get("note")) for e in answer.json()]
    assert told[0][0] == "incident.opened"
    assert told[-2:] == [
        ("incident.acknowledged", "ana", "Restarting shard 3"),
        ("incident.resolved", "bob", "Rolled back the 2.4 deploy"),
    ]
    assert (await api.get(f"/api/alerts/incidents/{uuid.uuid4()}/events")).status_code == 404
    limited = await api.get(f"/api/alerts/incidents/{ident}/events", params={"limit": 1})
    assert [e["kind"] for e in limited.json()] == ["incident.opened"]


M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("lasted", "interval", "before", "after"),
    [
        (2 * M, 30, 2 * M, 2 * M),  # two minutes: two minutes of calm each side
        (30 * timedelta(seconds=1), 5, M, M),  # shorter than a minute: a minute each side
        (M, 60, 4 * M, 4 * M),  # slow cycles: four of them each side
        (M, 3600, 15 * M, 15 * M),  # very slow cycles: a quarter of an hour each side
        (3 * 60 * M, 30, 3 * 60 * M, 3 * 60 * M),  # long: as long again each side
    ],
)
def test_a_short_incident_fills_a_good_part_of_its_chart(
    lasted: timedelta, interval: float, before: timedelta, after: timedelta
) -> None:
    triggered = T0
    now = T0 + 24 * 60 * M
    start, end = chart_window(triggered, triggered + lasted, now, interval=interval)
    assert triggered - start == before
    assert end - (triggered + lasted) == after + timedelta(seconds=1)  # ends just after
    if interval <= 60:
        assert lasted / (end - start) > 0.1  # not a sliver of a half-hour


def test_an_open_incidents_chart_runs_to_now() -> None:
    start, end = chart_window(T0, None, T0 + 2 * M, interval=30)
    assert (start, end) == (T0 - 2 * M, T0 + 2 * M + timedelta(seconds=1))


async def test_a_metric_id_may_wrap_at_its_separators_only(api: Api) -> None:
    [opened] = await api.breach(LATENCY, 250)
    assert opened.incident is not None
    await sign_in(api, "vic")
    response = await api.client.get(f"/incidents/{opened.incident.id}")
    assert "<code>gateway_<wbr>latency</code>" in response.text
    assert html(response).find("section", id="incident").find("code").text == LATENCY


async def test_the_title_counts_the_open_incidents(api: Api) -> None:
    await sign_in(api, "vic")
    assert html(await api.client.get("/")).find("title").text == "Overview · Vigil"
    await api.breach(LATENCY, 250)
    await api.breach(MEMORY, 450)
    assert html(await api.client.get("/")).find("title").text == "(2) Overview · Vigil"
    page = html(await api.client.get("/channels"))
    assert page.find("title").text == "(2) Channels · Vigil"
    assert page.find("body").attrs["data-title"] == "Channels"  # for the script's updates
