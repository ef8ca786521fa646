"""``/api/snoozes`` and ``/api/maintenance``: silences, when rules open no incident and send
nothing.

A snooze silences one rule for a while, with a reason, and ends by itself; a maintenance
window silences some rules (or all) once or every week. Either way readings still go to the
history. Each change is an event (``snooze.started``, ``maintenance.added`` ...) naming who
made it; reads are for viewers, changes for admins.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from vigil.core.silences import MAX_REASON, MaintenanceWindow, Weekday, WindowKind
from vigil.web.auth import Admin, Viewer, web_state
from vigil.web.errors import responses
from vigil.web.routes.alerts import known_metric
from vigil.web.schemas import METRIC_REGEX, NAME_REGEX, Shown, Text, UtcDateTime, utc

router = APIRouter(tags=["snoozes and maintenance"])

MAX_SNOOZE_MINUTES = 30 * 24 * 60
TIME_REGEX = r"^([01]\d|2[0-3]):[0-5]\d$"


# -- snoozes ----------------------------------------------------------------------------------


class SnoozeOut(Shown):
    metric: str
    until: datetime
    reason: str
    by: str
    created_at: datetime


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: StrictInt = Field(ge=1, le=MAX_SNOOZE_MINUTES, description="How long, from now.")
    reason: Text = Field(min_length=1, max_length=MAX_REASON, description="Why, for the others.")


@router.get("/api/snoozes", responses=responses(401, 403, 503), summary="Snoozed rules")
async def list_snoozes(request: Request, _: Viewer) -> list[SnoozeOut]:
    vigil = web_state(request).vigil
    found = await vigil.store.active_snoozes(now=vigil.clock())
    return [SnoozeOut.of(snooze) for snooze in found]


@router.put(
    "/api/snoozes/{metric}",
    responses=responses(401, 403, 404, 422, 503),
    summary="Snooze a rule",
    description="The rule opens no incident and sends nothing for `minutes`, then resumes by "
    "itself; its readings still go to the history. A snooze it already has is replaced.",
)
async def snooze(request: Request, metric: str, body: SnoozeIn, principal: Admin) -> SnoozeOut:
    vigil = web_state(request).vigil
    snoozed = await vigil.snooze(
        known_metric(metric),
        duration=timedelta(minutes=body.minutes),
        reason=body.reason,
        by=principal.name,
    )
    return SnoozeOut.of(snoozed)


@router.delete(
    "/api/snoozes/{metric}",
    status_code=204,
    responses=responses(401, 403, 404, 503),
    summary="End a snooze now",
    description="404 when the rule is not snoozed.",
)
async def end_snooze(request: Request, metric: str, principal: Admin) -> Response:
    vigil = web_state(request).vigil
    await vigil.end_snooze(known_metric(metric), by=principal.name)
    return Response(status_code=204)


# -- maintenance windows ----------------------------------------------------------------------


class WindowOut(BaseModel):
    name: str
    kind: WindowKind
    metrics: list[str] | None = Field(description="The rules it silences; null: every rule.")
    start: datetime | None
    end: datetime | None
    weekdays: list[Weekday] | None
    start_time: str | None = Field(description="Weekly: local time, `HH:MM`.")
    end_time: str | None
    timezone: str | None
    reason: str
    by: str | None
    active: bool = Field(description="Whether it silences its rules now.")
    next_change: datetime | None = Field(description="When `active` next changes; null: never.")

    @classmethod
    def of(cls, window: MaintenanceWindow, *, now: datetime) -> WindowOut:
        data = window.to_dict()
        return cls(
            **{**data, "start": utc(window.start), "end": utc(window.end)},
            active=window.is_active(now),
            next_change=window.next_change(now),
        )


LocalTime = Annotated[str, Field(pattern=TIME_REGEX)]
Metric = Annotated[str, Field(pattern=METRIC_REGEX)]


class WindowIn(BaseModel):
    """A one-off window (`start`, `end`) or a weekly one (`weekdays`, `start_time`,
    `end_time`, `timezone`; an end at or before the start ends the next day)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_REGEX)
    kind: WindowKind
    metrics: list[Metric] | None = Field(
        None, min_length=1, max_length=1000, description="Null or left out: every rule."
    )
    start: UtcDateTime | None = None
    end: UtcDateTime | None = None
    weekdays: list[Weekday] | None = Field(None, min_length=1, max_length=7)
    start_time: LocalTime | None = None
    end_time: LocalTime | None = None
    timezone: str | None = Field(
        None, max_length=64, description="IANA name, e.g. `Europe/Berlin`."
    )
    reason: Text = Field("", max_length=MAX_REASON)

    def data(self, *, by: str) -> dict[str, Any]:
        return {**self.model_dump(), "by": by}


@router.get(
    "/api/maintenance",
    responses=responses(401, 403, 503),
    summary="Every maintenance window",
    description="Past, present and future, by name.",
)
async def list_windows(request: Request, _: Viewer) -> list[WindowOut]:
    vigil = web_state(request).vigil
    now = vigil.clock()
    return [WindowOut.of(window, now=now) for window in await vigil.store.list_windows()]


@router.get(
    "/api/maintenance/{name}",
    responses=responses(401, 403, 404, 503),
    summary="One maintenance window",
)
async def get_window(request: Request, name: str, _: Viewer) -> WindowOut:
    vigil = web_state(request).vigil
    return WindowOut.of(await vigil.store.get_window(name), now=vigil.clock())


@router.post(
    "/api/maintenance",
    status_code=201,
    responses=responses(401, 403, 422, 503),
    summary="Add a maintenance window",
    description="An end before its start, a field of the other kind, an unknown time zone "
    "or rule, or a name already taken is a 422 naming the field; nothing is stored.",
)
async def add_window(request: Request, window: WindowIn, principal: Admin) -> WindowOut:
    vigil = web_state(request).vigil
    added = await vigil.add_maintenance(window.data(by=principal.name))
    return WindowOut.of(added, now=vigil.clock())


@router.delete(
    "/api/maintenance/{name}",
    status_code=204,
    responses=responses(401, 403, 404, 503),
    summary="Remove a maintenance window",
    description="The rules it silenced resume at once.",
)
async def delete_window(request: Request, name: str, principal: Admin) -> Response:
    await web_state(request).vigil.remove_maintenance(name, by=principal.name)
    return Response(status_code=204)
