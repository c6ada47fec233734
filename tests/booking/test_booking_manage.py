"""The customer's manage link (R41): view, cancel (R9) and reschedule with the secret token; holds (R38)
and the cool-down of a cancelled slot (R39), all with an injected clock and no job running."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from icalendar import Calendar

from shared.clock import ManualClock
from shared.identity import Role
from tests.booking import factory
from tests.booking.conftest import counts
from tests.booking.factory import at, booking, iso
from tests.staff_work.conftest import identity_header

Client = TestClient[Any, Any]
TUESDAY_9 = iso("2026-03-03", "09:00")
TUESDAY_10 = iso("2026-03-03", "10:00")


async def booked(client: Client, start: str = TUESDAY_9, **kwargs: Any) -> tuple[str, str]:
    response = await client.post("/api/v1/appointments", json=booking(start, **kwargs))
    body = await response.json()
    assert response.status == 201, body
    return body["id"], body["manage_url"].split("token=")[1]


async def free(client: Client, day: str, concern: str = "bescheid") -> list[str]:
    response = await client.get(
        f"/api/v1/locations/{factory.LOCATION}/availability",
        params={"concern": concern, "from": day, "to": day},
    )
    return [s["start"] for s in (await response.json())["slots"]]


@pytest.mark.req("R41")
async def test_the_manage_token_shows_the_appointment_by_query_or_header(client: Client) -> None:
    appointment_id, token = await booked(client)
    by_query = await client.get(f"/api/v1/appointments/{appointment_id}", params={"token": token})
    by_header = await client.get(f"/api/v1/appointments/{appointment_id}", headers={"X-Manage-Token": token})
    assert by_query.status == by_header.status == 200
    view = await by_query.json()
    assert view["id"] == appointment_id and view["status"] == "booked" and view["can_change"] is True
    assert view["customer"]["first_name"] == "Erika"
    assert by_query.headers["Cache-Control"] == "no-store"


@pytest.mark.req("R41")
async def test_a_wrong_missing_or_foreign_token_is_forbidden_an_unknown_id_not_found_and_nothing_changes(
    client: Client, pool: asyncpg.Pool
) -> None:
    """The contract's 403 `forbidden` for an appointment that exists without its manage token (a link
    replaced by a newer one, a typo), 404 `not_found` only for an appointment that does not exist."""
    mine, my_token = await booked(client)
    other, other_token = await booked(client, TUESDAY_10)
    before = await counts(pool)
    unknown = "00000000-0000-0000-0000-000000000000"
    attempts = [
        ("GET", f"/api/v1/appointments/{mine}", {"token": other_token}, None, 403),
        ("GET", f"/api/v1/appointments/{mine}", {"token": "wrong"}, None, 403),
        ("GET", f"/api/v1/appointments/{mine}", {}, None, 403),
        ("GET", f"/api/v1/appointments/{mine}", {"token": "x" * 5000}, None, 403),
        ("GET", f"/api/v1/appointments/{mine}/invitation.ics", {"token": "wrong"}, None, 403),
        ("GET", f"/api/v1/appointments/{mine}/invitation.ics", {}, None, 403),
        ("GET", f"/api/v1/appointments/{unknown}", {"token": my_token}, None, 404),
        ("GET", f"/api/v1/appointments/{unknown}/invitation.ics", {"token": my_token}, None, 404),
        ("GET", "/api/v1/appointments/not-a-uuid", {"token": my_token}, None, 404),
        ("POST", f"/api/v1/appointments/{mine}/cancel", {"token": other_token}, None, 403),
        ("POST", f"/api/v1/appointments/{mine}/cancel", {"token": "wrong"}, None, 403),
        ("POST", f"/api/v1/appointments/{mine}/cancel", {}, None, 403),
        ("POST", f"/api/v1/appointments/{mine}/cancel", {"token": "x\u0000y"}, None, 403),
        ("POST", f"/api/v1/appointments/{unknown}/cancel", {"token": my_token}, None, 404),
        (
            "POST",
            f"/api/v1/appointments/{mine}/reschedule",
            {"token": other_token},
            {"start": TUESDAY_10},
            403,
        ),
        ("POST", f"/api/v1/appointments/{mine}/reschedule", {"token": "wrong"}, {"start": TUESDAY_10}, 403),
        ("POST", f"/api/v1/appointments/{mine}/reschedule", {}, {"start": TUESDAY_10}, 403),
        (
            "POST",
            f"/api/v1/appointments/{unknown}/reschedule",
            {"token": my_token},
            {"start": TUESDAY_10},
            404,
        ),
    ]
    for method, path, params, body, status in attempts:
        response = await client.request(method, path, params=params, json=body)
        assert response.status == status, (method, path, params)
        code = (await response.json())["error"]["code"]
        assert code == ("forbidden" if status == 403 else "not_found"), (method, path, params)
    # By header as by query: a wrong `X-Manage-Token` is forbidden as well.
    header = await client.get(f"/api/v1/appointments/{mine}", headers={"X-Manage-Token": other_token})
    assert header.status == 403
    assert await counts(pool) == before
    assert await pool.fetchval("SELECT count(*) FROM appointments WHERE status = 'booked'") == 2
    assert other  # the other appointment exists, and its token opens only it


@pytest.mark.req("R9")
@pytest.mark.req("R39")
async def test_a_cancelled_slot_becomes_bookable_again_only_after_the_cool_down(
    client: Client, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    # The lt group has two points; fill 09:00 completely, then cancel one of the two.
    appointment_id, token = await booked(client, concern="bescheid")
    await booked(client, concern="bescheid")
    response = await client.post(f"/api/v1/appointments/{appointment_id}/cancel", params={"token": token})
    assert response.status == 200 and await response.json() == {"status": "cancelled"}
    again = await client.post(f"/api/v1/appointments/{appointment_id}/cancel", params={"token": token})
    assert again.status == 200  # cancelling twice is harmless and sends nothing twice
    events = await pool.fetch("SELECT type, envelope FROM outbox ORDER BY seq")
    assert [e["type"] for e in events] == [
        "appointment.booked",
        "appointment.booked",
        "appointment.cancelled",
    ]
    cancelled = events[-1]["envelope"]["data"]
    assert cancelled["cancelled_by"] == "customer" and cancelled["appointment"]["revision"] == 2
    assert cancelled["appointment"]["status"] == "cancelled"

    assert TUESDAY_9 not in await free(client, "2026-03-03")
    taken = await client.post("/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid"))
    assert (await taken.json())["error"]["code"] == "slot_taken"
    clock.advance(timedelta(minutes=11))  # the default cool-down is 10 minutes; no job has to run
    assert TUESDAY_9 in await free(client, "2026-03-03")
    assert (
        await client.post("/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid"))
    ).status == 201


@pytest.mark.req("R9")
async def test_cancelling_after_the_start_is_too_late(
    client: Client, clock: ManualClock, pool: asyncpg.Pool
) -> None:
    appointment_id, token = await booked(client)
    clock.set(at("2026-03-03", "09:00"))
    response = await client.post(f"/api/v1/appointments/{appointment_id}/cancel", params={"token": token})
    assert response.status == 409 and (await response.json())["error"]["code"] == "too_late"
    reschedule = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule",
        params={"token": token},
        json={"start": TUESDAY_10},
    )
    assert reschedule.status == 409 and (await reschedule.json())["error"]["code"] == "too_late"
    assert await pool.fetchval("SELECT status FROM appointments") == "booked"
    view = await client.get(f"/api/v1/appointments/{appointment_id}", params={"token": token})
    assert (await view.json())["can_change"] is False


@pytest.mark.req("R9")
@pytest.mark.req("R41")
async def test_on_the_appointments_day_after_six_the_customer_still_cancels_and_moves_until_the_start(
    client: Client, clock: ManualClock, pool: asyncpg.Pool
) -> None:
    """Booking for a day closes at 06:00 (R19); cancelling and moving stay open until the start, so that
    someone who falls ill that morning can still give the place back."""
    to_cancel, cancel_token = await booked(client)
    to_move, move_token = await booked(client)
    clock.set(at("2026-03-03", "07:00"))
    # Booking that day is closed by now ...
    closed = await client.post("/api/v1/appointments", json=booking(TUESDAY_10))
    assert closed.status == 409 and (await closed.json())["error"]["code"] == "booking_closed"
    # ... changing one's own appointment is not.
    for appointment_id, token in ((to_cancel, cancel_token), (to_move, move_token)):
        view = await client.get(f"/api/v1/appointments/{appointment_id}", params={"token": token})
        assert (await view.json())["can_change"] is True
    cancelled = await client.post(f"/api/v1/appointments/{to_cancel}/cancel", params={"token": cancel_token})
    assert cancelled.status == 200, await cancelled.text()
    wednesday_9 = iso("2026-03-04", "09:00")
    moved = await client.post(
        f"/api/v1/appointments/{to_move}/reschedule",
        params={"token": move_token},
        json={"start": wednesday_9},
    )
    assert moved.status == 200, await moved.text()
    rows = await pool.fetch("SELECT id::text, status, start_at FROM appointments")
    assert {r["id"]: (r["status"], r["start_at"]) for r in rows} == {
        to_cancel: ("cancelled", at("2026-03-03", "09:00")),
        to_move: ("booked", at("2026-03-04", "09:00")),
    }
    events = [r["type"] for r in await pool.fetch("SELECT type FROM outbox ORDER BY seq")]
    assert events[-2:] == ["appointment.cancelled", "appointment.rescheduled"]


@pytest.mark.req("R41")
async def test_a_repeated_move_answers_as_the_first_even_once_that_days_booking_has_closed(
    client: Client, clock: ManualClock, pool: asyncpg.Pool
) -> None:
    """The service centre repeats a move whose answer was lost. The appointment is already where it was
    asked to go, so the repeat answers 200 with it, also when booking for that day has closed meanwhile
    (06:00 of the day): it is no new booking of the slot."""
    appointment_id, token = await booked(client)
    wednesday_9 = iso("2026-03-04", "09:00")
    path = f"/api/v1/appointments/{appointment_id}/reschedule"
    first = await client.post(path, params={"token": token}, json={"start": wednesday_9})
    assert first.status == 200, await first.text()
    clock.set(at("2026-03-04", "07:00"))
    again = await client.post(path, params={"token": token}, json={"start": wednesday_9})
    assert again.status == 200, await again.text()
    assert (await again.json())["start"] == (await first.json())["start"]
    events = [r["type"] for r in await pool.fetch("SELECT type FROM outbox ORDER BY seq")]
    assert events.count("appointment.rescheduled") == 1


@pytest.mark.req("R41")
async def test_moving_to_a_start_that_has_passed_is_too_late_naming_the_start(
    client: Client, clock: ManualClock, pool: asyncpg.Pool
) -> None:
    """The contract's `too_late` (409: start already passed) for a move as for a booking, with a detail on
    `start`: the requested time has passed, not the appointment (whose own `too_late` names no field)."""
    appointment_id, token = await booked(client, iso("2026-03-04", "09:00"))
    clock.set(at("2026-03-03", "12:05"))  # the manage page was left open over lunch
    passed = iso("2026-03-03", "11:00")
    customer = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule", params={"token": token}, json={"start": passed}
    )
    staff = await client.post(
        f"/api/v1/staff/appointments/{appointment_id}/reschedule",
        json={"start": passed},
        headers=identity_header(clock, Role.APPOINTMENT_MANAGER, factory.LOCATION),
    )
    for response in (customer, staff):
        assert response.status == 409, await response.text()
        error = (await response.json())["error"]
        assert error["code"] == "too_late"
        assert [d["field"] for d in error["details"]] == ["start"]
    # A time still ahead but on a day whose booking has closed stays `booking_closed`.
    closed = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule",
        params={"token": token},
        json={"start": iso("2026-03-03", "13:00")},
    )
    assert closed.status in (409, 422)
    assert (await closed.json())["error"]["code"] != "too_late"
    assert await pool.fetchval("SELECT start_at FROM appointments") == at("2026-03-04", "09:00")


@pytest.mark.req("R41")
@pytest.mark.req("R39")
async def test_rescheduling_takes_the_new_slot_and_frees_the_old_one_after_the_cool_down(
    client: Client, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    appointment_id, token = await booked(client, concern="bescheid")
    await booked(client, concern="bescheid")  # 09:00 is full now
    response = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule",
        params={"token": token},
        json={"start": TUESDAY_10},
    )
    body = await response.json()
    assert response.status == 200, body
    assert body["id"] == appointment_id and body["start"] == TUESDAY_10 and body["status"] == "booked"
    assert body["manage_url"].endswith(token)
    # Moving away is no way round the cool-down of a cancelled slot (slot trading, R39).
    assert TUESDAY_9 not in await free(client, "2026-03-03")
    taken = await client.post("/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid"))
    assert (await taken.json())["error"]["code"] == "slot_taken"
    clock.advance(timedelta(minutes=11))
    assert TUESDAY_9 in await free(client, "2026-03-03")
    rows = await pool.fetch(
        "SELECT status, revision, start_at FROM appointments WHERE id = $1", appointment_id
    )
    assert rows[0]["revision"] == 2
    event = await pool.fetchrow("SELECT envelope FROM outbox WHERE type = 'appointment.rescheduled'")
    data = event["envelope"]["data"]
    assert data["previous_start"].startswith("2026-03-03T08:00:00") and data["appointment"]["revision"] == 2
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 2


async def test_rescheduling_to_a_full_or_invalid_slot_changes_nothing(
    client: Client, pool: asyncpg.Pool
) -> None:
    appointment_id, token = await booked(client, concern="bescheid")
    for _ in range(2):
        await booked(client, TUESDAY_10, concern="bescheid")
    before = await counts(pool)
    cases = [
        ({"start": TUESDAY_10}, 409, "slot_taken"),
        ({"start": iso("2026-03-03", "09:10")}, 422, "validation_error"),
        ({"start": iso("2026-03-08", "09:00")}, 422, "validation_error"),
        ({"start": "morgen"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"start": iso("2026-02-24", "09:00")}, 409, "too_late"),
    ]
    for body, status, code in cases:
        response = await client.post(
            f"/api/v1/appointments/{appointment_id}/reschedule", params={"token": token}, json=body
        )
        assert response.status == status, body
        assert (await response.json())["error"]["code"] == code
    assert await counts(pool) == before
    assert await pool.fetchval("SELECT start_at FROM appointments WHERE id = $1", appointment_id) == at(
        "2026-03-03", "09:00"
    )


@pytest.mark.req("R12")
async def test_rescheduling_into_an_evening_slot_needs_the_declaration(client: Client) -> None:
    appointment_id, token = await booked(client)
    evening = iso("2026-03-05", "16:00")
    refused = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule", params={"token": token}, json={"start": evening}
    )
    assert refused.status == 422
    assert (await refused.json())["error"]["details"][0]["field"] == "evening_declaration"
    moved = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule",
        params={"token": token},
        json={"start": evening, "evening_declaration": True},
    )
    assert moved.status == 200 and (await moved.json())["evening_reserved"] is True


@pytest.mark.req("R38")
async def test_a_hold_keeps_the_slot_for_its_holder_and_expires_by_itself(
    client: Client, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    await booked(client, concern="bescheid")  # one of two points taken
    hold = await client.post(
        f"/api/v1/locations/{factory.LOCATION}/holds",
        json={"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_9},
    )
    held = await hold.json()
    assert hold.status == 201, held
    assert held["expires_at"] == "2026-03-02T10:05:00+01:00"  # five minutes from now
    assert TUESDAY_9 not in await free(client, "2026-03-03")
    stranger = await client.post("/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid"))
    assert (await stranger.json())["error"]["code"] == "slot_taken"
    second_hold = await client.post(
        f"/api/v1/locations/{factory.LOCATION}/holds",
        json={"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_9},
    )
    assert second_hold.status == 409

    clock.advance(timedelta(minutes=4))
    mine = await client.post(
        "/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid", hold_id=held["hold_id"])
    )
    assert mine.status == 201
    assert await pool.fetchval("SELECT count(*) FROM holds") == 0  # the hold became the appointment

    # A hold nobody uses frees the slot when it expires, without any job.
    clock.set(at("2026-03-02", "12:00"))
    other = await client.post(
        f"/api/v1/locations/{factory.LOCATION}/holds",
        json={"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_10},
    )
    assert other.status == 201
    assert TUESDAY_10 in await free(client, "2026-03-03")  # one of two points is still free
    await booked(client, TUESDAY_10, concern="bescheid")
    assert TUESDAY_10 not in await free(client, "2026-03-03")
    clock.advance(timedelta(minutes=6))
    assert TUESDAY_10 in await free(client, "2026-03-03")
    assert (
        await client.post("/api/v1/appointments", json=booking(TUESDAY_10, concern="bescheid"))
    ).status == 201


@pytest.mark.req("R38")
async def test_a_customer_renews_their_hold_before_it_runs_out_and_keeps_the_last_free_point(
    client: Client, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """WCAG 2.2.1: more time on request. The slot's other point is booked, so a second hold would find the
    slot taken by the customer's own hold; renewing it extends that hold instead."""
    await booked(client, concern="bescheid")
    body = {"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_9}
    first = await (await client.post(f"/api/v1/locations/{factory.LOCATION}/holds", json=body)).json()

    clock.advance(timedelta(minutes=4))
    renewed = await client.post(
        f"/api/v1/locations/{factory.LOCATION}/holds", json={**body, "renews": first["hold_id"]}
    )
    again = await renewed.json()
    assert renewed.status == 201, again
    assert again["hold_id"] == first["hold_id"]
    assert again["expires_at"] == "2026-03-02T10:09:00+01:00"  # five minutes from the renewal
    clock.advance(timedelta(minutes=4))  # past the first expiry, within the renewed one
    stranger = await client.post("/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid"))
    assert (await stranger.json())["error"]["code"] == "slot_taken"

    # Once expired, renewing is a new hold like any other (here the slot is free again).
    clock.advance(timedelta(minutes=2))
    late = await client.post(
        f"/api/v1/locations/{factory.LOCATION}/holds", json={**body, "renews": first["hold_id"]}
    )
    assert late.status == 201 and (await late.json())["hold_id"] != first["hold_id"]
    assert await pool.fetchval("SELECT count(*) FROM holds WHERE expires_at > $1", clock.now()) == 1


@pytest.mark.req("R38")
async def test_an_expired_or_foreign_hold_id_books_fairly_like_no_hold(
    client: Client, clock: ManualClock
) -> None:
    hold = await client.post(
        f"/api/v1/locations/{factory.LOCATION}/holds",
        json={"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_9},
    )
    hold_id = (await hold.json())["hold_id"]
    clock.advance(timedelta(minutes=6))
    response = await client.post(
        "/api/v1/appointments", json=booking(TUESDAY_10, concern="bescheid", hold_id=hold_id)
    )
    assert response.status == 201  # a hold for another slot: ignored
    response = await client.post(
        "/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid", hold_id=hold_id)
    )
    assert response.status == 201  # expired: booked like without a hold


@pytest.mark.req("R38")
async def test_concurrent_holds_and_bookings_never_share_a_point(client: Client, pool: asyncpg.Pool) -> None:
    async def hold() -> int:
        response = await client.post(
            f"/api/v1/locations/{factory.LOCATION}/holds",
            json={"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_9},
        )
        return response.status

    async def book() -> int:
        return (await client.post("/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid"))).status

    results = await asyncio.gather(*(hold() if i % 2 else book() for i in range(40)))
    assert results.count(201) == 2  # two points, whoever came first
    rows = await pool.fetch(
        "SELECT service_point FROM appointments UNION ALL SELECT service_point FROM holds WHERE kind = 'hold'"
    )
    assert sorted(r["service_point"] for r in rows) == [1, 2]


async def test_a_cancellation_reason_with_control_characters_is_refused(
    client: Client, pool: asyncpg.Pool
) -> None:
    appointment_id, token = await booked(client)
    response = await client.post(
        f"/api/v1/appointments/{appointment_id}/cancel", params={"token": token}, json={"reason": "weg\u0000"}
    )
    assert response.status == 422
    assert await pool.fetchval("SELECT status FROM appointments") == "booked"
    odd = await client.get("/api/v1/locations/test%00stadt/availability", params={"concern": "bescheid"})
    assert odd.status == 404


async def test_hold_requests_are_validated_like_bookings(client: Client, pool: asyncpg.Pool) -> None:
    before = await counts(pool)
    cases = [
        ({"concern_id": "bescheid", "mode": "in_person", "start": iso("2026-03-03", "09:10")}, 422),
        ({"concern_id": "gibt-es-nicht", "mode": "in_person", "start": TUESDAY_9}, 422),
        ({"concern_id": "bescheid", "mode": "in_person"}, 422),
        ({"concern_id": "bescheid", "mode": "in_person", "start": iso("2026-02-24", "09:00")}, 409),
    ]
    for body, status in cases:
        response = await client.post(f"/api/v1/locations/{factory.LOCATION}/holds", json=body)
        assert response.status == status, body
    unknown = await client.post(
        "/api/v1/locations/nirgendwo/holds",
        json={"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_9},
    )
    assert unknown.status == 404
    assert await counts(pool) == before


@pytest.mark.req("R38")
@pytest.mark.req("R41")
async def test_rescheduling_can_use_a_hold_on_the_new_slot(client: Client, pool: asyncpg.Pool) -> None:
    appointment_id, token = await booked(client, concern="bescheid")
    hold = await client.post(
        f"/api/v1/locations/{factory.LOCATION}/holds",
        json={"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_10},
    )
    hold_id = (await hold.json())["hold_id"]
    await booked(
        client, TUESDAY_10, concern="bescheid"
    )  # the other point of 10:00: only the held one is left
    moved = await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule",
        params={"token": token},
        json={"start": TUESDAY_10, "hold_id": hold_id},
    )
    assert moved.status == 200, await moved.text()
    # The hold is used up; what is left is the cool-down of the slot the customer left (R39).
    assert await pool.fetchval("SELECT array_agg(kind) FROM holds") == ["cooldown"]
    assert TUESDAY_10 not in await free(client, "2026-03-03")


ODD = ["", "\u0000", "x" * 3000, "🙂", "-1", "2026-02-30", "9999-12-31", "0001-01-01", "null", "[]", "%00"]


async def test_odd_availability_questions_and_hold_bodies_never_cause_a_server_error(
    client: Client, pool: asyncpg.Pool
) -> None:
    good = {"concern": "bescheid", "mode": "in_person", "from": "2026-03-03", "to": "2026-03-04"}
    for key in good:
        for value in ODD:
            response = await client.get(
                f"/api/v1/locations/{factory.LOCATION}/availability", params={**good, key: value}
            )
            assert response.status in (200, 404, 422), (key, value)
    before = await counts(pool)
    hold = {"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_9}
    for key in hold:
        odd_values: list[Any] = [*ODD, None, 7, [], {}, True, "2026-03-03T09:00:00+99:00"]
        for odd in odd_values:
            response = await client.post(
                f"/api/v1/locations/{factory.LOCATION}/holds", json={**hold, key: odd}
            )
            assert response.status in (404, 409, 422), (key, odd, await response.text())
    assert await counts(pool) == before


@pytest.mark.req("R40")
@pytest.mark.req("R41")
async def test_the_manage_token_downloads_the_calendar_entry_that_the_mails_keep_up_to_date(
    client: Client,
) -> None:
    appointment_id, token = await booked(client)
    path = f"/api/v1/appointments/{appointment_id}/invitation.ics"
    response = await client.get(path, params={"token": token})
    assert response.status == 200 and response.content_type == "text/calendar"
    assert response.headers["Content-Disposition"] == 'attachment; filename="termin.ics"'
    assert response.headers["Cache-Control"] == "no-store"
    calendar = Calendar.from_ical(await response.read())
    [event] = calendar.walk("VEVENT")
    assert str(calendar["METHOD"]) == "PUBLISH" and "ATTENDEE" not in event  # a file, not an invitation
    # The UID of the mails' invitations: a calendar that has the mail's entry keeps one.
    assert str(event["UID"]) == f"{appointment_id}@otv.jobcenter-bremen"
    assert event.decoded("SEQUENCE") == 1 and event.decoded("DTSTART").isoformat() == TUESDAY_9
    assert token in str(event["URL"]) and "Neuantrag" not in str(event["SUMMARY"])

    await client.post(
        f"/api/v1/appointments/{appointment_id}/reschedule",
        params={"token": token},
        json={"start": TUESDAY_10},
    )
    [moved] = Calendar.from_ical(await (await client.get(path, params={"token": token})).read()).walk(
        "VEVENT"
    )
    assert moved.decoded("SEQUENCE") == 2 and moved.decoded("DTSTART").isoformat() == TUESDAY_10

    for params in ({}, {"token": "wrong"}):
        refused = await client.get(path, params=params)
        assert refused.status == 403 and (await refused.json())["error"]["code"] == "forbidden"
