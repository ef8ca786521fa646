"""API tests run against a real Vigil on SQLite and PostgreSQL; a module whose subject sits
above the store (pages, forms, route checks) is marked ``sqlite_only`` (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .support import Api, running_api


@pytest.fixture
async def api(migrated_url: str) -> AsyncIterator[Api]:
    async with running_api(migrated_url) as started:
        yield started
