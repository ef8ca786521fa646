"""The demo's server: its parts in this process, then `vigil demo` as a newcomer runs it, a real
process serving the dashboard and the API."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from vigil.demo.bot import DemoBot
from vigil.demo.server import play, prepare, receiver
from vigil.metrics import HealthRegistry, Recorder
from vigil.store import Role, Store
from vigil.web.security import Passwords

from ..runtime.support import wait_until

DEADLINE = 180.0  # generous: only a broken demo gets near it
VIGIL = Path(sys.executable).parent / "vigil"


T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


async def test_each_start_replaces_the_database_with_two_fresh_accounts(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    first = await prepare(database, now=T0)
    stale_lock = Path(f"{database}.monitor.lock")
    await asyncio.to_thread(stale_lock.write_text, "left by a demo that was killed")
    second = await prepare(database, now=T0)  # the same names again: refused unless replaced
    assert not await asyncio.to_thread(stale_lock.exists)
    async with await Store.open(f"sqlite+aiosqlite:///{database}") as store:
        users = {user.name: user for user in await store.list_users()}
    assert {name: user.role for name, user in users.items()} == {
        "admin": Role.ADMIN,
        "viewer": Role.VIEWER,
    }
    passwords = Passwords()
    assert await passwords.check(users["admin"].password_hash, second.admin)
    assert await passwords.check(users["viewer"].password_hash, second.viewer)
    assert not await passwords.check(users["admin"].password_hash, first.admin)


async def test_the_demo_channel_prints_what_it_receives() -> None:
    said: list[str] = []
    async with receiver(said.append) as port, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{port}/notify"
        assert (await client.post(url, json={"title": "Gateway Latency opened"})).is_success
        assert (await client.post(url, content=b"not json")).is_success
    assert said == [
        "  >> notification received on the demo channel: Gateway Latency opened",
        "  >> notification received on the demo channel: (no title)",
    ]


async def test_the_bot_acts_out_the_story_and_names_its_phase() -> None:
    said: list[str] = []
    recorder = Recorder()
    bot = DemoBot(recorder, HealthRegistry(clock=recorder.clock), interval=3.0)
    actor = asyncio.create_task(play(bot, said.append))
    try:
        await wait_until(lambda: bool(said))
    finally:
        actor.cancel()
        await asyncio.gather(actor, return_exceptions=True)
    assert re.fullmatch(r"\[ +0 s\] calm", said[0]), said


class Output:
    """The demo's output, read line by line in a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def close(self) -> None:
        self._thread.join(DEADLINE)  # the pipe ends with the process
        if self._process.stdout is not None:
            self._process.stdout.close()

    def wait_for(self, pattern: str) -> re.Match[str]:
        expression = re.compile(pattern)
        end = time.monotonic() + DEADLINE
        with self._changed:
            while True:
                for line in self.lines:
                    if found := expression.search(line):
                        return found
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line matching {pattern!r} in:\n" + self.text)
                self._changed.wait(left)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def until(check: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Output, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [str(VIGIL), "demo", "--port", str(port), "--database", str(tmp_path / "demo.db")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        yield f"http://127.0.0.1:{port}", output, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        output.close()


@pytest.mark.slow  # the demo as its own process
def test_the_demo_serves_the_dashboard_and_api_then_stops_on_ctrl_c(
    demo: tuple[str, Output, subprocess.Popen[str]],
) -> None:
    url, output, process = demo
    credentials = output.wait_for(r"sign in as admin / (\S+)\s+\(or viewer / (\S+)\)")
    admin_password = credentials.group(1)

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/api/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    until(healthy, "the demo's API")
    with httpx.Client(base_url=url, timeout=30) as client:
        signed_in = client.post(
            "/api/auth/login", json={"name": "admin", "password": admin_password}
        )
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["role"] == "admin"
        page = client.get("/alerts")
        assert page.status_code == 200 and "Gateway Latency" in page.text
        rules = client.get("/api/alerts/config")
        assert rules.status_code == 200 and len(rules.json()) == 10
        # the story's first episode opens an incident and notifies the demo channel
        output.wait_for(r"notification received on the demo channel: .*Gateway Latency")
        active = client.get("/api/alerts/active").json()
        assert any(item["metric"] == "gateway_latency" for item in active)

    process.send_signal(signal.SIGINT)
    until(lambda: process.poll() is not None, "the demo to stop after Ctrl-C")
    assert process.returncode == 0, output.text
    output.wait_for(r"Vigil demo stopped\.")
