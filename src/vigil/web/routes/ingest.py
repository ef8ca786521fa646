"""``POST /api/ingest``: samples pushed by other processes, within bounds.

A token may be bound to one instance name (``vigil tokens create --instance shard-0``): it
cannot push for another instance (403), so one pusher cannot mask another's readings.

What a push may do is bounded three ways (docs/security.md): each sample's time lies within
``ingest_max_age`` before and ``ingest_max_future`` after this server's clock; a batch may not
start a series past the caps of the bounded series model (``vigil.runtime.series``), both
answered 422 naming the sample; and a token's requests and samples a second, a full
ingest buffer and the monitor's own lateness shed the rest with 429 and ``Retry-After``
(``vigil.web.ratelimit.IngestLimiter``) before evaluation can be starved.

What passes is stored by group commit (``vigil.runtime.groupcommit``): the push is answered
once the transaction holding its samples, and those of the other pushes of the moment, has
committed.

The common push (an ingest token, a JSON body of plain samples, nothing wrong) is answered by
``IngestGate`` itself, past FastAPI's routing, dependencies and middleware, which cost about a
fifth of the server's CPU a push (``answer_directly``). Anything else goes on to the route,
which stays the one place that says what is wrong.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import orjson
import pydantic
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, TypeAdapter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core import Sample, ValidationError, VigilError
from vigil.core.validation import METRIC_PATTERN
from vigil.runtime.groupcommit import BufferFullError
from vigil.settings import Settings
from vigil.store import Role
from vigil.web.auth import Principal, require_ingest, web_state
from vigil.web.errors import (
    ForbiddenError,
    error_response,
    field_name,
    responses,
    route_path,
    vigil_error,
)
from vigil.web.schemas import INSTANCE_PATTERN, INSTANCE_REGEX, METRIC_REGEX, Finite, UtcDateTime
from vigil.web.security import token_hash

if TYPE_CHECKING:
    from vigil.web.state import WebState

router = APIRouter(tags=["system"])

INGEST_PATH = "/api/ingest"
MAX_SAMPLES = 10_000
SLICE = 500  # samples checked between two turns of the event loop
HOLD_SECONDS = 1.0  # a refused push waits this long for its 429


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
    # Checked by the route, a slice at a time (``_samples``): a full batch validated in one
    # go would hold the event loop for tens of milliseconds.
    samples: Annotated[list[SampleIn], SkipValidation] = Field(max_length=MAX_SAMPLES)


_SAMPLE = TypeAdapter(SampleIn)


class IngestOut(BaseModel):
    accepted: int


def limit_key(authorization: str | None) -> str:
    """What per-token limits count by: the token's hash (known before any lookup)."""
    _, _, secret = (authorization or "").strip().partition(" ")
    return token_hash(secret.strip())


class IngestGate:
    """Turns a push away with 429 before its body is read, and closes the connection, while
    its token is over a limit or the monitor is behind (``IngestLimiter.refusal``): a flood
    of full batches then costs the server little more than its headers. The answer is held
    back ``hold`` seconds (for at most ``max_held`` requests at once, the rest answered at
    once), so a client that retries at once sends one request a second per connection, not
    hundreds. What passes is checked again, and counted, by the route, or answered here
    (``answer_directly``)."""

    def __init__(
        self, app: ASGIApp, *, hold: float = HOLD_SECONDS, max_held: int = 64, max_body: int
    ) -> None:
        self.app = app
        self.hold = hold
        self.max_held = max_held
        self.max_body = max_body
        self.direct = True  # False: every push goes to the route (the tests compare the two)
        self._held = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].endswith(INGEST_PATH)
        ):
            state: WebState = scope["app"].state.vigil_web
            vigil = state.vigil
            if vigil.running:
                header = Headers(scope=scope).get("authorization")
                refused = state.ingest.refusal(
                    limit_key(header),
                    last_cycle_seconds=vigil.monitor.status().last_cycle_seconds,
                    interval=vigil.settings.interval,
                    buffer_full=not vigil.ingestion.has_room(),
                )
                if refused is not None:
                    # Closed after the answer: the body is never read, not even to skip it.
                    headers = {
                        "Retry-After": str(max(1, round(refused.retry_after))),
                        "Connection": "close",
                    }
                    response = error_response(429, "rate_limited", str(refused), headers=headers)
                    if self.hold > 0 and self._held < self.max_held:
                        self._held += 1
                        try:
                            await asyncio.sleep(min(self.hold, refused.retry_after))
                        finally:
                            self._held -= 1
                    await response(scope, receive, send)
                    return
                if self.direct and route_path(scope) == INGEST_PATH:
                    rest = await answer_directly(state, scope, receive, send, self.max_body)
                    if rest is None:
                        return
                    receive = rest
        await self.app(scope, receive, send)


async def answer_directly(
    state: WebState, scope: Scope, receive: Receive, send: Send, max_body: int
) -> Receive | None:
    """Answers the common push here, without what FastAPI's routing, dependencies and
    middleware cost it: an ingest token, a JSON body of exactly ``instance`` and ``samples``,
    every sample valid and within the clock's bounds. ``None`` once answered (stored, or
    refused by a limit); otherwise the ``receive`` to go on with, replaying what was read,
    and the route answers as always: whatever is not that common push, an error above all,
    is the route's to say. Until the limits are counted nothing has changed, so a request
    the route answers is counted once, by the route."""
    headers = Headers(scope=scope)
    kind = headers.get("content-type")
    length = headers.get("content-length")
    authorization = headers.get("authorization")
    if (
        kind is None
        or kind.partition(";")[0].strip().lower() != "application/json"
        or length is None
        or not length.isdigit()
        or int(length) > max_body
        or authorization is None
    ):
        return receive
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return receive
    read: list[Message] = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return _replaying(read, receive)
        size += len(message.get("body", b""))
        if size > max_body:
            return _replaying(read, receive)
        if not message.get("more_body", False):
            break
    body = read[0]["body"] if len(read) == 1 else b"".join(m.get("body", b"") for m in read)
    vigil = state.vigil
    try:
        principal = await state.auth.from_token(secret.strip())
        raw = orjson.loads(body)  # a fifth of json's cost; what it refuses, the route reads
        if type(raw) is not dict or raw.keys() != {"instance", "samples"}:
            return _replaying(read, receive)
        instance, items = raw["instance"], raw["samples"]
        if (
            principal.role is not Role.INGEST
            or type(instance) is not str
            or not INSTANCE_PATTERN.fullmatch(instance)
            or (principal.instance is not None and principal.instance != instance)
        ):
            return _replaying(read, receive)
        samples = await _samples(items, instance, now=vigil.clock(), settings=vigil.settings)
    # The route says what is wrong (orjson's JSONDecodeError is a ValueError).
    except (VigilError, ValueError, RecursionError):
        return _replaying(read, receive)
    try:  # as ``ingest_allowed`` and the route, from here on
        status = vigil.monitor.status()
        state.ingest.check_monitor(status.last_cycle_seconds, vigil.settings.interval)
        key = limit_key(authorization)
        state.ingest.check_request(key)
        state.ingest.check_volume(key, len(samples))
        try:
            accepted = await vigil.ingest(samples)
        except BufferFullError as exc:
            raise state.ingest.buffer_full(exc) from None
    except VigilError as exc:
        refused = await vigil_error(Request(scope), exc)
        await refused(scope, receive, send)
        return None
    state.metrics.ingested.inc(accepted)
    await _accepted(accepted)(scope, receive, send)
    return None


def _replaying(read: list[Message], receive: Receive) -> Receive:
    """``receive``, after the messages already read from it."""
    pending = list(read)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _accepted(count: int) -> Response:
    # ``IngestOut`` written out: the hottest answer of the API needs no model to say one number.
    return Response(b'{"accepted":%d}' % count, media_type="application/json")


async def ingest_allowed(
    request: Request, principal: Annotated[Principal, Depends(require_ingest)]
) -> Principal:
    """An ingest token within its request and sample rates, while the monitor keeps up:
    checked before the samples are validated (FastAPI has parsed the JSON, not checked it),
    so a refused request costs little and an invalid batch counts too."""
    state = web_state(request)
    status = state.vigil.monitor.status()  # NotStartedError: 503
    state.ingest.check_monitor(status.last_cycle_seconds, state.vigil.settings.interval)
    key = limit_key(request.headers.get("authorization"))
    state.ingest.check_request(key)
    try:
        body = await request.json()  # parsed once: FastAPI parsed it already, or will not
    except (ValueError, RecursionError):
        body = None  # empty, not JSON, or too deep: FastAPI answers it (422)
    state.ingest.check_volume(key, _samples_in(body))
    return principal


def _samples_in(body: object) -> int:
    """How many samples a parsed body claims to hold (at most one batch; validation says
    whether they are samples)."""
    samples = body.get("samples") if isinstance(body, dict) else None
    return min(len(samples), MAX_SAMPLES) if isinstance(samples, list) else 0


Pusher = Annotated[Principal, Depends(ingest_allowed)]


@router.post(
    INGEST_PATH,
    summary="Push samples from another process",
    description=f"Needs a token with the `ingest` scope. At most {MAX_SAMPLES:,} samples; "
    "values must be finite; `time` defaults to now and may lie at most `VIGIL_INGEST_MAX_AGE` "
    "seconds before and `VIGIL_INGEST_MAX_FUTURE` seconds after the server's clock. A sample "
    "that would start a series past `VIGIL_MAX_SERIES` or `VIGIL_MAX_METRICS` is refused. Any "
    "invalid sample rejects the whole request (422, `field` names the sample's index). A "
    "token bound to an instance (`vigil tokens create --instance`) pushes for it only (403). Too "
    "many requests or samples a second for the token, or a monitor falling behind: 429 with "
    "`Retry-After`.",
    response_model=IngestOut,
    responses=responses(401, 403, 422, 429, 503),
)
async def ingest(request: Request, batch: IngestIn, principal: Pusher) -> Response:
    if principal.instance is not None and batch.instance != principal.instance:
        raise ForbiddenError(
            f"this token pushes for instance {principal.instance!r} only, not {batch.instance!r}"
        )
    state = web_state(request)
    vigil = state.vigil
    samples = await _samples(
        batch.samples, batch.instance, now=vigil.clock(), settings=vigil.settings
    )
    try:
        accepted = await vigil.ingest(samples)  # answered once committed
    except BufferFullError as exc:
        raise state.ingest.buffer_full(exc) from None
    state.metrics.ingested.inc(accepted)
    return _accepted(accepted)


async def _samples(
    items: object, instance: str, *, now: datetime, settings: Settings
) -> list[Sample]:
    """A batch's samples, checked one by one (each as ``SampleIn`` would be, then its time
    against the clock), yielding to the event loop after every ``SLICE``; the first bad one
    is a ``ValidationError`` naming its index."""
    if not isinstance(items, list):
        raise ValidationError("samples", "must be a list of samples")
    if len(items) > MAX_SAMPLES:
        raise ValidationError("samples", f"at most {MAX_SAMPLES:,} samples a request")
    latest = now + timedelta(seconds=settings.ingest_max_future)
    earliest = now - timedelta(seconds=settings.ingest_max_age)
    samples: list[Sample] = []
    seen = Seen()
    for start in range(0, len(items), SLICE):
        if start:
            await asyncio.sleep(0)  # let health checks and the monitor in
        for index in range(start, min(start + SLICE, len(items))):
            raw = items[index]
            checked = _plain_sample(raw, instance, now, seen)
            if checked is None:  # not the plain form: the model decides, and names the error
                checked = _modelled_sample(raw, index, instance, now)
            when = checked.time
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
            samples.append(checked)
    return samples


# The plain form of a sample, checked without the model at a sixth of its cost: a dict of
# exactly `metric` (a str of the metric pattern), `value` (a finite float, or an int a float
# holds exactly) and optionally `time` (null, or RFC 3339 with `T` and `Z` or an offset,
# at most microseconds). Anything else, valid or not, goes to the model, so what is accepted
# and every error are the model's (tests/web/test_ingest_plain.py holds the two equal).
_PLAIN_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_EXACT_INT = 2**53
_ABSENT = object()


class Seen:
    """What the plain samples of one batch have shown good so far: its samples mostly share
    a few metrics and times (all of one instant, or the same metrics at a few instants), and
    a name or time checked once need not be checked again."""

    __slots__ = ("metrics", "times")

    def __init__(self) -> None:
        self.metrics: set[str] = set()  # of the metric pattern
        self.times: dict[str, datetime] = {}  # plain-form time texts, parsed


def _plain_sample(
    raw: object, instance: str, now: datetime, seen: Seen | None = None
) -> Sample | None:
    """``raw`` as a sample if it has the plain form; ``None`` if the model must decide.
    ``seen``: what the batch's earlier samples have shown good (added to here)."""
    if type(raw) is not dict:
        return None
    metric = raw.get("metric")
    value = raw.get("value")
    if type(metric) is not str:
        return None
    if seen is None or metric not in seen.metrics:
        if not METRIC_PATTERN.fullmatch(metric):
            return None
        if seen is not None:
            seen.metrics.add(metric)
    if type(value) is float:
        if value - value != 0.0:  # not finite: inf - inf and nan - nan are nan
            return None
    elif type(value) is int and -_EXACT_INT <= value <= _EXACT_INT:
        value = float(value)
    else:
        return None
    # `metric` and `value` are there (a str, a number): two keys are the plain form, three
    # when the third is `time`.
    size = len(raw)
    if size == 2:
        return Sample.checked(instance, metric, now, value)
    if size != 3:
        return None
    text = raw.get("time", _ABSENT)
    if text is None:
        when = now
    elif type(text) is str:
        known = seen.times.get(text) if seen is not None else None
        if known is not None:
            when = known
        elif _PLAIN_TIME.fullmatch(text):
            try:
                when = datetime.fromisoformat(text).astimezone(UTC)
            except (ValueError, OverflowError):
                return None
            if seen is not None:
                seen.times[text] = when
        else:
            return None
    else:  # absent (another key), or not a text
        return None
    return Sample.checked(instance, metric, when, value)


def _modelled_sample(raw: object, index: int, instance: str, now: datetime) -> Sample:
    """``raw`` checked by the model, as a sample; ``ValidationError`` naming the sample's
    index and the first field the model refused."""
    try:
        item = _SAMPLE.validate_python(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = field_name(("samples", index, *first.get("loc", ())))
        raise ValidationError(field or "samples", str(first.get("msg", "invalid"))) from None
    try:
        when = item.time if item.time is not None else now
        return Sample(instance, item.metric, when, item.value)
    except ValidationError as exc:
        raise ValidationError(f"samples[{index}].{exc.field}", exc.message) from None
