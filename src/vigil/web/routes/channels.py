"""``/api/channels`` and ``/api/notifications``: where incidents are sent, and what became of
each message.

Each change is a ``channel.*`` event naming who made it. A channel's URL holds its secrets
(webhook tokens, passwords), so no answer (and no event) shows it in full:
``url`` is masked (scheme and host, ``***`` for the rest). An edit may send that masked form
back unchanged, which keeps the stored URL. Reads are for viewers; changes and test messages
for admins.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from vigil.core import Severity
from vigil.core.digest import Delivery
from vigil.notify import DeliveryError, NotifyOn, load_sender
from vigil.notify.channels import MAX_RENOTIFY_MINUTES, MAX_URL
from vigil.store import OutboxStatus, StoredChannel
from vigil.web.auth import Admin, Viewer, web_state
from vigil.web.errors import responses
from vigil.web.schemas import NAME_REGEX, Changes, Shown, Text, UtcOut, optional

router = APIRouter(tags=["notifications"])

TEST_TIMEOUT = 30.0  # seconds a test message may take before the answer says it failed
MAX_LISTED = 200


class ChannelOut(BaseModel):
    name: str
    service: str = Field(description="What apprise makes of the URL: `Discord`, `JSON`, ...")
    url: str = Field(description="Masked: scheme and host; secrets and paths show as `***`.")
    min_severity: Severity
    events: list[NotifyOn]
    enabled: bool
    renotify_minutes: int | None
    delivery: Delivery = Field(
        description="`realtime`: each event as it happens; `hourly` or `daily`: one digest "
        "a period instead."
    )
    digest_at: str = Field(
        description="Local time (`HH:MM`) of a daily digest; an hourly one goes out at its "
        "minute past each hour."
    )
    timezone: str = Field(description="The IANA time zone of `digest_at`.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, stored: StoredChannel) -> ChannelOut:
        channel = stored.channel
        return cls(
            name=channel.name,
            service=channel.service.name,
            url=channel.redacted_url,
            min_severity=channel.min_severity,
            events=[on for on in NotifyOn if on in channel.events],
            enabled=channel.enabled,
            renotify_minutes=channel.renotify_minutes,
            delivery=channel.delivery,
            digest_at=channel.digest_at,
            timezone=channel.timezone,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
        )


Url = Annotated[Text, Field(min_length=1, max_length=MAX_URL)]
Renotify = Annotated[StrictInt | None, Field(ge=1, le=MAX_RENOTIFY_MINUTES)]
DigestAt = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Zone = Annotated[Text, Field(min_length=1, max_length=64)]  # checked against the zone database


class ChannelIn(BaseModel):
    """A new channel. apprise checks the URL; nothing is stored if it is refused."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_REGEX)
    url: Url = Field(
        description="An apprise URL: `discord://ID/TOKEN`, `mailtos://user:pass@host`, "
        "`json://host/path`, ..."
    )
    min_severity: Severity = Severity.INFO
    events: list[NotifyOn] = Field(default_factory=lambda: list(NotifyOn), min_length=1)
    enabled: StrictBool = True
    renotify_minutes: Renotify = Field(
        None,
        description="Resend an open, unacknowledged critical incident this often; null: never.",
    )
    delivery: Delivery = Delivery.REALTIME
    digest_at: DigestAt = "09:00"
    timezone: Zone = "UTC"


class ChannelUpdate(Changes):
    """Fields to change; a field left out keeps its value. ``url`` sent back in its masked
    form keeps the stored URL; ``renotify_minutes: null`` turns reminders off."""

    model_config = ConfigDict(extra="forbid")

    url: Url = optional()
    min_severity: Severity = optional()
    events: list[NotifyOn] = optional(min_length=1)
    enabled: StrictBool = optional()
    renotify_minutes: Renotify = None
    delivery: Delivery = optional()
    digest_at: DigestAt = optional()
    timezone: Zone = optional()


class TestOut(BaseModel):
    channel: str
    delivered: bool = Field(description="Always true: a failed test answers 502.")


class NotificationOut(Shown):
    """One message of the outbox: one event (or reminder) to one channel."""

    id: int
    channel: str
    incident_id: uuid.UUID | None
    event_id: int
    repeat: int = Field(description="0 for the event itself; n for the n-th reminder.")
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime | None = Field(
        description="When it is tried next; null once sent or given up on."
    )
    last_error: str | None
    sent_at: UtcOut | None
    created_at: datetime

    @model_validator(mode="after")
    def _no_next_attempt_unless_pending(self) -> Self:
        # The store keeps the last retry time of a message given up on; it has no next one.
        if self.status is not OutboxStatus.PENDING:
            self.next_attempt_at = None
        return self


@router.get("/api/channels", responses=responses(401, 403, 503), summary="Every channel")
async def list_channels(request: Request, _: Viewer) -> list[ChannelOut]:
    stored = await web_state(request).vigil.store.list_channels()
    return [ChannelOut.of(item) for item in stored]


@router.get("/api/channels/{name}", responses=responses(401, 403, 404, 503), summary="One channel")
async def get_channel(request: Request, name: str, _: Viewer) -> ChannelOut:
    return ChannelOut.of(await web_state(request).vigil.store.get_channel(name))


@router.post(
    "/api/channels",
    status_code=201,
    responses=responses(401, 403, 422, 503),
    summary="Add a channel",
    description="The URL is checked by apprise; a name already taken, an unsupported scheme "
    "or a URL its service refuses is a 422 naming the field.",
)
async def add_channel(request: Request, channel: ChannelIn, principal: Admin) -> ChannelOut:
    vigil = web_state(request).vigil
    return ChannelOut.of(await vigil.add_channel(channel.model_dump(), by=principal.name))


@router.patch(
    "/api/channels/{name}",
    responses=responses(401, 403, 404, 422, 503),
    summary="Change a channel",
    description="Fields left out keep their value. The name cannot change.",
)
async def update_channel(
    request: Request, name: str, changes: ChannelUpdate, principal: Admin
) -> ChannelOut:
    vigil = web_state(request).vigil
    return ChannelOut.of(await vigil.update_channel(name, changes.changes(), by=principal.name))


@router.delete(
    "/api/channels/{name}",
    status_code=204,
    responses=responses(401, 403, 404, 503),
    summary="Remove a channel",
    description="Its messages not yet delivered are marked failed, saying why.",
)
async def delete_channel(request: Request, name: str, principal: Admin) -> Response:
    await web_state(request).vigil.remove_channel(name, by=principal.name)
    return Response(status_code=204)


@router.post(
    "/api/channels/{name}/test",
    responses=responses(401, 403, 404, 502, 503),
    summary="Send a test message",
    description="Sent at once, whether or not the channel is enabled; not through the outbox.",
)
async def test_channel(request: Request, name: str, _: Admin) -> TestOut:
    vigil = web_state(request).vigil
    stored = await vigil.store.get_channel(name)
    sender = await load_sender()
    try:
        async with asyncio.timeout(TEST_TIMEOUT):
            await sender.send_test(
                stored.channel, base_url=vigil.settings.public_url, now=vigil.clock()
            )
    except TimeoutError:
        raise DeliveryError(name, f"no answer within {TEST_TIMEOUT:g} s") from None
    return TestOut(channel=name, delivered=True)


@router.get(
    "/api/notifications",
    responses=responses(401, 403, 422, 503),
    summary="Messages of the outbox, newest first",
    description="`status=failed` lists what was given up on, with the last error.",
)
async def list_notifications(
    request: Request,
    _: Viewer,
    status: OutboxStatus | None = None,
    incident_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 50,
) -> list[NotificationOut]:
    store = web_state(request).vigil.store
    found = await store.list_notifications(status=status, incident_id=incident_id, limit=limit)
    return [NotificationOut.of(item) for item in found]
