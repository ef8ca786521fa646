"""Browser tests: Debian's Chromium driven by Playwright (Python), never a downloaded browser.

Without Chromium the tests skip and say how to install it; under CI=true they fail instead,
because there a missing browser is a broken environment, not a choice.

One browser serves every test of a test process, each test in a browser context of its own
(``new_tab``: its own cookies, storage and pages, closed at its end), and it is launched again
if it went away (``SharedChromium``). Starting Playwright's driver and Chromium for each test
cost about 0.8 CPU-s a test here. Playwright's objects belong to the event loop that made
them, so these tests and their fixtures run in the session's loop
(``pytest_collection_modifyitems``, ``loop_scope="session"``); each fixture still stops what
it started.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from .support import CHROMIUM, TIMEOUT_MS, Dashboard, SharedChromium, dashboard

expect.set_options(timeout=TIMEOUT_MS)  # generous: reached only when something is broken


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(message)


def chromium_installed() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


HERE = Path(__file__).parent
SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """This folder's tests run in the session's event loop, the shared browser's."""
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and item.path.is_relative_to(HERE)
            and inspect.iscoroutinefunction(item.obj)
        ):
            item.add_marker(SESSION_LOOP, append=False)  # before auto mode's own


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[SharedChromium]:
    """The test process's browser (``browser`` is a test's use of it)."""
    if not chromium_installed():
        _unavailable(
            f"Chromium is not installed at {CHROMIUM}: apt-get install chromium-headless-shell"
        )
    async with async_playwright() as playwright:
        shared = SharedChromium(playwright)
        try:
            yield shared
        finally:
            await shared.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(chromium: SharedChromium) -> AsyncIterator[Browser]:
    """The shared browser, for one test: the contexts it opened are closed at its end,
    whether it passed or not, so no page of it lives on into the next test."""
    current = await chromium.current()
    yield current
    if current.is_connected():
        for context in current.contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def board(migrated_sqlite_url: str) -> AsyncIterator[Dashboard]:
    async with dashboard(migrated_sqlite_url) as started:
        yield started
