"""Snoozes, maintenance windows and channels in a browser: an admin silences a rule from its
page and everyone else's Alerts page says so as it happens; a channel is added, edited and
removed without its secret ever reaching the page, and a viewer's Channels page follows
live."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from vigil.core import EventKind

from .support import LATENCY, Dashboard, new_tab, sign_in, until, wait_live


async def test_a_snooze_set_on_its_page_shows_live_on_the_alerts_page(
    browser: Browser, board: Dashboard
) -> None:
    watcher = await new_tab(browser)
    await sign_in(watcher, board, "vic")
    await wait_live(watcher.page)
    row = watcher.page.locator(f"#rule-{LATENCY}")
    await expect(row).not_to_contain_text("Snoozed")

    admin = await new_tab(browser)
    await sign_in(admin, board, "ana", path="/silences")
    page = admin.page
    await wait_live(page)
    await expect(page.locator("#snoozes")).to_contain_text("No rule is snoozed")
    await page.get_by_label("Rule", exact=True).select_option(LATENCY)
    await page.get_by_label("For").select_option("120")
    await page.get_by_label("Why", exact=True).first.fill("Deploying shard 3")
    await page.get_by_role("button", name="Snooze", exact=True).click()

    await expect(page.locator(".flash")).to_have_text("✓ Rule snoozed.")
    snoozed = page.locator(f"#snooze-{LATENCY}")
    await expect(snoozed).to_contain_text("Gateway Latency")
    await expect(snoozed).to_contain_text("ana")
    await expect(snoozed).to_contain_text("Deploying shard 3")
    # The viewer's page was not reloaded: the snooze.started event refreshed the rule's row.
    await expect(row).to_contain_text("Snoozed until")
    await expect(row).to_contain_text("by ana: Deploying shard 3")
    await expect(watcher.page.locator("#notices")).to_contain_text("snoozed by ana")

    async def snoozed_in_store() -> bool:
        return [s.metric for s in await board.running.store.active_snoozes()] == [LATENCY]

    await until(snoozed_in_store)
    # While snoozed, a breach opens nothing.
    events = await board.cycle({LATENCY: 500}) + await board.cycle({LATENCY: 500})
    assert [e for e in events if e.kind is EventKind.INCIDENT_OPENED] == []

    await snoozed.get_by_role("button", name=f"End now for {LATENCY}").click()
    await expect(page.locator(".flash")).to_have_text("✓ Snooze ended: the rule is watched again.")
    await expect(page.locator("#snoozes")).to_contain_text("No rule is snoozed")
    await expect(row).not_to_contain_text("Snoozed")
    for tab in (watcher, admin):
        tab.assert_clean()


async def test_a_channel_is_added_edited_and_removed_from_its_page(
    browser: Browser, board: Dashboard
) -> None:
    watcher = await new_tab(browser)
    await sign_in(watcher, board, "vic", path="/channels")
    await wait_live(watcher.page)
    seen = watcher.page.locator("#channel-ops")
    tab = await new_tab(browser)
    await sign_in(tab, board, "ana", path="/channels")
    page = tab.page
    await expect(page.locator("#channels")).to_contain_text("No channel yet")

    form = page.locator("#add-channel")
    await form.get_by_label("Name").fill("ops")
    await form.get_by_label("Address").fill("foo://not-a-service")
    await form.get_by_role("button", name="Add channel").click()
    await expect(page.locator("#add-error")).to_contain_text("unsupported scheme foo://")
    await expect(form.get_by_label("Address")).to_have_attribute("aria-invalid", "true")
    await expect(form.get_by_label("Name")).to_have_value("ops")  # kept; the address is not

    await form.get_by_label("Address").fill("discord://1234567890/webhook-secret-token")
    await form.get_by_label("Lowest severity sent").select_option("warning")
    await form.get_by_role("button", name="Add channel").click()
    await expect(page.locator(".flash")).to_have_text("✓ Channel added.")
    row = page.locator("#channel-ops")
    await expect(row).to_contain_text("Discord")
    await expect(row).to_contain_text("discord://1...0/***")
    assert "webhook-secret-token" not in await page.content()
    # The viewer's page was not reloaded: the channel.added event refreshed its list.
    await expect(seen).to_contain_text("discord://1...0/***")
    await expect(watcher.page.locator("#notices")).to_contain_text("Channel ops added by ana")

    await row.get_by_text("Edit").click()
    edit = row.locator("form.grid-form")
    await expect(edit.get_by_label("Address")).to_have_value("discord://1...0/***")
    await edit.get_by_label("Enabled").uncheck()
    await edit.get_by_role("button", name="Save ops").click()
    await expect(page.locator(".flash")).to_have_text("✓ Channel saved.")
    await expect(page.locator("#channel-ops")).to_contain_text("No")
    stored = await board.running.store.get_channel("ops")
    assert stored.channel.url == "discord://1234567890/webhook-secret-token"  # kept
    assert stored.channel.enabled is False

    await page.locator("#channel-ops").get_by_role("button", name="Remove ops").click()
    await expect(page.locator(".flash")).to_have_text("✓ Channel removed.")
    await expect(page.locator("#channel-ops")).to_have_count(0)
    await expect(seen).to_have_count(0)
    assert "webhook-secret-token" not in await watcher.page.content()
    tab.assert_clean(allow=("status of 422",))  # the refused form's page
    watcher.assert_clean()
