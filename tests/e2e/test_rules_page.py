"""The Rules page in Chromium: an admin adds a rule of each kind, sees a bad condition
explained beside its field, edits a rule, disables it and deletes it after confirming."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from .support import Dashboard, new_tab, sign_in, until


async def add(page: Page, name: str, kind: str, fields: dict[str, str]) -> None:
    form = page.locator("#add-rule form")
    await form.get_by_label("Name", exact=True).fill(name)
    await form.get_by_label("Kind").select_option(kind)
    for label, value in fields.items():
        field = form.get_by_label(label)
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await form.get_by_role("button", name="Add rule").click()


async def test_add_each_kind_edit_disable_and_delete(browser: Browser, board: Dashboard) -> None:
    tab = await new_tab(browser)
    await sign_in(tab, board, "ana", path="/rules")
    page = tab.page
    form = page.locator("#add-rule form")
    # only the chosen kind's fields show
    await expect(form.get_by_label("Condition")).to_be_hidden()
    await form.get_by_label("Kind").select_option("composite")
    await expect(form.get_by_label("Condition")).to_be_visible()
    await expect(form.get_by_label("Warning at")).to_be_hidden()

    await add(page, "queue_backlog", "threshold", {"Metric": "queue_depth", "Critical at": "500"})
    await expect(page.locator(".flash")).to_have_text("✓ Rule added.")
    await expect(page.locator("#rule-queue_backlog")).to_contain_text("critical")

    await add(page, "broken", "composite", {"Condition": "error_rate >= and x > 1"})
    condition = page.locator("#add-condition")
    await expect(condition).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#add-condition-error")).to_contain_text("at position 14")
    await expect(condition).to_have_value("error_rate >= and x > 1")
    await condition.fill("command_p95_latency >= 500 and error_rate >= 5")
    await page.locator("#add-name").fill("slow_and_failing")
    await form.get_by_role("button", name="Add rule").click()
    await expect(page.locator(".flash")).to_have_text("✓ Rule added.")
    await expect(page.locator("#rule-slow_and_failing")).to_contain_text(
        "command_p95_latency >= 500 and error_rate >= 5"
    )

    await add(page, "heartbeat", "absent", {"Metric": "cron_heartbeat", "No sample for (s)": "2m"})
    await expect(page.locator("#rule-heartbeat")).to_contain_text("no sample for 120 s")

    row = page.locator("#rule-queue_backlog")
    await row.get_by_role("link", name="Edit Queue Backlog").click()
    edit = page.locator("#edit-rule form")
    await edit.get_by_label("Warning at").fill("300")
    await edit.get_by_label("Breaches to open").fill("4")
    await edit.get_by_label("Missing data").select_option("alerting")
    await edit.get_by_role("button", name="Save rule").click()
    await expect(page.locator(".flash")).to_have_text("✓ Rule saved.")

    async def saved() -> bool:
        rule = await board.running.store.get_rule("queue_backlog")
        return (rule.warning, rule.breaches_required, rule.no_data) == (300, 4, "alerting")

    await until(saved)

    await row.get_by_role("button", name="Disable Queue Backlog").click()
    await expect(page.locator(".flash")).to_contain_text("Rule disabled")
    await expect(row.get_by_role("button", name="Enable Queue Backlog")).to_be_visible()

    await row.get_by_role("link", name="Delete Queue Backlog").click()
    await expect(page.locator("h1")).to_have_text("Delete rule Queue Backlog?")
    await page.get_by_role("button", name="Delete rule queue_backlog").click()
    await expect(page.locator(".flash")).to_contain_text("Rule deleted")
    await expect(page.locator("#rule-queue_backlog")).to_have_count(0)
    tab.assert_clean(allow=("status of 422",))  # the refused condition's page
