"""What the customer's pages say about an appointment after it changed: the confirmation page opened again
(Back, reload, a bookmark) after the appointment was cancelled, and the cancel page, which asks one
question and gives no instructions for an appointment the customer is about to give up (R9, R10, R41)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.web.conftest import (
    DESKTOP,
    Stack,
    new_context,
    to_the_calendar,
    unique_customer_number,
    unique_email,
)

pytestmark = pytest.mark.timeout(90)


@pytest.mark.req("R10")
@pytest.mark.req("R41")
async def test_the_confirmation_opened_again_after_a_cancellation_does_not_say_booked(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await to_the_calendar(page, stack, "veraenderung")
    await page.locator(".calendar td.has-slots a").nth(11).click()
    await page.locator("button.slot:not(.slot-evening)").first.click()
    await page.get_by_label("Vorname").fill("Erika")
    await page.get_by_label("Nachname").fill("Mustermann")
    await page.get_by_label("E-Mail-Adresse").fill(unique_email("again"))
    await page.get_by_label("Kundennummer", exact=False).first.fill(unique_customer_number())
    await page.get_by_role("button", name="Termin verbindlich buchen").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")
    confirmation = page.url

    await page.get_by_role("link", name="Termin verwalten (ändern oder absagen)").click()
    await page.get_by_role("link", name="Termin absagen").click()
    # The cancel page asks one question: nothing to bring, no "come a few minutes early".
    await expect(page.get_by_role("heading", level=1)).to_have_text("Termin absagen")
    await expect(page.locator("main")).to_contain_text("Möchten Sie diesen Termin wirklich absagen?")
    await expect(page.locator("main")).not_to_contain_text("Bitte bringen Sie mit")
    await expect(page.locator("main")).not_to_contain_text("Bitte kommen Sie einige Minuten vor Beginn.")
    await page.get_by_role("button", name="Ja, Termin absagen").click()
    await expect(page.get_by_role("status")).to_contain_text("Ihr Termin wurde abgesagt.")

    # Back in the history to the confirmation, or the confirmation reloaded: the appointment is cancelled.
    await page.goto(confirmation)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin")
    await expect(page.locator("main")).to_contain_text("Dieser Termin wurde abgesagt.")
    await expect(page.locator("main")).not_to_contain_text("Ihr Termin ist gebucht")
    await expect(page).to_have_title(re.compile(r"^Ihr Termin \u2013 "))
    await expect(page.get_by_role("link", name="Neuen Termin buchen")).to_be_visible()
    await context.close()
