"""An anomaly rule's band drawn in Chromium, under the dashboard's strict CSP: on the chart of
the rule's preview and of its incident, a shaded usual range between its low and high edges
beside the readings."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import Browser, Page, expect

from vigil.core import Rule, Sample

from .support import Dashboard, new_tab, screenshot_path, sign_in

LATENCY = "gateway_latency"  # a default rule too: warning 100, critical 200
ODD = "odd_latency"
STEP = timedelta(minutes=5)
READINGS = 2 * 24 * 12  # two days

# The datasets of a canvas's chart: label and how many points have a value.
DATASETS = """c => window.Chart.getChart(c).data.datasets.map(
    d => [d.label, d.data.filter(p => p.y !== null && p.y !== undefined).length])"""

DRAWN = "s => window.Chart !== undefined && !!window.Chart.getChart(document.querySelector(s))"


async def drawn(page: Page, canvas: str) -> dict[str, int]:
    await expect(page.locator(canvas)).to_be_visible()
    # The canvas is there before the chart's scripts have run (slowly, on a loaded machine).
    await page.wait_for_function(DRAWN, arg=canvas)
    pairs = await page.locator(canvas).evaluate(DATASETS)
    return {label: count for label, count in pairs}


async def test_the_band_is_drawn_on_the_preview_and_the_incident_charts(
    browser: Browser, board: Dashboard
) -> None:
    vigil = board.running
    start = vigil.clock() - READINGS * STEP
    await vigil.store.add_samples(
        [Sample("bot", LATENCY, start + i * STEP, 50.0 + i % 7) for i in range(READINGS)]
    )
    rule = Rule.from_dict(
        {"name": ODD, "kind": "anomaly", "metric": LATENCY, "unit": "ms", "min_history": 3600}
    )
    await vigil.add_rule(rule, by="test")
    tab = await new_tab(browser)
    page = tab.page
    await sign_in(tab, board, "ana", path=f"/rules/{ODD}")

    edit = page.locator("#edit-rule form")
    await edit.get_by_label("Try it on the last").select_option("7d")
    await edit.get_by_role("button", name="Preview").click()
    await expect(page.locator("#preview-h")).to_have_text("Preview over the last 7 days")
    datasets = await drawn(page, "#preview-chart")
    assert datasets["Usual range: low"] > 0, datasets
    assert datasets["Usual range: high"] > 0, datasets
    assert datasets["Usual (baseline)"] > 0, datasets
    assert not any(label.startswith("This version") for label in datasets)  # no levels
    await page.screenshot(path=screenshot_path("anomaly-preview", "light"), full_page=True)

    # Live: the monitor learned the rule from the stored history when it was added; a few
    # usual readings, then an unusual one, twice, opens an incident.
    for k in range(4):
        await board.cycle({LATENCY: 50.0 + k % 7})
    incident = await board.breach(LATENCY, 95.0)
    assert incident.rule == ODD
    await page.goto(f"{board.url}/incidents/{incident.id}")
    datasets = await drawn(page, "#incident-chart")
    assert datasets["Usual range: high"] > 0, datasets
    assert datasets["Odd Latency (mean)"] > 0, datasets  # the readings, beside the band
    await page.screenshot(path=screenshot_path("anomaly-incident", "light"), full_page=True)
    tab.assert_clean()
