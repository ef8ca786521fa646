"""Who may call what: every API route of the app, from its router, against an explicit
policy, for anonymous callers, viewer and admin (token and session) and the ingest token.

A route added without a line in POLICY fails here, so none can be forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from vigil.runtime import Vigil
from vigil.settings import Settings
from vigil.web import create_app
from vigil.web.auth import CSRF_HEADER, SESSION_COOKIE

from .support import LATENCY, PASSWORD, Api, served

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

PUBLIC = "public"  # anyone, even anonymous
READ = "read"  # viewer or admin
ADMIN = "admin"
INGEST = "ingest"  # only a token with the ingest scope


@dataclass(frozen=True)
class Rule:
    policy: str
    body: Any = None
    csrf: bool = False  # a change that a cookie session must confirm with its CSRF token


WINDOW = {
    "name": "matrix",
    "kind": "weekly",
    "weekdays": ["sun"],
    "start_time": "01:00",
    "end_time": "02:00",
    "timezone": "UTC",
}
POLICY: dict[tuple[str, str], Rule] = {
    ("GET", "/api/alerts/config"): Rule(READ),
    ("GET", "/api/alerts/config/{metric}"): Rule(READ),
    ("PUT", "/api/alerts/config/{metric}"): Rule(ADMIN, {"unit": "ms"}, csrf=True),
    ("GET", "/api/alerts/rules"): Rule(READ),
    ("POST", "/api/alerts/rules"): Rule(
        ADMIN, {"name": "matrix", "metric": "queue_depth", "critical": 1}, csrf=True
    ),
    ("POST", "/api/alerts/rules/preview"): Rule(
        READ, {"name": "matrix", "metric": "queue_depth", "critical": 1, "since": "1h"}
    ),
    ("GET", "/api/alerts/rules/stats"): Rule(READ),
    ("GET", "/api/alerts/rules/{name:rule_name}"): Rule(READ),
    ("GET", "/api/alerts/rules/{name:rule_name}/suggestion"): Rule(READ),
    ("GET", "/api/alerts/rules/{name:rule_name}/stats"): Rule(READ),
    ("GET", "/api/alerts/rules/{name:rule_name}/events"): Rule(READ),
    ("PUT", "/api/alerts/rules/{name:rule_name}"): Rule(
        ADMIN, {"metric": "queue_depth", "critical": 2}, csrf=True
    ),
    ("PATCH", "/api/alerts/rules/{name:rule_name}"): Rule(ADMIN, {"unit": "ms"}, csrf=True),
    ("DELETE", "/api/alerts/rules/{name:rule_name}"): Rule(ADMIN, csrf=True),
    ("GET", "/api/alerts/active"): Rule(READ),
    ("GET", "/api/alerts/summary"): Rule(READ),
    ("GET", "/api/alerts/incidents"): Rule(READ),
    ("GET", "/api/alerts/incidents/{incident_id:uuid}"): Rule(READ),
    ("GET", "/api/alerts/incidents/{incident_id:uuid}/events"): Rule(READ),
    ("POST", "/api/alerts/incidents/acknowledge-all"): Rule(ADMIN, {}, csrf=True),
    ("POST", "/api/alerts/incidents/{incident_id:uuid}/acknowledge"): Rule(ADMIN, {}, csrf=True),
    ("POST", "/api/alerts/incidents/{incident_id:uuid}/resolve"): Rule(ADMIN, {}, csrf=True),
    ("GET", "/api/alerts/groups"): Rule(READ),
    ("GET", "/api/alerts/groups/{group_id:uuid}"): Rule(READ),
    ("POST", "/api/alerts/groups/{group_id:uuid}/acknowledge"): Rule(ADMIN, {}, csrf=True),
    ("GET", "/api/alerts/stats"): Rule(READ),
    ("GET", "/api/alerts/auto-recovery"): Rule(READ),
    ("GET", "/api/metrics"): Rule(READ),
    ("GET", "/api/metrics/{metric}/history"): Rule(READ),
    ("GET", "/api/channels"): Rule(READ),
    ("GET", "/api/channels/{name}"): Rule(READ),
    ("POST", "/api/channels"): Rule(
        ADMIN, {"name": "matrix", "url": "json://127.0.0.1"}, csrf=True
    ),
    ("PATCH", "/api/channels/{name}"): Rule(ADMIN, {"enabled": False}, csrf=True),
    ("DELETE", "/api/channels/{name}"): Rule(ADMIN, csrf=True),
    ("POST", "/api/channels/{name}/test"): Rule(ADMIN, csrf=True),
    ("GET", "/api/notifications"): Rule(READ),
    ("GET", "/api/escalations"): Rule(READ),
    ("GET", "/api/escalations/{name}"): Rule(READ),
    ("POST", "/api/escalations"): Rule(
        ADMIN, {"name": "matrix", "steps": [{"channels": ["nobody"]}]}, csrf=True
    ),
    ("PATCH", "/api/escalations/{name}"): Rule(ADMIN, {"repeat_minutes": 5}, csrf=True),
    ("DELETE", "/api/escalations/{name}"): Rule(ADMIN, csrf=True),
    ("GET", "/api/snoozes"): Rule(READ),
    ("PUT", "/api/snoozes/{metric}"): Rule(ADMIN, {"minutes": 5, "reason": "deploy"}, csrf=True),
    ("DELETE", "/api/snoozes/{metric}"): Rule(ADMIN, csrf=True),
    ("GET", "/api/maintenance"): Rule(READ),
    ("GET", "/api/maintenance/{name}"): Rule(READ),
    ("POST", "/api/maintenance"): Rule(ADMIN, WINDOW, csrf=True),
    ("DELETE", "/api/maintenance/{name}"): Rule(ADMIN, csrf=True),
    ("GET", "/api/health"): Rule(PUBLIC),
    ("POST", "/api/ingest"): Rule(
        INGEST, {"instance": "i", "samples": [{"metric": LATENCY, "value": 1}]}, csrf=True
    ),
    ("GET", "/api/events"): Rule(READ),
    ("GET", "/metrics"): Rule(READ),
    ("POST", "/api/auth/login"): Rule(PUBLIC, {"name": "vic", "password": PASSWORD}),
    ("POST", "/api/auth/logout"): Rule(PUBLIC, csrf=True),
    ("GET", "/api/auth/me"): Rule(READ),
    ("GET", "/api/openapi.json"): Rule(PUBLIC),
    ("GET", "/api/docs"): Rule(PUBLIC),
    ("GET", "/docs"): Rule(PUBLIC),
}

ALLOWED = {
    "anonymous": {PUBLIC},
    "viewer-token": {PUBLIC, READ},
    "viewer-session": {PUBLIC, READ},
    "admin-token": {PUBLIC, READ, ADMIN},
    "admin-session": {PUBLIC, READ, ADMIN},
    "ingest-token": {PUBLIC, INGEST},
}


DASHBOARD = "vigil.web.pages"  # the HTML pages: their own tests hold their policy


def routes_of(app: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path) of every route the app serves, included routers flattened, with the
    module of its endpoint."""
    found = {}
    for route in iter_route_contexts(app.routes):
        assert route.path is not None and route.methods, f"unexpected route {route!r}"
        module = getattr(route.endpoint, "__module__", "")
        for method in route.methods:
            if method != "HEAD":
                found[(method, route.path)] = module
    return found


def test_every_route_is_accounted_for(sqlite_url: str) -> None:
    """An API route without a POLICY line fails here; only the dashboard's pages, which
    answer with redirects and forms rather than JSON, are checked by their own tests."""
    vigil = Vigil(Settings(database_url=sqlite_url, secret_key="k" * 32))
    routes = routes_of(create_app(vigil))
    api = {route for route, module in routes.items() if not module.startswith(DASHBOARD)}
    assert api == set(POLICY), "every API route needs a line in POLICY"


Headers = Callable[[], Awaitable[dict[str, str]]]


async def status_of(
    client: httpx.AsyncClient, method: str, path: str, rule: Rule, headers: dict[str, str]
) -> int:
    client.cookies.clear()  # only the identity's own headers count
    kwargs: dict[str, Any] = {"headers": headers}
    if rule.body is not None:
        kwargs["json"] = rule.body
    async with client.stream(method, path, **kwargs) as response:
        return response.status_code  # never reads the body: /api/events streams on


async def test_every_route_against_the_policy(api: Api) -> None:
    [opened] = await api.breach(LATENCY, 150)
    assert opened.incident is not None
    # {name}: no channel or window has it, so a test message is never sent (404 is allowed).
    values = {
        "{metric}": LATENCY,
        "{incident_id:uuid}": str(opened.incident.id),
        "{group_id:uuid}": str(opened.incident.group or uuid.uuid4()),
        "{name}": "nobody",
        "{name:rule_name}": "nobody",
    }

    async with served(api.app) as (base, _), httpx.AsyncClient(base_url=base) as client:

        async def session(name: str) -> dict[str, str]:
            client.cookies.clear()
            response = await client.post(
                "/api/auth/login", json={"name": name, "password": PASSWORD}
            )
            cookie = response.cookies[SESSION_COOKIE]
            csrf = response.json()["csrf_token"]
            return {"Cookie": f"{SESSION_COOKIE}={cookie}", CSRF_HEADER: csrf}

        async def token(role: str) -> dict[str, str]:
            return api.auth(role)

        async def nobody() -> dict[str, str]:
            return {}

        identities: dict[str, Headers] = {
            "anonymous": nobody,
            "viewer-token": lambda: token("viewer"),
            "viewer-session": lambda: session("vic"),
            "admin-token": lambda: token("admin"),
            "admin-session": lambda: session("ana"),
            "ingest-token": lambda: token("ingest"),
        }
        failures = []
        for (method, template), rule in sorted(POLICY.items()):
            path = template
            for name, value in values.items():
                path = path.replace(name, value)
            for identity, headers in identities.items():
                status = await status_of(client, method, path, rule, await headers())
                allowed = rule.policy in ALLOWED[identity]
                if allowed:
                    ok = status not in (401, 403) and status < 500
                    expected = "allowed"
                else:
                    expected = "401" if identity == "anonymous" else "403"
                    ok = str(status) == expected
                if not ok:
                    failures.append(f"{method} {template} as {identity}: {status}, want {expected}")

            if rule.csrf and rule.policy in (ADMIN, PUBLIC):
                without = await session("ana")
                del without[CSRF_HEADER]
                status = await status_of(client, method, path, rule, without)
                if status != 403:
                    failures.append(f"{method} {template} by cookie without CSRF: {status}")
    assert failures == []
