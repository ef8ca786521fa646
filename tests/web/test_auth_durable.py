"""Durable sign-out: a signed-out session stays ended across a restart with the same secret
key and however many sessions are signed out; expired sign-outs are deleted by cleanup."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from vigil.runtime import Vigil
from vigil.web import auth, close_streams, create_app
from vigil.web.auth import SESSION_COOKIE

from ..runtime.support import Started, settings
from .support import CHEAP_HASHER, PASSWORD, running_api

SECRET = SecretStr("a-secret-key-shared-by-restarts")


def cookie_header(value: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={value}"}


@contextlib.asynccontextmanager
async def restarted(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A new Vigil process's worth of server on the same database and secret key."""
    vigil = Vigil(settings(url).model_copy(update={"secret_key": SECRET}), process_metrics=False)
    async with Started(vigil):
        app = create_app(vigil, password_hasher=CHEAP_HASHER)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield c
        finally:
            await close_streams(app)


async def test_a_signed_out_session_stays_ended_after_a_restart(migrated_url: str) -> None:
    changes = {"secret_key": SECRET}
    async with running_api(migrated_url, settings_changes=changes) as api:
        kept_csrf = await api.sign_in("vic")
        kept = api.client.cookies[SESSION_COOKIE]
        api.client.cookies.clear()
        csrf = await api.sign_in("ana")
        ended = api.client.cookies[SESSION_COOKIE]
        response = await api.client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
        assert response.status_code == 204
        assert kept_csrf
    async with restarted(migrated_url) as client:
        still = await client.get("/api/auth/me", headers=cookie_header(kept))
        assert (still.status_code, still.json()["name"]) == (200, "vic")  # the key is shared
        replay = await client.get("/api/auth/me", headers=cookie_header(ended))
        assert replay.status_code == 401  # ... yet the signed-out session stays out


async def test_no_number_of_sign_outs_lets_an_old_session_back(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "MAX_CACHED", 3)  # the lookup cache overflows and is cleared
    async with running_api(migrated_url) as api:
        cookies = []
        for _ in range(8):
            api.client.cookies.clear()
            csrf = await api.sign_in("ana", PASSWORD)
            cookies.append(api.client.cookies[SESSION_COOKIE])
            response = await api.client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
            assert response.status_code == 204
        api.client.cookies.clear()
        for cookie in cookies:
            replay = await api.client.get("/api/auth/me", headers=cookie_header(cookie))
            assert replay.status_code == 401


async def test_cleanup_forgets_sign_outs_once_their_session_would_have_expired(
    migrated_url: str,
) -> None:
    async with running_api(migrated_url) as api:
        store = api.vigil.store
        now = datetime.now(UTC)
        await store.end_session("old", user_name="ana", expires_at=now - timedelta(minutes=1))
        await store.end_session("live", user_name="ana", expires_at=now + timedelta(hours=1))
        await store.end_session("live", user_name="ana", expires_at=now + timedelta(hours=1))
        report = await store.cleanup(now=now, incident_retention_days=1, sample_retention_days=1)
        assert report.sessions == 1
        assert not await store.session_ended("old")
        assert await store.session_ended("live")
