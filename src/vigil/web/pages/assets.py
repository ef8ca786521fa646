"""``/static/...``: the stylesheet, the scripts, and Chart.js (``static/vendor``, copied from
npm by ``make``). An ordinary GET route over Starlette's ``StaticFiles`` (path checks, ETag,
304), rather than a mount, so every route of the app has a path and methods."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request, Response
from starlette.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)


@cache
def files() -> StaticFiles:
    return StaticFiles(packages=[("vigil.web", "static")])


@router.get("/static/{path:path}", name="static")
async def static(path: str, request: Request) -> Response:
    response = await files().get_response(path, request.scope)
    # Revalidated each time (cheap: ETag, 304), so a new release never serves a stale script.
    response.headers.setdefault("Cache-Control", "no-cache")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
