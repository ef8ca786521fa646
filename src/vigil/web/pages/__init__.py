"""The dashboard: server-rendered HTML pages over the same reads and actions as the JSON API.

One module per page, each with its sections (``sections``) and its form actions: ``overview``,
``alerts``, ``rules``, ``incident``, ``silences`` (Snoozes & Maintenance), ``channels``,
``escalations`` (escalation policies) and ``login``; ``assets`` serves the static files. What
they share: ``render`` (templates, filters, the header), ``sections`` (reads and live
sections), ``forms`` (form bodies, the admin-form dependency, redirects back) and ``route``
(who may see a page, error pages).

``router`` holds them all; ``create_app`` includes it after the API's routers. Templates live
in ``vigil/web/templates``, the stylesheet and scripts in ``vigil/web/static``.
"""

from __future__ import annotations

from fastapi import APIRouter

from vigil.web.pages import (
    alerts,
    assets,
    channels,
    escalations,
    groups,
    incident,
    login,
    overview,
    rules,
    silences,
)

router = APIRouter(include_in_schema=False)
for module in (
    overview,
    alerts,
    groups,
    rules,
    incident,
    silences,
    channels,
    escalations,
    login,
    assets,
):
    router.include_router(module.router)

__all__ = ["router"]
