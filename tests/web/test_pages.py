"""The dashboard's pages from the server side, without a browser: what a reader without
JavaScript gets, who may see and do what, and the plain-form actions that redirect back.
Every test runs against a real Vigil on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from vigil.core import EventKind, Incident, Rule, Severity, Status

from .support import LATENCY, PASSWORD, T0, Api, past_incident, running_api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

MEMORY = "memory_usage"
FORM = {"content-type": "application/x-www-form-urlencoded"}


# -- reading HTML ---------------------------------------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """The descendants with ``tag`` and ``attrs`` (``class_`` for ``class``), in
        document order."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [
            node
            for node in self._descendants()
            if (tag is None or node.tag == tag)
            and all(node.attrs.get(k) == v for k, v in wanted.items())
        ]

    def _descendants(self) -> Iterator[Node]:
        pending = [c for c in reversed(self.children) if not isinstance(c, str)]
        while pending:
            node = pending.pop()
            yield node
            pending += [c for c in reversed(node.children) if not isinstance(c, str)]

    def find(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'} {attrs}>"
        return found[0]

    def has_class(self, name: str) -> bool:
        return name in self.attrs.get("class", "").split()


VOID = {"meta", "link", "input", "br", "wbr", "img", "hr", "line", "polyline"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def facts(node: Node) -> dict[str, str]:
    """A description list as {term: description}."""
    return {
        dt.text: dd.text for dt, dd in zip(node.find_all("dt"), node.find_all("dd"), strict=True)
    }


def html(response: httpx.Response) -> Node:
    assert response.headers["content-type"].startswith("text/html"), response.text[:300]
    builder = _Builder()
    builder.feed(response.text)
    return builder.root


# -- signing in -----------------------------------------------------------------------------------


async def sign_in(api: Api, name: str = "ana") -> str:
    """Sign in through the page's form, as a browser without JavaScript does; the CSRF token
    the pages put in their forms."""
    response = await api.client.post(
        "/login", data={"name": name, "password": PASSWORD, "next": "/alerts"}
    )
    assert response.status_code == 303, response.text
    page = html(await api.client.get("/alerts"))
    return page.find("meta", name="csrf-token").attrs["content"]


async def post_form(api: Api, path: str, fields: dict[str, str]) -> httpx.Response:
    return await api.client.post(path, data=fields)


def location(response: httpx.Response) -> str:
    assert response.status_code == 303, (response.status_code, response.text[:500])
    return response.headers["location"]


async def test_signed_out_pages_send_to_sign_in_and_back(api: Api) -> None:
    response = await api.client.get("/alerts", params={"severity": "critical"})
    assert location(response) == "/login?next=/alerts%3Fseverity%3Dcritical"
    form = html(await api.client.get(location(response)))
    labels = {label.attrs["for"]: label.text for label in form.find_all("label")}
    assert labels == {"login-name": "User name", "login-password": "Password"}
    assert form.find("input", name="next").attrs["value"] == "/alerts?severity=critical"

    wrong = await api.client.post(
        "/login", data={"name": "ana", "password": "nope", "next": "/alerts"}
    )
    assert wrong.status_code == 401
    page = html(wrong)
    assert page.find(id="login-error").text == "✗ Wrong user name or password."
    assert page.find("input", name="name").attrs["value"] == "ana"  # kept, not retyped
    assert "vigil_session" not in api.client.cookies

    right = await api.client.post(
        "/login", data={"name": "ana", "password": PASSWORD, "next": "/alerts?severity=critical"}
    )
    assert location(right) == "/alerts?severity=critical"
    header = html(await api.client.get(location(right))).find("header")
    assert header.find(class_="user-name").text == "ana"
    assert header.find(class_="role role-admin").text == "admin"
    # signed in already: the sign-in page sends on
    assert location(await api.client.get("/login?next=/")) == "/"


async def test_sign_in_never_redirects_off_site(api: Api) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "alerts"):
        api.client.cookies.clear()
        response = await api.client.post(
            "/login", data={"name": "vic", "password": PASSWORD, "next": target}
        )
        assert location(response) == "/", target


async def test_sign_out_needs_the_forms_csrf_token(api: Api) -> None:
    csrf = await sign_in(api, "vic")
    refused = await post_form(api, "/logout", {"csrf_token": "forged"})
    assert refused.status_code == 403
    assert (await api.client.get("/alerts")).status_code == 200  # still signed in
    assert location(await post_form(api, "/logout", {"csrf_token": csrf})) == "/login"
    assert location(await api.client.get("/alerts")).startswith("/login")


# -- the Alerts & Incidents page ---------------------------------------------------------------


async def some_history(api: Api) -> list[Incident]:
    """Six past incidents a day apart (newest last), resolved by themselves or by hand."""
    store = api.vigil.store
    made = []
    for n in range(6):
        made.append(
            await past_incident(
                store,
                metric=LATENCY if n % 2 else MEMORY,
                severity=Severity.CRITICAL if n % 3 == 0 else Severity.WARNING,
                at=T0 - timedelta(days=6 - n),
                resolved_after=timedelta(minutes=5 + n),
                auto=n != 4,
            )
        )
    return made


async def test_the_alerts_page_renders_every_section_without_javascript(api: Api) -> None:
    past = await some_history(api)
    [opened] = await api.breach(LATENCY, 250)
    assert opened.incident is not None
    await sign_in(api, "vic")
    response = await api.client.get("/alerts")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = html(response)

    header = page.find(id="open-count")
    assert header.has_class("sev-critical") and header.text == "▲ 1 open incident · worst critical"
    summary = {n.attrs["data-summary"]: n.text for n in page.find_all(class_="tile-n")}
    assert summary == dict(critical="1", warning="0", info="0", acknowledged="0", total="1")

    [card] = page.find(id="active").find_all("li", class_="incident sev-critical st-active")
    assert opened.incident.message in card.text
    shown = facts(card)
    assert (shown["Threshold"], shown["Value"], shown["Open for"]) == ("200 ms", "250 ms", "0 s")
    triggered = card.find("time")
    stamp = opened.incident.triggered_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert triggered.attrs["datetime"] == stamp
    assert triggered.text.endswith(" UTC")  # the browser's script makes it local

    rules = page.find(id="rules")
    latency = rules.find("tr", id=f"rule-{LATENCY}")
    assert "250 ms" in latency.text and "Critical" in latency.text and "≥ 100 ms" in latency.text

    rows = page.find(id="history").find("tbody").find_all("tr")
    assert [row.attrs["data-incident"] for row in rows] == [
        str(i.id) for i in [opened.incident, *past[::-1]]
    ]
    resolutions = [row.find_all("td")[-1].text for row in rows[1:]]
    assert resolutions == ["↺ Auto", "✎ Manual by ops", "↺ Auto", "↺ Auto", "↺ Auto", "↺ Auto"]
    assert [row.find_all("td")[5].text for row in rows[1:3]] == ["10 min", "9 min"]

    recoveries = page.find(id="recoveries").find_all("li")
    assert len(recoveries) == 5 and "recovered on its own after 10 min" in recoveries[0].text

    frequency = page.find(id="frequency")
    assert "7 incidents in the last 30 days" in frequency.find(id="frequency-totals").text
    days = json.loads(frequency.find("script", id="frequency-data").text)
    assert len(days) == 30 and sum(day["total"] for day in days) == 7
    today = frequency.find("details").find("tbody").find_all("tr")[0]
    assert [cell.text for cell in today.children if not isinstance(cell, str)] == [
        T0.date().isoformat(),
        "1",
        "0",
        "0",
        "1",
    ]


async def test_the_page_reads_what_the_api_returns(api: Api) -> None:
    await some_history(api)
    await api.breach(MEMORY, 450)
    await sign_in(api, "vic")
    page = html(await api.client.get("/alerts", params={"status": "resolved"}))
    shown = [row.attrs["data-incident"] for row in page.find(id="history").find_all("tr")[1:]]
    listed = await api.get("/api/alerts/incidents", params={"status": "resolved", "page_size": 25})
    assert shown == [item["id"] for item in listed.json()["items"]]
    active = page.find(id="active").find_all("li", class_="incident sev-warning st-active")
    api_active = (await api.get("/api/alerts/active")).json()
    assert [li.attrs["id"] for li in active] == [f"incident-{i['id']}" for i in api_active]


async def test_history_filters_and_pages(api: Api) -> None:
    store = api.vigil.store
    for n in range(60):  # one every hour, critical every third
        await past_incident(
            store,
            metric=LATENCY if n % 2 else MEMORY,
            severity=Severity.CRITICAL if n % 3 == 0 else Severity.WARNING,
            at=T0 - timedelta(hours=60 - n),
        )
    await sign_in(api, "vic")

    def rows(page: Node) -> list[Node]:
        return page.find(id="history").find("tbody").find_all("tr")

    first = html(await api.client.get("/alerts"))
    assert first.find(id="history-count").text == "60 incidents · page 1 of 3"
    second = html(await api.client.get("/alerts", params={"page": "2"}))
    assert {r.attrs["data-incident"] for r in rows(first)}.isdisjoint(
        r.attrs["data-incident"] for r in rows(second)
    )
    pager = second.find("nav", class_="pager")
    assert pager.find("a", rel="next").attrs["href"] == "/alerts?page=3#history"
    assert pager.find("a", aria_current="page").text == "2"

    critical = html(await api.client.get("/alerts", params={"severity": "critical"}))
    assert critical.find(id="history-count").text == "20 incidents match · page 1 of 1"
    assert all(row.has_class("sev-critical") for row in rows(critical))
    assert critical.find("option", value="critical").attrs.get("selected") == ""

    both = await api.client.get("/alerts", params={"severity": "warning", "rule": MEMORY})
    memory = rows(html(both))
    assert len(memory) == 20 and all(MEMORY in row.text for row in memory)
    assert html(both).find("option", value=MEMORY).attrs.get("selected") == ""
    by_metric = await api.client.get("/alerts", params={"severity": "warning", "metric": MEMORY})
    assert len(rows(html(by_metric))) == 20  # an old link by metric still works
    refused = html(await api.client.get("/alerts", params={"rule": "Not A Rule"}))
    assert "Rule: 'Not A Rule' is not a rule name" in refused.find(id="history").text

    day = (T0 - timedelta(days=1)).date().isoformat()
    one_day = html(await api.client.get("/alerts", params={"from": day, "to": day}))
    dates = {row.find("time").attrs["datetime"][:10] for row in rows(one_day)}
    assert dates == {day} and len(rows(one_day)) == 24  # one an hour, all day

    paged = html(await api.client.get("/alerts", params={"severity": "warning", "page": "2"}))
    link = paged.find("nav", class_="pager").find("a", rel="prev").attrs["href"]
    assert parse_qs(urlsplit(link).query) == {"severity": ["warning"]}

    bad = html(await api.client.get("/alerts", params={"from": "yesterday", "status": "gone"}))
    errors = [p.text for p in bad.find(id="history").find_all("p", class_="error")]
    assert errors == [
        "✗ Status: 'gone' is not a status",
        "✗ From: must be a date (YYYY-MM-DD)",
    ]
    assert bad.find(id="history-count").text == "60 incidents · page 1 of 3"  # the rest applies

    beyond = html(await api.client.get("/alerts", params={"page": "9"}))
    assert "No incidents on page 9" in beyond.find(id="history").text


# -- roles and plain-form actions -----------------------------------------------------------------


async def test_a_viewer_sees_everything_read_only_and_cannot_act(api: Api) -> None:
    [opened] = await api.breach(LATENCY, 250)
    assert opened.incident is not None
    ident = opened.incident.id
    csrf = await sign_in(api, "vic")
    page = html(await api.client.get("/alerts"))
    assert page.find_all("form", method="post", class_="ack") == []
    assert page.find(id="rules").find_all("input") == []
    assert "Read-only: only admins change rules." in page.find(id="rules").text
    assert page.find(id="active").find("li", id=f"incident-{ident}").find_all("button") == []

    for path, fields in (
        (f"/alerts/incidents/{ident}/acknowledge", {"notes": "mine"}),
        (f"/alerts/incidents/{ident}/resolve", {}),
        ("/alerts/incidents/acknowledge-all", {}),
        (f"/alerts/rules/{LATENCY}", {"warning": "1", "critical": "2", "direction": "above"}),
    ):
        response = await post_form(api, path, {**fields, "csrf_token": csrf})
        assert response.status_code == 403, path
        assert "this needs the admin role" in html(response).find(class_="error").text
    assert (await api.vigil.store.get_incident(ident)).status is Status.ACTIVE
    assert (await api.vigil.store.get_rule(LATENCY)).warning == 100


async def test_an_admin_acknowledges_with_a_note_and_resolves_with_plain_forms(api: Api) -> None:
    [opened] = await api.breach(LATENCY, 250)
    [other] = await api.breach(MEMORY, 500)
    assert opened.incident is not None and other.incident is not None
    ident = opened.incident.id
    csrf = await sign_in(api)
    page = html(await api.client.get("/alerts"))
    form = page.find("form", action=f"/alerts/incidents/{ident}/acknowledge")
    hidden = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input", type="hidden")}
    assert hidden == {"csrf_token": csrf, "next": f"/alerts#incident-{ident}"}
    assert form.find("label", for_=f"note-{ident}").text == "Note (optional)"

    path = f"/alerts/incidents/{ident}/acknowledge"
    forged = await post_form(api, path, {"notes": "x", "next": "/alerts"})
    assert forged.status_code == 403
    assert (await api.vigil.store.get_incident(ident)).status is Status.ACTIVE

    done = await post_form(api, path, {**hidden, "notes": "  Restarting shard 3  "})
    assert location(done) == f"/alerts?done=acknowledged#incident-{ident}"
    stored = await api.vigil.store.get_incident(ident)
    assert (stored.status, stored.acknowledged_by, stored.notes) == (
        Status.ACKNOWLEDGED,
        "ana",
        "Restarting shard 3",
    )
    after = html(await api.client.get(location(done)))
    assert after.find(class_="flash").text == "✓ Incident acknowledged."
    card = after.find("li", id=f"incident-{ident}")
    assert card.find(class_="acked").text.startswith("✔ Acknowledged by ana")
    assert card.find("q").text == "Restarting shard 3"
    assert card.find_all("form", class_="ack") == []  # who and when instead of the button

    again = await post_form(api, path, hidden)
    assert again.status_code == 409
    assert "it is acknowledged" in html(again).find(class_="error").text

    everything = await post_form(api, "/alerts/incidents/acknowledge-all", {"csrf_token": csrf})
    assert location(everything) == "/alerts?done=acknowledged-all"
    assert (await api.vigil.store.get_incident(other.incident.id)).acknowledged_by == "ana"

    resolved = await post_form(
        api, f"/alerts/incidents/{ident}/resolve", {"csrf_token": csrf, "next": "/incidents/x"}
    )
    assert location(resolved) == "/incidents/x?done=resolved"
    stored = await api.vigil.store.get_incident(ident)
    assert (stored.status, stored.resolution, stored.resolved_by) == (
        Status.RESOLVED,
        "manual",
        "ana",
    )
    unknown = await post_form(api, f"/alerts/incidents/{uuid.uuid4()}/resolve", hidden)
    assert unknown.status_code == 404


ADMIN_FORMS = (
    "/alerts/groups/{group_id}/acknowledge",
    "/alerts/incidents/acknowledge-all",
    "/alerts/incidents/{incident_id}/acknowledge",
    "/alerts/incidents/{incident_id}/resolve",
    "/alerts/rules/{metric}",
    "/channels",
    "/channels/{name}",
    "/channels/{name}/test",
    "/channels/{name}/remove",
    "/escalations",
    "/escalations/{name}",
    "/escalations/{name}/remove",
    "/rules",
    "/rules/{name}",
    "/rules/{name}/preview",
    "/rules/{name}/enable",
    "/rules/{name}/disable",
    "/rules/{name}/delete",
    "/silences/snoozes",
    "/silences/snoozes/{metric}/end",
    "/silences/windows",
    "/silences/windows/{name}/remove",
)


async def test_every_admin_form_wants_an_admin_signed_in_and_the_forms_csrf_token(
    api: Api,
) -> None:
    """The admin forms share one preamble: signed out, the browser goes to sign in and back;
    a viewer, or an admin without the form's CSRF token, is refused; nothing changes."""
    posted = {
        route.path
        for route in iter_route_contexts(api.app.routes)
        if route.path is not None
        and "POST" in (route.methods or ())
        and getattr(route.endpoint, "__module__", "").startswith("vigil.web.pages")
    }
    assert posted - {"/login", "/logout"} == set(ADMIN_FORMS)  # a new one is listed here
    [opened] = await api.breach(LATENCY, 250)
    assert opened.incident is not None
    values = {
        "incident_id": str(opened.incident.id),
        "group_id": str(opened.incident.group),
        "metric": LATENCY,
        "name": "ops",
    }
    paths = [template.format(**values) for template in ADMIN_FORMS]
    for path in paths:
        sent = location(await post_form(api, path, {"reason": "x"}))
        assert sent == f"/login?next={path}", path
    await sign_in(api, "vic")
    for path in paths:
        refused = await post_form(api, path, {"csrf_token": "forged"})
        assert refused.status_code == 403, path
        assert "this needs the admin role" in html(refused).find(class_="error").text
    api.client.cookies.clear()
    await sign_in(api)
    for path in paths:
        refused = await post_form(api, path, {"csrf_token": "forged", "reason": "x"})
        assert refused.status_code == 403, path
        assert "the form is out of date" in html(refused).find(class_="error").text
    assert (await api.vigil.store.get_incident(opened.incident.id)).status is Status.ACTIVE
    assert await api.vigil.store.active_snoozes(now=api.clock.now) == []


async def test_a_rule_form_saves_valid_values_and_explains_invalid_ones(api: Api) -> None:
    csrf = await sign_in(api)
    page = html(await api.client.get("/alerts"))
    row = page.find("tr", id=f"rule-{LATENCY}")
    inputs = {i.attrs["name"]: i for i in row.find_all("input") if i.attrs.get("form")}
    assert inputs["warning"].attrs["value"] == "100" and inputs["critical"].attrs["value"] == "200"
    assert "checked" in inputs["enabled"].attrs
    labels = {label.attrs["for"]: label.text for label in row.find_all("label")}
    assert labels[f"warning-{LATENCY}"] == "Warning threshold of Gateway Latency (ms)"
    form = row.find("form", id=f"rule-form-{LATENCY}")
    assert form.attrs["action"] == f"/alerts/rules/{LATENCY}"
    fields = {"csrf_token": csrf, "next": f"/alerts#rule-{LATENCY}", "direction": "above"}
    last_event = api.vigil.bus.last_id

    async def submit(**values: str) -> httpx.Response:
        return await post_form(api, f"/alerts/rules/{LATENCY}", {**fields, **values})

    crossed = await submit(warning="300", critical="200", enabled="on")
    assert crossed.status_code == 422
    row = html(crossed).find("tr", id=f"rule-{LATENCY}")
    assert row.find(id=f"rule-error-{LATENCY}").text == (
        "✗ warning: must be below critical for direction 'above' (300 >= 200)"
    )
    warning = row.find("input", name="warning")
    assert (warning.attrs["value"], warning.attrs.get("aria-invalid")) == ("300", "true")

    typo = await submit(warning="1O0", critical="200", enabled="on")
    assert typo.status_code == 422
    message = html(typo).find(id=f"rule-error-{LATENCY}").text
    assert message == "✗ warning: '1O0' is not a number"
    assert (await api.vigil.store.get_rule(LATENCY)).warning == 100
    assert api.vigil.bus.last_id == last_event

    same = await submit(warning="100", critical="200", enabled="on")
    assert location(same) == f"/alerts?done=unchanged#rule-{LATENCY}"
    assert api.vigil.bus.last_id == last_event  # nothing written

    saved = await submit(warning="150.5", critical="200", enabled="on")
    assert location(saved) == f"/alerts?done=saved#rule-{LATENCY}"
    rule = await api.vigil.store.get_rule(LATENCY)
    assert (rule.warning, rule.critical, rule.updated_by) == (150.5, 200, "ana")
    [event] = await api.vigil.store.events_after(last_event)
    assert event.kind is EventKind.RULE_CHANGED
    assert event.data["changes"] == {"warning": [100.0, 150.5]}

    cleared = await submit(warning="", critical="200")  # no "enabled": the box is unticked
    assert location(cleared).endswith("done=saved#rule-gateway_latency")
    rule = await api.vigil.store.get_rule(LATENCY)
    assert (rule.warning, rule.enabled) == (None, False)
    shown = html(await api.client.get("/alerts")).find("tr", id=f"rule-{LATENCY}")
    assert (
        shown.has_class("disabled") and "checked" not in shown.find("input", name="enabled").attrs
    )

    unknown = await post_form(api, "/alerts/rules/no_such_rule", fields)
    assert unknown.status_code == 404


# -- one incident, the Overview, sections ---------------------------------------------------------


async def test_the_incident_page_has_its_timeline_and_chart_data(api: Api) -> None:
    await api.cycle({LATENCY: 50})
    [opened] = await api.breach(LATENCY, 150)
    [escalated] = await api.breach(LATENCY, 260)
    assert opened.incident is not None and escalated.kind is EventKind.INCIDENT_ESCALATED
    ident = opened.incident.id
    await api.vigil.acknowledge(ident, by="ana", notes="looking")
    await sign_in(api, "vic")
    page = html(await api.client.get(f"/incidents/{ident}"))
    section = page.find("section", id="incident")
    assert section.attrs["data-incident-id"] == str(ident)
    assert escalated.incident is not None
    assert page.find("h1").text == escalated.incident.message  # the message follows severity
    timeline = [li.find("p").text for li in section.find("ol", class_="timeline").find_all("li")]
    assert timeline == [
        f"Opened as ◆ Warning: {opened.incident.message}",
        "Escalated from warning to ▲ Critical at 260 ms",
        "Acknowledged by ana: looking",
    ]
    chart = json.loads(section.find("script", id="incident-chart-data").text)
    # the snapshot is the trigger's: the warning threshold it crossed when it opened (#5)
    assert chart["thresholds"] == {"warning": 100.0, "critical": 200.0, "at_trigger": 100.0}
    assert [p["mean"] for p in chart["points"]] == [50.0, 150.0, 150.0, 260.0, 260.0]
    assert section.find_all("form", method="post") == []  # a viewer

    assert (await api.client.get(f"/incidents/{uuid.uuid4()}")).status_code == 404
    malformed = await api.client.get("/incidents/not-an-id")
    assert malformed.status_code == 404 and "Not found" in html(malformed).find("h1").text


async def test_the_incident_chart_draws_its_own_rule_s_thresholds(api: Api) -> None:
    """Two rules on one metric: each incident's chart has its rule's name and thresholds."""
    await api.vigil.add_rule(
        Rule(name="slow_gateway", metric=LATENCY, unit="ms", warning=120, critical=300),
        by="ana",
    )
    events = await api.breach(LATENCY, 150)
    [slow] = [e.incident for e in events if e.incident and e.incident.rule == "slow_gateway"]
    await sign_in(api, "vic")
    page = html(await api.client.get(f"/incidents/{slow.id}"))
    chart = json.loads(page.find("script", id="incident-chart-data").text)
    assert chart["label"] == "Slow Gateway"
    shown = page.find(id="incident-rule")
    assert shown.find("a").attrs["href"] == "/rules/slow_gateway"
    assert "Slow Gateway" in shown.text and "instance" not in shown.text
    assert chart["thresholds"] == {"warning": 120.0, "critical": 300.0, "at_trigger": 120.0}


async def test_the_overview_shows_metrics_health_and_latest_incidents(api: Api) -> None:
    for value in (40, 60, 80, 120):
        await api.cycle({LATENCY: value, MEMORY: 300})
    await api.breach(LATENCY, 230)
    await sign_in(api, "vic")
    page = html(await api.client.get("/"))
    cards = page.find(id="cards").find_all("li", class_="card lvl-critical")
    assert [card.find("h3").text for card in cards] == ["Gateway Latency"]
    card = cards[0]
    assert card.find(class_="big").text == "230 ms"
    assert card.find(class_="thresholds").text == "◆ Warning ≥ 100 ms ▲ Critical ≥ 200 ms"
    points = card.find("polyline").attrs["points"].split()
    now = api.clock.now + timedelta(seconds=1)  # the page's hour ends just after now
    span = {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()}
    hour = await api.get(f"/api/metrics/{LATENCY}/history", params={**span, "max_points": 60})
    assert len(points) == len(hour.json()["points"]) >= 3  # the API's minute buckets
    assert min(points, key=lambda p: float(p.split(",")[1])).startswith("100.0,")  # the peak
    memory = page.find("li", id=f"card-{MEMORY}")
    assert memory.has_class("lvl-normal") and memory.find(class_="big").text == "300 MB"
    assert len(page.find(id="cards").find_all("li")) == 10

    health = page.find(id="health")
    monitor = facts(health)
    assert monitor["Leader"] == "★ Yes, this instance evaluates"
    assert monitor["Cycles"] == str(api.vigil.monitor.status().cycles)
    tasks = [row.find("code").text for row in health.find("tbody").find_all("tr")]
    assert "vigil.monitor" in tasks
    latest = page.find(id="latest").find_all("li")
    assert len(latest) == 1 and "Gateway Latency exceeded critical threshold" in latest[0].text
    # The script refreshes what no event announces every interval (at least 5 s), in seconds.
    interval = page.find("body").attrs["data-interval"]
    assert float(interval) == max(5.0, api.vigil.settings.interval)


async def test_sections_render_alone_for_live_updates(api: Api) -> None:
    await api.breach(LATENCY, 250)
    await sign_in(api, "vic")
    for path, name in (
        ("/sections/alerts/active", "active"),
        ("/sections/alerts/history?severity=critical", "history"),
        ("/sections/alerts/frequency?days=7", "frequency"),
        ("/sections/overview/cards", "cards"),
        ("/sections/overview/health", "health"),
        ("/sections/silences/snoozes", "snoozes"),
        ("/sections/silences/windows", "windows"),
        ("/sections/channels/list", "list"),
        ("/sections/channels/deliveries", "deliveries"),
    ):
        response = await api.client.get(path)
        assert response.status_code == 200, path
        assert "<html" not in response.text
        [section] = [n for n in html(response).children if isinstance(n, Node)]
        assert section.attrs["data-section"] == name
    week = html(await api.client.get("/sections/alerts/frequency?days=7"))
    assert len(json.loads(week.find("script", id="frequency-data").text)) == 7
    for page in ("alerts", "overview", "silences", "channels"):
        assert (await api.client.get(f"/sections/{page}/nothing")).status_code == 404
    api.client.cookies.clear()
    assert location(await api.client.get("/sections/alerts/active")).startswith("/login")


async def test_pages_accept_an_api_token_but_not_an_ingest_token(api: Api) -> None:
    viewer = await api.get("/alerts", role="viewer")
    assert viewer.status_code == 200
    assert html(viewer).find(class_="user-name").text == "viewer-bot"
    ingest = await api.get("/alerts", role="ingest")
    assert ingest.status_code == 403 and html(ingest).find("h1").text == "Not allowed"


async def test_static_files_are_served_and_stay_inside_their_folder(api: Api) -> None:
    for name in ("vigil.css", "vigil.js", "charts.js", "boot.js", "vendor/chart.umd.min.js"):
        response = await api.client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["etag"]
    script = await api.client.get("/static/vendor/chart.umd.min.js")
    assert "Chart.js v4.6.1" in script.text[:300]
    for path in ("/static/../templates/base.html", "/static/%2e%2e/pages/render.py", "/static/x"):
        assert (await api.client.get(path)).status_code == 404, path


async def test_two_apps_in_one_process_serve_each_its_own_vigil(
    api: Api, sqlite_template: Path, tmp_path: Path
) -> None:
    """Apps share their routes (built once a process, ``vigil.web.app``), never their state:
    each answers from its own Vigil, with its own accounts, also mounted side by side."""
    other_db = tmp_path / "other.db"
    shutil.copyfile(sqlite_template, other_db)
    async with running_api(f"sqlite+aiosqlite:///{other_db}") as other:
        await api.breach(LATENCY, 900)
        assert [i["rule"] for i in (await api.get("/api/alerts/active")).json()] == [LATENCY]
        assert (await other.get("/api/alerts/active")).json() == []
        host = FastAPI()
        host.mount("/a", api.app)
        host.mount("/b", other.app)
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
            for prefix, tokens, active in (("/a", api.tokens, 1), ("/b", other.tokens, 0)):
                mine = {"Authorization": f"Bearer {tokens['viewer']}"}
                answer = await client.get(f"{prefix}/api/alerts/active", headers=mine)
                assert answer.status_code == 200 and len(answer.json()) == active, prefix
            # A token is its own Vigil's: the other app has never heard of it.
            theirs = {"Authorization": f"Bearer {other.tokens['viewer']}"}
            assert (await client.get("/a/api/alerts/active", headers=theirs)).status_code == 401


async def test_pages_work_mounted_under_a_prefix(api: Api) -> None:
    host = FastAPI()
    host.mount("/vigil", api.app)
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
        sent = await client.get("/vigil/alerts", params={"status": "active"})
        assert location(sent) == "/vigil/login?next=/vigil/alerts%3Fstatus%3Dactive"
        form = html(await client.get(location(sent)))
        assert form.find("form").attrs["action"] == "/vigil/login"
        signed = await client.post(
            "/vigil/login", data={"name": "ana", "password": PASSWORD, "next": "/vigil/alerts"}
        )
        assert location(signed) == "/vigil/alerts"
        page = html(await client.get("/vigil/alerts"))
        assert page.find("body").attrs["data-root"] == "/vigil"
        assert page.find("link", rel="stylesheet").attrs["href"] == "/vigil/static/vigil.css"
        rule = page.find("form", id=f"rule-form-{LATENCY}")
        assert rule.attrs["action"] == f"/vigil/alerts/rules/{LATENCY}"
        assert rule.attrs["data-api"] == f"/vigil/api/alerts/config/{LATENCY}"
        assert (await client.get("/vigil/static/vigil.js")).status_code == 200
