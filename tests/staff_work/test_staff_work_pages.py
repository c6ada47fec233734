"""The pages of a staff member's day (services/gateway/staff_work) through a real gateway and the real
booking service in-process: the day list of a location by group and service point (R22, R26, R27, R28),
recording outcomes and the callback queue (R23), the call list with call attempts (R49), forms with the
session's CSRF token, and the audit entry of each write without the note's text."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.clock import ManualClock
from shared.identity import Role
from tests.booking import factory
from tests.staff.conftest import (  # noqa: F401 -- fixtures used by name
    Gateway,
    GatewayFactory,
    StaffClient,
    audit_rows,
    make_gateway,
    staff_db,
)
from tests.staff_work.conftest import HERE, THERE, Staff, book, events

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory,  # noqa: F811 -- the fixture imported above
    client: TestClient[Any, Any],
    clock: ManualClock,
) -> Gateway:
    """A gateway whose booking is the real one (the catalog is a stand-in: ids instead of names)."""
    return await make_gateway(urls={"booking": str(client.make_url("")).rstrip("/")}, clock=clock)


async def signed_in_manager(gateway: Gateway) -> StaffClient:
    return await gateway.signed_in("tagdienst", (Role.APPOINTMENT_MANAGER, HERE))


async def signed_in_again(gateway: Gateway) -> StaffClient:
    """A new session of the same person (after the clock moved past the idle timeout)."""
    browser = gateway.browser()
    assert (await browser.login("tagdienst")).status == 200
    return browser


async def form(browser: StaffClient, path: str, **fields: str) -> Any:
    assert browser.csrf
    return await browser.post(path, data={"csrf_token": browser.csrf, **fields})


def row_of(html: str, appointment_id: str) -> str:
    match = re.search(rf'<tr id="[at]-{appointment_id}".*?</tr>', html, re.S)
    assert match, f"no row for {appointment_id}"
    return match.group(0)


@pytest.mark.req("R22")
@pytest.mark.req("R26")
@pytest.mark.req("R27")
@pytest.mark.req("R28")
async def test_the_day_page_lists_one_location_by_group_and_service_point_with_what_staff_prepare(
    client: TestClient[Any, Any], manager: Staff, gateway: Gateway
) -> None:
    plain = await book(client, TUESDAY, "08:00")
    phone = await book(client, TUESDAY, "08:15", mode="phone", number=factory.customer_number(7))
    response = await manager.post(
        "/api/v1/staff/appointments",
        {
            **factory.booking(factory.iso(TUESDAY, "09:00"), number=factory.customer_number(8)),
            "interpreter_language": "Arabisch",
        },
    )
    interpreted = await response.json()
    elsewhere = await book(client, TUESDAY, "08:00", location_id=THERE, number=factory.customer_number(9))
    browser = await signed_in_manager(gateway)

    page = await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})
    assert page.status == 200
    html = await page.text()
    assert "Dienstag, 3. März 2026" in html and "Eingangszone, Serviceplatz 1" in html
    # The title names the day (a reader with several days open in tabs, a screen reader's window list).
    title = html.split("<title>")[1].split("</title>")[0]
    assert "Tagesliste" in title and "Dienstag, 3. März 2026" in title
    week = await (await browser.get(f"/staff/locations/{HERE}/week", params={"date": TUESDAY})).text()
    assert "2.3. bis Sonntag, 8. März 2026" in week.split("<title>")[1].split("</title>")[0]
    assert "Mustermann" in row_of(html, plain["id"])
    assert "Mitteilung einer Veränderung" in row_of(html, plain["id"])
    assert "telefonisch" in row_of(html, phone["id"]) and "Telefon " in row_of(html, phone["id"])
    assert "Arabisch" in row_of(html, interpreted["id"])
    assert elsewhere["id"] not in html
    assert page.headers["Cache-Control"] == "no-store"
    # A cancellation stays on the day's list, marked, as in the Excel list; the counts leave it out.
    gone = await book(client, TUESDAY, "10:00", number=factory.customer_number(10))
    cancelled = await manager.post(f"/api/v1/staff/appointments/{gone['id']}/cancel", {"reason": "krank"})
    assert cancelled.status == 200, await cancelled.text()
    html = await (await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})).text()
    assert "abgesagt" in row_of(html, gone["id"]) and "krank" in row_of(html, gone["id"])
    assert "3 Termine, davon 3 ohne Ergebnis · 1 abgesagt" in html
    # Another location's day is refused (R28), as a page.
    other = await browser.get(f"/staff/locations/{THERE}/day", params={"date": TUESDAY})
    assert other.status == 403 and "Dafür fehlt Ihnen" in await other.text()
    # A form's result page reloaded (its address takes only POST): back to the page the form belongs to.
    for posted, page_above in (
        (f"/staff/appointments/{phone['id']}/call-attempts", f"/staff/appointments/{phone['id']}"),
        (f"/staff/locations/{HERE}/mass-change/preview", f"/staff/locations/{HERE}/mass-change"),
    ):
        reloaded = await browser.get(posted)
        assert reloaded.status == 303 and reloaded.headers["Location"] == page_above, posted
    # Without signing in: to the login with the page as the target.
    anonymous = await gateway.browser().get(f"/staff/locations/{HERE}/day")
    assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/staff/login?next=")


@pytest.mark.req("R22")
@pytest.mark.req("R33")
async def test_the_day_page_links_the_excel_list_only_for_days_it_exists_and_says_why_otherwise(
    gateway: Gateway,
) -> None:
    """A past day's Excel list is deleted at the end of its day (reporting answers 410 in JSON): the page
    says so instead of linking to the refusal; likewise for a day more than 90 days ahead."""
    browser = await signed_in_manager(gateway)
    link = f'href="/api/v1/staff/locations/{HERE}/day-list?date='
    for day, shown, hint in (
        ("2026-03-02", True, None),  # today
        (TUESDAY, True, None),
        ("2026-05-31", True, None),  # 90 days ahead
        ("2026-03-01", False, "nicht mehr vorhanden, sie wird am Ende ihres Tages gelöscht"),
        ("2026-06-01", False, "erst ab 90 Tagen vor dem Tag"),
    ):
        page = await browser.get(f"/staff/locations/{HERE}/day", params={"date": day})
        html = await page.text()
        assert page.status == 200, day
        assert (f"{link}{day}" in html) is shown, day
        if hint:
            assert f"Tagesliste als Excel-Datei: {hint}" in html, day


@pytest.mark.req("R23")
async def test_outcomes_by_form_once_and_a_callback_ticket_is_claimed_and_closed_in_the_queue(
    client: TestClient[Any, Any], gateway: Gateway, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    first = await book(client, TUESDAY, "08:00")
    second = await book(
        client, TUESDAY, "08:15", number=factory.customer_number(2), customer={"phone": "0421 123456"}
    )
    silent = await book(client, TUESDAY, "08:30", number=factory.customer_number(4))  # no phone number
    browser = await signed_in_manager(gateway)
    place = {"location": HERE, "date": TUESDAY}

    early = await form(browser, f"/staff/appointments/{first['id']}/outcome", outcome="resolved", **place)
    assert early.status == 409 and "erst ab dem Tag des Termins" in await early.text()

    clock.set(factory.at(TUESDAY, "11:30"))
    browser = await signed_in_again(gateway)
    no_token = await browser.post(f"/staff/appointments/{first['id']}/outcome", data={"outcome": "resolved"})
    assert no_token.status == 403
    done = await form(
        browser, f"/staff/appointments/{first['id']}/outcome", outcome="resolved", note="Privat: X", **place
    )
    assert done.status == 303
    assert done.headers["Location"].startswith(f"/staff/locations/{HERE}/day?date={TUESDAY}&notice=outcome")
    # A callback promises a call: for a customer without a number the page says what to do instead.
    unreachable = await form(
        browser, f"/staff/appointments/{silent['id']}/outcome", outcome="callback", note="bitte", **place
    )
    html = await unreachable.text()
    assert unreachable.status == 422
    assert ">08:30, Mustermann: Keine Telefonnummer, darum ist ein Rückruf-Ticket nicht möglich." in html
    row = row_of(html, silent["id"])
    assert '<option value="callback" selected>' in row and 'value="bitte"' in row
    assert re.search(rf'id="o-{silent["id"]}"[^>]*aria-invalid="true"', row)
    callback = await form(browser, f"/staff/appointments/{second['id']}/outcome", outcome="callback", **place)
    assert callback.status == 303 and "notice=callback" in callback.headers["Location"]
    html = await (await browser.get(callback.headers["Location"])).text()
    assert "Anliegen geklärt" in row_of(html, first["id"]) and "Rückruf-Ticket" in html
    assert "Rückruf-Ticket an das zuständige Team" in row_of(html, second["id"])

    twice = await form(browser, f"/staff/appointments/{first['id']}/outcome", outcome="no_show", **place)
    assert twice.status == 409 and "schon ein Ergebnis" in await twice.text()
    unreasoned = await form(
        browser, f"/staff/appointments/{first['id']}/outcome", outcome="no_show", correction="true", **place
    )
    html = await unreasoned.text()
    assert unreasoned.status == 422 and "<title>Fehler: Tagesliste" in html
    # The summary names the row, and that row's correction is open again with the missing field marked.
    assert ">08:00, Mustermann: Begründung der Korrektur: bitte prüfen bzw. ausfüllen.</a></li>" in html
    row = row_of(html, first["id"])
    assert "<details open>" in row and re.search(rf'id="cr-{first["id"]}"[^>]*aria-invalid="true"', row)
    assert '<option value="no_show" selected>' in row
    corrected = await form(
        browser,
        f"/staff/appointments/{first['id']}/outcome",
        outcome="no_show",
        correction="true",
        reason="verwechselt",
        **place,
    )
    assert corrected.status == 303
    recorded = await events(pool, "appointment.outcome_recorded")
    assert [(e["outcome"], e["correction"]) for e in recorded] == [
        ("resolved", False),
        ("callback", False),
        ("no_show", True),
    ]
    # The audit log names the fields, never what the note says.
    entries = await audit_rows(gateway, entity="appointment")
    assert {e["action"] for e in entries} == {"outcome"} and len(entries) == 3
    assert all("Privat" not in str(e["changes"]) for e in entries)

    queue = await browser.get(f"/staff/locations/{HERE}/callbacks")
    html = await queue.text()
    ticket = (await events(pool, "callback.created"))[0]["callback"]
    assert "05.03.2026 11:30" in row_of(html, ticket["id"]) and "überfällig" not in row_of(html, ticket["id"])

    clock.set(factory.at("2026-03-05", "12:00"))
    browser = await signed_in_again(gateway)
    html = await (await browser.get(f"/staff/locations/{HERE}/callbacks")).text()
    assert "überfällig" in row_of(html, ticket["id"]) and "1 Ticket überfällig" in html
    claimed = await form(browser, f"/staff/callbacks/{ticket['id']}/claim", location=HERE)
    assert claimed.status == 303
    html = await (await browser.get(claimed.headers["Location"])).text()
    assert "übernommen" in row_of(html, ticket["id"]) and "tagdienst" in row_of(html, ticket["id"])
    empty = await form(browser, f"/staff/callbacks/{ticket['id']}/close", location=HERE, result="")
    assert empty.status == 422 and "Ergebnis des Rückrufs" in await empty.text()
    closed = await form(
        browser, f"/staff/callbacks/{ticket['id']}/close", location=HERE, result="Kundin erreicht"
    )
    assert closed.status == 303
    html = await (await browser.get(f"/staff/locations/{HERE}/callbacks")).text()
    assert ticket["id"] not in html
    html = await (await browser.get(f"/staff/locations/{HERE}/callbacks", params={"status": "closed"})).text()
    assert "Kundin erreicht" in row_of(html, ticket["id"])
    assert len(await events(pool, "callback.closed")) == 1
    again = await form(browser, f"/staff/callbacks/{ticket['id']}/close", location=HERE, result="nochmal")
    assert again.status == 409


@pytest.mark.req("R23")
@pytest.mark.req("R24")
async def test_the_entrance_zone_hands_a_callback_ticket_to_the_responsible_team_chosen_on_the_day_list(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """Directive 3.4: what the entrance zone cannot finish goes to the responsible team as a callback.
    The outcome form offers the location's teams; from the entrance zone the one benefits team is
    preselected, from that team itself its own group; a refused form keeps the team chosen; the
    correction form hands the ticket to another team."""
    phone = {"customer": {"phone": "0421 123456"}}
    entrance = await book(client, TUESDAY, "08:00", **phone)  # "veraenderung": the entrance zone
    benefits = await book(client, TUESDAY, "08:00", concern="bescheid", **phone)  # the benefits team
    clock.set(factory.at(TUESDAY, "11:30"))
    browser = await pages_gateway.signed_in("eingangszone", (Role.APPOINTMENT_MANAGER, HERE))
    place = {"location": HERE, "date": TUESDAY}
    html = await (await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})).text()
    row = row_of(html, entrance["id"])
    label = f'<label for="ot-{entrance["id"]}">Team für ein Rückruf-Ticket'
    assert label in row and '<span class="visually-hidden"> (08:00, Mustermann)</span>' in row
    assert '<option value="ez">Eingangszone</option>' in row
    assert '<option value="lt" selected>Leistungsteam</option>' in row
    assert '<option value="lt" selected>Leistungsteam</option>' in row_of(html, benefits["id"])

    # Refused (no outcome chosen): the row's form comes back with the team that was chosen.
    path = f"/staff/appointments/{entrance['id']}/outcome"
    refused = await form(browser, path, outcome="", team="ez", **place)
    assert refused.status == 422
    row = row_of(await refused.text(), entrance["id"])
    assert '<option value="ez" selected>Eingangszone</option>' in row
    assert '<option value="lt" selected>' not in row

    done = await form(browser, path, outcome="callback", team="lt", **place)
    assert done.status == 303 and "notice=callback" in done.headers["Location"]
    queue = await (await browser.get(f"/staff/locations/{HERE}/callbacks")).text()
    [ticket] = [e["callback"] for e in await events(pool, "callback.created")]
    assert ticket["group_id"] == "lt" and "<td>Leistungsteam</td>" in row_of(queue, ticket["id"])

    # The correction form hands the open ticket to the team it names.
    html = await (await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})).text()
    assert f'<select id="ct-{entrance["id"]}" name="team">' in row_of(html, entrance["id"])
    fixed = await form(
        browser, path, outcome="callback", team="ez", correction="true", reason="EZ klärt", **place
    )
    assert fixed.status == 303
    moved = (await events(pool, "callback.created"))[-1]["callback"]
    assert (moved["id"], moved["group_id"]) == (ticket["id"], "ez")

    # Correcting only the note or reason, the team select shows its preselection (the benefits team), not
    # the ticket's: sent as shown, it leaves the ticket (and a colleague's claim) with the entrance zone.
    html = await (await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})).text()
    assert '<input type="hidden" name="team_shown" value="lt">' in row_of(html, entrance["id"])
    untouched = await form(
        browser,
        path,
        outcome="callback",
        team="lt",
        team_shown="lt",
        correction="true",
        reason="Notiz",
        **place,
    )
    assert untouched.status == 303
    assert [e["callback"]["group_id"] for e in await events(pool, "callback.created")] == ["lt", "ez"]


@pytest.mark.req("R23")
@pytest.mark.req("R28")
async def test_the_callback_api_through_the_gateway_without_a_location_lists_the_callers_own_locations(
    client: TestClient[Any, Any],
    manager: Staff,
    other_manager: Staff,
    gateway: Gateway,
    pool: asyncpg.Pool,
    clock: ManualClock,
) -> None:
    """The documented `GET /api/v1/staff/callbacks?location=&status=open`, left empty or without
    `location`, is the open tickets of the caller's own locations, not a 403 for everybody who is not
    central staff; another location named is still refused."""
    phone = {"customer": {"phone": "0421 123456"}}
    mine = await book(client, TUESDAY, "08:00", **phone)
    theirs = await book(client, TUESDAY, "08:00", location_id=THERE, **phone)
    clock.set(factory.at(TUESDAY, "11:30"))
    for staff, appointment in ((manager, mine), (other_manager, theirs)):
        done = await staff.post(
            f"/api/v1/staff/appointments/{appointment['id']}/outcome", {"outcome": "callback"}
        )
        assert done.status == 200, await done.text()
    tickets = {
        e["callback"]["location_id"]: e["callback"]["id"] for e in await events(pool, "callback.created")
    }

    browser = await signed_in_manager(gateway)
    for params in ({"location": "", "status": "open"}, {"status": "open"}, {}):
        response = await browser.get("/api/v1/staff/callbacks", params=params)
        assert response.status == 200, (params, await response.text())
        assert [t["id"] for t in await response.json()] == [tickets[HERE]], params
    named = await browser.get("/api/v1/staff/callbacks", params={"location": HERE, "status": "open"})
    assert [t["id"] for t in await named.json()] == [tickets[HERE]]
    refused = await browser.get("/api/v1/staff/callbacks", params={"location": THERE, "status": "open"})
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"


async def test_after_a_refused_form_the_pages_own_day_picker_and_filter_still_lead_to_that_page(
    client: TestClient[Any, Any], gateway: Gateway, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """A refused form shows the page again at the address it was posted to; the day picker and the
    ticket filter must lead to the day list, call list or queue, not to that POST address (a GET there
    redirects to one customer's file or the start page)."""
    first = await book(client, TUESDAY, "08:00", mode="phone")
    clock.set(factory.at(TUESDAY, "11:30"))
    browser = await signed_in_manager(gateway)
    place = {"location": HERE, "date": TUESDAY}
    outcome = f"/staff/appointments/{first['id']}/outcome"
    assert (await form(browser, outcome, outcome="callback", **place)).status == 303
    refused = await form(browser, outcome, outcome="no_show", **place)
    html = await refused.text()
    assert refused.status == 409 and "schon ein Ergebnis" in html
    day = f"/staff/locations/{HERE}/day"
    assert f'action="{day}"' in html and f'href="{day}?date=2026-03-02">← Vortag' in html
    assert f'href="{day}?date=2026-03-04">Folgetag' in html and f'"{outcome}?date=' not in html

    attempt = f"/staff/appointments/{first['id']}/call-attempts"
    html = await (await form(browser, attempt, **place)).text()  # reached is required
    calls = f"/staff/locations/{HERE}/calls"
    assert f'action="{calls}"' in html and f'href="{calls}?date=2026-03-02">← Vortag' in html

    ticket = (await events(pool, "callback.created"))[0]["callback"]
    closed = await form(browser, f"/staff/callbacks/{ticket['id']}/close", location=HERE, result="erreicht")
    assert closed.status == 303
    refused = await form(browser, f"/staff/callbacks/{ticket['id']}/claim", location=HERE)
    html = await refused.text()
    assert refused.status == 409
    assert f'<form method="get" class="filters" action="/staff/locations/{HERE}/callbacks">' in html


@pytest.mark.req("R49")
async def test_the_call_list_records_call_attempts_and_the_second_unreached_one_opens_a_callback_ticket(
    client: TestClient[Any, Any], gateway: Gateway, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    phone = await book(client, TUESDAY, "08:15", mode="phone")
    await book(client, TUESDAY, "08:30", number=factory.customer_number(3))  # in person: not a call
    browser = await signed_in_manager(gateway)
    early = await form(
        browser,
        f"/staff/appointments/{phone['id']}/call-attempts",
        reached="false",
        location=HERE,
        date=TUESDAY,
    )
    assert early.status == 409 and "Anrufversuche können erst ab dem Tag des Termins" in await early.text()
    clock.set(factory.at(TUESDAY, "08:20"))
    browser = await signed_in_again(gateway)
    page = await browser.get(f"/staff/locations/{HERE}/calls", params={"date": TUESDAY})
    html = await page.text()
    assert page.status == 200 and "1 Telefontermin," in html
    # One click dials: a global number (RFC 3966; "tel:0421123456" has no context), the number as typed.
    assert '<a href="tel:+49421123456">0421 123456</a>' in row_of(html, phone["id"])
    assert "Anrufliste" in html.split("</title>")[0] and "Dienstag, 3. März 2026" in html.split("</title>")[0]
    # The row's form names the row (hidden), as its table cell would only with table navigation.
    who = '<span class="visually-hidden"> (08:15, Mustermann)</span>'
    assert f"<legend>Erreicht?{who}</legend>" in row_of(html, phone["id"])
    assert f"Anrufversuch speichern{who}</button>" in row_of(html, phone["id"])
    place = {"location": HERE, "date": TUESDAY}
    path = f"/staff/appointments/{phone['id']}/call-attempts"
    unanswered = await form(browser, path, note="Mailbox, später", **place)  # reached is required
    html = await unanswered.text()
    assert unanswered.status == 422 and ">08:15, Mustermann: Erreicht: bitte prüfen" in html
    row = row_of(html, phone["id"])
    assert 'value="Mailbox, später"' in row and row.count('aria-invalid="true"') == 2  # the note stays
    first = await form(browser, path, reached="false", note="Mailbox", **place)
    assert first.status == 303 and "notice=attempt&saved=" in first.headers["Location"]
    second = await form(browser, path, reached="false", **place)
    assert "notice=attempt_callback" in second.headers["Location"]
    html = await (await browser.get(second.headers["Location"])).text()
    assert row_of(html, phone["id"]).count("nicht erreicht") == 2 and "Mailbox" in html
    created = await events(pool, "callback.created")
    assert len(created) == 1 and created[0]["callback"]["reason"] == "missed_call"
    queue = await (await browser.get(f"/staff/locations/{HERE}/callbacks")).text()
    assert "Telefontermin nicht erreicht" in queue


def _described_by(page: Any, field_id: str) -> str:
    """The text of the elements that describe a field (its aria-describedby), which must include its
    error message; the field is marked invalid."""
    attrs = page.attrs[field_id]
    assert attrs.get("aria-invalid") == "true", attrs
    return " ".join(page.text.get(i, "") for i in attrs.get("aria-describedby", "").split())


async def test_a_refused_row_is_reached_from_the_error_summary_and_its_field_says_what_is_wrong(
    client: TestClient[Any, Any], gateway: Gateway, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """On a day of 300 rows a keyboard or screen-reader user follows the summary's line to the row's
    field, and the field itself says what is wrong (WCAG 3.3.1, 1.3.1): on the day list (an outcome, a
    correction), the call list and the callback queue."""
    from tests.staff.test_location_page_forms import elements

    silent = await book(client, TUESDAY, "08:30", number=factory.customer_number(4))  # no phone number
    phone = await book(client, TUESDAY, "08:15", mode="phone", customer={"phone": "0421 123456"})
    clock.set(factory.at(TUESDAY, "11:30"))
    browser = await signed_in_manager(gateway)
    place = {"location": HERE, "date": TUESDAY}

    outcome = f"/staff/appointments/{silent['id']}/outcome"
    page = elements(await (await form(browser, outcome, outcome="callback", **place)).text())
    field = f"o-{silent['id']}"
    [(href, line)] = page.summary_links
    assert href == f"#{field}" and line.startswith("08:30, Mustermann: Keine Telefonnummer")
    assert "Keine Telefonnummer" in _described_by(page, field)

    assert (await form(browser, outcome, outcome="resolved", **place)).status == 303
    page = elements(
        await (await form(browser, outcome, outcome="no_show", correction="true", **place)).text()
    )
    field = f"cr-{silent['id']}"
    assert page.summary_links == [
        (f"#{field}", "08:30, Mustermann: Begründung der Korrektur: bitte prüfen bzw. ausfüllen.")
    ]
    assert "Begründung der Korrektur" in _described_by(page, field)
    # A refusal that names no field (the outcome is recorded already) leads to the row.
    page = elements(await (await form(browser, outcome, outcome="no_show", **place)).text())
    [(href, line)] = page.summary_links
    assert href == f"#a-{silent['id']}" and "schon ein Ergebnis" in line

    attempt = f"/staff/appointments/{phone['id']}/call-attempts"
    html = await (await form(browser, attempt, note="Mailbox", **place)).text()  # reached is required
    page = elements(html)
    field = f"ca-{phone['id']}"
    assert page.summary_links == [(f"#{field}", "08:15, Mustermann: Erreicht: bitte prüfen bzw. ausfüllen.")]
    assert page.attrs[field].get("type") == "radio" and page.attrs[field].get("aria-invalid") == "true"
    legend = re.search(r'<fieldset aria-describedby="([^"]+)">', row_of(html, phone["id"]))
    assert legend and "Erreicht" in page.text[legend.group(1)]

    assert (await form(browser, attempt, reached="false", missed="true", **place)).status == 303
    ticket = (await events(pool, "callback.created"))[0]["callback"]
    page = elements(
        await (await form(browser, f"/staff/callbacks/{ticket['id']}/close", location=HERE, result="")).text()
    )
    field = f"r-{ticket['id']}"
    assert page.summary_links == [
        (
            f"#{field}",
            "fällig 05.03.2026 11:30, Mustermann: Ergebnis des Rückrufs: bitte prüfen bzw. ausfüllen.",
        )
    ]
    assert "Ergebnis des Rückrufs" in _described_by(page, field)


async def test_a_saved_row_says_so_in_that_row_where_the_page_jumps_to(
    client: TestClient[Any, Any], gateway: Gateway, clock: ManualClock
) -> None:
    """After saving an outcome or a call attempt the page jumps to the row: the confirmation stands
    there, once, not at the top of a long list where neither the eye nor a screen reader is."""
    from tests.staff.test_location_page_forms import elements

    first = await book(client, TUESDAY, "08:00")
    phone = await book(client, TUESDAY, "08:15", mode="phone", customer={"phone": "0421 123456"})
    clock.set(factory.at(TUESDAY, "11:30"))
    browser = await signed_in_manager(gateway)
    place = {"location": HERE, "date": TUESDAY}
    for path, row, notice in (
        (f"/staff/appointments/{first['id']}/outcome", first["id"], "Das Ergebnis ist gespeichert."),
        (
            f"/staff/appointments/{phone['id']}/call-attempts",
            phone["id"],
            "Der Anrufversuch ist gespeichert.",
        ),
    ):
        fields = {"outcome": "resolved"} if path.endswith("outcome") else {"reached": "true"}
        done = await form(browser, path, **fields, **place)
        assert done.status == 303 and done.headers["Location"].endswith(f"#a-{row}")
        page = elements(await (await browser.get(done.headers["Location"])).text())
        assert [(text.strip(), f"a-{row}" in where) for where, text in page.statuses] == [(notice, True)]

    # The file's contact form jumps back to its section, which says it.
    from tests.staff.test_staff_pages import form_fields

    path = f"/staff/appointments/{first['id']}"
    fields = dict(form_fields(await (await browser.get(path)).text(), f"{path}/contact"))
    done = await form(browser, f"{path}/contact", **{**fields, "contact_phone": "0421 55 66"})
    assert done.status == 303 and done.headers["Location"].endswith("#h-contact")
    html = await (await browser.get(done.headers["Location"])).text()
    assert len(elements(html).statuses) == 1
    assert re.search(
        r'<h2 id="h-contact">[^<]*</h2>\s*<p class="notice" role="status"[^>]*>'
        r"Die Kontaktdaten sind gespeichert\.",
        html,
    )
