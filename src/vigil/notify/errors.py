"""What delivery raises, apart from what delivers: the store, the web layer and the dispatcher
catch it without loading aiohttp and apprise (``vigil.notify.sender``)."""

from __future__ import annotations

from vigil.core.errors import VigilError


class DeliveryError(VigilError):
    """A message was not delivered. ``reason`` is apprise's account, secrets masked."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"channel {channel!r}: {reason}")
        self.channel = channel
        self.reason = reason
