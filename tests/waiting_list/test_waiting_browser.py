"""R45, R43 in the browser: joining the waiting list, the double opt-in from the mail, the withdraw link
and an expired link, in German and in English (Debian's Chromium through Playwright).

The stack is the customer pages' test stack (tests/web/conftest.py: real catalog with the demo data,
booking, notifier and gateway in-process, the mail sink), started for this module only, so that its
matcher job and its notifier never meet the other waiting-list tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]  # ships no types
from babel.dates import format_date
from playwright.async_api import Browser, Page

from services.booking.app import create_app as create_booking
from services.booking.config import Settings as BookingSettings
from services.catalog.app import create_app as create_catalog
from services.catalog.config import Settings as CatalogSettings
from services.catalog.demo import load_demo
from services.gateway.app import create_app as create_gateway
from services.gateway.web.security import Sealer
from services.notifier.app import create_app as create_notifier
from services.notifier.config import Settings as NotifierSettings
from shared.clock import BERLIN, ManualClock
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from tests.browser import chromium_browser
from tests.conftest import empty_schemas, free_port, svc_settings, wait_for
from tests.waiting_list.conftest import LINK, text_of
from tests.web.conftest import (
    DESKTOP,
    NOW,
    Shots,
    Stack,
    _serve,
    new_context,
    unique_customer_number,
    unique_email,
)
from tests.web.test_web_accessibility import check
from tools.mailsink import MailSink, StoredMessage


@pytest.fixture(scope="module")
async def web_stack(pools: dict[str, asyncpg.Pool], amqp: Any) -> AsyncIterator[Stack]:
    await empty_schemas(pools)
    clock = ManualClock(NOW)
    sink = MailSink(smtp_port=0, http_port=0)
    await sink.start()
    ports = {name: free_port() for name in ("gateway", "catalog", "booking", "notifier")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    apps = [
        (create_catalog(svc_settings(CatalogSettings, port=ports["catalog"]), clock=clock), ports["catalog"]),  # type: ignore[arg-type]
        (
            create_booking(
                svc_settings(  # type: ignore[arg-type]
                    BookingSettings,
                    port=ports["booking"],
                    public_base_url=urls["gateway"],
                    db_pool_max=6,
                    waiting_match_interval_seconds=1,  # an offer follows a freed slot within a second
                ),
                clock=clock,
            ),
            ports["booking"],
        ),
        (
            create_notifier(
                svc_settings(  # type: ignore[arg-type]
                    NotifierSettings,
                    port=ports["notifier"],
                    smtp_host=sink.smtp_host,
                    smtp_port=sink.smtp_port,
                    public_base_url=urls["gateway"],
                    mail_poll_seconds=0.2,
                    db_pool_max=4,
                ),
                clock=clock,
            ),
            ports["notifier"],
        ),
    ]
    runners = [await _serve(app, port) for app, port in apps]
    stack = Stack(urls["gateway"], urls["catalog"], urls["booking"], sink, clock)
    runners.append(
        await _serve(
            create_gateway(stack.gateway_settings(port=ports["gateway"]), clock=clock), ports["gateway"]
        )
    )
    await load_demo(pools["catalog"], clock)
    async with aiohttp.ClientSession(base_url=urls["gateway"]) as http:

        async def bookable() -> bool:
            async with http.get(
                "/api/v1/locations/mitte/availability", params={"concern": "veraenderung", "mode": "phone"}
            ) as response:
                return response.status == 200 and bool((await response.json())["slots"])

        await wait_for(bookable, timeout=30, what="the booking service to know the demo locations")
    yield stack
    for runner in reversed(runners):
        await runner.cleanup()
    await sink.stop()


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    async for launched in chromium_browser():
        yield launched


def links(message: StoredMessage) -> dict[str, str]:
    """The waiting-list links of a mail by action ('' for the wish's page)."""
    found: dict[str, str] = {}
    for match in LINK.finditer(text_of(message)):
        found.setdefault((match.group(2) or "").strip("/"), match.group(0))
    return found


TEXTS = {
    "de": {
        "join": "Auf die Warteliste",
        "check_mail": "Bitte bestätigen Sie Ihre E-Mail-Adresse",
        "confirm": "Eintrag auf der Warteliste bestätigen",
        "confirmed": "Ihre E-Mail-Adresse ist bestätigt",
        "leave": "Von der Warteliste abmelden",
        "leave_question": "Von der Warteliste austragen?",
        "yes_leave": "Ja, austragen",
        "no_stay": "Nein, auf der Warteliste bleiben",
        "held": "Ein Termin wird für Sie gehalten",
        "afternoons": "Nachmittags (ab 12:00 Uhr)",
        "free_title": "Freie Termine gefunden",
        "place": "Ihr Eintrag auf der Warteliste",
        "left": "Sie haben sich von der Warteliste abgemeldet",
        "expired": "Dieser Link ist abgelaufen",
        "free_now": "Passende Termine sind gerade frei",
        "no_times": "An den gewählten Tagen und zu den gewählten Zeiten gibt es für dieses Anliegen bis zum",
        "thursday": "Donnerstag",
        "monday": "Montag",
    },
    "en": {
        "join": "Join the waiting list",
        "check_mail": "Please confirm your e-mail address",
        "confirm": "Confirm my place on the waiting list",
        "confirmed": "Your e-mail address is confirmed",
        "leave": "Leave the waiting list",
        "leave_question": "Leave the waiting list?",
        "yes_leave": "Yes, leave the waiting list",
        "no_stay": "No, stay on the waiting list",
        "held": "An appointment is held for you",
        "afternoons": "Afternoons (from 12:00)",
        "free_title": "Free appointments found",
        "place": "Your place on the waiting list",
        "left": "You have left the waiting list",
        "expired": "This link has expired",
        "free_now": "Appointments that suit you are free right now",
        "no_times": "there are no appointments for this concern until the day you gave",
        "thursday": "Thursday",
        "monday": "Monday",
    },
}


THURSDAY = "2027-03-11"  # of the stack's week (tests/web/conftest.py: NOW is Monday 8 March 2027)
# The appointments that fill Thursday afternoon (a test cancels one to free a slot for an offer).
THURSDAY_BOOKED: list[dict[str, Any]] = []


def deadline(stack: Stack, language: str) -> str:
    """Until when the opt-in link of a wish registered now works, as the pages write it: 48 hours (the
    wishes' latest day, Thursday, is later)."""
    until = (stack.clock.now() + timedelta(hours=48)).astimezone(BERLIN)
    locale = "en_GB" if language == "en" else "de_DE"
    written = f"{format_date(until.date(), format='full', locale=locale)}, {until:%H:%M}"
    return written if language == "en" else f"{written} Uhr"


async def fill_thursday_afternoon(stack: Stack) -> None:
    """Book every place of a new application on Thursday afternoon at Mitte (14:00 and 15:00, three
    service points; the evening after 16:00 is for people in work): a wish for it waits."""
    async with aiohttp.ClientSession(base_url=stack.gateway_url) as http:
        for start in (f"{THURSDAY}T14:00:00+01:00", f"{THURSDAY}T15:00:00+01:00"):
            for _ in range(3):
                customer = {
                    "first_name": "Erika",
                    "last_name": "Beispiel",
                    "email": unique_email("thursday"),
                    "customer_number": unique_customer_number(),
                }
                body = {
                    "location_id": "mitte",
                    "concern_id": "neuantrag",
                    "start": start,
                    "mode": "in_person",
                    "customer": customer,
                }
                async with http.post("/api/v1/appointments", json=body) as response:
                    assert response.status in (201, 409), await response.text()  # 409: filled before
                    if response.status == 201:
                        THURSDAY_BOOKED.append(await response.json())


async def join(page: Page, stack: Stack, language: str, email: str) -> None:
    await fill_thursday_afternoon(stack)
    state = Sealer(stack.gateway_settings().web_secret).seal(
        {"loc": "mitte", "concern": "neuantrag", "mode": "in_person"}
    )
    query = f"s={state}" + ("" if language == "de" else f"&lang={language}")
    await page.goto(f"{stack.gateway_url}/waiting-list/join?{query}")
    texts = TEXTS[language]
    await page.get_by_role("heading", name=texts["join"], level=1).wait_for()
    axe, found = Axe(), dict[str, list[str]]()
    await check(page, axe, "join", found)
    # One of the two numbers is needed: the group says so, and neither is marked "(optional)".
    assert await page.locator("fieldset.numbers").get_attribute("aria-describedby") == "numbers-hint"
    await page.locator("#numbers-hint").wait_for()
    for number in ("customer_number", "household_number"):
        assert "(optional)" not in await page.locator(f"label[for=field-{number}]").inner_text()
    await page.locator("#field-first_name").fill("Erika")
    await page.locator("#field-last_name").fill("Mustermann")
    await page.locator("#field-email").fill(email)
    await page.locator("#field-customer_number").fill(unique_customer_number())
    await page.get_by_role("button", name=texts["join"]).click()
    # Monday to Friday, as the form suggests: free appointments suit, so there is nothing to wait for;
    # the page names the first ones, each a link to its day, and keeps what was typed. The title says
    # so and the notice takes the focus, so that a screen reader tells it (WCAG 4.1.3).
    notice = page.locator("#free-now")
    await notice.get_by_role("heading", name=texts["free_now"]).wait_for()
    assert (await page.title()).startswith(texts["free_title"] + " \u2013 ")
    assert await page.evaluate("document.activeElement.id") == "free-now"
    assert await notice.get_by_role("link").count() == 3
    first_day = await notice.get_by_role("link").first.get_attribute("href")
    assert first_day and first_day.startswith("/time?") and "day=" in first_day
    label = await notice.get_by_role("link").first.inner_text()
    assert re.search(r", \d\d:\d\d Uhr$" if language == "de" else r", \d\d:\d\d$", label), label
    assert await page.locator("#field-email").input_value() == email
    await check(page, axe, "join, appointments free", found)
    # The page offers only the days on which Mitte has appointments of this concern: no Saturday.
    assert await page.locator("input[name=weekdays]").count() == 5
    assert await page.locator("#weekday-5").count() == 0
    # Monday afternoons: a wish Mitte could never meet; the page says on which days it has appointments
    # of this concern in the afternoon (Thursday).
    for day in (1, 2, 3, 4):
        await page.locator(f"#weekday-{day}").uncheck()
    await page.locator("#part-morning").uncheck()
    await page.get_by_role("button", name=texts["join"]).click()
    problem = page.locator("#weekdays-error")
    await problem.wait_for()
    # The error is the days' group's description, so a screen reader reads it with the group.
    weekdays = page.locator("#field-weekdays")
    assert await weekdays.get_attribute("aria-describedby") == "weekdays-error"
    assert await weekdays.get_attribute("aria-invalid") == "true"
    assert texts["no_times"] in await problem.inner_text() and texts["thursday"] in await problem.inner_text()
    assert texts["monday"] not in await problem.inner_text()
    await check(page, axe, "join, no such days", found)
    # Thursday afternoons until Thursday, every place booked: that is a wish to wait for.
    await page.locator("#weekday-0").uncheck()
    await page.locator("#weekday-3").check()
    await page.locator("#field-latest_date").fill(THURSDAY)
    await page.get_by_role("button", name=texts["join"]).click()
    await page.get_by_role("heading", name=texts["check_mail"]).wait_for()
    # Until when the link in the mail works (48 hours; R45).
    assert deadline(stack, language) in await page.locator("main").inner_text()
    await check(page, axe, "registered", found)
    assert found == {}  # WCAG 2.1 AA (R42)


@pytest.mark.req("R45")
@pytest.mark.req("R43")
@pytest.mark.req("R42")
@pytest.mark.parametrize("language", ["de", "en"])
async def test_opt_in_withdraw_and_an_expired_link_work_in_the_browser(
    web_stack: Stack, chromium: Browser, language: str
) -> None:
    texts = TEXTS[language]
    shots = Shots(f"waiting-list-{language}")
    context = await new_context(chromium, DESKTOP)
    page = await context.new_page()
    email = unique_email(f"browser-{language}")
    await join(page, web_stack, language, email)
    await shots.take(page, "registered")
    axe, found = Axe(), dict[str, list[str]]()

    # The double opt-in: the link in the mail opens a page with one button (a mail scanner changes nothing).
    (opt_in,) = await web_stack.mail_to(email)
    assert opt_in.parsed["Content-Language"] == language
    await page.goto(links(opt_in)["confirm"])
    await shots.take(page, "confirm")
    await check(page, axe, "confirm", found)
    assert deadline(web_stack, language) in await page.locator("main").inner_text()
    await page.get_by_role("button", name=texts["confirm"]).click()
    await page.get_by_text(texts["confirmed"]).wait_for()
    await shots.take(page, "confirmed")
    await check(page, axe, "confirmed", found)
    # The page shows the whole wish, the time of day too.
    assert texts["afternoons"] in await page.locator("dl.summary").inner_text()

    # Leaving asks first (WCAG 3.3.4): "No" keeps the place.
    await page.get_by_role("link", name=texts["leave"]).click()
    await page.get_by_role("heading", name=texts["leave_question"], level=1).wait_for()
    await check(page, axe, "leave?", found)
    await page.get_by_role("link", name=texts["no_stay"]).click()
    await page.get_by_role("heading", name=texts["place"], level=1).wait_for()
    assert await page.get_by_role("link", name=texts["leave"]).count() == 1  # still on the list

    # The withdraw link of the next mail asks too; "Yes" leaves.
    confirmed = (await web_stack.mail_to(email, 2))[-1]
    await page.goto(links(confirmed)["withdraw"])
    await page.get_by_role("heading", name=texts["leave_question"], level=1).wait_for()
    await page.get_by_role("button", name=texts["yes_leave"]).click()
    await page.get_by_text(texts["left"]).wait_for()
    await shots.take(page, "withdrawn")
    await check(page, axe, "withdrawn", found)
    withdrawn = (await web_stack.mail_to(email, 3))[-1]
    assert "withdraw" not in links(withdrawn)

    # The opt-in link of an ended wish: the expired-link page, 410.
    response = await page.goto(links(opt_in)["confirm"])
    assert response is not None and response.status == 410
    await page.get_by_role("heading", name=texts["expired"]).wait_for()
    assert await page.evaluate("document.documentElement.lang") == language
    await shots.take(page, "expired")
    await check(page, axe, "expired", found)
    # A link with a wrong token says it is not valid, without telling anything.
    confirm_link = links(opt_in)["confirm"]
    broken = await page.goto(confirm_link.rsplit("token=", 1)[0] + "token=" + "x" * 43)
    assert broken is not None and broken.status == 404
    assert found == {}  # WCAG 2.1 AA on every page of the wish (R42)
    await context.close()


async def an_offer_mail(web_stack: Stack, email: str, language: str = "de") -> tuple[StoredMessage, str, str]:
    """A confirmed wish for Thursday afternoon, one of whose booked appointments is cancelled: after the
    cool-down (R39) the freed time is offered to the wish. The offer mail, the wish's id and the start
    offered."""
    await fill_thursday_afternoon(web_stack)
    wish = {
        "location_id": "mitte",
        "concern_id": "neuantrag",
        "mode": "in_person",
        "weekdays": [3],
        "earliest": "12:00",
        "latest_date": THURSDAY,
        "language": language,
        "customer": {
            "first_name": "Erika",
            "last_name": "Mustermann",
            "email": email,
            "customer_number": unique_customer_number(),
        },
    }
    async with aiohttp.ClientSession(base_url=web_stack.gateway_url) as http:
        async with http.post("/api/v1/waiting-list", json=wish) as response:
            assert response.status == 201, await response.text()
        (opt_in,) = await web_stack.mail_to(email)
        found = LINK.search(text_of(opt_in))
        assert found
        async with http.post(
            f"/api/v1/waiting-list/{found.group(1)}/confirm", params={"token": found.group(3)}
        ) as response:
            assert response.status == 200, await response.text()
        freed = THURSDAY_BOOKED.pop(0)
        manage_token = freed["manage_url"].rsplit("token=", 1)[1]
        async with http.post(
            f"/api/v1/appointments/{freed['id']}/cancel", params={"token": manage_token}
        ) as response:
            assert response.status == 200, await response.text()
    web_stack.clock.advance(timedelta(minutes=11))
    mail: StoredMessage = (await web_stack.mail_to(email, 3))[-1]
    return mail, found.group(1), freed["start"]


@pytest.mark.req("R45")
@pytest.mark.req("R42")
async def test_leaving_asks_first_and_names_the_appointment_held_without_javascript(
    web_stack: Stack, chromium: Browser
) -> None:
    """The withdraw link of an offer mail opens a question, not the action: it names the appointment held
    for the customer, which leaving gives up (WCAG 3.3.4); a browser without scripts can answer it."""
    texts = TEXTS["de"]
    email = unique_email("leave-offer")
    offer_mail, _, offered = await an_offer_mail(web_stack, email)
    assert offer_mail.subject.startswith("Ein Termin ist frei")

    context = await new_context(chromium, DESKTOP, java_script_enabled=False)
    page = await context.new_page()
    await page.goto(links(offer_mail)["withdraw"])
    await page.get_by_role("heading", name=texts["leave_question"], level=1).wait_for()
    held = page.locator("section", has=page.get_by_role("heading", name=texts["held"]))
    start = datetime.fromisoformat(offered).astimezone(BERLIN)
    named = f"{format_date(start.date(), format='full', locale='de_DE')}, {start:%H:%M} bis "
    assert named in await held.inner_text()
    await page.get_by_role("button", name=texts["yes_leave"]).click()
    await page.get_by_text(texts["left"]).wait_for()
    await context.close()


@pytest.mark.req("R45")
@pytest.mark.req("R42")
async def test_the_join_page_sends_to_the_hotline_when_the_location_has_no_appointment_in_8_weeks(
    web_stack: Stack, chromium: Browser
) -> None:
    """West closed for the next ten weeks (a renovation): no day a wish could name, so the page offers no
    form to wait for nothing but the hotline."""
    identity = StaffIdentity(
        subject="waiting-browser-admin",
        kind=IdentityKind.USER,
        grants=(Grant(role=Role.ADMIN, locations=("*",)),),
        issued_at=web_stack.clock.now(),
    )
    headers = {HEADER: sign(identity, svc_settings(CatalogSettings).internal_secret)}
    first = web_stack.clock.now().date()
    closure = {
        "first": first.isoformat(),
        "last": (first + timedelta(weeks=10)).isoformat(),
        "reason": "Umbau",
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{web_stack.catalog_url}/api/v1/admin/locations/west/closures", json=closure, headers=headers
        ) as response:
            assert response.status == 201, await response.text()
            closure_id = (await response.json())["id"]
        try:

            async def nothing_offered() -> bool:
                async with http.get(
                    f"{web_stack.gateway_url}/api/v1/locations/west/waiting-list/weekdays",
                    params={"concern": "neuantrag"},
                ) as days:
                    return bool((await days.json())["weekdays"] == [])

            await wait_for(nothing_offered, timeout=15, what="booking to know West's closure")
            state = Sealer(web_stack.gateway_settings().web_secret).seal(
                {"loc": "west", "concern": "neuantrag", "mode": "in_person"}
            )
            context = await new_context(chromium, DESKTOP)
            page = await context.new_page()
            await page.goto(f"{web_stack.gateway_url}/waiting-list/join?s={state}")
            notice = page.locator("#no-days")
            await notice.wait_for()
            assert "In den nächsten 8 Wochen hat dieser Standort keine Termine" in await notice.inner_text()
            assert "0421 566-0" in await notice.inner_text()
            assert await page.locator("main form").count() == 0
            found: dict[str, list[str]] = {}
            await check(page, Axe(), "join, nothing offered", found)
            assert found == {}
            await context.close()
        finally:
            async with http.delete(
                f"{web_stack.catalog_url}/api/v1/admin/closures/{closure_id}", headers=headers
            ) as removed:
                assert removed.status in (200, 204), await removed.text()


@pytest.mark.req("R45")
@pytest.mark.parametrize(
    ("language", "expired", "still_waiting", "join_again"),
    [
        (
            "de",
            "Dieses Angebot ist abgelaufen",
            "Sie bleiben auf der Warteliste",
            "wieder auf die Warteliste",
        ),
        ("en", "This offer has expired", "You are still on the waiting list", "join the waiting list again"),
    ],
)
async def test_the_link_of_an_offer_that_ran_out_says_so_and_that_the_customer_is_still_waiting(
    web_stack: Stack, language: str, expired: str, still_waiting: str, join_again: str
) -> None:
    """The offer mail is read after the offer ran out: the link says the offer has expired and that the
    customer keeps their place (the wish waits again), not that their place has ended and they should
    join again (which the list would refuse: already on it)."""
    email = unique_email(f"late-offer-{language}")
    offer_mail, wish_id, _ = await an_offer_mail(web_stack, email, language)
    offer_link = links(offer_mail)["offer"]
    if language != "de":  # the mail's link carries the language; LINK stops before it
        assert f"{offer_link}&lang={language}" in text_of(offer_mail)
        offer_link += f"&lang={language}"
    # Two hours later the offer has run out (the matcher may not have noticed yet).
    web_stack.clock.advance(timedelta(hours=2, minutes=1))
    # Browsers accept Secure cookies on http://127.0.0.1; aiohttp's client must be told so.
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[web_stack.gateway_url])
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        for method in ("GET", "POST"):  # the link, and the button of a page opened before it ran out
            if method == "GET":
                response = await browser.get(offer_link)
            else:
                start = await (await browser.get(f"{web_stack.gateway_url}/?lang={language}")).text()
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', start)
                assert csrf
                response = await browser.post(offer_link, data={"csrf_token": csrf.group(1)})
            html = await response.text()
            assert response.status == 410, (method, html)
            main = html[html.index("<main") :]
            assert expired in main and still_waiting in main, (method, main)
            assert join_again not in main
            assert f"/waiting-list/{wish_id}?token=" in main  # the way to the wish's page


STREET = "Doventorsteinweg 48-52"  # Mitte's address in the demo data
MITTE = "Geschäftsstelle Mitte"


async def a_registered_wish(web_stack: Stack, mode: str, language: str) -> str:
    """A wish for Thursday afternoon at Mitte (every place booked), by phone (a change of data, which Mitte
    offers by phone too) or in person (a new application): the link to its page, as the opt-in mail's
    link to confirm it names it."""
    await fill_thursday_afternoon(web_stack)
    email = unique_email(f"wish-{mode}-{language}")
    customer = {
        "first_name": "Erika",
        "last_name": "Mustermann",
        "email": email,
        "customer_number": unique_customer_number(),
        **({"phone": "0421 778899"} if mode == "phone" else {}),
    }
    wish = {
        "location_id": "mitte",
        "concern_id": "veraenderung" if mode == "phone" else "neuantrag",
        "mode": mode,
        "weekdays": [3],
        "earliest": "14:00",
        "latest": "16:00",
        "latest_date": THURSDAY,
        "language": language,
        "customer": customer,
    }
    async with (
        aiohttp.ClientSession(base_url=web_stack.gateway_url) as http,
        http.post("/api/v1/waiting-list", json=wish) as response,
    ):
        assert response.status == 201, await response.text()
    (opt_in,) = await web_stack.mail_to(email)
    return links(opt_in)["confirm"].replace("/confirm?token=", "?token=")


def summary_text(html: str) -> str:
    """The text of the page's summary of the wish (its `dl`), tags taken out."""
    start = html.index('<dl class="summary">')
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[start : html.index("</dl>", start)]))


@pytest.mark.req("R4")
@pytest.mark.req("R43")
@pytest.mark.req("R45")
@pytest.mark.parametrize(
    ("language", "by_phone", "in_person"),
    [
        ("de", "Telefonisch: Wir rufen Sie an", "Persönlich am Standort"),
        ("de-x-ls", "Am Telefon: Wir rufen Sie an", "Sie kommen zu uns"),
        ("en", "By phone: we call you", "In person at the location"),
    ],
)
async def test_the_wish_pages_say_whether_we_call_and_give_a_phone_wish_no_street_to_go_to(
    web_stack: Stack, language: str, by_phone: str, in_person: str
) -> None:
    """The wish's page and the question before leaving say what kind of appointment the customer waits
    for, as the mails do: a phone wish names the location (which jobcenter calls) and no street address
    that reads like a place to go to; a wish in person keeps its address."""
    for mode in ("phone", "in_person"):
        page_url = await a_registered_wish(web_stack, mode, language)
        async with aiohttp.ClientSession() as browser:
            for path in (page_url, page_url.replace("?token=", "/withdraw?token=")):
                response = await browser.get(f"{path}&lang={language}")
                html = await response.text()
                assert response.status == 200, (path, html)
                main = html[html.index("<main") :]
                summary = summary_text(html)
                assert MITTE in summary, summary
                if mode == "phone":
                    assert by_phone in summary, summary
                    assert STREET not in main and "28195" not in main, main
                else:
                    assert in_person in summary, summary
                    assert STREET in summary, summary
