"""A customer who lost the confirmation mail gets a new manage link through the pages (R41), in a real
browser: from the start page, with the address in any case; the page tells the same for any address, the
mail brings a new link, and the old link says it is no longer valid and leads back to the form."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from icalendar import Calendar
from playwright.async_api import Browser, expect

from services.booking.db import pass_started
from tests.web.conftest import DESKTOP, Shots, Stack, new_context, unique_customer_number, unique_email
from tests.web.test_web_booking_journeys import book
from tests.web.test_web_security_and_bot_defence import gateway_client

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


@pytest.mark.req("R41")
async def test_the_manage_page_confirms_an_accepted_offer_and_shows_where_and_when_until_the_end(
    stack: Stack, pools: dict[str, asyncpg.Pool]
) -> None:
    """Booking marks an appointment "passed" when it starts. A customer who is late and opens the link from
    the reminder still needs the address and the time, and a phone customer waiting for the call too."""
    client = await gateway_client(stack)
    before = stack.clock.now()
    try:
        answer = await client.get(
            "/api/v1/locations/mitte/availability", params={"concern": "veraenderung", "mode": "in_person"}
        )
        slot = (await answer.json())["slots"][0]
        booked = await client.post(
            "/api/v1/appointments",
            json={
                "location_id": "mitte",
                "concern_id": "veraenderung",
                "start": slot["start"],
                "mode": "in_person",
                "customer": {
                    "first_name": "Spät",
                    "last_name": "Dran",
                    "email": unique_email("late"),
                    "customer_number": unique_customer_number(),
                },
            },
        )
        assert booked.status == 201, await booked.text()
        appointment = await booked.json()
        manage = urlsplit(appointment["manage_url"])
        start = datetime.fromisoformat(appointment["start"])
        end = datetime.fromisoformat(appointment["end"])

        # Where an accepted waiting-list offer leads: the booked appointment, with word that it worked.
        accepted = await (await client.get(f"{manage.path}?{manage.query}&done=booked")).text()
        assert "Sie haben den angebotenen Termin gebucht." in accepted and "Termin absagen" in accepted

        stack.clock.set(start + timedelta(minutes=5))
        async with pools["booking"].acquire() as conn:  # what booking's passing job does at this moment
            passed = await pass_started(conn, stack.clock.now(), 1000)
        assert appointment["id"] in {str(a.id) for a in passed}
        started = await (await client.get(f"{manage.path}?{manage.query}")).text()
        assert "Der Termin hat begonnen. Er kann nicht mehr online geändert werden." in started
        assert "Doventorsteinweg 48-52" in started  # where to go, and when
        assert start.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") in started
        assert "Termin absagen" not in started and "bereits stattgefunden" not in started

        stack.clock.set(end + timedelta(minutes=1))
        over = await (await client.get(f"{manage.path}?{manage.query}")).text()
        assert "Dieser Termin hat bereits stattgefunden." in over
        assert "Doventorsteinweg 48-52" in over  # which appointment it was, with nothing left to do
        assert "Termin absagen" not in over and "Bitte bringen Sie mit" not in over
    finally:
        stack.clock.set(before)
        await client.close()
