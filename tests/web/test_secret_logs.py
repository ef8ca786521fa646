"""No secret in the logs, at any level: a refused channel URL's token (which apprise quotes in
its own warning) and a stored channel's password (which the database driver, apprise and
urllib3 would log at debug level) never reach a handler. On both databases."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from ..notify.receiver import Receiver, serving
from .support import LATENCY, Api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

REFUSED = "slack://T1234/B5678/MyRealToken123!!"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found


async def test_a_refused_channel_urls_token_is_not_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await api.post("/api/channels", json={"name": "ops", "url": REFUSED})
    assert (response.status_code, response.json()["error"]["field"]) == (422, "url")
    assert "MyRealToken123" not in response.text
    warned = [r for r in caplog.records if r.name == "apprise" and r.levelno >= logging.WARNING]
    assert any("Token (***)" in record.getMessage() for record in warned)  # said, masked
    assert "MyRealToken123" not in caplog.text


async def test_a_stored_channel_password_is_not_logged_while_it_delivers(
    api: Api, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy keeps its own loggers at WARNING unless an operator turns on its echo: do.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    url = f"json://ops:S3cretPassw0rd@127.0.0.1:{receiver.port}/hook?token=TopSecretQuery"
    response = await api.post("/api/channels", json={"name": "ops", "url": url})
    assert response.status_code == 201, response.text
    await api.breach(LATENCY, 250)
    await receiver.wait_for(lambda: len(receiver.on("/hook")) == 1)
    names = {record.name for record in caplog.records}
    # the libraries did log (so this test can fail): the statements, the post, the request;
    # on SQLite the driver (aiosqlite) logs each statement with its parameters too
    assert {"sqlalchemy.engine.Engine", "apprise", "urllib3.connectionpool"} <= names
    if api.vigil.settings.database_url.startswith("sqlite"):
        assert "aiosqlite" in names
    assert "INSERT INTO notification_channels" in caplog.text
    for secret in ("S3cretPassw0rd", "TopSecretQuery"):
        assert secret not in caplog.text, secret
    assert "$argon2" not in caplog.text.replace("$argon2id$***", "")
