"""Rendering pages: one Jinja2 environment per process, the filters the templates use, what
every page's header needs, and the headers every page carries. Every page module renders
through ``base_context`` and ``render``.

Templates receive the API's own response models (``IncidentOut``, ``RuleOut`` ...), so a page
shows exactly what the JSON API would return, and the browser's script sees the same shapes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

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

# What a page says after an action sent the browser back to it (``?done=``, see ``forms.back``).
NOTICES = {
    "acknowledged": "Incident acknowledged.",
    "acknowledged-all": "Every active incident acknowledged.",
    "group-acknowledged": "Group acknowledged: each of its active incidents.",
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
    "escalation-added": "Escalation policy added.",
    "escalation-saved": "Escalation policy saved.",
    "escalation-removed": "Escalation policy removed: its incidents are notified as channels say.",
}

SEVERITY_ICONS = {"critical": "▲", "warning": "◆", "info": "●"}
LEVEL_ICONS = {"critical": "▲", "warning": "◆", "normal": "✓"}
STATUS_ICONS = {"active": "!", "acknowledged": "✔", "resolved": "✓"}


def iso(value: datetime | None) -> str:
    """The machine-readable UTC time of a ``<time datetime>``."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def precise(value: datetime) -> str:
    """A UTC time to the millisecond, for the browser's clock (``iso`` drops the fraction)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    """A value with its unit: ``231.4 ms``, ``4.2%``, ``no data`` (never split by a line)."""
    if value is None:
        return "no data"
    text = number(value)
    if not unit:
        return text
    if unit == "%":
        return f"{text}%"
    if unit == "event":
        unit = "event" if value == 1 else "events"
    return f"{text}\u00a0{unit}"


def threshold_input(value: float | None) -> str:
    """A threshold as an editable text: exact, without thousands separators."""
    if value is None:
        return ""
    return f"{value:g}" if abs(value) < 1e15 else repr(value)


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``1 h 5 min``, ``2 d 3 h``; no-break spaces keep each together."""
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        text = f"{minutes} min" if rest == 0 or minutes >= 10 else f"{minutes} min {rest} s"
    elif seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        text = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    else:
        days, hours = divmod(seconds // 3600, 24)
        text = f"{days} d {hours} h" if hours else f"{days} d"
    return text.replace(" ", "\u00a0")


def json_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: nothing can close the tag."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


# The small pieces every page repeats, as Python functions returning markup: a Jinja macro
# call (or Markup.format) costs several times more, and a page has hundreds of them.
_NO_DATA = Markup(
    '<span class="badge lvl-none"><span class="icon" aria-hidden="true">\u2013</span>'
    " No data</span>"
)
_AUTO = Markup('<span class="res res-auto"><span aria-hidden="true">↺</span> Auto</span>')
_OPEN = Markup('<span class="muted">open</span>')


_SEPARATOR = re.compile(r"([_.:/-])")


def ident(value: str) -> Markup:
    """An id (metric, rule, channel) that may wrap after its separators, so a long one
    breaks as ``discord_gateway_/reconnects`` rather than in the middle of a word."""
    return Markup(_SEPARATOR.sub(r"\1<wbr>", str(escape(value))))


def time_tag(value: datetime | None) -> Markup:
    """``<time>`` in UTC; the browser's script shows it relative and in local time."""
    if value is None:
        return Markup("—")
    return Markup(f'<time datetime="{iso(value)}" data-time>{utc_text(value)}</time>')


def _badge(prefix: str, icons: Mapping[str, str], value: str) -> Markup:
    word = escape(str(value))
    icon = icons.get(value, "")
    return Markup(
        f'<span class="badge {prefix}-{word}"><span class="icon" aria-hidden="true">{icon}'
        f"</span> {word.capitalize()}</span>"
    )


def severity_badge(value: str) -> Markup:
    return _badge("sev", SEVERITY_ICONS, value)


def status_badge(value: str) -> Markup:
    return _badge("st", STATUS_ICONS, value)


def level_badge(value: str | None) -> Markup:
    return _badge("lvl", LEVEL_ICONS, value) if value else _NO_DATA


def resolution(incident: Any) -> Markup:
    if incident.resolution == "auto":
        return _AUTO
    if incident.resolution == "manual":
        by = f" by {escape(incident.resolved_by)}" if incident.resolved_by else ""
        return Markup(
            f'<span class="res res-manual"><span aria-hidden="true">✎</span> Manual{by}</span>'
        )
    return _OPEN


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
        auto_reload=False,  # templates ship with the package: no stat() per include
    )
    env.filters.update(
        iso=iso,
        utc_text=utc_text,
        number=number,
        measured=measured,
        threshold_input=threshold_input,
        duration=duration,
        json_script=json_script,
        time_tag=time_tag,
        ident=ident,
        severity_badge=severity_badge,
        status_badge=status_badge,
        level_badge=level_badge,
        resolution=resolution,
    )
    env.globals.update(
        qs=qs,
        page_numbers=page_numbers,
        severity_icons=SEVERITY_ICONS,
        level_icons=LEVEL_ICONS,
        status_icons=STATUS_ICONS,
    )
    return env


def root_of(request: Request) -> str:
    """The path the app is mounted at (``""`` at the site's root), for links and redirects."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def header_context(request: Request, principal: Principal | None) -> dict[str, Any]:
    """What the header and the live script need on every page: who, the open incidents
    counted (from the live view), the event id the page's data is at, how often to refresh."""
    vigil = web_state(request).vigil
    context: dict[str, Any] = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal is not None else None,
        "root": root_of(request),
        "open_count": 0,
        "worst": None,
        "last_event_id": 0,
        "interval": max(5.0, vigil.settings.interval),  # seconds between periodic refreshes
        "server_now": iso(vigil.clock()),
        "page": "",
        "title": "",
        "notice": None,
        "units": {},
        "names": {},
        "rule_names": [],
    }
    if principal is not None and vigil.running:
        rules = vigil.view.rules
        # Keyed by rule name: an incident, a snooze and a window name their rule.
        context["units"] = {name: rule.unit for name, rule in rules.items()}
        context["names"] = {name: rule.display_name for name, rule in rules.items()}
        context["rule_names"] = sorted(
            ((name, rule.display_name) for name, rule in rules.items()), key=lambda x: x[1]
        )
        counts = vigil.view.summary()
        context["open_count"] = sum(counts.values())
        worst = [s for s in sorted(Severity, key=lambda s: -s.rank) if counts[s]]
        context["worst"] = worst[0].value if worst else None
        context["last_event_id"] = vigil.bus.last_id
    return context


def base_context(request: Request, principal: Principal, page: str, title: str) -> dict[str, Any]:
    """What every page's template needs: the header's facts, the page and the notice that a
    redirect after an action asked for (``?done=``)."""
    # Read first: the event id the page is at must not be newer than its data.
    context = header_context(request, principal)
    done = request.query_params.get("done", "")
    context.update(page=page, title=title, notice=NOTICES.get(done))
    return context


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    if "server_now" in context:
        # The server's time as the page leaves, to the millisecond: the browser compares it
        # with its own clock when the answer arrives, to count "2 min ago" from the server's.
        context = {**context, "server_now": precise(web_state(request).vigil.clock())}
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
