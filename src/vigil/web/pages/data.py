"""What each page section shows, read the way the JSON API reads it.

Every loader calls the API's own route function (``vigil.web.routes``), so a page does exactly
the reads the API would, through the same read cache, and hands the templates the API's
response models. A page loads its sections concurrently (``asyncio.gather``). Hot data (open
incidents, the summary, rules, current values, health) comes from the live view, history from
the database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request

from vigil.core import Event, NotFoundError, ValidationError
from vigil.runtime import Vigil
from vigil.web.auth import Principal, web_state
from vigil.web.pages.filters import HistoryFilters
from vigil.web.routes import alerts as alerts_api
from vigil.web.routes import metrics as metrics_api
from vigil.web.routes import system as system_api

HISTORY_PAGE_SIZE = 25
RECOVERIES_SHOWN = 10
LATEST_SHOWN = 8
SPARKLINE_POINTS = 60
SPARKLINE_RANGE = timedelta(hours=1)
# Ranges end just after now: the last cycle's samples are stamped now, and ends are exclusive.
LATEST = timedelta(seconds=1)
CHART_POINTS = 300
TIMELINE_LIMIT = 200

Context = dict[str, Any]


@dataclass(frozen=True)
class Reads:
    """One request's reads: the request and caller the API route functions expect."""

    request: Request
    principal: Principal
    filters: HistoryFilters = field(default_factory=HistoryFilters)

    @property
    def vigil(self) -> Vigil:
        return web_state(self.request).vigil


# -- the Alerts & Incidents page ----------------------------------------------------------------


async def summary_section(reads: Reads) -> Context:
    return {"summary": await alerts_api.summary(reads.request, reads.principal)}


async def active_section(reads: Reads) -> Context:
    return {"active": await alerts_api.active(reads.request, reads.principal)}


async def rules_section(reads: Reads) -> Context:
    # /api/metrics answers both: every rule with its current value and level.
    current = await metrics_api.current(reads.request, reads.principal)
    # Which rules are silenced now, from the monitor's own cache (reloaded when a snooze or
    # window changes anywhere): the same answer the monitor acts on, without a query.
    vigil = reads.vigil
    quiet = vigil.silences
    await quiet.load()
    now = vigil.clock()
    windows: dict[str, list[str]] = {}
    for window in quiet.active_windows(now):
        for item in current:
            if window.applies_to(item.metric):
                windows.setdefault(item.metric, []).append(window.name)
    return {
        "rules": [item for item in current if item.rule is not None],
        "snoozed": {snooze.metric: snooze for snooze in quiet.active_snoozes(now)},
        "maintenance": windows,
    }


async def history_section(reads: Reads) -> Context:
    filters = reads.filters
    try:
        page = await alerts_api.history(
            reads.request,
            reads.principal,
            severity=filters.severity,
            status=filters.status,
            metric=filters.metric,
            start=filters.start,
            end=filters.end,
            page=filters.page,
            page_size=HISTORY_PAGE_SIZE,
        )
    except ValidationError as exc:  # the filters' own checks leave nothing for the store
        return {"history": None, "history_error": str(exc)}
    return {"history": page, "history_error": None}


async def recoveries_section(reads: Reads) -> Context:
    found = await alerts_api.auto_recovery(reads.request, reads.principal, limit=RECOVERIES_SHOWN)
    return {"recoveries": found}


async def frequency_section(reads: Reads) -> Context:
    days = reads.filters.days
    counts = await alerts_api.stats(reads.request, reads.principal, days=days)
    totals = {
        "total": sum(day.total for day in counts),
        "critical": sum(day.critical for day in counts),
        "warning": sum(day.warning for day in counts),
        "info": sum(day.info for day in counts),
    }
    return {
        "frequency": counts,
        "frequency_json": [day.model_dump(mode="json") for day in counts],
        "frequency_totals": totals,
        "frequency_days": days,
    }


Loader = Callable[[Reads], Awaitable[Context]]

ALERTS_SECTIONS: dict[str, Loader] = {
    "summary": summary_section,
    "active": active_section,
    "rules": rules_section,
    "history": history_section,
    "recoveries": recoveries_section,
    "frequency": frequency_section,
}


# -- the Overview -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spark:
    """A sparkline drawn on the server (an SVG polyline in a 0..100 x 0..30 box), so the card
    reads without JavaScript."""

    points: str
    warning_y: float | None
    critical_y: float | None
    low: float
    high: float
    samples: int


def sparkline(
    values: list[float], *, warning: float | None, critical: float | None
) -> Spark | None:
    if not values:
        return None
    marks = [v for v in (warning, critical) if v is not None]
    low, high = min([*values, *marks]), max([*values, *marks])
    if high == low:
        high, low = high + 1, low - 1
    span = high - low

    def y(value: float) -> float:
        return round(28 - (value - low) / span * 26, 2)

    step = 100 / max(1, len(values) - 1)
    points = " ".join(f"{round(i * step, 2)},{y(v)}" for i, v in enumerate(values))
    if len(values) == 1:
        points = f"0,{y(values[0])} 100,{y(values[0])}"
    return Spark(
        points=points,
        warning_y=y(warning) if warning is not None else None,
        critical_y=y(critical) if critical is not None else None,
        low=min(values),
        high=max(values),
        samples=len(values),
    )


async def cards_section(reads: Reads) -> Context:
    current = await metrics_api.current(reads.request, reads.principal)
    end = reads.vigil.clock() + LATEST
    # Every card's last hour in one query, however many metrics there are.
    histories = await reads.vigil.store.metric_histories(
        [item.metric for item in current],
        start=end - SPARKLINE_RANGE,
        end=end,
        max_points=SPARKLINE_POINTS,
    )
    cards = []
    for item in current:
        rule = item.rule
        spark = sparkline(
            [point.mean for point in histories[item.metric]],
            warning=rule.warning if rule else None,
            critical=rule.critical if rule else None,
        )
        cards.append({"metric": item, "spark": spark})
    return {"cards": cards}


async def health_section(reads: Reads) -> Context:
    health = await system_api.health(reads.request, reads.principal)
    return {"health": health}


async def latest_section(reads: Reads) -> Context:
    page = await alerts_api.history(reads.request, reads.principal, page=1, page_size=LATEST_SHOWN)
    return {"latest": page.items}


OVERVIEW_SECTIONS: dict[str, Loader] = {
    "cards": cards_section,
    "health": health_section,
    "latest": latest_section,
}


# -- one incident -------------------------------------------------------------------------------


async def incident_events(reads: Reads, incident_id: uuid.UUID) -> list[Event]:
    """The incident's events in order: its timeline. (The API has no such read yet; it would
    be ``GET /api/alerts/incidents/{id}/events``.)"""
    return await reads.vigil.store.incident_events(incident_id, limit=TIMELINE_LIMIT)


def chart_window(
    triggered: datetime, resolved: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The time range around an incident: some calm before it, all of it, and (once it is
    resolved) some calm after it, never past now."""
    end = resolved if resolved is not None else now
    pad = max(timedelta(minutes=15), (end - triggered) / 2)
    end = min(now, end + pad) + LATEST if resolved is not None else now + LATEST
    start = triggered - pad
    return start, max(end, start + timedelta(minutes=1))


def incident_uuid(text: str) -> uuid.UUID:
    """An incident id from a URL; a malformed one is simply not found."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFoundError("incident", text[:64]) from None


async def incident_detail(reads: Reads, incident_id: str) -> Context:
    ident = incident_uuid(incident_id)
    incident = await alerts_api.get_incident(reads.request, ident, reads.principal)
    now = reads.vigil.clock()
    start, end = chart_window(incident.triggered_at, incident.resolved_at, now)
    events, history = await asyncio.gather(
        incident_events(reads, incident.id),
        metrics_api.history(
            reads.request,
            reads.principal,
            metric=incident.metric,
            start=start,
            end=end,
            max_points=CHART_POINTS,
        ),
    )
    rule = reads.vigil.view.rules.get(incident.metric)
    chart = {
        "metric": incident.metric,
        "unit": rule.unit if rule else "",
        "label": rule.display_name if rule else incident.metric,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "triggered_at": incident.triggered_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "points": [
            {"t": point.time.isoformat(), "mean": point.mean, "min": point.min, "max": point.max}
            for point in history.points
        ],
        "thresholds": {
            "warning": rule.warning if rule else None,
            "critical": rule.critical if rule else None,
            "at_trigger": incident.threshold,
        },
    }
    return {
        "incident": incident,
        "events": events,
        "rule": rule,
        "chart": chart,
        "history": history,
    }


async def load(loaders: Mapping[str, Loader], names: list[str], reads: Reads) -> Context:
    """Several sections at once; their reads run concurrently."""
    context: Context = {}
    for part in await asyncio.gather(*(loaders[name](reads) for name in names)):
        context.update(part)
    return context
