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

from vigil.core import ValidationError
from vigil.core.localtime import wall_clock
from vigil.core.silences import Weekday, WindowKind
from vigil.web.auth import Principal
from vigil.web.pages.forms import AdminForm, back, checked, validated, whole_number
from vigil.web.pages.render import base_context, render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.sections import Context, Loader, Reads, load, section
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


async def snoozes_section(reads: Reads) -> Context:
    return {"snoozes": await silences_api.list_snoozes(reads.request, reads.principal)}


async def windows_section(reads: Reads) -> Context:
    return {"windows": await silences_api.list_windows(reads.request, reads.principal)}


SECTIONS: dict[str, Loader] = {"snoozes": snoozes_section, "windows": windows_section}


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
    context.update(await load(SECTIONS.values(), Reads(request, principal)))
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
    return await section(Reads(request, principal), SECTIONS, page="silences", name=name)


# -- snoozes ----------------------------------------------------------------------------------


@router.post("/silences/snoozes", response_class=HTMLResponse)
async def snooze(request: Request, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    try:
        metric = fields.get("metric", "")
        if not metric:
            raise ValidationError("metric", "choose the rule to snooze")
        minutes, reason = whole_number(fields, "minutes"), fields.get("reason", "")
        body = validated(silences_api.SnoozeIn, {"minutes": minutes, "reason": reason})
        await silences_api.snooze(request, metric, body, principal)
    except ValidationError as exc:
        return await silences_page(
            request, principal, problem=(SNOOZE_FORM, exc), sent=fields, status_code=422
        )
    return back(request, fields, done="snoozed", default="/silences")


@router.post("/silences/snoozes/{metric}/end")
async def end_snooze(request: Request, metric: str, form: AdminForm) -> Response:
    await silences_api.end_snooze(request, metric, form.principal)
    return back(request, form.fields, done="snooze-ended", default="/silences")


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
async def add_window(request: Request, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    try:
        window = validated(silences_api.WindowIn, window_fields(fields))
        await silences_api.add_window(request, window, principal)
    except ValidationError as exc:
        return await silences_page(
            request, principal, problem=(WINDOW_FORM, exc), sent=fields, status_code=422
        )
    return back(request, fields, done="window-added", default="/silences")


@router.post("/silences/windows/{name}/remove")
async def remove_window(request: Request, name: str, form: AdminForm) -> Response:
    await silences_api.delete_window(request, name, form.principal)
    return back(request, form.fields, done="window-removed", default="/silences")
