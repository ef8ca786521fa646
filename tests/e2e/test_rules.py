"""Editing a rule's thresholds inline: the save button appears with a change, an invalid
value is explained next to the row, a valid one reaches the database, and leaving with
unsaved changes asks first."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, Dialog, expect

from ..runtime.support import DEADLINE
from .support import LATENCY, Dashboard, new_tab, sign_in, until, wait_live


async def test_edit_a_threshold_invalid_then_valid(browser: Browser, board: Dashboard) -> None:
    tab = await new_tab(browser)
    await sign_in(tab, board, "ana")
    page = tab.page
    await wait_live(page)
    row = page.locator(f"#rule-{LATENCY}")
    save = row.get_by_role("button", name="Save Gateway Latency")
    undo = row.get_by_role("button", name="Undo")
    warning = row.get_by_label("Warning threshold of Gateway Latency (ms)")
    error = page.locator(f"#rule-error-{LATENCY}")
    await expect(warning).to_have_value("100")
    await expect(save).to_be_hidden()

    await warning.fill("300")
    await expect(save).to_be_visible()
    await expect(page.locator("tr.rule.dirty")).to_have_count(1)
    await save.click()
    await expect(error).to_have_text(
        "✗ warning: must be below critical for direction 'above' (300 >= 200)"
    )
    await expect(warning).to_have_attribute("aria-invalid", "true")
    await expect(warning).to_be_focused()
    assert (await board.running.store.get_rule(LATENCY)).warning == 100

    await warning.fill("abc")
    await save.click()
    await expect(error).to_have_text('✗ warning: "abc" is not a number')

    await undo.click()
    await expect(warning).to_have_value("100")
    await expect(save).to_be_hidden()
    await expect(error).to_be_hidden()

    await warning.fill("150")
    await row.get_by_label("Direction of Gateway Latency").select_option("above")
    await save.click()
    await expect(page.locator("#notices")).to_contain_text("Saved Gateway Latency.")
    await expect(save).to_be_hidden()
    await expect(error).to_be_hidden()
    await expect(warning).to_have_value("150")

    async def saved() -> bool:
        return (await board.running.store.get_rule(LATENCY)).warning == 150

    await until(saved)
    rule = await board.running.store.get_rule(LATENCY)
    assert (rule.critical, rule.updated_by) == (200, "ana")
    assert board.running.view.rules[LATENCY].warning == 150  # the monitor uses it
    # the evaluator agrees: 120 is no longer a breach
    assert await board.cycle({LATENCY: 120}) == []
    tab.assert_clean(allow=("status of 422",))


async def test_leaving_with_unsaved_changes_asks_first(browser: Browser, board: Dashboard) -> None:
    tab = await new_tab(browser)
    await sign_in(tab, board, "ana")
    page = tab.page
    await wait_live(page)
    row = page.locator("#rule-memory_usage")
    await row.get_by_label("Critical threshold of Memory Usage (MB)").fill("470")
    await row.get_by_label("Enabled Memory Usage").uncheck()
    await expect(row.get_by_role("button", name="Save Memory Usage")).to_be_visible()

    asked: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def stay(dialog: Dialog) -> None:
        if not asked.done():
            asked.set_result(dialog.type)
        await dialog.dismiss()

    page.on("dialog", stay)
    await page.get_by_role("link", name="Overview").click(no_wait_after=True)
    assert await asyncio.wait_for(asked, DEADLINE) == "beforeunload"
    await expect(page).to_have_url(f"{board.url}/alerts")
    await expect(row.get_by_label("Critical threshold of Memory Usage (MB)")).to_have_value("470")

    # Saved, nothing is pending: leaving no longer asks.
    page.remove_listener("dialog", stay)
    await row.get_by_role("button", name="Save Memory Usage").click()
    await expect(row.get_by_role("button", name="Save Memory Usage")).to_be_hidden()
    rule = await board.running.store.get_rule("memory_usage")
    assert (rule.critical, rule.enabled) == (470, False)
    await page.get_by_role("link", name="Overview").click()
    await expect(page).to_have_url(f"{board.url}/")
    tab.assert_clean()
