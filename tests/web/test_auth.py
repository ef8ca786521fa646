"""Sign-in, sessions, CSRF, tokens and roles, against the real app on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from vigil.store import Role
from vigil.web import close_streams
from vigil.web.accounts import set_password
from vigil.web.auth import SESSION_COOKIE
from vigil.web.security import Passwords, Session
from vigil.web.state import WebState

from .support import (
    CHEAP_HASHER,
    DEADLINE,
    LATENCY,
    PASSWORD,
    Api,
    eventually,
    running_api,
    wait_until,
)

RULE = f"/api/alerts/config/{LATENCY}"


def cookie_header(value: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={value}"}


def state_of(api: Api) -> WebState:
    state: WebState = api.app.state.vigil_web
    return state


async def test_sign_in_sets_a_safe_cookie_and_returns_the_csrf_token(api: Api) -> None:
    response = await api.client.post("/api/auth/login", json={"name": "ana", "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"name", "role", "kind", "csrf_token", "expires_at"}
    assert (body["name"], body["role"], body["kind"]) == ("ana", "admin", "session")
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=11) < expires - datetime.now(UTC) <= timedelta(hours=12)
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {SESSION_COOKIE, "httponly", "path", "samesite", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower() and "path=/;" in cookie.lower() + ";"
    assert "secure" not in attributes  # plain http here; https adds it
    me = await api.client.get("/api/auth/me")
    assert me.json() == {
        "name": "ana",
        "role": "admin",
        "kind": "session",
        "csrf_token": body["csrf_token"],
    }


async def test_wrong_credentials_are_401_with_one_message(api: Api) -> None:
    messages = set()
    for name, password in (("ana", "wrong password"), ("nobody", PASSWORD), ("admin", "admin")):
        response = await api.client.post(
            "/api/auth/login", json={"name": name, "password": password}
        )
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
        messages.add(response.json()["error"]["message"])
    assert messages == {"wrong user name or password"}
    for body, field in (
        ({"name": "ana"}, "password"),
        ({"name": "a\x00", "password": "x"}, "name"),
    ):
        response = await api.client.post("/api/auth/login", json=body)
        assert (response.status_code, response.json()["error"]["field"]) == (422, field)


async def test_changes_with_the_cookie_need_the_csrf_token(api: Api) -> None:
    csrf = await api.sign_in("ana")
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
        response = await api.client.put(RULE, json={"unit": "x"}, headers=headers)
        assert response.status_code == 403, headers
        assert response.json()["error"]["code"] == "csrf_failed"
    assert (await api.client.get(RULE)).json()["unit"] == "ms"  # reads need none
    response = await api.client.put(RULE, json={"unit": "x"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    assert response.json()["updated_by"] == "ana"  # the user, not a token
    # the token belongs to this session only
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://t")
    async with other:
        response = await other.post("/api/auth/login", json={"name": "ana", "password": PASSWORD})
        second = response.json()["csrf_token"]
        assert second != csrf
        response = await other.put(RULE, json={"unit": "y"}, headers={"X-CSRF-Token": csrf})
        assert response.status_code == 403


async def test_a_viewer_session_reads_but_may_not_change(api: Api) -> None:
    csrf = await api.sign_in("vic")
    assert (await api.client.get("/api/alerts/active")).status_code == 200
    response = await api.client.put(RULE, json={"unit": "x"}, headers={"X-CSRF-Token": csrf})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")


async def test_sign_out_ends_the_session_even_for_a_copied_cookie(api: Api) -> None:
    csrf = await api.sign_in("ana")
    copied = api.client.cookies[SESSION_COOKIE]
    refused = await api.client.post("/api/auth/logout")
    assert refused.status_code == 403  # a live session signs out with its CSRF token only
    response = await api.client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert SESSION_COOKIE not in api.client.cookies
    assert (await api.client.get("/api/auth/me")).status_code == 401
    replay = await api.client.get("/api/auth/me", headers=cookie_header(copied))
    assert replay.status_code == 401
    # signing out without a session is harmless
    assert (await api.client.post("/api/auth/logout")).status_code == 204


async def test_forged_tampered_and_expired_cookies_count_as_nobody(api: Api) -> None:
    await api.sign_in("vic")
    good = api.client.cookies[SESSION_COOKIE]
    api.client.cookies.clear()
    payload, _, signature = good.partition(".")
    keys = state_of(api).auth.keys
    now = int(datetime.now(UTC).timestamp())
    user = await api.vigil.store.get_user("ana")
    forged_admin = keys.sign(
        Session("ana", "s1", now - 100, now - 1, keys.password_mark(user.password_hash))
    )
    for cookie in (
        f"{payload}x.{signature}",
        f"{payload}.{signature[:-2]}",
        "garbage",
        forged_admin,  # correctly signed, but expired
    ):
        response = await api.client.get("/api/auth/me", headers=cookie_header(cookie))
        assert response.status_code == 401, cookie


async def test_a_password_change_or_removal_ends_sessions(api: Api) -> None:
    await api.sign_in("vic")

    async def signed_in() -> bool:
        return (await api.client.get("/api/auth/me")).status_code == 200

    assert await signed_in()
    await set_password(
        api.vigil.store, "vic", password="another password", passwords=Passwords(CHEAP_HASHER)
    )
    await eventually(lambda: _not(signed_in))
    await api.sign_in("vic", "another password")
    assert await signed_in()
    await api.vigil.store.delete_user("vic")
    await eventually(lambda: _not(signed_in))


async def test_a_demoted_admin_loses_admin_rights(api: Api) -> None:
    csrf = await api.sign_in("ana")

    async def may_change() -> bool:
        response = await api.client.put(RULE, json={"unit": "x"}, headers={"X-CSRF-Token": csrf})
        return response.status_code == 200

    assert await may_change()
    await api.vigil.store.update_user("ana", role=Role.VIEWER)
    await eventually(lambda: _not(may_change))


async def _not(check: object) -> bool:
    result: bool = await check()  # type: ignore[operator]
    return not result


# -- tokens -----------------------------------------------------------------------------------


async def test_bad_authorization_headers_are_401_with_a_challenge(api: Api) -> None:
    for header in (
        "Basic YW5hOnB3",
        "Bearer",
        "Bearer ",
        "Bearer not-a-vigil-token",
        "Bearer vgl_" + "a" * 43,  # well-formed, unknown
        "Token " + api.tokens["admin"],
    ):
        response = await api.client.get("/api/alerts/active", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "not_authenticated"
    assert (await api.client.get("/api/alerts/active")).status_code == 401


async def test_a_token_wins_over_the_cookie_and_needs_no_csrf(api: Api) -> None:
    await api.sign_in("ana")  # an admin cookie is present
    viewer = await api.put(RULE, role="viewer", json={"unit": "x"})
    assert viewer.status_code == 403  # the viewer token decides, not the admin cookie
    admin = await api.put(RULE, role="admin", json={"unit": "x"})
    assert admin.status_code == 200 and admin.json()["updated_by"] == "admin-bot"


async def test_a_revoked_token_stops_working(api: Api) -> None:
    [record] = [t for t in await api.vigil.store.list_tokens() if t.name == "viewer-bot"]
    assert (await api.get("/api/alerts/active")).status_code == 200
    await api.vigil.store.revoke_token(record.id, now=datetime.now(UTC))

    async def refused() -> bool:
        return (await api.get("/api/alerts/active")).status_code == 401

    await eventually(refused)


async def test_last_use_is_recorded_to_the_minute(migrated_url: str) -> None:
    async with running_api(migrated_url, auth_cache_seconds=0) as api:

        async def last_used() -> datetime | None:
            [record] = [t for t in await api.vigil.store.list_tokens() if t.name == "viewer-bot"]
            return record.last_used_at

        assert await last_used() is None
        await api.get("/api/alerts/active")
        first = await last_used()
        assert first == api.clock.now
        api.clock.advance(30)
        await api.get("/api/alerts/active")
        assert await last_used() == first  # within the minute: no write
        api.clock.advance(30)
        await api.get("/api/alerts/active")
        assert await last_used() == api.clock.now


class HeldLookups:
    """``Store.token_by_hash`` counted, and held until released."""

    def __init__(self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.open = asyncio.Event()
        self.open.set()
        real = api.vigil.store.token_by_hash

        async def token_by_hash(digest: str, **options: Any) -> Any:
            if "now" not in options:  # the lookup, not its last-use stamp
                self.calls += 1
            await self.open.wait()
            return await real(digest, **options)

        monkeypatch.setattr(api.vigil.store, "token_by_hash", token_by_hash)


async def test_concurrent_requests_share_one_token_lookup(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = HeldLookups(api, monkeypatch)
    lookups.open.clear()
    requests = [asyncio.create_task(api.get("/api/alerts/active")) for _ in range(20)]
    await wait_until(lambda: lookups.calls == 1)
    for _ in range(10):  # the others had turns to ask too
        await asyncio.sleep(0)
    assert lookups.calls == 1
    lookups.open.set()
    answers = await asyncio.wait_for(asyncio.gather(*requests), DEADLINE)
    assert [answer.status_code for answer in answers] == [200] * 20
    assert lookups.calls == 1


async def test_a_token_in_use_is_looked_up_again_without_a_request_waiting(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = state_of(api).auth
    now = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: now[0])
    lookups = HeldLookups(api, monkeypatch)
    assert (await api.get("/api/alerts/active")).status_code == 200
    assert lookups.calls == 1
    now[0] += auth.cache_seconds * 0.75  # still valid, in the second half of its time
    lookups.open.clear()
    answer = await asyncio.wait_for(api.get("/api/alerts/active"), DEADLINE)
    assert answer.status_code == 200  # answered from the cache while the lookup is held
    assert lookups.calls == 2
    lookups.open.set()
    await wait_until(lambda: not auth._loading)
    now[0] += auth.cache_seconds * 0.75  # past the first answer's time, within the new one's
    assert (await api.get("/api/alerts/active")).status_code == 200
    assert lookups.calls == 2  # the refreshed answer served it


async def test_a_token_revoked_while_in_use_stops_working_in_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = state_of(api).auth
    now = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: now[0])
    assert (await api.get("/api/alerts/active")).status_code == 200
    [record] = [t for t in await api.vigil.store.list_tokens() if t.name == "viewer-bot"]
    await api.vigil.store.revoke_token(record.id, now=datetime.now(UTC))
    now[0] += auth.cache_seconds * 0.75  # a lookup starts in the background, finds it gone
    await api.get("/api/alerts/active")
    await wait_until(lambda: not auth._loading)
    assert (await api.get("/api/alerts/active")).status_code == 401
    now[0] += auth.cache_seconds  # and in any case once the cached answer aged out
    assert (await api.get("/api/alerts/active")).status_code == 401


async def test_shutdown_waits_for_a_token_lookup_under_way(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token in use is looked up again in the background, for no request in particular;
    the app's shutdown waits for that lookup, so none holds a database connection once Vigil
    stops (it was left to be collected with its connection)."""
    auth = state_of(api).auth
    now = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: now[0])
    assert (await api.get("/api/alerts/active")).status_code == 200
    started, release = asyncio.Event(), asyncio.Event()
    lookup = api.vigil.store.token_by_hash

    async def held(digest: str, **kwargs: Any) -> Any:
        started.set()
        await release.wait()
        return await lookup(digest, **kwargs)

    monkeypatch.setattr(api.vigil.store, "token_by_hash", held)
    now[0] += auth.cache_seconds * 0.75  # past half its time in the cache: looked up again
    assert (await api.get("/api/alerts/active")).status_code == 200  # answered from the cache
    await asyncio.wait_for(started.wait(), DEADLINE)
    closing = asyncio.create_task(close_streams(api.app))
    for _ in range(50):  # every turn the shutdown would need if it did not wait
        await asyncio.sleep(0)
    assert not closing.done() and auth._loading
    release.set()
    await asyncio.wait_for(closing, DEADLINE)
    assert not auth._loading


# -- rate limiting: tests/web/test_signin.py ----------------------------------------------------


# -- mounting ---------------------------------------------------------------------------------


async def test_the_app_works_mounted_under_a_prefix(api: Api) -> None:
    host = FastAPI()
    host.mount("/vigil", api.app)
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/vigil/api/alerts/summary", headers=api.auth("viewer"))
        assert response.status_code == 200 and response.json()["total"] == 0
        response = await client.post(
            "/vigil/api/auth/login", json={"name": "ana", "password": PASSWORD}
        )
        assert "path=/vigil" in response.headers["set-cookie"].lower()
        csrf = response.json()["csrf_token"]
        assert (await client.get("/vigil/api/auth/me")).json()["name"] == "ana"
        response = await client.put(
            f"/vigil{RULE}", json={"unit": "x"}, headers={"X-CSRF-Token": csrf}
        )
        assert response.status_code == 200
        assert (await client.get("/api/alerts/summary")).status_code == 404
        schema = (await client.get("/vigil/api/openapi.json")).json()
        assert "/api/alerts/config/{metric}" in schema["paths"]


@pytest.mark.parametrize("path", ["/api/auth/me", "/api/alerts/active"])
async def test_no_account_exists_until_the_cli_makes_one(sqlite_url: str, path: str) -> None:
    from vigil.runtime import Vigil
    from vigil.settings import Settings
    from vigil.web import create_app

    async with Vigil(Settings(database_url=sqlite_url), process_metrics=False) as vigil:
        assert await vigil.store.list_users() == []
        transport = httpx.ASGITransport(app=create_app(vigil))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for name, password in (("admin", "admin"), ("admin", ""), ("root", "root")):
                response = await login_raw(client, name, password)
                assert response.status_code in (401, 422)
            assert (await client.get(path)).status_code == 401


async def login_raw(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"name": name, "password": password})


async def test_a_request_after_the_store_closed_is_503(api: Api) -> None:
    """A request still served while Vigil stops: the closed store refuses its token lookup
    (on PostgreSQL through the pool, which would otherwise open anew and stay open), and the
    client is told to try again."""
    await api.vigil.store.close()
    response = await api.get("/api/alerts/active")
    assert response.status_code == 503, response.text
    assert response.json()["error"] == {
        "code": "storage_unavailable",
        "message": "the database is unavailable; try again shortly",
        "field": None,
    }
