"""HTTP tracking through aiohttp trace hooks, against a local server that answers like Discord."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from vigil.metrics import HttpTracker, Recorder

from ..integrations.fake_discord import FakeDiscordAPI
from .support import FakeClock

NO_DATA = {"api_rate_limit_usage": None, "api_rate_limit_hits": None, "api_p95_latency": None}


async def test_usage_is_the_most_used_buckets_share_spent() -> None:
    tracker = HttpTracker(window=30)
    async with (
        FakeDiscordAPI(limit=10) as api,
        aiohttp.ClientSession(trace_configs=[tracker.trace_config()]) as session,
    ):
        assert await tracker.read() == NO_DATA
        for _ in range(3):
            async with session.get(f"{api.base}/users/3001") as response:
                assert response.status == 200
        async with session.get(f"{api.base}/users/@me") as response:
            assert response.status == 200
    assert api.usage("GET", "/users/3001") == 30.0
    reading = await tracker.read()
    assert reading["api_rate_limit_usage"] == 30.0  # 3 of 10 spent; the other bucket 1 of 10
    assert reading["api_rate_limit_hits"] == 0.0  # seen responses, none of them a 429
    assert reading["api_p95_latency"] is not None and reading["api_p95_latency"] > 0
    assert tracker.recorder.total("api_request_latency") == 4


async def test_a_429_is_a_hit_and_a_spent_bucket() -> None:
    clock = FakeClock()
    tracker = HttpTracker(Recorder(clock=clock), window=30)
    async with (
        FakeDiscordAPI() as api,
        aiohttp.ClientSession(trace_configs=[tracker.trace_config()]) as session,
    ):
        api.rate_limit_next(retry_after=1.5)
        async with session.get(f"{api.base}/channels/77/messages") as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "1.5"
        api.rate_limit_next(is_global=True)
        async with session.get(f"{api.base}/gateway/bot") as response:
            assert response.status == 429
    assert await tracker.read() == {
        "api_rate_limit_usage": 100.0,
        "api_rate_limit_hits": 2.0,
        "api_p95_latency": 0.0,  # the fake clock did not move
    }
    clock.advance(31)
    assert (await tracker.read())["api_rate_limit_usage"] is None
    assert (await tracker.read())["api_rate_limit_hits"] == 2.0  # hits count over an hour
    clock.advance(3600)
    assert await tracker.read() == NO_DATA | {"api_rate_limit_hits": 0.0}


async def test_requests_that_get_no_response_are_counted() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    tracker = HttpTracker()
    async with aiohttp.ClientSession(trace_configs=[tracker.trace_config()]) as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{closed_port}/"):
                pass
    assert tracker.recorder.window("api_request_errors", 60).count == 1
    assert await tracker.read() == NO_DATA


async def test_hooks_join_an_existing_trace_config_without_replacing_its_own() -> None:
    ends: list[int] = []

    async def own_hook(session: Any, context: SimpleNamespace, params: Any) -> None:
        ends.append(params.response.status)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(own_hook)
    tracker = HttpTracker()
    assert HttpTracker.of(trace) is None
    tracker.attach(trace)
    tracker.attach(trace)  # twice is once
    assert HttpTracker.of(trace) is tracker
    async with (
        FakeDiscordAPI() as api,
        aiohttp.ClientSession(trace_configs=[trace]) as session,
    ):
        async with session.get(f"{api.base}/users/@me"):
            pass
        with pytest.raises(RuntimeError, match="before the session is created"):
            HttpTracker().attach(trace)  # the session froze it
    assert ends == [200]
    assert tracker.recorder.total("api_request_latency") == 1


async def test_hooks_can_be_taken_out_until_a_session_freezes_them() -> None:
    tracker = HttpTracker()
    trace = tracker.trace_config()
    tracker.detach(trace)
    assert HttpTracker.of(trace) is None
    assert len(trace.on_request_start) == len(trace.on_request_exception) == 0
    tracker.attach(trace)
    async with aiohttp.ClientSession(trace_configs=[trace]):
        with pytest.raises(RuntimeError, match="keeps its hooks"):
            tracker.detach(trace)


def test_observe_reads_headers_case_insensitively_and_ignores_nonsense() -> None:
    tracker = HttpTracker()
    tracker.observe(200, {"x-ratelimit-limit": "4", "x-ratelimit-remaining": "1"})
    tracker.observe(200, {"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "0"})
    tracker.observe(200, {"X-RateLimit-Limit": "five", "X-RateLimit-Remaining": "1"})
    tracker.observe(200, {"X-RateLimit-Limit": "inf", "X-RateLimit-Remaining": "1"})
    tracker.observe(200, {"X-RateLimit-Limit": "5"})
    tracker.observe(204, {})
    assert tracker.recorder.values("api_bucket_usage", 60) == [75.0]
    assert tracker.responses == 6
