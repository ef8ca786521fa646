"""Signing in (``/login``) and out (``/logout``) with plain forms, through the API's own
sign-in (the same checks, rate limits and session cookie)."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from vigil.web.auth import Principal, principal_from, sign_in, sign_out, web_state
from vigil.web.errors import NotAuthenticatedError, RateLimitedError
from vigil.web.pages.forms import authorize_form, local_path, read_form
from vigil.web.pages.render import header_context, render, root_of
from vigil.web.pages.route import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_NAME = 100
MAX_PASSWORD = 1024


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
    next_path = local_path(request.query_params.get("next"), default=root_of(request) + "/")
    if await _signed_in(request) is not None:
        return RedirectResponse(next_path, 303)
    return _login_form(request, next_path=next_path, status=200)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_path = local_path(form.get("next"), default=root_of(request) + "/")
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
    response = RedirectResponse(root_of(request) + "/login", 303)
    await sign_out(request, response)
    return response
