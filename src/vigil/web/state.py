"""What one app holds besides its routes: one ``WebState`` per ``create_app`` call."""

from __future__ import annotations

from dataclasses import dataclass

from vigil.runtime import Vigil
from vigil.web.auth import Authenticator
from vigil.web.cache import Generation, ReadCache
from vigil.web.live import LiveStream
from vigil.web.prometheus import WebMetrics
from vigil.web.ratelimit import IngestLimiter


@dataclass(eq=False)
class WebState:
    vigil: Vigil
    auth: Authenticator
    cache: ReadCache
    live: LiveStream
    metrics: WebMetrics
    ingest: IngestLimiter


def generation_of(vigil: Vigil) -> Generation:
    """What the database answers depend on, known without a query: events seen here, and
    cycles run (a cycle updates open incidents' peak and last values without an event)."""
    if not vigil.running:
        return None
    return (vigil.bus.last_id, vigil.monitor.status().cycles)
