"""``vigil users``, ``vigil tokens`` and ``vigil serve``, run as an operator runs them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import httpx
import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.store import Role, Store
from vigil.web.security import Passwords, token_hash

from .support import DEADLINE, Api, eventually, running_api

T = TypeVar("T")


def vigil(url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, list(args), input=stdin, env={"VIGIL_DATABASE_URL": url, "COLUMNS": "200"}
    )
    return result.exit_code, result.output


def with_store(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await Store.open(url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def test_users_add_list_passwd_remove(migrated_url: str) -> None:
    code, output = vigil(
        migrated_url,
        "users",
        "add",
        "root",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert code == 0 and "Added admin 'root'" in output
    code, output = vigil(
        migrated_url, "users", "add", "eve", "--role", "viewer", stdin="pass word 1\npass word 1\n"
    )
    assert code == 0, output  # asked twice on the terminal
    user = with_store(migrated_url, lambda store: store.get_user("root"))
    assert user.role is Role.ADMIN and user.password_hash.startswith("$argon2id$")
    assert asyncio.run(Passwords().check(user.password_hash, "a long password"))

    code, output = vigil(migrated_url, "users", "list")
    assert code == 0 and "root" in output and "admin" in output and "eve" in output

    code, output = vigil(
        migrated_url, "users", "passwd", "root", "--password-stdin", stdin="another password\n"
    )
    assert code == 0, output
    user = with_store(migrated_url, lambda store: store.get_user("root"))
    assert asyncio.run(Passwords().check(user.password_hash, "another password"))

    code, output = vigil(migrated_url, "users", "remove", "eve", "--yes")
    assert code == 0 and "Removed 'eve'" in output
    code, output = vigil(migrated_url, "users", "list")
    assert "eve" not in output


def test_user_commands_refuse_clearly(migrated_url: str) -> None:
    add = ("users", "add", "root", "--role", "admin", "--password-stdin")
    assert vigil(migrated_url, *add, stdin="long enough\n")[0] == 0
    code, output = vigil(migrated_url, *add, stdin="long enough\n")
    assert code == 1 and "already exists" in output
    code, output = vigil(
        migrated_url, "users", "add", "x", "--role", "admin", "--password-stdin", stdin="short\n"
    )
    assert code == 1 and "at least 8 characters" in output
    code, output = vigil(migrated_url, "users", "add", "x", "--role", "owner", "--password-stdin")
    assert code == 2  # not a role: a usage error
    code, output = vigil(migrated_url, "users", "remove", "nobody", "--yes")
    assert code == 1 and "not found" in output
    code, output = vigil(migrated_url, "users", "remove", "root", stdin="n\n")
    assert code == 1  # asked, declined
    assert "root" in vigil(migrated_url, "users", "list")[1]


def test_tokens_are_shown_once_stored_hashed_and_revocable(migrated_url: str) -> None:
    code, output = vigil(migrated_url, "tokens", "create", "prometheus", "--role", "viewer")
    assert code == 0
    secret = output.strip().splitlines()[-1]
    assert secret.startswith("vgl_") and len(secret) > 40
    record = with_store(migrated_url, lambda store: store.token_by_hash(token_hash(secret)))
    assert (record.name, record.role) == ("prometheus", "viewer")

    code, listing = vigil(migrated_url, "tokens", "list")
    assert code == 0 and "prometheus" in listing and "never" in listing
    assert secret not in listing

    code, output = vigil(migrated_url, "tokens", "revoke", str(record.id))
    assert code == 0 and "Revoked" in output
    revoked = with_store(migrated_url, lambda store: store.list_tokens())
    assert revoked[0].revoked_at is not None
    code, output = vigil(migrated_url, "tokens", "revoke", "999")
    assert code == 1 and "not found" in output
    code, output = vigil(migrated_url, "tokens", "create", "x", "--role", "root")
    assert code == 2


async def test_the_commands_work_beside_a_running_server(migrated_url: str) -> None:
    async with running_api(migrated_url) as api:  # the monitor owns the SQLite file
        code, output = await asyncio.to_thread(
            vigil, migrated_url, "tokens", "create", "late", "--role", "admin"
        )
        assert code == 0, output
        secret = output.strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {secret}"}
        assert (await api.client.get("/api/alerts/active", headers=headers)).status_code == 200
        [record] = [t for t in await api.vigil.store.list_tokens() if t.name == "late"]
        code, output = await asyncio.to_thread(
            vigil, migrated_url, "tokens", "revoke", str(record.id)
        )
        assert code == 0, output

        async def refused() -> bool:
            response = await api.client.get("/api/alerts/active", headers=headers)
            return response.status_code == 401

        await eventually(refused)
        code, output = await asyncio.to_thread(
            vigil,
            migrated_url,
            "users",
            "add",
            "kim",
            "--role",
            "viewer",
            "--password-stdin",
            stdin="kims password\n",
        )
        assert code == 0, output
        await api_sign_in(api, "kim", "kims password")


async def api_sign_in(api: Api, name: str, password: str) -> None:
    response = await api.client.post("/api/auth/login", json={"name": name, "password": password})
    assert response.status_code == 200, response.text


# -- vigil serve --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    def __init__(self, url: str, token: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        env = {
            **os.environ,
            "VIGIL_DATABASE_URL": url,
            "VIGIL_PORT": str(self.port),
            "VIGIL_INTERVAL": "1",
            "VIGIL_INSTANCE": "served",
            "VIGIL_SECRET_KEY": "a-test-secret-of-enough-length",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from vigil.cli import main; main()", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

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
        return self.process.returncode, output


@contextlib.contextmanager
def start_served(url: str) -> Iterator[Served]:
    code, output = vigil(url, "tokens", "create", "ops", "--role", "viewer")
    assert code == 0, output
    server = Served(url, output.strip().splitlines()[-1])
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
