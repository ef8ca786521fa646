"""The live event stream over real HTTP: a running uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core import Event, EventKind

from .support import DEADLINE, LATENCY, PASSWORD, T0, Api, running_api, served, wait_until

# httpx gives up on a read after 5 s by default: a stream that waits longer for its next frame
# (a loaded machine storing 3,000 events, or a slow cycle, before the first one; keep-alives
# come only every 15 s) failed with ReadTimeout though nothing was wrong. Each wait for a frame
# is bounded by DEADLINE instead (Reader.next), as every condition a test waits on.
PATIENT = httpx.Timeout(DEADLINE)


def patient(base: str) -> httpx.AsyncClient:
    """A client of the served app that waits for a stream's frames as long as the test does."""
    return httpx.AsyncClient(base_url=base, timeout=PATIENT)


@dataclass(frozen=True)
class Frame:
    id: int
    event: str
    data: dict[str, Any]


class Reader:
    """Reads an SSE response: frames, and the comments between them."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self) -> Frame | None:
        """The next frame; ``None`` when the stream ends."""

        async def read() -> Frame | None:
            fields: dict[str, str] = {}
            async for line in self._lines:
                if not line:
                    if "id" in fields:
                        data = json.loads(fields["data"])
                        return Frame(int(fields["id"]), fields["event"], data)
                    fields.clear()
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    name, _, value = line.partition(": ")
                    fields[name] = value
            return None

        return await asyncio.wait_for(read(), DEADLINE)

    async def take(self, count: int) -> list[Frame]:
        frames: list[Frame] = []
        for _ in range(count):
            frame = await self.next()
            assert frame is not None, f"the stream ended after {len(frames)} of {count} frames"
            frames.append(frame)
        return frames


@contextlib.asynccontextmanager
async def stream(
    client: httpx.AsyncClient, api: Api, *, after: int | None = None, query: bool = False
) -> AsyncIterator[Reader]:
    headers = api.auth("viewer")
    params = {}
    if after is not None and query:
        params["last_event_id"] = str(after)
    elif after is not None:
        headers["Last-Event-ID"] = str(after)
    async with client.stream("GET", "/api/events", headers=headers, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        yield Reader(response)


async def events_after(api: Api, last_id: int) -> list[Event]:
    return list(await api.vigil.store.events_after(last_id, limit=10_000))


async def test_every_event_arrives_in_order_with_its_id_kind_and_data(api: Api) -> None:
    async with served(api.app) as (base, _), patient(base) as client:
        async with stream(client, api) as reader:
            await wait_until(lambda: api.app.state.vigil_web.live.clients == 1)
            [opened] = await api.breach(LATENCY, 150)
            assert opened.incident is not None
            await api.post(f"/api/alerts/incidents/{opened.incident.id}/acknowledge")
            await api.put(f"/api/alerts/config/{LATENCY}", json={"unit": "s"})
            frames = await reader.take(3)
    assert [frame.event for frame in frames] == [
        "incident.opened",
        "incident.acknowledged",
        "rule.changed",
    ]
    stored = await events_after(api, opened.id - 1)  # type: ignore[operator]
    assert [frame.id for frame in frames] == [event.id for event in stored]
    first = frames[0].data
    assert set(first) == {"id", "kind", "at", "metric", "rule", "by", "incident", "data"}
    assert first["rule"] == LATENCY and first["incident"]["rule"] == LATENCY
    assert (first["id"], first["kind"], first["metric"]) == (opened.id, "incident.opened", LATENCY)
    assert first["incident"]["id"] == str(opened.incident.id)
    assert first["incident"]["status"] == "active" and first["incident"]["duration_s"] == 0
    assert (frames[1].data["by"], frames[1].data["incident"]["status"]) == (
        "admin-bot",
        "acknowledged",
    )
    assert frames[2].data["data"]["changes"] == {"unit": ["ms", "s"]}
    assert frames[2].data["rule"] == LATENCY


class SendSpy:
    """A middleware of the app that notes what the event stream sends through it."""

    def __init__(self, app: ASGIApp, *, seen: list[Message]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/events":
            await self.app(scope, receive, send)
            return

        async def noted(message: Message) -> None:
            self.seen.append(message)
            await send(message)

        await self.app(scope, receive, noted)


async def test_a_streams_head_passes_through_the_middleware_and_its_frames_go_straight_out(
    api: Api,
) -> None:
    """The frames, written thousands of times over, skip the middleware's ``send`` wrappers
    (``ServerSend``); the head is the app's like any response's."""
    seen: list[Message] = []
    api.app.add_middleware(SendSpy, seen=seen)
    async with served(api.app) as (base, _), patient(base) as client:
        async with stream(client, api) as reader:
            assert reader.response.headers["x-accel-buffering"] == "no"
            live = api.app.state.vigil_web.live
            await wait_until(lambda: live.clients == 1)
            # Caught up, its frames go past uvicorn's send too, straight to its socket.
            [streamed] = live._clients
            assert streamed.direct is not None
            [opened] = await api.breach(LATENCY, 150)
            frame = await reader.next()
            assert frame is not None and frame.id == opened.id
    [start] = seen
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert dict(start["headers"]) == {
        b"content-type": b"text/event-stream; charset=utf-8",
        b"cache-control": b"no-cache",
        b"x-accel-buffering": b"no",
    }


async def missed_and_resumed(api: Api, *, query: bool) -> None:
    async with served(api.app) as (base, _), patient(base) as client:
        async with stream(client, api) as reader:
            await wait_until(lambda: api.app.state.vigil_web.live.clients == 1)
            await api.breach(LATENCY, 150)
            [seen] = await reader.take(1)
        # gone: everything in between is missed (several rule changes, an escalation...)
        for unit in ("a", "b", "c", "d", "e", "f"):
            await api.put(f"/api/alerts/config/{LATENCY}", json={"unit": unit})
        await api.breach(LATENCY, 250)
        missed = await events_after(api, seen.id)
        assert len(missed) == 7
        async with stream(client, api, after=seen.id, query=query) as reader:
            replayed = await reader.take(len(missed))
            assert [(f.id, f.event) for f in replayed] == [(e.id, e.kind.value) for e in missed]
            await api.post("/api/alerts/incidents/acknowledge-all")  # then live
            [live] = await reader.take(1)
    assert live.event == "incident.acknowledged" and live.id == (missed[-1].id or 0) + 1


async def test_reconnecting_with_last_event_id_gets_exactly_the_missed_events(api: Api) -> None:
    await missed_and_resumed(api, query=False)


async def test_the_query_parameter_resumes_too(api: Api) -> None:
    await missed_and_resumed(api, query=True)


async def test_missed_events_older_than_the_ring_come_from_the_log(migrated_url: str) -> None:
    async with running_api(migrated_url, event_ring=3) as api:
        await missed_and_resumed(api, query=False)


async def test_a_bad_last_event_id_is_422(api: Api) -> None:
    for header in ("abc", "-1", "1.5", str(2**63)):
        response = await api.get("/api/events", headers={"Last-Event-ID": header})
        assert response.status_code == 422, header
        assert response.json()["error"]["field"] == "Last-Event-ID"
    response = await api.get("/api/events", params={"last_event_id": -1})
    assert (response.status_code, response.json()["error"]["field"]) == (422, "last_event_id")


async def test_an_idle_stream_gets_keep_alive_comments(migrated_url: str) -> None:
    async with running_api(migrated_url, keepalive_seconds=0.05) as api:
        async with served(api.app) as (base, _), patient(base) as client:
            async with stream(client, api) as reader:

                async def two_keep_alives() -> None:
                    count = 0
                    async for line in reader.response.aiter_lines():
                        count += line == ": keep-alive"
                        if count == 2:
                            return

                await asyncio.wait_for(two_keep_alives(), DEADLINE)


async def test_streams_end_when_the_server_shuts_down(api: Api) -> None:
    async with served(api.app) as (base, server), patient(base) as client:
        async with stream(client, api) as first, stream(client, api, after=0) as second:
            await wait_until(lambda: api.app.state.vigil_web.live.clients == 2)
            server.should_exit = True
            assert await first.next() is None
            while await second.next() is not None:  # it replays the log, then ends too
                pass
    assert api.app.state.vigil_web.live.clients == 0


async def test_streams_end_when_vigil_stops(api: Api) -> None:
    async with served(api.app) as (base, _), patient(base) as client:
        async with stream(client, api) as reader:
            await wait_until(lambda: api.app.state.vigil_web.live.clients == 1)
            await api.vigil.aclose()
            assert await reader.next() is None
        response = await client.get("/api/events", headers=api.auth("viewer"))
        assert response.status_code == 503


# -- back-pressure ----------------------------------------------------------------------------

BIG_EVENTS = 3000  # x ~2.3 kB: far more than a small socket buffer and the shared ring hold
ID_LINE = re.compile(rb"^id: (\d+)$", re.MULTILINE)


async def publish_big_events(api: Api, count: int) -> list[int]:
    """Real, stored events (so a client behind the ring can replay them from the log)."""
    padding = "x" * 2000
    made = [
        Event(kind=EventKind.LEADER_CHANGED, at=T0 + timedelta(seconds=n), data={"pad": padding})
        for n in range(count)
    ]
    stored = await api.vigil.store.append_events(made)
    api.vigil.bus.publish(stored)
    return [event.id or 0 for event in stored]


async def test_an_http_1_0_client_gets_its_frames_unchunked(api: Api) -> None:
    """HTTP/1.0 has no chunked framing: h11 sends such a stream's body as it is, and so must
    the direct writes to caught-up clients (they only frame chunks for chunked responses)."""
    async with served(api.app) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            token = api.tokens["viewer"]
            writer.write(
                f"GET /api/events HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
            assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in head.lower()
            live = api.app.state.vigil_web.live
            await wait_until(lambda: live.clients == 1)
            [streamed] = live._clients
            assert streamed.direct is None
            [opened] = await api.breach(LATENCY, 150)
            body = await asyncio.wait_for(reader.readuntil(f"id: {opened.id}\n".encode()), DEADLINE)
            assert body == f"retry: 3000\n\nid: {opened.id}\n".encode()
        finally:
            writer.close()


def stalled_connection(port: int, token: str) -> socket.socket:
    """A client that asks for the stream and then reads nothing, with a tiny receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    sock.setblocking(False)
    return sock


async def test_a_stalled_client_delays_no_one_and_catches_up_later(api: Api) -> None:
    async with served(api.app) as (base, server), patient(base) as client:
        port = int(base.rsplit(":", 1)[1])
        stalled = stalled_connection(port, api.tokens["viewer"])
        try:
            async with stream(client, api) as fast:
                await wait_until(lambda: api.app.state.vigil_web.live.clients == 2)
                ids = await publish_big_events(api, BIG_EVENTS)
                # the reading client gets every event, in order, while the other reads nothing
                received = [frame.id for frame in await fast.take(BIG_EVENTS)]
                assert received == ids

                # ...and the stalled one really is held back by flow control, with only a
                # bounded amount buffered for it
                def paused() -> list[Any]:
                    connections: list[Any] = list(server.server_state.connections)  # h11
                    return [c for c in connections if c.flow.write_paused]

                await wait_until(lambda: len(paused()) == 1)
                [held] = paused()
                assert held.transport.get_write_buffer_size() <= 4 * 64 * 1024

            # the stalled client reads again: it gets everything, in order, nothing twice
            loop = asyncio.get_running_loop()
            seen: list[int] = []
            buffer = b""

            async def read_all() -> None:
                nonlocal buffer
                while not seen or seen[-1] != ids[-1]:
                    chunk = await loop.sock_recv(stalled, 1 << 16)
                    assert chunk, "the server closed the stalled stream"
                    complete, newline, buffer = (buffer + chunk).rpartition(b"\n")
                    seen.extend(int(n) for n in ID_LINE.findall(complete + newline))

            await asyncio.wait_for(read_all(), DEADLINE)
            assert [n for n in seen if n >= ids[0]] == ids
        finally:
            stalled.close()


# -- streams end with their credentials -----------------------------------------------------


async def _until_streams(api: Api, count: int) -> None:
    await wait_until(lambda: api.app.state.vigil_web.live.clients == count)


async def _ends(reader: Reader) -> bool:
    """Whether the stream ends (rather than carrying on), reading through what it sends."""
    while True:
        frame = await reader.next()  # the deadline fails the test if it never ends
        if frame is None:
            return True


@contextlib.asynccontextmanager
async def quick_checks(url: str) -> AsyncIterator[Api]:
    async with running_api(url, auth_cache_seconds=0.2, recheck_seconds=0.2) as api:
        yield api


async def test_a_stream_ends_soon_after_its_token_is_revoked(migrated_url: str) -> None:
    async with quick_checks(migrated_url) as api:
        async with served(api.app) as (base, _), patient(base) as client:
            async with (
                stream(client, api) as revoked,
                client.stream("GET", "/api/events", headers=api.auth("admin")) as response,
            ):
                kept = Reader(response)
                await _until_streams(api, 2)
                [token] = [t for t in await api.vigil.store.list_tokens() if t.name == "viewer-bot"]
                await api.vigil.store.revoke_token(token.id, now=T0)
                assert await _ends(revoked)
                await _until_streams(api, 1)
                await api.breach(LATENCY, 150)  # the admin's stream carries on
                [frame] = await kept.take(1)
                assert frame.event == "incident.opened"
            refused = await client.get("/api/events", headers=api.auth("viewer"))
            assert refused.status_code == 401


async def test_a_stream_ends_when_its_user_is_removed_or_signs_out(migrated_url: str) -> None:
    async with quick_checks(migrated_url) as api:
        async with served(api.app) as (base, _):
            async with (
                patient(base) as vic,
                patient(base) as ana,
            ):
                for client, name in ((vic, "vic"), (ana, "ana")):
                    signed = await client.post(
                        "/api/auth/login", json={"name": name, "password": PASSWORD}
                    )
                    assert signed.status_code == 200
                csrf = signed.json()["csrf_token"]
                async with (
                    vic.stream("GET", "/api/events") as one,
                    ana.stream("GET", "/api/events") as two,
                ):
                    await _until_streams(api, 2)
                    await api.vigil.store.delete_user("vic")
                    assert await _ends(Reader(one))
                    await _until_streams(api, 1)
                    logout = await ana.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
                    assert logout.status_code == 204
                    assert await _ends(Reader(two))
                    await _until_streams(api, 0)


async def test_a_caught_up_client_whose_socket_fills_holds_back_only_itself(
    migrated_url: str,
) -> None:
    """Events one at a time: each goes straight to the caught-up clients, so the stalled
    client's socket fills during such a direct write, which then has to wait for it. (Ids
    the bus is given directly, held in a ring large enough for all: nothing is replayed.)"""
    async with (
        running_api(migrated_url, event_ring=BIG_EVENTS + 10) as api,
        served(api.app) as (base, server),
        patient(base) as client,
    ):
        port = int(base.rsplit(":", 1)[1])
        stalled = stalled_connection(port, api.tokens["viewer"])
        try:
            async with stream(client, api) as fast:
                live = api.app.state.vigil_web.live
                await wait_until(lambda: live.clients == 2)
                padding = "x" * 2000
                first = api.vigil.bus.last_id + 1
                ids = list(range(first, first + BIG_EVENTS))
                reading = asyncio.create_task(fast.take(BIG_EVENTS))

                async def one_at_a_time() -> None:
                    for n in ids:
                        at = T0 + timedelta(seconds=n)
                        api.vigil.bus.publish(
                            [
                                Event(
                                    id=n,
                                    kind=EventKind.LEADER_CHANGED,
                                    at=at,
                                    data={"pad": padding},
                                )
                            ]
                        )
                        while live.last_id < n:  # noqa: ASYNC110 (the follower takes it in,
                            await asyncio.sleep(0)  # and delivers it alone on the next turn)
                        await asyncio.sleep(0)

                await asyncio.wait_for(one_at_a_time(), DEADLINE)
                received = [frame.id for frame in await reading]
                assert received == ids

                def paused() -> list[Any]:
                    connections: list[Any] = list(server.server_state.connections)
                    return [c for c in connections if c.flow.write_paused]

                await wait_until(lambda: len(paused()) == 1)
                [held] = paused()
                assert held.transport.get_write_buffer_size() <= 4 * 64 * 1024

            loop = asyncio.get_running_loop()
            seen: list[int] = []
            buffer = b""

            async def read_all() -> None:
                nonlocal buffer
                while not seen or seen[-1] != ids[-1]:
                    chunk = await loop.sock_recv(stalled, 1 << 16)
                    assert chunk, "the server closed the stalled stream"
                    complete, newline, buffer = (buffer + chunk).rpartition(b"\n")
                    seen.extend(int(n) for n in ID_LINE.findall(complete + newline))

            await asyncio.wait_for(read_all(), DEADLINE)
            assert [n for n in seen if n >= ids[0]] == ids
        finally:
            stalled.close()


# A stream's request as the ASGI app sees it, for the tests that call the stream directly.
STREAM_SCOPE = {"type": "http", "method": "GET", "path": "/api/events", "headers": []}


async def send_broken(message: Any) -> None:
    """A connection that breaks at the first event written to it."""
    if b"event:" in message.get("body", b""):
        raise ConnectionResetError("the peer went away")


async def test_a_client_whose_write_fails_ends_alone(api: Api) -> None:
    """A stream whose ``send`` raises (its connection broke under it) ends; the others go on
    receiving, in order."""
    live = api.app.state.vigil_web.live
    disconnect = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    good: list[bytes] = []

    async def send_good(message: Any) -> None:
        good.append(message.get("body", b""))

    serving = [
        asyncio.create_task(live.response(None)(STREAM_SCOPE, receive, send))
        for send in (send_good, send_broken)
    ]
    try:
        await wait_until(lambda: live.clients == 2)
        first = (await api.breach(LATENCY, 150))[0]
        with contextlib.suppress(ConnectionResetError):  # its final write fails too
            await asyncio.wait_for(serving[1], DEADLINE)
        assert live.clients == 1
        await api.post("/api/alerts/incidents/acknowledge-all")
        await wait_until(lambda: len(ID_LINE.findall(b"".join(good))) == 2)
        ids = [int(n) for n in ID_LINE.findall(b"".join(good))]
        assert ids == [first.id, (first.id or 0) + 1]
    finally:
        disconnect.set()
        await asyncio.wait_for(asyncio.gather(*serving, return_exceptions=True), DEADLINE)


async def test_a_stream_cancelled_while_its_disconnect_watch_ends_is_cancelled(api: Api) -> None:
    """A stream ending stops the task that watches for the client's disconnect and waits for
    it. Cancelled during that wait (a server shutting down), the stream is cancelled: it does
    not swallow its own cancellation and carry on (Python 3.11's suppress-and-await did)."""
    live = api.app.state.vigil_web.live
    lingering = asyncio.Event()
    release = asyncio.Event()

    async def receive() -> dict[str, Any]:
        try:
            await asyncio.Event().wait()  # the client never goes
        except asyncio.CancelledError:
            lingering.set()  # the watch is being stopped: it takes a moment to end
            await release.wait()
            raise
        raise AssertionError("unreachable")

    # The broken connection ends the stream at the first event.
    serving = asyncio.create_task(live.response(None)(STREAM_SCOPE, receive, send_broken))
    try:
        await wait_until(lambda: live.clients == 1)
        await api.breach(LATENCY, 150)
        await asyncio.wait_for(lingering.wait(), DEADLINE)
        serving.cancel()
    finally:
        release.set()
    await asyncio.wait([serving], timeout=DEADLINE)
    assert serving.done() and serving.cancelled()
