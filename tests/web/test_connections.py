"""Slow and surplus clients against the real server (uvicorn with Vigil's protocol) on
127.0.0.1: raw sockets, so the client can be as slow as an attacker. Every wait is for a
condition (the server closing, an answer), with a generous deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from vigil.web import connections
from vigil.web.connections import GuardedHttpProtocol, connection_cap
from vigil.web.serve import VigilServer

from .support import DEADLINE, Api, running_api, served, wait_until

# Short enough that a slow client is closed within seconds; long enough that an honest
# request, sent at once, arrives first even when a busy machine holds the worker up (the server
# and its clients share the test's event loop: at 0.5 s an honest request was once closed).
FAST = {"header_timeout": 2.0, "body_timeout": 2.0}
KEEPALIVE = 0.4  # seconds between the event stream's keep-alive comments


@contextlib.asynccontextmanager
async def server(url: str, **changes: Any) -> AsyncIterator[tuple[Api, str, int]]:
    async with running_api(url, settings_changes=changes) as api:
        async with served(api.app) as (base, _server):
            yield api, base, int(base.rpartition(":")[2])


@contextlib.asynccontextmanager
async def uvicorn_of(url: str, **changes: Any) -> AsyncIterator[tuple[VigilServer, int]]:
    async with running_api(url, settings_changes=changes) as api:
        async with served(api.app) as (base, running):
            yield running, int(base.rpartition(":")[2])


class Slow:
    """A client that opens a connection and sends what it is told, when it is told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._trickle: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, port: int) -> Slow:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def trickle(self, piece: bytes, every: float = 0.1) -> None:
        """Keep sending ``piece`` every ``every`` seconds, as a slowloris client does."""

        async def forever() -> None:
            with contextlib.suppress(ConnectionError):
                while True:
                    await asyncio.sleep(every)
                    self.writer.write(piece)
                    await self.writer.drain()

        self._trickle = asyncio.ensure_future(forever())

    async def answer(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        try:
            return await asyncio.wait_for(self.reader.read(), DEADLINE)
        except ConnectionResetError:
            return b""

    async def close(self) -> None:
        if self._trickle is not None:
            self._trickle.cancel()
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def test_a_client_trickling_its_headers_is_closed(migrated_sqlite_url: str) -> None:
    async with server(migrated_sqlite_url, **FAST) as (_api, base, port):
        slow = await Slow.connect(port)
        slow.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        slow.trickle(b"X-Slow: y\r\n")  # never the blank line that ends the head
        assert await slow.answer() == b""  # closed, without an answer
        await slow.close()
        async with httpx.AsyncClient(base_url=base) as client:  # honest clients are served
            assert (await client.get("/api/health")).status_code == 200


async def test_a_client_that_says_nothing_is_closed(migrated_sqlite_url: str) -> None:
    async with server(migrated_sqlite_url, **FAST) as (_api, _base, port):
        silent = await Slow.connect(port)
        assert await silent.answer() == b""
        await silent.close()


async def test_a_kept_alive_connection_trickling_its_next_request_is_closed(
    migrated_sqlite_url: str,
) -> None:
    async with server(migrated_sqlite_url, **FAST, keepalive_timeout=60) as (_api, _base, port):
        slow = await Slow.connect(port)
        slow.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.wait_for(slow.reader.readuntil(b"\r\n\r\n"), DEADLINE)
        assert first.startswith(b"HTTP/1.1 200")
        slow.send(b"GET /api/health HTTP/1.1\r\n")  # each byte once reset uvicorn's timer
        slow.trickle(b"X-Slow: y\r\n")
        rest = await slow.answer()
        assert b"HTTP/1.1" not in rest.partition(b"\r\n\r\n")[2]  # no second answer
        await slow.close()


@pytest.mark.parametrize("pieces", [1, 40], ids=["at-once", "in-pieces"])
async def test_a_head_past_16_kib_is_answered_431_and_closed(
    migrated_sqlite_url: str, pieces: int
) -> None:
    async with server(migrated_sqlite_url) as (_api, base, port):
        big = await Slow.connect(port)
        head = b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + b"X-Big: y\r\n" * 2000
        size = -(-len(head) // pieces)
        for start in range(0, len(head), size):
            big.send(head[start : start + size])
            await big.writer.drain()
        answer = await big.answer()  # the blank line that would end the head never came
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer
        assert b"connection: close" in answer.lower()
        await big.close()
        async with httpx.AsyncClient(base_url=base) as client:  # 15 KiB of headers is fine
            filler = {f"x-fill-{n}": "y" * 1000 for n in range(15)}
            assert (await client.get("/api/health", headers=filler)).status_code == 200


async def test_a_big_body_is_not_taken_for_a_head(migrated_sqlite_url: str) -> None:
    async with server(migrated_sqlite_url) as (api, base, _port):
        samples = [{"metric": "gateway_latency", "value": float(n)} for n in range(5000)]
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(2):  # the second on the same connection, after a big body
                pushed = await client.post(
                    "/api/ingest",
                    json={"instance": "big", "samples": samples},
                    headers={"Authorization": f"Bearer {api.tokens['ingest']}"},
                )
                assert pushed.status_code == 200, pushed.text
                assert pushed.json()["accepted"] == len(samples)


async def test_a_client_trickling_its_body_is_answered_408_and_closed(
    migrated_sqlite_url: str,
) -> None:
    async with server(migrated_sqlite_url, **FAST) as (api, _base, port):
        slow = await Slow.connect(port)
        head = (
            "POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {api.tokens['ingest']}\r\nContent-Length: 100000\r\n\r\n"
        )
        slow.send(head.encode() + b'{"instance": "a", "samples": [')
        slow.trickle(b" ")
        answer = await slow.answer()
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        assert b"connection: close" in answer.lower()
        await slow.close()


async def test_a_long_answer_is_not_cut(migrated_sqlite_url: str) -> None:
    """The deadlines are for what the client sends: a response that lasts longer than them
    (the event stream) goes on."""
    async with (
        running_api(migrated_sqlite_url, settings_changes=FAST, keepalive_seconds=KEEPALIVE) as api,
        served(api.app) as (base, _server),
        httpx.AsyncClient(base_url=base, headers=api.auth("viewer")) as client,
        client.stream("GET", "/api/events") as events,
    ):
        lines = events.aiter_lines()

        async def next_line() -> str:
            return await asyncio.wait_for(anext(lines), DEADLINE)

        comments = 0
        past_both = max(FAST.values()) / KEEPALIVE + 1  # keep-alives, past both deadlines
        while comments < past_both:
            comments += (await next_line()) == ": keep-alive"
        await api.breach("gateway_latency", 500.0)
        while not (await next_line()).startswith("id: "):
            pass


async def test_at_the_limit_a_new_client_takes_the_place_of_the_slowest(
    migrated_sqlite_url: str,
) -> None:
    async with uvicorn_of(migrated_sqlite_url, max_connections=10, header_timeout=60) as (
        running,
        port,
    ):
        crowd = [await Slow.connect(port) for _ in range(10)]  # each never sends a request
        await wait_until(lambda: len(running.server_state.connections) == 10)
        honest = await Slow.connect(port)
        honest.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await honest.answer()).startswith(b"HTTP/1.1 200 OK\r\n")
        assert await crowd[0].answer() == b""  # the one that waited longest made room
        await honest.close()
        for client in crowd:
            await client.close()


async def test_when_every_connection_is_busy_the_next_is_refused_clearly(
    migrated_sqlite_url: str,
) -> None:
    changes = {"max_connections": 10, "header_timeout": 60, "body_timeout": 60}
    async with uvicorn_of(migrated_sqlite_url, **changes) as (running, port):
        busy = []
        for _ in range(10):  # each in the middle of a request: nothing to close for room
            client = await Slow.connect(port)
            client.send(b"POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            busy.append(client)
        await wait_until(lambda: len(running.server_state.connections) == 10)
        protocol = running.config.http_protocol_class
        assert issubclass(protocol, GuardedHttpProtocol)
        await wait_until(lambda: not protocol.waiting)  # every head has arrived
        refused = await Slow.connect(port)
        refused.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await refused.answer()
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
        assert b"retry-after: 5" in answer.lower()
        assert answer.endswith(b"too many connections: try again shortly\n")
        await refused.close()
        for client in busy:
            await client.close()
        await wait_until(lambda: not running.server_state.connections)
        again = await Slow.connect(port)
        again.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await again.answer()).startswith(b"HTTP/1.1 200 OK\r\n")
        await again.close()


# -- the open-files limit ---------------------------------------------------------------------


def test_the_cap_stays_below_the_open_files_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 1024))
    assert connection_cap(1000) == 1024 - connections.FILES_HEADROOM
    assert "the open-files limit is 1024" in caplog.text
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (65536, 65536))
    assert connection_cap(1000) == 1000


def test_serve_raises_its_open_files_limit_to_the_hard_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    script = (
        "import resource; from vigil.web.connections import raise_open_files_limit; "
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=DEADLINE,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard)),
    ).stdout.split()
    expected = str(hard if hard != resource.RLIM_INFINITY else max(low, 1 << 20))
    assert output == [expected, expected]


class Written:
    """A transport that keeps what is written to it."""

    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def cycle_on(transport: Written, *, http_version: str) -> RequestResponseCycle:
    """uvicorn's own cycle of one GET, as its protocol makes it."""
    scope: Any = {"type": "http", "method": "GET", "http_version": http_version, "headers": []}
    return RequestResponseCycle(
        scope=scope,
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=http_version == "1.1",
        on_response=lambda: None,
    )


@pytest.mark.parametrize("body", [b"x", b"id: 7\nevent: e\ndata: {}\n\n", bytes(range(256)) * 70])
async def test_a_chunk_is_framed_as_uvicorn_frames_it(body: bytes) -> None:
    transport = Written()
    cycle = cycle_on(transport, http_version="1.1")
    await cycle.send({"type": "http.response.start", "status": 200, "headers": []})
    assert b"transfer-encoding: chunked" in transport.data
    transport.data = b""
    await cycle.send({"type": "http.response.body", "body": body, "more_body": True})
    assert transport.data == connections.chunk(body)


async def test_an_http_1_0_stream_goes_unframed_and_ends_by_closing() -> None:
    transport = Written()
    cycle = cycle_on(transport, http_version="1.0")
    cycle.__class__ = connections._Http10Cycle
    await cycle.send({"type": "http.response.start", "status": 200, "headers": []})
    head = transport.data.lower()
    assert b"transfer-encoding" not in head and b"connection: close" in head
    assert connections.ChunkWriter.of(cycle.send) is None
    transport.data = b""
    for part in (b"id: 1\n\n", b"id: 2\n\n"):
        await cycle.send({"type": "http.response.body", "body": part, "more_body": True})
    await cycle.send({"type": "http.response.body", "body": b"end", "more_body": False})
    assert transport.data == b"id: 1\n\nid: 2\n\nend"
    assert cycle.response_complete and transport.closed


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_a_sized_answer_keeps_its_length_on_either_version(
    migrated_sqlite_url: str, version: str
) -> None:
    async with server(migrated_sqlite_url) as (_, _, port):
        client = await Slow.connect(port)
        client.send(f"GET /api/health HTTP/{version}\r\nConnection: close\r\n\r\n".encode())
        answer = await client.answer()
        await client.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert b"transfer-encoding" not in head.lower()
    assert f"content-length: {len(body)}".encode() in head.lower()
    assert "status" in json.loads(body)  # all of it, no more
