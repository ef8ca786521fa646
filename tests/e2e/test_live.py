"""Signing in, and a page that stays open while incidents open, escalate, get acknowledged
and resolve, and while the server restarts: everything arrives without a reload."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from vigil.core import Status

from .support import LATENCY, MEMORY, PASSWORD, Dashboard, new_tab, sign_in, until, wait_live


async def mark(page: Page) -> None:
    """Leave a note in the page's window: it survives anything but a reload."""
    await page.evaluate("window.vigilTestMark = 'still here'")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.vigilTestMark") == "still here"


async def test_viewer_and_admin_sign_in_and_see_their_role(
    browser: Browser, board: Dashboard
) -> None:
    tab = await new_tab(browser)
    page = tab.page
    await page.goto(f"{board.url}/alerts")
    await expect(page).to_have_url(f"{board.url}/login?next=/alerts")
    await page.get_by_label("User name").fill("vic")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("✗ Wrong user name or password.")
    await expect(page.get_by_label("User name")).to_have_value("vic")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Password").press("Enter")  # the keyboard is enough
    await expect(page).to_have_url(f"{board.url}/alerts")
    header = page.locator("header")
    await expect(header.locator(".user-name")).to_have_text("vic")
    await expect(header.locator(".role")).to_have_text("viewer")
    await expect(page.locator("#rules")).to_contain_text("Read-only: only admins change rules.")
    await expect(page.locator("#rules input")).to_have_count(0)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{board.url}/login")
    await page.goto(f"{board.url}/alerts")
    await expect(page).to_have_url(f"{board.url}/login?next=/alerts")  # signed out for real

    await sign_in(tab, board, "ana")
    await expect(header.locator(".user-name")).to_have_text("ana")
    await expect(header.locator(".role")).to_have_text("admin")
    await expect(page.locator("#rules input[name=warning]")).to_have_count(10)
    tab.assert_clean(allow=("status of 401",))  # the refused password's page


async def test_incidents_arrive_change_and_leave_live_on_open_pages(
    browser: Browser, board: Dashboard
) -> None:
    alerts = await new_tab(browser)
    await sign_in(alerts, board, "ana")
    overview = await new_tab(browser)
    await sign_in(overview, board, "vic", path="/")
    for tab in (alerts, overview):
        await wait_live(tab.page)
        await mark(tab.page)
    page = alerts.page
    await expect(page.locator("#active .empty")).to_contain_text("No open incidents")
    count = page.locator("#open-count")
    await expect(count).to_have_text("✓ No open incidents")

    opened = await board.breach(LATENCY, 150)  # a scripted source crosses the warning line
    card = page.locator(f"#incident-{opened.id}")
    await expect(card).to_contain_text(opened.message)
    await expect(card.locator(".badge.sev-warning")).to_have_text("◆ Warning")
    await expect(count).to_have_text("◆ 1 open incident · worst warning")
    await expect(count).to_have_class(re.compile(r"\bsev-warning\b"))
    await expect(page.locator("#notices .notice").last).to_contain_text(
        "New warning incident: Gateway Latency exceeded warning threshold"
    )
    await expect(page.locator("[data-summary=warning]")).to_have_text("1")
    await expect(page.locator("#history tbody tr").first).to_have_attribute(
        "data-incident", str(opened.id)
    )
    await expect(overview.page.locator("#latest")).to_contain_text(opened.message)
    await expect(overview.page.locator(f"#card-{LATENCY}")).to_have_class(
        re.compile(r"\blvl-warning\b")
    )

    escalated = await board.breach(LATENCY, 260)
    await expect(card.locator(".badge.sev-critical")).to_have_text("▲ Critical")
    await expect(card).to_contain_text(escalated.message)
    await expect(count).to_have_text("▲ 1 open incident · worst critical")
    await expect(page.locator("#notices")).to_contain_text("Escalated to critical")

    await board.running.acknowledge(opened.id, by="someone-else", notes="on it")
    await expect(card.locator(".acked")).to_contain_text("Acknowledged by someone-else")
    await expect(card.get_by_role("button", name="Acknowledge")).to_have_count(0)

    await board.recover(LATENCY, 40)  # three normal readings: it resolves by itself
    await expect(card).to_have_count(0)
    await expect(page.locator("#active .empty")).to_be_visible()
    await expect(count).to_have_text("✓ No open incidents")
    await expect(page.locator("#recoveries li").first).to_contain_text("recovered on its own")
    await expect(page.locator("#notices")).to_contain_text("Recovered on its own")
    await expect(overview.page.locator(f"#card-{LATENCY}")).to_have_class(
        re.compile(r"\blvl-normal\b")
    )
    for tab in (alerts, overview):
        await assert_not_reloaded(tab.page)
        tab.assert_clean()


async def test_the_page_reconnects_by_itself_after_the_server_restarts(
    browser: Browser, board: Dashboard
) -> None:
    tab = await new_tab(browser)
    await sign_in(tab, board, "ana")
    page = tab.page
    await wait_live(page)
    await mark(page)
    live = page.locator("#live")
    await expect(live).to_have_text("Live")

    await board.stop()
    await expect(live).to_have_attribute("data-state", "offline")
    await expect(live).to_contain_text("Offline")
    await board.start_again()
    await wait_live(page)

    opened = await board.breach(MEMORY, 500)
    await expect(page.locator(f"#incident-{opened.id}")).to_contain_text(opened.message)
    await expect(page.locator("#open-count")).to_contain_text("1 open incident")
    await assert_not_reloaded(page)
    # Only the refused connections while the server was down may be reported.
    tab.assert_clean(allow=("ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE", "503"))


async def test_acknowledge_with_a_note_and_resolve_from_the_keyboard(
    browser: Browser, board: Dashboard
) -> None:
    first = await board.breach(LATENCY, 250)
    second = await board.breach(MEMORY, 500)
    tab = await new_tab(browser)
    await sign_in(tab, board, "ana")
    page = tab.page
    await wait_live(page)
    await mark(page)

    card = page.locator(f"#incident-{first.id}")
    note = card.get_by_label("Note (optional)")
    await note.focus()
    await note.type("Restarting shard 3")
    await note.press("Enter")
    await expect(card.locator(".acked")).to_contain_text("Acknowledged by ana")
    await expect(card.locator("q")).to_have_text("Restarting shard 3")
    await expect(card.get_by_role("button", name="Acknowledge")).to_have_count(0)
    await expect(page.locator("[data-summary=acknowledged]")).to_have_text("1")

    async def acknowledged() -> bool:
        stored = await board.running.store.get_incident(first.id)
        return stored.status is Status.ACKNOWLEDGED

    await until(acknowledged)
    stored = await board.running.store.get_incident(first.id)
    assert (stored.acknowledged_by, stored.notes) == ("ana", "Restarting shard 3")

    other = page.locator(f"#incident-{second.id}")
    resolve = other.get_by_role("button", name="Resolve")
    await resolve.focus()
    await page.keyboard.press("Enter")
    await expect(other).to_have_count(0)
    await expect(page.locator("#open-count")).to_contain_text("1 open incident")

    async def resolved() -> bool:
        stored = await board.running.store.get_incident(second.id)
        return stored.status is Status.RESOLVED

    await until(resolved)
    assert (await board.running.store.get_incident(second.id)).resolved_by == "ana"
    await expect(page).to_have_url(f"{board.url}/alerts")  # no form post, no navigation
    await assert_not_reloaded(page)
    tab.assert_clean()


async def test_a_viewer_can_neither_edit_nor_act(browser: Browser, board: Dashboard) -> None:
    opened = await board.breach(LATENCY, 250)
    tab = await new_tab(browser)
    await sign_in(tab, board, "vic")
    page = tab.page
    card = page.locator(f"#incident-{opened.id}")
    await expect(card).to_contain_text(opened.message)
    await expect(page.locator("#active button, #active input")).to_have_count(0)
    await expect(page.locator("#rules input, #rules select, #rules button")).to_have_count(0)
    await expect(page.get_by_role("button", name="Acknowledge all")).to_have_count(0)
    await page.goto(f"{board.url}/incidents/{opened.id}")
    await expect(page.locator("#incident form")).to_have_count(0)

    # Even calling the API from the viewer's own session is refused.
    status = await page.evaluate(
        """async (id) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const response = await fetch('/api/alerts/incidents/' + id + '/acknowledge', {
                method: 'POST', headers: {'X-CSRF-Token': csrf}});
            return response.status;
        }""",
        str(opened.id),
    )
    assert status == 403
    assert (await board.running.store.get_incident(opened.id)).status is Status.ACTIVE
    tab.assert_clean(allow=("403",))
