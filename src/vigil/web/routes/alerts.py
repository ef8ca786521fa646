"""``/api/alerts``: rules, incidents and their lifecycle, the summary and the statistics.

The active list and the summary come from the live view; history, statistics and
auto-recoveries from the database through the read cache.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request

from vigil.core import NotFoundError, Severity, Status
from vigil.core.validation import METRIC_PATTERN
from vigil.web.auth import Admin, Viewer, web_state
from vigil.web.errors import responses
from vigil.web.schemas import (
    METRIC_REGEX,
    RULE_NAME_REGEX,
    DayCountOut,
    EventOut,
    IncidentAction,
    IncidentOut,
    IncidentPage,
    RuleOut,
    RuleUpdate,
    SummaryOut,
    UtcDateTime,
)

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

READ = responses(401, 403, 503)
MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000


def known_metric(metric: str) -> str:
    """``metric`` from a path, or 404 at once when no rule can have that name."""
    if not METRIC_PATTERN.fullmatch(metric):
        raise NotFoundError("rule", metric)  # no rule can have this name
    return metric


# -- rules ------------------------------------------------------------------------------------


@router.get("/config", responses=READ, summary="Every rule")
async def list_rules(request: Request, _: Viewer) -> list[RuleOut]:
    rules = web_state(request).vigil.view.rules
    return [RuleOut.of(rules[metric]) for metric in sorted(rules)]


@router.get("/config/{metric}", responses=responses(401, 403, 404, 503), summary="One rule")
async def get_rule(request: Request, metric: str, _: Viewer) -> RuleOut:
    rule = web_state(request).vigil.view.rules.get(known_metric(metric))
    if rule is None:
        raise NotFoundError("rule", metric)
    return RuleOut.of(rule)


@router.put(
    "/config/{metric}",
    responses=responses(401, 403, 404, 422, 503),
    summary="Change a rule",
    description="Fields left out keep their value; `null` clears `warning`, `critical` or "
    "`recovery`. The change is validated as a whole (at least one threshold, their order...) "
    "and recorded as a `rule.changed` event naming who made it.",
)
async def update_rule(
    request: Request, metric: str, changes: RuleUpdate, principal: Admin
) -> RuleOut:
    vigil = web_state(request).vigil
    rule = await vigil.update_rule(known_metric(metric), changes.changes(), by=principal.name)
    return RuleOut.of(rule)


# -- incidents --------------------------------------------------------------------------------


@router.get("/active", responses=READ, summary="Open incidents, most severe first")
async def active(request: Request, _: Viewer) -> list[IncidentOut]:
    vigil = web_state(request).vigil
    now = vigil.clock()
    return [IncidentOut.of(incident, now=now) for incident in vigil.view.active()]


@router.get("/summary", responses=READ, summary="Open incidents counted")
async def summary(request: Request, _: Viewer) -> SummaryOut:
    view = web_state(request).vigil.view
    by_severity = view.summary()
    open_incidents = view.active()
    acknowledged = sum(1 for i in open_incidents if i.status is Status.ACKNOWLEDGED)
    return SummaryOut(
        total=len(open_incidents),
        active=len(open_incidents) - acknowledged,
        acknowledged=acknowledged,
        critical=by_severity[Severity.CRITICAL],
        warning=by_severity[Severity.WARNING],
        info=by_severity[Severity.INFO],
    )


@router.get(
    "/incidents",
    responses=responses(401, 403, 422, 503),
    summary="Incident history, newest first",
    description="`rule` is a rule's name, `metric` the metric watched. "
    "`start` is inclusive and `end` exclusive (trigger time). `page` counts from "
    "1; for deep pages pass the previous page's `next_cursor` as `cursor` with the same "
    "filters, which costs the same at any depth.",
)
async def history(
    request: Request,
    _: Viewer,
    severity: Severity | None = None,
    status: Status | None = None,
    metric: Annotated[str | None, Query(pattern=METRIC_REGEX)] = None,
    rule: Annotated[str | None, Query(pattern=RULE_NAME_REGEX)] = None,
    start: UtcDateTime | None = None,
    end: UtcDateTime | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> IncidentPage:
    state = web_state(request)
    vigil = state.vigil
    key = ("history", severity, status, metric, rule, start, end, page, page_size, cursor)

    async def load() -> IncidentPage:
        found = await vigil.store.incident_history(
            severity=severity,
            status=status,
            metric=metric,
            rule=rule,
            start=start,
            end=end,
            page=page,
            page_size=page_size,
            cursor=cursor,
        )
        return IncidentPage.of(found, now=vigil.clock())

    # Built once per change of the data; only open incidents' durations move with the clock.
    cached = await state.cache.get(key, load)
    return cached.at(vigil.clock())


@router.get(
    "/incidents/{incident_id:uuid}", responses=responses(401, 403, 404, 503), summary="One incident"
)
async def get_incident(request: Request, incident_id: uuid.UUID, _: Viewer) -> IncidentOut:
    vigil = web_state(request).vigil
    return IncidentOut.of(await vigil.store.get_incident(incident_id), now=vigil.clock())


@router.get(
    "/incidents/{incident_id:uuid}/events",
    responses=responses(401, 403, 404, 422, 503),
    summary="An incident's timeline",
    description="Its events, oldest first: opened, escalated, acknowledged (by whom, the note "
    "written with it in `data.note`), flapping, resolved (how, the note). Every note is kept "
    "here, where the incident itself holds only the latest. `limit`: 1 to 1,000 (200).",
)
async def incident_events(
    request: Request,
    incident_id: uuid.UUID,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[EventOut]:
    store = web_state(request).vigil.store
    await store.get_incident(incident_id)  # 404 for an unknown incident
    return [EventOut.of(e) for e in await store.incident_events(incident_id, limit=limit)]


ACTION = responses(401, 403, 404, 409, 422, 503)
Notes = Annotated[IncidentAction | None, Body()]


@router.post(
    "/incidents/acknowledge-all",
    responses=responses(401, 403, 422, 503),
    summary="Acknowledge every active incident",
    description="Returns the incidents this acknowledged (none when nothing was active).",
)
async def acknowledge_all(
    request: Request, principal: Admin, body: Notes = None
) -> list[IncidentOut]:
    vigil = web_state(request).vigil
    notes = body.notes if body is not None else None
    changed = await vigil.acknowledge_all(by=principal.name, notes=notes)
    now = vigil.clock()
    return [IncidentOut.of(incident, now=now) for incident in changed]


@router.post(
    "/incidents/{incident_id:uuid}/acknowledge",
    responses=ACTION,
    summary="Acknowledge an active incident",
)
async def acknowledge(
    request: Request, incident_id: uuid.UUID, principal: Admin, body: Notes = None
) -> IncidentOut:
    vigil = web_state(request).vigil
    notes = body.notes if body is not None else None
    incident = await vigil.acknowledge(incident_id, by=principal.name, notes=notes)
    return IncidentOut.of(incident, now=vigil.clock())


@router.post(
    "/incidents/{incident_id:uuid}/resolve",
    responses=ACTION,
    summary="Resolve an open incident by hand",
)
async def resolve(
    request: Request, incident_id: uuid.UUID, principal: Admin, body: Notes = None
) -> IncidentOut:
    vigil = web_state(request).vigil
    notes = body.notes if body is not None else None
    incident = await vigil.resolve(incident_id, by=principal.name, notes=notes)
    return IncidentOut.of(incident, now=vigil.clock())


# -- statistics -------------------------------------------------------------------------------


@router.get(
    "/stats",
    responses=responses(401, 403, 422, 503),
    summary="Incidents per day by severity",
    description="Every UTC day of the last `days` (today included) is present, oldest first.",
)
async def stats(
    request: Request, _: Viewer, days: Annotated[int, Query(ge=1, le=365)] = 30
) -> list[DayCountOut]:
    state = web_state(request)
    vigil = state.vigil
    now = vigil.clock()
    key = ("stats", days, now.astimezone(UTC).date())

    async def load() -> list[DayCountOut]:
        counts = await vigil.store.frequency(days=days, now=now)
        return [DayCountOut.of(count) for count in counts]

    return await state.cache.get(key, load)


@router.get(
    "/auto-recovery",
    responses=responses(401, 403, 422, 503),
    summary="Incidents that resolved on their own",
    description="Most recent resolution first.",
)
async def auto_recovery(
    request: Request, _: Viewer, limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50
) -> list[IncidentOut]:
    state = web_state(request)
    vigil = state.vigil

    async def load() -> list[IncidentOut]:
        found = await vigil.store.auto_recoveries(limit=limit)
        now = vigil.clock()
        return [IncidentOut.of(incident, now=now) for incident in found]  # all resolved

    return await state.cache.get(("auto-recovery", limit), load)
