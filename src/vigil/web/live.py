"""The live event stream (Server-Sent Events) and how it fans out.

One follower task per app reads the bus and renders each event to its SSE frame once, into a
bounded ring shared by every client. Each client keeps only a cursor (the last id it was
sent). A client that is caught up is written to straight from the follower: one loop over the
clients per batch of events, each write the chunk (framed once for all) handed to the client's
socket (``connections.ChunkWriter``; where the server does not allow that, one run of the
client's ASGI ``send`` that completes at once), with no task of the client's to wake. Only a
client that needs more than that runs its own task: one whose socket is full (its ``send``
waits for uvicorn's flow control, so it blocks only itself and holds no queue), or one behind
the ring, which reads what it missed from the event log as a client resuming with
``Last-Event-ID`` does. A keep-alive comment goes to every idle client every ``keepalive``
seconds; ``close()`` (server shutdown) and the bus closing (Vigil stopping) end every stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core import Event
from vigil.runtime import EventBus
from vigil.web import connections
from vigil.web.errors import StreamClosedError
from vigil.web.schemas import EventOut

if TYPE_CHECKING:
    from vigil.runtime import Vigil

logger = logging.getLogger(__name__)

RING = 1024
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 2.0
RECHECKS_AT_ONCE = 8
RETRY_MS = 3000
REPLAY_BATCH = 500
MAX_WRITE = 64 * 1024  # bytes per write, so a stalled client's buffer stays small


class Wake(Enum):
    EVENTS = "events"
    END = "end"


def render(event: Event) -> bytes:
    """One event as an SSE frame: its id, its kind as the event name, its JSON as data."""
    data = EventOut.of(event).model_dump_json()
    return f"id: {event.id}\nevent: {event.kind.value}\ndata: {data}\n\n".encode()


Check = Callable[[], Awaitable[bool]]


class _Client:
    """One stream. While ``live`` (caught up, its task asleep) the follower writes to it
    directly; otherwise its task does, alone: the two never write at once."""

    __slots__ = (
        "check",
        "credential",
        "cursor",
        "direct",
        "gone",
        "live",
        "send",
        "waiter",
        "writing",
    )

    def __init__(
        self, credential: str | None = None, check: Check | None = None, *, cursor: int = 0
    ) -> None:
        self.waiter: asyncio.Future[Wake] | None = None
        self.gone = False
        self.live = False
        self.cursor = cursor  # the id of the last event written to it
        self.send: Send | None = None
        self.direct: connections.ChunkWriter | None = None  # past ``send``, if allowed
        self.writing: asyncio.Future[None] | None = None  # a direct write that had to wait
        self.credential = credential
        self.check = check

    def wake(self, why: Wake) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(why)

    def write_now(self, message: Message, framed: bytes) -> bool:
        """Write ``message`` (``framed``: its body as one chunk) from outside the client's
        task: whether it is written already. Straight to the socket when it can go at once
        (``ChunkWriter``), else through ``send``; if ``send`` has to wait (flow control), the
        client stops being live, the write carries on by itself, and the client's task is
        woken when it is done."""
        if self.direct is not None and self.direct.write(framed):
            return True
        assert self.send is not None
        write = self.send(message).__await__()
        try:
            waited = write.send(None)
        except StopIteration:
            return True
        except Exception:
            logger.debug("a live stream's write failed", exc_info=True)
            self.end()
            return False
        self.live = False
        self.writing = asyncio.get_running_loop().create_future()
        _Resume(write, self._written).wait(waited)
        return False

    def _written(self, error: BaseException | None) -> None:
        if self.writing is not None and not self.writing.done():
            self.writing.set_result(None)
        self.writing = None
        if error is not None:
            logger.debug("a live stream's write failed", exc_info=error)
            self.end()
        else:
            self.wake(Wake.EVENTS)

    def end(self) -> None:
        self.live = False
        self.gone = True
        self.wake(Wake.END)


class _Resume:
    """Runs the rest of an awaitable that was started outside any task and had to wait, as a
    task would: resumed each time what it waits for is done, ``done`` called at its end."""

    __slots__ = ("coroutine", "done")

    def __init__(
        self,
        coroutine: Generator[Any, None, Any],
        done: Callable[[BaseException | None], None],
    ) -> None:
        self.coroutine = coroutine
        self.done = done

    def wait(self, waited: Any) -> None:
        if waited is None:  # a bare yield (sleep(0)): just run again soon
            asyncio.get_running_loop().call_soon(self.step)
        elif getattr(waited, "_asyncio_future_blocking", False):
            waited._asyncio_future_blocking = False
            waited.add_done_callback(self.step)
        else:
            self.coroutine.close()
            self.done(RuntimeError(f"a write awaited {waited!r}, not an asyncio future"))

    def step(self, _: object = None) -> None:
        try:
            waited = self.coroutine.send(None)
        except StopIteration:
            self.done(None)
        except BaseException as error:  # reported to the client, which ends its stream
            self.done(error)
        else:
            self.wait(waited)


class LiveStream:
    def __init__(
        self,
        vigil: Vigil,
        *,
        ring: int = RING,
        keepalive: float = KEEPALIVE_SECONDS,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        self.vigil = vigil
        self.keepalive = keepalive
        self.recheck = recheck
        self._frames: deque[tuple[int, bytes]] = deque(maxlen=ring)
        self._floor = 0  # the ring holds every event with floor < id <= last
        self._last = 0
        self._bus: EventBus | None = None
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._wake_due = False
        self._occupied = asyncio.Event()  # set while a client is connected

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def last_id(self) -> int:
        """The id of the last event taken from the bus."""
        return self._last

    @property
    def closed(self) -> bool:
        return self._closed

    def response(
        self, after: int | None, *, credential: str | None = None, check: Check | None = None
    ) -> EventStreamResponse:
        """The stream for one client: events after ``after`` (replayed from the log), or
        from now when ``None``. ``check()`` says whether ``credential`` (the token or cookie
        that opened it) still may read; the stream ends when it says no."""
        if self._closed:
            raise StreamClosedError("the server is shutting down")
        bus = self.vigil.bus  # NotStartedError (503) when Vigil is not running
        if bus is not self._bus:
            self._follow(bus)
        # An id ahead of this instance's bus is kept: another instance may have sent it, and
        # this one will catch up; nothing at or below it is sent again.
        start = bus.last_id if after is None else after
        return EventStreamResponse(self, _Client(credential, check, cursor=start))

    async def aclose(self) -> None:
        """End every stream now (server shutdown) and refuse new ones."""
        self._closed = True
        self._end_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the shared side ------------------------------------------------------------------

    def _follow(self, bus: EventBus) -> None:
        """Start (or, after Vigil restarted, restart) following the bus."""
        for task in self._tasks:
            task.cancel()
        self._end_all()  # streams of a previous run of Vigil
        self._bus = bus
        self._frames.clear()
        self._floor = self._last = bus.last_id
        loop = asyncio.get_running_loop()
        for coroutine, name in (
            (self._read(bus), "vigil-web-events"),
            (self._tick(), "ticks"),
            (self._guard(), "credential-checks"),
        ):
            task = loop.create_task(coroutine, name=name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read(self, bus: EventBus) -> None:
        try:
            async for event in bus.subscribe(after=self._last):
                assert event.id is not None
                if len(self._frames) == self._frames.maxlen:
                    self._floor = self._frames[0][0]
                self._frames.append((event.id, render(event)))
                self._last = event.id
                if not self._wake_due:  # once per batch of events, not once per event
                    self._wake_due = True
                    asyncio.get_running_loop().call_soon(self._deliver)
        except Exception:
            logger.exception("the live stream stopped following events")
        # The bus closed (Vigil stopped): end the streams; a restarted Vigil starts afresh.
        if self._bus is bus:
            self._bus = None
            self._end_all()

    def _deliver(self) -> None:
        """The new frames to every client: written here to those caught up (each distinct
        chunk made into its message once), the others' tasks woken to write them."""
        self._wake_due = False
        messages: dict[int, tuple[Message, bytes, int]] = {}
        for client in list(self._clients):
            if not client.live:
                client.wake(Wake.EVENTS)  # not waiting (writing): ignored
                continue
            cursor = client.cursor
            if cursor < self._floor:  # behind the ring: its task replays from the log
                client.live = False
                client.wake(Wake.EVENTS)
                continue
            prepared = messages.get(cursor)
            if prepared is None:
                chunk, last = self._after(cursor)
                if not chunk:
                    continue
                prepared = messages[cursor] = (_body(chunk), connections.chunk(chunk), last)
            message, framed, last = prepared
            if client.write_now(message, framed):
                client.cursor = last
                if last < self._last:  # more than one write's worth: its task goes on
                    client.live = False
                    client.wake(Wake.EVENTS)
            else:
                # The write goes on by itself (its task is woken once it is done) or failed.
                client.cursor = last

    async def _tick(self) -> None:
        comment = b": keep-alive\n\n"
        keepalive, framed = _body(comment), connections.chunk(comment)
        while True:
            await self._occupied.wait()  # no client, no keep-alive to send: no wake-up
            await asyncio.sleep(self.keepalive)
            for client in list(self._clients):
                if client.live:
                    client.write_now(keepalive, framed)

    async def _guard(self) -> None:
        while True:
            await self._occupied.wait()
            await asyncio.sleep(self.recheck)
            await self.check_credentials()

    async def check_credentials(self) -> None:
        """End the streams whose credential no longer lets them read."""
        by_credential: dict[str, list[_Client]] = {}
        for client in self._clients:
            if client.check is not None and client.credential is not None and not client.gone:
                by_credential.setdefault(client.credential, []).append(client)
        slots = asyncio.Semaphore(RECHECKS_AT_ONCE)

        async def still_allowed(group: list[_Client]) -> None:
            check = group[0].check
            assert check is not None
            async with slots:
                try:
                    allowed = await check()
                except Exception:  # cannot tell now (database down): keep, ask again later
                    logger.debug("a live stream's credential could not be checked", exc_info=True)
                    return
            if not allowed:
                for client in group:
                    client.end()

        await asyncio.gather(*(still_allowed(group) for group in by_credential.values()))

    def _end_all(self) -> None:
        for client in self._clients:
            client.end()

    def _after(self, cursor: int) -> tuple[bytes, int]:
        """The frames right after ``cursor`` (at or above the floor), joined up to
        ``MAX_WRITE`` bytes, and the id of the last one taken."""
        if self._frames and self._frames[-1][0] == cursor + 1:  # the usual case: one new event
            return self._frames[-1][1], cursor + 1
        newer: list[tuple[int, bytes]] = []
        for ident, frame in reversed(self._frames):
            if ident <= cursor:
                break
            newer.append((ident, frame))
        return _take(reversed(newer), cursor)

    # -- one client -----------------------------------------------------------------------

    async def serve(self, client: _Client, receive: Receive, send: Send) -> None:
        # The client's own task writes only what the follower cannot write directly (see
        # _deliver); when woken it resumes one short coroutine, not the request's whole stack
        # of ASGI middleware coroutines.
        loop = asyncio.get_running_loop()
        client.send = send
        client.direct = connections.ChunkWriter.of(send)
        self._clients.add(client)
        self._occupied.set()
        watcher = loop.create_task(self._watch(receive, client))
        try:
            await loop.create_task(self._pump(client, send))
        finally:
            client.live = False
            self._clients.discard(client)
            if not self._clients:
                self._occupied.clear()
            watcher.cancel()
            # Waited for without awaiting it: its CancelledError stays its own, and this
            # task's own cancellation still ends it (suppressing around ``await watcher``
            # swallowed both on Python 3.11).
            await asyncio.wait([watcher])
        if client.writing is not None:  # a direct write still waiting for the socket
            await client.writing
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, client: _Client, send: Send) -> None:
        bus = self._bus
        await _write(send, f"retry: {RETRY_MS}\n\n".encode())
        while not client.gone and not self._closed and self._bus is bus:
            if client.writing is not None:  # the follower's write to it had to wait
                await client.writing
                continue
            if client.cursor < self._floor:
                client.cursor = await self._replay(client.cursor, send)
                continue
            chunk, cursor = self._after(client.cursor)
            if chunk:
                await _write(send, chunk)
                client.cursor = cursor
                continue
            client.waiter = asyncio.get_running_loop().create_future()
            client.live = True  # caught up: the follower writes to it from now on
            try:
                await client.waiter
            finally:
                client.live = False
                client.waiter = None

    async def _replay(self, cursor: int, send: Send) -> int:
        """Events past ``cursor`` from the log: the client is behind the ring."""
        events = await self.vigil.store.events_after(cursor, limit=REPLAY_BATCH)
        if not events:  # ids up to the floor no longer exist (retention): skip the gap
            return self._floor
        frames = [(event.id or 0, render(event)) for event in events]
        while frames:
            chunk, cursor = _take(frames, cursor)
            await _write(send, chunk)
            frames = [(ident, frame) for ident, frame in frames if ident > cursor]
        return cursor

    @staticmethod
    async def _watch(receive: Receive, client: _Client) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                client.end()
                return


def _take(frames: Iterable[tuple[int, bytes]], cursor: int) -> tuple[bytes, int]:
    """Join frames in order up to ``MAX_WRITE`` bytes (at least one); the last id taken."""
    taken: list[bytes] = []
    size = 0
    for ident, frame in frames:
        if taken and size + len(frame) > MAX_WRITE:
            break
        taken.append(frame)
        size += len(frame)
        cursor = ident
    return b"".join(taken), cursor


def _body(body: bytes) -> Message:
    return {"type": "http.response.body", "body": body, "more_body": True}


async def _write(send: Send, body: bytes) -> None:
    await send(_body(body))


SERVER_SEND = "vigil.server_send"  # the scope key ServerSend records the server's send under


class ServerSend:
    """The app's outermost layer, outside all of its middleware: records the server's own
    ``send`` in the scope of each HTTP request. A stream sends its head through every
    middleware (whatever they add to or check of a response's start applies to it as to any
    other), then writes its body with this ``send``: the frames of a stream are written
    thousands of times over, and each pass through a middleware's ``send`` wrapper (three of
    them in Starlette and FastAPI, which only note that the response has started) cost as
    much as the write itself. So no middleware of the app may change a response's body."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(self, stream: LiveStream, client: _Client) -> None:
        # No body and so no Content-Length: the response is as long as the stream lasts.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.stream = stream
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        # The body straight to the server (ServerSend), when the app is served as built.
        await self.stream.serve(self.client, receive, scope.get(SERVER_SEND, send))
