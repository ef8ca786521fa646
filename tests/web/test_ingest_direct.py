"""The common push answered by ``IngestGate`` itself, past FastAPI (``answer_directly``): it
answers exactly what the route answers, for pushes good and bad; what it does not answer
reaches the route whole; and every request is counted against its token's limits once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from vigil.web.accounts import create_token
from vigil.web.ratelimit import IngestLimiter
from vigil.web.routes.ingest import MAX_SAMPLES, IngestGate, limit_key

from .support import LATENCY, Api


def gate_of(app: FastAPI) -> IngestGate:
    """The app's one ``IngestGate``, in the middleware stack Starlette builds at first use."""
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    layer: Any = app.middleware_stack
    while not isinstance(layer, IngestGate):
        layer = layer.app
    return layer


class Behind:
    """The rest of the stack behind the gate (the route), counting the requests it gets and
    the bodies they carry."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []

        async def reading() -> Any:
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        try:
            await self.app(scope, reading, send)
        finally:
            self.bodies.append(b"".join(chunks))


@pytest.fixture
def behind(api: Api) -> Iterator[Behind]:
    gate = gate_of(api.app)
    inner = gate.app
    gate.app = recorder = Behind(inner)
    # Limits out of the way (and still counting): a frozen clock, room for every request.
    state = api.app.state.vigil_web
    state.ingest = IngestLimiter(rate=10_000, volume=1e9, batch=MAX_SAMPLES, clock=lambda: 0.0)
    try:
        yield recorder
    finally:
        gate.app = inner


def answer(response: httpx.Response) -> tuple[int, object, dict[str, str]]:
    """What a caller sees: the status, the body, the headers that tell it what to do."""
    named = {
        k: response.headers[k] for k in ("retry-after", "www-authenticate") if k in response.headers
    }
    return response.status_code, response.json(), named


async def both_ways(
    api: Api, behind: Behind, body: bytes, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response, int]:
    """The request answered with the direct path, then without it; and how many times the
    direct path handed it to the route."""
    gate = gate_of(api.app)
    before = len(behind.bodies)
    direct = await api.client.post("/api/ingest", content=body, headers=headers)
    handed = len(behind.bodies) - before
    gate.direct = False
    try:
        routed = await api.client.post("/api/ingest", content=body, headers=headers)
    finally:
        gate.direct = True
    return direct, routed, handed


def pushed(samples: object, instance: object = "shard-0", **more: object) -> bytes:
    return json.dumps({"instance": instance, "samples": samples, **more}).encode()


JSON = {"Content-Type": "application/json"}


def cases(api: Api) -> list[tuple[str, bytes, dict[str, str], bool]]:
    """(what, body, headers, answered directly)."""
    ingest = {**api.auth("ingest"), **JSON}
    now = api.vigil.clock()
    ahead = (now + timedelta(hours=2)).isoformat()
    long_ago = (now - timedelta(days=40)).isoformat()
    good = [{"metric": LATENCY, "value": 12.5}]
    return [
        ("a plain push", pushed(good), ingest, True),
        (
            "times and ints",
            pushed(
                [
                    {"metric": LATENCY, "value": 3, "time": now.isoformat()},
                    {"metric": LATENCY, "value": 4.0, "time": None},
                ]
            ),
            ingest,
            True,
        ),
        ("no samples", pushed([]), ingest, True),
        (
            "a charset",
            pushed(good),
            {**ingest, "Content-Type": "application/json; charset=utf-8"},
            True,
        ),
        ("a value as text", pushed([{"metric": LATENCY, "value": "7.5"}]), ingest, False),
        ("a bad metric name", pushed([{"metric": "no spaces", "value": 1.0}]), ingest, False),
        (
            "a non-finite value",
            b'{"instance":"shard-0","samples":[{"metric":"m","value":NaN}]}',
            ingest,
            False,
        ),
        (
            "a time far ahead",
            pushed([{"metric": LATENCY, "value": 1.0, "time": ahead}]),
            ingest,
            False,
        ),
        (
            "a time long ago",
            pushed([{"metric": LATENCY, "value": 1.0, "time": long_ago}]),
            ingest,
            False,
        ),
        (
            "a sample with more",
            pushed([{"metric": LATENCY, "value": 1.0, "unit": "ms"}]),
            ingest,
            False,
        ),
        (
            # orjson reads it as a float, json as an int: one value all the same
            "an integer past 64 bits",
            b'{"instance":"shard-0","samples":[{"metric":"m","value":%d}]}' % 2**70,
            ingest,
            True,
        ),
        (
            "an integer past a float",  # orjson refuses it: the route reads it
            b'{"instance":"shard-0","samples":[{"metric":"m","value":%d}]}' % 10**400,
            ingest,
            False,
        ),
        (
            "a repeated key",
            b'{"instance":"shard-0","instance":"shard-1","samples":[{"metric":"m","value":1}]}',
            ingest,
            True,
        ),
        ("a body with more", pushed(good, extra=1), ingest, False),
        ("no samples key", json.dumps({"instance": "shard-0"}).encode(), ingest, False),
        ("a bad instance", pushed(good, instance="has space"), ingest, False),
        ("an instance not text", pushed(good, instance=7), ingest, False),
        ("samples not a list", pushed({"metric": LATENCY}), ingest, False),
        ("too many samples", pushed(good * (MAX_SAMPLES + 1)), ingest, False),
        ("not JSON", b"{not json", ingest, False),
        ("not UTF-8", b'{"instance":"\xff"}', ingest, False),
        ("an empty body", b"", ingest, False),
        ("text, not JSON", pushed(good), {**ingest, "Content-Type": "text/plain"}, False),
        ("no content type", pushed(good), api.auth("ingest"), False),
        ("no token", pushed(good), JSON, False),
        (
            "an unknown token",
            pushed(good),
            {"Authorization": "Bearer vgl_" + "x" * 40, **JSON},
            False,
        ),
        ("not a bearer", pushed(good), {"Authorization": "Basic abc", **JSON}, False),
        ("a viewer's token", pushed(good), {**api.auth("viewer"), **JSON}, False),
        ("an admin's token", pushed(good), {**api.auth("admin"), **JSON}, False),
    ]


async def test_the_direct_path_answers_what_the_route_answers(api: Api, behind: Behind) -> None:
    for what, body, headers, direct in cases(api):
        answered, routed, handed = await both_ways(api, behind, body, headers)
        assert answer(answered) == answer(routed), what
        assert handed == (0 if direct else 1), what
        if not direct:  # the route got the body whole
            assert behind.bodies[-2] == body, what
        if direct:
            assert answered.status_code == 200, (what, answered.text)


async def test_a_bound_token_pushes_directly_for_its_instance_only(
    api: Api, behind: Behind
) -> None:
    _, secret = await create_token(api.vigil.store, "bound", role="ingest", instance="shard-0")
    headers = {"Authorization": f"Bearer {secret}", **JSON}
    good = [{"metric": LATENCY, "value": 1.0}]
    own, routed, handed = await both_ways(api, behind, pushed(good), headers)
    assert (own.status_code, routed.status_code, handed) == (200, 200, 0)
    other, routed, handed = await both_ways(api, behind, pushed(good, instance="shard-1"), headers)
    assert (other.status_code, handed) == (403, 1)
    assert answer(other) == answer(routed)


def talk(incoming: list[Any]) -> tuple[Receive, list[Any], Send]:
    """A server's side of one request: ``incoming`` to receive, what is sent kept."""
    queue, sent = list(incoming), []

    async def receive() -> Any:
        return queue.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    return receive, sent, send


async def test_a_body_given_up_part_way_is_handed_on_whole(api: Api) -> None:
    """A body that outgrows its Content-Length (a server that does not hold the client to it)
    or a client that goes away part-way: what was read is handed on first, then the rest."""
    gate = gate_of(api.app)
    body = pushed([{"metric": LATENCY, "value": float(n)} for n in range(20)])

    async def rest_of_stack(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    inner, gate.app = gate.app, Behind(rest_of_stack)
    try:
        for ending, claimed in (("http.request", 10), ("http.disconnect", len(body))):
            pieces: list[Any] = [
                {"type": "http.request", "body": body[i : i + 50], "more_body": True}
                for i in range(0, len(body), 50)
            ]
            pieces.append({"type": ending, "body": b"", "more_body": False})
            receive, sent, send = talk(pieces)

            headers = {**api.auth("ingest"), **JSON, "Content-Length": str(claimed)}
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/api/ingest",
                "root_path": "",
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                "app": api.app,
            }
            gate.max_body = 64
            await gate(scope, receive, send)
            assert sent[0]["status"] == 204, ending  # answered behind the gate
            assert gate.app.bodies[-1] == body, ending
    finally:
        gate.app = inner


async def test_every_request_counts_once_against_its_token(api: Api, behind: Behind) -> None:
    """Ten requests a token may send at once (rate 1, a burst of ten): the eleventh is refused
    whichever way the first ten went, answered directly or by the route."""
    state = api.app.state.vigil_web
    state.ingest = IngestLimiter(rate=1, volume=1e9, batch=MAX_SAMPLES, clock=lambda: 0.0)
    headers = {**api.auth("ingest"), **JSON}
    good = pushed([{"metric": LATENCY, "value": 1.0}])
    bad = pushed([{"metric": "no spaces", "value": 1.0}])
    gate_of(api.app).hold = 0  # the gate's refusal answered at once
    statuses = []
    for body in [good, bad] * 5 + [good]:
        response = await api.client.post("/api/ingest", content=body, headers=headers)
        statuses.append(response.status_code)
    assert statuses == [200, 422] * 5 + [429]
    assert len(behind.bodies) == 5  # the bad ones; the eleventh is turned away by the gate
    refused = state.ingest.refusal(
        limit_key(headers["Authorization"]), last_cycle_seconds=None, interval=1.0
    )
    assert refused is not None
