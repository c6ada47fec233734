"""Booking through the public API: the 201 body, the database's guarantees under concurrency (I1, I2),
the one-appointment rule by e-mail, customer number and household number, the allow-list, evening
slots, phone appointments, idempotency, and bad input that changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.booking.models import BookingRequest
from shared.events.appointment import AppointmentSnapshot
from tests.booking import factory
from tests.booking.conftest import allow, configure, counts
from tests.booking.factory import booking, iso, window

Client = TestClient[Any, Any]
TUESDAY_9 = iso("2026-03-03", "09:00")


async def book(client: Client, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/appointments", json=body, headers=headers)
    return response.status, await response.json()


@pytest.mark.req("R1")
@pytest.mark.req("R2")
@pytest.mark.req("R7")
@pytest.mark.req("R16")
async def test_a_booking_answers_201_with_the_appointment_and_writes_the_booked_event(
    client: Client, pool: asyncpg.Pool
) -> None:
    status, body = await book(client, booking(TUESDAY_9, concern="neuantrag", language="en"))
    assert status == 201, body
    assert set(body) >= {
        "id",
        "reference",
        "status",
        "start",
        "end",
        "mode",
        "location",
        "concern",
        "documents",
        "manage_url",
    }
    assert body["status"] == "booked"
    assert body["start"] == TUESDAY_9 and body["end"] == iso("2026-03-03", "10:00")
    assert body["location"] == {
        "id": factory.LOCATION,
        "name": "Jobcenter Teststadt",
        "address": "Teststraße 1, 28195 Bremen",
    }
    assert body["concern"] == {"id": "neuantrag", "name": "New application"}
    assert body["documents"] == ["Identity card", "Tenancy agreement"]
    assert body["manage_url"].startswith(f"http://127.0.0.1:8080/manage/{body['id']}?token=")
    assert len(body["reference"]) == 9

    rows = await pool.fetch("SELECT type, envelope FROM outbox")
    assert [r["type"] for r in rows] == ["appointment.booked"]
    snapshot = rows[0]["envelope"]["data"]["appointment"]
    assert snapshot["revision"] == 1 and snapshot["channel"] == "online" and snapshot["language"] == "en"
    assert snapshot["manage_url"] == body["manage_url"]
    assert (
        snapshot["concern_name"] == "New application" and snapshot["location_name"] == "Jobcenter Teststadt"
    )
    assert snapshot["customer"]["customer_number"] and snapshot["service_point"] == 1
    # R7: what the confirmation mail is written from carries the address and the documents to bring.
    assert snapshot["location_address"] == body["location"]["address"]
    assert snapshot["documents"] == body["documents"]
    # R41: only the token's hash is stored.
    token = body["manage_url"].split("token=")[1]
    stored = await pool.fetchval("SELECT manage_token_hash FROM appointments")
    assert token.encode() not in bytes(stored) and len(token) >= 43


@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("language", "concern_name", "built_in"),
    [
        ("tr", "Neuantrag stellen", "de"),
        ("en-GB", "New application", "en"),
        ("de-x-ls", "Neuantrag stellen", "de-x-ls"),
    ],
)
async def test_a_booking_in_a_language_the_pages_offer_as_content_is_kept_with_its_nearest_built_in_one(
    client: Client, pool: asyncpg.Pool, language: str, concern_name: str, built_in: str
) -> None:
    """Further languages are content (R43): a customer who walked the pages in Turkish books; the catalog has
    no Turkish texts, so the concern comes in German. The event names the nearest built-in language beside
    the tag, so that a consumer of an earlier release accepts it."""
    status, body = await book(client, booking(TUESDAY_9, concern="neuantrag", language=language))
    assert status == 201, body
    assert body["language"] == language
    assert body["concern"]["name"] == concern_name
    stored = await pool.fetchval("SELECT language FROM appointments WHERE id = $1", uuid.UUID(body["id"]))
    assert stored == language
    envelope = await pool.fetchval("SELECT envelope FROM outbox WHERE type = 'appointment.booked'")
    snapshot = envelope["data"]["appointment"]
    assert (snapshot["language"], snapshot["language_tag"]) == (built_in, language)
    assert AppointmentSnapshot.model_validate(snapshot).customer_language == language


async def test_one_hundred_concurrent_requests_for_the_last_free_point_book_it_once(
    client: Client, pool: asyncpg.Pool
) -> None:
    for _ in range(2):  # three points in the entrance zone: two are taken already
        assert (await book(client, booking(TUESDAY_9)))[0] == 201
    results = await asyncio.gather(*(book(client, booking(TUESDAY_9)) for _ in range(100)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1
    assert statuses.count(409) == 99
    assert {body["error"]["code"] for status, body in results if status == 409} == {"slot_taken"}
    overlapping = await pool.fetchval(
        "SELECT count(*) FROM appointments a JOIN appointments b ON a.id < b.id"
        " AND a.location_id = b.location_id AND a.group_id = b.group_id AND a.service_point = b.service_point"
        " AND tstzrange(a.start_at, a.end_at) && tstzrange(b.start_at, b.end_at)"
        " WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'"
    )
    assert overlapping == 0
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 3
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 3


def _slots(n: int) -> list[str]:
    """n different 15-minute slots on the weekdays after Monday 2 March 2026."""
    days = ["2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-09"]
    times = [f"{h:02d}:{m:02d}" for h in (8, 9, 10, 11) for m in (0, 15, 30, 45)]
    return [iso(d, t) for d in days for t in times][:n]


@pytest.mark.req("R5")
async def test_fifty_concurrent_bookings_with_one_address_in_different_cases_book_once(
    client: Client, pool: asyncpg.Pool
) -> None:
    spellings = ["erika@example.org", "Erika@Example.org", "ERIKA@EXAMPLE.ORG", " erika@example.ORG "]
    bodies = [booking(start, email=spellings[i % 4]) for i, start in enumerate(_slots(50))]
    results = await asyncio.gather(*(book(client, body) for body in bodies))
    assert [s for s, _ in results].count(201) == 1
    assert {b["error"]["code"] for s, b in results if s != 201} == {"already_booked"}
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 1


@pytest.mark.req("R47")
async def test_fifty_concurrent_bookings_with_one_customer_number_in_different_spellings_book_once(
    client: Client, pool: asyncpg.Pool
) -> None:
    spellings = ["123D456789", "123d456789", "123 D 456 789", "123-d-456789"]
    bodies = [booking(start, number=spellings[i % 4]) for i, start in enumerate(_slots(50))]
    results = await asyncio.gather(*(book(client, body) for body in bodies))
    assert [s for s, _ in results].count(201) == 1
    assert {b["error"]["code"] for s, b in results if s != 201} == {"already_booked"}
    assert await pool.fetchval("SELECT customer_number FROM appointments") == "123D456789"


@pytest.mark.req("R47")
async def test_one_household_number_books_once_however_it_is_written(client: Client) -> None:
    first = booking(_slots(2)[0], customer={"customer_number": None, "household_number": "12345BG1234567"})
    second = booking(_slots(2)[1], customer={"customer_number": None, "household_number": "12345 bg 1234567"})
    assert (await book(client, first))[0] == 201
    status, body = await book(client, second)
    assert status == 409 and body["error"]["code"] == "already_booked"
    assert body["error"]["details"][0]["field"] == "customer.household_number"


@pytest.mark.req("R6")
async def test_an_allow_listed_address_books_several_times(client: Client, pool: asyncpg.Pool) -> None:
    await allow(pool, "servicecenter@jobcenter-bremen.de", "@intern.example")
    for email in ["servicecenter@jobcenter-bremen.de", "ServiceCenter@jobcenter-bremen.de"]:
        for start in _slots(3):
            assert (await book(client, booking(start, email=email)))[0] == 201
    for start in _slots(2):
        assert (await book(client, booking(start, email="eingang@intern.example")))[0] == 201
    # Not allow-listed: the second booking of the same address is refused.
    assert (await book(client, booking(_slots(8)[6], email="kunde@extern.example")))[0] == 201
    status, body = await book(client, booking(_slots(8)[7], email="kunde@extern.example"))
    assert status == 409 and body["error"]["code"] == "already_booked"


@pytest.mark.req("R6")
@pytest.mark.req("R47")
async def test_the_allow_list_does_not_exempt_the_customers_own_number(
    client: Client, pool: asyncpg.Pool
) -> None:
    await allow(pool, "servicecenter@jobcenter-bremen.de")
    email = "servicecenter@jobcenter-bremen.de"
    assert (await book(client, booking(_slots(1)[0], email=email, number="111D111111")))[0] == 201
    status, body = await book(client, booking(_slots(2)[1], email=email, number="111D111111"))
    assert status == 409 and body["error"]["code"] == "already_booked"


@pytest.mark.req("R5")
async def test_after_a_cancellation_the_customer_can_book_again(client: Client) -> None:
    status, first = await book(client, booking(_slots(1)[0], email="wieder@example.org", number="222D222222"))
    assert status == 201
    token = first["manage_url"].split("token=")[1]
    cancel = await client.post(
        f"/api/v1/appointments/{first['id']}/cancel", headers={"X-Manage-Token": token}
    )
    assert cancel.status == 200
    assert (await book(client, booking(_slots(2)[1], email="wieder@example.org", number="222D222222")))[
        0
    ] == 201


@pytest.mark.req("R4")
async def test_a_phone_appointment_needs_a_phone_number(client: Client) -> None:
    body = booking(TUESDAY_9, mode="phone")
    del body["customer"]["phone"]
    status, answer = await book(client, body)
    assert status == 422 and answer["error"]["details"][0]["field"] == "customer.phone"
    status, answer = await book(client, booking(TUESDAY_9, mode="phone"))
    assert status == 201 and answer["mode"] == "phone"
    status, answer = await book(client, booking(TUESDAY_9, concern="neuantrag", mode="phone"))
    assert status == 422 and answer["error"]["details"][0]["field"] == "mode"


@pytest.mark.req("R12")
async def test_an_evening_slot_needs_the_evening_declaration(client: Client) -> None:
    evening = iso("2026-03-05", "16:00")
    status, body = await book(client, booking(evening))
    assert status == 422
    assert body["error"]["details"][0]["field"] == "evening_declaration"
    status, body = await book(client, booking(evening, evening_declaration=False))
    assert status == 422
    status, body = await book(client, booking(evening, evening_declaration=True))
    assert status == 201 and body["evening_reserved"] is True


@pytest.mark.req("R39")
async def test_a_repeated_request_with_the_same_idempotency_key_answers_the_first_result(
    client: Client, pool: asyncpg.Pool
) -> None:
    body = booking(TUESDAY_9)
    first = await client.post("/api/v1/appointments", json=body, headers={"Idempotency-Key": "klick-1"})
    second = await client.post("/api/v1/appointments", json=body, headers={"Idempotency-Key": "klick-1"})
    assert first.status == second.status == 201
    assert await first.read() == await second.read()
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 1
    # The stored answer does not reveal the manage token (R41).
    token = (await first.json())["manage_url"].split("token=")[1]
    stored = await pool.fetchval("SELECT response FROM idempotent_requests")
    assert token.encode() not in bytes(stored)
    # The same key with another request is refused and changes nothing.
    other = await client.post(
        "/api/v1/appointments",
        json=booking(iso("2026-03-03", "10:00")),
        headers={"Idempotency-Key": "klick-1"},
    )
    assert other.status == 422
    assert (await other.json())["error"]["details"][0]["field"] == "Idempotency-Key"
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 1


@pytest.mark.req("R39")
async def test_a_retry_of_a_booking_the_previous_release_stored_gets_the_first_result(
    client: Client, pool: asyncpg.Pool
) -> None:
    """The previous release kept the body as sent as a key's fingerprint. A customer whose first click
    reached an old pod during the rolling update, and whose retry reaches a new one, gets the booking,
    not "key used before" and then "already booked"."""
    body = booking(TUESDAY_9)
    first = await client.post("/api/v1/appointments", json=body, headers={"Idempotency-Key": "alt-1"})
    assert first.status == 201
    as_sent = BookingRequest.model_validate_json(json.dumps(body)).model_dump_json().encode()
    await pool.execute(
        "UPDATE idempotent_requests SET fingerprint = $1",
        hashlib.sha256(b"online\x1f" + as_sent).digest(),
    )
    again = await client.post("/api/v1/appointments", json=body, headers={"Idempotency-Key": "alt-1"})
    assert again.status == 201 and await again.read() == await first.read()
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 1


@pytest.mark.req("R39")
async def test_a_double_click_books_once(client: Client, pool: asyncpg.Pool) -> None:
    body = booking(TUESDAY_9)
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/appointments", json=body, headers={"Idempotency-Key": "doppelklick"})
            for _ in range(5)
        )
    )
    bodies = {await r.read() for r in responses}
    assert {r.status for r in responses} == {201}
    assert len(bodies) == 1
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _with(body: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


GOOD = booking(TUESDAY_9)
BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("missing start", _without(GOOD, "start"), 422, "start"),
    ("missing customer", _without(GOOD, "customer"), 422, "customer"),
    ("missing e-mail", _without(GOOD, "customer", "email"), 422, "customer.email"),
    ("missing numbers", _with(GOOD, None, "customer", "customer_number"), 422, "customer.customer_number"),
    ("start is a number", _with(GOOD, 1772524800, "start"), 422, "start"),
    ("start without offset", _with(GOOD, "2026-03-03T09:00:00", "start"), 422, "start"),
    ("start not a slot", _with(GOOD, iso("2026-03-03", "09:07"), "start"), 422, "start"),
    ("start outside the windows", _with(GOOD, iso("2026-03-03", "13:00"), "start"), 422, "start"),
    ("start on a Sunday", _with(GOOD, iso("2026-03-08", "09:00"), "start"), 422, "start"),
    ("start in the past", _with(GOOD, iso("2026-02-24", "09:00"), "start"), 409, "too_late"),
    ("mode unknown", _with(GOOD, "video", "mode"), 422, "mode"),
    ("concern not offered", _with(GOOD, "gibt-es-nicht", "concern_id"), 422, "concern_id"),
    ("location unknown", _with(GOOD, "nirgendwo", "location_id"), 404, "not_found"),
    ("location with a NUL", _with(GOOD, "test\u0000stadt", "location_id"), 422, "location_id"),
    ("concern with a NUL", _with(GOOD, "bescheid\u0000", "concern_id"), 422, "concern_id"),
    ("concern a list", _with(GOOD, ["bescheid"], "concern_id"), 422, "concern_id"),
    ("e-mail malformed", _with(GOOD, "erika.example.org", "customer", "email"), 422, "customer.email"),
    ("e-mail with space", _with(GOOD, "erika @example.org", "customer", "email"), 422, "customer.email"),
    (
        "customer number malformed",
        _with(GOOD, "12345", "customer", "customer_number"),
        422,
        "customer.customer_number",
    ),
    (
        "household number malformed",
        _with(GOOD, "BG123", "customer", "household_number"),
        422,
        "customer.household_number",
    ),
    ("phone malformed", _with(GOOD, "call me", "customer", "phone"), 422, "customer.phone"),
    ("name is a number", _with(GOOD, 42, "customer", "first_name"), 422, "customer.first_name"),
    ("name empty", _with(GOOD, "   ", "customer", "last_name"), 422, "customer.last_name"),
    (
        "name with control characters",
        _with(GOOD, "Erika\u0000", "customer", "first_name"),
        422,
        "customer.first_name",
    ),
    ("huge name", _with(GOOD, "E" * 100_000, "customer", "first_name"), 422, "customer.first_name"),
    ("evening declaration a string", _with(GOOD, "yes", "evening_declaration"), 422, "evening_declaration"),
    ("language no tag", _with(GOOD, "Deutsch", "language"), 422, "language"),
    ("language with a space", _with(GOOD, "de DE", "language"), 422, "language"),
    ("language too long", _with(GOOD, "de-" + "-".join(["abcdefgh"] * 5), "language"), 422, "language"),
    ("hold id malformed", _with(GOOD, "not-a-uuid", "hold_id"), 422, "hold_id"),
    ("body a list", [GOOD], 422, "body"),
    ("body a string", "booking", 422, "body"),
]


@pytest.mark.parametrize(("why", "body", "status", "what"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    client: Client, pool: asyncpg.Pool, why: str, body: Any, status: int, what: str
) -> None:
    before = await counts(pool)
    response = await client.post(
        "/api/v1/appointments", json=body, headers={"Idempotency-Key": f"bad-{why}".replace(" ", "-")}
    )
    answer = await response.json()
    assert response.status == status, answer
    if status == 422:
        assert answer["error"]["code"] == "validation_error"
        assert what in [d["field"] for d in answer["error"]["details"]], answer
    else:
        assert answer["error"]["code"] == what
    assert await counts(pool) == before


async def test_a_start_in_the_past_is_refused_as_passed_not_as_the_days_cutoff(client: Client) -> None:
    """The service centre's software sends last week's time: 409 `too_late` (the architecture's code for
    a start that has passed), and the message says that time has passed, for a booking and a hold."""
    past = iso("2026-02-24", "09:00")
    hold = {"concern_id": GOOD["concern_id"], "mode": GOOD["mode"], "start": past}
    for path, body in (
        ("/api/v1/appointments", _with(GOOD, past, "start")),
        (f"/api/v1/locations/{GOOD['location_id']}/holds", hold),
    ):
        response = await client.post(path, json=body)
        error = (await response.json())["error"]
        assert response.status == 409 and error["code"] == "too_late", (path, error)
        assert "already passed" in error["message"] and "06:00" not in error["message"]


async def test_broken_json_and_an_empty_body_get_a_422(client: Client, pool: asyncpg.Pool) -> None:
    before = await counts(pool)
    for raw in (b"{", b"", b"\xff\xfe"):
        response = await client.post(
            "/api/v1/appointments", data=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status == 422
    huge = await client.post(
        "/api/v1/appointments", data=b"x" * 300_000, headers={"Content-Type": "application/json"}
    )
    assert huge.status == 413
    assert await counts(pool) == before


async def test_a_location_that_no_longer_takes_bookings_answers_booking_closed(
    client: Client, pool: asyncpg.Pool
) -> None:
    await configure(pool, factory.location(revision=2, active=False))
    status, body = await book(client, booking(TUESDAY_9))
    assert status == 409 and body["error"]["code"] == "booking_closed"


async def test_a_catalog_update_is_used_at_once(client: Client, pool: asyncpg.Pool) -> None:
    # The cache of the parsed snapshot follows the stored revision.
    assert (await book(client, booking(iso("2026-03-03", "13:00"))))[0] == 422
    windows = [*factory.default_windows(), window("ez", 1, "13:00", "14:00", 1)]
    await configure(pool, factory.location(revision=2, windows=windows))
    assert (await book(client, booking(iso("2026-03-03", "13:00"))))[0] == 201


WEIRD_VALUES: list[Any] = [
    None,
    0,
    -1,
    2**63,
    1.5,
    True,
    "",
    " ",
    "\u0000",
    "x" * 5000,
    "🙂",
    "'; DROP TABLE appointments; --",
    "2026-03-03T09:00:00+01:00",
    "2026-02-30T09:00:00+01:00",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+05:00",
    [],
    {},
    ["a"],
    {"a": 1},
]


def _paths(body: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in body.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found.extend(_paths(value, (*prefix, key)))
    return found


async def test_no_mangled_field_ever_causes_a_server_error_or_a_change(
    client: Client, pool: asyncpg.Pool
) -> None:
    """A fuzz of the booking body: every field in turn replaced by odd values of every JSON type."""
    good = booking(iso("2026-03-03", "09:00"), customer={"phone": "0421 1234567", "household_number": None})
    before = await counts(pool)
    paths = [*_paths(good), ("evening_declaration",), ("language",), ("hold_id",)]
    statuses: set[int] = set()
    for path in paths:
        for value in WEIRD_VALUES:
            body = _with(good, value, *path)
            if value == good.get(path[0]) or (len(path) == 1 and value == "2026-03-03T09:00:00+01:00"):
                continue
            response = await client.post("/api/v1/appointments", json=body)
            statuses.add(response.status)
            assert response.status < 500, (path, value, await response.text())
            if response.status == 201:  # an odd value that is still valid (e.g. a null optional field)
                answer = await response.json()
                token = answer["manage_url"].split("token=")[1]
                await client.post(f"/api/v1/appointments/{answer['id']}/cancel", params={"token": token})
                await pool.execute("DELETE FROM holds; DELETE FROM outbox; DELETE FROM appointments")
    assert await counts(pool) == before
    assert 422 in statuses
