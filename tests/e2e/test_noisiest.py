"""The Alerts page's *Noisiest rules* panel follows incidents live, switches its period in
place, and links to each rule's page."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from .support import LATENCY, Dashboard, new_tab, sign_in, wait_live


async def test_the_noisiest_rules_follow_incidents_live_and_link_to_the_rule(
    browser: Browser, board: Dashboard
) -> None:
    tab = await new_tab(browser)
    await sign_in(tab, board, "vic")
    page = tab.page
    await wait_live(page)
    await page.evaluate("window.vigilTestMark = 'still here'")
    panel = page.locator("#noisiest")
    await expect(panel.locator(".empty")).to_contain_text("No rule has raised an incident")

    await board.breach(LATENCY, 150)
    row = panel.locator(f'tbody tr[data-rule="{LATENCY}"]')
    await expect(row.locator('td[data-label="Incidents"]')).to_have_text("1")
    await expect(row.locator("th")).to_contain_text("(1 open)")
    await board.recover(LATENCY, 40)
    await expect(row.locator('td[data-label="Resolved on their own"]')).to_contain_text("100%")
    assert await page.evaluate("window.vigilTestMark") == "still here"  # no reload

    await panel.get_by_role("link", name="7 days").click()
    await expect(panel.get_by_role("link", name="7 days")).to_have_attribute("aria-current", "true")
    await expect(page).to_have_url(f"{board.url}/alerts?days=7")
    await row.get_by_role("link").click()
    await expect(page).to_have_url(f"{board.url}/rules/{LATENCY}")
    tab.assert_clean()
