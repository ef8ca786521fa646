"""One incident (``/incidents/{id}``): its facts, its timeline of events and a chart of its
metric around it; and the forms that acknowledge and resolve an incident (sent from this page
and from the open incidents on Alerts & Incidents)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from vigil.backtest import BandStep
from vigil.core import Event, Kind, NotFoundError
from vigil.preview import band_history
from vigil.web.pages.forms import AdminForm, back, validated
from vigil.web.pages.render import base_context, render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.sections import Context, Reads
from vigil.web.routes import alerts as alerts_api
from vigil.web.routes import metrics as metrics_api
from vigil.web.routes.rules import band_out
from vigil.web.schemas import BandStepOut, IncidentAction

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# Ranges end just after now: the last cycle's samples are stamped now, and ends are exclusive.
LATEST = timedelta(seconds=1)
CHART_POINTS = 300
PAD_CYCLES = 4  # monitor cycles shown at least before and after an incident
MIN_PAD = timedelta(minutes=1)
MAX_CALM = timedelta(minutes=15)  # the most calm shown beside a short incident
TIMELINE_LIMIT = 200


async def incident_events(reads: Reads, incident_id: uuid.UUID) -> list[Event]:
    """The incident's events in order: its timeline (the same read as
    ``GET /api/alerts/incidents/{id}/events``)."""
    return await reads.vigil.store.incident_events(incident_id, limit=TIMELINE_LIMIT)


def chart_window(
    triggered: datetime, resolved: datetime | None, now: datetime, *, interval: float
) -> tuple[datetime, datetime]:
    """The time range around an incident, zoomed to it: as much calm before it as it lasted
    (at least a few of the monitor's cycles, the readings that led to it), all of it, and
    (once it is resolved) as much again after it, never past now. A short incident is then
    a third of the chart or more, not a sliver of an hour."""
    end = resolved if resolved is not None else now
    cycles = min(timedelta(seconds=PAD_CYCLES * interval), MAX_CALM)
    pad = max(end - triggered, cycles, MIN_PAD)
    end = min(now, end + pad) + LATEST if resolved is not None else now + LATEST
    start = triggered - pad
    return start, max(end, start + timedelta(minutes=1))


@dataclass(frozen=True)
class Note:
    """A note written when acknowledging or resolving, with who wrote it and when."""

    text: str
    by: str | None
    at: datetime
    action: str  # "acknowledged" or "resolved"


def written_notes(events: list[Event]) -> dict[int, Note]:
    """Each event's note, by event id. An event keeps the note written with it
    (``data["note"]``); events stored before it did carry the incident's notes as they then
    were: the acknowledgement's own, and a resolution's when it differs from the one before."""
    notes: dict[int, Note] = {}
    before: str | None = None
    for event in events:
        if event.incident is None or event.id is None:
            continue
        action = {"incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}.get(
            event.kind.value
        )
        if action is None:
            continue
        text = event.data.get("note")
        if text is None and "note" not in event.data and event.incident.notes != before:
            text = event.incident.notes  # an older event: what changed with it
        if isinstance(text, str) and text:
            notes[event.id] = Note(text, event.by, event.at, action)
        before = event.incident.notes
    return notes


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
    start, end = chart_window(
        incident.triggered_at, incident.resolved_at, now, interval=reads.vigil.settings.interval
    )
    vigil = reads.vigil
    rule = vigil.view.rules.get(incident.rule)
    # An anomaly rule's band, as the monitor's evaluator learned and judged by: replayed over
    # the stored samples (the same code), from the window it learns from. For a rule split
    # per instance, the band and the readings are the incident's instance's.
    anomaly = rule is not None and rule.kind is Kind.ANOMALY
    instance = incident.instance if anomaly else None
    events, history, band = await asyncio.gather(
        incident_events(reads, incident.id),
        metrics_api.history(
            reads.request,
            reads.principal,
            metric=incident.metric,
            start=start,
            end=end,
            max_points=CHART_POINTS,
            instance=instance,
        ),
        band_history(
            vigil.store,
            rule,
            start=start,
            end=end,
            interval=vigil.settings.interval,
            own_instance=vigil.settings.instance,
            series=instance or "",
        )
        if rule is not None and anomaly
        else _no_band(),
    )
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
        "band": band_points(band_out(band)) if band else None,
    }
    return {
        "incident": incident,
        "events": events,
        "notes": written_notes(events),
        "rule": rule,
        "chart": chart,
        "history": history,
    }


async def _no_band() -> list[BandStep]:
    return []


def band_points(steps: list[BandStepOut]) -> list[dict[str, Any]]:
    """An anomaly band as ``charts.js`` draws it: steps of low, baseline and high."""
    return [
        {"t": s.time.isoformat(), "low": s.low, "baseline": s.baseline, "high": s.high}
        for s in steps
    ]


@router.get("/incidents/{incident_id}", response_class=HTMLResponse, name="incident")
async def incident(request: Request, incident_id: str, principal: Reader) -> HTMLResponse:
    context = base_context(request, principal, "incident", "Incident")
    context.update(await incident_detail(Reads(request, principal), incident_id))
    return render(request, "incident.html", context)


@router.get("/sections/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_section(request: Request, incident_id: str, principal: Reader) -> HTMLResponse:
    context = base_context(request, principal, "incident", "")
    context.update(await incident_detail(Reads(request, principal), incident_id))
    return render(request, "incident/detail.html", context)


# -- actions ----------------------------------------------------------------------------------


def notes_of(fields: dict[str, str]) -> IncidentAction:
    """An incident action's optional note, as the API takes it."""
    return validated(IncidentAction, {"notes": fields.get("notes", "").strip() or None})


@router.post("/alerts/incidents/{incident_id}/acknowledge")
async def acknowledge(request: Request, incident_id: str, form: AdminForm) -> Response:
    ident, notes = incident_uuid(incident_id), notes_of(form.fields)
    await alerts_api.acknowledge(request, ident, form.principal, notes)
    return back(request, form.fields, done="acknowledged", default="/alerts")


@router.post("/alerts/incidents/{incident_id}/resolve")
async def resolve(request: Request, incident_id: str, form: AdminForm) -> Response:
    ident, notes = incident_uuid(incident_id), notes_of(form.fields)
    await alerts_api.resolve(request, ident, form.principal, notes)
    return back(request, form.fields, done="resolved", default="/alerts")
