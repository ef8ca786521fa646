"""What pages change, as plain form POSTs that redirect back (POST/redirect/GET): signing in
and out, acting on incidents, editing a rule. With JavaScript the browser calls the JSON API
instead and stays on the page; these are the same actions for a browser without it.

Each action goes through the API's route function or auth helper, so the checks, the events
and the error messages are the API's.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from vigil.core import Direction, NotFoundError, Rule, ValidationError
from vigil.web.auth import Principal, principal_from, sign_in, sign_out, web_state
from vigil.web.errors import NotAuthenticatedError, RateLimitedError
from vigil.web.pages.data import incident_uuid
from vigil.web.pages.filters import HistoryFilters
from vigil.web.pages.forms import authorize_form, checked, local_path, read_form, validated
from vigil.web.pages.render import header_context, render
from vigil.web.pages.route import PageRoute
from vigil.web.pages.views import alerts_page
from vigil.web.routes import alerts as alerts_api
from vigil.web.schemas import IncidentAction, RuleUpdate

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_NAME = 100
MAX_PASSWORD = 1024


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def back(request: Request, form: dict[str, str], *, done: str, default: str) -> RedirectResponse:
    """303 to the page the form came from (``next``), telling it what was done."""
    target = local_path(form.get("next"), default=_root(request) + default)
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "done"]
    query.append(("done", done))
    return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), 303)


# -- signing in and out -------------------------------------------------------------------------


async def _signed_in(request: Request) -> Principal | None:
    try:
        return await principal_from(request)
    except NotAuthenticatedError:  # a bad token on the sign-in page: show the form
        return None


def _login_form(
    request: Request, *, next_path: str, name: str = "", error: str | None = None, status: int
) -> HTMLResponse:
    context = header_context(request, None)
    context.update(page="login", title="Sign in", next=next_path, name=name, error=error)
    return render(request, "login.html", context, status_code=status)


@router.get("/login", response_class=HTMLResponse, name="login")
async def login_page(request: Request) -> Response:
    next_path = local_path(request.query_params.get("next"), default=_root(request) + "/")
    if await _signed_in(request) is not None:
        return RedirectResponse(next_path, 303)
    return _login_form(request, next_path=next_path, status=200)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_path = local_path(form.get("next"), default=_root(request) + "/")
    name, password = form.get("name", "").strip(), form.get("password", "")
    if not name or not password:
        return _login_form(
            request,
            next_path=next_path,
            name=name[:MAX_NAME],
            error="Enter your user name and your password.",
            status=422,
        )
    if len(name) > MAX_NAME or len(password) > MAX_PASSWORD or "\x00" in name + password:
        return _login_form(
            request, next_path=next_path, error="Wrong user name or password.", status=401
        )
    response = RedirectResponse(next_path, 303)
    try:
        await sign_in(request, response, name, password)
    except NotAuthenticatedError:
        web_state(request).metrics.sign_in_failures.inc()
        return _login_form(
            request,
            next_path=next_path,
            name=name,
            error="Wrong user name or password.",
            status=401,
        )
    except RateLimitedError as exc:
        web_state(request).metrics.sign_in_failures.inc()
        wait = max(1, math.ceil(exc.retry_after))
        page = _login_form(
            request,
            next_path=next_path,
            name=name,
            error=f"Too many failed sign-ins: try again in {wait} s.",
            status=429,
        )
        page.headers["Retry-After"] = str(wait)
        return page
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    principal = await _signed_in(request)
    if principal is not None:
        authorize_form(request, principal, form, admin=False)
    response = RedirectResponse(_root(request) + "/login", 303)
    sign_out(request, response)
    return response


# -- incidents ----------------------------------------------------------------------------------


def _notes(form: dict[str, str]) -> IncidentAction:
    return validated(IncidentAction, {"notes": form.get("notes", "").strip() or None})


@router.post("/alerts/incidents/acknowledge-all")
async def acknowledge_all(request: Request) -> Response:
    form = await read_form(request)
    principal = authorize_form(request, await principal_from(request), form, admin=True)
    await alerts_api.acknowledge_all(request, principal, _notes(form))
    return back(request, form, done="acknowledged-all", default="/alerts")


@router.post("/alerts/incidents/{incident_id}/acknowledge")
async def acknowledge(request: Request, incident_id: str) -> Response:
    form = await read_form(request)
    principal = authorize_form(request, await principal_from(request), form, admin=True)
    await alerts_api.acknowledge(request, incident_uuid(incident_id), principal, _notes(form))
    return back(request, form, done="acknowledged", default="/alerts")


@router.post("/alerts/incidents/{incident_id}/resolve")
async def resolve(request: Request, incident_id: str) -> Response:
    form = await read_form(request)
    principal = authorize_form(request, await principal_from(request), form, admin=True)
    await alerts_api.resolve(request, incident_uuid(incident_id), principal, _notes(form))
    return back(request, form, done="resolved", default="/alerts")


# -- rules --------------------------------------------------------------------------------------


def rule_changes(rule: Rule, form: dict[str, str]) -> dict[str, Any]:
    """What a rule row's form changes: only fields that differ from the rule. An empty
    threshold clears it; an unchecked box is ``enabled: false``."""
    wanted: dict[str, Any] = {}
    for name in ("warning", "critical"):
        text = form.get(name, "").strip().replace(",", ".") if name in form else None
        if text is None:
            continue
        if text == "":
            wanted[name] = None
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValidationError(name, f"{text[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise ValidationError(name, "must be a finite number")
        wanted[name] = value
    if "direction" in form:
        try:
            wanted["direction"] = Direction(form["direction"])
        except ValueError:
            raise ValidationError("direction", "must be 'above' or 'below'") from None
    wanted["enabled"] = checked(form, "enabled")
    return {name: value for name, value in wanted.items() if getattr(rule, name) != value}


@router.post("/alerts/rules/{metric}", response_class=HTMLResponse)
async def update_rule(request: Request, metric: str) -> Response:
    form = await read_form(request)
    principal = authorize_form(request, await principal_from(request), form, admin=True)
    rule = web_state(request).vigil.view.rules.get(metric)
    if rule is None:
        raise NotFoundError("rule", metric)
    try:
        changes = rule_changes(rule, form)
        if not changes:
            return back(request, form, done="unchanged", default="/alerts")
        update = validated(RuleUpdate, changes)
        await alerts_api.update_rule(request, metric, update, principal)
    except ValidationError as exc:
        next_path = local_path(form.get("next"), default="/alerts")
        filters = HistoryFilters.parse(dict(parse_qsl(urlsplit(next_path).query)))
        return await alerts_page(
            request,
            principal,
            filters,
            rule_error=(metric, exc),
            rule_form=form,
            status_code=422,
        )
    return back(request, form, done="saved", default="/alerts")
