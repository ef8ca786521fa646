"""``POST /api/ingest``: samples pushed by other processes, within bounds.

What a push may do is bounded three ways (docs/security.md): each sample's time lies within
``ingest_max_age`` before and ``ingest_max_future`` after this server's clock; a batch may not
start a series past the caps of the bounded series model (``vigil.runtime.series``), both
answered 422 naming the sample; and a token's requests and samples a second, the batches
written at once and the monitor's own lateness shed the rest with 429 and ``Retry-After``
(``vigil.web.ratelimit.IngestLimiter``) before evaluation can be starved.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from vigil.core import Sample, ValidationError
from vigil.web.auth import Principal, require_ingest, web_state
from vigil.web.errors import responses
from vigil.web.schemas import INSTANCE_REGEX, METRIC_REGEX, Finite, UtcDateTime

router = APIRouter(tags=["system"])

MAX_SAMPLES = 10_000


class SampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(pattern=METRIC_REGEX)
    value: Finite
    time: UtcDateTime | None = Field(None, description="When it was measured; default: now.")


class IngestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance: str = Field(
        pattern=INSTANCE_REGEX, description="The pushing process, e.g. `shard-0`."
    )
    samples: list[SampleIn] = Field(max_length=MAX_SAMPLES)


class IngestOut(BaseModel):
    accepted: int


def _key(principal: Principal) -> str:
    return f"token:{principal.token_id}" if principal.token_id is not None else principal.name


async def ingest_allowed(
    request: Request, principal: Annotated[Principal, Depends(require_ingest)]
) -> Principal:
    """An ingest token within its request rate, while the monitor keeps up: checked before
    the body is validated, so a refused request costs little."""
    state = web_state(request)
    status = state.vigil.monitor.status()  # NotStartedError: 503
    state.ingest.check_monitor(status.last_cycle_seconds, state.vigil.settings.interval)
    state.ingest.check_request(_key(principal))
    return principal


Pusher = Annotated[Principal, Depends(ingest_allowed)]


@router.post(
    "/api/ingest",
    summary="Push samples from another process",
    description=f"Needs a token with the `ingest` scope. At most {MAX_SAMPLES:,} samples; "
    "values must be finite; `time` defaults to now and may lie at most `VIGIL_INGEST_MAX_AGE` "
    "seconds before and `VIGIL_INGEST_MAX_FUTURE` seconds after the server's clock. A sample "
    "that would start a series past `VIGIL_MAX_SERIES` or `VIGIL_MAX_METRICS` is refused. Any "
    "invalid sample rejects the whole request (422, `field` names the sample's index). Too "
    "many requests or samples a second for the token, or a monitor falling behind: 429 with "
    "`Retry-After`.",
    responses=responses(401, 403, 422, 429, 503),
)
async def ingest(request: Request, batch: IngestIn, principal: Pusher) -> IngestOut:
    state = web_state(request)
    vigil = state.vigil
    settings = vigil.settings
    now = vigil.clock()
    latest = now + timedelta(seconds=settings.ingest_max_future)
    earliest = now - timedelta(seconds=settings.ingest_max_age)
    samples = []
    for index, item in enumerate(batch.samples):
        when = item.time if item.time is not None else now
        if when > latest:
            raise ValidationError(
                f"samples[{index}].time",
                f"is more than {settings.ingest_max_future:g} s ahead of the server's clock",
            )
        if when < earliest:
            raise ValidationError(
                f"samples[{index}].time",
                f"is more than {settings.ingest_max_age:g} s before the server's clock",
            )
        try:
            samples.append(Sample(batch.instance, item.metric, when, item.value))
        except ValidationError as exc:
            raise ValidationError(f"samples[{index}].{exc.field}", exc.message) from None
    state.ingest.check_volume(_key(principal), len(samples))
    async with state.ingest.writing():
        accepted = await vigil.ingest(samples)
    state.metrics.ingested.inc(accepted)
    return IngestOut(accepted=accepted)
