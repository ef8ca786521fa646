"""The API reference (/api/docs) in a browser that can reach nothing but the server: Swagger UI
comes from the package, runs under the dashboard's Content-Security-Policy, and lists the
API; /docs leads to it."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Browser, Route, expect

from .support import Dashboard, new_tab


async def test_the_api_reference_works_offline_under_the_csp(
    browser: Browser, board: Dashboard
) -> None:
    tab = await new_tab(browser)
    page = tab.page
    elsewhere: list[str] = []
    ours = urlsplit(board.url).netloc

    async def offline(route: Route) -> None:
        if urlsplit(route.request.url).netloc == ours:
            await route.continue_()
        else:  # the machine is offline, as far as this page knows
            elsewhere.append(route.request.url)
            await route.abort()

    await tab.context.route("**/*", offline)
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    await page.goto(f"{board.url}/docs")
    await expect(page).to_have_url(f"{board.url}/api/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Vigil")
    operation = page.locator(".opblock-summary-path", has_text="/api/alerts/active").first
    await expect(operation).to_be_visible()
    assert elsewhere == [] and failed == []
    tab.assert_clean()  # a blocked script or style would be a console error (CSP violation)
