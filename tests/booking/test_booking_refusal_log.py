"""R5, R47, R34: the one-appointment rule refuses a second pending appointment by the database's own
guarantee (the partial unique indexes, I2), without an ERROR in the database server: every ERROR goes into
the server's log with its DETAIL, and a unique violation's DETAIL names the key's value (the customer's
e-mail address, customer or household number), where no retention or erasure of OTV reaches it."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import asyncpg
import pytest

from services.booking import db
from services.booking.domain import AlreadyBookedError, NewAppointment
from shared.clock import BERLIN
from tests.booking.factory import at, booking
from tests.booking.test_booking_book import Client, book
from tests.server_log import server_log_during

EMAIL = "doppelt.{}@example.org"
NUMBER, HOUSEHOLD = "731D{:06d}", "73100BG{:07d}"


def _customer() -> dict[str, str]:
    n = uuid.uuid4().int % 1_000_000
    return {
        "email": EMAIL.format(n),
        "customer_number": NUMBER.format(n),
        "household_number": HOUSEHOLD.format(n),
    }


@pytest.mark.req("R5")
@pytest.mark.req("R47")
@pytest.mark.req("R34")
async def test_a_refused_second_booking_writes_no_address_or_number_into_the_database_server_log(
    client: Client, pool: asyncpg.Pool
) -> None:
    customer = _customer()
    first = booking(at("2026-03-03", "09:00").isoformat(), customer=dict(customer))
    assert (await book(client, first))[0] == 201
    other = _customer()
    attempts = {
        "customer.email": {**other, "email": customer["email"].upper()},
        "customer.customer_number": {**other, "customer_number": customer["customer_number"]},
        "customer.household_number": {
            **other,
            "customer_number": "",
            "household_number": customer["household_number"],
        },
    }
    refusals: dict[str, Any] = {}

    async def refused_attempts() -> None:
        for field, data in attempts.items():
            body = booking(at("2026-03-04", "09:00").isoformat(), customer=data)
            if not data["customer_number"]:
                body["customer"].pop("customer_number")
            refusals[field] = await book(client, body)

    logged = await server_log_during(pool, refused_attempts)
    for field, (status, answer) in refusals.items():
        assert status == 409 and answer["error"]["code"] == "already_booked", answer
        assert answer["error"]["details"][0]["field"] == field
    for value in customer.values():
        assert value not in logged and value.lower() not in logged
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 1


def _new(email_key: str, number: str) -> NewAppointment:
    start = at("2026-03-03", "10:00")
    return NewAppointment(
        id=uuid.uuid4(),
        reference=f"T{uuid.uuid4().hex[:3].upper()}-{uuid.uuid4().hex[:4].upper()}",
        location_id="teststadt",
        group_id="ez",
        concern_id="veraenderung",
        mode="in_person",
        channel="online",
        language="de",
        start=start,
        end=start.replace(minute=15),
        evening=False,
        evening_declared=False,
        interpreter_language=None,
        first_name="Erika",
        last_name="Mustermann",
        email=email_key,
        phone=None,
        customer_number=number,
        household_number=None,
        email_key=email_key,
        customer_number_key=number,
        household_number_key=None,
        manage_token_hash=hashlib.sha256(uuid.uuid4().bytes).digest(),
        location_name="Jobcenter Teststadt",
        location_address="Teststraße 1, 28195 Bremen",
        concern_name="Mitteilung einer Veränderung",
        documents=[],
        sensitive=False,
        emergency=False,
        booked_at=start.astimezone(BERLIN).replace(day=2),
    )


@pytest.mark.req("R5")
@pytest.mark.req("R47")
async def test_the_database_refuses_a_second_pending_appointment_without_an_error_in_the_transaction(
    located: asyncpg.Pool,
) -> None:
    """An ERROR in the server ends the transaction (nothing but ROLLBACK works after it): that the caller's
    transaction goes on after the refusal shows that the server raised none, and logged none."""
    customer = _customer()
    first = _new(customer["email"], customer["customer_number"])
    async with located.acquire() as conn, conn.transaction():
        assert await db.insert_appointment(conn, first, 1, first.booked_at)
        for second in (
            _new(customer["email"], "999D999999"),
            _new("someone.else@example.org", customer["customer_number"]),
        ):
            with pytest.raises(AlreadyBookedError):
                await db.insert_appointment(conn, second, 2, first.booked_at)
            assert await conn.fetchval("SELECT count(*) FROM appointments WHERE id = $1", first.id) == 1
        # The point itself still refuses a second appointment at that time (I1): no row, no error.
        assert not await db.insert_appointment(
            conn, _new("third@example.org", "111D111111"), 1, first.booked_at
        )
        assert await conn.fetchval("SELECT 1") == 1
