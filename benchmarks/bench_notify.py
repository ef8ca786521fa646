"""Notification benchmark: the outbox's delivery rate against the receiver's own ceiling, and
the delay from an incident's commit to its message arriving.

A JSON webhook receiver runs in a process of its own on 127.0.0.1 and notes when each
message arrives (CLOCK_MONOTONIC, which every process on the machine shares). Measured in one
run, against that same receiver:

1. its ceiling: plain aiohttp POSTs, keep-alive, ``--concurrency`` in flight;
2. the transport alone, no database (what sending costs): the dispatcher's ``Transport`` (a
   JSON webhook posted directly, connections kept), and apprise's way of sending the same
   message (a worker thread and a new connection per message), which it replaced;
3. the outbox: a real Vigil on a fresh SQLite file whose cycle opens ``--incidents``
   incidents at once; notifications delivered (sent and recorded) per second from the commit;
4. the delay to arrival, one incident event at a time, median and p99: from the commit, and
   from the start of the cycle that stored the event (what bench_peer.py's "trigger ->
   receiver" measures, the cycle's own work included).

    python benchmarks/bench_notify.py [--incidents 400] [--samples 200] [--database-url URL]

Runtime is bounded: each phase has a fixed amount of work and a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from vigil.core import Event, EventKind, Incident, Severity, Status
from vigil.notify import idempotency_key
from vigil.runtime import Vigil

DEADLINE = 300.0  # seconds per phase; reached only if something is broken
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LATENCY_METRIC = "bench.latency"


# -- the receiver, in its own process -------------------------------------------------------


def serve() -> None:
    from aiohttp import web

    arrivals: dict[str, float] = {}
    count = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        key = request.headers.get("Idempotency-Key")
        if key:
            arrivals.setdefault(key, time.monotonic())
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"count": count, "arrivals": arrivals})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def receiver() -> Iterator[int]:
    import subprocess

    process = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.kill()
        process.wait()


async def received(port: int) -> tuple[int, dict[str, float]]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/stats") as response:
            data = await response.json()
    return int(data["count"]), dict(data["arrivals"])


# -- 1 and 2: the baselines --------------------------------------------------------------------


async def direct_posts(port: int, count: int, concurrency: int) -> float:
    import aiohttp

    body = json.dumps({"version": "1.0", "title": "t", "message": "m" * 400, "type": "info"})
    url = f"http://127.0.0.1:{port}/hook"
    before, _ = await received(port)
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(n: int) -> None:
            async with limit, session.post(url, data=body, headers={"X": str(n)}) as response:
                response.raise_for_status()

        started = time.perf_counter()
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*(one(n) for n in range(count)))
        elapsed = time.perf_counter() - started
    after, _ = await received(port)
    assert after - before == count
    return count / elapsed


def an_event(n: int) -> Event:
    """A stored incident event, as the dispatcher reads it from the log."""
    incident = Incident(
        id=uuid.UUID(int=n + 1),
        metric="gateway_latency",
        severity=Severity.CRITICAL,
        status=Status.ACTIVE,
        triggered_at=T0,
        threshold=200.0,
        value=250.0,
        peak_value=250.0,
        last_value=250.0,
        message="Gateway Latency exceeded critical threshold: 250.00 ms >= 200.00 ms",
    )
    event = Event.for_incident(EventKind.INCIDENT_OPENED, incident, at=T0)
    return dataclasses.replace(event, id=n + 1)


async def transport_alone(port: int, count: int, concurrency: int, *, apprise: bool) -> float:
    from vigil.notify import Channel, Transport, format_event
    from vigil.notify.sender import _send_with_apprise

    channel = Channel(name="bench", url=f"json://127.0.0.1:{port}/hook")
    messages = [format_event(an_event(n), channel) for n in range(count)]
    limit = asyncio.Semaphore(concurrency)
    async with Transport() as transport:
        send = _send_with_apprise if apprise else transport.send

        async def one(n: int) -> None:
            async with limit:
                await send(channel, messages[n])

        started = time.perf_counter()
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*(one(n) for n in range(count)))
        return count / (time.perf_counter() - started)


# -- 3 and 4: a real Vigil -------------------------------------------------------------------


class Scripted:
    name = "scripted"

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}

    async def read(self) -> dict[str, float | None]:
        return dict(self.values)


async def prepare(url: str, port: int, incidents: int) -> tuple[list[str], int]:
    """A round's database: one rule an incident, the latency probe's rule and the channel.
    Returns the incidents' metrics and a cap on rules (VIGIL_MAX_RULES) that holds these
    rules beside the default ones the database starts with, never below the default cap."""
    from vigil.core import Rule
    from vigil.store import Store

    metrics = [f"bench.m{n:05d}" for n in range(incidents)]
    async with await Store.open(url, upgrade=True) as store:
        held = max(1000, len(await store.list_rules()) + incidents + 1)
        for metric in [*metrics, LATENCY_METRIC]:
            rule = Rule(
                metric=metric,
                warning=1.0,
                critical=2.0,
                breaches_required=1,
                recoveries_required=1,
            )
            await store.add_rule(rule, by="bench", now=T0, max_rules=held)
        await store.add_channel({"name": "bench", "url": f"json://127.0.0.1:{port}/hook"}, now=T0)
    return metrics, held


class Bench:
    """A running Vigil on the benchmark's database, its source and its commit times."""

    def __init__(self, vigil: Vigil, source: Scripted, metrics: list[str]) -> None:
        self.vigil = vigil
        self.source = source
        self.metrics = metrics
        self.wanted = frozenset(metrics)
        self.committed: dict[int, float] = {}
        self.breaching = False
        vigil.bus.add_listener(self._committed)

    def _committed(self, event: Event) -> None:
        self.committed.setdefault(event.id or 0, time.monotonic())

    async def delivered(self, total: int) -> None:
        notifier = self.vigil.notifier
        async with asyncio.timeout(DEADLINE):
            # A counter, not an event: poll it, lightly (the arrival times that are measured
            # are taken by the receiver, not here).
            while notifier.status().delivered < total:  # noqa: ASYNC110
                await asyncio.sleep(0.002)

    async def outbox_round(self) -> float:
        """One cycle opens (or resolves) every incident: that many rows commit with it.
        Notifications delivered and recorded per second from the commit."""
        self.breaching = not self.breaching
        self.source.values = dict.fromkeys(self.metrics, 5.0 if self.breaching else 0.0)
        done = self.vigil.notifier.status().delivered
        # Vigil watches its own event loop too: under this load its lag may open an
        # incident of its own, which is delivered like any other.
        events = await self.vigil.monitor.cycle()
        ours = [event for event in events if event.metric in self.wanted]
        assert len(ours) == len(self.metrics), len(ours)
        start = self.committed[events[0].id or 0]
        await self.delivered(done + len(events))
        return len(events) / (time.monotonic() - start)

    async def delays(self, port: int, samples: int) -> tuple[list[float], list[float]]:
        """Milliseconds to arrival, one event at a time (opened, resolved, opened...): from
        the commit, and from the start of the cycle (the incident's trigger time, as
        bench_peer.py's "trigger -> receiver" counts it: the cycle's own work included)."""
        keys: dict[str, tuple[float, float]] = {}
        for n in range(samples):
            self.source.values = {LATENCY_METRIC: 5.0 if n % 2 == 0 else 0.0}
            done = self.vigil.notifier.status().delivered
            started = time.monotonic()
            events = await self.vigil.monitor.cycle()
            [event] = [e for e in events if e.metric == LATENCY_METRIC]
            assert event.incident is not None and event.id is not None
            key = idempotency_key(event.incident.id, event.id, "bench")
            keys[key] = (self.committed[event.id], started)
            await self.delivered(done + len(events))
        _, arrivals = await received(port)
        return (
            [(arrivals[key] - at) * 1000 for key, (at, _) in keys.items()],
            [(arrivals[key] - at) * 1000 for key, (_, at) in keys.items()],
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    from vigil.runtime.notifier import DeliveryPolicy
    from vigil.settings import Settings

    ceilings: list[float] = []
    alones: list[float] = []
    apprises: list[float] = []
    outboxes: list[float] = []
    with receiver() as port, tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        metrics, held = await prepare(url, port, args.incidents)
        source = Scripted()
        vigil = Vigil(
            # One message per incident event, as the rates count them: no incident groups
            # (the round's incidents open together) and no flap detection (the delay phase
            # opens and resolves every cycle).
            Settings(
                database_url=url,
                interval=3600,
                instance="bench",
                group_window=0,
                flap_detection=False,
                max_rules=held,
            ),
            sources=[source],
            process_metrics=False,
            delivery=DeliveryPolicy(concurrency=args.concurrency, batch=4 * args.concurrency),
        )
        async with vigil:
            bench = Bench(vigil, source, metrics)
            await direct_posts(port, 200, args.concurrency)  # warm up the receiver
            # Interleaved rounds: a noisy machine slows all four alike, not one of them.
            for _ in range(args.rounds):
                ceilings.append(await direct_posts(port, args.posts, args.concurrency))
                alones.append(
                    await transport_alone(port, args.incidents, args.concurrency, apprise=False)
                )
                apprises.append(
                    await transport_alone(port, args.incidents, args.concurrency, apprise=True)
                )
                outboxes.append(await bench.outbox_round())
            delays, from_start = await bench.delays(port, args.samples)
    ceiling, alone, by_apprise, outbox = (
        statistics.median(x) for x in (ceilings, alones, apprises, outboxes)
    )
    database = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(
        f"{args.concurrency} deliveries in flight; {args.incidents} notifications a round; "
        f"median of {args.rounds} interleaved rounds; {os.cpu_count()} CPUs"
    )
    print(f"receiver ceiling, direct aiohttp POSTs:    {ceiling:7.0f} /s  {_spread(ceilings)}")
    print(
        f"Transport.send alone, no database:         {alone:7.0f} /s  {_spread(alones)}"
        f"  = {alone / ceiling:.2f}x the ceiling"
    )
    print(
        f"apprise's way alone (replaced), no database: {by_apprise:5.0f} /s  {_spread(apprises)}"
        f"  = {by_apprise / ceiling:.2f}x the ceiling"
    )
    print(
        f"outbox through a real Vigil ({database}):   {outbox:7.0f} /s  {_spread(outboxes)}"
        f"  = {outbox / ceiling:.2f}x the ceiling, {outbox / alone:.2f}x the transport alone"
    )
    for label, values in (("commit", delays), ("cycle start", from_start)):
        median, p99 = statistics.median(values), percentile(values, 0.99)
        print(
            f"{label} -> message received, {len(values)} events one at a time: "
            f"median {median:.1f} ms, p99 {p99:.1f} ms, max {max(values):.1f} ms"
        )


def _spread(values: list[float]) -> str:
    return f"(rounds {min(values):.0f}..{max(values):.0f})"


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=400)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
