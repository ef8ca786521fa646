"""Bodies FastAPI cannot read are 422s that say why, on every JSON route."""

from __future__ import annotations

import pytest

from .support import Api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "body: the JSON is nested too deeply"),
        (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, "body: the JSON is nested too deeply"),
        (
            b'{"name": "ana\xff", "password": "x"}',
            "body: is not UTF-8 text (byte 13); JSON must be sent as UTF-8",
        ),
    ],
)
async def test_an_unreadable_body_is_422_saying_why(api: Api, body: bytes, reason: str) -> None:
    for path, role in (("/api/auth/login", None), ("/api/ingest", "ingest")):
        headers = {**JSON, **(api.auth(role) if role else {})}
        response = await api.client.post(path, content=body, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == {"code": "invalid", "message": reason, "field": "body"}
