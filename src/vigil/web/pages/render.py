"""Rendering pages: one Jinja2 environment per process, the filters the templates use, and
the headers every page carries.

Templates receive the API's own response models (``IncidentOut``, ``RuleOut`` ...), so a page
shows exactly what the JSON API would return, and the browser's script sees the same shapes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from vigil.core import Severity
from vigil.web.auth import Principal, web_state

# No inline script or style anywhere: the pages work under a strict policy.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

SEVERITY_ICONS = {"critical": "▲", "warning": "◆", "info": "●"}
LEVEL_ICONS = {"critical": "▲", "warning": "◆", "normal": "✓"}
STATUS_ICONS = {"active": "!", "acknowledged": "✔", "resolved": "✓"}


def iso(value: datetime | None) -> str:
    """The machine-readable UTC time of a ``<time datetime>``."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_text(value: datetime | None) -> str:
    """What a reader without JavaScript sees (the script replaces it with local time)."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    size = abs(value)
    if value == int(value) and size < 1e15:
        return f"{int(value):,}"
    digits = 2 if size < 10 else 1 if size < 1000 else 0
    return f"{value:,.{digits}f}"


def measured(value: float | None, unit: str = "") -> str:
    """A value with its unit: ``231.4 ms``, ``4.2%``, ``no data``."""
    if value is None:
        return "no data"
    text = number(value)
    if not unit:
        return text
    if unit == "%":
        return f"{text}%"
    if unit == "event":
        return f"{text} event{'' if value == 1 else 's'}"
    return f"{text} {unit}"


def threshold_input(value: float | None) -> str:
    """A threshold as an editable text: exact, without thousands separators."""
    if value is None:
        return ""
    return f"{value:g}" if abs(value) < 1e15 else repr(value)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" if seconds == 0 or minutes >= 10 else f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def json_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: nothing can close the tag."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def qs(params: Mapping[str, str]) -> str:
    """A query string for a link, ``""`` when there is nothing to say."""
    return "?" + urlencode(params) if params else ""


def page_numbers(page: int, pages: int, *, around: int = 2) -> list[int | None]:
    """Page links to show: the first, the last, a few around ``page``; ``None`` marks a gap."""
    shown = {1, pages, *range(max(1, page - around), min(pages, page + around) + 1)}
    numbers: list[int | None] = []
    previous = 0
    for number in sorted(shown):
        if previous and number - previous > 1:
            numbers.append(None)
        numbers.append(number)
        previous = number
    return numbers


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("vigil.web", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        iso=iso,
        utc_text=utc_text,
        number=number,
        measured=measured,
        threshold_input=threshold_input,
        duration=duration,
        json_script=json_script,
    )
    env.globals.update(
        qs=qs,
        page_numbers=page_numbers,
        severity_icons=SEVERITY_ICONS,
        level_icons=LEVEL_ICONS,
        status_icons=STATUS_ICONS,
    )
    return env


def header_context(request: Request, principal: Principal | None) -> dict[str, Any]:
    """What the header and the live script need on every page: who, the open incidents
    counted (from the live view), the event id the page's data is at, how often to refresh."""
    vigil = web_state(request).vigil
    context: dict[str, Any] = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal is not None else None,
        "root": request.scope.get("root_path", "").rstrip("/"),
        "open_count": 0,
        "worst": None,
        "last_event_id": 0,
        "refresh_seconds": max(5.0, vigil.settings.interval),
        "server_now": iso(vigil.clock()),
        "page": "",
        "title": "",
        "notice": None,
        "units": {},
        "names": {},
        "metric_names": [],
    }
    if principal is not None and vigil.running:
        rules = vigil.view.rules
        context["units"] = {metric: rule.unit for metric, rule in rules.items()}
        context["names"] = {metric: rule.display_name for metric, rule in rules.items()}
        context["metric_names"] = sorted(
            ((metric, rule.display_name) for metric, rule in rules.items()), key=lambda x: x[1]
        )
        counts = vigil.view.summary()
        context["open_count"] = sum(counts.values())
        worst = [s for s in sorted(Severity, key=lambda s: -s.rank) if counts[s]]
        context["worst"] = worst[0].value if worst else None
        context["last_event_id"] = vigil.bus.last_id
    return context


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
