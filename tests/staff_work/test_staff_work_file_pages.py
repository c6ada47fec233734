"""The appointment file as a page (services/gateway/staff_work/file_pages.py) through a real gateway and
the real booking service: everything about one appointment and its history, linked from the day list
(R22, R26, R27); cancelling with a reason (R9), the follow-up in the responsible team in one click (R24)
and the transfer to the responsible location (R25); another location's file shows nothing (R28)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.clock import ManualClock
from shared.identity import Role
from tests.booking import factory
from tests.staff.conftest import Gateway, audit_rows
from tests.staff_work.conftest import HERE, THERE, Staff, book, events, form, signed_in

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"


def slot_buttons(html: str, action: str) -> list[str]:
    """The `start` of each one-click form posting to `action`, in page order."""
    forms = re.findall(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
    return [m for f in forms for m in re.findall(r'name="start" value="([^"]+)"', f)]


@pytest.mark.req("R22")
@pytest.mark.req("R26")
@pytest.mark.req("R27")
@pytest.mark.req("R28")
async def test_the_file_shows_the_appointment_is_linked_from_the_day_list_and_hides_another_locations_file(
    client: TestClient[Any, Any], manager: Staff, pages_gateway: Gateway
) -> None:
    response = await manager.post(
        "/api/v1/staff/appointments",
        {
            **factory.booking(factory.iso(TUESDAY, "09:00"), number=factory.customer_number(41)),
            "interpreter_language": "Arabisch",
        },
    )
    booked = await response.json()
    browser = await signed_in(pages_gateway, "akte")
    day = await (await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})).text()
    assert f'href="/staff/appointments/{booked["id"]}"' in day

    page = await browser.get(f"/staff/appointments/{booked['id']}")
    html = await page.text()
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    for shown in (
        booked["reference"],
        "<bdi>Mustermann</bdi>, <bdi>Erika</bdi>",  # isolated: an Arabic name keeps its order
        factory.customer_number(41),
        "Mitteilung einer Veränderung",
        "persönlich",
        "Arabisch",
        "gebucht",
        "Eingangszone, Serviceplatz 1",
        "Dienstag, 3. März 2026, 09:00 Uhr",
        "Mitarbeitende",
        "Jobcenter Teststadt",
        "Seit der Buchung keine Änderungen.",
    ):
        assert shown in html, shown
    assert 'name="reason"' in html and 'name="csrf_token"' in html

    # R28: a staff member of another location sees nothing of it, and may not change it.
    elsewhere = await signed_in(pages_gateway, "anderswo-akte", location=THERE)
    refused = await elsewhere.get(f"/staff/appointments/{booked['id']}")
    text = await refused.text()
    assert refused.status == 403 and "Dafür fehlt Ihnen" in text
    assert "Mustermann" not in text and booked["reference"] not in text
    cancel_path = f"/staff/appointments/{booked['id']}/cancel"
    cancel = await form(elsewhere, cancel_path, reason="fremd", by="jobcenter")
    assert cancel.status == 403 and "Mustermann" not in await cancel.text()
    # Ids that are not appointments: a German page, never a stack trace.
    for wrong in ("kein-termin", "00000000-0000-0000-0000-000000000000"):
        missing = await browser.get(f"/staff/appointments/{wrong}")
        assert missing.status == 404 and "Das gibt es nicht" in await missing.text()


@pytest.mark.req("R9")
async def test_staff_cancel_with_a_reason_the_customer_is_told_and_the_history_keeps_it(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    booked = await book(client, TUESDAY, "08:00")
    browser = await signed_in(pages_gateway, "absage")
    path = f"/staff/appointments/{booked['id']}/cancel"

    empty = await form(browser, path, reason="  ", by="jobcenter")
    html = await empty.text()
    assert empty.status == 422 and "Grund der Absage: bitte prüfen" in html
    assert 'aria-describedby="cancel-reason-hint cancel-reason-error" aria-invalid="true"' in html
    assert 'id="cancel-reason-error"' in html
    assert 'value="jobcenter" checked' in html  # the choice made stays
    # Who cancels decides the customer's mail (an apology with the reason, or a confirmation): no default.
    unsaid = await form(browser, path, reason="Sachbearbeitung erkrankt")
    html = await unsaid.text()
    assert unsaid.status == 422 and "Wer sagt ab?: bitte prüfen" in html and 'id="cancel-by-error"' in html
    assert "Sachbearbeitung erkrankt</textarea>" in html
    no_token = await browser.post(path, data={"reason": "Krankheit", "by": "jobcenter"})
    assert no_token.status == 403

    done = await form(browser, path, reason="Sachbearbeitung erkrankt", by="jobcenter")
    assert (
        done.status == 303
        and done.headers["Location"] == f"/staff/appointments/{booked['id']}?notice=cancelled"
    )
    html = await (await browser.get(done.headers["Location"])).text()
    assert 'role="status">Der Termin ist abgesagt' in html
    assert "abgesagt \N{EN DASH} Sachbearbeitung erkrankt" in html and "Abgesagt durch Mitarbeitende" in html
    assert 'name="reason"' not in html  # nothing left to cancel
    cancelled = await events(pool, "appointment.cancelled")
    assert [(e["cancelled_by"], e["reason"]) for e in cancelled] == [("staff", "Sachbearbeitung erkrankt")]
    entries = await audit_rows(pages_gateway, entity="appointment")
    assert [e["action"] for e in entries] == ["cancel"]
    assert "erkrankt" not in str(entries[0]["changes"])
    # Cancelling again (a second click) changes nothing and sends no second mail.
    again = await form(browser, path, reason="nochmal", by="jobcenter")
    assert again.status == 303 and len(await events(pool, "appointment.cancelled")) == 1


@pytest.mark.req("R9")
async def test_staff_enter_a_callers_own_cancellation_and_the_customer_is_not_told_the_jobcenter_cancelled(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    """A customer calls to cancel: the event says the customer cancelled (so the mail confirms the
    customer's own cancellation, without the note, and the statistics count it as the customer's); the
    file's history keeps who entered it and that it was the customer's wish."""
    booked = await book(client, TUESDAY, "08:00")
    browser = await signed_in(pages_gateway, "anruf-absage")
    done = await form(
        browser, f"/staff/appointments/{booked['id']}/cancel", reason="Anruferin hat abgesagt", by="customer"
    )
    assert done.status == 303
    cancelled = await events(pool, "appointment.cancelled")
    assert [(e["cancelled_by"], e["reason"]) for e in cancelled] == [("customer", "Anruferin hat abgesagt")]
    html = await (await browser.get(done.headers["Location"])).text()
    assert "Abgesagt durch Mitarbeitende, auf Wunsch der Kundin / des Kunden" in html
    assert "anruf-absage" in html


@pytest.mark.req("R24")
@pytest.mark.req("R5")
async def test_a_follow_up_is_one_click_on_a_free_slot_of_the_responsible_team_and_replaces_the_first(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    first = await book(client, TUESDAY, "08:00", number=factory.customer_number(51))
    clock.set(factory.at(TUESDAY, "08:10"))
    browser = await signed_in(pages_gateway, "folge")
    file_path = f"/staff/appointments/{first['id']}"

    html = await (await browser.get(file_path)).text()
    # The responsible teams' concerns only, not the entrance zone's own.
    assert 'value="bescheid|in_person"' in html and 'value="neuantrag|in_person"' not in html
    html = await (await browser.get(file_path, params={"follow_up": "bescheid|in_person"})).text()
    starts = slot_buttons(html, f"{file_path}/follow-up")
    # Booking's rules: the same day is closed after 06:00, so the team's first free slot is tomorrow's.
    assert starts and starts[0] == factory.iso("2026-03-04", "08:00")
    assert "Folgetermin buchen: Mittwoch, 4. März 2026, 08:00 Uhr" in html
    later = await browser.get(file_path, params={"follow_up": "bescheid|in_person", "from": "2026-03-18"})
    assert slot_buttons(await later.text(), f"{file_path}/follow-up")[0] == factory.iso("2026-03-18", "08:00")

    bad = await form(browser, f"{file_path}/follow-up", choice="bescheid|fax", start=starts[0])
    assert bad.status == 422 and "Bitte prüfen" in await bad.text()
    done = await form(browser, f"{file_path}/follow-up", choice="bescheid|in_person", start=starts[0])
    assert done.status == 303 and done.headers["Location"].endswith("?notice=follow_up")
    html = await (await browser.get(done.headers["Location"])).text()
    assert "Der Folgetermin ist gebucht" in html and "Gebucht als Folgetermin" in html
    assert "Fragen zum Bescheid" in html and "Leistungsteam, Platz" in html  # the history names the team
    assert await pool.fetchval("SELECT status FROM appointments WHERE id = $1", first["id"]) == "passed"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM appointments WHERE status = 'booked' AND customer_number_key = $1",
            factory.customer_number(51),
        )
        == 1
    )
    # The first file shows the follow-up in its history and as its outcome; a second follow-up is refused
    # in German.
    html = await (await browser.get(file_path)).text()
    assert "Folgetermin gebucht" in html
    assert "<dt>Ergebnis</dt><dd>Folgetermin im zuständigen Team</dd>" in html
    # The day list counts it as done: no outcome form left on its row, none missing.
    day = await (await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})).text()
    assert "1 Termin, davon 0 ohne Ergebnis" in day
    row = re.search(rf'<tr id="a-{first["id"]}".*?</tr>', day, re.S)
    assert row and "<strong>Folgetermin im zuständigen Team</strong>" in row.group(0)
    assert 'value="follow_up"' not in day  # staff never choose it: booking the follow-up records it
    twice = await form(browser, f"{file_path}/follow-up", choice="bescheid|in_person", start=starts[1])
    assert twice.status == 409 and "schon einen offenen Termin" in await twice.text()


@pytest.mark.req("R25")
async def test_a_transfer_to_the_responsible_location_moves_it_to_a_free_slot_there_or_opens_a_callback(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    wrong = await book(client, TUESDAY, "08:00")
    browser = await signed_in(pages_gateway, "uebergabe")
    file_path = f"/staff/appointments/{wrong['id']}"
    html = await (await browser.get(file_path)).text()
    assert '<option value="anderswo">Jobcenter Anderswo</option>' in html
    assert f'<option value="{HERE}">' not in html  # not to its own location

    html = await (await browser.get(file_path, params={"transfer_to": THERE})).text()
    assert 'value="bescheid|in_person"' in html
    step = {"transfer_to": THERE, "transfer": "bescheid|in_person"}
    html = await (await browser.get(file_path, params=step)).text()
    starts = slot_buttons(html, f"{file_path}/transfer")
    assert starts[0] == factory.iso(TUESDAY, "08:00")
    moved = await form(
        browser, f"{file_path}/transfer", location_id=THERE, choice="bescheid|in_person", start=starts[0]
    )
    html = await moved.text()
    assert moved.status == 200 and 'role="status">Der Termin ist an Jobcenter Anderswo übergeben' in html
    assert wrong["reference"] in html and "Dienstag, 3. März 2026, 08:00 Uhr" in html
    assert "Jobcenter Anderswo, Leistungsteam" in html
    assert (await events(pool, "appointment.transferred"))[0]["from_location_id"] == HERE
    assert (await browser.get(file_path)).status == 403  # now the responsible location's file

    # Without a slot the customer is told "we call you back": not for a customer without a number.
    silent = await book(client, TUESDAY, "08:30")  # in person, no phone number
    silent_path = f"/staff/appointments/{silent['id']}"
    html = await (await browser.get(silent_path, params=step)).text()
    assert "Ohne Termin übergeben (Rückruf-Ticket)" not in html
    assert "Ohne Termin (Rückruf-Ticket) nicht möglich: keine Telefonnummer" in html
    refused = await form(browser, f"{silent_path}/transfer", location_id=THERE, choice="bescheid|in_person")
    html = await refused.text()
    assert refused.status == 422 and "Keine Telefonnummer, darum ist ein Rückruf nicht möglich" in html
    assert await pool.fetchval("SELECT status FROM appointments WHERE id = $1", silent["id"]) == "booked"
    assert await events(pool, "callback.created") == []

    second = await book(client, TUESDAY, "08:15", customer={"phone": "0421 765432"})
    ticket = await form(
        browser,
        f"/staff/appointments/{second['id']}/transfer",
        location_id=THERE,
        choice="bescheid|in_person",
    )
    html = await ticket.text()
    assert ticket.status == 200 and "Rückruf-Ticket für" in html and "04.03.2026 10:00 Uhr" in html
    created = await events(pool, "callback.created")
    assert [c["callback"]["location_id"] for c in created] == [THERE]
    # The team that calls back follows its ticket's link to the file, which stays here: it reads it, and
    # is offered nothing to change.
    there = await signed_in(pages_gateway, "anderswo-rueckruf", location=THERE)
    queue = await (await there.get(f"/staff/locations/{THERE}/callbacks")).text()
    assert f'href="/staff/appointments/{second["id"]}"' in queue and "Telefon 0421 765432" in queue
    # A ticket whose customer has no number (one opened before numbers were required) says so.
    await pool.execute("UPDATE appointments SET phone = NULL WHERE id = $1", second["id"])
    queue = await (await there.get(f"/staff/locations/{THERE}/callbacks")).text()
    assert "<strong>keine Telefonnummer</strong>" in queue
    handed = await there.get(f"/staff/appointments/{second['id']}")
    html = await handed.text()
    assert handed.status == 200 and second["reference"] in html and "Mustermann" in html
    assert "abgesagt" in html and f"/staff/appointments/{second['id']}/cancel" not in html
    nowhere = await form(browser, f"/staff/appointments/{second['id']}/transfer", location_id="", choice="x")
    assert nowhere.status in (403, 422) and "Traceback" not in await nowhere.text()


@pytest.mark.req("R37")
@pytest.mark.req("R41")
async def test_staff_move_an_appointment_to_another_free_slot_from_its_file_and_the_customer_is_told(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    booked = await book(client, TUESDAY, "08:00")
    browser = await signed_in(pages_gateway, "verlegen")
    file_path = f"/staff/appointments/{booked['id']}"
    html = await (await browser.get(file_path)).text()
    assert '<h2 id="h-move">Termin verlegen</h2>' in html
    assert not slot_buttons(html, f"{file_path}/reschedule")  # the slots come on request only

    html = await (await browser.get(file_path, params={"move": "1"})).text()
    starts = slot_buttons(html, f"{file_path}/reschedule")
    assert starts and factory.iso(TUESDAY, "08:15") in starts
    # A caller who wants a later day: the free times from that day on.
    html = await (await browser.get(file_path, params={"move": "1", "from": "2026-03-17"})).text()
    later = slot_buttons(html, f"{file_path}/reschedule")
    assert later and all(start >= "2026-03-17" for start in later)
    assert 'name="from" type="date" value="2026-03-17"' in html
    # A day at the end of the calendar (a typing slip in the address bar) lists from today, no error.
    for far in ("9999-12-31", "0001-01-01"):
        page = await browser.get(file_path, params={"move": "1", "from": far})
        assert page.status == 200 and slot_buttons(await page.text(), f"{file_path}/reschedule") == starts
    no_token = await browser.post(f"{file_path}/reschedule", data={"start": starts[0]})
    assert no_token.status == 403

    moved = await form(browser, f"{file_path}/reschedule", start=factory.iso(TUESDAY, "08:15"))
    assert moved.status == 303 and moved.headers["Location"] == f"{file_path}?notice=moved"
    html = await (await browser.get(moved.headers["Location"])).text()
    assert 'role="status">Der Termin ist verlegt' in html
    assert "Verlegt durch Mitarbeitende" in html and "Dienstag, 3. März 2026, 08:15 Uhr" in html
    event = (await events(pool, "appointment.rescheduled"))[0]
    assert event["appointment"]["id"] == booked["id"]
    entries = await audit_rows(pages_gateway, entity="appointment")
    assert [e["action"] for e in entries] == ["reschedule"]

    # A start that is no slot is explained on the file, not a bare error.
    wrong = await form(
        browser, f"{file_path}/reschedule", start=factory.iso(TUESDAY, "08:07"), **{"from": "2026-03-17"}
    )
    html = await wrong.text()
    assert wrong.status == 422 and "Zeit" in html
    # ... with the free times (from the day they were listed from) again, one click from another one, and
    # the page's own controls lead to the file, not to the address the form was posted to.
    again = slot_buttons(html, f"{file_path}/reschedule")
    assert again and all(start >= "2026-03-17" for start in again)
    assert f'action="{file_path}#h-move"' in html and f'action="{file_path}/reschedule#' not in html


@pytest.mark.req("R41")
async def test_a_move_to_a_time_that_passed_meanwhile_asks_for_another_time_not_says_the_appointment_began(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """Booking's `too_late` naming `start` (a list of times left open over lunch): the file says the time
    has passed and offers the free times again; the appointment itself is still ahead and unchanged."""
    booked = await book(client, "2026-03-04", "09:00")
    clock.set(factory.at(TUESDAY, "12:05"))
    browser = await signed_in(pages_gateway, "verlegen")
    file_path = f"/staff/appointments/{booked['id']}"
    refused = await form(browser, f"{file_path}/reschedule", start=factory.iso(TUESDAY, "11:00"))
    html = await refused.text()
    assert refused.status == 409
    assert "Diese Zeit ist schon vorbei. Bitte wählen Sie eine andere." in html
    assert "Der Termin hat begonnen" not in html
    assert slot_buttons(html, f"{file_path}/reschedule")  # another time is one click away
    assert await pool.fetchval("SELECT start_at FROM appointments") == factory.at("2026-03-04", "09:00")


@pytest.mark.req("R12")
@pytest.mark.req("R41")
async def test_staff_move_a_caller_to_an_evening_slot_from_the_file_and_the_customer_still_declares_it(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    """A caller who can only come after work: staff move the appointment to an evening time knowingly
    (as for a follow-up or a transfer); on the manage page the customer still declares it."""
    booked = await book(client, TUESDAY, "08:00")
    browser = await signed_in(pages_gateway, "abends")
    file_path = f"/staff/appointments/{booked['id']}"
    evening = factory.iso("2026-03-05", "16:00")  # Thursday: the entrance zone's evening window
    moved = await form(browser, f"{file_path}/reschedule", start=evening, **{"from": "2026-03-05"})
    assert moved.status == 303, await moved.text()
    html = await (await browser.get(moved.headers["Location"])).text()
    assert "Donnerstag, 5. März 2026, 16:00 Uhr" in html and "(Abendtermin)" in html
    row = await pool.fetchrow(
        "SELECT evening, evening_declared FROM appointments WHERE id = $1", booked["id"]
    )
    assert (row["evening"], row["evening_declared"]) == (True, True)

    # The customer's own move to an evening time still needs the declaration, named at its field.
    other = await book(client, TUESDAY, "08:15")
    token = other["manage_url"].split("token=")[1]
    refused = await client.post(
        f"/api/v1/appointments/{other['id']}/reschedule",
        json={"start": factory.iso("2026-03-05", "16:15")},
        headers={"X-Manage-Token": token},
    )
    assert refused.status == 422
    assert (await refused.json())["error"]["details"][0]["field"] == "evening_declaration"


@pytest.mark.req("R41")
@pytest.mark.req("R27")
async def test_staff_send_a_caller_a_new_manage_link_and_the_history_and_audit_say_who(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    booked = await book(client, TUESDAY, "08:00")
    booked["id"] = str(booked["id"])
    old_token = booked["manage_url"].split("token=")[1]
    browser = await signed_in(pages_gateway, "neuer-link")
    page = await (await browser.get(f"/staff/appointments/{booked['id']}")).text()
    email = await pool.fetchval("SELECT email FROM appointments WHERE id = $1", booked["id"])
    assert "Link zum Termin neu senden" in page and email in page  # where the mail goes

    path = f"/staff/appointments/{booked['id']}/manage-link"
    assert (await browser.post(path, data={})).status == 403  # without the form's token
    done = await form(browser, path)
    assert done.status == 303, await done.text()
    assert done.headers["Location"] == f"/staff/appointments/{booked['id']}?notice=link_sent"
    html = await (await browser.get(done.headers["Location"])).text()
    assert 'role="status">Die Kundin / der Kunde erhält einen neuen Link' in html
    assert "Neuen Link zum Termin gesendet" in html  # the history

    [renewed] = await events(pool, "appointment.link_renewed")
    assert renewed["appointment"]["id"] == booked["id"] and renewed["appointment"]["revision"] == 2
    assert old_token not in renewed["appointment"]["manage_url"]
    old = await client.get(f"/api/v1/appointments/{booked['id']}", params={"token": old_token})
    assert old.status == 403
    entries = await audit_rows(pages_gateway, entity="appointment")
    assert len(entries) == 1 and entries[0]["entity_id"] == booked["id"]

    # A cancelled appointment has no link to send: the page says why, nothing is sent.
    cancel_path = f"/staff/appointments/{booked['id']}/cancel"
    await form(browser, cancel_path, reason="Kundin verhindert", by="customer")
    refused = await form(browser, path)
    assert refused.status == 409
    assert len(await events(pool, "appointment.link_renewed")) == 1


@pytest.mark.req("R41")
async def test_staff_correct_the_contact_data_from_the_file_and_a_refusal_keeps_what_they_typed(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    taken = await book(client, TUESDAY, "08:00", email="vergeben@example.org")
    booked = await book(client, TUESDAY, "08:15", email="erika@exmaple.org")
    old_token = booked["manage_url"].split("token=")[1]
    browser = await signed_in(pages_gateway, "kontakt")
    path = f"/staff/appointments/{booked['id']}"
    page = await (await browser.get(path)).text()
    assert "Kontaktdaten korrigieren" in page and 'value="erika@exmaple.org"' in page
    assert "der Link an die alte Adresse funktioniert danach nicht mehr" in page
    # What the number is for comes first, then how to say there is none.
    assert (
        '<span class="hint" id="contact-phone-hint">Für einen Rückruf nötig. Leer lassen oder leeren, '
        "wenn es keine Nummer gibt.</span>" in page
    )
    fields = {
        "contact_first_name": "Erika",
        "contact_last_name": "Mustermann",
        "contact_email": "erika@exmaple.org",
        "contact_phone": "",
    }
    assert (await browser.post(f"{path}/contact", data=fields)).status == 403  # without the form's token

    # A bad address: the summary links to the field, which says what is wrong; the typed values stay.
    refused = await form(
        browser, f"{path}/contact", **{**fields, "contact_email": "erika@", "contact_phone": "0421 1234"}
    )
    html = await refused.text()
    assert refused.status == 422
    assert '<a href="#contact-email">E-Mail-Adresse: bitte prüfen' in html
    assert (
        'id="contact-email-error"' in html
        and 'aria-describedby="contact-email-hint contact-email-error"' in html
    )
    assert 'value="erika@"' in html and 'value="0421 1234"' in html
    # Another pending appointment under the new address (R5): said at the field.
    conflict = await form(browser, f"{path}/contact", **{**fields, "contact_email": "Vergeben@example.org"})
    assert conflict.status == 409
    assert "schon ein anderer offener Termin gebucht" in await conflict.text()
    assert await events(pool, "appointment.contact_changed") == []

    done = await form(browser, f"{path}/contact", **{**fields, "contact_email": "erika@example.org"})
    assert done.status == 303, await done.text()
    assert done.headers["Location"] == f"{path}?notice=contact_email#h-contact"
    html = await (await browser.get(f"{path}?notice=contact_email")).text()
    assert 'tabindex="-1">Die Kontaktdaten sind gespeichert. Die Bestätigung mit einem neuen Link' in html
    assert "Kontaktdaten korrigiert: E-Mail-Adresse" in html  # the history names the field, not the data
    assert (
        await client.get(f"/api/v1/appointments/{booked['id']}", params={"token": old_token})
    ).status == 403
    [changed] = await events(pool, "appointment.contact_changed")
    assert changed["email_changed"] and changed["appointment"]["customer"]["email"] == "erika@example.org"
    [entry] = [
        e for e in await audit_rows(pages_gateway, entity="appointment") if e["route"].endswith("/contact")
    ]
    assert entry["entity_id"] == booked["id"] and "erika" not in str(entry["changes"])

    # A number alone: saved, no new link.
    phone = await form(
        browser,
        f"{path}/contact",
        **{**fields, "contact_email": "erika@example.org", "contact_phone": "0421 55 66"},
    )
    assert phone.headers["Location"] == f"{path}?notice=contact#h-contact"
    assert [e["email_changed"] for e in await events(pool, "appointment.contact_changed")] == [True, False]
    assert taken["id"] != booked["id"]


@pytest.mark.req("R23")
async def test_at_the_counter_staff_add_a_phone_number_for_a_callback_but_no_longer_change_the_address(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    booked = await book(client, TUESDAY, "08:15", email="erika@example.org")
    clock.set(factory.at(TUESDAY, "08:20"))  # the customer sits at the counter
    browser = await signed_in(pages_gateway, "kontakt")
    path = f"/staff/appointments/{booked['id']}"
    page = await (await browser.get(path)).text()
    assert "Kontaktdaten korrigieren" in page and "die E-Mail-Adresse nicht mehr" in page
    assert 'id="contact-email"' not in page and "E-Mail-Adresse: erika@example.org" in page
    fields = {"contact_first_name": "Erika", "contact_last_name": "Mustermann", "contact_phone": "0421 55 66"}
    done = await form(browser, f"{path}/contact", **fields)
    assert done.status == 303, await done.text()
    assert done.headers["Location"] == f"{path}?notice=contact#h-contact"
    [changed] = await events(pool, "appointment.contact_changed")
    assert not changed["email_changed"] and changed["appointment"]["customer"]["phone"] == "0421 55 66"


@pytest.mark.req("R34")
@pytest.mark.req("R30")
async def test_a_location_administrator_erases_a_cancelled_appointments_data_from_its_file(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    """Art. 17 GDPR from the file: only a location administrator, only once the appointment is cancelled
    or has begun, only with the box ticked that a request was made."""
    booked = await book(client, TUESDAY, "08:00")
    booked["id"] = str(booked["id"])
    email = await pool.fetchval("SELECT email FROM appointments WHERE id = $1", booked["id"])
    manager = await signed_in(pages_gateway, "loesch-manager")
    admin = await signed_in(pages_gateway, "loesch-admin", Role.LOCATION_ADMIN)
    file_path = f"/staff/appointments/{booked['id']}"
    path = f"{file_path}/erase"
    assert "Daten jetzt löschen" not in await (await admin.get(file_path)).text()  # still to come
    await form(admin, f"{file_path}/cancel", reason="Kundin zieht weg", by="customer")
    assert "Daten jetzt löschen" in await (await admin.get(file_path)).text()
    assert "Daten jetzt löschen" not in await (await manager.get(file_path)).text()
    assert (await form(manager, path, confirm="yes")).status == 403

    unconfirmed = await form(admin, path)
    html = await unconfirmed.text()
    assert (
        unconfirmed.status == 422 and "Bitte bestätigen Sie, dass ein Antrag auf Löschung vorliegt." in html
    )
    assert 'aria-describedby="erase-confirm-hint erase-confirm-error" aria-invalid="true"' in html
    assert await pool.fetchval("SELECT email FROM appointments WHERE id = $1", booked["id"]) == email

    done = await form(admin, path, confirm="yes")
    assert done.status == 303 and done.headers["Location"] == f"{file_path}?notice=erased"
    html = await (await admin.get(done.headers["Location"])).text()
    assert 'role="status">Die personenbezogenen Daten dieses Termins sind gelöscht' in html
    assert "Personenbezogene Daten auf Antrag gelöscht (Art. 17 DSGVO)" in html  # the history
    assert email not in html and "Daten jetzt löschen" not in html
    assert "Die personenbezogenen Daten dieses Termins sind gelöscht (nach Ablauf" in html
    assert [e["appointment_id"] for e in await events(pool, "appointment.personal_data_erased")] == [
        booked["id"]
    ]
    entries = await audit_rows(pages_gateway, entity="appointment")
    assert [e["action"] for e in entries][-1] == "erase"


@pytest.mark.req("R9")
async def test_the_cancel_form_asks_for_the_reason_in_the_language_the_customer_gets_mail_in(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    """The reason of a jobcenter's cancellation goes into the mail as typed, also to an English customer."""
    booked = await book(client, TUESDAY, "08:30", language="en")
    browser = await signed_in(pages_gateway, "absage")
    html = await (await browser.get(f"/staff/appointments/{booked['id']}")).text()
    hint = re.search(r'id="cancel-reason-hint">([^<]*)<', html)
    assert hint, html
    assert "so wie Sie ihn schreiben" in hint.group(1)
    assert hint.group(1).endswith("in der Sprache der Buchung: Englisch.")
