"""The incident history in a browser: filters, pages, one incident with its timeline and its
chart, and the alert frequency chart over 7, 30 and 90 days."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect

from vigil.core import Severity

from .support import LATENCY, MEMORY, Dashboard, new_tab, past_incident, sign_in, wait_live


async def sixty(board: Dashboard) -> None:
    """Sixty incidents an hour apart ending an hour ago: memory and latency in turn, every
    third one critical, one in five resolved by hand."""
    rules = board.running.view.rules
    now = board.clock.now
    for n in range(60):
        await past_incident(
            board.running.store,
            rules[LATENCY if n % 2 else MEMORY],
            severity=Severity.CRITICAL if n % 3 == 0 else Severity.WARNING,
            at=now - timedelta(hours=60 - n),
            lasted=timedelta(minutes=5 + n % 7),
            auto=n % 5 != 0,
        )


async def drawn(page: Page, selector: str) -> dict[str, Any]:
    """What Chart.js holds for the canvas, and how many of its pixels are painted."""
    result: dict[str, Any] = await page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector);
            const chart = canvas && window.Chart && window.Chart.getChart(canvas);
            if (!chart) return {ready: false};
            const pixels = canvas.getContext('2d')
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
            return {
                ready: true,
                labels: chart.data.labels || [],
                datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data})),
                painted: painted,
                size: canvas.width * canvas.height,
            };
        }""",
        selector,
    )
    return result


async def test_filters_and_pages(browser: Browser, board: Dashboard) -> None:
    await sixty(board)
    tab = await new_tab(browser)
    await sign_in(tab, board, "vic")
    page = tab.page
    rows = page.locator("#history tbody tr")
    count = page.locator("#history-count")
    await expect(count).to_have_text("60 incidents · page 1 of 3")
    await expect(rows).to_have_count(25)
    newest = await rows.first.get_attribute("data-incident")

    await page.get_by_role("link", name="Older").click()
    await expect(page).to_have_url(re.compile(r"/alerts\?page=2#history$"))
    await expect(count).to_have_text("60 incidents · page 2 of 3")
    await expect(rows.first).not_to_have_attribute("data-incident", newest or "")
    await (
        page.get_by_role("navigation", name="Incident history pages")
        .get_by_role("link", name="Page 3")
        .click()
    )
    await expect(rows).to_have_count(10)

    await page.get_by_label("Severity", exact=True).select_option("critical")
    await page.get_by_label("Rule", exact=True).select_option(label="Memory Usage")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(re.compile(r"severity=critical&.*rule=memory_usage"))
    await expect(count).to_have_text("10 incidents match · page 1 of 1")
    await expect(rows.locator(".badge.sev-warning")).to_have_count(0)
    await expect(rows.locator(".badge.sev-critical")).to_have_count(10)
    await expect(rows.filter(has_text="Gateway Latency")).to_have_count(0)

    await page.get_by_role("link", name="Clear").click()
    await expect(count).to_have_text("60 incidents · page 1 of 3")
    day = (board.clock.now - timedelta(days=1)).date().isoformat()
    await page.get_by_label("From (UTC day)").fill(day)
    await page.get_by_label("To (UTC day, included)").fill(day)
    await page.get_by_label("Status", exact=True).select_option("resolved")
    await page.get_by_role("button", name="Filter").click()
    await expect(count).to_have_text("24 incidents match · page 1 of 1")
    stamps = await rows.locator("time").evaluate_all(
        "items => items.map(t => t.getAttribute('datetime').slice(0, 10))"
    )
    assert set(stamps) == {day}
    # that day holds n = 26..49 of sixty(): n = 30, 35, 40 and 45 were resolved by hand
    await expect(rows.filter(has_text="Manual by ana")).to_have_count(4)
    await expect(rows.filter(has_text="Auto")).to_have_count(20)
    tab.assert_clean()


async def test_an_incident_page_with_its_timeline_and_chart(
    browser: Browser, board: Dashboard
) -> None:
    for value in (40, 55, 60, 70, 65, 50):
        await board.cycle({LATENCY: value})
    opened = await board.breach(LATENCY, 150)
    await board.breach(LATENCY, 250)  # escalates
    await board.running.acknowledge(opened.id, by="ana", notes="Discord status page is red")
    await board.recover(LATENCY, 45)

    tab = await new_tab(browser)
    await sign_in(tab, board, "vic")
    page = tab.page
    await page.locator(f"#history tr[data-incident='{opened.id}'] a").click()
    await expect(page).to_have_url(f"{board.url}/incidents/{opened.id}")
    await expect(page.locator("h1")).to_contain_text("exceeded critical threshold")
    steps = page.locator(".timeline li")
    await expect(steps).to_have_count(4)
    await expect(steps.nth(0)).to_contain_text("Opened as ◆ Warning")
    await expect(steps.nth(1)).to_contain_text("Escalated from warning to ▲ Critical")
    await expect(steps.nth(2)).to_contain_text("Acknowledged by ana: Discord status page is red")
    # the server writes UTC; the browser (in Paris here) shows its own time, and how long ago
    local = opened.triggered_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M:%S")
    await expect(steps.nth(0).locator("time")).to_have_text(
        re.compile(rf"^\d+ minutes ago · \d+ \w+ \d{{4}}, {local}$")
    )
    await expect(steps.nth(3)).to_contain_text("Resolved automatically")
    await expect(page.locator("#incident .facts")).to_contain_text("↺ Auto")

    await expect(page.locator("#incident-chart")).to_be_visible()
    await wait_live(page)
    chart = await drawn(page, "#incident-chart")
    assert chart["ready"], "Chart.js drew nothing"
    labels = [dataset["label"] for dataset in chart["datasets"]]
    assert labels == ["Gateway Latency (mean)", "Warning threshold", "Critical threshold"]
    readings = [point["y"] for point in chart["datasets"][0]["data"]]
    assert readings == [40, 55, 60, 70, 65, 50, 150, 150, 250, 250, 45, 45, 45]
    assert [p["y"] for p in chart["datasets"][1]["data"]] == [100, 100]
    assert [p["y"] for p in chart["datasets"][2]["data"]] == [200, 200]
    assert chart["painted"] > chart["size"] * 0.01  # lines, axes and labels on the canvas
    tab.assert_clean()


async def test_the_frequency_chart_over_7_30_and_90_days(
    browser: Browser, board: Dashboard
) -> None:
    rules = board.running.view.rules
    now = board.clock.now
    spread = [
        (0, Severity.CRITICAL),
        (3, Severity.WARNING),
        (20, Severity.WARNING),
        (20, Severity.CRITICAL),
        (60, Severity.WARNING),
    ]
    for days_ago, severity in spread:
        await past_incident(
            board.running.store,
            rules[LATENCY],
            severity=severity,
            at=now - timedelta(days=days_ago, hours=1),
            lasted=timedelta(minutes=3),
            auto=True,
        )
    tab = await new_tab(browser)
    await sign_in(tab, board, "vic")
    page = tab.page
    totals = page.locator("#frequency-totals")
    await expect(totals).to_contain_text("4 incidents in the last 30 days")
    await wait_live(page)

    async def stacks() -> tuple[int, dict[str, int]]:
        chart = await drawn(page, "#frequency-chart")
        assert chart["ready"] and chart["painted"] > 0
        sums = {d["label"]: sum(d["data"]) for d in chart["datasets"]}
        return len(chart["labels"]), sums

    assert await stacks() == (30, {"Critical": 2, "Warning": 2, "Info": 0})
    period = page.get_by_role("list", name="Period", exact=True)  # the noisiest rules have one
    await period.get_by_role("link", name="7 days").click()
    await expect(totals).to_contain_text("2 incidents in the last 7 days")
    await expect(page).to_have_url(re.compile(r"/alerts\?days=7"))
    assert await stacks() == (7, {"Critical": 1, "Warning": 1, "Info": 0})
    await period.get_by_role("link", name="90 days").click()
    await expect(totals).to_contain_text("5 incidents in the last 90 days")
    assert await stacks() == (90, {"Critical": 2, "Warning": 3, "Info": 0})
    await expect(period.get_by_role("link", name="90 days")).to_have_attribute(
        "aria-current", "true"
    )
    tab.assert_clean()
