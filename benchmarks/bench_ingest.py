"""Ingest benchmark: CPU per pushed sample from a few services that wait for each answer.

bench_peer.py's ingestion figure on its own, without Prometheus, under a steadier load: a
real ``vigil serve`` of this checkout (SQLite in a temporary directory, or ``--url`` for an
empty PostgreSQL database, a 1 s monitor interval, the ten default rules) and ``--pushers``
threads, each a service pushing ``--batch`` samples a request (the ten rules' metrics over
recent instants, as bench_peer's pushers send them) on its own keep-alive connection, the
next push once the last is answered. Four such pushers leave Vigil mostly idle (each push
waits for its group commit), so this is the cost of a sample at a moderate rate, which
includes waking up for each push; bench_peer.py measures saturation, with wrk keeping many
pushes in flight. The per-token limits are raised out of the way (``VIGIL_INGEST_RATE``,
``VIGIL_INGEST_VOLUME``): this measures the cost of storing a sample, not of refusing one.

Printed: the server's CPU (user + system, every thread) over the window divided by the
samples acknowledged in it, the same at rest (no pushes) for comparison, samples a second,
the median request, the write transactions of the window (``/api/health``: group commit),
that CPU split between the event loop's thread and the others (SQLite's driver threads),
the bytes the server sent towards storage a sample (``/proc/<pid>/io``: the WAL and its
checkpoints, which show how many pages each transaction dirtied), and the ratio against
Prometheus's CPU per scraped sample (``--peer-us``, by default the 1.21 us issue 20
measured on this machine with bench_peer.py; target <= 10x).

    python benchmarks/bench_ingest.py [--pushers 4] [--batch 100] [--seconds 20]

127.0.0.1 only; the server is stopped at the end in any case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

HOST = "127.0.0.1"
METRICS = (
    "gateway_latency",
    "command_p95_latency",
    "error_rate",
    "event_loop_lag",
    "memory_rss",
    "cpu_percent",
    "guild_count",
    "messages_per_second",
    "rate_limit_hits",
    "db_pool_wait",
)
PEER_US = 1.21  # Prometheus 2.42, CPU per scraped sample, issue 20 (bench_peer.py)
TARGET = 10.0
SERVE = (
    "import sys; from vigil.cli import main; "
    "sys.argv = ['vigil', 'serve', '--log-level', 'warning']; main()"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int, task: int | None = None) -> float:
    """User + system CPU of a process, all its threads (or of its thread ``task``)."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    fields = Path(path).read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def written_bytes(pid: int) -> int | None:
    """Bytes the process has sent towards storage (``write_bytes`` of ``/proc/<pid>/io``):
    SQLite's WAL and its checkpoints. ``None`` where the kernel does not say."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "write_bytes":
                return int(value)
    except OSError:
        return None
    return None


class Client:
    """One keep-alive connection (one per thread)."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=60)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def health(self) -> dict[str, Any]:
        status, body = self.request("GET", "/api/health")
        if status != 200:
            raise SystemExit(f"GET /api/health: HTTP {status}: {body[:200]!r}")
        details: dict[str, Any] = json.loads(body)["details"]
        return details


async def prepare(url: str) -> tuple[str, str]:
    from vigil.store import Store
    from vigil.web.accounts import create_token

    store = await Store.open(url, upgrade=True)
    try:
        _, viewer = await create_token(store, "bench-viewer", role="viewer")
        _, pusher = await create_token(store, "bench-pusher", role="ingest")
    finally:
        await store.close()
    return viewer, pusher


def payload(instance: str, batch: int) -> bytes:
    """The ten metrics at successive instants 50 ms apart, newest first (bench_peer's)."""
    now = datetime.now(UTC)
    steps = -(-batch // len(METRICS))
    times = [(now - timedelta(milliseconds=50 * j)).isoformat() for j in range(steps)]
    samples = [
        {"metric": metric, "value": 10.0, "time": when} for when in times for metric in METRICS
    ][:batch]
    return json.dumps({"instance": instance, "samples": samples}).encode()


def saturate(
    port: int, token: str, *, pushers: int, batch: int, seconds: float, server: int
) -> dict[str, Any]:
    stop = threading.Event()
    done: list[list[tuple[float, int, int, float]]] = [[] for _ in range(pushers)]
    failures: list[BaseException] = []

    def push(k: int) -> None:
        client = Client(port, token)
        try:
            while not stop.is_set():
                body = payload(f"load-{k}", batch)
                sent = time.monotonic()
                status, data = client.request("POST", "/api/ingest", body)
                accepted = int(json.loads(data)["accepted"]) if status == 200 else 0
                done[k].append((time.monotonic(), status, accepted, sent))
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=push, args=(k,), daemon=True) for k in range(pushers)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2.0)  # connections open, the server warm
        # The event loop's thread (the process's first) apart from the rest (SQLite's).
        loop_before, written_before = cpu_seconds(server, server), written_bytes(server)
        began, cpu_before = time.monotonic(), cpu_seconds(server)
        time.sleep(seconds)
        ended, cpu_after = time.monotonic(), cpu_seconds(server)
        loop_after, written_after = cpu_seconds(server, server), written_bytes(server)
    finally:
        stop.set()
        for thread in threads:
            thread.join(90)
    if failures:
        raise SystemExit(f"a pusher failed: {failures[0]!r}")
    window = [row for rows in done for row in rows if began < row[0] <= ended]
    if not window:
        raise SystemExit(f"no push completed within {seconds:.0f} s")
    refused: dict[int, int] = {}
    for _, status, _, _ in window:
        if status != 200:
            refused[status] = refused.get(status, 0) + 1
    return {
        "samples": sum(accepted for _, _, accepted, _ in window),
        "requests": len(window),
        "seconds": ended - began,
        "cpu": cpu_after - cpu_before,
        "loop_cpu": loop_after - loop_before,
        "written": (
            written_after - written_before
            if written_before is not None and written_after is not None
            else None
        ),
        "request_ms": statistics.median(end - sent for end, _, _, sent in window) * 1e3,
        "refused": refused,
    }


def at_rest(server: int, seconds: float) -> float:
    """The server's CPU a second with nothing pushed (the monitor's own work)."""
    before, began = cpu_seconds(server), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(server) - before) / (time.monotonic() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="samples per push")
    parser.add_argument("--seconds", type=float, default=20.0, help="the measured window")
    parser.add_argument("--rest", type=float, default=10.0, help="the window at rest")
    parser.add_argument("--url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--peer-us", type=float, default=PEER_US)
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for vigil"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.url or f"sqlite+aiosqlite:///{Path(directory) / 'vigil.db'}"
        viewer, pusher = asyncio.run(prepare(url))
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
            "PYTHONPATH": str(ROOT / "src"),
            "VIGIL_DATABASE_URL": url,
            "VIGIL_HOST": HOST,
            "VIGIL_PORT": str(port),
            "VIGIL_INTERVAL": "1",
            "VIGIL_INSTANCE": "bench",
            "VIGIL_SECRET_KEY": secrets.token_urlsafe(32),
            "VIGIL_INGEST_RATE": "10000",
            "VIGIL_INGEST_VOLUME": "1000000",
        }
        for item in args.env:
            name, _, value = item.partition("=")
            env[name] = value
        server = subprocess.Popen([sys.executable, "-c", SERVE], env=env, cwd=directory)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if Client(port, viewer).health()["cycles"] >= 2:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("vigil serve did not start")
                time.sleep(0.2)
            rest = at_rest(server.pid, args.rest)
            before = Client(port, viewer).health().get("ingest") or {}
            out = saturate(
                port,
                pusher,
                pushers=args.pushers,
                batch=args.batch,
                seconds=args.seconds,
                server=server.pid,
            )
            after = Client(port, viewer).health().get("ingest") or {}
        finally:
            with contextlib.suppress(ProcessLookupError):
                server.kill()
            server.wait()
    per_sample = out["cpu"] / out["samples"] * 1e6 if out["samples"] else float("inf")
    rest_share = rest * out["seconds"] / out["samples"] * 1e6 if out["samples"] else 0.0
    flushes = after.get("flushes", 0) - before.get("flushes", 0) if "flushes" in after else None
    load = os.getloadavg()
    print(
        f"{args.pushers} pushers x {args.batch} samples: {out['samples']:,} samples in "
        f"{out['seconds']:.1f} s = {out['samples'] / out['seconds']:,.0f} samples/s, "
        f"{out['requests']:,} requests (median {out['request_ms']:.1f} ms), "
        f"refused {out['refused']}"
    )
    print(
        f"server CPU {out['cpu']:.2f} s = {per_sample:.2f} us per sample "
        f"(at rest {rest * 1e3:.0f} ms/s, {rest_share:.2f} us of it a sample); "
        + (f"{flushes} write transactions" if flushes is not None else "one transaction a push")
    )
    if out["samples"]:
        loop_us = out["loop_cpu"] / out["samples"] * 1e6
        written = out["written"]
        print(
            f"of which the event loop's thread {loop_us:.2f} us a sample, the other threads "
            f"(SQLite's) {per_sample - loop_us:.2f} us"
            + (
                f"; {written / out['samples']:,.0f} bytes written towards storage a sample"
                if written is not None
                else ""
            )
        )
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    ratio = per_sample / args.peer_us
    verdict = "ok" if ratio <= TARGET else "MISSED"
    # A missed target is a figure, not a failed run: the run fails only when it cannot measure.
    print(
        f"CPU per ingested sample / Prometheus's ({args.peer_us:g} us as issue 20 measured it; "
        f"bench_peer.py measures both in one run) = {ratio:.1f}x (target <= {TARGET:g}x) {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
