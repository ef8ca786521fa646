"""Slow and surplus clients shed by the server: uvicorn's HTTP/1.1 protocol with deadlines.

The protocol is uvicorn's on httptools (llhttp, the HTTP parser in C that Node.js uses). On
h11, the pure-Python parser it replaced, parsing a push and writing its answer took about a
fifth of the event loop's CPU, and an ingested sample cost about 11 % more CPU at saturation
(pushes of 100 samples, ``benchmarks/bench_peer.py``'s load, alternating runs).

uvicorn times out an idle keep-alive connection, but nothing else: a client that sends a
request's headers (or its body) one byte every few seconds holds its connection and a file
descriptor for ever, and one that opens more connections than the process may have files
makes every ``accept()`` fail (and asyncio log each failure). ``scripts/slow_clients.py``
measured it: 1,000 slow headers and 200 slow bodies, none closed in 40 s, ``/api/health``
failing, 186 MB of log. This protocol (uvicorn's ``http=`` setting takes a protocol class)
adds what is missing:

- a deadline for a request's head, from the moment the connection opens or the previous
  response ends: ``header_timeout``;
- a deadline for its body, from the end of the head: ``body_timeout`` (answered 408 when no
  response has started);
- at most ``max_connections`` open connections. At the cap, a new connection takes the place
  of the one that has waited longest for a request's head (a slow or idle client: closing it
  loses no request), so a crowd of slow clients cannot keep others out; when every
  connection has a request in progress, the new one is answered 503 with ``Retry-After`` and
  closed. ``connection_cap`` keeps the cap below the open-files limit, so ``accept()`` never
  runs out of descriptors.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

logger = logging.getLogger(__name__)

BACKLOG = 128  # connections the kernel queues, and asyncio accepts in one go
REFUSAL_LINGER = 1.0  # seconds a refused connection may take to read its 503
MAX_LINGERING = 16  # refusals read out at once; past it a refusal closes at once
# Descriptors kept free below the open-files limit. asyncio accepts up to BACKLOG connections
# each time the listening socket is ready, counts them (connection_made) two loop iterations
# later, and frees a closed one's descriptor one iteration after closing it: with clients
# connecting faster than the loop turns, three bursts are open and not yet counted or freed,
# so four are kept free. Then the refusals being read out, and the database, logs and the rest.
FILES_HEADROOM = 4 * BACKLOG + MAX_LINGERING + 64
REFUSAL_LOG_EVERY = 10.0  # seconds between two warnings about refused connections
# A request's line and headers received without their end, at most (h11's limit, kept): past
# it the head is refused. A whole head that arrives in one read is not counted, as in h11.
MAX_HEAD_BYTES = 16 * 1024
UNFRAMED = 1 << 62  # the length an unframed HTTP/1.0 response is counted down from


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit; the soft limit now.

    For ``vigil serve`` only: the command is the application, the library never does this.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            logger.warning("could not raise the open-files limit from %d to %d", soft, target)
    return soft


def connection_cap(max_connections: int) -> int:
    """``max_connections``, lowered to stay ``FILES_HEADROOM`` below the open-files limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    cap = max(10, soft - FILES_HEADROOM)
    if cap < max_connections:
        logger.warning(
            "serving at most %d connections, not %d: the open-files limit is %d "
            "(raise it with ulimit -n, or lower VIGIL_MAX_CONNECTIONS)",
            cap,
            max_connections,
            soft,
        )
    return min(cap, max_connections)


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, bound to ``limits``."""
    shared = {"limits": limits, "waiting": OrderedDict(), "refusals": _Refusals()}
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), shared)


class _Refusals:
    """What the connections of one server share: refusals being read out, connections closed
    to make room, and when that was last logged."""

    def __init__(self) -> None:
        self.lingering = 0
        self.refused = 0
        self.replaced = 0
        self.logged_at = -REFUSAL_LOG_EVERY

    def should_log(self) -> bool:
        now = time.monotonic()
        if now - self.logged_at < REFUSAL_LOG_EVERY:
            return False
        self.logged_at = now
        return True


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    # The connections waiting for a request's head, the longest waiting first.
    waiting: ClassVar[OrderedDict[GuardedHttpProtocol, None]] = OrderedDict()
    refusals: ClassVar[_Refusals] = _Refusals()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._discarding = False  # answered and closing: what the client still sends is dropped
        self._head_bytes = 0  # received towards the next request's head

    # -- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            self._refuse()
            return
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.waiting.pop(self, None)
        if self._refused:
            self._refused = False
            self.refusals.lingering -= 1
            self.connections.discard(self)
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return  # the rest of a refused or timed-out request is read and dropped
        before = self.cycle
        in_body = before is not None and before.more_body
        super().data_received(data)
        cycle = self.cycle
        if cycle is not before and cycle is not None and not self.transport.is_closing():
            # A new request's head arrived: from now on, the clock runs for its body.
            self.waiting.pop(self, None)
            if cycle.more_body:
                self._arm(self.limits.body_timeout, self._body_late, cycle)
            else:
                self._disarm()
            self._head_bytes = 0
        elif in_body:
            self._head_bytes = 0  # what follows a body begins the next head
        else:
            # Part of a head still incomplete: httptools would gather one without end (h11
            # stopped at MAX_HEAD_BYTES, and so does this).
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self._head_too_large()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if type(cycle) is RequestResponseCycle and cycle.scope["http_version"] == "1.0":
            # The cycle was made a moment ago and has sent nothing: only its sending changes.
            cycle.__class__ = _Http10Cycle

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._await_head()  # the connection waits for its next request

    # -- deadlines -----------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any, *args: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback, *args)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _await_head(self) -> None:
        self._arm(self.limits.header_timeout, self._head_late, self.cycle)
        self.waiting[self] = None
        self.waiting.move_to_end(self)

    def _head_late(self, cycle: object) -> None:
        """No new request head since ``cycle`` ended (or the connection opened)."""
        self._deadline = None
        if self.cycle is cycle and not self.transport.is_closing():
            self.transport.close()

    def _body_late(self, cycle: Any) -> None:
        self._deadline = None
        if self.cycle is not cycle or not cycle.more_body or self.transport.is_closing():
            return
        if cycle.response_started:
            self.transport.close()
            return
        self.transport.write(_plain(408, "Request Timeout", "the request body came too slowly"))
        self._answer_and_close()

    def _head_too_large(self) -> None:
        self._disarm()
        self.waiting.pop(self, None)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # in the middle of an answer: no room for another
            return
        self.transport.write(
            _plain(431, "Request Header Fields Too Large", "the request head is too large")
        )
        self._answer_and_close()

    # -- at the cap ----------------------------------------------------------------------

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request's head, if any."""
        if not self.waiting:
            return False
        oldest, _ = self.waiting.popitem(last=False)
        oldest._disarm()
        oldest.transport.close()
        refusals = self.refusals
        refusals.replaced += 1
        if refusals.should_log():
            logger.warning(
                "at the connection limit (%d, VIGIL_MAX_CONNECTIONS): closing the connections "
                "that wait longest for a request to make room; %d closed so far",
                self.limits.max_connections,
                refusals.replaced,
            )
        return True

    def _refuse(self) -> None:
        """Answer 503 at once and close: politely (its request read out, so the client sees
        the answer rather than a reset) while few refusals are in progress."""
        refusals = self.refusals
        refusals.refused += 1
        if refusals.should_log():
            logger.warning(
                "refusing connections: %d open, the limit is %d (VIGIL_MAX_CONNECTIONS); "
                "%d refused so far",
                len(self.connections) - 1,
                self.limits.max_connections,
                refusals.refused,
            )
        self._refused = True
        refusals.lingering += 1
        self.transport.write(
            _plain(503, "Service Unavailable", "too many connections: try again shortly")
        )
        if refusals.lingering > MAX_LINGERING:
            self.transport.close()
            return
        self._answer_and_close()

    def _answer_and_close(self) -> None:
        """Close after the answer written, politely: the end of what is sent now, and what the
        client still sends read and dropped for ``REFUSAL_LINGER`` (closing with unread input
        would reset the connection, and the client might never see the answer)."""
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self._discarding = True
        self.transport.write_eof()
        self.transport.resume_reading()
        self._arm(REFUSAL_LINGER, self.transport.close)


class _Http10Cycle(RequestResponseCycle):
    """A request of an HTTP/1.0 client, which knows no chunked framing. A response without a
    length goes as it is and ends when the connection closes, as h11 sends it (uvicorn's
    httptools protocol would frame it in chunks, which such a client takes for the body)."""

    _unframed = False

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            names = {name.lower() for name, _ in message.get("headers", ())}
            self._unframed = (
                b"content-length" not in names
                and b"transfer-encoding" not in names
                and self.scope["method"] != "HEAD"
                and message["status"] not in (204, 304)
            )
            if self._unframed:
                # No framing header; uvicorn counts the body down from the length it expects.
                self.chunked_encoding = False
                self.expected_content_length = UNFRAMED
        elif (
            self._unframed
            and message["type"] == "http.response.body"
            and not message.get("more_body", False)
        ):
            self.expected_content_length = len(message.get("body", b""))  # the last of it
        await super().send(message)


def _plain(status: int, reason: str, text: str) -> bytes:
    body = f"{text}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    )
    if status == 503:
        head += "retry-after: 5\r\n"
    return head.encode() + b"\r\n" + body


# -- streamed bodies straight to the socket ---------------------------------------------------


def chunk(body: bytes) -> bytes:
    """``body`` framed as one chunk of a chunked response, as uvicorn frames it."""
    return b"%x\r\n%b\r\n" % (len(body), body)


class ChunkWriter:
    """Writes a streamed response's body straight to its socket, past uvicorn's ``send``: the
    live stream writes each event to every caught-up client, and there ``send`` and the
    middleware before it cost as much again as the socket write itself. Only for a response
    this server's protocol is sending chunked (uvicorn counts nothing for chunked data, so
    its state stays right), and only while a write can complete at once: ``write`` says
    ``False`` when the socket's buffer is full (uvicorn's flow control has paused writing),
    the client has gone or the response has ended, and then the caller uses the ASGI
    ``send`` as usual."""

    __slots__ = ("_cycle", "_transport")

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle
        self._transport: asyncio.Transport = cycle.transport

    @classmethod
    def of(cls, send: Any) -> ChunkWriter | None:
        """The writer for the response ``send`` (the server's own) is sending, once its head
        is sent; ``None`` when its body is not sent chunked by this server's protocol."""
        cycle = getattr(send, "__self__", None)
        if not isinstance(cycle, RequestResponseCycle) or not cycle.response_started:
            return None
        if cycle.scope["method"] == "HEAD" or cycle.chunked_encoding is not True:
            return None
        return cls(cycle)

    def write(self, framed: bytes) -> bool:
        """Write one chunk (``chunk(body)``) if it can go at once; whether it went."""
        cycle = self._cycle
        if (
            cycle.flow.write_paused
            or cycle.disconnected
            or cycle.response_complete
            or self._transport.is_closing()
        ):
            return False
        self._transport.write(framed)
        return True
