"""axe-core finds no WCAG 2.1 AA violation on any customer page, in each language (R42, R43).

One booking per language walks through every page of the dialogue (with the error states and the
suggested streets of the finder and the error states of the contact form), then the confirmation, the
manage, reschedule and cancel pages, the accessibility statement, the embedding page, an error page and
the page-not-found page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]  # ships no types
from playwright.async_api import Browser, Page, expect

from tests.web.conftest import (
    DESKTOP,
    PHONE,
    Stack,
    new_context,
    to_the_calendar,
    unique_customer_number,
    unique_email,
)

pytestmark = pytest.mark.timeout(150)

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
LANGUAGES = ("de", "de-x-ls", "en")


async def check(page: Page, axe: Axe, where: str, found: dict[str, list[str]]) -> None:
    # Reflow (WCAG 1.4.10): on a narrow screen nothing needs scrolling sideways.
    if not await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
        found[where + " (reflow)"] = ["the page is wider than the screen"]
    results = await axe.run(page, options=WCAG_21_AA)
    violations: list[dict[str, Any]] = results.response["violations"]
    if violations:
        found[where] = [
            f"{v['id']}: {v['help']} ({', '.join(str(n['target']) for n in v['nodes'][:3])})"
            for v in violations
        ]


@pytest.mark.req("R42")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
async def test_no_customer_page_has_a_wcag_21_aa_violation(
    stack: Stack, browser: Browser, language: str
) -> None:
    axe = Axe()
    found: dict[str, list[str]] = {}
    # Leichte Sprache on a phone, English at 320 px (like 1280 px at 400 % zoom), German on a desktop.
    device = {"de": DESKTOP, "de-x-ls": PHONE, "en": {**PHONE, "viewport": {"width": 320, "height": 640}}}
    context = await new_context(browser, device[language])
    page = await context.new_page()
    day = {"de": 8, "de-x-ls": 9, "en": 10}[language]

    await page.goto(f"{stack.gateway_url}/?lang={language}")
    await expect(page.locator("html")).to_have_attribute("lang", language)
    await check(page, axe, "start", found)
    await page.locator("#field-street").fill("Am Wall")
    await page.locator("#field-house_number").fill("1")
    await page.locator("#field-postcode").fill("28195")
    await page.locator("form[action^='/finder'] button[type=submit]").click()
    await expect(page.locator("#finder-result-title")).to_be_visible()
    await check(page, axe, "finder result", found)
    await page.locator("#field-street").fill("")
    await page.locator("form[action^='/finder'] button[type=submit]").click()
    await expect(page.locator(".error-summary")).to_be_visible()
    await check(page, axe, "finder errors", found)
    # A misspelt street: the suggested streets are buttons in the finder's sentence.
    await page.locator("#field-street").fill("Sögestrase")
    await page.locator("form[action^='/finder'][novalidate] button[type=submit]").click()
    await expect(page.locator(".finder-suggestions button[name=street]").first).to_be_visible()
    await check(page, axe, "finder suggestions", found)

    await page.locator("input[name=location][value=mitte]").check()
    await page.locator("form[action^='/'][novalidate] button[type=submit]").first.click()
    await expect(page.locator("input[name=concern]").first).to_be_visible()
    await check(page, axe, "concern", found)
    for details in await page.locator("details.concern-details").all():
        await details.locator("summary").click()
    await check(page, axe, "concern, details open", found)
    await page.locator("input[name=concern][value=bescheid]").check()
    await page.locator("input[name=mode][value=in_person]").check()
    await page.locator("main form button[type=submit]").click()

    await expect(page.locator(".calendar").first).to_be_visible()
    await check(page, axe, "calendar", found)
    await page.locator(".calendar td.has-slots a").nth(day).click()
    await expect(page.locator("button.slot").first).to_be_visible()
    await check(page, axe, "times of a day", found)
    if await page.locator("button.slot-evening").count():
        await page.locator("button.slot-evening").first.click()
        await expect(page.locator(".error-summary")).to_be_visible()
        await check(page, axe, "times, evening declaration missing", found)
    await page.locator("button.slot:not(.slot-evening)").first.click()

    await expect(page.locator("#details-form")).to_be_visible()
    await check(page, axe, "contact details", found)
    await page.locator("#details-form button[type=submit]").click()
    await expect(page.locator(".error-summary")).to_be_visible()
    await check(page, axe, "contact details with errors", found)
    await page.locator("#field-first_name").fill("Ada")
    await page.locator("#field-last_name").fill("Lovelace")
    email = unique_email(f"axe-{language}")
    await page.locator("#field-email").fill(email)
    await page.locator("#field-customer_number").fill(unique_customer_number())
    await page.locator("#details-form button[type=submit]").click()

    await expect(page.locator(".reference")).to_be_visible()
    await check(page, axe, "confirmation", found)
    if language == "en":  # British dates, as in the confirmation mail: "Tuesday, 10 March 2026"
        assert re.search(r"day, \d{1,2} [A-Z][a-z]+ 20\d\d", await page.locator("main").inner_text())
    # The mail's link opens the page in the language of the booking, on any device (R43).
    link = stack.manage_link((await stack.mail_to(email))[0])
    elsewhere = await new_context(browser, DESKTOP)
    mail_page = await elsewhere.new_page()
    await mail_page.goto(link)
    await expect(mail_page.locator("html")).to_have_attribute("lang", language)
    await elsewhere.close()
    await page.locator("main a[href*='/manage/']").click()
    await expect(page.locator("a.button-warning")).to_be_visible()
    manage_url = page.url
    await check(page, axe, "manage", found)
    await page.locator("main a[href*='/reschedule']").click()
    await expect(page.locator(".calendar").first).to_be_visible()
    await check(page, axe, "reschedule", found)
    await page.locator(".calendar td.has-slots a").nth(day).click()
    await page.locator("button.slot:not(.slot-evening)").first.click()
    await expect(page.locator("main form button.button")).to_be_visible()
    await check(page, axe, "reschedule confirmation", found)
    await page.goto(manage_url)
    await page.locator("a.button-warning").click()
    await expect(page.locator("main form button.button-warning")).to_be_visible()
    await check(page, axe, "cancel", found)
    await page.locator("main form button.button-warning").click()
    await expect(page.get_by_role("status")).to_be_visible()
    await check(page, axe, "cancelled", found)

    paths = (
        "/accessibility",
        "/privacy",
        "/embed",
        "/manage/00000000-0000-0000-0000-000000000000?token=x",
        "/manage",
        "/no-such-page",  # the page-not-found page
    )
    for path in (*paths, "/manage?sent=1"):
        await page.goto(f"{stack.gateway_url}{path}{'&' if '?' in path else '?'}lang={language}")
        await expect(page.locator("html")).to_have_attribute("lang", language)
        await check(page, axe, path, found)
    await page.goto(f"{stack.gateway_url}/manage?lang={language}")
    await page.locator("main form button[type=submit]").click()
    await expect(page.locator(".error-summary")).to_be_visible()
    await check(page, axe, "manage link form with errors", found)
    await context.close()
    assert not found, found


# --- WCAG 2.2.1: the held time can be extended before it runs out, keeping what was typed ----------


@pytest.mark.req("R38")
@pytest.mark.req("R42")
async def test_a_customer_warned_that_the_hold_runs_out_holds_the_time_again_and_keeps_what_they_typed(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await page.clock.install()  # the page's countdown runs on Playwright's clock
    await to_the_calendar(page, stack, "veraenderung")
    await page.locator(".calendar td.has-slots a").nth(12).click()
    await page.locator("button.slot:not(.slot-evening)").last.click()
    await expect(page.locator("#hold-text")).to_contain_text("Wir halten diesen Termin bis 07:35 Uhr")
    renew = page.get_by_role("button", name="Termin erneut freihalten")
    await expect(renew).to_be_hidden()  # offered from the warning on
    email = unique_email("more-time")
    typed = {"Vorname": "Erika", "Nachname": "Mustermann", "E-Mail-Adresse": email}
    for label, value in typed.items():
        await page.get_by_label(label).fill(value)
    number = unique_customer_number()
    await page.get_by_label("Kundennummer", exact=False).first.fill(number)

    # Three and a half minutes later, for the page and for the services: the warning, with the button.
    stack.clock.advance(timedelta(minutes=3, seconds=30))
    try:
        await page.clock.fast_forward("03:30")
        await expect(page.locator("#hold-live")).to_have_text(
            "Wir halten diesen Termin nur noch kurz für Sie frei (höchstens 2 Minuten). "
            "Brauchen Sie mehr Zeit? Drücken Sie unter dem Formular auf „Termin erneut freihalten“."
        )
        await expect(page.locator("#hold-more")).to_contain_text("höchstens 2 Minuten")
        await renew.focus()
        await page.keyboard.press("Enter")

        await expect(page.locator("#hold-text")).to_contain_text("Wir halten diesen Termin bis 07:38 Uhr")
        await expect(page.locator("#hold")).to_be_focused()  # a screen reader hears the new time first
        for label, value in typed.items():
            await expect(page.get_by_label(label)).to_have_value(value)
        await expect(page.get_by_label("Kundennummer", exact=False).first).to_have_value(number)
        await expect(page.locator(".error-summary")).to_have_count(0)
        await expect(renew).to_be_hidden()  # five new minutes: no warning yet

        # The renewed hold books (Enter in a field still books, not renews).
        await page.get_by_label("Vorname").press("Enter")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")
    finally:
        stack.clock.advance(timedelta(minutes=-3, seconds=-30))
    await context.close()


# --- WCAG 1.4.10: no sideways scrolling at 320 px, also with the error messages --------------------

NARROW: dict[str, Any] = {**PHONE, "viewport": {"width": 320, "height": 640}}


@pytest.mark.req("R42")
@pytest.mark.parametrize("language", LANGUAGES)
async def test_every_form_page_with_its_errors_fits_a_320_px_screen(
    stack: Stack, browser: Browser, language: str
) -> None:
    """Like 1280 px at 400 % zoom. The error state adds a red border and padding, so that long German
    compound words in the choices ("Weiterbewilligungsantrag") must wrap."""
    context = await new_context(browser, NARROW)
    page = await context.new_page()
    too_wide: dict[str, int] = {}

    async def fits(where: str) -> None:
        await expect(page.locator(".error-summary")).to_be_visible()
        width = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if width > 0:
            too_wide[where] = width

    await page.goto(f"{stack.gateway_url}/?lang={language}")
    await page.locator("form[action^='/'][novalidate] button[type=submit]").first.click()
    await fits("location")
    await page.locator("form[action^='/finder'] button[type=submit]").click()
    await fits("finder")
    await page.locator("input[name=location][value=mitte]").check()
    await page.locator("form[action^='/'][novalidate] button[type=submit]").first.click()
    await expect(page.locator("input[name=concern]").first).to_be_visible()
    await page.locator("main form button[type=submit]").click()
    await fits("concern")
    for details in await page.locator("details.concern-details").all():
        await details.locator("summary").click()
    await fits("concern, details open")
    await page.locator("input[name=concern][value=bescheid]").check()
    await page.locator("input[name=mode][value=in_person]").check()
    await page.locator("main form button[type=submit]").click()

    # A day with evening times (their declaration is the time page's error), one per language.
    async with aiohttp.ClientSession(base_url=stack.gateway_url) as http:
        tomorrow = stack.clock.now().date() + timedelta(days=1)
        params = {"concern": "bescheid", "mode": "in_person", "from": tomorrow.isoformat()}
        params["to"] = (tomorrow + timedelta(days=55)).isoformat()
        async with http.get("/api/v1/locations/mitte/availability", params=params) as response:
            slots = (await response.json())["slots"]
    evening_days = sorted({s["start"][:10] for s in slots if s.get("evening_reserved")})
    day = evening_days[-1 - LANGUAGES.index(language)]
    await page.locator(f".calendar td.has-slots a[href*='day={day}']").click()
    times = page.url
    await page.locator("button.slot-evening").first.click()
    await fits("times, evening declaration missing")
    await page.locator("a[href*='/waiting-list/join']").click()
    await page.locator("main form button[type=submit]").click()
    await fits("waiting list")
    await page.goto(times)
    await page.locator("button.slot:not(.slot-evening)").last.click()
    await page.locator("#details-form button[type=submit]").click()
    await fits("contact details")
    await page.goto(f"{stack.gateway_url}/manage?lang={language}")
    await page.locator("main form button[type=submit]").click()
    await fits("manage link form")
    await context.close()
    assert not too_wide, f"wider than the screen by so many pixels: {too_wide}"
