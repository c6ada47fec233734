"""The waiting list's rules: one pending appointment or one wish per customer (R5, R47; allow-list exempt,
R6), the double opt-in, the withdraw link, the latest date, new capacity, staff's view (R28), erasure."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.booking import retention as booking_retention
from services.booking.consumer import apply_allow_list_changed
from shared.events.catalog import AllowListChangedV1, Closure, GroupKind, GroupSnapshot
from shared.identity import Grant, IdentityKind, Role, StaffIdentity, sign
from tests.booking import factory
from tests.booking.conftest import configure
from tests.server_log import server_log_during
from tests.waiting_list.conftest import (
    DEFAULT_START,
    NARROW,
    TUESDAY_EIGHT,
    Waiting,
    kind_of,
    link_of,
    unique_email,
    wish_body,
)


async def active(waiting: Waiting, email: str) -> list[str]:
    rows = await waiting.pool.fetch(
        "SELECT status FROM wishes WHERE lower(email) = lower($1) AND status IN"
        " ('pending_opt_in', 'waiting', 'offered')",
        email,
    )
    return [row["status"] for row in rows]


@pytest.mark.req("R5")
async def test_a_customer_with_a_pending_appointment_cannot_join_and_one_on_the_list_cannot_join_twice(
    waiting: Waiting,
) -> None:
    booked = unique_email("booked")
    await waiting.book(TUESDAY_EIGHT, booked)
    refused = await waiting.join(booked.upper(), status=409)
    assert refused["error"]["code"] == "already_booked"

    email = unique_email("twice")
    wish_id, _ = await waiting.joined_and_confirmed(email)
    again = await waiting.join(email, status=409, customer={"customer_number": "999D000001"})
    assert again["error"]["code"] == "already_waiting"
    assert again["error"]["details"][0]["field"] == "customer.email"
    assert await active(waiting, email) == ["waiting"]
    # A new registration replaces an unconfirmed one (a lost opt-in mail), it never adds a second.
    fresh = unique_email("fresh")
    first = await waiting.join(fresh)
    second = await waiting.join(fresh)
    assert await active(waiting, fresh) == ["pending_opt_in"]
    assert (await waiting.wish_row(first["id"]))["end_reason"] == "replaced"
    assert (await waiting.wish_row(second["id"]))["status"] == "pending_opt_in"
    # Reporting counts the second registration apart: one customer, one wish (R45).
    replaces = {
        r["id"]: r["replaces"]
        for r in await waiting.pool.fetch(
            "SELECT envelope->'data'->'wish'->>'id' AS id,"
            " (envelope->'data'->>'replaces_unconfirmed')::boolean AS replaces"
            " FROM outbox WHERE type = 'waiting.registered'"
        )
    }
    assert (replaces[first["id"]], replaces[second["id"]]) == (False, True)
    del wish_id


@pytest.mark.req("R5")
async def test_booking_an_appointment_ends_the_customers_wish_in_the_same_transaction(
    waiting: Waiting,
) -> None:
    email = unique_email("books-herself")
    wish_id, _ = await waiting.joined_and_confirmed(email)
    await waiting.book(factory.iso("2026-03-04", "09:00"), email)
    row = await waiting.wish_row(wish_id)
    assert row["status"] == "booked" and row["appointment_id"] is not None
    assert (await waiting.match())["fulfilled"] == 1
    assert await waiting.pool.fetchval("SELECT count(*) FROM outbox WHERE type = 'waiting.fulfilled'") == 1


@pytest.mark.req("R5")
async def test_correcting_an_appointments_address_to_a_waiting_customers_ends_the_wish_as_a_booking_would(
    waiting: Waiting,
) -> None:
    """A caller's appointment was booked under a misspelt address; the same person waits on the list under
    their real address with another number. Staff correct the address: the wish ends as if the appointment
    had been booked under it, so no slot is offered (and held from others) to someone who cannot book it."""
    real = unique_email("real")
    wish_id, _ = await waiting.joined_and_confirmed(real)
    appointment = await waiting.book(TUESDAY_EIGHT, real.replace("@example.org", "@exmaple.org"))
    assert await active(waiting, real) == ["waiting"]
    response = await waiting.client.post(
        f"/api/v1/staff/appointments/{appointment['id']}/contact",
        json={"email": real},
        headers={"X-OTV-Identity": _identity(Role.APPOINTMENT_MANAGER, factory.LOCATION)},
    )
    assert response.status == 200, await response.text()
    assert await active(waiting, real) == []
    row = await waiting.wish_row(wish_id)
    assert (row["status"], row["end_reason"]) == ("booked", "booked")
    assert str(row["appointment_id"]) == appointment["id"]
    assert (await waiting.match())["fulfilled"] == 1
    assert await waiting.pool.fetchval("SELECT count(*) FROM outbox WHERE type = 'waiting.fulfilled'") == 1
    # Another correction that keeps the address ends nothing more (and a name fix changes no wish).
    again = await waiting.client.post(
        f"/api/v1/staff/appointments/{appointment['id']}/contact",
        json={"last_name": "Musterfrau"},
        headers={"X-OTV-Identity": _identity(Role.APPOINTMENT_MANAGER, factory.LOCATION)},
    )
    assert again.status == 200, await again.text()
    assert (await waiting.wish_row(wish_id))["revision"] == row["revision"]


@pytest.mark.req("R5")
async def test_concurrent_joins_and_bookings_of_one_customer_never_leave_a_wish_beside_an_appointment(
    waiting: Waiting,
) -> None:
    async def join(email: str, number: str) -> None:
        body = wish_body(email, customer={"customer_number": number})
        await waiting.client.post("/api/v1/waiting-list", json=body)

    async def book(email: str, number: str, hour: int) -> None:
        body = factory.booking(factory.iso("2026-03-05", f"{hour:02d}:00"), email=email, number=number)
        await waiting.client.post("/api/v1/appointments", json=body)

    for round_ in range(4):
        email = unique_email(f"race{round_}")
        number = factory.customer_number(700_000 + round_)
        await asyncio.gather(join(email, number), join(email, number), book(email, number, 8 + round_))
        booked = await waiting.pool.fetchval(
            "SELECT count(*) FROM appointments WHERE status = 'booked' AND email_key = lower($1)", email
        )
        assert booked + len(await active(waiting, email)) == 1


@pytest.mark.req("R5")
async def test_an_allow_listed_address_may_wait_for_several_customers(waiting: Waiting) -> None:
    async with waiting.pool.acquire() as conn, conn.transaction():
        await apply_allow_list_changed(
            conn, None, AllowListChangedV1(revision=1, entries=["@jobcenter.example"])
        )
    for n in range(3):
        await waiting.join("servicecenter@jobcenter.example", customer={"customer_number": f"{n}12D000001"})
    assert len(await active(waiting, "servicecenter@jobcenter.example")) == 3


@pytest.mark.req("R45")
async def test_nobody_joins_the_list_for_an_appointment_that_is_free_now(waiting: Waiting) -> None:
    """The list offers only what is freed or added later: a customer whom a free appointment suits would
    wait for nothing, so joining answers 409 `slots_available` with the first free ones to book."""
    email = unique_email("free")
    refused = await waiting.join(email, status=409, **NARROW)
    assert refused["error"]["code"] == "slots_available"
    assert [d["start"] for d in refused["error"]["details"]] == [TUESDAY_EIGHT]
    broad = await waiting.join(
        email, status=409, weekdays=[1, 2], earliest=None, latest=None, latest_date="2026-03-04"
    )
    assert len(broad["error"]["details"]) == 3  # the first three
    assert await waiting.pool.fetchval("SELECT count(*) FROM wishes") == 0
    # Evening slots suit only a customer who declared work or a measure (R12): for anyone else Thursday's
    # evening alone is no wish the list could ever meet (422, naming the days it has appointments).
    evening: dict[str, Any] = {
        "weekdays": [3],
        "earliest": "16:00",
        "latest": None,
        "latest_date": "2026-03-05",
    }
    assert (await waiting.join(email, status=409, evening_declaration=True, **evening))["error"]["details"]
    never = await waiting.join(email, status=422, **evening)
    assert never["error"]["details"][0]["type"] == "no_matching_times"
    # Nor a Saturday, when the location does not open: until then it has appointments Tuesday to Friday.
    saturday = await waiting.join(
        email, status=422, weekdays=[5], earliest=None, latest=None, latest_date="2026-03-07"
    )
    assert saturday["error"]["details"][0]["offered_weekdays"] == [1, 2, 3, 4]
    # Afternoons on Monday: the answer names the days with afternoon appointments (Thursday), not all.
    monday = await waiting.join(
        email,
        status=422,
        weekdays=[0],
        earliest="12:00",
        latest=None,
        latest_date="2026-03-13",
        evening_declaration=True,
    )
    assert monday["error"]["details"][0]["offered_weekdays"] == [3]
    # The join page asks beforehand which days a wish can name: those with appointments within 8 weeks.
    days = await waiting.client.get(
        f"/api/v1/locations/{factory.LOCATION}/waiting-list/weekdays",
        params={"concern": "veraenderung", "mode": "in_person"},
    )
    assert (await days.json()) == {"weekdays": [0, 1, 2, 3, 4], "until": "2026-04-27"}
    unknown = await waiting.client.get(
        f"/api/v1/locations/{factory.LOCATION}/waiting-list/weekdays", params={"concern": "nope"}
    )
    assert unknown.status == 422 and (await unknown.json())["error"]["details"][0]["field"] == "concern"
    # Once the start is full, the wish is what the list is for.
    await waiting.fill(TUESDAY_EIGHT)
    await waiting.join(unique_email("waits"), **NARROW)
    # A location closed for the next 8 weeks has no day to name (the join page then sends to the hotline).
    closed = factory.location(
        revision=2,
        closures=[Closure(first=date(2026, 3, 2), last=date(2026, 4, 30), reason="Umbau")],
    )
    await configure(waiting.pool, closed)
    days = await waiting.client.get(
        f"/api/v1/locations/{factory.LOCATION}/waiting-list/weekdays", params={"concern": "veraenderung"}
    )
    assert (await days.json())["weekdays"] == []


@pytest.mark.req("R45")
@pytest.mark.parametrize(
    ("times", "field"),
    [
        ({"earliest": "08:00+01:00", "latest": "08:15"}, "earliest"),
        ({"earliest": "08:00", "latest": "08:15Z"}, "latest"),
        ({"earliest": "08:00+01:00", "latest": "08:15+01:00"}, "earliest"),
    ],
)
async def test_a_wished_time_with_an_offset_is_a_422_naming_it(
    waiting: Waiting, times: dict[str, str], field: str
) -> None:
    """Wished times are Berlin wall-clock times. One with an offset beside one without could not be
    compared (a 500); two with offsets were kept without them, so the wish meant other times."""
    refused = await waiting.join(unique_email("offset"), status=422, **{**NARROW, **times})
    assert refused["error"]["code"] == "validation_error"
    assert refused["error"]["details"][0]["field"] == field
    assert await waiting.pool.fetchval("SELECT count(*) FROM wishes") == 0


@pytest.mark.req("R45")
async def test_an_unconfirmed_wish_is_not_offered_and_its_opt_in_link_expires(waiting: Waiting) -> None:
    appointment = (await waiting.fill(TUESDAY_EIGHT))[0]
    email = unique_email("unconfirmed")
    wish = await waiting.join(email, **NARROW)
    token = await waiting.registered_token(wish["id"])
    await waiting.mails_to(email, 1)
    await waiting.cancel(appointment)
    waiting.clock.advance(timedelta(minutes=11))
    assert (await waiting.match())["offers_made"] == 0
    waiting.clock.advance(timedelta(hours=49))
    assert (await waiting.match())["wishes_expired"] == 1
    expired = await waiting.confirm(wish["id"], token, status=410)
    assert expired["error"]["code"] == "link_expired"
    # The opt-in only: an address that was never confirmed gets no more mail.
    assert [kind_of(m) for m in await waiting.mails_to(email, 1)] == ["waiting_opt_in"]
    wrong = await waiting.client.post(
        f"/api/v1/waiting-list/{wish['id']}/confirm", params={"token": "x" * 43}
    )
    assert wrong.status == 404


@pytest.mark.req("R45")
async def test_withdrawing_with_a_held_offer_frees_the_slot_for_the_next_wish_at_once(
    waiting: Waiting,
) -> None:
    appointment = (await waiting.fill(TUESDAY_EIGHT))[0]
    first, second = unique_email("leaves"), unique_email("next")
    first_id, first_token = await waiting.joined_and_confirmed(first, **NARROW)
    waiting.clock.advance(timedelta(minutes=1))
    second_id, _ = await waiting.joined_and_confirmed(second, **NARROW)
    await waiting.cancel(appointment)
    waiting.clock.advance(timedelta(minutes=11))
    await waiting.match()
    assert (await waiting.wish_row(first_id))["status"] == "offered"
    offer_mail = (await waiting.mails_to(first, 3))[-1]
    wish_id, token = link_of(offer_mail)
    assert (str(wish_id), token) == (first_id, first_token)  # the same link in every mail
    withdrawn = await waiting.client.post(
        f"/api/v1/waiting-list/{first_id}/withdraw", params={"token": token}
    )
    assert withdrawn.status == 200 and (await withdrawn.json())["status"] == "withdrawn"
    again = await waiting.client.post(f"/api/v1/waiting-list/{first_id}/withdraw", params={"token": token})
    assert (await again.json())["status"] == "withdrawn"
    assert (await waiting.match())["offers_made"] == 1
    assert (await waiting.wish_row(second_id))["status"] == "offered"
    assert [kind_of(m) for m in await waiting.mails_to(first, 4)][-1] == "waiting_withdrawn"
    late = await waiting.client.post(f"/api/v1/waiting-list/{first_id}/offer/accept", params={"token": token})
    assert late.status == 410


@pytest.mark.req("R45")
async def test_a_wish_past_its_latest_date_expires_with_a_short_mail(waiting: Waiting) -> None:
    email = unique_email("expires")
    await waiting.fill(TUESDAY_EIGHT)
    await waiting.joined_and_confirmed(email, **NARROW)
    await waiting.mails_to(email, 2)
    waiting.clock.advance(timedelta(days=1))
    assert (await waiting.match())["wishes_expired"] == 0
    waiting.clock.advance(timedelta(days=1))
    assert (await waiting.match())["wishes_expired"] == 1
    assert [kind_of(m) for m in await waiting.mails_to(email, 3)][-1] == "waiting_expired"


@pytest.mark.req("R45")
async def test_a_new_window_is_offered_to_the_waiting_wishes(waiting: Waiting) -> None:
    email = unique_email("more-points")
    wish_id, _ = await waiting.joined_and_confirmed(email)  # Wednesday 08:00, every point booked
    assert (await waiting.match())["offers_made"] == 0
    # A fourth service point in the entrance zone, on Wednesday mornings: the new capacity goes to the wish.
    windows = [
        factory.window("ez", 2, "08:00", "12:00", 4) if (w.group_id, w.weekday) == ("ez", 2) else w
        for w in factory.default_windows()
    ]
    groups = [
        GroupSnapshot(id="ez", kind=GroupKind.ENTRANCE_ZONE, name={"de": "Eingangszone"}, service_points=4),
        GroupSnapshot(id="lt", kind=GroupKind.BENEFITS_TEAM, name={"de": "Leistungsteam"}, service_points=2),
    ]
    await configure(waiting.pool, factory.location(revision=2, groups=groups, windows=windows))
    counts = await waiting.match()
    assert counts["capacity_changes"] == 1 and counts["offers_made"] == 1
    offer = await waiting.pool.fetchrow(
        "SELECT start_at FROM waiting_offers WHERE wish_id = $1", uuid.UUID(wish_id)
    )
    assert offer["start_at"] == factory.at("2026-03-04", "08:00")


def _identity(role: Role, *locations: str) -> str:
    identity = StaffIdentity(
        subject="staff-test",
        kind=IdentityKind.USER,
        grants=(Grant(role=role, locations=locations),),
        issued_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    return sign(identity, "otv-dev-internal-secret-change-me")


@pytest.mark.req("R45")
@pytest.mark.req("R28")
async def test_staff_of_the_location_see_its_waiting_list_per_concern_and_others_do_not(
    waiting: Waiting,
) -> None:
    email = unique_email("listed")
    await waiting.joined_and_confirmed(email, language="en")  # joined on the English pages
    for _ in range(2):  # the benefits team's two points on Wednesday at 08:00
        await waiting.book(DEFAULT_START, unique_email("booked"), concern="bescheid")
    await waiting.join(unique_email("pending"), concern_id="bescheid", latest="08:30")
    path = f"/api/v1/staff/locations/{factory.LOCATION}/waiting-list"
    assert (await waiting.client.get(path)).status == 401
    elsewhere = await waiting.client.get(
        path, headers={"X-OTV-Identity": _identity(Role.APPOINTMENT_MANAGER, "mitte")}
    )
    assert elsewhere.status == 403
    response = await waiting.client.get(
        path, headers={"X-OTV-Identity": _identity(Role.APPOINTMENT_MANAGER, factory.LOCATION)}
    )
    listing = await response.json()
    assert response.status == 200, listing
    by_concern = {c["concern_id"]: c for c in listing["concerns"]}
    assert by_concern["veraenderung"]["waiting"] == 1 and by_concern["bescheid"]["pending_opt_in"] == 1
    assert by_concern["veraenderung"]["wishes"][0]["customer"]["email"] == email
    assert by_concern["veraenderung"]["oldest_age_days"] == 0
    assert by_concern["veraenderung"]["concern_name"] == "Mitteilung einer Veränderung"  # German for staff


@pytest.mark.req("R34")
async def test_personal_data_of_ended_wishes_are_erased_after_the_retention_period(waiting: Waiting) -> None:
    email = unique_email("erased")
    wish_id, token = await waiting.joined_and_confirmed(email)
    await waiting.client.post(f"/api/v1/waiting-list/{wish_id}/withdraw", params={"token": token})
    waiting.clock.advance(timedelta(days=waiting.deps.settings.retention_days + 1))
    # Booking's retention run erases them, so that the deletion report counts them with the appointments.
    counts = await booking_retention.run_retention(
        waiting.deps.pool, waiting.deps.settings, waiting.clock, force=True
    )
    assert counts is not None and counts["wishes_erased"] == 1
    row = await waiting.wish_row(wish_id)
    assert row["email"] == "" and row["first_name"] == "" and row["customer_number"] is None
    gone = await waiting.client.get(f"/api/v1/waiting-list/{wish_id}", params={"token": token})
    assert gone.status == 404


@pytest.mark.req("R5")
@pytest.mark.req("R47")
@pytest.mark.req("R34")
async def test_a_refused_second_wish_writes_no_address_or_number_into_the_database_server_log(
    waiting: Waiting,
) -> None:
    """The unique indexes refuse the second wish (I2 for the list) without an ERROR in the database
    server, whose log would keep the DETAIL: the key's value, the customer's address or number."""
    email = unique_email("einmal-warten")
    number = factory.customer_number(uuid.uuid4().int % 999_999 + 1)
    await waiting.joined_and_confirmed(email, customer={"customer_number": number})
    refused: list[dict[str, Any]] = []

    async def join_again() -> None:
        refused.append(
            await waiting.join(email.upper(), status=409, customer={"customer_number": "999D000001"})
        )
        refused.append(
            await waiting.join(unique_email("other"), status=409, customer={"customer_number": number})
        )

    logged = await server_log_during(waiting.pool, join_again)
    assert [r["error"]["code"] for r in refused] == ["already_waiting", "already_waiting"]
    assert [r["error"]["details"][0]["field"] for r in refused] == [
        "customer.email",
        "customer.customer_number",
    ]
    assert email not in logged and number not in logged
    assert await active(waiting, email) == ["waiting"]
