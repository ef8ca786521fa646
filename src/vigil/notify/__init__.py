"""Notification channels through apprise: validation, message formatting and delivery
(JSON webhooks are posted directly, the way apprise would post them).

The names below load their module on first use: the store and the command line import
``vigil.notify.channels`` without loading aiohttp (``sender``), and that module loads apprise
only when it checks a URL. Code on an event loop loads the sender with ``load_sender``. The
dispatcher lives in ``vigil.runtime.notifier``.
"""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
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
    from vigil.notify.errors import DeliveryError
    from vigil.notify.format import (
        BodyFormat,
        Message,
        Tone,
        format_event,
        format_test,
        idempotency_key,
        incident_link,
    )
    from vigil.notify.sender import Transport, send, send_test

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
    "vigil.notify.errors": ("DeliveryError",),
    "vigil.notify.sender": ("Transport", "send", "send_test"),
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
    "load_sender",
    "redacted_url",
    "renotify_due",
    "send",
    "send_test",
    "subscribed",
    "wants",
]

_SENDER = "vigil.notify.sender"
_sender: ModuleType | None = None  # set once an import of it has finished


async def load_sender() -> ModuleType:
    """``vigil.notify.sender``, imported in a worker thread the first time: aiohttp and apprise
    take about a quarter of a second to load, which the event loop then does not wait for, and
    a process that never sends a message never loads them.

    Until one import has finished, every caller imports in a thread: a module that another
    thread is still importing is already in ``sys.modules``, half made, and ``import_module``
    waits for it where a look in ``sys.modules`` would not."""
    global _sender
    if _sender is None:
        _sender = await asyncio.to_thread(importlib.import_module, _SENDER)
    return _sender


if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name
    __getattr__ = lazy_names(__name__, _HOMES, globals())
