"""Browser tests: Debian's Chromium driven by Playwright (Python), never a downloaded browser.

Without Chromium the tests skip and say how to install it; under CI=true they fail instead,
because there a missing browser is a broken environment, not a choice.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright, expect

from .support import TIMEOUT_MS, Dashboard, dashboard

CHROMIUM = os.environ.get("VIGIL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


expect.set_options(timeout=TIMEOUT_MS)  # generous: reached only when something is broken


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(message)


def chromium_installed() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not chromium_installed():
        _unavailable(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def board(migrated_sqlite_url: str) -> AsyncIterator[Dashboard]:
    async with dashboard(migrated_sqlite_url) as started:
        yield started
