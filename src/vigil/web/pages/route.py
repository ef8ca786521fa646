"""Who may see a page, and what a failed page shows: HTML, never the API's JSON errors.

``PageRoute`` turns the domain's exceptions into an error page with the status the API would
give (``vigil.web.errors.status_of``, the one mapping), except "not signed in", which sends
the browser to the sign-in page and back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from vigil.core import VigilError
from vigil.store import VigilStorageError
from vigil.web.auth import READ_ROLES, Principal, authorize, principal_from
from vigil.web.errors import NotAuthenticatedError, status_of
from vigil.web.pages.render import header_context, render, root_of

logger = logging.getLogger(__name__)

TITLES = {
    403: "Not allowed",
    404: "Not found",
    409: "Already changed",
    422: "Not accepted",
    429: "Too many attempts",
    503: "Unavailable",
}


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path  # the full path: under a mount it starts with the root path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(f"{root_of(request)}/login?next={quote(target, safe='/')}", 303)


def error_page(request: Request, exc: VigilError) -> Response:
    if isinstance(exc, NotAuthenticatedError):
        return login_redirect(request)
    status, _ = status_of(exc)
    message = str(exc)
    if isinstance(exc, VigilStorageError):
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
        message = "The database is unavailable; try again shortly."
    elif status == 500:
        logger.error("unmapped %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
        message = "Internal error."
    principal: Principal | None = getattr(request.state, "vigil_principal", None)
    try:
        context = header_context(request, principal)
    except VigilError:
        context = header_context(request, None)
    context.update(title=TITLES.get(status, "Error"), message=message, status=status)
    return render(request, "error.html", context, status_code=status)


class PageRoute(APIRoute):
    """An HTML route: domain errors become error pages (or a sign-in redirect)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except VigilError as exc:
                return error_page(request, exc)

        return page_handler


async def page_viewer(request: Request) -> Principal:
    """The signed-in viewer or admin (a bearer token works too); otherwise a sign-in redirect
    (no one) or 403 (an ``ingest`` token)."""
    return authorize(request, await principal_from(request), READ_ROLES)


Reader = Annotated[Principal, Depends(page_viewer)]
