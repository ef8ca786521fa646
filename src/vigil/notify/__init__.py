"""Notification channels through apprise: validation, message formatting and delivery
(JSON webhooks are posted directly, the way apprise would post them).

Importing this package imports apprise. The store imports it too (which channels want an
event, and the outbox's keys); the dispatcher lives in ``vigil.runtime.notifier``.
"""

from __future__ import annotations

from vigil.notify.channels import (
    ALL_EVENTS,
    Channel,
    NotifyOn,
    Service,
    inspect_url,
    redacted_url,
    renotify_due,
    subscribed,
    wants,
)
from vigil.notify.format import (
    BodyFormat,
    Message,
    Tone,
    format_event,
    format_test,
    idempotency_key,
    incident_link,
)
from vigil.notify.sender import DeliveryError, Transport, send, send_test

__all__ = [
    "ALL_EVENTS",
    "BodyFormat",
    "Channel",
    "DeliveryError",
    "Message",
    "NotifyOn",
    "Service",
    "Tone",
    "Transport",
    "format_event",
    "format_test",
    "idempotency_key",
    "incident_link",
    "inspect_url",
    "redacted_url",
    "renotify_due",
    "send",
    "send_test",
    "subscribed",
    "wants",
]
