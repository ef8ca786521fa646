"""Web API benchmark: Vigil's hot endpoints and its event fan-out against their ceilings.

One server process runs Vigil and its app on uvicorn at 127.0.0.1 over a database of
1,000,000 incidents; load comes from separate processes. Printed, all from one run:

1. Throughput and p99 of GET /api/alerts/summary, /api/alerts/active and the first page of
   /api/alerts/incidents, each against a bare FastAPI endpoint returning a constant on the
   same server (the ceiling). Targets: summary and active >= 50% of the ceiling, the first
   history page >= 25%. The history page is also measured with the read cache off, to show
   what the database costs per request.
2. Fan-out: time for one event to reach 1,000 clients of /api/events (from publishing on the
   server to the last client receiving it; median and p99 over 100 broadcasts), against the
   same bytes written by the same server process to 1,000 plain socket connections, both as
   one loop over the connections and as a task per connection, broadcasts of the three kinds
   taking turns. Target: at most 2x the faster plain server.

The load client speaks HTTP/1.1 over raw keep-alive sockets (asyncio streams): an httpx client
costs more per request than the server does, so it would measure itself, not the server.

    python benchmarks/bench_api.py [--incidents N] [--seconds S] [--clients N] [--postgres]
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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
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


async def serve(url: str, port: int, plain_port: int, *, cache: bool) -> None:
    import uvicorn

    from vigil.core import Event, EventKind
    from vigil.runtime import Vigil
    from vigil.settings import Settings
    from vigil.web import create_app
    from vigil.web.live import render
    from vigil.web.serve import VigilServer

    settings = Settings(
        database_url=url, interval=3600, instance="bench", secret_key=secrets.token_hex(16)
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

    @app.get("/bench/clients", include_in_schema=False)
    async def clients() -> dict[str, int]:
        return {"sse": app.state.vigil_web.live.clients, "plain": len(writers)}

    plain = await asyncio.start_server(plain_client, HOST, plain_port, backlog=2048)
    gc.freeze()  # as vigil serve does: start-up objects out of the collector's way
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=2048,
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
    request = (
        f"GET /api/events HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    streams = []
    for _ in range(clients):
        sock = socket.create_connection((HOST, port))
        sock.sendall(request)
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
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(65536)
                now = time.monotonic()
                fd = sock.fileno()
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


def start_server(url: str, *, cache: bool) -> tuple[subprocess.Popen[bytes], int, int]:
    port, plain_port = free_port(), free_port()
    args = [sys.executable, __file__, "--serve", url, str(port), str(plain_port)]
    if not cache:
        args.append("--no-cache")
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


async def prepare(url: str, build: Any) -> str:
    """Build the incidents, count them per day, and make a viewer token."""
    from vigil.store import Store
    from vigil.web.accounts import create_token

    store = await Store.open(url, upgrade=True)
    try:
        await build()  # the daily counts too
        _, token = await create_token(store, "bench", role="viewer")
        return token
    finally:
        await store.close()


def measure(url: str, token: str, *, seconds: float, clients: int) -> None:
    process, port, plain_port = start_server(url, cache=True)
    try:
        loaded = run_load(port, [path for _, path, _ in ENDPOINTS], token, seconds)
        results = [(name, loaded[path], target) for name, path, target in ENDPOINTS]
        fan = subprocess.run(
            [sys.executable, __file__, "--fanout", str(port), str(plain_port), token, str(clients)],
            capture_output=True,
            text=True,
            check=True,
        )
        fanned: dict[str, list[float]] = json.loads(fan.stdout)
    finally:
        stop(process)
    process, port, _ = start_server(url, cache=False)
    try:
        history = ENDPOINTS[3][1]
        again = run_load(port, ["/bare", history], token, seconds / 2)
        uncached, uncached_ceiling = again[history], again["/bare"]["rps"]
    finally:
        stop(process)

    ceiling = results[0][1]["rps"]
    print(f"  {'endpoint':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'of ceiling':>11}")
    for name, result, target in results:
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
    ratio = sse_median / plain_median
    verdict = "ok" if ratio <= 2.0 else "MISSED"
    print(
        f"    SSE vs the faster plain server: median {ratio:.2f}x (target <= 2x) {verdict}, "
        f"p99 {sse_p99 / plain_p99:.2f}x"
    )
    sys.stdout.flush()


async def run_postgres(incidents: list[Any], *, seconds: float, clients: int) -> None:
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
        token = await prepare(url, lambda: build_postgres(plain_url, incidents, []))
        built = time.perf_counter() - began
        print(f"== postgresql: {len(incidents):,} incidents built in {built:.0f} s")
        await asyncio.to_thread(measure, url, token, seconds=seconds, clients=clients)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=6.0, help="load per endpoint")
    parser.add_argument("--clients", type=int, default=1000, help="fan-out clients")
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    args = parser.parse_args()
    raise_file_limit()
    incidents = incident_rows(args.incidents)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        began = time.perf_counter()

        async def build() -> None:
            build_sqlite(path, incidents, [])

        token = asyncio.run(prepare(url, build))
        print(
            f"== sqlite: {len(incidents):,} incidents built in {time.perf_counter() - began:.0f} s"
        )
        measure(url, token, seconds=args.seconds, clients=args.clients)
    if args.postgres:
        asyncio.run(run_postgres(incidents, seconds=args.seconds, clients=args.clients))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        raise_file_limit()
        _, _, url, port, plain_port, *rest = sys.argv
        with suppress(KeyboardInterrupt):  # uvicorn hands Ctrl-C back once all has stopped
            asyncio.run(serve(url, int(port), int(plain_port), cache="--no-cache" not in rest))
    elif len(sys.argv) > 1 and sys.argv[1] == "--load":
        _, _, port, token, seconds, *paths = sys.argv
        figures = load(int(port), paths, token, seconds=float(seconds), rounds=ROUNDS)
        print(json.dumps(asyncio.run(figures)))
    elif len(sys.argv) > 1 and sys.argv[1] == "--fanout":
        _, _, port, plain_port, token, clients = sys.argv
        print(json.dumps(fanout(int(port), int(plain_port), token, int(clients))))
    else:
        main()
