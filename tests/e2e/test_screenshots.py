"""Every page in light and dark, on a desktop and on a phone, saved under artifacts/e2e/.

With VIGIL_UPDATE_SCREENSHOTS=1 the Alerts page and the Overview are also copied into
docs/screenshots/ for the README (commit them when the pages change).
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from vigil.core.silences import MaintenanceWindow

from .support import Dashboard, new_tab, populate, screenshot_path, sign_in, wait_live

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
BACKGROUND = {"light": "rgb(246, 247, 249)", "dark": "rgb(17, 20, 24)"}


async def settled(page: Page, *, charts: int = 0) -> None:
    """Live, and its charts drawn: what a person would see after a moment."""
    await wait_live(page)
    if charts:
        await expect(page.locator("canvas")).to_have_count(charts)
        await page.wait_for_function(
            "() => [...document.querySelectorAll('canvas')].every(c => Chart.getChart(c))"
        )


async def silence_and_notify(board: Dashboard) -> None:
    """A snooze, two maintenance windows and two channels, for the pages that show them."""
    vigil = board.running
    await vigil.snooze(
        "memory_usage", duration=timedelta(hours=2), reason="Known leak, fix deploying", by="ana"
    )
    now = vigil.clock()
    await vigil.add_maintenance(
        MaintenanceWindow.weekly(
            "nightly-backup",
            weekdays=["sat", "sun"],
            start_time="23:00",
            end_time="02:00",
            timezone="Europe/Paris",
            metrics=["database_query_time"],
            reason="Backups slow the database",
            by="ana",
        )
    )
    await vigil.add_maintenance(
        MaintenanceWindow.once(
            "shard-move", start=now - timedelta(minutes=5), end=now + timedelta(hours=1), by="ana"
        )
    )
    await vigil.store.add_channel(
        {"name": "ops-discord", "url": "discord://1234567890/token", "min_severity": "warning"},
        now=now,
    )
    await vigil.store.add_channel(
        {
            "name": "on-call-mail",
            "url": "mailtos://bot:secret@mail.example.com?to=oncall@example.com",
            "events": ["opened", "escalated"],
            "renotify_minutes": 30,
        },
        now=now,
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_screenshots_of_every_page(browser: Browser, board: Dashboard, scheme: str) -> None:
    await populate(board)
    incident = board.running.view.active()[0]
    shots: list[Path] = []

    anonymous = await new_tab(browser, scheme=scheme)
    await anonymous.page.goto(f"{board.url}/login")
    shots.append(screenshot_path("login", scheme))
    await anonymous.page.screenshot(path=shots[-1], full_page=True)

    tab = await new_tab(browser, scheme=scheme)
    page = tab.page
    await sign_in(tab, board, "ana")
    await expect(page.locator("body")).to_have_css("background-color", BACKGROUND[scheme])
    await settled(page, charts=1)
    await expect(page.locator("#active li.incident")).to_have_count(2)
    shots.append(screenshot_path("alerts", scheme))
    await page.screenshot(path=shots[-1], full_page=True)

    await page.goto(f"{board.url}/")
    await settled(page)
    await expect(page.locator("#cards svg.spark")).to_have_count(10)
    shots.append(screenshot_path("overview", scheme))
    await page.screenshot(path=shots[-1], full_page=True)

    await page.goto(f"{board.url}/incidents/{incident.id}")
    await settled(page, charts=1)
    shots.append(screenshot_path("incident", scheme))
    await page.screenshot(path=shots[-1], full_page=True)

    await silence_and_notify(board)
    for name in ("silences", "channels", "rules"):
        await page.goto(f"{board.url}/{name}")
        await settled(page)
        shots.append(screenshot_path(name, scheme))
        await page.screenshot(path=shots[-1], full_page=True)

    viewer = await new_tab(browser, scheme=scheme)
    await sign_in(viewer, board, "vic")
    await settled(viewer.page, charts=1)
    shots.append(screenshot_path("alerts-viewer", scheme))
    await viewer.page.screenshot(path=shots[-1], full_page=True)

    phone = await new_tab(browser, scheme=scheme, width=390)
    await sign_in(phone, board, "ana", path="/")
    await settled(phone.page)
    shots.append(screenshot_path("overview-phone", scheme))
    await phone.page.screenshot(path=shots[-1])
    await phone.page.goto(f"{board.url}/alerts")
    await settled(phone.page, charts=1)
    shots.append(screenshot_path("alerts-phone", scheme))
    await phone.page.screenshot(path=shots[-1])
    await phone.page.locator("#rules").scroll_into_view_if_needed()
    shots.append(screenshot_path("rules-phone", scheme))
    await phone.page.screenshot(path=shots[-1])

    for shot in shots:
        assert shot.stat().st_size > 10_000, shot  # a page, not a blank
    if os.environ.get("VIGIL_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for name in ("alerts", "overview"):
            shutil.copyfile(screenshot_path(name, scheme), DOCS / f"{name}-{scheme}.png")
    for each in (anonymous, tab, viewer, phone):
        each.assert_clean()
