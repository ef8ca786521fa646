"""Gateway state: connected or not, per shard, and heartbeat latency."""

from __future__ import annotations

import math

from vigil.metrics import GatewaySource

from .support import FakeClock


class Latency:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


async def test_latency_in_milliseconds_while_connected() -> None:
    latency = Latency(0.0874)
    gateway = GatewaySource(latency, clock=FakeClock())
    gateway.connected()
    assert await gateway.read() == {"gateway_latency": 87.4, "bot_disconnected": 0.0}
    latency.seconds = 0.2314
    assert (await gateway.read())["gateway_latency"] == 231.4


async def test_a_disconnected_gateway_reads_1_and_has_no_latency() -> None:
    gateway = GatewaySource(Latency(0.05), clock=FakeClock())
    gateway.connected()
    gateway.disconnected()
    assert await gateway.read() == {"gateway_latency": None, "bot_disconnected": 1.0}
    gateway.connected()
    assert await gateway.read() == {"gateway_latency": 50.0, "bot_disconnected": 0.0}
    assert gateway.disconnects == 1


async def test_no_heartbeat_yet_is_no_data_not_zero() -> None:
    gateway = GatewaySource(Latency(math.nan), clock=FakeClock())
    gateway.connected()
    assert (await gateway.read())["gateway_latency"] is None
    gateway = GatewaySource(Latency(math.inf), clock=FakeClock())
    gateway.connected()
    assert (await gateway.read())["gateway_latency"] is None
    gateway = GatewaySource(clock=FakeClock())
    gateway.connected()
    assert (await gateway.read())["gateway_latency"] is None


async def test_before_the_first_connection_there_is_a_grace_period() -> None:
    clock = FakeClock()
    gateway = GatewaySource(Latency(0.05), connect_grace=60, clock=clock)
    assert gateway.is_connected is None
    assert await gateway.read() == {"gateway_latency": None, "bot_disconnected": None}
    clock.advance(61)
    assert await gateway.read() == {"gateway_latency": None, "bot_disconnected": 1.0}
    gateway.connected()
    assert (await gateway.read())["bot_disconnected"] == 0.0


async def test_one_shard_down_means_the_bot_is_disconnected() -> None:
    gateway = GatewaySource(Latency(0.05), clock=FakeClock())
    gateway.connected(0)
    gateway.connected(1)
    assert gateway.is_connected is True
    gateway.disconnected(1)
    assert gateway.is_connected is False
    assert (await gateway.read())["bot_disconnected"] == 1.0
    gateway.connected(1)
    assert (await gateway.read())["bot_disconnected"] == 0.0
