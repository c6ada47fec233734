"""Staff and the service centre correct a booking's contact data (`POST /api/v1/staff/appointments/{id}/
contact`): a typo in the address, a number for a callback, a misspelt name. Only the fields sent change,
with the booking's rules; a new address is the customer's key of the one-appointment rule (R5) and gets a
new manage link (R41), the change and its event commit together (I3)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.booking import staff_db
from services.booking.domain import AlreadyBookedError
from shared.clock import ManualClock
from shared.config import CommonSettings
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from tests.booking import factory
from tests.booking.conftest import allow
from tests.server_log import server_log_during
from tests.staff_work.conftest import HERE, Staff, book, events

TUESDAY = "2026-03-03"


def _path(appointment: dict[str, Any]) -> str:
    return f"/api/v1/staff/appointments/{appointment['id']}/contact"


def _token(url: str) -> str:
    return url.split("token=", 1)[1]


async def _view(client: TestClient[Any, Any], appointment_id: str, token: str) -> int:
    response = await client.get(f"/api/v1/appointments/{appointment_id}", params={"token": token})
    return response.status


async def _stored(pool: asyncpg.Pool, appointment_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT first_name, last_name, email, phone, email_key, revision FROM appointments WHERE id = $1",
        appointment_id,
    )
    return dict(row)


@pytest.mark.req("R41")
async def test_a_corrected_address_gets_a_new_manage_link_and_the_old_link_stops_opening_it(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    appointment = await book(client, TUESDAY, "08:00", email="erika.mustermann@exmaple.org")
    old_token = _token(appointment["manage_url"])
    response = await manager.post(
        _path(appointment),
        {"email": " Erika.Mustermann@EXAMPLE.org ", "last_name": " Musterfrau ", "phone": "0421 987654"},
    )
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["id"] == appointment["id"] and answer["status"] == "booked"
    assert answer["customer"]["email"] == "Erika.Mustermann@example.org"  # normalised as at booking
    assert (answer["customer"]["first_name"], answer["customer"]["last_name"]) == ("Erika", "Musterfrau")
    assert answer["customer"]["phone"] == "0421 987654"
    assert "manage_url" not in answer  # the customer's token is the customer's, not staff's
    assert await _stored(pool, appointment["id"]) == {
        "first_name": "Erika",
        "last_name": "Musterfrau",
        "email": "Erika.Mustermann@example.org",
        "phone": "0421 987654",
        "email_key": "erika.mustermann@example.org",
        "revision": 2,
    }
    [event] = await events(pool, "appointment.contact_changed")
    assert event["email_changed"] is True and event["appointment"]["revision"] == 2
    assert event["appointment"]["customer"]["email"] == "Erika.Mustermann@example.org"
    new_token = _token(event["appointment"]["manage_url"])
    # The link sent to the mistyped address (maybe a stranger's) no longer opens the appointment.
    assert await _view(client, appointment["id"], old_token) == 403  # forbidden: not its link
    assert await _view(client, appointment["id"], new_token) == 200
    # The file says who changed which fields, never the data themselves.
    file = await (await manager.get(f"/api/v1/staff/appointments/{appointment['id']}")).json()
    [entry] = [h for h in file["history"] if h["kind"] == "contact_changed"]
    assert entry["actor"] == "user:kim" and entry["detail"] == {"fields": ["last_name", "email", "phone"]}


async def test_a_phone_number_alone_keeps_the_link_and_a_removed_number_is_gone(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    appointment = await book(client, TUESDAY, "08:00")
    response = await manager.post(_path(appointment), {"phone": "0421 55 66 77"})
    assert response.status == 200, await response.text()
    [event] = await events(pool, "appointment.contact_changed")
    assert event["email_changed"] is False
    assert "token=" not in event["appointment"]["manage_url"]  # the bare page: no new link
    assert await _view(client, appointment["id"], _token(appointment["manage_url"])) == 200
    removed = await manager.post(_path(appointment), {"phone": None})
    assert removed.status == 200 and (await removed.json())["customer"]["phone"] is None
    assert (await _stored(pool, appointment["id"]))["phone"] is None
    # The same data again change nothing: no revision, no event.
    assert (await manager.post(_path(appointment), {"phone": ""})).status == 200
    assert [e["appointment"]["revision"] for e in await events(pool, "appointment.contact_changed")] == [2, 3]


async def test_bad_contact_data_are_refused_at_their_field_and_nothing_changes(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    appointment = await book(client, TUESDAY, "08:00")
    phone = await book(client, TUESDAY, "08:15", mode="phone")
    for body, field in (
        ({"email": "erika@"}, "email"),
        ({"email": None}, "email"),
        ({"first_name": "  "}, "first_name"),
        ({"phone": "call me"}, "phone"),
        ({"email": 42}, "email"),
    ):
        response = await manager.post(_path(appointment), body)
        answer = await response.json()
        assert response.status == 422, (body, answer)
        assert answer["error"]["code"] == "validation_error"
        assert [d["field"] for d in answer["error"]["details"]] == [field], body
    nothing = await manager.post(_path(appointment), {})
    assert nothing.status == 422
    # R4: a phone appointment keeps a number to call.
    no_number = await manager.post(_path(phone), {"phone": None})
    assert no_number.status == 422
    assert [d["field"] for d in (await no_number.json())["error"]["details"]] == ["phone"]
    assert await events(pool, "appointment.contact_changed") == []
    assert (await _stored(pool, appointment["id"]))["revision"] == 1


@pytest.mark.req("R5")
async def test_a_new_address_with_another_pending_appointment_is_refused_by_the_database(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    await book(client, TUESDAY, "08:00", email="schon.gebucht@example.org")
    appointment = await book(client, TUESDAY, "08:15")
    response = await manager.post(_path(appointment), {"email": "Schon.Gebucht@example.org"})
    answer = await response.json()
    assert response.status == 409 and answer["error"]["code"] == "already_booked"
    assert [d["field"] for d in answer["error"]["details"]] == ["email"]
    assert "gebucht" not in str(answer).lower()  # the address is never echoed
    assert (await _stored(pool, appointment["id"]))["revision"] == 1
    assert await events(pool, "appointment.contact_changed") == []
    # The new key holds for bookings too: the corrected address now blocks a second booking (I2).
    moved = await manager.post(_path(appointment), {"email": "neu@example.org"})
    assert moved.status == 200
    again = await client.post(
        "/api/v1/appointments",
        json=factory.booking(factory.iso(TUESDAY, "09:00"), email="NEU@example.org"),
    )
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_booked"


@pytest.mark.req("R6")
async def test_an_internal_address_may_be_used_for_any_number_of_appointments(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    await allow(pool, "@jobcenter.example")
    first = await book(client, TUESDAY, "08:00")
    second = await book(client, TUESDAY, "08:15")
    for appointment in (first, second):
        response = await manager.post(_path(appointment), {"email": "servicecenter@jobcenter.example"})
        assert response.status == 200, await response.text()
        assert (await _stored(pool, appointment["id"]))["email_key"] is None


@pytest.mark.req("R6")
async def test_a_name_correction_keeps_the_key_the_booking_was_made_with(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    """The service centre booked two callers under its address while it was allow-listed; the address
    left the list since. Correcting a name touches neither appointment's e-mail rule."""
    await allow(pool, "@jobcenter.example")
    first = await book(client, TUESDAY, "08:00", email="servicecenter@jobcenter.example")
    second = await book(client, TUESDAY, "08:15", email="servicecenter@jobcenter.example")
    await allow(pool, revision=2)
    for appointment in (first, second):
        response = await manager.post(_path(appointment), {"last_name": "Korrigiert"})
        assert response.status == 200, await response.text()
        assert (await _stored(pool, appointment["id"]))["email_key"] is None


@pytest.mark.req("R23")
async def test_after_the_start_only_name_and_phone_change_and_a_cancelled_or_erased_one_not_at_all(
    client: TestClient[Any, Any],
    manager: Staff,
    location_admin: Staff,
    pool: asyncpg.Pool,
    clock: ManualClock,
) -> None:
    cancelled = await book(client, TUESDAY, "08:00")
    assert (
        await manager.post(f"/api/v1/staff/appointments/{cancelled['id']}/cancel", {"reason": "Krank"})
    ).status == 200
    refused = await manager.post(_path(cancelled), {"phone": "0421 123456"})
    assert refused.status == 409 and (await refused.json())["error"]["code"] == "not_changeable"
    past = await book(client, TUESDAY, "08:15")
    clock.advance(timedelta(days=2))
    # A new address would get the confirmation of an appointment that is over.
    late = await manager.post(_path(past), {"email": "neu@example.org", "phone": "0421 123456"})
    assert late.status == 409 and (await late.json())["error"]["code"] == "too_late"
    assert await events(pool, "appointment.contact_changed") == []
    # At the counter the customer gives a number for the callback the clerk is about to promise.
    added = await manager.post(_path(past), {"phone": "0421 123456"})
    assert added.status == 200, await added.text()
    assert (await _stored(pool, past["id"]))["phone"] == "0421 123456"
    assert len(await events(pool, "appointment.contact_changed")) == 1
    # Erased data (Art. 17, R34) do not come back through a correction.
    erased = await location_admin.post(f"/api/v1/staff/appointments/{past['id']}/erase")
    assert erased.status == 200, await erased.text()
    again = await manager.post(_path(past), {"phone": "0421 999999"})
    assert again.status == 409 and (await again.json())["error"]["code"] == "not_changeable"


@pytest.mark.req("R28")
@pytest.mark.req("R37")
async def test_staff_of_the_location_and_the_service_centre_change_it_and_others_are_refused(
    client: TestClient[Any, Any], manager: Staff, other_manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    appointment = await book(client, TUESDAY, "08:00")
    assert (await other_manager.post(_path(appointment), {"phone": "0421 123456"})).status == 403
    missing = await manager.post(
        "/api/v1/staff/appointments/00000000-0000-0000-0000-000000000000/contact", {"phone": "0421 1"}
    )
    assert missing.status in (404, 422)

    def api_key(*operations: str) -> dict[str, str]:
        identity = StaffIdentity(
            subject="key-1",
            kind=IdentityKind.API_KEY,
            grants=(Grant(role=Role.SERVICE_CENTRE, locations=(HERE,)),),
            issued_at=clock.now(),
            operations=operations,
        )
        return {HEADER: sign(identity, CommonSettings().internal_secret)}

    reading = await client.post(
        _path(appointment), json={"phone": "0421 123456"}, headers=api_key("appointments:read")
    )
    assert reading.status == 403
    response = await client.post(
        _path(appointment), json={"phone": "0421 123456"}, headers=api_key("appointments:write")
    )
    assert response.status == 200, await response.text()
    file = await (await manager.get(f"/api/v1/staff/appointments/{appointment['id']}")).json()
    assert [h["actor"] for h in file["history"] if h["kind"] == "contact_changed"] == ["api_key:key-1"]


@pytest.mark.req("R23")
@pytest.mark.req("R49")
async def test_a_callback_is_promised_once_a_number_was_added(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    silent = await book(client, TUESDAY, "10:00")  # in person, no phone number
    clock.set(factory.at(TUESDAY, "09:30"))  # the appointment's day, before its start
    outcome_path = f"/api/v1/staff/appointments/{silent['id']}/outcome"
    refused = await manager.post(outcome_path, {"outcome": "callback"})
    assert refused.status == 422
    assert (await manager.post(_path(silent), {"phone": "0421 123456"})).status == 200
    promised = await manager.post(outcome_path, {"outcome": "callback"})
    assert promised.status == 200, await promised.text()
    assert (await promised.json())["callback"]["team"]
    assert len(await events(pool, "callback.created")) == 1


@pytest.mark.req("R5")
@pytest.mark.req("R34")
async def test_a_refused_address_correction_writes_no_address_into_the_database_server_log(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    await book(client, TUESDAY, "08:00", email="belegt.vom.anderen@example.org")
    appointment = await book(client, TUESDAY, "08:15")
    answers: list[Any] = []

    async def correct() -> None:
        answers.append(await manager.post(_path(appointment), {"email": "Belegt.vom.Anderen@example.org"}))

    logged = await server_log_during(pool, correct)
    assert answers[0].status == 409 and (await answers[0].json())["error"]["code"] == "already_booked"
    assert "belegt.vom.anderen" not in logged.lower()
    assert (await _stored(pool, appointment["id"]))["revision"] == 1


@pytest.mark.req("R5")
async def test_the_database_refuses_the_corrected_address_without_an_error_in_the_transaction(
    client: TestClient[Any, Any], pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """An ERROR in the server ends the transaction and goes into its log: the refusal raises none."""
    await book(client, TUESDAY, "08:00", email="belegt@example.org")
    appointment = await book(client, TUESDAY, "08:15")
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(AlreadyBookedError) as refused:
            await staff_db.change_contact(
                conn,
                uuid.UUID(appointment["id"]),
                first_name="Erika",
                last_name="Mustermann",
                email="belegt@example.org",
                phone=None,
                email_key="belegt@example.org",
                token_hash=hashlib.sha256(b"new token").digest(),
                now=clock.now(),
            )
        assert [d["field"] for d in refused.value.details] == ["customer.email"]
        assert (
            await conn.fetchval(
                "SELECT revision FROM appointments WHERE id = $1", uuid.UUID(appointment["id"])
            )
            == 1
        )
