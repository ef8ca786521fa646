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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "ana"}, "password: Field required"),
        ({}, "name: Field required (and 1 more problem)"),
        (
            {"name": 1, "password": 2, "remember": 3},
            "name: Input should be a valid string (and 2 more problems)",
        ),
    ],
)
async def test_a_refused_body_names_its_first_problem_and_counts_the_rest(
    api: Api, body: dict[str, object], message: str
) -> None:
    response = await api.client.post("/api/auth/login", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == message
