"""JSON webhooks posted directly (``vigil.notify.webhook``) make apprise's very request: the
same receiver gets the same method, path, query, headers and body bytes from both paths, and
reads the same reason when it refuses. Everything else is still sent by apprise."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from vigil.notify import Channel, DeliveryError, Transport, format_event
from vigil.notify.sender import _send_with_apprise
from vigil.notify.webhook import plan

from .receiver import PATIENCE
from .support import RULE, lifecycle

BASE_URL = "https://vigil.example.com"
# The request's parts that say what was sent (not how the client library introduces itself).
COMPARED_HEADERS = ("User-Agent", "Content-Type", "Idempotency-Key", "Authorization", "X-Team")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes
    peer: object


@dataclass
class AnyMethod:
    """A receiver for every method and path, answering ``status``."""

    port: int = 0
    status: int = 200
    requests: asyncio.Queue[Request] = field(default_factory=asyncio.Queue)

    def url(self, rest: str = "/hook", *, credentials: str = "") -> str:
        return f"json://{credentials}127.0.0.1:{self.port}{rest}"

    async def next(self) -> Request:
        return await asyncio.wait_for(self.requests.get(), timeout=PATIENCE)


@pytest.fixture
async def receiver() -> AsyncIterator[AnyMethod]:
    found = AnyMethod()

    async def handle(request: web.Request) -> web.Response:
        wanted = {
            name: request.headers[name] for name in COMPARED_HEADERS if name in request.headers
        }
        await found.requests.put(
            Request(
                request.method,
                request.path,
                tuple(sorted(request.query.items())),
                wanted,
                await request.read(),
                request.transport.get_extra_info("peername") if request.transport else None,
            )
        )
        return web.Response(status=found.status, text="answer")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    found.port = sock.getsockname()[1]
    try:
        yield found
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "rest",
    [
        "/hook",
        "/deep/path/",
        "/hook?+X-Team=ops&-token=abc%20d&-second=2",
        "/hook?method=PUT",
        "/hook?:type=level&:version=&:origin=vigil",  # renamed, removed, added body keys
        "/hook?cto=2.5&rto=9",
        # The channel's own Idempotency-Key is overridden by Vigil's, as apprise does.
        "/hook?+Idempotency-Key=theirs",
    ],
)
@pytest.mark.parametrize("kind", ["opened", "escalated", "acknowledged", "resolved"])
async def test_the_direct_request_is_the_one_apprise_makes(
    receiver: AnyMethod, rest: str, kind: str
) -> None:
    channel = Channel(name="ops-hook", url=receiver.url(rest))
    assert plan(channel.url) is not None
    message = format_event(lifecycle()[kind], channel, base_url=BASE_URL, rule=RULE)

    await _send_with_apprise(channel, message)
    by_apprise = await receiver.next()
    async with Transport() as transport:
        await transport.send(channel, message)
    direct = await receiver.next()

    assert by_apprise.headers["Idempotency-Key"] == message.idempotency_key
    assert (direct.method, direct.path, direct.query, direct.headers, direct.body) == (
        by_apprise.method,
        by_apprise.path,
        by_apprise.query,
        by_apprise.headers,
        by_apprise.body,
    )


@pytest.mark.parametrize("credentials", ["bot:s3cr%40t@", "b%C3%B6t:p%C3%A4ss@"])
async def test_credentials_in_the_url_are_sent_as_basic_auth(
    receiver: AnyMethod, credentials: str
) -> None:
    channel = Channel(name="ops-hook", url=receiver.url(credentials=credentials))
    message = format_event(lifecycle()["opened"], channel)
    await _send_with_apprise(channel, message)
    by_apprise = await receiver.next()
    async with Transport() as transport:
        await transport.send(channel, message)
    direct = await receiver.next()
    assert by_apprise.headers["Authorization"].startswith("Basic ")
    assert direct.headers == by_apprise.headers and direct.body == by_apprise.body


@pytest.mark.parametrize("status", [400, 404, 500, 503])
async def test_a_refusal_reads_as_apprise_reads_it(receiver: AnyMethod, status: int) -> None:
    receiver.status = status
    channel = Channel(name="ops-hook", url=receiver.url())
    message = format_event(lifecycle()["opened"], channel)
    with pytest.raises(DeliveryError) as by_apprise:
        await _send_with_apprise(channel, message)
    async with Transport() as transport:
        with pytest.raises(DeliveryError) as direct:
            await transport.send(channel, message)
    assert direct.value.reason == by_apprise.value.reason
    assert f"error={status}" in direct.value.reason
    assert direct.value.channel == "ops-hook"
    for _ in range(2):
        await receiver.next()  # both reached the receiver


async def test_a_receiver_that_is_not_listening_reads_as_apprise_reads_it() -> None:
    with socket.socket() as closed:  # bound, never listening: connecting is refused at once
        closed.bind(("127.0.0.1", 0))
        channel = Channel(name="gone", url=f"json://127.0.0.1:{closed.getsockname()[1]}/hook")
        message = format_event(lifecycle()["opened"], channel)
        with pytest.raises(DeliveryError) as by_apprise:
            await _send_with_apprise(channel, message)
        async with Transport() as transport:
            with pytest.raises(DeliveryError) as direct:
                await transport.send(channel, message)
    assert direct.value.reason == by_apprise.value.reason
    assert "connection error" in direct.value.reason.lower()


async def test_a_transport_keeps_its_connection_between_messages(receiver: AnyMethod) -> None:
    channel = Channel(name="ops-hook", url=receiver.url())
    events = lifecycle()
    async with Transport() as transport:
        for kind in ("opened", "escalated", "resolved"):
            await transport.send(channel, format_event(events[kind], channel))
    peers = {(await receiver.next()).peer for _ in range(3)}
    assert len(peers) == 1  # one connection, kept open

    # Closed, it can be used again: a new session, a new connection.
    await transport.send(channel, format_event(events["opened"], channel))
    await transport.aclose()
    assert (await receiver.next()).peer not in peers


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:9/hook?format=markdown",  # apprise would convert the body
        "json://127.0.0.1:9/hook?overflow=truncate",
        "json://127.0.0.1:9/hook?retry=2",  # apprise's own retries
        "form://127.0.0.1:9/hook",
        "xml://127.0.0.1:9/hook",
        "json://bot@127.0.0.1:9/hook",  # a user without a password: requests' own quirk
        "discord://417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711",
    ],
)
def test_what_apprise_shapes_is_left_to_apprise(url: str) -> None:
    assert plan(Channel(name="other", url=url).url) is None
