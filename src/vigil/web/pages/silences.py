"""The Snoozes & Maintenance page: which rules are silenced now, by whom, why and until when,
and the planned maintenance windows.

Viewers see it all; admins also snooze a rule, end a snooze, and add or remove windows with
plain forms that redirect back (a refused form is shown again with what was wrong). The two
lists are sections of their own, refreshed live when a ``snooze.*`` or ``maintenance.*``
event arrives.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from functools import cache
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from vigil.core import NotFoundError, ValidationError
from vigil.core.localtime import wall_clock
from vigil.core.silences import Weekday, WindowKind
from vigil.web.auth import Principal, principal_from
from vigil.web.pages.actions import back
from vigil.web.pages.forms import authorize_form, checked, read_form, validated, whole_number
from vigil.web.pages.render import render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.views import base_context
from vigil.web.routes import silences as silences_api

router = APIRouter(route_class=PageRoute, include_in_schema=False)

SNOOZE_FORM = "snooze"
WINDOW_FORM = "window"
DURATIONS = (  # minutes, as the snooze form offers them
    (15, "15 minutes"),
    (30, "30 minutes"),
    (60, "1 hour"),
    (120, "2 hours"),
    (240, "4 hours"),
    (480, "8 hours"),
    (720, "12 hours"),
    (1440, "1 day"),
    (4320, "3 days"),
    (10080, "1 week"),
)


async def snoozes_section(request: Request, principal: Principal) -> dict[str, Any]:
    return {"snoozes": await silences_api.list_snoozes(request, principal)}


async def windows_section(request: Request, principal: Principal) -> dict[str, Any]:
    return {"windows": await silences_api.list_windows(request, principal)}


SECTIONS = {"snoozes": snoozes_section, "windows": windows_section}


@cache
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


async def silences_page(
    request: Request,
    principal: Principal,
    *,
    problem: tuple[str, ValidationError] | None = None,
    sent: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page; with ``problem`` (which form, what was wrong) that form is shown again with
    the values ``sent``."""
    context = base_context(request, principal, "silences", "Snoozes & Maintenance")
    for loader in SECTIONS.values():
        context.update(await loader(request, principal))
    # Only the refused form gets its values back; a missing field reads as "".
    values: dict[str, defaultdict[str, str]] = {
        form: defaultdict(str) for form in (SNOOZE_FORM, WINDOW_FORM)
    }
    if problem is not None:
        values[problem[0]].update(sent or {})
    context.update(
        problem=problem,
        error_field=problem[1].field if problem is not None else "",
        values=values,
        durations=DURATIONS,
        weekdays=list(Weekday),
        time_zones=time_zones(),
        snooze_form=SNOOZE_FORM,
        window_form=WINDOW_FORM,
    )
    return render(request, "silences.html", context, status_code=status_code)


@router.get("/silences", response_class=HTMLResponse, name="silences")
async def silences(request: Request, principal: Reader) -> HTMLResponse:
    return await silences_page(request, principal)


@router.get("/sections/silences/{name}", response_class=HTMLResponse)
async def silences_section(request: Request, name: str, principal: Reader) -> HTMLResponse:
    loader = SECTIONS.get(name)
    if loader is None:
        raise NotFoundError("section", name)
    context = base_context(request, principal, "silences", "")
    context.update(await loader(request, principal))
    return render(request, f"silences/{name}.html", context)


# -- snoozes ----------------------------------------------------------------------------------


@router.post("/silences/snoozes", response_class=HTMLResponse)
async def snooze(request: Request) -> Response:
    form = await read_form(request)
    principal = authorize_form(request, await principal_from(request), form, admin=True)
    try:
        metric = form.get("metric", "")
        if not metric:
            raise ValidationError("metric", "choose the rule to snooze")
        reason = form.get("reason", "")
        body = validated(
            silences_api.SnoozeIn, {"minutes": whole_number(form, "minutes"), "reason": reason}
        )
        await silences_api.snooze(request, metric, body, principal)
    except ValidationError as exc:
        return await silences_page(
            request, principal, problem=(SNOOZE_FORM, exc), sent=form, status_code=422
        )
    return back(request, form, done="snoozed", default="/silences")


@router.post("/silences/snoozes/{metric}/end")
async def end_snooze(request: Request, metric: str) -> Response:
    form = await read_form(request)
    principal = authorize_form(request, await principal_from(request), form, admin=True)
    await silences_api.end_snooze(request, metric, principal)
    return back(request, form, done="snooze-ended", default="/silences")


# -- maintenance windows ----------------------------------------------------------------------


def window_fields(form: dict[str, str]) -> dict[str, Any]:
    """What the window form says, in the API's terms. Its date-times are local time in the
    chosen zone (what ``<input type="datetime-local">`` sends); no rule ticked means all."""
    timezone = form.get("timezone", "").strip() or "UTC"
    metrics = sorted(name[len("rule_") :] for name in form if name.startswith("rule_"))
    fields: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "kind": form.get("kind", ""),
        "metrics": metrics or None,
        "reason": form.get("reason", "").strip(),
    }
    if fields["kind"] == WindowKind.WEEKLY:
        fields.update(
            weekdays=[day.value for day in Weekday if checked(form, f"day_{day.value}")] or None,
            start_time=form.get("start_time") or None,
            end_time=form.get("end_time") or None,
            timezone=timezone,
        )
    elif fields["kind"] == WindowKind.ONCE:
        fields.update(
            start=wall_clock("start", form.get("start"), timezone),
            end=wall_clock("end", form.get("end"), timezone),
        )
    else:
        raise ValidationError("kind", "choose one-off or weekly")
    return fields


@router.post("/silences/windows", response_class=HTMLResponse)
async def add_window(request: Request) -> Response:
    form = await read_form(request)
    principal = authorize_form(request, await principal_from(request), form, admin=True)
    try:
        window = validated(silences_api.WindowIn, window_fields(form))
        await silences_api.add_window(request, window, principal)
    except ValidationError as exc:
        return await silences_page(
            request, principal, problem=(WINDOW_FORM, exc), sent=form, status_code=422
        )
    return back(request, form, done="window-added", default="/silences")


@router.post("/silences/windows/{name}/remove")
async def remove_window(request: Request, name: str) -> Response:
    form = await read_form(request)
    principal = authorize_form(request, await principal_from(request), form, admin=True)
    await silences_api.delete_window(request, name, principal)
    return back(request, form, done="window-removed", default="/silences")
