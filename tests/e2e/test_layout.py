"""Every page at phone and desktop width, light and dark: nothing scrolls sideways, long
metric ids wrap at their separators, toasts leave what they announce visible, past times
read as past, the theme switch is remembered, and the title counts the open incidents."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.async_api import Browser, FloatRect, Page, expect

from .support import LATENCY, Dashboard, Tab, new_tab, populate, sign_in, wait_live
from .test_screenshots import silence_and_notify

SIZES = [(390, 844), (1400, 1000)]
SCHEMES = ["light", "dark"]
LONG_METRIC = "discord_gateway_shard_reconnect_attempts_per_minute_total"

# The widest element, when a page is wider than its window: what to fix.
WIDEST = """() => {
  const limit = window.innerWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > limit + 0.5)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' +
              (typeof e.className === 'string' ? e.className : '') + ' ' +
              Math.round(e.getBoundingClientRect().right));
  return wide.slice(0, 8);
}"""


async def assert_no_sideways_scroll(page: Page, where: str) -> None:
    sizes = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    document, body, window = sizes
    if max(document, body) > window:
        widest = await page.evaluate(WIDEST)
        raise AssertionError(f"{where}: {document}/{body} > {window}: {widest}")


async def assert_past_times_read_past(page: Page, where: str, now_utc: str) -> None:
    """Every <time> at or before the server's now reads as past ("ago" or "just now")."""
    wrong = await page.evaluate(
        """(now) => [...document.querySelectorAll('time[data-time]')]
            .filter(t => Date.parse(t.getAttribute('datetime')) <= Date.parse(now))
            .map(t => t.textContent)
            .filter(text => /^in /.test(text))""",
        now_utc,
    )
    assert wrong == [], f"{where}: past times read as future: {wrong[:5]}"


async def tab_at(browser: Browser, width: int, height: int, scheme: str) -> Tab:
    tab = await new_tab(browser, scheme=scheme, width=width)
    await tab.page.set_viewport_size({"width": width, "height": height})
    return tab


async def test_no_page_scrolls_sideways_at_phone_or_desktop_width(
    browser: Browser, board: Dashboard
) -> None:
    await populate(board)
    await silence_and_notify(board)
    await board.cycle({LATENCY: 60.0, LONG_METRIC: 3.0})  # a long id some source reports
    await board.running.store.add_policy(
        {
            "name": "night-shift-escalation",
            "description": "the Discord channel first, then whoever is on call by mail",
            "steps": [
                {"channels": ["ops-discord"], "wait_minutes": 10},
                {"channels": ["on-call-mail", "ops-discord"], "wait_minutes": 30},
            ],
            "repeat_minutes": 60,
            "severities": ["critical"],
        },
        now=board.clock.now,
    )
    incident = board.running.view.active()[0]
    pages = [
        "/",
        "/alerts",
        f"/incidents/{incident.id}",
        "/silences",
        "/channels",
        "/escalations",
        "/rules",
        f"/rules/{LATENCY}",
        f"/rules/{LATENCY}/delete",
    ]
    for width, height in SIZES:
        for scheme in SCHEMES:
            login = await tab_at(browser, width, height, scheme)
            await login.page.goto(f"{board.url}/login")
            await assert_no_sideways_scroll(login.page, f"/login at {width} {scheme}")
            tab = await tab_at(browser, width, height, scheme)
            await sign_in(tab, board, "ana", path="/")
            for path in pages:
                where = f"{path} at {width}x{height} {scheme}"
                if tab.page.url != f"{board.url}{path}":
                    await tab.page.goto(f"{board.url}{path}")
                await wait_live(tab.page)
                await assert_no_sideways_scroll(tab.page, where)
                now = board.clock.now.isoformat().replace("+00:00", "Z")
                await assert_past_times_read_past(tab.page, where, now)
            # The long id wraps at its separators, inside its card.
            card = tab.page.locator(f"#card-{LONG_METRIC}")
            await tab.page.goto(f"{board.url}/")
            box = await card.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width
            for each in (login, tab):
                each.assert_clean()
                await each.context.close()


def overlap(a: FloatRect, b: FloatRect) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


async def test_a_toast_leaves_the_incident_it_announces_visible(
    browser: Browser, board: Dashboard
) -> None:
    for width, height in SIZES:
        tab = await tab_at(browser, width, height, "light")
        await sign_in(tab, board, "ana", path="/alerts")
        page = tab.page
        await wait_live(page)
        active = page.locator("#active")
        # Where a new incident's card appears: at the bottom of the window, where toasts go.
        await active.evaluate(
            "(e) => window.scrollTo(0, e.getBoundingClientRect().top + scrollY - innerHeight + 260)"
        )
        board.clock.advance(3600)
        opened = await board.breach(LATENCY, 150)
        card = page.locator(f"#incident-{opened.id}")
        toast = page.locator("#notices .notice").last
        await expect(toast).to_contain_text("New warning incident")
        await expect(card).to_be_visible()
        card_box, toast_box = await card.bounding_box(), await toast.bounding_box()
        assert card_box is not None and toast_box is not None
        assert card_box["y"] < height and card_box["y"] + card_box["height"] > 0  # in view
        assert not overlap(card_box, toast_box), (width, card_box, toast_box)
        await board.running.resolve(opened.id, by="ana")
        tab.assert_clean()
        await tab.context.close()


async def test_the_theme_switch_is_remembered_and_the_title_counts_open_incidents(
    browser: Browser, board: Dashboard
) -> None:
    tab = await new_tab(browser, scheme="light")
    page = tab.page
    await sign_in(tab, board, "ana", path="/")
    await wait_live(page)
    await expect(page).to_have_title("Overview · Vigil")
    background = "() => getComputedStyle(document.body).backgroundColor"
    assert await page.evaluate(background) == "rgb(246, 247, 249)"

    await page.get_by_label("Theme").select_option("dark")
    assert await page.evaluate(background) == "rgb(17, 20, 24)"
    await page.goto(f"{board.url}/alerts")  # another page, the same browser: still dark
    assert await page.evaluate(background) == "rgb(17, 20, 24)"
    await expect(page.get_by_label("Theme")).to_have_value("dark")
    await page.get_by_label("Theme").select_option("system")  # the browser's: light here
    assert await page.evaluate(background) == "rgb(246, 247, 249)"

    # A background tab's title says how many incidents are open, as they open.
    opened = await board.breach(LATENCY, 150)
    await expect(page).to_have_title("(1) Alerts & Incidents · Vigil")
    board.clock.advance(60)
    await board.breach("memory_usage", 450)
    await expect(page).to_have_title("(2) Alerts & Incidents · Vigil")
    await board.running.resolve(opened.id, by="ana")
    await expect(page).to_have_title("(1) Alerts & Incidents · Vigil")
    await page.reload()
    await expect(page).to_have_title(re.compile(r"^\(1\) Alerts & Incidents · Vigil$"))
    assert board.clock.now > opened.triggered_at + timedelta(seconds=1)
    tab.assert_clean()
