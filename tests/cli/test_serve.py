"""``vigil serve``, run as an operator runs it: a real process, stopped by a signal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..runtime.support import DEADLINE
from .support import vigil

pytestmark = pytest.mark.slow  # each test starts `vigil serve` as its own process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        env: dict[str, str] | None = None,
        open_files: int | None = None,
        args: tuple[str, ...] = (),
        log: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log
        self.base = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        environment = {
            "VIGIL_DATABASE_URL": url,
            "VIGIL_PORT": str(self.port),
            "VIGIL_INTERVAL": "1",
            "VIGIL_INSTANCE": "served",
            "VIGIL_SECRET_KEY": "a-test-secret-of-enough-length",
            **(env or {}),
        }

        def limit_files() -> None:  # in the child: as if its hard limit were this low
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        sink = None if log is None else log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from vigil.cli import main; main()", "serve", *args],
            env={**os.environ, **environment},
            # A chatty server (debug level) would fill a pipe no one reads until it stops.
            stdout=subprocess.PIPE if sink is None else sink,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=limit_files,
        )
        if sink is not None:
            sink.close()  # the child has its own copy

    def wait_ready(self) -> None:
        deadline = DEADLINE
        with httpx.Client(base_url=self.base) as client:
            while deadline > 0:
                assert self.process.poll() is None, self.process.communicate()[0]
                try:
                    if client.get("/api/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                threading.Event().wait(0.1)
                deadline -= 0.1
        raise TimeoutError("vigil serve did not answer")

    def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        output, _ = self.process.communicate(timeout=DEADLINE)
        if self.log is not None:
            output = self.log.read_text()
        return self.process.returncode, output


@contextlib.contextmanager
def start_served(url: str, *, role: str = "viewer", **options: Any) -> Iterator[Served]:
    code, output = vigil(url, "tokens", "create", "ops", "--role", role)
    assert code == 0, output
    server = Served(url, output.strip().splitlines()[-1], **options)
    try:
        server.wait_ready()
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


@pytest.fixture
def served(migrated_url: str) -> Iterator[Served]:
    with start_served(migrated_url) as server:
        yield server


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly_with_a_stream_open(served: Served, signum: int) -> None:
    ended = threading.Event()
    lines: list[str] = []

    def listen() -> None:
        with httpx.Client(base_url=served.base, timeout=DEADLINE) as client:
            with client.stream(
                "GET", "/api/events", headers={**served.headers, "Last-Event-ID": "0"}
            ) as response:
                for line in response.iter_lines():
                    lines.append(line)
        ended.set()

    listener = threading.Thread(target=listen)
    listener.start()
    with httpx.Client(base_url=served.base) as client:
        details = client.get("/api/health", headers=served.headers).json()["details"]
        assert details["instance"] == "served"
        while not any(line.startswith("event: leader.changed") for line in lines):
            assert listener.is_alive()
            threading.Event().wait(0.05)
    code, output = served.stop(signum)
    listener.join(DEADLINE)
    assert ended.is_set(), "the event stream did not end with the server"
    assert "Traceback" not in output, output
    assert "Shutting down" in output and "Finished server process" in output
    expected = 130 if signum == signal.SIGINT else -signal.SIGTERM
    assert code == expected, output


def test_a_second_server_on_one_sqlite_file_is_refused(sqlite_url: str) -> None:
    with start_served(sqlite_url) as served:
        code, output = vigil(sqlite_url, "serve", "--port", str(free_port()))
        assert code == 1
        assert "another Vigil monitor" in output and "Traceback" not in output
        assert served.stop(signal.SIGINT)[0] == 130


def test_serve_at_its_open_files_limit_keeps_serving_and_logs_little(sqlite_url: str) -> None:
    """A process that may open only 1,024 files (the usual default), 800 idle connections:
    past the cap the ones waiting longest are closed to make room, ``accept()`` never runs out
    of descriptors (asyncio would log each failure, megabytes a second), and a real request is
    served."""
    from vigil.web.connections import FILES_HEADROOM

    cap, clients = 1024 - FILES_HEADROOM, 800
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * clients:  # this process holds the clients' 800 sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2 * clients, hard), hard))
    options: dict[str, Any] = {"env": {"VIGIL_HEADER_TIMEOUT": "600"}, "open_files": 1024}
    with start_served(sqlite_url, **options) as served:
        status = asyncio.run(_crowd(served.port, clients, closed=clients - cap))
        assert status == 200
        _code, output = served.stop(signal.SIGTERM)
    assert "out of system resource" not in output
    assert "at the connection limit" in output
    assert len(output) < 100_000, f"{len(output)} characters of log"


async def _crowd(port: int, count: int, *, closed: int) -> int:
    """Hold ``count`` idle connections until the server has closed ``closed`` of them; the
    status of a health request made then.

    They are opened a batch at a time (below the listen backlog), each batch followed by a
    request on a new connection: the kernel accepts in order, so once that is answered the
    batch was accepted. All at once, a slow server's full accept queue drops handshakes that
    the client already counts as connected: connections it never sees and never closes."""
    ended: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []
    holders: list[asyncio.Future[None]] = []

    async def hold(reader: asyncio.StreamReader) -> None:
        ended.append(await reader.read())

    async def crowded() -> None:
        while len(ended) < closed:
            assert not any(h.done() and h.exception() for h in holders), "a client failed"
            await asyncio.sleep(0.05)

    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE, limits=limits
    ) as client:
        try:
            for start in range(0, count, BATCH):
                batch = min(BATCH, count - start)
                opening = (asyncio.open_connection("127.0.0.1", port) for _ in range(batch))
                for reader, writer in await asyncio.wait_for(asyncio.gather(*opening), DEADLINE):
                    writers.append(writer)
                    holders.append(asyncio.ensure_future(hold(reader)))
                assert (await client.get("/api/health")).status_code == 200
            # 800 connections opened and shed by one process beside the rest of the suite.
            await asyncio.wait_for(crowded(), 3 * DEADLINE)
            return (await client.get("/api/health")).status_code
        finally:
            for writer in writers:
                writer.close()
            await asyncio.gather(*holders, return_exceptions=True)


BATCH = 50  # connections opened at a time: below the server's listen backlog (128)


def test_serve_at_debug_level_logs_no_channel_secret(sqlite_url: str, tmp_path: Path) -> None:
    """The masking filter sits on ``vigil serve``'s handlers too: at debug level, a refused
    URL's token (apprise quotes it) and a stored channel's password (the driver logs the
    statement's parameters) reach the output masked, whoever logged them."""
    refused = "slack://T1234/B5678/MyRealToken123!!"
    stored = "json://ops:S3cretPassw0rd@127.0.0.1:9/hook?token=TopSecretQuery"
    log = tmp_path / "serve.log"
    options: dict[str, Any] = {"role": "admin", "args": ("--log-level", "debug"), "log": log}
    with start_served(sqlite_url, **options) as served:
        # the first channel loads apprise's plugins: slow on a loaded machine
        client = httpx.Client(base_url=served.base, headers=served.headers, timeout=DEADLINE)
        with client:
            answer = client.post("/api/channels", json={"name": "slack", "url": refused})
            assert answer.status_code == 422, answer.text
            answer = client.post("/api/channels", json={"name": "ops", "url": stored})
            assert answer.status_code == 201, answer.text
            # a logger no filter of its own covers: the access log, with the query string
            client.get("/api/health?url=json://ops:AccessLogPass@10.0.0.9/x")
        _code, output = served.stop(signal.SIGTERM)
    assert "DEBUG" in output and "notification_channels" in output  # it did log, at debug
    assert "GET /api/health?url=" in output
    for secret in ("MyRealToken123", "S3cretPassw0rd", "TopSecretQuery", "AccessLogPass"):
        assert secret not in output, secret
