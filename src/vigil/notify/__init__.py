"""Notification channels through apprise: validation, message formatting and delivery
(JSON webhooks are posted directly, the way apprise would post them).

The names below load their module on first use: the store and the command line import
``vigil.notify.channels`` without loading aiohttp (``sender``), and that module loads apprise
only when it checks a URL. The dispatcher lives in ``vigil.runtime.notifier``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil._lazy import lazy_names

if TYPE_CHECKING:
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

_HOMES = {
    "vigil.notify.channels": (
        "ALL_EVENTS",
        "Channel",
        "NotifyOn",
        "Service",
        "inspect_url",
        "redacted_url",
        "renotify_due",
        "subscribed",
        "wants",
    ),
    "vigil.notify.format": (
        "BodyFormat",
        "Message",
        "Tone",
        "format_event",
        "format_test",
        "idempotency_key",
        "incident_link",
    ),
    "vigil.notify.sender": ("DeliveryError", "Transport", "send", "send_test"),
}

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

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name
    __getattr__ = lazy_names(__name__, _HOMES, globals())
