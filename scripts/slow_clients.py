"""Measure how a running server treats slow clients (slowloris), on 127.0.0.1 only.

    python scripts/slow_clients.py --port 8000 [--headers 1000] [--bodies 200] [--seconds 60]

Opens ``--headers`` connections that send a request line and then one header line every
``--trickle`` seconds, never finishing the head, and ``--bodies`` connections that send a
complete head of ``POST /api/ingest`` announcing a 1 MB body and then one byte of it every
``--trickle`` seconds. Meanwhile it asks ``GET /api/health`` once a second on a fresh
connection. After ``--seconds`` (or when every slow connection is closed) it prints how many
slow connections the server closed and when, what a refused connection was told, and how
``/api/health`` fared. Bounded: a fixed number of connections, a fixed duration, then it
closes everything and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import statistics
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class Tally:
    opened: int = 0
    refused: int = 0  # could not connect at all
    closed_at: list[float] = field(default_factory=list)  # seconds after opening
    answers: dict[str, int] = field(default_factory=dict)  # first line the server sent


async def slow_client(port: int, *, body: bool, trickle: float, tally: Tally, stop: float) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
    except (OSError, TimeoutError):
        tally.refused += 1
        return
    tally.opened += 1
    started = time.monotonic()
    if body:
        head = (
            "POST /api/ingest HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000\r\n\r\n"
        )
    else:
        head = "GET /api/health HTTP/1.1\r\nHost: {host}\r\n"

    async def trickle_forever() -> None:
        writer.write(head.format(host=f"{HOST}:{port}").encode())
        n = 0
        while True:
            await asyncio.sleep(trickle)
            writer.write(b"{" if body else f"X-Slow-{n}: y\r\n".encode())
            n += 1
            await writer.drain()

    sender = asyncio.create_task(trickle_forever())
    try:
        first = await asyncio.wait_for(reader.readline(), max(0.0, stop - time.monotonic()))
        answer = first.decode(errors="replace").strip() or "(closed without a word)"
        tally.answers[answer] = tally.answers.get(answer, 0) + 1
        await asyncio.wait_for(reader.read(), max(0.1, stop - time.monotonic()))
        tally.closed_at.append(time.monotonic() - started)
    except (TimeoutError, ConnectionError):
        if not sender.done() and time.monotonic() < stop:
            tally.closed_at.append(time.monotonic() - started)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await sender
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def probe(port: int) -> float | None:
    """Seconds for one ``GET /api/health`` on a fresh connection; None when it failed."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
        writer.write(
            f"GET /api/health HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
        )
        status = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        if b" 200 " not in status:
            return None
        return time.monotonic() - started
    except (OSError, TimeoutError):
        return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--headers", type=int, default=1000)
    parser.add_argument("--bodies", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--trickle", type=float, default=5.0)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the client needs the fds

    stop = time.monotonic() + args.seconds
    heads, bodies = Tally(), Tally()
    clients = [
        asyncio.create_task(
            slow_client(args.port, body=False, trickle=args.trickle, tally=heads, stop=stop)
        )
        for _ in range(args.headers)
    ] + [
        asyncio.create_task(
            slow_client(args.port, body=True, trickle=args.trickle, tally=bodies, stop=stop)
        )
        for _ in range(args.bodies)
    ]
    probes: list[float | None] = []
    while time.monotonic() < stop and not all(task.done() for task in clients):
        probes.append(await probe(args.port))
        await asyncio.sleep(max(0.0, 1.0 - (probes[-1] or 0.0)))
    for task in clients:
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)

    for name, tally in (("slow heads", heads), ("slow bodies", bodies)):
        closed = sorted(tally.closed_at)
        when = (
            f"median {statistics.median(closed):.1f} s, last {closed[-1]:.1f} s" if closed else "-"
        )
        print(
            f"{name}: {tally.opened} opened, {tally.refused} could not connect, "
            f"{len(closed)} closed by the server ({when}); answers: {tally.answers or '-'}"
        )
    answered = sorted(p for p in probes if p is not None)
    failed = len(probes) - len(answered)
    if answered:
        p99 = answered[min(len(answered) - 1, int(len(answered) * 0.99))]
        figures = f"median {statistics.median(answered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    else:
        figures = "-"
    print(f"/api/health: {len(probes)} probes, {failed} failed; {figures}")


if __name__ == "__main__":
    asyncio.run(main())
