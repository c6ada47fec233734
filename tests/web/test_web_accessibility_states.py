"""WCAG 2.1 AA in the states the happy path does not reach (R42, R43): the proof-of-work check of the bot
defence while it runs and when it is done, with reduced motion; hover and focus colours in the calendar; a
time taken by someone else while the customer typed (409); a dialogue left open for more than a day. axe
runs in each state."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]  # ships no types
from playwright.async_api import Browser, Page, expect

from services.gateway.web.pages import SEALER
from services.gateway.web.security import Sealer
from tests.web.conftest import (
    DESKTOP,
    Stack,
    new_context,
    to_the_calendar,
    unique_customer_number,
    unique_email,
)
from tests.web.test_web_accessibility import NARROW, check
from tests.web.test_web_security_and_bot_defence import csrf_of, gateway_client

pytestmark = pytest.mark.timeout(150)

# Every text the page's status region of the check takes, in order (a screen reader says each of them).
RECORD_STATUS = """
window.otvSaid = [];
new MutationObserver(() => {
  const region = document.getElementById("altcha-status");
  const text = region ? region.textContent : "";
  if (text && text !== window.otvSaid[window.otvSaid.length - 1]) { window.otvSaid.push(text); }
}).observe(document, { childList: true, subtree: true, characterData: true });
"""


async def ticked_box_transition(page: Page) -> str:
    """How long the widget's ticked box takes to appear (its `::before` grows and fades)."""
    duration = await page.evaluate(
        "getComputedStyle(document.querySelector('.altcha-checkbox input'), '::before').transitionDuration"
    )
    return str(duration)


@pytest.mark.req("R42")
@pytest.mark.req("R39")
async def test_the_proof_of_work_check_tells_a_screen_reader_that_it_runs_and_that_it_is_done(
    stack: Stack, browser: Browser
) -> None:
    """The widget shows "Checking …" and then a tick, but announces neither (WCAG 4.1.3): the page's own
    status region says both. With reduced motion the tick appears without its animation, at 320 px."""
    client = await gateway_client(
        stack, bot_defence=True, bot_availability_soft=0, bot_booking_soft=0, bot_challenge_cost=1000
    )
    context = await new_context(browser, NARROW, reduced_motion="reduce")
    await context.add_init_script(RECORD_STATUS)
    page = await context.new_page()
    axe, found = Axe(), dict[str, list[str]]()
    try:
        # Abnormal traffic before the calendar: the check page, in English.
        state = client.app[SEALER].seal({"loc": "mitte", "concern": "geburt", "mode": "in_person"})
        await page.goto(f"{client.make_url('/time')}?s={state}&lang=en")
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Please confirm that you are a person"
        )
        status = page.locator("#altcha-status")
        await expect(status).to_have_attribute("role", "status")
        await expect(status).to_have_text("The check is finished. You can go on now.", timeout=30_000)
        assert await page.evaluate("window.otvSaid") == [
            "Checking … please wait.",
            "The check is finished. You can go on now.",
        ]
        assert await ticked_box_transition(page) == "0s"
        await check(page, axe, "check page, done", found)

        # The contact form with the check, in Leichte Sprache.
        async with aiohttp.ClientSession(base_url=stack.gateway_url) as http:  # no check here
            params = {"concern": "geburt", "mode": "in_person"}
            async with http.get("/api/v1/locations/mitte/availability", params=params) as answer:
                slot = (await answer.json())["slots"][-1]
        state = client.app[SEALER].seal(
            {
                "loc": "mitte",
                "concern": "geburt",
                "mode": "in_person",
                "start": slot["start"],
                "end": slot["end"],
            }
        )
        await page.goto(f"{client.make_url('/details')}?s={state}&lang=de-x-ls")
        await expect(page.locator("#altcha-status")).to_have_text(
            "Die Prüfung ist fertig. Sie können jetzt weiter·machen.", timeout=30_000
        )
        assert await page.evaluate("window.otvSaid") == [
            "Wir prüfen. Bitte warten Sie.",
            "Die Prüfung ist fertig. Sie können jetzt weiter·machen.",
        ]
        assert await ticked_box_transition(page) == "0s"
        await check(page, axe, "contact details with the check, done", found)
    finally:
        await context.close()
        await client.close()
    assert not found, found


async def contrast_problems(page: Page, selector: str) -> list[str]:
    """axe's colour contrast of one element as it is drawn now (hovered, focused)."""
    results = await Axe().run(
        page,
        context={"include": [[selector]]},
        options={"runOnly": {"type": "rule", "values": ["color-contrast"]}},
    )
    return [str(node["target"]) for rule in results.response["violations"] for node in rule["nodes"]]


async def take_every_place(stack: Stack, start: str) -> None:
    """Other customers book every place of the time (by phone, at Mitte) through the API."""
    async with aiohttp.ClientSession(base_url=stack.gateway_url) as http:
        for _ in range(30):
            body: dict[str, Any] = {
                "location_id": "mitte",
                "concern_id": "kontaktdaten",
                "start": start,
                "mode": "phone",
                "customer": {
                    "first_name": "Schnell",
                    "last_name": "Anders",
                    "email": unique_email("taken"),
                    "phone": "0421 123456",
                    "customer_number": unique_customer_number(),
                },
            }
            async with http.post("/api/v1/appointments", json=body) as answer:
                if answer.status == 409:
                    return
                assert answer.status == 201, await answer.text()
    raise AssertionError("the time still has places after 30 bookings")


@pytest.mark.req("R42")
@pytest.mark.req("R38")
async def test_the_chosen_day_keeps_its_contrast_hovered_and_a_time_taken_meanwhile_is_not_offered_again(
    stack: Stack, browser: Browser
) -> None:
    """The chosen day hovered had white text on light blue (WCAG 1.4.3). When the hold ran out and others took
    the time while the customer typed, the form said "Choose another time" and, below it, still offered to
    hold the time again (a button that could only fail)."""
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    axe, found = Axe(), dict[str, list[str]]()
    await to_the_calendar(page, stack, "kontaktdaten", "phone")
    await page.locator(".calendar td.has-slots a").nth(9).click()
    await expect(page.locator("#slots-title")).to_be_focused()
    badly_drawn: dict[str, list[str]] = {}
    for selector in (
        ".calendar td.chosen a",
        ".calendar td.has-slots:not(.chosen) a",
        "button.slot",
        "a.back-link",
        ".waiting-offer a.button",
        ".languages a",
    ):
        element = page.locator(selector).first
        await element.hover()
        if problems := await contrast_problems(page, selector):
            badly_drawn[f"{selector} hovered"] = problems
        await element.focus()
        if problems := await contrast_problems(page, selector):
            badly_drawn[f"{selector} hovered and focused"] = problems
    await page.mouse.move(0, 0)
    assert not badly_drawn, badly_drawn

    slot = page.locator("button.slot").first
    start = await slot.get_attribute("value")
    assert start
    await slot.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Kontaktdaten")
    stack.clock.advance(timedelta(minutes=6))  # the hold has run out ...
    try:
        await take_every_place(stack, start)  # ... and others booked the time
        await page.locator("#field-first_name").fill("Zu")
        await page.locator("#field-last_name").fill("Spät")
        await page.locator("#field-email").fill(unique_email("too-late"))
        await page.locator("#field-phone").fill("0421 987654")
        await page.locator("#field-customer_number").fill(unique_customer_number())
        await page.locator("#details-form button[type=submit]").click()
        await expect(page.locator(".error-summary")).to_be_focused()
        await expect(page.locator(".error-summary")).to_contain_text("Dieser Termin ist nicht mehr frei.")
        assert (await page.title()).startswith("Fehler: ")
        await expect(page.locator("main a.button", has_text="Andere Uhrzeit wählen")).to_be_visible()
        await expect(page.get_by_role("button", name="Termin erneut freihalten")).to_have_count(0)
        await expect(page.locator("main")).not_to_contain_text(re.compile("erneut|freihalten"))
        await expect(page.locator("[aria-live]")).to_have_count(0)  # no countdown that speaks up later
        await check(page, axe, "contact details, time taken meanwhile", found)
    finally:
        stack.clock.advance(timedelta(minutes=-6))
    await context.close()
    assert not found, found


@pytest.mark.req("R42")
@pytest.mark.req("R43")
async def test_a_dialogue_left_open_for_more_than_a_day_says_so_on_the_start_page(
    stack: Stack, browser: Browser
) -> None:
    """The dialogue's state in the address lives a day. A tab opened again the next day went to the start page
    without a word; now the start page says why, takes the focus there and names it in the title."""
    day_old = Sealer(stack.gateway_settings().web_secret, now=lambda: time.time() - 25 * 3600)
    state = {"loc": "mitte", "concern": "geburt", "mode": "in_person"}
    context = await new_context(browser, NARROW)
    page = await context.new_page()
    axe, found = Axe(), dict[str, list[str]]()
    for language, said in (
        ("de", "Ihre Buchung wurde nicht abgeschlossen"),
        ("de-x-ls", "Ihre Buchung ist nicht fertig"),
        ("en", "Your booking was not finished"),
    ):
        await page.goto(f"{stack.gateway_url}/time?s={day_old.seal(state)}&lang={language}")
        await expect(page.locator("#ended")).to_be_focused()
        await expect(page.locator("#ended h2")).to_have_text(said)
        assert (await page.title()).startswith(f"{said} \N{EN DASH} ")
        await expect(page.locator("html")).to_have_attribute("lang", language)
        await expect(page.locator("input[name=location]").first).to_be_visible()  # start again right here
        await check(page, axe, f"start page after the dialogue ran out ({language})", found)
    # A state that is not ours (changed, cut short) is no dialogue that ran out: the plain start page.
    await page.goto(f"{stack.gateway_url}/time?s={day_old.seal(state)[:-8]}")
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await expect(page.locator("#ended")).to_have_count(0)
    await context.close()

    # The contact form sent after a day: nothing is booked, and the start page says why.
    client = await gateway_client(stack)
    try:
        token = csrf_of(await (await client.get("/")).text())
        sent = await client.post(
            "/details",
            params={"s": day_old.seal({**state, "start": "2027-03-10T09:00:00+01:00"}), "lang": "en"},
            data={"csrf_token": token, "first_name": "Spät", "last_name": "Dran"},
            allow_redirects=False,
        )
        assert sent.status == 303
        assert sent.headers["Location"] == "/?ended=1&lang=en"
    finally:
        await client.close()
    assert not found, found
