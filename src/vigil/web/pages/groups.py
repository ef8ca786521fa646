"""The Alerts page's incident groups (``/alerts#groups``): related incidents that opened
together, each group expandable to its members (``<details>``: works without JavaScript),
and the form that acknowledges a group.

Groups of one incident are left out: those are the active list's already.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from vigil.core import NotFoundError
from vigil.web.pages.forms import AdminForm, back
from vigil.web.pages.incident import notes_of
from vigil.web.pages.route import PageRoute
from vigil.web.pages.sections import Context, Reads
from vigil.web.routes import groups as groups_api

router = APIRouter(route_class=PageRoute, include_in_schema=False)

GROUPS_SHOWN = 10


async def groups_section(reads: Reads) -> Context:
    """The open groups, then the latest resolved ones, of two incidents or more."""
    open_groups = await groups_api.list_groups(
        reads.request, reads.principal, status="open", min_size=2, limit=GROUPS_SHOWN
    )
    recent = await groups_api.list_groups(
        reads.request, reads.principal, status="resolved", min_size=2, limit=GROUPS_SHOWN
    )
    return {"groups": open_groups, "resolved_groups": recent[: max(0, GROUPS_SHOWN // 2)]}


@router.post("/alerts/groups/{group_id}/acknowledge")
async def acknowledge_group(request: Request, group_id: str, form: AdminForm) -> Response:
    try:
        ident = uuid.UUID(group_id)
    except ValueError:
        raise NotFoundError("incident group", group_id) from None
    await groups_api.acknowledge_group(request, ident, form.principal, notes_of(form.fields))
    return back(request, form.fields, done="group-acknowledged", default="/alerts")
