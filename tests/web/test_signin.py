"""The sign-in limits, login CSRF and trusted proxies, against the real app on both databases.

Password checks are counted (and, for the priority test, held) by the hasher itself, so no
assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import pytest
from argon2 import PasswordHasher

from vigil.web.auth import DEVICE_COOKIE, SESSION_COOKIE
from vigil.web.ratelimit import Backoff, SignInLimiter
from vigil.web.security import MAX_PASSWORD_CHECKS, Passwords
from vigil.web.state import WebState

from .support import DEADLINE, PASSWORD, Api, FakeClock, running_api, served, wait_until

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only


class CountingHasher(PasswordHasher):
    """The tests' cheap hasher, counting every password it verifies; ``gate`` (when closed)
    holds each verification until a permit is released, and ``started`` lists the passwords
    in the order their checks began."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.started: list[str] = []
        self.gate: threading.Semaphore | None = None
        self._lock = threading.Lock()

    @property
    def checks(self) -> int:
        return len(self.started)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.started.append(password if isinstance(password, str) else password.decode())
        if self.gate is not None:
            assert self.gate.acquire(timeout=DEADLINE), "the test never released the check"
        return super().verify(hash, password)


def state_of(api: Api) -> WebState:
    state: WebState = api.app.state.vigil_web
    return state


@contextlib.asynccontextmanager
async def signing_in(url: str, **limits: Any) -> AsyncIterator[tuple[Api, CountingHasher]]:
    hasher = CountingHasher()
    options = {"attempts": 5, "account_attempts": 10, "address_attempts": 30, **limits}
    limiter = SignInLimiter(**options)
    async with running_api(url, password_hasher=hasher, limiter=limiter) as api:
        yield api, hasher


@contextlib.asynccontextmanager
async def client_at(api: Api, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser at ``address`` (its own cookie jar)."""
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def login(
    client: httpx.AsyncClient, name: str, password: str, **kwargs: Any
) -> httpx.Response:
    return await client.post("/api/auth/login", json={"name": name, "password": password}, **kwargs)


# -- the race -----------------------------------------------------------------------------------


async def test_a_burst_of_sign_ins_checks_at_most_the_allowed_passwords(migrated_url: str) -> None:
    # The limiter's clock stands still: on a busy machine the burst may take longer than the
    # first wait, and a late attempt would rightly be checked.
    async with (
        signing_in(migrated_url, clock=FakeClock()) as (api, hasher),
        client_at(api, "192.0.2.7") as client,
    ):
        responses = await asyncio.gather(*(login(client, "ana", f"guess {n}") for n in range(60)))
        statuses = sorted(response.status_code for response in responses)
        assert hasher.checks == 5, "every attempt past the free ones waits, unchecked"
        assert statuses == [401] * 5 + [429] * 55
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.headers["retry-after"] == "1"
        # the right password from the same client must wait its turn too
        assert (await login(client, "ana", PASSWORD)).status_code == 429
        assert hasher.checks == 5


async def test_failures_slow_a_client_down_and_success_starts_it_afresh(
    migrated_url: str,
) -> None:
    clock = FakeClock()
    async with signing_in(migrated_url, attempts=2, clock=clock) as (api, hasher):
        for _ in range(2):
            assert (await login(api.client, "ana", "guess")).status_code == 401
        for wait in (1, 2, 4, 8):
            refused = await login(api.client, "ana", PASSWORD)
            assert (refused.status_code, refused.headers["retry-after"]) == (429, str(wait))
            assert refused.json()["error"]["code"] == "rate_limited"
            clock.now += wait
            assert (await login(api.client, "ana", "guess")).status_code == 401
        clock.now += 16
        assert (await login(api.client, "ana", PASSWORD)).status_code == 200
        assert (await login(api.client, "ana", "typo")).status_code == 401  # afresh: free again
        assert hasher.checks == 2 + 4 + 2


async def test_the_wait_is_capped_and_forgotten_later(migrated_url: str) -> None:
    clock = FakeClock()
    limits = {"attempts": 1, "max_delay": 60.0, "clock": clock}
    async with signing_in(migrated_url, **limits) as (api, _):
        assert (await login(api.client, "ana", "guess")).status_code == 401
        for _ in range(8):
            clock.now += 60
            assert (await login(api.client, "ana", "guess")).status_code == 401
        assert (await login(api.client, "ana", "guess")).headers["retry-after"] == "60"
        clock.now += 120  # twice the longest wait without a try: the failures are forgotten
        assert (await login(api.client, "ana", PASSWORD)).status_code == 200


# -- not locking out the real user --------------------------------------------------------------


async def test_a_known_browser_or_address_signs_in_while_the_account_is_attacked(
    migrated_url: str,
) -> None:
    clock = FakeClock()
    async with signing_in(migrated_url, account_attempts=3, clock=clock) as (api, hasher):
        async with client_at(api, "192.0.2.10") as browser:
            assert (await login(browser, "ana", PASSWORD)).status_code == 200
            assert DEVICE_COOKIE in browser.cookies
        # an attacker from many addresses: the account is slowed for unknown clients
        for n in range(3):
            async with client_at(api, f"203.0.113.{n}") as attacker:
                assert (await login(attacker, "ana", "guess")).status_code == 401
        async with client_at(api, "203.0.113.99") as stranger:
            assert (await login(stranger, "ana", PASSWORD)).status_code == 429
        checks = hasher.checks
        # the browser that signed in before, from a new address (its device cookie says so)
        async with client_at(api, "198.51.100.1") as travelling:
            travelling.cookies.set(DEVICE_COOKIE, browser.cookies[DEVICE_COOKIE])
            assert (await login(travelling, "ana", PASSWORD)).status_code == 200
        # the address that signed in before, cookies cleared
        async with client_at(api, "192.0.2.10") as same_place:
            assert (await login(same_place, "ana", PASSWORD)).status_code == 200
        assert hasher.checks == checks + 2
        # a device cookie is for its own user only, and cannot be forged
        keys, cookie, now = state_of(api).auth.keys, browser.cookies[DEVICE_COOKIE], time.time()
        assert keys.device_of(cookie, "ana", now=now) is not None
        assert keys.device_of(cookie, "vic", now=now) is None
        assert keys.device_of(cookie[:-2], "ana", now=now) is None
        assert keys.device_of(cookie, "ana", now=now + 91 * 86_400) is None  # stale


async def test_a_crowd_failing_behind_one_address_does_not_lock_out_its_known_users(
    migrated_url: str,
) -> None:
    clock = FakeClock()
    async with signing_in(migrated_url, address_attempts=20, clock=clock) as (api, _):
        async with client_at(api, "10.1.1.1") as office:
            assert (await login(office, "vic", PASSWORD)).status_code == 200
        async with client_at(api, "10.1.1.1") as crowd:
            for n in range(20):
                assert (await login(crowd, f"user{n}", "guess")).status_code == 401
            assert (await login(crowd, "ana", PASSWORD)).status_code == 429  # unknown here
        async with client_at(api, "10.1.1.1") as colleague:
            assert (await login(colleague, "vic", PASSWORD)).status_code == 200


async def test_a_known_users_check_goes_before_a_flood_of_guesses(migrated_url: str) -> None:
    async with signing_in(migrated_url) as (api, hasher):
        passwords = state_of(api).auth.passwords
        async with client_at(api, "192.0.2.50") as admin:
            assert (await login(admin, "ana", PASSWORD)).status_code == 200
        hasher.gate = threading.Semaphore(0)  # every check now waits for a permit
        before = hasher.checks
        async with client_at(api, "198.51.100.77") as flood:
            guesses = [
                asyncio.ensure_future(login(flood, f"nobody{n}", f"guess-{n}")) for n in range(20)
            ]
            waiting = passwords.max_waiting
            await wait_until(lambda: passwords.waiting == waiting)
            # 2 checks run, 16 wait, the last 2 of the 20 were told to come back (wait for
            # those answers: on a slow machine they may not have arrived yet)
            await wait_until(lambda: hasher.checks == before + MAX_PASSWORD_CHECKS)
            await wait_until(lambda: sum(guess.done() for guess in guesses) == 2)
            async with client_at(api, "192.0.2.50") as admin:
                mine = asyncio.ensure_future(login(admin, "ana", PASSWORD))
                await wait_until(lambda: passwords.waiting == waiting + 1)
                hasher.gate.release()  # one running check ends: its slot goes to the admin
                await wait_until(lambda: hasher.checks == before + MAX_PASSWORD_CHECKS + 1)
                assert hasher.started[-1] == PASSWORD
                hasher.gate.release(100)
                assert (await mine).status_code == 200
            statuses = sorted(response.status_code for response in await asyncio.gather(*guesses))
            assert statuses == [401] * (MAX_PASSWORD_CHECKS + waiting) + [429] * 2


# -- login CSRF ---------------------------------------------------------------------------------


async def test_a_sign_in_sent_from_another_site_is_refused(api: Api) -> None:
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.attacker.example"},
    ):
        response = await login(api.client, "ana", PASSWORD, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "csrf_failed")
        assert SESSION_COOKIE not in api.client.cookies, headers
        form = await api.client.post(
            "/login", data={"name": "ana", "password": PASSWORD, "next": "/"}, headers=headers
        )
        assert form.status_code == 403, headers
        assert "set-cookie" not in form.headers
    # the dashboard's own pages, and clients that are not browsers, sign in
    for headers in (
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://testserver"},
        {"Origin": "https://testserver:443", "Host": "testserver"},  # behind a TLS proxy
        {},
    ):
        response = await login(api.client, "ana", PASSWORD, headers=headers)
        assert response.status_code == 200, headers


async def test_a_form_cannot_smuggle_a_json_sign_in(api: Api) -> None:
    """A cross-site form can send ``text/plain`` shaped like JSON (browsers without Origin or
    Sec-Fetch-Site exist in no current release, but the body must not be read as JSON)."""
    body = '{"name": "ana", "password": "' + PASSWORD + '", "x": "="}'
    response = await api.client.post(
        "/api/auth/login", content=body, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 422
    assert SESSION_COOKIE not in api.client.cookies


# -- trusted proxies ----------------------------------------------------------------------------


async def test_forwarded_headers_count_only_from_a_trusted_proxy(migrated_url: str) -> None:
    from vigil.runtime import Vigil
    from vigil.web import create_app

    from ..runtime.support import settings

    async def through(trusted: str, proxy: str) -> tuple[httpx.Response, httpx.Response]:
        base = settings(migrated_url)
        vigil = Vigil(
            base.model_copy(update={"trusted_proxies": (trusted,)}), process_metrics=False
        )
        # A clock that stands still: the third try comes within the wait the first two
        # earned, however long they took.
        limiter = SignInLimiter(address_attempts=2, clock=FakeClock())
        async with vigil:
            app = create_app(vigil, password_hasher=CountingHasher(), limiter=limiter)
            transport = httpx.ASGITransport(app=app, client=(proxy, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for n in range(2):  # from one client behind the proxy
                    forwarded = {"X-Forwarded-For": "203.0.113.5"}
                    response = await login(client, f"user{n}", "guess", headers=forwarded)
                    assert response.status_code == 401
                other = {"X-Forwarded-For": "spoofed, 198.51.100.6", "X-Forwarded-Proto": "https"}
                another = await login(client, "user9", "guess", headers=other)
                signed = await login(client, "ana", PASSWORD, headers=other)
                return another, signed

    async with running_api(migrated_url):  # accounts seeded
        pass
    # the proxy is trusted: each client is its own, and the cookie is Secure behind TLS
    another, signed = await through("10.0.0.0/8", "10.0.0.2")
    assert another.status_code == 401
    assert signed.status_code == 200 and "secure" in signed.headers["set-cookie"].lower()
    # the peer is not a trusted proxy: the headers are ignored, the peer is the client
    another, signed = await through("10.0.0.0/8", "192.0.2.1")
    assert another.status_code == 429
    assert signed.status_code == 429


async def test_the_server_believes_no_forwarded_header_unless_told(migrated_url: str) -> None:
    """uvicorn alone trusts X-Forwarded-For from 127.0.0.1: a local process could then claim
    any address. ``vigil serve`` leaves it to VIGIL_TRUSTED_PROXIES (none by default)."""
    async with signing_in(migrated_url, address_attempts=2, clock=FakeClock()) as (api, _):
        async with served(api.app) as (url, _server), httpx.AsyncClient(base_url=url) as client:
            for n in range(2):
                forwarded = {"X-Forwarded-For": f"203.0.113.{n}", "X-Forwarded-Proto": "https"}
                response = await login(client, f"user{n}", "guess", headers=forwarded)
                assert response.status_code == 401
            third = await login(client, "user7", "guess", headers={"X-Forwarded-For": "1.2.3.4"})
            assert third.status_code == 429  # all three came from 127.0.0.1


# -- the pieces ---------------------------------------------------------------------------------


def test_backoff_forgets_the_keys_idle_longest_first() -> None:
    backoff = Backoff(free=1, max_delay=60, forget=120, capacity=3)
    for key in ("a", "b", "c", "d"):
        backoff.strike(key, 0.0)
    assert len(backoff) == 3
    assert backoff.wait("a", 0.0) == 0  # forgotten: memory stays bounded
    assert backoff.wait("d", 0.0) == 1.0


async def test_password_checks_waiting_are_bounded() -> None:
    passwords = Passwords(CountingHasher(), slots=1, max_waiting=1)
    hasher = passwords.hasher
    assert isinstance(hasher, CountingHasher)
    hasher.gate = threading.Semaphore(0)
    stored = passwords.hash("x")
    running = asyncio.ensure_future(passwords.check(stored, "x"))
    await wait_until(lambda: hasher.checks == 1)
    queued = asyncio.ensure_future(passwords.check(stored, "y"))
    await wait_until(lambda: passwords.waiting == 1)
    from vigil.web.security import PasswordChecksBusyError

    try:
        await passwords.check(stored, "z")
    except PasswordChecksBusyError:
        pass
    else:
        raise AssertionError("a third check should have been refused")
    urgent = asyncio.ensure_future(passwords.check(stored, "x", urgent=True))  # never refused
    await wait_until(lambda: passwords.waiting == 2)
    queued.cancel()
    await wait_until(lambda: passwords.waiting == 1)
    hasher.gate.release(10)
    assert await asyncio.wait_for(running, DEADLINE)
    assert await asyncio.wait_for(urgent, DEADLINE)
    assert hasher.started == ["x", "x"]
