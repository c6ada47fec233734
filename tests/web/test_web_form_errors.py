"""The contact forms' errors as a screen-reader user meets them: the summary at the top names each field
in error by its own message, in the order of the form, and the names and phone numbers people really have
are taken (R42, WCAG 3.3.1 and 3.3.3)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.conftest import (
    DESKTOP,
    Stack,
    new_context,
    to_the_calendar,
    unique_customer_number,
    unique_email,
)

pytestmark = pytest.mark.timeout(90)


async def summary_links(page: Page) -> list[tuple[str, str]]:
    """(target, text) of each link of the error summary, in its order."""
    links = page.locator(".error-summary a")
    return [
        (str(await link.get_attribute("href")), (await link.inner_text()).strip())
        for link in await links.all()
    ]


@pytest.mark.req("R42")
async def test_a_wrong_first_and_last_name_are_told_apart_and_real_names_and_numbers_are_taken(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await to_the_calendar(page, stack, "veraenderung", mode="phone")
    await page.locator(".calendar td.has-slots a").nth(12).click()
    await page.locator("button.slot:not(.slot-evening)").first.click()

    await page.get_by_label("Vorname").fill("A" * 101)  # too long
    await page.get_by_label("Nachname").fill("12345")  # no letters
    await page.get_by_label("E-Mail-Adresse").fill(unique_email("names"))
    await page.get_by_label("Telefonnummer").fill("+49 421 123456")
    await page.get_by_label("Kundennummer", exact=False).first.fill(unique_customer_number())
    await page.get_by_role("button", name="Termin verbindlich buchen").click()
    await expect(page.locator(".error-summary")).to_be_focused()
    links = dict(await summary_links(page))
    assert set(links) == {"#field-first_name", "#field-last_name"}, links
    # Each link says which name is wrong: two equal sentences would leave the listener guessing.
    assert "Vornamen" in links["#field-first_name"], links
    assert "Nachnamen" in links["#field-last_name"], links
    for field in ("first_name", "last_name"):
        error = page.locator(f"#{field}-error")
        await expect(error).to_contain_text(links[f"#field-{field}"])
        await expect(page.locator(f"#field-{field}")).to_have_attribute("aria-describedby", f"{field}-error")

    # Accents, umlauts, apostrophes and hyphens are letters of real names; a phone number with a slash.
    await page.get_by_label("Vorname").fill("Zoë-Marie Ñúñez")
    await page.get_by_label("Nachname").fill("O'Brien-Müller Nguyễn")
    await page.get_by_label("Telefonnummer").fill("0421/123456")
    await page.get_by_role("button", name="Termin verbindlich buchen").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")
    await expect(page.locator("main")).to_contain_text("0421/123456")
    await context.close()


@pytest.mark.req("R42")
@pytest.mark.req("R45")
async def test_the_waiting_list_form_summarises_its_errors_in_the_order_of_its_fields(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await to_the_calendar(page, stack, "veraenderung")
    await page.get_by_role("link", name="Auf die Warteliste").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Auf die Warteliste")
    for day in await page.locator("input[name=weekdays]").all():
        await day.uncheck()
    await page.locator("main form button[type=submit]").click()
    await expect(page.locator(".error-summary")).to_be_focused()
    targets = [target for target, _text in await summary_links(page)]
    # The days of the week come first in the form, then the contact details.
    assert targets == [
        "#field-weekdays",
        "#field-first_name",
        "#field-last_name",
        "#field-email",
        "#field-customer_number",
    ], targets
    await context.close()
