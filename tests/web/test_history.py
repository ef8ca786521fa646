"""GET /api/alerts/incidents: every filter, pagination edges, the cursor, and freshness."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from vigil.core import Incident, Severity

from .support import LATENCY, T0, Api, past_incident

MEMORY = "memory_usage"


async def seven(api: Api) -> list[Incident]:
    """Seven incidents an hour apart, newest last: mixed metrics, severities and endings."""
    store = api.vigil.store
    made = []
    for n in range(7):
        made.append(
            await past_incident(
                store,
                metric=LATENCY if n % 2 == 0 else MEMORY,
                severity=Severity.CRITICAL if n % 3 == 0 else Severity.WARNING,
                at=T0 - timedelta(hours=10 - n),
                resolved_after=None if n == 6 else timedelta(minutes=5),
                auto=n != 1,
            )
        )
    return made


def ids(incidents: list[Incident]) -> list[str]:
    return [str(incident.id) for incident in incidents]


async def page(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.get("/api/alerts/incidents", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_history_is_newest_first_with_its_page_fields(api: Api) -> None:
    made = await seven(api)
    body = await page(api)
    assert set(body) == {"items", "total", "page", "page_size", "pages", "next_cursor"}
    assert (body["total"], body["page"], body["page_size"], body["pages"]) == (7, 1, 50, 1)
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == ids(made[::-1])
    newest = body["items"][0]
    assert (newest["status"], newest["resolved_at"], newest["duration_s"]) == (
        "active",
        None,
        (T0 - made[6].triggered_at).total_seconds(),
    )
    manual = body["items"][5]
    assert (manual["resolution"], manual["resolved_by"], manual["duration_s"]) == (
        "manual",
        "ops",
        300.0,
    )


async def test_each_filter_and_their_combination(api: Api) -> None:
    made = await seven(api)

    async def found(**params: Any) -> list[str]:
        return [item["id"] for item in (await page(api, **params))["items"]]

    newest_first = made[::-1]
    assert await found(metric=MEMORY) == ids([i for i in newest_first if i.metric == MEMORY])
    assert await found(severity="critical") == ids(
        [i for i in newest_first if i.severity is Severity.CRITICAL]
    )
    assert await found(status="active") == ids([made[6]])
    assert await found(status="resolved") == ids(newest_first[1:])
    assert await found(status="acknowledged") == []
    start, end = made[2].triggered_at, made[5].triggered_at
    assert await found(start=start.isoformat(), end=end.isoformat()) == ids(made[4:1:-1])
    assert await found(
        start=start.isoformat(), end=end.isoformat(), metric=LATENCY, severity="warning"
    ) == ids([made[4], made[2]])
    # a time zone other than UTC means the same instant
    shifted = start.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert await found(start=shifted.isoformat()) == ids(newest_first[:5])


async def test_invalid_filters_name_the_parameter(api: Api) -> None:
    cases = [
        ({"severity": "fatal"}, "severity"),
        ({"status": "open"}, "status"),
        ({"metric": "Bad Metric"}, "metric"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-11-27T10:00:00"}, "start"),  # no time zone: ambiguous
        ({"start": "0001-01-01T00:00:00+05:00"}, "start"),  # before year 1 in UTC
        ({"start": T0.isoformat(), "end": T0.isoformat()}, "end"),
        ({"page": 0}, "page"),
        ({"page": 1_000_001}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 201}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ]
    for params, field in cases:
        response = await api.get("/api/alerts/incidents", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["field"] == field, params


async def test_pages_cover_everything_once_and_edges_are_empty(api: Api) -> None:
    made = await seven(api)
    seen: list[str] = []
    for number in (1, 2, 3):
        body = await page(api, page=number, page_size=3)
        assert (body["total"], body["pages"], body["page"]) == (7, 3, number)
        seen += [item["id"] for item in body["items"]]
    assert seen == ids(made[::-1])
    last = await page(api, page=3, page_size=3)
    assert len(last["items"]) == 1 and last["next_cursor"] is None
    beyond = await page(api, page=4, page_size=3)
    assert (beyond["items"], beyond["total"], beyond["pages"]) == ([], 7, 3)
    exact = await page(api, page_size=7)
    assert (len(exact["items"]), exact["pages"], exact["next_cursor"]) == (7, 1, None)
    biggest = await page(api, page_size=200)
    assert len(biggest["items"]) == 7
    nothing = await page(api, metric="error_rate")
    assert (nothing["items"], nothing["total"], nothing["pages"]) == ([], 0, 0)


async def test_the_cursor_walks_the_same_order(api: Api) -> None:
    made = await seven(api)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"page_size": 2, "metric": LATENCY}
        if cursor is not None:
            params["cursor"] = cursor
        body = await page(api, **params)
        pages += 1
        seen += [item["id"] for item in body["items"]]
        assert body["total"] == 4
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == ids([i for i in made[::-1] if i.metric == LATENCY])


async def test_history_shows_changes_at_once(api: Api) -> None:
    """History is cached between changes; an action, a cycle or a new incident shows up in
    the next read all the same."""
    [opened] = await api.breach(LATENCY, 150)
    assert opened.incident is not None
    first = (await page(api))["items"]
    assert [i["status"] for i in first] == ["active"]
    await api.post(f"/api/alerts/incidents/{opened.incident.id}/acknowledge")
    assert [i["status"] for i in (await page(api))["items"]] == ["acknowledged"]
    await api.cycle({LATENCY: 180})  # the cycle updates last and peak value, without an event
    [latest] = (await page(api))["items"]
    assert (latest["peak_value"], latest["last_value"]) == (180.0, 180.0)
    await past_incident(api.vigil.store, metric="error_rate", at=T0 - timedelta(days=1))
    await api.breach(MEMORY, 450)  # a cycle happens after the out-of-band insert
    assert (await page(api))["total"] == 3
