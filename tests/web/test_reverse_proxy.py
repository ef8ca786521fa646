"""The example reverse-proxy configurations (examples/proxy/) in front of a real server, on
127.0.0.1 only: Debian's nginx and Caddy terminate TLS with a throwaway certificate, and the
client connects from other loopback addresses (127.0.0.2, 127.0.0.3) so that "which client"
is visible. What must hold through the proxy: the sign-in limits count the real client (not
the proxy, not what a client claims), the session cookie is Secure, the live stream flows.

Without nginx or Caddy the test skips and says how to install them; under CI=true it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from vigil.web.auth import SESSION_COOKIE
from vigil.web.ratelimit import SignInLimiter

from .support import DEADLINE, LATENCY, PASSWORD, Api, FakeClock, running_api, served

EXAMPLES = Path(__file__).parents[2] / "examples" / "proxy"


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def substituted(text: str, replacements: dict[str, str]) -> str:
    """The example with its public names replaced by this machine's; every one must be
    there, so an example that drifts fails here instead of being tested no more."""
    for old, new in replacements.items():
        assert old in text, f"the example no longer says {old!r}"
        text = text.replace(old, new)
    return text


def certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"]
    command += ["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=DEADLINE,
    )
    return cert, key


@contextlib.contextmanager
def nginx(directory: Path, upstream: int) -> Iterator[int]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(binary, os.X_OK):
        _unavailable("nginx is not installed: apt-get install nginx-light")
    port = free_port()
    cert, key = certificate(directory)
    server = substituted(
        (EXAMPLES / "nginx.conf").read_text(encoding="utf-8"),
        {
            "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
            "server_name vigil.example.com;": "server_name 127.0.0.1;",
            "/etc/ssl/certs/vigil.example.com.pem": str(cert),
            "/etc/ssl/private/vigil.example.com.key": str(key),
            "proxy_pass http://127.0.0.1:8000;": f"proxy_pass http://127.0.0.1:{upstream};",
        },
    )
    (directory / "vigil.conf").write_text(server, encoding="utf-8")
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers may read the temp dirs
    temp = "".join(
        f"{kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (directory / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\naccess_log off;\n{temp}include {directory / 'vigil.conf'};\n}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [binary, "-p", str(directory), "-c", str(directory / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # its error_log is in the directory
    )
    try:
        yield port
    finally:
        process.terminate()
        process.wait(DEADLINE)


@contextlib.contextmanager
def caddy(directory: Path, upstream: int) -> Iterator[int]:
    binary = shutil.which("caddy")
    if binary is None:
        _unavailable("Caddy is not installed: apt-get install caddy")
        raise AssertionError("unreachable")
    port = free_port()
    # Offline: Caddy's own certificate authority instead of ACME, no admin endpoint, no
    # redirect listener on port 80, nothing installed in the system's trust store.
    site = substituted(
        (EXAMPLES / "Caddyfile").read_text(encoding="utf-8"),
        {
            "vigil.example.com {": f"https://127.0.0.1:{port} {{\n\ttls internal",
            "reverse_proxy 127.0.0.1:8000": f"reverse_proxy 127.0.0.1:{upstream}",
        },
    )
    options = "{\n\tadmin off\n\tauto_https disable_redirects\n\tskip_install_trust\n}\n"
    config = directory / "Caddyfile"
    config.write_text(options + site, encoding="utf-8")
    environment = {
        **os.environ,
        "HOME": str(directory),
        "XDG_DATA_HOME": str(directory / "data"),
        "XDG_CONFIG_HOME": str(directory / "config"),
    }
    process = subprocess.Popen(
        [binary, "run", "--config", str(config), "--adapter", "caddyfile"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        process.terminate()
        process.wait(DEADLINE)


PROXIES = {"nginx": nginx, "caddy": caddy}


@contextlib.asynccontextmanager
async def through(proxy: str, url: str, directory: Path) -> AsyncIterator[tuple[Api, str]]:
    # A clock that stands still: the third try through the proxy comes within the wait the
    # first two earned, however long they took.
    limiter = SignInLimiter(address_attempts=2, clock=FakeClock())
    trusted = {"trusted_proxies": ("127.0.0.1/32",)}
    async with running_api(url, settings_changes=trusted, limiter=limiter) as api:
        async with served(api.app) as (base, _server):
            upstream = int(base.rpartition(":")[2])
            with PROXIES[proxy](directory, upstream) as port:
                front = f"https://127.0.0.1:{port}"
                async with client_at("127.0.0.1", front) as probe:

                    async def answering() -> bool:
                        try:
                            return (await probe.get("/api/health")).status_code == 200
                        except httpx.TransportError:
                            return False

                    await _until(answering)
                yield api, front


@contextlib.asynccontextmanager
async def client_at(address: str, base: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client connecting from ``address`` (any of 127.0.0.0/8 is this machine)."""
    transport = httpx.AsyncHTTPTransport(local_address=address, verify=False)
    async with httpx.AsyncClient(transport=transport, base_url=base, timeout=DEADLINE) as client:
        yield client


async def _until(check: object) -> None:
    import asyncio

    async def poll() -> None:
        while not await check():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), DEADLINE)


async def login(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    # What a client may claim: the proxy replaces it with the address it really came from.
    spoofed = {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "http"}
    return await client.post(
        "/api/auth/login", json={"name": name, "password": password}, headers=spoofed
    )


@pytest.mark.parametrize("proxy", sorted(PROXIES))
async def test_the_example_proxy_passes_the_real_client_tls_and_the_live_stream(
    proxy: str, sqlite_url: str, tmp_path: Path
) -> None:
    async with through(proxy, sqlite_url, tmp_path) as (api, front):
        async with client_at("127.0.0.2", front) as crowd, client_at("127.0.0.3", front) as ana:
            for n in range(2):
                assert (await login(crowd, f"user{n}", "guess")).status_code == 401
            assert (await login(crowd, "user9", "guess")).status_code == 429  # 127.0.0.2 only
            signed = await login(ana, "ana", PASSWORD)
            assert signed.status_code == 200  # 127.0.0.3 is someone else
            cookie = next(
                value
                for name, value in signed.headers.multi_items()
                if name == "set-cookie" and value.startswith(f"{SESSION_COOKIE}=")
            )
            assert "secure" in cookie.lower()  # https at the proxy, though http behind it
            headers = api.auth("viewer")
            async with ana.stream("GET", "/api/events", headers=headers) as events:
                lines = events.aiter_lines()
                assert await anext(lines) == "retry: 3000"
                await api.breach(LATENCY, 250)
                while not (line := await anext(lines)).startswith("event: "):
                    pass
                assert line == "event: incident.opened"
