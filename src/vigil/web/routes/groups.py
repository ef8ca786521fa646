"""``/api/alerts/groups``: incident groups with their members, and acknowledging a group.

A group's status is its members': ``resolved`` when all are, ``acknowledged`` when every
open one is, else ``active``. Listing reads the database (groups are history too), through
the read cache (``vigil.web.cache``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from vigil.core.grouping import GroupSummary
from vigil.core.incidents import Severity, Status
from vigil.web.auth import Admin, Viewer, web_state
from vigil.web.errors import responses
from vigil.web.schemas import IncidentAction, IncidentOut, UtcOut

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

MAX_GROUPS = 200


class GroupOut(BaseModel):
    id: uuid.UUID
    label: str | None = Field(description="The label of the related rules that formed it.")
    status: Status = Field(description="Derived from the members: resolved when all are.")
    severity: Severity = Field(description="The most severe member's severity.")
    size: int = Field(description="How many incidents are in it.")
    open: int = Field(description="How many of them are still open.")
    opened_at: UtcOut
    resolved_at: UtcOut | None = Field(description="When its last member resolved.")
    headline: str = Field(description='As notifications say it: "3 incidents: ...".')
    members: list[IncidentOut] = Field(description="Its incidents, in the order they opened.")

    @classmethod
    def of(cls, group: GroupSummary, *, now: datetime) -> GroupOut:
        return cls(
            id=group.id,
            label=group.label,
            status=group.status,
            severity=group.severity,
            size=group.size,
            open=group.open_count,
            opened_at=group.opened_at,
            resolved_at=group.resolved_at,
            headline=group.headline(),
            members=[IncidentOut.of(member, now=now) for member in group.members],
        )


@router.get(
    "/groups",
    responses=responses(401, 403, 422, 503),
    summary="Incident groups with their members, newest first",
    description="`status`: `open` (any member open), `active`, `acknowledged` or `resolved`. "
    "`min_size` 2 leaves out incidents that were alone in their group.",
)
async def list_groups(
    request: Request,
    _: Viewer,
    status: Literal["open", "active", "acknowledged", "resolved"] | None = None,
    min_size: Annotated[int, Query(ge=1, le=1000)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_GROUPS)] = 50,
) -> list[GroupOut]:
    state = web_state(request)
    vigil = state.vigil
    # Through the read cache, as the other history reads: a group changes with an event
    # (opened, acknowledged, resolved) or a cycle (its members' values).
    found = await state.cache.get(
        ("groups", status, min_size, limit),
        lambda: vigil.store.list_groups(status=status, limit=limit, min_size=min_size),
    )
    now = vigil.clock()
    return [GroupOut.of(group, now=now) for group in found]


@router.get(
    "/groups/{group_id:uuid}",
    responses=responses(401, 403, 404, 503),
    summary="One incident group with its members",
)
async def get_group(request: Request, group_id: uuid.UUID, _: Viewer) -> GroupOut:
    vigil = web_state(request).vigil
    return GroupOut.of(await vigil.store.get_group(group_id), now=vigil.clock())


@router.post(
    "/groups/{group_id:uuid}/acknowledge",
    responses=responses(401, 403, 404, 409, 422, 503),
    summary="Acknowledge a group: each of its active members",
    description="Acknowledged and resolved members stay as they are; 409 when no member is "
    "active. One notification tells of it. Returns the group as it is now.",
)
async def acknowledge_group(
    request: Request,
    group_id: uuid.UUID,
    principal: Admin,
    body: Annotated[IncidentAction | None, Body()] = None,
) -> GroupOut:
    vigil = web_state(request).vigil
    notes = body.notes if body is not None else None
    await vigil.acknowledge_group(group_id, by=principal.name, notes=notes)
    return GroupOut.of(await vigil.store.get_group(group_id), now=vigil.clock())
