"""The dashboard: server-rendered HTML pages over the same reads and actions as the JSON API.

``router`` holds every page, its live sections, its form actions and the static files.
``create_app`` includes it after the API's routers. Templates live in ``vigil/web/templates``,
the stylesheet and scripts in ``vigil/web/static``.
"""

from __future__ import annotations

from fastapi import APIRouter

from vigil.web.pages import actions, assets, channels, silences, views

router = APIRouter(include_in_schema=False)
for module in (views, actions, channels, silences, assets):
    router.include_router(module.router)

__all__ = ["router"]
