"""The printed confirmation and manage page (R10, R41): the appointment and what to bring, nothing that only
works on the screen, and never the secret of the manage link on a sheet of paper."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.conftest import (
    DESKTOP,
    Stack,
    book_on_the_pages,
    new_context,
    unique_email,
)

pytestmark = pytest.mark.timeout(90)


async def printed_link_targets(page: Page) -> list[str]:
    """What the print style writes after the links of the page (their ::after content)."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll('main a')]
            .map(a => getComputedStyle(a, '::after').content)
            .filter(c => c && c !== 'none' && c !== 'normal')"""
    )
    return found


@pytest.mark.req("R10")
@pytest.mark.req("R41")
async def test_the_printout_shows_no_manage_token_and_no_heading_without_its_buttons(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await book_on_the_pages(page, stack, unique_email("print"), day=13)

    await page.emulate_media(media="print")
    await expect(page.locator(".documents")).to_be_visible()
    targets = await printed_link_targets(page)
    assert not [t for t in targets if "token" in t or "/manage" in t], targets

    await page.emulate_media(media="screen")
    await page.get_by_role("link", name="Termin verwalten (ändern oder absagen)").click()
    await expect(page.get_by_role("heading", level=2, name="Ändern oder absagen")).to_be_visible()
    await page.emulate_media(media="print")
    await expect(page.locator(".documents")).to_be_visible()
    # Its buttons are not printed, so neither is the heading "change or cancel" over nothing.
    await expect(page.get_by_role("heading", level=2, name="Ändern oder absagen")).to_be_hidden()
    targets = await printed_link_targets(page)
    assert not [t for t in targets if "token" in t or "/manage" in t], targets
    await context.close()
