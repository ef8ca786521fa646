"""What the pages show is true in a real browser: times in the past read as past, however
slowly the page loaded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from playwright.async_api import Browser, Route, expect

from .support import LATENCY, Dashboard, new_tab, sign_in, wait_live

SLOW_LOAD = 8.0  # seconds the page's script is held back, as on a slow phone


async def test_a_time_just_past_reads_as_past_after_a_slow_page_load(
    browser: Browser, board: Dashboard
) -> None:
    tab = await new_tab(browser)
    await sign_in(tab, board, "vic", path="/alerts")
    page = tab.page

    async def slowly(route: Route) -> None:
        await asyncio.sleep(SLOW_LOAD)
        await route.continue_()

    await page.route("**/static/vigil.js", slowly)
    served_at = board.clock.now
    await page.goto(f"{board.url}/")
    await wait_live(page)
    # An incident opens six seconds after the page was served (the page took eight to load):
    # it is in the past, so it must not read "in a few seconds".
    board.clock.now = served_at - timedelta(seconds=54)
    opened = await board.breach(LATENCY, 150)  # two cycles of 30 s: opened at served_at + 6 s
    assert opened.triggered_at == served_at + timedelta(seconds=6)
    # Read as soon as it arrives: the times are written again every 15 s, which would hide
    # a wrong first reading.
    await expect(page.locator("#latest")).to_contain_text(opened.message)
    shown = await page.locator("#latest time").first.inner_text()
    assert shown.startswith("just now"), shown
    tab.assert_clean()
