"""A customer who lost the confirmation mail gets a new manage link through the pages (R41), in a real
browser: from the start page, with the address in any case; the page tells the same for any address, the
mail brings a new link, and the old link says it is no longer valid and leads back to the form."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from icalendar import Calendar
from playwright.async_api import Browser, expect

from tests.web.conftest import DESKTOP, Shots, Stack, new_context, unique_email
from tests.web.test_web_booking_journeys import book

pytestmark = pytest.mark.timeout(90)


@pytest.mark.req("R41")
async def test_a_customer_who_lost_the_mail_gets_a_new_link_and_the_old_one_stops_working(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    shots = Shots("manage-link-again")
    email = unique_email("lost-mail")
    await book(page, stack, shots, concern="veraenderung", mode="in_person", email=email, day=4)
    old_link = stack.manage_link((await stack.mail_to(email))[0])

    await page.goto(stack.gateway_url + "/")
    await page.get_by_role("link", name="Termin ansehen, verschieben oder absagen").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Link zum Termin anfordern")
    # A typing mistake is named at the field, in the error summary.
    await page.get_by_label("E-Mail-Adresse").fill("lost-mail.example.org")
    await page.get_by_role("button", name="Link zusenden").click()
    await expect(page.locator(".error-summary")).to_contain_text("E-Mail-Adresse in der richtigen Form")
    await expect(page.get_by_label("E-Mail-Adresse")).to_have_attribute("aria-invalid", "true")
    await shots.take(page, "1-form-with-error")

    await page.get_by_label("E-Mail-Adresse").fill(email.upper())
    await page.get_by_role("button", name="Link zusenden").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Bitte sehen Sie in Ihr E-Mail-Postfach")
    await expect(page.locator("main")).to_contain_text("Links aus früheren E-Mails gelten nicht mehr.")
    assert email.split("@")[0] not in page.url.lower()  # the address never goes into an address bar
    await shots.take(page, "2-sent")

    _, mail = await stack.mail_to(email, count=2)
    assert mail.subject.startswith("Ihr neuer Link zum Termin im Jobcenter Bremen")
    new_link = stack.manage_link(mail)
    assert new_link != old_link

    await page.goto(old_link)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dieser Link ist nicht gültig")
    await page.get_by_role("link", name="Neuen Link zum Termin anfordern").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Link zum Termin anfordern")

    await page.goto(new_link)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin")
    await expect(page.locator("main")).to_contain_text("Termin absagen")
    # The calendar file from the page carries the new link too, under the UID of the mails' invitations.
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Termin in den eigenen Kalender übernehmen (ics-Datei)").click()
    download = await download_info.value
    assert download.suggested_filename == "termin.ics"
    calendar = Calendar.from_ical(await asyncio.to_thread(Path(await download.path()).read_bytes))
    [event] = calendar.walk("VEVENT")
    assert str(calendar["METHOD"]) == "PUBLISH" and str(event["URL"]) == new_link

    # The same answer for an address that booked nothing: the page gives nobody away.
    await page.goto(stack.gateway_url + "/manage")
    await page.get_by_label("E-Mail-Adresse").fill(unique_email("never-booked"))
    await page.get_by_role("button", name="Link zusenden").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Bitte sehen Sie in Ihr E-Mail-Postfach")
    await context.close()
