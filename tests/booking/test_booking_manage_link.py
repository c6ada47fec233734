"""The manage link again (R41): a customer who lost the confirmation mail asks for the link with the
address they booked with. The appointment gets a new token (the old link stops working), the mail
follows through `appointment.link_renewed`, and the answer never tells whether the address booked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.clock import ManualClock
from tests.booking.conftest import counts
from tests.booking.factory import iso
from tests.booking.test_booking_manage import booked

Client = TestClient[Any, Any]
TUESDAY_10 = iso("2026-03-03", "10:00")
LINKS = "/api/v1/manage-links"


async def renewals(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT envelope FROM outbox WHERE type = 'appointment.link_renewed' ORDER BY seq"
    )
    return [r["envelope"]["data"]["appointment"] for r in rows]


async def ask(client: Client, email: str) -> dict[str, Any]:
    response = await client.post(LINKS, json={"email": email})
    body: dict[str, Any] = await response.json()
    assert response.status == 202, body
    return body


@pytest.mark.req("R41")
async def test_asking_again_gives_a_new_link_and_the_old_one_stops_working(
    client: Client, pool: asyncpg.Pool
) -> None:
    appointment_id, old_token = await booked(client, email="lost.mail@example.org")
    assert await ask(client, "Lost.Mail@Example.org ") == {"status": "accepted"}  # as typed, any case

    [renewed] = await renewals(pool)
    assert renewed["id"] == appointment_id and renewed["revision"] == 2 and renewed["status"] == "booked"
    assert renewed["customer"]["email"] == "lost.mail@example.org"
    new_token = renewed["manage_url"].split("token=")[1]
    assert new_token and new_token != old_token
    old = await client.get(f"/api/v1/appointments/{appointment_id}", params={"token": old_token})
    assert old.status == 403 and (await old.json())["error"]["code"] == "forbidden"
    new = await client.get(f"/api/v1/appointments/{appointment_id}", params={"token": new_token})
    assert new.status == 200 and (await new.json())["start"].startswith("2026-03-03T09:00")
    # The new link does what the old one did.
    cancel = await client.post(f"/api/v1/appointments/{appointment_id}/cancel", params={"token": new_token})
    assert cancel.status == 200


@pytest.mark.req("R41")
async def test_an_address_without_appointments_gets_the_same_answer_and_nothing_changes(
    client: Client, pool: asyncpg.Pool
) -> None:
    await booked(client, email="someone@example.org")
    before = await counts(pool)
    assert await ask(client, "nobody@example.org") == {"status": "accepted"}
    assert await counts(pool) == before


@pytest.mark.req("R41")
async def test_a_link_is_renewed_at_most_every_ten_minutes(
    client: Client, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    await booked(client, email="impatient@example.org")
    await ask(client, "impatient@example.org")
    await ask(client, "impatient@example.org")  # a double click, or somebody filling a mailbox
    assert len(await renewals(pool)) == 1
    clock.advance(timedelta(minutes=10))
    await ask(client, "impatient@example.org")
    assert [r["revision"] for r in await renewals(pool)] == [2, 3]


@pytest.mark.req("R41")
async def test_cancelled_and_past_appointments_get_no_new_link(
    client: Client, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    cancelled_id, token = await booked(client, email="done@example.org")
    await client.post(f"/api/v1/appointments/{cancelled_id}/cancel", params={"token": token})
    await booked(client, TUESDAY_10, email="done@example.org")
    clock.set(clock.now() + timedelta(days=1, hours=1))  # Tuesday 11:00: both lie behind
    await ask(client, "done@example.org")
    assert await renewals(pool) == []


async def test_an_invalid_address_is_a_422_naming_the_field(client: Client, pool: asyncpg.Pool) -> None:
    for body in ({"email": "not an address"}, {}, {"email": 42}, {"email": "a@b.example\u0000"}):
        response = await client.post(LINKS, json=body)
        assert response.status == 422, body
        error = (await response.json())["error"]
        assert error["code"] == "validation_error"
        assert error["details"][0]["field"] == "email"
    assert await renewals(pool) == []
