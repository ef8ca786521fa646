"""The browser tests' shared Chromium: a browser that went away is launched again for the
next test instead of failing it."""

from __future__ import annotations

from .support import SharedChromium


async def test_a_lost_browser_is_launched_again_for_the_next_use(
    chromium: SharedChromium,
) -> None:
    lost = await chromium.current()
    await lost.close()  # as a crash would leave it: disconnected
    assert not lost.is_connected()

    again = await chromium.current()
    assert again is not lost and again.is_connected()
    assert await chromium.current() is again  # kept while it lives
    context = await again.new_context()
    try:
        page = await context.new_page()
        await page.set_content("<p id=said>still browsing</p>")
        assert await page.text_content("#said") == "still browsing"
    finally:
        await context.close()
