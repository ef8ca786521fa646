"""Push ingestion within bounds: the series caps (422), eviction of stale series, per-token
rate and volume limits and shedding while the monitor is behind (429), on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from vigil.metrics import Reading
from vigil.web.accounts import create_token
from vigil.web.errors import RateLimitedError
from vigil.web.ratelimit import IngestLimiter, TokenBuckets
from vigil.web.routes.ingest import MAX_SAMPLES, limit_key

from .support import LATENCY, Api, running_api, wait_until


async def push(
    api: Api,
    samples: list[dict[str, Any]],
    *,
    instance: str = "shard-0",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await api.client.post(
        "/api/ingest",
        json={"instance": instance, "samples": samples},
        headers=headers if headers is not None else api.auth("ingest"),
    )


def names(start: int, count: int) -> list[dict[str, Any]]:
    return [{"metric": f"flood.m{n}", "value": float(n)} for n in range(start, start + count)]


async def median_seconds(action: Callable[[], Awaitable[object]], times: int = 3) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        await action()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


async def ingest_health(api: Api) -> dict[str, Any]:
    details = (await api.get("/api/health")).json()["details"]
    ingest: dict[str, Any] = details["ingest"]
    return ingest


async def test_ten_thousand_metric_names_leave_the_overview_and_the_cycle_on_time(
    api: Api,
) -> None:
    async def overview() -> None:
        response = await api.get("/")
        assert response.status_code == 200, response.text

    async def cycle() -> None:
        await api.cycle({LATENCY: 50.0})

    quiet_page, quiet_cycle = await median_seconds(overview), await median_seconds(cycle)

    results = [await push(api, names(start, 1000)) for start in range(0, 10_000, 1000)]
    assert results[0].status_code == 200, results[0].text
    for refused in results[1:]:  # the default cap: 1,000 metrics
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["field"] == "samples[0].metric"
        assert "VIGIL_MAX_METRICS" in error["message"]
    health = await ingest_health(api)
    assert (health["metrics"], health["series"], health["refused_samples"]) == (1000, 1000, 9000)

    abused_cycle = await median_seconds(cycle)
    abused_page = await median_seconds(overview)
    listed = (await api.get("/api/metrics")).json()
    assert len(listed) <= 1000 + len(api.vigil.view.rules)
    page = (await api.get("/")).text
    assert "more metrics not shown" in page and 'id="card-gateway_latency"' in page
    # Judged against the same steps before the flood, with slack for a busy machine.
    assert abused_cycle <= 20 * quiet_cycle + 1.0, (quiet_cycle, abused_cycle)
    assert abused_page <= 20 * quiet_page + 1.0, (quiet_page, abused_page)


async def test_stale_series_are_evicted_on_their_own_when_pushes_stop(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vigil sweeps the pushed series now and then (``SERIES_CHECK_SECONDS``, a quarter of the
    retention when that is shorter), so series whose pusher went quiet are forgotten without
    another push."""
    monkeypatch.setattr("vigil.runtime.vigil.SERIES_CHECK_SECONDS", 0.05)
    async with running_api(migrated_url) as api:
        assert (await push(api, names(0, 2))).status_code == 200
        assert (await ingest_health(api))["series"] == 2
        api.clock.advance(api.vigil.series.retention.total_seconds() + 1)

        await wait_until(lambda: api.vigil.series.status().evicted_series == 2)
        health = await ingest_health(api)
        assert (health["series"], health["evicted_series"]) == (0, 2)


async def test_stale_series_are_evicted_from_memory_and_from_the_metrics_list(
    migrated_url: str,
) -> None:
    async with running_api(migrated_url, settings_changes={"max_series": 2}) as api:
        assert (await push(api, names(0, 2))).status_code == 200
        refused = await push(api, names(2, 1))
        assert refused.status_code == 422
        assert "VIGIL_MAX_SERIES" in refused.json()["error"]["message"]
        await api.cycle({})
        listed = {item["metric"] for item in (await api.get("/api/metrics")).json()}
        assert {"flood.m0", "flood.m1"} <= listed and "flood.m2" not in listed

        api.clock.advance(api.vigil.series.retention.total_seconds() + 1)
        assert api.vigil.forget_stale_series() == 2
        listed = {item["metric"] for item in (await api.get("/api/metrics")).json()}
        assert not any(metric.startswith("flood.") for metric in listed)
        assert LATENCY in listed  # a rule's metric stays
        health = await ingest_health(api)
        assert (health["series"], health["evicted_series"], health["refused_samples"]) == (0, 2, 1)
        assert (await push(api, names(2, 1))).status_code == 200  # the slot is free again


async def test_a_token_past_its_request_rate_is_shed_with_retry_after(migrated_url: str) -> None:
    async with running_api(migrated_url, settings_changes={"ingest_rate": 1.0}) as api:
        # The limiter's clock stands still: on a busy machine the burst's ten pushes (each
        # its own commit) can take over a second, which would earn the eleventh its token.
        frozen = time.monotonic()
        api.app.state.vigil_web.ingest = IngestLimiter(
            rate=1.0,
            volume=api.vigil.settings.ingest_volume,
            batch=MAX_SAMPLES,
            clock=lambda: frozen,
        )
        sample = [{"metric": LATENCY, "value": 1.0}]
        answers = [(await push(api, sample)).status_code for _ in range(10)]  # the burst
        assert answers == [200] * 10
        started = time.perf_counter()
        shed = await push(api, sample)
        assert shed.status_code == 429, shed.text
        # held back a second, and the connection closed: a client retrying at once is slowed
        assert time.perf_counter() - started >= 0.9
        assert shed.headers["Connection"] == "close"
        assert int(shed.headers["Retry-After"]) >= 1
        assert "too many ingest requests" in shed.json()["error"]["message"]
        _, other = await create_token(api.vigil.store, "other-pusher", role="ingest")
        other_headers = {"Authorization": f"Bearer {other}"}
        assert (await push(api, sample, headers=other_headers)).status_code == 200
        assert (await ingest_health(api))["shed_requests"] == 1


async def test_a_token_past_its_sample_volume_is_shed(migrated_url: str) -> None:
    async with running_api(migrated_url, settings_changes={"ingest_volume": 10.0}) as api:
        full = [{"metric": LATENCY, "value": float(n)} for n in range(10_000)]
        assert (await push(api, full)).status_code == 200  # one full batch: the burst
        # once the bucket holds a little again (a tenth of a second), one more batch goes,
        # and it owes the rest
        limiter = api.app.state.vigil_web.ingest
        key = limit_key(api.auth("ingest")["Authorization"])
        await wait_until(lambda: limiter.samples.wait(key, time.monotonic()) == 0)
        assert (await push(api, full)).status_code == 200
        shed = await push(api, full[:1])  # ~1,000 s of refill before it holds anything
        assert shed.status_code == 429
        assert "too many samples" in shed.json()["error"]["message"]
        assert int(shed.headers["Retry-After"]) >= 1


async def test_ingestion_is_shed_while_the_monitor_is_behind(migrated_url: str) -> None:
    async with running_api(migrated_url, settings_changes={"interval": 1.0}) as api:
        slow = asyncio.Event()

        async def read() -> Reading:
            if slow.is_set():
                await asyncio.sleep(0.8)  # most of the 1 s interval
            return {}

        api.script.read = read  # type: ignore[method-assign]
        sample = [{"metric": LATENCY, "value": 1.0}]
        slow.set()
        await wait_until(lambda: (api.vigil.monitor.status().last_cycle_seconds or 0) > 0.5)
        shed = await push(api, sample)
        assert shed.status_code == 429, shed.text
        assert "monitor is behind" in shed.json()["error"]["message"]
        slow.clear()
        await wait_until(lambda: (api.vigil.monitor.status().last_cycle_seconds or 1) < 0.5)
        assert (await push(api, sample)).status_code == 200


# -- the limiter's arithmetic, on a clock the test moves -------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_buckets_refill_at_their_rate_and_spend_into_debt() -> None:
    buckets = TokenBuckets(rate=10, capacity=100)
    assert buckets.take("a", 100, 0.0) == 0  # starts full
    assert buckets.take("a", 1, 0.0) == pytest.approx(0.1)  # nothing taken: 0.1 s to wait
    assert buckets.take("a", 5, 0.5) == 0  # 5 back after 0.5 s
    assert buckets.spend("a", 50, 0.5) == pytest.approx(0.1)  # empty: refused, nothing owed
    assert buckets.spend("a", 50, 0.6) == 0  # holds 1: the 50 go, 49 owed
    assert buckets.wait("a", 0.6) == pytest.approx(5.0)  # 50 to refill before it holds one
    assert buckets.take("b", 100, 0.6) == 0  # every key has its own bucket


def test_the_buckets_keep_a_bounded_number_of_keys() -> None:
    buckets = TokenBuckets(rate=1, capacity=1, keys=2)
    for key in ("a", "b", "c"):
        assert buckets.take(key, 1, 0.0) == 0
    assert buckets.take("a", 1, 0.0) == 0  # forgotten (idle longest): full again
    assert buckets.take("c", 1, 0.0) > 0  # remembered: still empty


def test_the_limiter_sheds_and_counts_each_refusal() -> None:
    ticks = Ticks()
    limiter = IngestLimiter(rate=1, volume=100, batch=1000, clock=ticks)
    assert limiter.refusal("t", last_cycle_seconds=0.1, interval=1.0) is None
    behind = limiter.refusal("t", last_cycle_seconds=0.6, interval=1.0)
    assert behind is not None and "monitor is behind" in str(behind)
    for _ in range(10):  # a burst of ten seconds' worth
        limiter.check_request("t")
    with pytest.raises(RateLimitedError) as raised:
        limiter.check_request("t")
    assert raised.value.retry_after >= 1
    limiter.check_volume("t", 1000)  # one full batch
    with pytest.raises(RateLimitedError):
        limiter.check_volume("t", 1)
    ticks.now += 1.0
    limiter.check_request("t")  # refilled
    assert limiter.shed == 3


def test_a_full_ingest_buffer_is_a_refusal_before_the_body_is_read() -> None:
    limiter = IngestLimiter(rate=100, volume=100_000, batch=10_000, clock=Ticks())
    assert limiter.refusal("t", last_cycle_seconds=0.1, interval=1.0) is None
    full = limiter.refusal("t", last_cycle_seconds=0.1, interval=1.0, buffer_full=True)
    assert full is not None and "ingest buffer is full" in str(full)
    assert full.retry_after >= 1 and limiter.shed == 1
