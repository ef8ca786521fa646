"""Plumbing for bench_peer.py: child processes that always die, CPU and memory of a process
tree from /proc, a local exporter and webhook receiver, and a small JSON HTTP client.

Stdlib only, so that the harness measures the systems and not a client library.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchError(RuntimeError):
    """Something the benchmark needed did not happen (a process did not start, an alert
    never arrived): the run fails and says what."""


def free_port() -> int:
    """A port that was free a moment ago (the servers under test take their port as a
    setting, so they cannot bind port 0 themselves)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; BenchError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            last_error = exc
        else:
            if result:
                return result
        time.sleep(every)
    detail = f" (last error: {last_error})" if last_error else ""
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")


# -- child processes --------------------------------------------------------------------------


class Children:
    """Every process the benchmark starts, each in a session of its own, so that stopping it
    also stops anything it started. ``close`` (also on error, and on SIGTERM through
    ``terminate_on_sigterm``) stops them all: SIGTERM, then SIGKILL after a grace period."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, log: Path
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # whatever is left of its session (the process itself if it ignored SIGTERM)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if process in self._running:
            self._running.remove(process)

    def close(self) -> None:
        for process in reversed(list(self._running)):
            self.stop(process, grace=5.0)


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (from make, a CI timeout) into SystemExit, so ``finally`` blocks run and
    the children are stopped."""

    def handler(signum: int, frame: object) -> None:
        print("terminated: stopping every child process", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_time(text: str) -> float:
    """An RFC 3339 time (Prometheus writes nanoseconds, Vigil microseconds) as epoch seconds."""
    match = re.fullmatch(r"(.+?)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise BenchError(f"not a time: {text!r}")
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{base}{(fraction or '.0')[:7]}{zone}").timestamp()


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def check_alive(process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    if process.poll() is not None:
        raise BenchError(f"{what} exited with {process.returncode}:\n{log_tail(log)}")


# -- /proc --------------------------------------------------------------------------------------


def process_tree(roots: Sequence[int]) -> list[int]:
    """The live processes among ``roots`` and all their descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid for pid in roots if Path(f"/proc/{pid}").exists()]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # exited meanwhile: its time is lost, which the window keeps short
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident * PAGE_SIZE
    return total


@dataclass(frozen=True, slots=True)
class CpuMark:
    cpu: float
    at: float


def cpu_mark(roots: Sequence[int]) -> CpuMark:
    return CpuMark(cpu_seconds(process_tree(roots)), time.monotonic())


def own_cpu() -> float:
    """This process's CPU time alone (its pushers, exporter and receiver threads)."""
    return cpu_seconds([os.getpid()])


# -- HTTP servers in the benchmark process ------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    aborted = 0  # responses the client hung up on (a scrape past its timeout, a shutdown)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            self.aborted += 1
        else:
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: scrapers and webhooks reuse the connection

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Background:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _Server((HOST, 0), handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def aborted(self) -> int:
        return self.server.aborted

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True, slots=True)
class Arrival:
    path: str
    wall: float  # time.time() when the request's body had been read
    mono: float  # time.monotonic(), same instant
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver(_Background):
    """The webhook receiver both systems notify: notes when each POST arrived."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._changed = threading.Condition()
        outer = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrival = Arrival(
                    self.path, time.time(), time.monotonic(), dict(self.headers), body
                )
                with outer._changed:
                    outer.arrivals.append(arrival)
                    outer._changed.notify_all()
                self.reply(200, b"ok")

        super().__init__(Handler)

    def mark(self) -> int:
        with self._changed:
            return len(self.arrivals)

    def wait(self, match: Callable[[Arrival], bool], *, since: int, timeout: float) -> Arrival:
        """The first arrival from index ``since`` on that ``match`` accepts."""
        deadline = time.monotonic() + timeout
        seen = since
        with self._changed:
            while True:
                for arrival in self.arrivals[seen:]:
                    if match(arrival):
                        return arrival
                seen = len(self.arrivals)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"no matching notification within {timeout:.0f} s")
                self._changed.wait(left)


class Exporter(_Background):
    """A Prometheus exporter whose values the benchmark sets: ``/metrics`` renders the current
    gauges on every scrape; any other path serves a fixed body registered with ``serve``."""

    def __init__(self) -> None:
        self._values: dict[str, float] = {}
        self._bodies: dict[str, bytes] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                body = outer._body(self.path)
                if body is None:
                    self.reply(404, b"not found")
                else:
                    self.reply(200, body, "text/plain; version=0.0.4; charset=utf-8")

        super().__init__(Handler)

    def set(self, values: Mapping[str, float]) -> None:
        with self._lock:
            self._values.update(values)

    def serve(self, path: str, body: bytes) -> None:
        with self._lock:
            self._bodies[path] = body

    def _body(self, path: str) -> bytes | None:
        with self._lock:
            if path == "/metrics":
                lines = [
                    f"# TYPE {name} gauge\n{name} {value!r}" for name, value in self._values.items()
                ]
                return ("\n".join(lines) + "\n").encode()
            return self._bodies.get(path)


def series_body(name: str, values: Sequence[float]) -> bytes:
    """A gauge with one series per value, labelled ``id="m<i>"``, in exposition format."""
    lines = [f"# TYPE {name} gauge"]
    lines += [f'{name}{{id="m{i}"}} {value!r}' for i, value in enumerate(values)]
    return ("\n".join(lines) + "\n").encode()


# -- an HTTP client -----------------------------------------------------------------------------


class Client:
    """One keep-alive connection to ``port`` on 127.0.0.1 (not thread-safe: one per thread)."""

    def __init__(self, port: int, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.port = port
        self.token = token
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            if self._connection is None:
                self._connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            try:
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body)
        if status >= 300:
            raise BenchError(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return json.loads(data) if data else None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def scrape(port: int, path: str = "/metrics") -> dict[str, float]:
    """A Prometheus text exposition, summed per metric name plus label set as written."""
    status, data = Client(port, timeout=10).request("GET", path)
    if status != 200:
        raise BenchError(f"GET {path} on port {port}: HTTP {status}")
    values: dict[str, float] = {}
    for line in data.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            values[key] = float(value)
    return values


def metric_sum(values: Mapping[str, float], name: str, **labels: str) -> float | None:
    """Sum of the series of ``name`` whose labels include ``labels``; None if there is none."""
    total: float | None = None
    for key, value in values.items():
        base, _, rest = key.partition("{")
        if base != name or any(f'{k}="{v}"' not in rest for k, v in labels.items()):
            continue
        total = (total or 0.0) + value
    return total
