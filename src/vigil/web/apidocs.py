"""``/api/docs``: the interactive API reference, served entirely by this server.

Swagger UI comes from the npm registry (``swagger-ui-dist``, pinned in package-lock.json) and
is committed into the package's static files like Chart.js (``make vendor``;
tests/web/test_vendor.py checks the copy), so the page loads nothing from a CDN, works
offline, and runs under the dashboard's Content-Security-Policy: the page has no inline
script, its one script of ours is ``static/api-docs.js``. ``/docs`` redirects here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import escape

from vigil.web.pages.render import SECURITY_HEADERS, root_of

router = APIRouter(include_in_schema=False)

VENDOR = "static/vendor/swagger-ui"
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}/{vendor}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{root}/api/openapi.json"></div>
<script src="{root}/{vendor}/swagger-ui-bundle.js"></script>
<script src="{root}/static/api-docs.js"></script>
</body>
</html>
"""


@router.get("/api/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> HTMLResponse:
    page = PAGE.format(root=escape(root_of(request)), vendor=VENDOR)
    return HTMLResponse(page, headers=SECURITY_HEADERS)


@router.get("/docs")
async def docs(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{root_of(request)}/api/docs", 308)
