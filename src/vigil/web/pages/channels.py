"""The Channels page: where incidents are sent, a test message, and the deliveries that failed.

The list of channels is refreshed live on a ``channel.*`` event (a row someone is editing is
kept as it is), the deliveries every little while.

Viewers see the channels (their addresses masked, as the API shows them) and the deliveries;
admins also add, edit, test and remove channels with plain forms that redirect back. A form
that is refused is shown again with what was wrong next to it, and its values, except the
address: a secret typed into it is never sent back to the browser.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from vigil.core import NotFoundError, Severity, ValidationError
from vigil.core.digest import Delivery
from vigil.notify import DeliveryError, NotifyOn
from vigil.store import OutboxStatus
from vigil.web.auth import Principal
from vigil.web.pages.forms import AdminForm, back, checked, validated, whole_number
from vigil.web.pages.render import base_context, render
from vigil.web.pages.route import PageRoute, Reader
from vigil.web.pages.sections import Context, Loader, Reads, section
from vigil.web.routes import channels as channels_api
from vigil.web.routes import system as system_api

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FAILED_SHOWN = 20
ADD_FORM = "+add"  # the add form's key among the channels' forms: no channel can be named so

Problem = ValidationError | DeliveryError


async def list_section(
    reads: Reads,
    *,
    problem: tuple[str, Problem] | None = None,
    sent: dict[str, str] | None = None,
) -> Context:
    """The channels and their forms' values; with ``problem`` (the form it concerns, and the
    error), that form gets the values ``sent`` back and what was wrong."""
    channels = await channels_api.list_channels(reads.request, reads.principal)
    values = {channel.name: _shown(channel) for channel in channels}
    values[ADD_FORM] = _shown(None)
    if problem is not None and sent is not None:
        if problem[0] not in values:  # an edit refused of a channel removed meanwhile
            raise NotFoundError("channel", problem[0])
        masked = values[problem[0]]["url"]  # an edit shows the stored address masked again
        values[problem[0]] = {**_sent_back(sent), "url": masked}
    return {
        "channels": channels,
        "values": values,
        "problem": problem,
        "error_field": problem[1].field
        if problem is not None and isinstance(problem[1], ValidationError)
        else "",
        "severities": list(Severity),
        "notify_on": list(NotifyOn),
        "delivery_modes": list(Delivery),
        "add_form": ADD_FORM,
    }


async def deliveries_section(reads: Reads) -> Context:
    failed = await channels_api.list_notifications(
        reads.request,
        reads.principal,
        status=OutboxStatus.FAILED,
        incident_id=None,
        limit=FAILED_SHOWN,
    )
    waiting = await channels_api.list_notifications(
        reads.request,
        reads.principal,
        status=OutboxStatus.PENDING,
        incident_id=None,
        limit=channels_api.MAX_LISTED,
    )
    # Waiting after a failed attempt: failing now, and tried again later.
    retrying = [n for n in waiting if n.attempts > 0 and n.last_error][:FAILED_SHOWN]
    health = await system_api.health(reads.request, reads.principal)
    details = health.details
    return {
        "failed": failed,
        "retrying": retrying,
        "outbox": details.notifications if details is not None else None,
    }


# The list on a ``channel.*`` event, the deliveries now and then.
SECTIONS: dict[str, Loader] = {"list": list_section, "deliveries": deliveries_section}


async def channels_page(
    request: Request,
    principal: Principal,
    *,
    problem: tuple[str, Problem] | None = None,
    sent: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    reads = Reads(request, principal)
    context = base_context(request, principal, "channels", "Channels")
    context.update(await list_section(reads, problem=problem, sent=sent))
    context.update(await deliveries_section(reads))
    return render(request, "channels.html", context, status_code=status_code)


def _shown(channel: channels_api.ChannelOut | None) -> dict[str, Any]:
    """A channel form's values: the channel's (its address masked), or a new one's defaults."""
    if channel is None:
        events = list(NotifyOn)
        return {
            "name": "",
            "url": "",
            "min_severity": "info",
            "events": events,
            "renotify_minutes": "",
            "enabled": True,
            "delivery": Delivery.REALTIME.value,
            "digest_at": "09:00",
            "timezone": "UTC",
        }
    return {
        "name": channel.name,
        "url": channel.url,
        "min_severity": channel.min_severity.value,
        "events": channel.events,
        "renotify_minutes": channel.renotify_minutes or "",
        "enabled": channel.enabled,
        "delivery": channel.delivery.value,
        "digest_at": channel.digest_at,
        "timezone": channel.timezone,
    }


def _sent_back(form: dict[str, str]) -> dict[str, Any]:
    """A refused form's values as they were sent, except the address: it may hold a secret."""
    return {
        "name": form.get("name", ""),
        "url": "",
        "min_severity": form.get("min_severity", "info"),
        "events": [on for on in NotifyOn if checked(form, f"event_{on.value}")],
        "renotify_minutes": form.get("renotify_minutes", ""),
        "enabled": checked(form, "enabled"),
        "delivery": form.get("delivery", Delivery.REALTIME.value),
        "digest_at": form.get("digest_at", ""),
        "timezone": form.get("timezone", ""),
    }


@router.get("/channels", response_class=HTMLResponse, name="channels")
async def channels(request: Request, principal: Reader) -> HTMLResponse:
    return await channels_page(request, principal)


@router.get("/sections/channels/{name}", response_class=HTMLResponse)
async def channels_section(request: Request, name: str, principal: Reader) -> HTMLResponse:
    return await section(Reads(request, principal), SECTIONS, page="channels", name=name)


def channel_fields(form: dict[str, str]) -> dict[str, Any]:
    """What a channel form says, in the API's terms. An empty address is left out (an edit
    keeps the stored one); an empty reminder interval turns reminders off (null)."""
    fields: dict[str, Any] = {
        "min_severity": form.get("min_severity", Severity.INFO.value),
        "events": [on.value for on in NotifyOn if checked(form, f"event_{on.value}")],
        "enabled": checked(form, "enabled"),
    }
    url = form.get("url", "").strip()
    if url:
        fields["url"] = url
    fields["renotify_minutes"] = whole_number(form, "renotify_minutes")
    for name in ("delivery", "digest_at", "timezone"):
        value = form.get(name, "").strip()
        if value:  # left out: a form of an older page keeps the stored value
            fields[name] = value
    return fields


@router.post("/channels", response_class=HTMLResponse)
async def add_channel(request: Request, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    try:
        data = {"name": fields.get("name", "").strip(), **channel_fields(fields)}
        if "url" not in data:
            raise ValidationError("url", "is required: the channel's apprise URL")
        channel = validated(channels_api.ChannelIn, data)
        await channels_api.add_channel(request, channel, principal)
    except ValidationError as exc:
        return await channels_page(
            request, principal, problem=(ADD_FORM, exc), sent=fields, status_code=422
        )
    return back(request, fields, done="channel-added", default="/channels")


@router.post("/channels/{name}", response_class=HTMLResponse)
async def update_channel(request: Request, name: str, form: AdminForm) -> Response:
    fields, principal = form.fields, form.principal
    try:
        changes = validated(channels_api.ChannelUpdate, channel_fields(fields))
        await channels_api.update_channel(request, name, changes, principal)
    except ValidationError as exc:
        return await channels_page(
            request, principal, problem=(name, exc), sent=fields, status_code=422
        )
    return back(request, fields, done="channel-saved", default="/channels")


@router.post("/channels/{name}/test", response_class=HTMLResponse)
async def test_channel(request: Request, name: str, form: AdminForm) -> Response:
    try:
        await channels_api.test_channel(request, name, form.principal)
    except DeliveryError as exc:
        return await channels_page(request, form.principal, problem=(name, exc), status_code=502)
    return back(request, form.fields, done="channel-tested", default="/channels")


@router.post("/channels/{name}/remove")
async def remove_channel(request: Request, name: str, form: AdminForm) -> Response:
    await channels_api.delete_channel(request, name, form.principal)
    return back(request, form.fields, done="channel-removed", default="/channels")
