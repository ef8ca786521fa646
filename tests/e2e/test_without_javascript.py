"""The dashboard in a browser with JavaScript turned off: every page renders, and signing in,
acknowledging with a note, resolving and editing a rule work as plain forms."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from vigil.core import Status

from .support import LATENCY, MEMORY, Dashboard, new_tab, sign_in


async def test_pages_and_actions_work_as_plain_html(browser: Browser, board: Dashboard) -> None:
    opened = await board.breach(LATENCY, 250)
    other = await board.breach(MEMORY, 500)
    tab = await new_tab(browser, javascript=False)
    await sign_in(tab, board, "ana")
    page = tab.page
    await expect(page.locator("#live")).to_have_text("Reload for news")
    await expect(page.locator("#open-count")).to_contain_text("2 open incidents · worst critical")
    time = page.locator(f"#incident-{opened.id} time").first
    await expect(time).to_have_text(opened.triggered_at.strftime("%Y-%m-%d %H:%M:%S UTC"))

    card = page.locator(f"#incident-{opened.id}")
    await card.get_by_label("Note (optional)").fill("Failing over to the spare")
    await card.get_by_role("button", name="Acknowledge").click()
    await expect(page).to_have_url(f"{board.url}/alerts?done=acknowledged#incident-{opened.id}")
    await expect(page.locator(".flash")).to_have_text("✓ Incident acknowledged.")
    await expect(card.locator(".acked")).to_contain_text("Acknowledged by ana")
    await expect(card.locator("q")).to_have_text("Failing over to the spare")
    stored = await board.running.store.get_incident(opened.id)
    assert (stored.status, stored.notes) == (Status.ACKNOWLEDGED, "Failing over to the spare")

    await page.locator(f"#incident-{other.id}").get_by_role("button", name="Resolve").click()
    await expect(page.locator(".flash")).to_have_text("✓ Incident resolved.")
    await expect(page.locator(f"#incident-{other.id}")).to_have_count(0)
    assert (await board.running.store.get_incident(other.id)).status is Status.RESOLVED

    row = page.locator(f"#rule-{LATENCY}")
    save = row.get_by_role("button", name="Save Gateway Latency")
    await expect(save).to_be_visible()  # always there without the script
    await row.get_by_label("Critical threshold of Gateway Latency (ms)").fill("50")
    await save.click()
    error = page.locator(f"#rule-error-{LATENCY}")
    await expect(error).to_have_text(
        "✗ warning: must be below critical for direction 'above' (100 >= 50)"
    )
    critical = row.get_by_label("Critical threshold of Gateway Latency (ms)")
    await expect(critical).to_have_value("50")  # what was typed is kept to correct it
    await critical.fill("300")
    await save.click()
    await expect(page.locator(".flash")).to_have_text("✓ Rule saved.")
    assert (await board.running.store.get_rule(LATENCY)).critical == 300

    await page.goto(f"{board.url}/")
    await expect(page.locator(f"#card-{LATENCY} .big")).to_have_text("250 ms")
    await expect(page.locator(f"#card-{LATENCY} svg.spark polyline")).to_have_count(1)
    await page.goto(f"{board.url}/incidents/{opened.id}")
    await expect(page.locator(".timeline li")).to_have_count(2)
    await expect(page.locator("#incident details summary")).to_contain_text("Readings (table")
    tab.assert_clean(allow=("status of 422",))
