"""Ingest tokens bound to an instance name, and sample times bounded before and after the
server's clock: one pusher cannot mask another's readings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from vigil.core import ValidationError
from vigil.web.accounts import create_token

from .support import LATENCY, Api


async def push(
    api: Api, secret: str, instance: str, samples: list[dict[str, Any]]
) -> httpx.Response:
    return await api.client.post(
        "/api/ingest",
        json={"instance": instance, "samples": samples},
        headers={"Authorization": f"Bearer {secret}"},
    )


async def test_a_token_bound_to_an_instance_cannot_push_for_another(api: Api) -> None:
    record, secret = await create_token(
        api.vigil.store, "shard-0 pusher", role="ingest", instance="shard-0"
    )
    assert record.instance == "shard-0"
    sample = [{"metric": LATENCY, "value": 10.0}]
    assert (await push(api, secret, "shard-0", sample)).status_code == 200
    refused = await push(api, secret, "shard-1", [{"metric": LATENCY, "value": 999.0}])
    assert refused.status_code == 403
    message = refused.json()["error"]["message"]
    assert "'shard-0'" in message and "'shard-1'" in message
    # an unbound ingest token still pushes for any instance
    assert (await push(api, api.tokens["ingest"], "shard-1", sample)).status_code == 200
    await api.cycle({})
    [value] = [v for v in (await api.get("/api/metrics")).json() if v["metric"] == LATENCY]
    assert value["value"] == 10.0  # the refused 999 was never stored


async def test_only_ingest_tokens_are_bound_and_to_a_valid_name(api: Api) -> None:
    for role, instance in (("viewer", "shard-0"), ("ingest", "shard 0"), ("ingest", "")):
        with pytest.raises(ValidationError) as caught:
            await create_token(api.vigil.store, "x", role=role, instance=instance)
        assert caught.value.field == "instance"


async def test_sample_times_too_far_ahead_or_behind_are_refused_naming_the_sample(
    api: Api,
) -> None:
    now = api.clock()
    settings = api.vigil.settings

    def at(delta: timedelta) -> dict[str, Any]:
        return {"metric": LATENCY, "value": 1.0, "time": (now + delta).isoformat()}

    ahead = timedelta(seconds=settings.ingest_max_future)
    behind = timedelta(seconds=settings.ingest_max_age)
    good = at(timedelta(0))
    cases = [
        ([good, at(ahead + timedelta(seconds=1))], "samples[1].time", "ahead"),
        ([good, good, at(-behind - timedelta(seconds=1))], "samples[2].time", "before"),
        ([{**good, "time": "1970-01-01T00:00:00Z"}], "samples[0].time", "before"),
        ([good, {**good, "time": "0001-01-01T00:00:00Z"}], "samples[1].time", "before"),
    ]
    for samples, field, word in cases:
        response = await push(api, api.tokens["ingest"], "shard-0", samples)
        assert response.status_code == 422, (field, response.text)
        error = response.json()["error"]
        assert error["field"] == field and word in error["message"], error
    edges = [at(ahead), at(-behind), good]
    accepted = await push(api, api.tokens["ingest"], "shard-0", edges)
    assert (accepted.status_code, accepted.json()) == (200, {"accepted": 3})
