"""Web API benchmark: Vigil's hot endpoints and its event fan-out against their ceilings.

One server process runs Vigil and its app on uvicorn at 127.0.0.1 over a database of
1,000,000 incidents; load comes from separate processes. Printed, all from one run:

1. Throughput and p99 of GET /api/alerts/summary, /api/alerts/active and the first page of
   /api/alerts/incidents, each against a bare FastAPI endpoint returning a constant on the
   same server (the ceiling). Targets: summary and active >= 50% of the ceiling, the first
   history page >= 25%. The history page is also measured with the read cache off, to show
   what the database costs per request.
2. The same reads while Vigil is live: the monitor cycling every second and a pusher in
   another process POSTing the ten default metrics to /api/ingest (one of them breaching and
   recovering in turn, so incidents open and resolve and the read cache is invalidated), as
   `vigil serve` runs in bench_peer. Each read against the bare endpoint of the same run (the
   ceiling under the same load; target >= 50% for summary and active) and its p99 against its
   idle p99 (target <= 3x). Both phases also print the event loop's lag: how late a callback
   scheduled every millisecond runs, which shows what blocks the loop.
3. Fan-out: time for one event to reach 1,000 clients of /api/events (from publishing on the
   server to the last client receiving it; median and p99 over 100 broadcasts), against the
   same bytes written by the same server process to 1,000 plain socket connections, both as
   one loop over the connections and as a task per connection, broadcasts of the three kinds
   taking turns. Target: at most 2x the faster plain server.

The load client speaks HTTP/1.1 over raw keep-alive sockets (asyncio streams): an httpx client
costs more per request than the server does, so it would measure itself, not the server.

    python benchmarks/bench_api.py [--incidents N] [--seconds S] [--clients N] [--postgres]
                                   [--only reads,live,fanout] [--profile FILE]

``--profile FILE``: py-spy (when installed) samples the server during the live reads and
writes its raw stacks to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import secrets
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import POSTGRES_ADMIN_URL, build_postgres, build_sqlite, incident_rows

HOST = "127.0.0.1"
CONNECTIONS = 32
WARMUP_SECONDS = 0.5
ROUNDS = 5
MAX_REQUESTS = 60_000
FANOUT_ROUNDS = 100
READY_SECONDS = 120.0
LIVE_INTERVAL = 1.0  # seconds between the monitor's cycles in the live phase, as bench_peer
PUSH_PERIOD = 1.0  # seconds between two pushes of the ten values (bench_peer's feeder)
FLIP_SECONDS = 4.0  # the probe metric breaches for this long, then recovers as long
LAG_PERIOD = 0.001  # the loop-lag probe's callback: due every millisecond

ENDPOINTS = [
    ("ceiling: bare FastAPI constant", "/bare", None),
    ("GET /api/alerts/summary", "/api/alerts/summary", 0.50),
    ("GET /api/alerts/active", "/api/alerts/active", 0.50),
    ("GET /api/alerts/incidents (page 1)", "/api/alerts/incidents?page_size=50", 0.25),
]


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the server process --------------------------------------------------------------------------


class LagProbe:
    """How late the event loop runs a callback due every ``LAG_PERIOD``: while something
    holds the loop (a query's result handling, rendering, a cycle's evaluation), the
    callback waits, and that wait is what every request on the loop waits too."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_PERIOD
            await asyncio.sleep(LAG_PERIOD)
            self.lags.append(max(0.0, loop.time() - due))

    def take(self) -> dict[str, float]:
        lags, self.lags = sorted(self.lags), []
        if not lags:
            return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "over_10ms": 0}
        return {
            "count": len(lags),
            "p50_ms": lags[len(lags) // 2] * 1000,
            "p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000,
            "max_ms": lags[-1] * 1000,
            "over_10ms": sum(lag > 0.010 for lag in lags),
        }


async def serve(url: str, port: int, plain_port: int, *, cache: bool, live: bool) -> None:
    import uvicorn

    from vigil.core import Event, EventKind
    from vigil.runtime import Vigil
    from vigil.settings import Settings
    from vigil.web import create_app
    from vigil.web.connections import ConnectionLimits, connection_cap, guarded_protocol
    from vigil.web.live import render
    from vigil.web.serve import VigilServer

    settings = Settings(
        database_url=url,
        interval=LIVE_INTERVAL if live else 3600,
        instance="bench",
        secret_key=secrets.token_hex(16),
        flap_detection=False,  # as bench_peer: the probe's flips would be held open
    )
    writers: list[asyncio.StreamWriter] = []
    # The "tasks" variant: each connection's handler waits for the broadcast and writes, as
    # a plain asyncio socket server is usually written (and as each SSE client does).
    broadcast: dict[str, Any] = {"frame": b"", "signal": asyncio.Event()}

    async def plain_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while True:
                await broadcast["signal"].wait()
                writer.write(broadcast["frame"])
        except asyncio.CancelledError:
            writers.remove(writer)
            raise

    vigil = Vigil(settings)
    await vigil.start()
    app = create_app(vigil, read_cache_seconds=10.0 if cache else 0.0)

    @app.get("/bare", include_in_schema=False)
    async def bare() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/bench/publish", include_in_schema=False)
    async def publish(mode: str, round: int) -> dict[str, float]:
        began = time.monotonic()
        event = Event(
            id=vigil.bus.last_id + 1,
            kind=EventKind.LEADER_CHANGED,
            at=datetime.now(UTC),
            data={"round": round, "t": began},
        )
        if mode == "sse":
            vigil.bus.publish([event])  # the live stream renders it once for everyone
        elif mode == "plain":
            frame = render(event)
            for writer in writers:
                writer.write(frame)
        else:
            broadcast["frame"] = render(event)
            signal, broadcast["signal"] = broadcast["signal"], asyncio.Event()
            signal.set()
        return {"t": began}

    probe = LagProbe()

    @app.get("/bench/lag", include_in_schema=False)
    async def lag() -> dict[str, float]:
        """The loop's lag since the last call (and the monitor's cycles so far)."""
        return {**probe.take(), "cycles": vigil.monitor.status().cycles}

    @app.get("/bench/clients", include_in_schema=False)
    async def clients() -> dict[str, int]:
        return {"sse": app.state.vigil_web.live.clients, "plain": len(writers)}

    plain = await asyncio.start_server(plain_client, HOST, plain_port, backlog=2048)
    probe.start()
    gc.freeze()  # as vigil serve does: start-up objects out of the collector's way
    # The HTTP protocol `vigil serve` runs (vigil.web.connections: uvicorn's httptools protocol
    # with its deadlines and connection cap, the cap above this benchmark's clients).
    limits = ConnectionLimits(max_connections=connection_cap(10_000))
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=2048,
        http=guarded_protocol(limits),
    )
    try:
        await VigilServer(config, app=app, vigil=vigil).serve()  # stops Vigil on shutdown
    finally:
        plain.close()
        for writer in list(writers):
            writer.close()
        await plain.wait_closed()
        await vigil.aclose()


# -- load ------------------------------------------------------------------------------------


async def load(
    port: int, paths: list[str], token: str, *, seconds: float, rounds: int
) -> dict[str, dict[str, float]]:
    """Each path in turn, ``rounds`` times, ``seconds / rounds`` each time: a burst of other
    work on the machine then costs every endpoint alike, and the ratios stay fair."""
    connections = [await asyncio.open_connection(HOST, port) for _ in range(CONNECTIONS)]
    stats = {path: {"requests": 0, "failures": 0, "seconds": 0.0} for path in paths}
    latencies: dict[str, list[float]] = {path: [] for path in paths}

    async def worker(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, until: float
    ) -> tuple[int, int, list[float]]:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        done, failed, times = 0, 0, []
        while time.perf_counter() < until and done < MAX_REQUESTS // CONNECTIONS:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            times.append(time.perf_counter() - began)
            done += 1
            failed += not head.startswith(b"HTTP/1.1 200")
        return done, failed, times

    async def burst(path: str, duration: float) -> tuple[int, int, list[float], float]:
        began = time.perf_counter()
        results = await asyncio.gather(
            *(worker(reader, writer, path, began + duration) for reader, writer in connections)
        )
        elapsed = time.perf_counter() - began
        return (
            sum(r[0] for r in results),
            sum(r[1] for r in results),
            [t for r in results for t in r[2]],
            elapsed,
        )

    for path in paths:
        await burst(path, WARMUP_SECONDS)
    for _ in range(rounds):
        for path in paths:
            done, failed, times, elapsed = await burst(path, seconds / rounds)
            stats[path]["requests"] += done
            stats[path]["failures"] += failed
            stats[path]["seconds"] += elapsed
            latencies[path] += times
    for _, writer in connections:
        writer.close()
    for path in paths:
        ordered = sorted(latencies[path])
        stats[path]["rps"] = stats[path]["requests"] / stats[path]["seconds"]
        stats[path]["p50_ms"] = ordered[len(ordered) // 2] * 1000
        stats[path]["p99_ms"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return stats


# -- fan-out -----------------------------------------------------------------------------------


def fanout(port: int, plain_port: int, token: str, clients: int) -> dict[str, list[float]]:
    """Connect ``clients`` stream clients and as many plain ones; broadcast rounds in turn;
    per broadcast, the time from publishing to the last client receiving it."""
    raise_file_limit()
    subscribe = (
        f"GET /api/events HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    streams = []
    for _ in range(clients):
        sock = socket.create_connection((HOST, port))
        sock.sendall(subscribe)
        streams.append(sock)
    for sock in streams:  # the headers and the retry line: the client is registered
        received = b""
        while b"retry:" not in received:
            received += sock.recv(4096)
    plains = [socket.create_connection((HOST, plain_port)) for _ in range(clients)]
    control = socket.create_connection((HOST, port))

    def request(method: str, path: str) -> None:
        control.sendall(f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())

    def answer() -> dict[str, Any]:
        data = b""
        while b"\r\n\r\n" not in data:
            data += control.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(body) < length:
            body += control.recv(65536)
        result: dict[str, Any] = json.loads(body)
        return result

    def ask(method: str, path: str) -> dict[str, Any]:
        request(method, path)
        return answer()

    deadline = time.monotonic() + READY_SECONDS
    while ask("GET", "/bench/clients") != {"sse": clients, "plain": clients}:
        if time.monotonic() > deadline:
            raise TimeoutError("the clients did not all connect")
        time.sleep(0.05)

    selector = selectors.DefaultSelector()
    for sock in streams + plains:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    modes = ("sse", "plain", "tasks")
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    for number in range(FANOUT_ROUNDS * len(modes)):
        mode = modes[number % len(modes)]
        group = streams if mode == "sse" else plains
        marker = f'"round":{number}'.encode()
        waiting = {sock.fileno(): b"" for sock in group}
        # Read the clients while the server answers: its answer (the publishing time) is
        # collected afterwards, so waiting for it delays no arrival.
        request("POST", f"/bench/publish?mode={mode}&round={number}")
        last = 0.0
        while waiting:
            for key, _ in selector.select(timeout=READY_SECONDS):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                chunk = ready.recv(65536)
                now = time.monotonic()
                fd = ready.fileno()
                if fd in waiting:
                    waiting[fd] += chunk
                    if marker in waiting[fd]:
                        del waiting[fd]
                        last = now
        published = answer()["t"]
        if number >= len(modes):  # the first round of each kind warms up
            results[mode].append(last - published)
    for sock in streams + plains:
        sock.close()
    control.close()
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


# -- the run -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    url: str, *, cache: bool, live: bool = False
) -> tuple[subprocess.Popen[bytes], int, int]:
    port, plain_port = free_port(), free_port()
    args = [sys.executable, __file__, "--serve", url, str(port), str(plain_port)]
    if not cache:
        args.append("--no-cache")
    if live:
        args.append("--live")
    process = subprocess.Popen(args)
    deadline = time.monotonic() + READY_SECONDS
    while True:
        with suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return process, port, plain_port
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the benchmark server did not start")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM: uvicorn shuts down (Vigil stops inside its shutdown), then the process ends
    # at once when uvicorn hands the signal back, without unwinding the plain sockets.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_load(port: int, paths: list[str], token: str, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", str(port), token, str(seconds), *paths],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    for path, figures in result.items():
        if figures["failures"]:
            raise RuntimeError(f"{path}: {figures['failures']} requests did not answer 200")
    return result


def get(port: int, path: str) -> dict[str, Any]:
    with socket.create_connection((HOST, port), timeout=READY_SECONDS) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    result: dict[str, Any] = json.loads(data.partition(b"\r\n\r\n")[2])
    return result


@dataclass
class Tokens:
    viewer: str
    ingest: str


async def prepare(url: str, build: Any) -> Tokens:
    """Build the incidents, count them per day, and make a viewer and an ingest token."""
    from vigil.store import Store
    from vigil.web.accounts import create_token

    store = await Store.open(url, upgrade=True)
    try:
        await build()  # the daily counts too
        _, viewer = await create_token(store, "bench", role="viewer")
        _, ingest = await create_token(store, "bench-pusher", role="ingest")
        return Tokens(viewer, ingest)
    finally:
        await store.close()


# -- the live phase: a pusher in its own process ------------------------------------------------


def push(port: int, token: str) -> dict[str, Any]:
    """POST the ten default metrics every ``PUSH_PERIOD`` until SIGTERM, the probe metric
    breaching for ``FLIP_SECONDS`` then recovering as long (bench_peer's workload); what it
    did, as JSON."""
    from peer_config import BAD, NORMAL, PROBE

    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)

    def post(sock: socket.socket, body: bytes) -> bytes:
        """The answer's status line; empty when the server closed the connection (as it
        does with a push it turns away before reading it)."""
        sock.sendall(
            f"POST /api/ingest HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            rest += chunk
        return head.partition(b"\r\n")[0]

    sock = socket.create_connection((HOST, port))
    began = time.monotonic()
    due = began
    times: list[float] = []
    statuses: dict[str, int] = {}
    while not stopping:
        breaching = int((time.monotonic() - began) / FLIP_SECONDS) % 2 == 1
        values = {**NORMAL, PROBE: BAD if breaching else NORMAL[PROBE]}
        body = json.dumps(
            {
                "instance": "bench-service",
                "samples": [{"metric": m, "value": v} for m, v in values.items()],
            }
        ).encode()
        sent = time.monotonic()
        try:
            status = post(sock, body)
        except OSError:
            status = b""
        times.append(time.monotonic() - sent)
        word = status.split(b" ")[1].decode() if status.count(b" ") else "closed"
        statuses[word] = statuses.get(word, 0) + 1
        if word != "200":  # a refused push closes the connection: open another
            sock.close()
            sock = socket.create_connection((HOST, port))
        due = max(due + PUSH_PERIOD, time.monotonic() - PUSH_PERIOD)
        time.sleep(max(0.0, due - time.monotonic()))
    sock.close()
    return {
        "pushes": len(times),
        "failures": len(times) - statuses.get("200", 0),
        "statuses": statuses,
        "p99_ms": percentile(times, 0.99) * 1000,
    }


def lag_line(label: str, lag: dict[str, Any]) -> str:
    return (
        f"  event loop lag, {label}: p50 {lag['p50_ms']:.2f} ms, p99 {lag['p99_ms']:.2f} ms, "
        f"max {lag['max_ms']:.0f} ms, {lag['over_10ms']} of {lag['count']} over 10 ms"
    )


def measure_reads(url: str, token: str, *, seconds: float) -> dict[str, Any]:
    process, port, _ = start_server(url, cache=True)
    try:
        get(port, "/bench/lag")
        loaded = run_load(port, [path for _, path, _ in ENDPOINTS], token, seconds)
        lag = get(port, "/bench/lag")
    finally:
        stop(process)
    process, port, _ = start_server(url, cache=False)
    try:
        history = ENDPOINTS[3][1]
        again = run_load(port, ["/bare", history], token, seconds / 2)
        uncached, uncached_ceiling = again[history], again["/bare"]["rps"]
    finally:
        stop(process)

    ceiling = loaded["/bare"]["rps"]
    print(f"  {'endpoint (idle)':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'of ceiling':>11}")
    for name, path, target in ENDPOINTS:
        result = loaded[path]
        share = result["rps"] / ceiling
        verdict = "" if target is None else ("ok" if share >= target else "MISSED")
        goal = "" if target is None else f">= {target:.0%}"
        print(
            f"  {name:<36} {result['rps']:>8.0f} {result['p50_ms']:>8.2f} "
            f"{result['p99_ms']:>8.2f} {share:>10.0%}  {goal:<6} {verdict}"
        )
    share = uncached["rps"] / uncached_ceiling  # against the ceiling of the same server run
    print(
        f"  {'  same, read cache off (database)':<36} {uncached['rps']:>8.0f} "
        f"{uncached['p50_ms']:>8.2f} {uncached['p99_ms']:>8.2f} {share:>10.0%}  (for reference)"
    )
    print(lag_line("idle reads", lag))
    sys.stdout.flush()
    return loaded


def measure_live(
    url: str, tokens: Tokens, idle: dict[str, Any] | None, *, seconds: float, profile: str | None
) -> None:
    process, port, _ = start_server(url, cache=True, live=True)
    pusher = None
    spy = None
    try:
        deadline = time.monotonic() + READY_SECONDS
        while get(port, "/bench/lag")["cycles"] < 2:  # the monitor is cycling
            if time.monotonic() > deadline:
                raise RuntimeError("the monitor did not cycle")
            time.sleep(0.2)
        pusher = subprocess.Popen(
            [sys.executable, __file__, "--push", str(port), tokens.ingest],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(2 * FLIP_SECONDS)  # a breach opened and resolved before the reads
        if profile is not None:
            beside = Path(sys.executable).parent / "py-spy"
            spy_path = str(beside) if beside.exists() else shutil.which("py-spy")
            if spy_path is None:
                print("  --profile: py-spy is not installed, no profile")
            else:
                spy = subprocess.Popen(
                    [
                        spy_path,
                        "record",
                        "--pid",
                        str(process.pid),
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--output",
                        profile,
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
        cycles = get(port, "/bench/lag")["cycles"]
        loaded = run_load(port, [path for _, path, _ in ENDPOINTS], tokens.viewer, seconds)
        lag = get(port, "/bench/lag")
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        pusher.send_signal(signal.SIGTERM)
        pushed, _ = pusher.communicate(timeout=60)
    finally:
        for child in (spy, pusher):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
        stop(process)
    pushes = json.loads(pushed)
    ceiling = loaded["/bare"]["rps"]
    idle_ceiling = idle["/bare"]["rps"] if idle else None
    print(
        f"  live: monitor every {LIVE_INTERVAL:g} s ({lag['cycles'] - cycles} cycles during the "
        f"reads), {pushes['pushes']} pushes of 10 metrics "
        f"({pushes['failures']} not accepted: {pushes['statuses']}, p99 {pushes['p99_ms']:.1f} ms)"
    )
    print(
        f"  {'endpoint (live)':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'of ceiling':>11}"
        f" {'of idle ceil.':>13} {'p99/idle':>9}"
    )
    for name, path, target in ENDPOINTS:
        result = loaded[path]
        share = result["rps"] / ceiling
        of_idle = f"{result['rps'] / idle_ceiling:>12.0%}" if idle_ceiling else f"{'-':>12}"
        ratio = result["p99_ms"] / idle[path]["p99_ms"] if idle else None
        verdict = ""
        if target is not None and path != ENDPOINTS[3][1]:
            met = share >= 0.5 and (ratio is None or ratio <= 3.0)
            verdict = "ok" if met else "MISSED"
        print(
            f"  {name:<36} {result['rps']:>8.0f} {result['p50_ms']:>8.2f} "
            f"{result['p99_ms']:>8.2f} {share:>10.0%}  {of_idle} "
            f"{'-' if ratio is None else f'{ratio:.2f}x':>9}  {verdict}"
        )
    print("    (targets for summary and active: >= 50% of the ceiling, p99 <= 3x idle)")
    print(lag_line("live reads", lag))
    sys.stdout.flush()


def measure_fanout(url: str, token: str, *, clients: int) -> None:
    process, port, plain_port = start_server(url, cache=True)
    try:
        fan = subprocess.run(
            [sys.executable, __file__, "--fanout", str(port), str(plain_port), token, str(clients)],
            capture_output=True,
            text=True,
            check=True,
        )
        fanned: dict[str, list[float]] = json.loads(fan.stdout)
    finally:
        stop(process)
    figures = {
        mode: (statistics.median(times) * 1000, percentile(times, 0.99) * 1000)
        for mode, times in fanned.items()
    }
    print(
        f"  fan-out of one event to {clients:,} clients "
        f"(publish to last arrival; {len(fanned['sse'])} broadcasts each):"
    )
    labels = {
        "sse": "/api/events (SSE)",
        "plain": "plain sockets, one write loop",
        "tasks": "plain sockets, a task per connection",
    }
    for mode, (median, p99) in figures.items():
        print(f"    {labels[mode]:<38} median {median:7.2f} ms   p99 {p99:7.2f} ms")
    (sse_median, sse_p99) = figures["sse"]
    # The ceiling is whichever plain server did better in this run, median and p99 alike.
    plain_median = min(figures["plain"][0], figures["tasks"][0])
    plain_p99 = min(figures["plain"][1], figures["tasks"][1])
    ratio, p99_ratio = sse_median / plain_median, sse_p99 / plain_p99
    verdict = "ok" if ratio <= 2.0 and p99_ratio <= 2.0 else "MISSED"
    print(
        f"    SSE vs the faster plain server: median {ratio:.2f}x, p99 {p99_ratio:.2f}x "
        f"(target <= 2x both) {verdict}"
    )
    sys.stdout.flush()


def measure(
    url: str, tokens: Tokens, *, seconds: float, clients: int, parts: set[str], profile: str | None
) -> None:
    idle = measure_reads(url, tokens.viewer, seconds=seconds) if "reads" in parts else None
    if "live" in parts:
        measure_live(url, tokens, idle, seconds=seconds, profile=profile)
    if "fanout" in parts:
        measure_fanout(url, tokens.viewer, clients=clients)


async def run_postgres(incidents: list[Any], **options: Any) -> None:
    import asyncpg

    name = f"vigil_bench_api_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    except OSError as exc:
        print(f"== postgresql: skipped, {POSTGRES_ADMIN_URL} unreachable ({exc})")
        return
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        plain_url = f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{name}"
        url = plain_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        began = time.perf_counter()
        tokens = await prepare(url, lambda: build_postgres(plain_url, incidents, []))
        built = time.perf_counter() - began
        print(f"== postgresql: {len(incidents):,} incidents built in {built:.0f} s")
        await asyncio.to_thread(measure, url, tokens, **options)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=6.0, help="load per endpoint")
    parser.add_argument("--clients", type=int, default=1000, help="fan-out clients")
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--only", default="reads,live,fanout", help="the parts to run")
    parser.add_argument("--profile", help="py-spy's raw stacks of the live reads, to this file")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if not parts <= {"reads", "live", "fanout"}:
        parser.error("--only takes reads, live and fanout, comma-separated")
    options = {
        "seconds": args.seconds,
        "clients": args.clients,
        "parts": parts,
        "profile": args.profile,
    }
    raise_file_limit()
    incidents = incident_rows(args.incidents)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        began = time.perf_counter()

        async def build() -> None:
            build_sqlite(path, incidents, [])

        tokens = asyncio.run(prepare(url, build))
        print(
            f"== sqlite: {len(incidents):,} incidents built in {time.perf_counter() - began:.0f} s"
        )
        measure(url, tokens, **options)
    if args.postgres:
        asyncio.run(run_postgres(incidents, **options))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        raise_file_limit()
        _, _, url, port, plain_port, *rest = sys.argv
        with suppress(KeyboardInterrupt):  # uvicorn hands Ctrl-C back once all has stopped
            asyncio.run(
                serve(
                    url,
                    int(port),
                    int(plain_port),
                    cache="--no-cache" not in rest,
                    live="--live" in rest,
                )
            )
    elif len(sys.argv) > 1 and sys.argv[1] == "--push":
        _, _, port, token = sys.argv
        print(json.dumps(push(int(port), token)))
    elif len(sys.argv) > 1 and sys.argv[1] == "--load":
        _, _, port, token, seconds, *paths = sys.argv
        figures = load(int(port), paths, token, seconds=float(seconds), rounds=ROUNDS)
        print(json.dumps(asyncio.run(figures)))
    elif len(sys.argv) > 1 and sys.argv[1] == "--fanout":
        _, _, port, plain_port, token, clients = sys.argv
        print(json.dumps(fanout(int(port), int(plain_port), token, int(clients))))
    else:
        main()
