"""The API reference page: everything it loads comes from this server, under the CSP."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from .support import Api

# What these tests check sits above the store (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only


async def test_the_api_reference_loads_nothing_from_elsewhere(api: Api) -> None:
    page = await api.client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    html = page.text
    assert "<script>" not in html  # no inline script: the policy would refuse it
    links = re.findall(r'(?:src|href|data-openapi-url)="([^"]*)"', html)
    assert links and all(link.startswith("/") or link == "data:," for link in links), links
    assert not re.search(r"https?://", html)
    for link in links:
        if link.startswith("/"):
            asset = await api.client.get(link)
            assert asset.status_code == 200, link
    bundle = await api.client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    assert len(bundle.content) > 100_000  # Swagger UI itself, not a stub


async def test_docs_leads_to_the_api_reference_also_when_mounted(api: Api) -> None:
    response = await api.client.get("/docs")
    assert (response.status_code, response.headers["location"]) == (308, "/api/docs")
    host = FastAPI()
    host.mount("/vigil", api.app)
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/vigil/docs")
        assert response.headers["location"] == "/vigil/api/docs"
        page = (await client.get("/vigil/api/docs")).text
        assert 'src="/vigil/static/vendor/swagger-ui/swagger-ui-bundle.js"' in page
        assert 'data-openapi-url="/vigil/api/openapi.json"' in page
