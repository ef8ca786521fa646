"""The Alerts page's incident groups in a real browser: three rules breaching together
arrive live as one group card, expand to their members, stay expanded when the section
refreshes, and an admin acknowledges the group in place."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from vigil.core import Status

from .support import LATENCY, Dashboard, new_tab, sign_in, wait_live

BREACHING = {LATENCY: 250.0, "error_rate": 7.0, "command_p95_latency": 350.0}


async def test_a_group_arrives_live_expands_and_is_acknowledged(
    browser: Browser, board: Dashboard
) -> None:
    tab = await new_tab(browser)
    await sign_in(tab, board, "ana")
    page = tab.page
    await wait_live(page)
    groups = page.locator("#groups")
    await expect(groups.locator(".empty")).to_contain_text("No related incidents")

    for _ in range(2):
        await board.cycle(BREACHING)
    card = groups.locator("li.group")
    await expect(card).to_have_count(1)
    await expect(card.locator("summary")).to_contain_text("3 incidents:")
    members = card.locator(".group-members li")
    await expect(members.first).to_be_hidden()  # collapsed until asked
    await card.locator("summary").click()
    await expect(members).to_have_count(3)
    await expect(members.first).to_be_visible()

    # Another incident event refreshes the section: the card stays expanded.
    await board.breach("memory_usage", 500.0)
    await expect(page.locator("[data-summary=total]")).to_have_text("4")
    await expect(card.locator(".group-members li").first).to_be_visible()

    await card.get_by_label("Note").fill("one outage")
    await card.get_by_role("button", name="Acknowledge all").click()
    await expect(page.locator("#notices .notice").last).to_contain_text("Group acknowledged")
    await expect(groups.locator("li.group.st-acknowledged")).to_have_count(1)
    store = board.running.store
    [group] = await store.list_groups(min_size=2)
    assert {m.status for m in group.members} == {Status.ACKNOWLEDGED}
    tab.assert_clean()
