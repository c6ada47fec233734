"""What the customer's pages say about an appointment after it changed: the confirmation page opened again
(Back, reload, a bookmark) after the appointment was cancelled, and the cancel page, which asks one
question and gives no instructions for an appointment the customer is about to give up, a second "Yes,
cancel" that promises no second mail, and the manage link of a cancelled or past appointment, which still
says which appointment it was (R9, R10, R41)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from services.booking.db import pass_started
from tests.web.conftest import (
    DESKTOP,
    Stack,
    book_on_the_pages,
    new_context,
    unique_customer_number,
    unique_email,
)
from tests.web.test_web_security_and_bot_defence import gateway_client

pytestmark = pytest.mark.timeout(90)


@pytest.mark.req("R10")
@pytest.mark.req("R41")
async def test_the_confirmation_opened_again_after_a_cancellation_does_not_say_booked(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await book_on_the_pages(page, stack, unique_email("again"), day=11)
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


WHICH = re.compile(r"^(Datum|Uhrzeit|Anliegen|Standort|Buchungsnummer)$")


async def booked_through_the_api(stack: Stack, email: str, *, skip: int) -> dict[str, Any]:
    """An appointment booked through the gateway's public API (as an app or the service centre would);
    `skip` free slots are left for the other tests."""
    client = await gateway_client(stack)
    try:
        answer = await client.get(
            "/api/v1/locations/mitte/availability", params={"concern": "veraenderung", "mode": "in_person"}
        )
        slots = (await answer.json())["slots"]
        for slot in slots[skip:]:
            booked = await client.post(
                "/api/v1/appointments",
                json={
                    "location_id": "mitte",
                    "concern_id": "veraenderung",
                    "start": slot["start"],
                    "mode": "in_person",
                    "customer": {
                        "first_name": "Erika",
                        "last_name": "Mustermann",
                        "email": email,
                        "customer_number": unique_customer_number(),
                    },
                },
            )
            if booked.status == 201:
                appointment: dict[str, Any] = await booked.json()
                return appointment
        raise AssertionError("no free slot to book")
    finally:
        await client.close()


def manage_link(stack: Stack, appointment: dict[str, Any]) -> str:
    link = urlsplit(appointment["manage_url"])
    return f"{stack.gateway_url}{link.path}?{link.query}"


async def to_the_cancel_question(page: Page, link: str) -> None:
    await page.goto(link)
    await page.get_by_role("link", name="Termin absagen").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Termin absagen")


@pytest.mark.req("R9")
@pytest.mark.req("R41")
async def test_a_second_yes_cancel_says_the_appointment_was_already_cancelled_and_promises_no_mail(
    stack: Stack, browser: Browser
) -> None:
    """The cancel question open in two tabs (or "Yes, cancel" pressed twice): booking cancels once and sends
    one mail; the second answer must not say "You will get an e-mail"."""
    email = unique_email("twice")
    link = manage_link(stack, await booked_through_the_api(stack, email, skip=20))
    context = await new_context(browser, DESKTOP)
    first, second = await context.new_page(), await context.new_page()
    await to_the_cancel_question(first, link)
    await to_the_cancel_question(second, link)

    await first.get_by_role("button", name="Ja, Termin absagen").click()
    await expect(first.get_by_role("status")).to_have_text(
        "Ihr Termin wurde abgesagt. Sie erhalten eine E-Mail."
    )

    await second.get_by_role("button", name="Ja, Termin absagen").click()
    status = second.get_by_role("status")
    await expect(status).to_contain_text("Dieser Termin war bereits abgesagt.")
    await expect(status).to_contain_text("Eine weitere E-Mail erhalten Sie nicht.")
    await expect(status).not_to_contain_text("Sie erhalten eine E-Mail.")
    await expect(status).to_be_focused()
    await expect(second).to_have_title(re.compile(r"^Termin bereits abgesagt \u2013 Ihr Termin \u2013 "))
    await expect(second.locator("main")).to_contain_text("Dieser Termin wurde abgesagt.")
    mails = await stack.mail_to(email, count=2)  # the confirmation and the one cancellation mail
    assert [m.subject.split(":")[0] for m in mails] == ["Terminbestätigung", "Absage"]
    await context.close()


@pytest.mark.req("R41")
async def test_the_manage_link_of_a_cancelled_or_past_appointment_still_says_which_appointment_it_was(
    stack: Stack, browser: Browser, pools: dict[str, asyncpg.Pool]
) -> None:
    """A customer with two mails opens an old link: the page says the appointment was cancelled (or is over)
    and which one it was, date, time, concern and place, with nothing to bring and nothing to change.
    The address bar holds the appointment's id and token only, no personal data."""
    email = unique_email("which")
    appointment = await booked_through_the_api(stack, email, skip=24)
    link = manage_link(stack, appointment)
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await page.goto(link)
    summary = page.locator("main dl.summary")
    # Which appointment: the rows that tell it apart from another one (not the type's "we call you").
    which = summary.locator("div").filter(has=page.locator("dt").filter(has_text=WHICH))
    booked = await which.all_text_contents()
    assert (
        len(booked) == 5 and appointment["reference"] in booked[-1] and "Doventorsteinweg 48-52" in booked[3]
    )

    await page.get_by_role("link", name="Termin absagen").click()
    await page.get_by_role("button", name="Ja, Termin absagen").click()
    await expect(page.get_by_role("status")).to_contain_text("Ihr Termin wurde abgesagt.")
    for opened in (link, page.url):  # the old mail's link, and the page after the cancellation reloaded
        await page.goto(opened)
        await expect(page.locator("main .status")).to_have_text("Dieser Termin wurde abgesagt.")
        await expect(which).to_have_text(booked)
        await expect(page.locator("main")).not_to_contain_text("Bitte bringen Sie mit")
        await expect(page.get_by_role("link", name="Termin absagen")).to_have_count(0)
        await expect(page.get_by_role("link", name="Neuen Termin buchen")).to_be_visible()
        assert set(parse_qs(urlsplit(page.url).query)) <= {"token", "done", "lang"}
        assert "erika" not in page.url.lower() and "mustermann" not in page.url.lower()

    other = await booked_through_the_api(stack, unique_email("over"), skip=0)
    before = stack.clock.now()
    try:
        stack.clock.set(datetime.fromisoformat(other["end"]) + timedelta(minutes=1))
        async with pools["booking"].acquire() as conn:  # what booking's passing job does
            await pass_started(conn, stack.clock.now(), 1000)
        await page.goto(manage_link(stack, other))
        await expect(page.locator("main .status")).to_have_text("Dieser Termin hat bereits stattgefunden.")
        await expect(summary).to_contain_text(other["reference"])
        await expect(summary).to_contain_text("Doventorsteinweg 48-52")
        await expect(page.locator("main")).not_to_contain_text("Bitte bringen Sie mit")
        await expect(page.get_by_role("link", name="Termin absagen")).to_have_count(0)
    finally:
        stack.clock.set(before)
    await context.close()


@pytest.mark.req("R9")
@pytest.mark.req("R41")
async def test_a_cancellation_confirmed_after_the_start_offers_no_second_yes_cancel(
    stack: Stack, browser: Browser
) -> None:
    """The cancel question left open until the appointment began: the answer says why it did not work and
    leads to the appointment, instead of asking "Do you really want to cancel?" again with a button that
    cannot work any more."""
    appointment = await booked_through_the_api(stack, unique_email("late-cancel"), skip=32)
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await to_the_cancel_question(page, manage_link(stack, appointment))
    before = stack.clock.now()
    try:
        stack.clock.set(datetime.fromisoformat(appointment["start"]) + timedelta(minutes=5))
        await page.get_by_role("button", name="Ja, Termin absagen").click()
        await expect(page.locator(".error-summary")).to_contain_text(
            "Der Termin kann nicht mehr online abgesagt werden, weil er schon begonnen hat oder vorbei ist."
        )
        await expect(page.get_by_role("button", name="Ja, Termin absagen")).to_have_count(0)
        await expect(page.locator("main")).not_to_contain_text("Möchten Sie diesen Termin wirklich absagen?")
        await page.get_by_role("link", name="Ihr Termin", exact=True).click()
        await expect(page.locator("main .status")).to_have_text(
            "Der Termin hat begonnen. Er kann nicht mehr online geändert werden."
        )
    finally:
        stack.clock.set(before)
    await context.close()
