"""Chromium through Playwright for the staff-work browser tests: the launch set-up (Debian's Chromium,
headless) as a module-scoped fixture, and the check that a page has no serious or critical accessibility
violation and reflows on a narrow screen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]  # ships no type information
from playwright.async_api import Browser, Page

from tests.browser import chromium_browser


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async for launched in chromium_browser():
        yield launched


def serious(response: dict[str, Any]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in response.get("violations", [])
        if v.get("impact") in ("serious", "critical")
    ]


async def no_serious_violation(page: Page) -> None:
    """No serious or critical axe finding; and at 320 CSS pixels (a desktop zoomed to 400 %, WCAG 1.4.10)
    the page reflows: only a wide table scrolls, in its own region."""
    results = await Axe().run(page)
    assert serious(results.response) == [], page.url
    size = page.viewport_size
    await page.set_viewport_size({"width": 320, "height": 640})
    reflows = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    if size is not None:
        await page.set_viewport_size(size)
    assert reflows, f"{page.url}: wider than the screen at 320 px"


async def sign_in(page: Page, username: str, password: str) -> None:
    """On the login page a protected page redirected to: sign in and come back."""
    await page.get_by_label("Benutzername").fill(username)
    await page.get_by_label("Passwort", exact=True).fill(password)
    await page.get_by_role("button", name="Anmelden").click()
