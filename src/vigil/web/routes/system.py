"""Health, the live event stream and the Prometheus exposition (push ingestion: ``ingest``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from vigil.core import ValidationError
from vigil.metrics import TaskHealth
from vigil.runtime import Health
from vigil.runtime.groupcommit import GroupCommitStatus
from vigil.runtime.notifier import NotifierStatus
from vigil.runtime.series import SeriesStatus
from vigil.web.auth import MaybePrincipal, Viewer, access_check, web_state
from vigil.web.errors import responses
from vigil.web.live import EventStreamResponse
from vigil.web.schemas import utc

router = APIRouter(tags=["system"])


# -- health ---------------------------------------------------------------------------------


class TaskOut(BaseModel):
    name: str
    status: str
    last_heartbeat: datetime | None
    last_error: str | None
    age_s: float

    @classmethod
    def of(cls, task: TaskHealth) -> TaskOut:
        return cls(
            name=task.name,
            status=task.status.value,
            last_heartbeat=utc(task.last_heartbeat),
            last_error=task.last_error,
            age_s=task.age,
        )


class NotificationsOut(BaseModel):
    """The outbox: messages waiting, delivered and given up on (all instances), and this
    instance's last failed attempt."""

    dispatching: bool = Field(description="This instance is the leader, so it delivers.")
    pending: int
    sent: int
    failed: int = Field(description="Given up on after every attempt: see /api/notifications.")
    last_error: str | None
    last_error_at: datetime | None

    @classmethod
    def of(cls, status: NotifierStatus) -> NotificationsOut:
        return cls(
            dispatching=status.dispatching,
            pending=status.pending,
            sent=status.sent,
            failed=status.failed,
            last_error=status.last_error,
            last_error_at=utc(status.last_error_at),
        )


class IngestHealthOut(BaseModel):
    """Pushed samples on this instance: the bounded series model and what was refused."""

    series: int = Field(description="Distinct (instance, metric) pushed within the retention.")
    metrics: int = Field(description="Distinct metric names among them.")
    max_series: int
    max_metrics: int
    refused_samples: int = Field(description="Samples of new series refused for a cap (422).")
    evicted_series: int = Field(description="Series forgotten after the series retention.")
    shed_requests: int = Field(description="Ingest requests refused for load (429).")
    buffered_samples: int = Field(
        0, description="Pushed samples waiting for their transaction or being written."
    )
    buffer_capacity: int = Field(0, description="The most that may wait (VIGIL_INGEST_BUFFER).")
    flushes: int = Field(0, description="Transactions of pushed samples committed (group commit).")
    flushed_samples: int = Field(0, description="Samples those transactions stored.")
    flushed_pushes: int = Field(0, description="Pushes those transactions answered.")
    failed_flushes: int = Field(0, description="Transactions that failed (their pushes got 503).")
    last_flush_seconds: float | None = None

    @classmethod
    def of(
        cls, status: SeriesStatus, *, shed: int, buffer: GroupCommitStatus | None = None
    ) -> IngestHealthOut:
        writes = {}
        if buffer is not None:
            writes = {
                "buffered_samples": buffer.buffered,
                "buffer_capacity": buffer.capacity,
                "flushes": buffer.flushes,
                "flushed_samples": buffer.written,
                "flushed_pushes": buffer.pushes,
                "failed_flushes": buffer.failed,
                "last_flush_seconds": buffer.last_flush_seconds,
            }
        return cls(
            **writes,
            series=status.series,
            metrics=status.metrics,
            max_series=status.max_series,
            max_metrics=status.max_metrics,
            refused_samples=status.refused_samples,
            evicted_series=status.evicted_series,
            shed_requests=shed,
        )


class HealthDetails(BaseModel):
    instance: str
    leader: bool
    cycles: int
    cycles_late: int
    last_cycle_at: datetime | None
    last_cycle_seconds: float | None
    database_ok: bool
    last_error: str | None
    pending_samples: int
    dropped_samples: int
    series_overflow: dict[str, int] = Field(
        description="Split rules whose instances outnumber VIGIL_MAX_SERIES_PER_RULE: the "
        "series refused in the last cycle, by rule."
    )
    last_event_id: int
    stream_clients: int
    tasks: list[TaskOut]
    notifications: NotificationsOut
    ingest: IngestHealthOut | None

    @classmethod
    def of(cls, health: Health, *, clients: int, shed: int = 0) -> HealthDetails:
        status = health.monitor
        return cls(
            instance=status.instance,
            leader=status.leader,
            cycles=status.cycles,
            cycles_late=status.cycles_late,
            last_cycle_at=utc(status.last_cycle_at),
            last_cycle_seconds=status.last_cycle_seconds,
            database_ok=status.database_ok,
            last_error=status.last_error,
            pending_samples=status.pending_samples,
            dropped_samples=status.dropped_samples,
            series_overflow=dict(status.series_overflow),
            last_event_id=health.last_event_id,
            stream_clients=clients,
            tasks=[TaskOut.of(task) for task in health.tasks],
            notifications=NotificationsOut.of(health.notifications),
            ingest=None
            if health.series is None
            else IngestHealthOut.of(health.series, shed=shed, buffer=health.ingestion),
        )


class HealthOut(BaseModel):
    status: str = Field(description="`ok`, or `degraded` (database or a task failing).")
    details: HealthDetails | None = Field(description="For signed-in viewers and admins only.")


@router.get(
    "/api/health",
    summary="Liveness, and details for viewers",
    description="Needs no credentials. `status` is `ok`, or `degraded` when the database or "
    "a background task is failing; signed-in viewers and admins also get `details`.",
    responses=responses(503),
    openapi_extra={"security": [{}]},  # anonymous callers too: the schemes are optional
)
async def health(request: Request, principal: MaybePrincipal) -> HealthOut:
    state = web_state(request)
    health = state.vigil.health()  # NotStartedError: 503
    details = None
    if principal is not None and principal.can_read:
        details = HealthDetails.of(health, clients=state.live.clients, shed=state.ingest.shed)
    return HealthOut(status="ok" if health.ok else "degraded", details=details)


_STREAM_DOC = {
    200: {
        "description": "Server-Sent Events: one `id:`/`event:`/`data:` frame per event of the "
        "log, in id order; `data` is an Event as JSON. A `: keep-alive` comment every ~15 s.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **responses(401, 403, 422, 503),
}


@router.get(
    "/api/events",
    summary="The live event stream",
    description="Every event from now on; with `Last-Event-ID` (or `?last_event_id=`), every "
    "event after that id first, replayed from the log. The stream ends within a few seconds "
    "of its credential ending (token revoked, user removed, session signed out).",
    response_class=EventStreamResponse,
    status_code=200,
    responses=_STREAM_DOC,
)
async def events(
    request: Request,
    _: Viewer,
    last_event_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventStreamResponse:
    after = last_event_id
    if last_event_id_header is not None and last_event_id_header.strip():
        try:
            after = int(last_event_id_header.strip())
        except ValueError:
            after = -1
        if not 0 <= after < 2**63:
            raise ValidationError("Last-Event-ID", "must be an event id (an integer >= 0)")
    credential, check = access_check(request)
    return web_state(request).live.response(after, credential=credential, check=check)


@router.get(
    "/metrics",
    summary="Prometheus exposition",
    description="Needs a viewer or admin token (`Authorization: Bearer`), as Prometheus "
    "sends with `authorization: {credentials: ...}`.",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **responses(401, 403, 503),
    },
)
async def prometheus(request: Request, _: Viewer) -> Response:
    registry = web_state(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
