"""A rule tried on the history in Chromium before it is saved: an admin asks for suggested
thresholds, puts them in the edit form, previews that version beside the saved rule (counts,
incidents and the chart with both sets of thresholds), changes a threshold and sees the
preview change. Nothing is saved until *Save rule*."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import Browser, Page, expect

from vigil.core import Sample

from .support import Dashboard, new_tab, screenshot_path, sign_in

LATENCY = "gateway_latency"  # a default rule: warning 100, critical 200
STEP = timedelta(minutes=5)
READINGS = 2 * 24 * 12
OUTAGE = range(300, 303)


async def store_history(board: Dashboard) -> None:
    start = board.running.clock() - READINGS * STEP
    await board.running.store.add_samples(
        [
            Sample("bot", LATENCY, start + i * STEP, 300.0 if i in OUTAGE else 50.0 + i % 7)
            for i in range(READINGS)
        ]
    )


async def summary(page: Page, row: str) -> list[str]:
    cells = page.locator("#preview-summary tr", has=page.get_by_role("rowheader", name=row))
    return await cells.locator("td").all_inner_texts()


async def test_suggest_apply_preview_and_change_before_saving(
    browser: Browser, board: Dashboard
) -> None:
    await store_history(board)
    tab = await new_tab(browser)
    page = tab.page
    await sign_in(tab, board, "ana", path=f"/rules/{LATENCY}")

    suggest = page.locator("#suggest")
    await suggest.get_by_label("Learn from the last").select_option("7d")
    await suggest.get_by_role("button", name="Suggest thresholds").click()
    await expect(page.locator("#suggestion")).to_contain_text(
        "Critical would have fired once in 7 days"
    )
    await page.get_by_role("link", name="Put them in the form").click()
    await expect(page.locator("#suggestion-applied")).to_contain_text("nothing is saved")
    edit = page.locator("#edit-rule form")
    warning = await edit.get_by_label("Warning at").input_value()
    assert 56 < float(warning) < 100

    await edit.get_by_label("Try it on the last").select_option("7d")
    await edit.get_by_role("button", name="Preview").click()
    await expect(page.locator("#preview-h")).to_have_text("Preview over the last 7 days")
    assert await summary(page, "Incidents opened") == ["1", "1"]
    await expect(page.locator("#preview-proposed summary")).to_have_text(
        "This version would have opened 1 incident"
    )
    drawn = "s => !!(window.Chart && window.Chart.getChart(document.querySelector(s)))"
    await expect(page.locator("#preview-chart")).to_be_visible()
    # The canvas is there before the chart's script has drawn on it (slowly, on a loaded
    # machine): waited for, as test_anomaly_band.py does.
    await page.wait_for_function(drawn, arg="#preview-chart")

    # A warning inside the normal range: the preview says so before anything is saved.
    await edit.get_by_label("Warning at").fill("55")
    await edit.get_by_role("button", name="Preview").click()
    await expect(edit.get_by_label("Warning at")).to_have_value("55")
    # Held open while it flaps (flap detection is on), but far from the saved rule's one.
    opened = await summary(page, "Incidents opened")
    sent = await summary(page, "Notifications")
    assert int(opened[0]) > 1 and opened[1] == "1", opened
    assert int(sent[0]) > int(sent[1]), sent
    await page.screenshot(path=screenshot_path("rule-preview", "light"), full_page=True)

    rule = await board.running.store.get_rule(LATENCY)
    assert (rule.warning, rule.critical) == (100, 200)
    tab.assert_clean()
