"""A phone appointment is a call, not a visit (R4, R10, R40, R41, R43): wherever the customer pages
show one (the last booking step, the confirmation and its printout, the manage and cancel pages, the
calendar file) they say that the jobcenter calls, name the location (which jobcenter), and give no street
address that reads like a place to go to. An appointment in person keeps its address everywhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from icalendar import Calendar
from playwright.async_api import Browser, expect

from tests.web.conftest import (
    DESKTOP,
    Stack,
    fill_in_and_book,
    new_context,
    to_the_calendar,
    unique_customer_number,
    unique_email,
)
from tests.web.test_web_booking_journeys import plain_text
from tests.web.test_web_reschedule import free_slots
from tests.web.test_web_security_and_bot_defence import gateway_client

pytestmark = pytest.mark.timeout(90)

STREET = "Doventorsteinweg 48-52"  # Mitte's address in the demo data
NAME = "Geschäftsstelle Mitte"


async def book_at(client: TestClient[Any, Any], start: str, mode: str, language: str) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/appointments",
        json={
            "location_id": "mitte",
            "concern_id": "veraenderung",
            "start": start,
            "mode": mode,
            "language": language,
            "customer": {
                "first_name": "Tele",
                "last_name": "Fon",
                "email": unique_email(f"call-{mode}"),
                "customer_number": unique_customer_number(),
                **({"phone": "0421 778899"} if mode == "phone" else {}),
            },
        },
    )
    assert answer.status == 201, await answer.text()
    found: dict[str, Any] = await answer.json()
    return found


async def page_text(client: TestClient[Any, Any], path: str, query: str, language: str) -> str:
    answer = await client.get(f"{path}?{query}&lang={language}")
    assert answer.status == 200, path
    return await answer.text()


async def calendar_location(client: TestClient[Any, Any], appointment: dict[str, Any]) -> str:
    token = urlsplit(appointment["manage_url"]).query.removeprefix("token=").split("&")[0]
    answer = await client.get(
        f"/api/v1/appointments/{appointment['id']}/invitation.ics", params={"token": token}
    )
    assert answer.status == 200
    [event] = Calendar.from_ical(await answer.read()).walk("VEVENT")
    return str(event["LOCATION"])


@pytest.mark.req("R4")
@pytest.mark.req("R40")
@pytest.mark.req("R41")
@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("language", "calls", "phone_location"),
    [
        ("de", "Telefonisch: Wir rufen Sie unter 0421 778899 an.", f"Telefontermin \u2013 {NAME}"),
        ("de-x-ls", "0421 778899", f"Termin am Telefon \u2013 {NAME}"),
        ("en", "0421 778899", f"Phone appointment \u2013 {NAME}"),
    ],
)
async def test_the_manage_and_cancel_pages_and_the_calendar_file_of_a_phone_appointment_give_no_street(
    stack: Stack, language: str, calls: str, phone_location: str
) -> None:
    client = await gateway_client(stack)
    try:
        index = {"de": -13, "de-x-ls": -14, "en": -15}[language]
        phone = await book_at(client, (await free_slots(client, "phone"))[index]["start"], "phone", language)
        in_person = await book_at(client, (await free_slots(client))[index]["start"], "in_person", language)
        for appointment, by_phone in ((phone, True), (in_person, False)):
            manage = urlsplit(appointment["manage_url"])
            for path in (manage.path, manage.path + "/cancel"):
                text = await page_text(client, path, manage.query, language)
                assert NAME in text, path  # which jobcenter it is stays
                if by_phone:
                    assert STREET not in text and "28195" not in text, (path, text)
                    assert calls in text, path
                else:
                    assert STREET in text, path  # in person: where to come, as before
        location = await calendar_location(client, phone)
        assert location == phone_location
        assert STREET not in location
        assert STREET in await calendar_location(client, in_person)
    finally:
        await client.close()


@pytest.mark.req("R4")
@pytest.mark.req("R7")
@pytest.mark.req("R10")
async def test_a_customer_booking_by_phone_reads_that_we_call_not_where_to_come_up_to_the_mail(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    email = unique_email("call-me")
    await to_the_calendar(page, stack, "veraenderung", "phone")
    await page.locator(".calendar td.has-slots a").nth(15).click()
    await page.locator("button.slot:not(.slot-evening)").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Kontaktdaten")
    # The summary of the last step: the location by its name, and that we call.
    summary = page.locator("main dl.summary")
    await expect(summary).to_contain_text(NAME)
    await expect(summary).to_contain_text("Telefonisch: Wir rufen Sie an")
    await expect(summary).not_to_contain_text(STREET)
    await fill_in_and_book(page, email, phone="0421 246810")

    main = page.locator("main")
    for media in ("screen", "print"):  # the confirmation and its printout (R10)
        await page.emulate_media(media=media)
        await expect(main).to_contain_text(NAME)
        await expect(main).to_contain_text("Wir rufen Sie unter 0421 246810 an")
        await expect(main).not_to_contain_text(STREET)
    await page.emulate_media(media="screen")

    [mail] = await stack.mail_to(email)
    text = plain_text(mail)
    assert NAME in text and "Wir rufen Sie" in text, text
    # The mail names the responsible location's address (R7) only with the words that no visit is
    # needed, in every part; the calendar invitation not at all (decoded: quoted-printable and base64).
    for part in mail.leaf_parts():
        content = part.get_payload(decode=True)
        assert isinstance(content, bytes)
        if part.get_content_type() == "text/calendar":
            assert STREET.encode() not in content
        elif STREET.encode() in content:
            assert "Ein Besuch ist nicht nötig".encode() in content, part.get_content_type()
    assert "0421" not in mail.subject
    await context.close()
