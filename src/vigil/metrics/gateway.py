"""Gateway connection state and heartbeat latency, for any client with a persistent connection.

Knows nothing of discord.py: the integration tells it when a connection (or one shard of it)
comes up or goes down, and gives it a function that returns the current latency.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from vigil.metrics.recorder import Clock
from vigil.metrics.source import Reading

DEFAULT_CONNECT_GRACE = 60.0


class GatewaySource:
    """Produces ``gateway_latency`` (ms) and ``bot_disconnected`` (1 while any shard is down,
    else 0).

    ``latency`` returns seconds, as ``discord.Client.latency`` does; NaN or infinity (no
    heartbeat acknowledged yet) and any reading while disconnected are no data. Before the first
    connection ``bot_disconnected`` is no data for ``connect_grace`` seconds, then 1: a bot that
    cannot connect at all is down.
    """

    name = "gateway"

    def __init__(
        self,
        latency: Callable[[], float] | None = None,
        *,
        connect_grace: float = DEFAULT_CONNECT_GRACE,
        clock: Clock = time.monotonic,
    ) -> None:
        self._latency = latency
        self._clock = clock
        self._grace_until = clock() + connect_grace
        self._shards: dict[int | None, bool] = {}
        self.disconnects = 0

    def connected(self, shard_id: int | None = None) -> None:
        self._shards[shard_id] = True

    def disconnected(self, shard_id: int | None = None) -> None:
        if self._shards.get(shard_id, False):
            self.disconnects += 1
        self._shards[shard_id] = False

    @property
    def is_connected(self) -> bool | None:
        """True when every known shard is up; None before anything connected."""
        if not self._shards:
            return None
        return all(self._shards.values())

    async def read(self) -> Reading:
        up = self.is_connected
        if up is None:
            down: float | None = None if self._clock() < self._grace_until else 1.0
        else:
            down = 0.0 if up else 1.0
        return {"gateway_latency": self._latency_ms() if up else None, "bot_disconnected": down}

    def _latency_ms(self) -> float | None:
        if self._latency is None:
            return None
        seconds = self._latency()
        return seconds * 1000.0 if math.isfinite(seconds) else None
