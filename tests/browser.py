"""The browser of the browser tests: Debian's Chromium (`/usr/bin/chromium`, installed by the set-up),
headless, driven by Playwright. Each test folder's fixture delegates to `chromium_browser()`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def chromium_browser() -> AsyncIterator[Browser]:
    """One running Chromium, closed when the fixture that iterates this ends."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
