"""A contact-correction form that was loaded before a colleague changed the same customer's data does not
undo that change (R41): the form sends only the fields the clerk changed, with the revision of the
appointment it showed, and booking refuses a change made against an older revision (409 `stale`). The
page then says so in German and shows the data as they are now; nothing was changed and no mail went out."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.staff.conftest import Gateway
from tests.staff.test_location_page_forms import elements
from tests.staff.test_staff_pages import form_fields
from tests.staff_work.conftest import Staff, book, events, form, signed_in

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"
MEANWHILE = "inzwischen geändert \N{EN DASH} bitte prüfen"
STALE_DE = f"Die Kontaktdaten wurden {MEANWHILE}"


def _api(appointment: dict[str, Any]) -> str:
    return f"/api/v1/staff/appointments/{appointment['id']}/contact"


async def _stored(pool: asyncpg.Pool, appointment_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT first_name, last_name, email, phone, manage_token_hash FROM appointments WHERE id = $1",
        appointment_id,
    )
    return dict(row)


async def _shown_form(browser: Any, path: str) -> dict[str, str]:
    """The contact form's fields as the browser would send them (without the form token)."""
    html = await (await browser.get(path)).text()
    return {k: v for k, v in form_fields(html, f"{path}/contact") if k != "csrf_token"}


@pytest.mark.req("R41")
async def test_a_stale_file_page_does_not_send_a_new_link_back_to_the_mistyped_address(
    client: TestClient[Any, Any], manager: Staff, pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    booked = await book(client, TUESDAY, "08:15", email="max@gmial.de")
    browser = await signed_in(pages_gateway, "kontakt-a")
    path = f"/staff/appointments/{booked['id']}"
    shown = await _shown_form(browser, path)  # 09:00: clerk A opens the file
    assert shown["contact_email"] == "max@gmial.de"

    # 09:05: the service centre corrects the address; the customer gets a new link.
    corrected = await manager.post(_api(booked), {"email": "max@gmail.de"})
    assert corrected.status == 200, await corrected.text()
    after_correction = await _stored(pool, booked["id"])
    assert len(await events(pool, "appointment.contact_changed")) == 1

    # 09:10: A adds a phone number in the form loaded at 09:00 (it still holds the typo).
    refused = await form(browser, f"{path}/contact", **{**shown, "contact_phone": "0421 55 66"})
    html = await refused.text()
    assert refused.status == 409, html
    assert STALE_DE in html and "<title>Fehler:" in html
    # Nothing changed, nothing was sent: the corrected address and its link stay.
    assert await _stored(pool, booked["id"]) == after_correction
    assert len(await events(pool, "appointment.contact_changed")) == 1
    # The form shows the data as they are now, and keeps the number A typed; the field a colleague
    # changed says so.
    again = {k: v for k, v in form_fields(html, f"{path}/contact") if k != "csrf_token"}
    assert again["contact_email"] == "max@gmail.de" and again["contact_phone"] == "0421 55 66"
    page = elements(html)
    assert page.attrs["contact-email"].get("aria-invalid") == "true"
    assert "max@gmail.de" in page.text["contact-email-error"]
    assert (
        "#contact-email",
        "E-Mail-Adresse: inzwischen geändert \N{EN DASH} bitte prüfen",
    ) in page.summary_links

    # A checks and saves the form as it is now: the number is added, the address stays, no new link.
    saved = await form(browser, f"{path}/contact", **again)
    assert saved.status == 303, await saved.text()
    assert saved.headers["Location"] == f"{path}?notice=contact#h-contact"
    stored = await _stored(pool, booked["id"])
    assert stored == {**after_correction, "phone": "0421 55 66"}
    last = (await events(pool, "appointment.contact_changed"))[-1]
    assert last["email_changed"] is False


@pytest.mark.req("R23")
async def test_a_stale_form_with_an_empty_phone_field_does_not_delete_a_colleagues_number(
    client: TestClient[Any, Any], manager: Staff, pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    booked = await book(client, TUESDAY, "08:15", email="erika@example.org")
    browser = await signed_in(pages_gateway, "kontakt-a")
    path = f"/staff/appointments/{booked['id']}"
    shown = await _shown_form(browser, path)
    assert shown["contact_phone"] == ""
    # Colleague B adds a number for a callback.
    assert (await manager.post(_api(booked), {"phone": "0421 123456"})).status == 200
    # A corrects the last name in the form loaded before, whose phone field is empty.
    refused = await form(browser, f"{path}/contact", **{**shown, "contact_last_name": "Musterfrau"})
    assert refused.status == 409 and STALE_DE in await refused.text()
    stored = await _stored(pool, booked["id"])
    assert (stored["last_name"], stored["phone"]) == ("Mustermann", "0421 123456")


async def test_a_form_without_the_revision_still_sends_only_the_fields_the_clerk_changed(
    client: TestClient[Any, Any], manager: Staff, pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    """A page rendered before this version of the gateway has no revision field (a rolling update): the
    fields it showed still keep a colleague's change of another field."""
    booked = await book(client, TUESDAY, "08:15", email="max@gmial.de")
    browser = await signed_in(pages_gateway, "kontakt-a")
    path = f"/staff/appointments/{booked['id']}"
    shown = await _shown_form(browser, path)
    assert "contact_revision" in shown
    del shown["contact_revision"]
    assert (await manager.post(_api(booked), {"email": "max@gmail.de"})).status == 200
    token = (await _stored(pool, booked["id"]))["manage_token_hash"]
    saved = await form(browser, f"{path}/contact", **{**shown, "contact_phone": "0421 55 66"})
    assert saved.status == 303, await saved.text()
    stored = await _stored(pool, booked["id"])
    assert (stored["email"], stored["phone"], stored["manage_token_hash"]) == (
        "max@gmail.de",
        "0421 55 66",
        token,
    )
    # A form that changed nothing changes nothing.
    unchanged = await form(browser, f"{path}/contact", **await _shown_form(browser, path))
    assert unchanged.status == 303
    assert len(await events(pool, "appointment.contact_changed")) == 2


async def test_a_change_of_something_else_meanwhile_does_not_refuse_the_correction(
    client: TestClient[Any, Any], manager: Staff, pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    """A colleague sent the customer a new link (the appointment's revision moved on, its contact data
    did not): the number A adds is saved without a refusal."""
    booked = await book(client, TUESDAY, "08:15", email="erika@example.org")
    browser = await signed_in(pages_gateway, "kontakt-a")
    path = f"/staff/appointments/{booked['id']}"
    shown = await _shown_form(browser, path)
    assert (await manager.post(f"/api/v1/staff/appointments/{booked['id']}/manage-link")).status == 202
    saved = await form(browser, f"{path}/contact", **{**shown, "contact_phone": "0421 55 66"})
    assert saved.status == 303, await saved.text()
    assert (await _stored(pool, booked["id"]))["phone"] == "0421 55 66"


async def test_the_api_refuses_a_contact_change_made_against_an_older_revision(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    booked = await book(client, TUESDAY, "08:15", email="max@gmial.de")
    file = await (await manager.get(f"/api/v1/staff/appointments/{booked['id']}")).json()
    seen = file["revision"]
    assert seen == 1
    assert (await manager.post(_api(booked), {"email": "max@gmail.de"})).status == 200
    stale = await manager.post(_api(booked), {"phone": "0421 55 66", "expected_revision": seen})
    answer = await stale.json()
    assert stale.status == 409 and answer["error"]["code"] == "stale", answer
    assert (await _stored(pool, booked["id"]))["phone"] is None
    assert len(await events(pool, "appointment.contact_changed")) == 1
    current = await (await manager.get(f"/api/v1/staff/appointments/{booked['id']}")).json()
    assert current["revision"] == 2
    fresh = await manager.post(_api(booked), {"phone": "0421 55 66", "expected_revision": 2})
    assert fresh.status == 200, await fresh.text()
    assert (await fresh.json())["revision"] == 3
    # Without it, as before: the change is made.
    assert (await manager.post(_api(booked), {"last_name": "Muster"})).status == 200
