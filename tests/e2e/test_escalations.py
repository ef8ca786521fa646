"""Escalation policies in a browser: an admin adds one through the Escalations page's form
(a refused try first, its values kept), sees it listed with its steps and timing, and a
viewer's page shows it as it happens."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from .support import LATENCY, Dashboard, new_tab, sign_in, until, wait_live


async def test_an_admin_adds_a_policy_through_the_form_and_everyone_sees_it(
    browser: Browser, board: Dashboard
) -> None:
    for name in ("ops", "pager"):
        await board.running.add_channel({"name": name, "url": "json://127.0.0.1:9/h"}, by="ana")
    watcher = await new_tab(browser)
    await sign_in(watcher, board, "vic", path="/escalations")
    await wait_live(watcher.page)
    await expect(watcher.page.locator("#policies")).to_contain_text("No escalation policy")

    tab = await new_tab(browser)
    await sign_in(tab, board, "ana", path="/escalations")
    page = tab.page
    await expect(page.get_by_role("link", name="Escalations", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    form = page.locator("#add-policy")
    await form.get_by_label("Name").fill("night")
    await form.get_by_label("Description").fill("ops first, then the pager")
    first = form.locator("fieldset", has_text="Step 1")
    await first.get_by_label("ops").check()
    await first.get_by_label("then wait").fill("ten")
    second = form.locator("fieldset", has_text="Step 2")
    await second.get_by_label("pager").check()
    await form.get_by_label(LATENCY, exact=True).check()
    await form.get_by_label("critical", exact=True).check()
    await form.get_by_role("button", name="Add policy").click()

    await expect(page.locator("#add-error")).to_contain_text("steps[0].wait_minutes")
    first = page.locator("#add-policy fieldset", has_text="Step 1")
    await expect(first.get_by_label("then wait")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#add-policy").get_by_label("Name")).to_have_value("night")
    await expect(first.get_by_label("ops")).to_be_checked()  # kept, not to tick again
    await first.get_by_label("then wait").fill("10")
    await page.locator("#add-policy").get_by_role("button", name="Add policy").click()

    await expect(page.locator(".flash")).to_have_text("✓ Escalation policy added.")
    row = page.locator("#policy-night")
    await expect(row).to_contain_text("ops first, then the pager")
    await expect(row).to_contain_text(f"Rules: {LATENCY}")
    await expect(row.locator("li").nth(1)).to_have_text("pager after 10 min unacknowledged")

    async def stored() -> bool:
        policies = await board.running.store.list_policies()
        return [(p.name, p.steps[0].wait_minutes) for p in policies] == [("night", 10)]

    await until(stored)
    # The viewer's page was not reloaded: the escalation.added event refreshed its list.
    seen = watcher.page.locator("#policy-night")
    await expect(seen).to_contain_text("pager after 10 min unacknowledged")
    await expect(watcher.page.locator("#notices")).to_contain_text(
        "Escalation policy night added by ana"
    )
    await expect(seen.get_by_role("button")).to_have_count(0)  # read-only
    tab.assert_clean(allow=("status of 422",))  # the refused form's page
    watcher.assert_clean()
