"""Customers book through the pages in a real browser, from the first page to the confirmation, in person
and by phone, on a desktop and on a phone; then they use the manage link from the mail (R1-R4, R10, R41).
Every step is photographed into tests/artifacts/screenshots/."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from shared.clock import BERLIN
from tests.web.conftest import (
    DESKTOP,
    PHONE,
    Shots,
    Stack,
    new_context,
    to_the_calendar,
    unique_customer_number,
    unique_email,
)
from tools.mailsink import StoredMessage

pytestmark = pytest.mark.timeout(90)


async def book(
    page: Page,
    stack: Stack,
    shots: Shots,
    *,
    concern: str,
    mode: str,
    email: str,
    phone: str | None = None,
    location: str = "mitte",
    day: int = 0,
) -> str:
    """Walk the five steps with the mouse; return the reference number shown on the confirmation."""
    await page.goto(stack.gateway_url + "/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Termin im Jobcenter Bremen buchen")
    await shots.take(page, "1-location")
    await page.locator(f"input[name=location][value={location}]").check()
    await page.get_by_role("button", name="Weiter").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Anliegen wählen")
    await shots.take(page, "2-concern")
    await page.locator(f"input[name=concern][value={concern}]").check()
    await page.locator(f"input[name=mode][value={mode}]").check()
    await page.get_by_role("button", name="Weiter").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Tag und Uhrzeit wählen")
    await shots.take(page, "3-calendar")
    # Each scenario takes its own day, so that the scenarios never compete for one slot.
    await page.locator(".calendar td.has-slots a").nth(day).click()
    await expect(page.locator("#slots-title")).to_contain_text("Freie Termine am")
    await expect(page.locator("#slots-title")).to_be_focused()
    await expect_slots_name_their_day(page)
    await shots.take(page, "4-times")
    await page.locator("button.slot:not(.slot-evening)").first.click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Kontaktdaten")
    await expect(page.locator("#hold-text")).to_contain_text("Wir halten diesen Termin bis")
    await page.get_by_label("Vorname").fill("Erika")
    await page.get_by_label("Nachname").fill("Mustermann")
    await page.get_by_label("E-Mail-Adresse").fill(email)
    if phone:
        await page.get_by_label("Telefonnummer").fill(phone)
    await page.get_by_label("Kundennummer", exact=False).first.fill(unique_customer_number())
    await shots.take(page, "5-details")
    await page.get_by_role("button", name="Termin verbindlich buchen").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")
    await shots.take(page, "6-confirmation")
    reference = (await page.locator(".reference").inner_text()).strip()
    assert reference
    await expect(page.locator(".documents li").first).to_be_visible()  # R10: documents to bring
    return reference


async def catalog_facts(stack: Stack, location: str, concern: str) -> tuple[dict[str, Any], list[str]]:
    """The location (name, street, postcode) and the concern's documents as the catalog publishes them."""
    async with aiohttp.ClientSession(base_url=stack.catalog_url) as http:
        async with http.get("/api/v1/locations") as response:
            [found] = [c for c in await response.json() if c["id"] == location]
        async with http.get(f"/api/v1/locations/{location}/concerns", params={"lang": "de"}) as response:
            [offer] = [c for c in await response.json() if c["id"] == concern]
    return found, offer["documents"]


def plain_text(message: StoredMessage) -> str:
    [part] = [p for p in message.leaf_parts() if p.get_content_type() == "text/plain"]
    return str(part.get_content())


async def expect_slots_name_their_day(page: Page) -> None:
    """A screen reader's list of buttons says the day of each time, not only "08:00 bis 09:00"."""
    day = (await page.locator("#slots-title").inner_text()).removeprefix("Freie Termine am ").strip()
    slot = page.locator("button.slot:not(.slot-evening)").last
    await expect(slot).to_have_accessible_name(re.compile(rf"^\d\d:\d\d bis \d\d:\d\d, {re.escape(day)}$"))


async def cancel_from_mail(page: Page, stack: Stack, shots: Shots, email: str) -> None:
    confirmation = (await stack.mail_to(email))[0]
    link = stack.manage_link(confirmation)
    assert link.startswith(stack.gateway_url + "/manage/")
    await page.goto(link)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin")
    await shots.take(page, "7-manage")
    await page.get_by_role("link", name="Termin absagen").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Termin absagen")
    await shots.take(page, "8-cancel-confirm")
    await page.get_by_role("button", name="Ja, Termin absagen").click()
    await expect(page.get_by_role("status")).to_contain_text("Ihr Termin wurde abgesagt.")
    # A screen reader says the result first: in the title, and where the focus lands.
    await expect(page).to_have_title(re.compile(r"^Termin abgesagt \u2013 Ihr Termin \u2013 "))
    await expect(page.get_by_role("status")).to_be_focused()
    await shots.take(page, "9-cancelled")
    await stack.mail_to(email, count=2)  # the cancellation mail (R9)


@pytest.mark.req("R1")
@pytest.mark.req("R2")
@pytest.mark.req("R7")
@pytest.mark.req("R10")
@pytest.mark.req("R41")
async def test_a_customer_books_in_person_on_a_desktop_reschedules_and_cancels_from_the_mail(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    shots = Shots("desktop-in-person")
    email = unique_email("desktop")
    reference = await book(page, stack, shots, concern="veraenderung", mode="in_person", email=email, day=0)
    await expect(page.locator("main")).to_contain_text("Persönlich am Standort")
    await expect(page.locator("main")).to_contain_text("Bitte bringen Sie mit")
    # R10: the printout keeps the appointment, the documents and how to cancel, without the page chrome.
    await page.emulate_media(media="print")
    await expect(page.locator(".site-header")).to_be_hidden()
    await expect(page.locator(".documents")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Wenn Sie den Termin nicht wahrnehmen können")
    await shots.take(page, "6a-confirmation-printed")
    await page.emulate_media(media="screen")

    confirmation = (await stack.mail_to(email))[0]
    assert reference in confirmation.raw_text
    # R7: the confirmation of the real booking names the location's address and what to bring, as the
    # catalog has them.
    mitte, documents = await catalog_facts(stack, "mitte", "veraenderung")
    text = plain_text(confirmation)
    assert mitte["name"] in text and mitte["street"] in text and mitte["postcode"] in text, text
    assert documents and all(document in text for document in documents), text
    await page.goto(stack.manage_link(confirmation))
    # R41: the manage page offers to print the appointment; the printout keeps the appointment and the
    # documents, without the page chrome and the buttons to change it.
    await expect(page.get_by_role("button", name="Seite drucken")).to_be_visible()
    await page.emulate_media(media="print")
    await expect(page.locator(".site-header")).to_be_hidden()
    await expect(page.locator(".actions")).to_be_hidden()
    await expect(page.get_by_role("button", name="Seite drucken")).to_be_hidden()
    await expect(page.locator(".summary.appointment")).to_contain_text(reference)
    await expect(page.locator(".documents")).to_be_visible()
    await shots.take(page, "7a-manage-printed")
    await page.emulate_media(media="screen")
    await page.get_by_role("link", name="Anderen Tag oder andere Uhrzeit wählen").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Neuen Tag und neue Uhrzeit wählen")
    await page.locator(".calendar td.has-slots a").nth(6).click()
    await expect_slots_name_their_day(page)
    await shots.take(page, "6b-reschedule")
    await page.locator("button.slot:not(.slot-evening)").last.click()
    # A chosen time is a question first (WCAG 3.3.4): the old time is given up for good by a move.
    await expect(page.get_by_role("heading", level=1)).to_have_text("Termin verlegen")
    await expect(page.locator("main")).to_contain_text("Ihr neuer Termin")
    await shots.take(page, "6c-reschedule-confirm")
    await page.get_by_role("button", name="Ja, Termin verlegen").click()
    await expect(page.get_by_role("status")).to_contain_text("Ihr Termin wurde verschoben.")
    await expect(page).to_have_title(re.compile(r"^Termin verschoben \u2013 Ihr Termin \u2013 "))
    await expect(page.get_by_role("status")).to_be_focused()
    await stack.mail_to(email, count=2)  # the mail about the new time

    await cancel_from_mail(page, stack, shots, email)
    await stack.mail_to(email, count=3)
    await context.close()


@pytest.mark.req("R1")
@pytest.mark.req("R2")
@pytest.mark.req("R41")
async def test_a_customer_books_by_phone_on_a_phone_and_cancels_from_the_mail(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, PHONE)
    page = await context.new_page()
    shots = Shots("phone-by-phone")
    email = unique_email("phone")
    await book(
        page, stack, shots, concern="veraenderung", mode="phone", email=email, phone="0421 123456", day=1
    )
    await expect(page.locator("main")).to_contain_text("0421 123456")  # we call this number
    # Nobody brings papers to a phone call: they are to be at hand when we call.
    await expect(page.locator("main")).to_contain_text("Bitte halten Sie für den Anruf bereit")
    await expect(page.locator("main")).not_to_contain_text("Bitte bringen Sie mit")
    # Nothing is wider than the phone's screen (works at 320-375 px without scrolling sideways).
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await cancel_from_mail(page, stack, shots, email)
    # The mail's link to move or cancel, opened again: no calendar for a cancelled appointment, no second
    # "do you really want to cancel", but the manage page saying that it is cancelled.
    link = stack.manage_link((await stack.mail_to(email))[0])
    for step in ("reschedule", "cancel"):
        await page.goto(link.replace("?", f"/{step}?", 1))
        await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin")
        await expect(page.locator("main")).to_contain_text("Dieser Termin wurde abgesagt.")
        await expect(page.locator(".calendar, button.slot")).to_have_count(0)
        # Which appointment it was, but no "we call you" for a call that will not come.
        await expect(page.locator("main dl.summary")).to_contain_text("Telefonisch")
        await expect(page.locator("main")).not_to_contain_text("Wir rufen Sie")
    await context.close()


@pytest.mark.req("R1")
@pytest.mark.req("R2")
async def test_a_customer_books_in_person_on_a_phone_and_by_phone_on_a_desktop(
    stack: Stack, browser: Browser
) -> None:
    for device, mode, name, day in (
        (PHONE, "in_person", "phone-in-person", 2),
        (DESKTOP, "phone", "desktop-by-phone", 3),
    ):
        context = await new_context(browser, device)
        page = await context.new_page()
        email = unique_email(name)
        await book(
            page,
            stack,
            Shots(name),
            concern="bescheid",
            mode=mode,
            email=email,
            phone="0421 654321" if mode == "phone" else None,
            day=day,
        )
        await stack.mail_to(email)
        await context.close()


async def tab_to(page: Page, selector: str, limit: int = 200) -> None:
    """Press Tab until the element matching `selector` has the focus (as a keyboard user would)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(
            "(s) => document.activeElement && document.activeElement.matches(s)", selector
        ):
            return
    raise AssertionError(f"could not reach {selector} with the Tab key")


@pytest.mark.req("R42")
@pytest.mark.req("R2")
async def test_a_customer_books_with_the_keyboard_only(stack: Stack, browser: Browser) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    shots = Shots("keyboard")
    email = unique_email("keyboard")
    await page.goto(stack.gateway_url + "/")
    # The first Tab reaches the skip link, which leads to the main content.
    await page.keyboard.press("Tab")
    await expect(page.locator(".skip-link")).to_be_focused()
    await shots.take(page, "0-skip-link")
    await page.keyboard.press("Enter")

    await tab_to(page, "input[name=location]")
    # Arrow keys move within the radio group; find Mitte.
    for _ in range(10):
        if await page.evaluate("document.activeElement.value") == "mitte":
            break
        await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Space")
    await tab_to(page, "button[type=submit]")
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Anliegen wählen")
    await tab_to(page, "input[name=concern]")
    for _ in range(40):
        if await page.evaluate("document.activeElement.value") == "veraenderung":
            break
        await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Space")
    # Nothing is checked where the concern has a choice (R11): Tab reaches the first way, Space takes it.
    await tab_to(page, "input[name=mode]")
    await page.keyboard.press("Space")
    await expect(page.locator("input[name=mode][value=in_person]")).to_be_checked()
    await tab_to(page, "form button[type=submit]")
    await shots.take(page, "2-concern")
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Tag und Uhrzeit wählen")
    for _ in range(5):  # the fifth day with free times, to keep out of the other scenarios' way
        await tab_to(page, ".calendar td.has-slots a")
    await page.keyboard.press("Enter")
    # The chosen day's times get the focus, so the next Tab reaches the first time.
    await expect(page.locator("#slots-title")).to_be_focused()
    await tab_to(page, "button.slot")
    await shots.take(page, "3-time-focused")
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Kontaktdaten")
    # Send the empty form first: the error summary gets the focus and links to the fields.
    await tab_to(page, "#details-form button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page.locator(".error-summary")).to_be_focused()
    await shots.take(page, "4-errors")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # the first error link jumps to its field
    await expect(page.locator("#field-first_name")).to_be_focused()
    await page.keyboard.type("Kai")
    await page.keyboard.press("Tab")
    await page.keyboard.type("Tastatur")
    await tab_to(page, "#field-email")
    await page.keyboard.type(email)
    await tab_to(page, "#field-customer_number")
    await page.keyboard.type(unique_customer_number())
    await tab_to(page, "#details-form button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")
    await expect(page.get_by_role("heading", level=1)).to_be_focused()
    await shots.take(page, "5-confirmation")
    await stack.mail_to(email)
    await context.close()


@pytest.mark.req("R12")
async def test_an_evening_slot_needs_the_self_declaration(stack: Stack, browser: Browser) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await to_the_calendar(page, stack, "bescheid")
    await expect(page.locator("#evening-notice")).to_contain_text("bis 18 Uhr")
    days = page.locator(".calendar td.has-slots a")
    for index in range(await days.count()):
        await days.nth(index).click()
        if await page.locator("button.slot-evening").count():
            break
    else:
        raise AssertionError("no day with evening slots in the demo data")
    await expect(page.locator("fieldset.evening legend")).to_have_text("Abendtermine (bis 18 Uhr)")
    await page.locator("button.slot-evening").first.click()
    await expect(page.locator(".error-summary")).to_be_focused()
    await expect(page.locator("#field-evening_declaration")).to_have_attribute("aria-invalid", "true")
    await Shots("evening").take(page, "1-declaration-missing")
    await page.get_by_label(re.compile("Ich bestätige")).check()
    await page.locator("button.slot-evening").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Kontaktdaten")
    await context.close()


@pytest.mark.req("R19")
async def test_the_calendar_reaches_the_last_day_that_booking_takes(stack: Stack, browser: Browser) -> None:
    """At 07:30 today's booking closed at 06:00, so the eight weeks of the calendar start tomorrow and end on
    the 56th day ahead (3 May 2027), the last day of the location's horizon, which the service centre can
    book too."""
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await to_the_calendar(page, stack, "veraenderung")
    last_day = page.locator(".calendar td.has-slots a").last
    assert "day=2027-05-03" in (await last_day.get_attribute("href") or "")
    await last_day.click()
    await expect(page.locator("#slots-title")).to_contain_text("3. Mai 2027")
    await expect(page.locator("button.slot").first).to_be_visible()
    await context.close()


@pytest.mark.req("R19")
async def test_before_six_the_calendar_offers_today_and_still_the_last_day_that_booking_takes(
    stack: Stack, browser: Browser
) -> None:
    """At 05:30 today's booking is still open until 06:00: the calendar starts today and reaches the 56th
    day ahead (3 May 2027) all the same, one day more than eight weeks."""
    before = stack.clock.now()
    stack.clock.set(datetime(2027, 3, 8, 5, 30, tzinfo=BERLIN))
    try:
        context = await new_context(browser, DESKTOP)
        page = await context.new_page()
        await to_the_calendar(page, stack, "veraenderung")
        days = page.locator(".calendar td.has-slots a")
        assert "day=2027-03-08" in (await days.first.get_attribute("href") or "")
        assert "day=2027-05-03" in (await days.last.get_attribute("href") or "")
        await days.last.click()
        await expect(page.locator("#slots-title")).to_contain_text("3. Mai 2027")
        await expect(page.locator("button.slot").first).to_be_visible()
        await context.close()
    finally:
        stack.clock.set(before)
