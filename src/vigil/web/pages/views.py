"""The pages people read: the Overview, Alerts & Incidents, one incident, and their sections.

A section (``/sections/...``) is the same template the page includes, rendered alone with the
same reads: the browser's script swaps it in when the event stream says something changed, so
live updates and the page without JavaScript come from one template.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from vigil.core import NotFoundError, ValidationError
from vigil.web.auth import Principal
from vigil.web.pages.data import ALERTS_SECTIONS, OVERVIEW_SECTIONS, Reads, incident_detail, load
from vigil.web.pages.filters import FREQUENCY_DAYS, HistoryFilters
from vigil.web.pages.render import header_context, render
from vigil.web.pages.route import PageRoute, Reader

router = APIRouter(route_class=PageRoute, include_in_schema=False)

NOTICES = {
    "acknowledged": "Incident acknowledged.",
    "acknowledged-all": "Every active incident acknowledged.",
    "resolved": "Incident resolved.",
    "saved": "Rule saved.",
    "unchanged": "Nothing to save: the rule is as it was.",
    "channel-added": "Channel added.",
    "channel-saved": "Channel saved.",
    "channel-removed": "Channel removed.",
    "channel-tested": "Test message delivered.",
    "snoozed": "Rule snoozed.",
    "snooze-ended": "Snooze ended: the rule is watched again.",
    "window-added": "Maintenance window added.",
    "window-removed": "Maintenance window removed.",
}


def base_context(request: Request, principal: Principal, page: str, title: str) -> dict[str, Any]:
    """What every page's template needs: the header's facts, the page and the notice that a
    redirect after an action asked for (``?done=``)."""
    # Read first: the event id the page is at must not be newer than its data.
    context = header_context(request, principal)
    done = request.query_params.get("done", "")
    context.update(page=page, title=title, notice=NOTICES.get(done))
    return context


@router.get("/", response_class=HTMLResponse, name="overview")
async def overview(request: Request, principal: Reader) -> HTMLResponse:
    context = base_context(request, principal, "overview", "Overview")
    context.update(
        await load(OVERVIEW_SECTIONS, list(OVERVIEW_SECTIONS), Reads(request, principal))
    )
    return render(request, "overview.html", context)


async def alerts_page(
    request: Request,
    principal: Principal,
    filters: HistoryFilters,
    *,
    rule_error: tuple[str, ValidationError] | None = None,
    rule_form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The whole Alerts & Incidents page; with ``rule_error``, a rule form sent without
    JavaScript is shown again with its values and what was wrong."""
    context = base_context(request, principal, "alerts", "Alerts & Incidents")
    context.update(alerts_extras(filters, rule_error=rule_error, rule_form=rule_form))
    context.update(
        await load(ALERTS_SECTIONS, list(ALERTS_SECTIONS), Reads(request, principal, filters))
    )
    return render(request, "alerts.html", context, status_code=status_code)


def alerts_extras(
    filters: HistoryFilters,
    *,
    rule_error: tuple[str, ValidationError] | None = None,
    rule_form: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "filters": filters,
        "frequency_choices": FREQUENCY_DAYS,
        "rule_error": rule_error,
        "rule_form": rule_form or {},
    }


@router.get("/alerts", response_class=HTMLResponse, name="alerts")
async def alerts(request: Request, principal: Reader) -> HTMLResponse:
    return await alerts_page(request, principal, HistoryFilters.parse(request.query_params))


@router.get("/incidents/{incident_id}", response_class=HTMLResponse, name="incident")
async def incident(request: Request, incident_id: str, principal: Reader) -> HTMLResponse:
    context = base_context(request, principal, "incident", "Incident")
    context.update(await incident_detail(Reads(request, principal), incident_id))
    return render(request, "incident.html", context)


# -- sections, for live updates ---------------------------------------------------------------


@router.get("/sections/alerts/{name}", response_class=HTMLResponse)
async def alerts_section(request: Request, name: str, principal: Reader) -> HTMLResponse:
    loader = ALERTS_SECTIONS.get(name)
    if loader is None:
        raise NotFoundError("section", name)
    filters = HistoryFilters.parse(request.query_params)
    context = base_context(request, principal, "alerts", "")
    context.update(alerts_extras(filters))
    context.update(await loader(Reads(request, principal, filters)))
    return render(request, f"alerts/{name}.html", context)


@router.get("/sections/overview/{name}", response_class=HTMLResponse)
async def overview_section(request: Request, name: str, principal: Reader) -> HTMLResponse:
    loader = OVERVIEW_SECTIONS.get(name)
    if loader is None:
        raise NotFoundError("section", name)
    context = base_context(request, principal, "overview", "")
    context.update(await loader(Reads(request, principal)))
    return render(request, f"overview/{name}.html", context)


@router.get("/sections/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_section(request: Request, incident_id: str, principal: Reader) -> HTMLResponse:
    context = base_context(request, principal, "incident", "")
    context.update(await incident_detail(Reads(request, principal), incident_id))
    return render(request, "incident/detail.html", context)
