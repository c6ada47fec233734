"""The staff work through booking's staff API (issue 8): the day view of a location (R22, R27, R28,
R49), staff bookings with an interpreter (R26), staff cancellation (R9), outcomes and callback tickets
(R23), call attempts (R49), follow-up bookings (R24) and transfers (R25)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.booking import retention as booking_retention
from services.booking import staff_db
from services.booking.callbacks import callback_due
from shared.clock import BERLIN, ManualClock
from shared.identity import Role
from tests.booking import factory
from tests.booking.conftest import booking_settings
from tests.staff_work.conftest import HERE, THERE, Staff, book, events, identity_header

TUESDAY = "2026-03-03"
PHONE = {"phone": "0421 123456"}  # a callback needs a number to call


def on_tuesday(clock: ManualClock, hhmm: str = "11:30") -> None:
    clock.set(factory.at(TUESDAY, hhmm))


@pytest.mark.req("R22")
@pytest.mark.req("R26")
@pytest.mark.req("R27")
@pytest.mark.req("R28")
async def test_the_day_view_shows_customer_concern_mode_and_interpreter_of_its_own_location_only(
    client: TestClient[Any, Any], manager: Staff, other_manager: Staff
) -> None:
    mine = await book(client, TUESDAY, "08:00", language="en")  # booked on the English pages
    phone = await book(client, TUESDAY, "08:15", mode="phone")
    response = await manager.post(
        "/api/v1/staff/appointments",
        {**factory.booking(factory.iso(TUESDAY, "09:00")), "interpreter_language": "Arabisch"},
    )
    assert response.status == 201, await response.text()
    interpreted = await response.json()
    await book(client, TUESDAY, "08:00", location_id=THERE)

    day = await manager.get(f"/api/v1/staff/locations/{HERE}/appointments", params={"date": TUESDAY})
    assert day.status == 200, await day.text()
    listed = {a["id"]: a for a in await day.json()}
    assert set(listed) == {mine["id"], phone["id"], interpreted["id"]}
    assert listed[interpreted["id"]]["interpreter_language"] == "Arabisch"
    assert listed[interpreted["id"]]["channel"] == "staff"
    assert listed[mine["id"]]["customer"]["last_name"] == "Mustermann"
    # Staff read the catalog's German names, whatever language the customer booked in.
    assert mine["concern"]["name"] == "Notice of a change"
    assert listed[mine["id"]]["concern_name"] == "Mitteilung einer Veränderung"
    assert listed[mine["id"]]["language"] == "en"
    assert (listed[mine["id"]]["group"], listed[mine["id"]]["group_name"]) == ("ez", "Eingangszone")
    assert listed[phone["id"]]["mode"] == "phone"
    assert listed[phone["id"]]["customer"]["phone"]  # R49: staff of the location see the number

    # R28: another location's staff see neither the day nor the file, nor find it.
    assert (
        await other_manager.get(f"/api/v1/staff/locations/{HERE}/appointments", params={"date": TUESDAY})
    ).status == 403
    assert (await other_manager.get(f"/api/v1/staff/appointments/{mine['id']}")).status == 403
    found = await other_manager.get("/api/v1/staff/appointments/search", params={"q": mine["reference"]})
    assert await found.json() == []
    found = await manager.get("/api/v1/staff/appointments/search", params={"q": mine["reference"]})
    assert [a["id"] for a in await found.json()] == [mine["id"]]
    # A caller names the e-mail address they booked with (any case).
    email = listed[mine["id"]]["customer"]["email"]
    found = await manager.get("/api/v1/staff/appointments/search", params={"q": email.upper()})
    assert [a["id"] for a in await found.json()] == [mine["id"]]

    week = await manager.get(
        f"/api/v1/staff/locations/{HERE}/appointments", params={"date": "2026-03-02", "to": "2026-03-08"}
    )
    assert len(await week.json()) == 3


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2026-02-30"])
async def test_a_day_no_calendar_holds_is_a_422_naming_the_field(
    manager: Staff, leader: Staff, day: str
) -> None:
    for path in ("appointments", "calls"):
        response = await manager.get(f"/api/v1/staff/locations/{HERE}/{path}", params={"date": day})
        answer = await response.json()
        assert response.status == 422 and answer["error"]["details"][0]["field"] == "date", answer
    preview = await leader.post(f"/api/v1/staff/locations/{HERE}/mass-change/preview", {"date": day})
    answer = await preview.json()
    assert preview.status == 422 and answer["error"]["details"][0]["field"] == "date", answer


@pytest.mark.req("R23")
async def test_each_outcome_is_recorded_once_from_the_appointment_s_day_with_its_event(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    booked = [await book(client, TUESDAY, f"08:{m:02d}", customer=PHONE) for m in (0, 15, 30, 45)]
    early = await manager.post(
        f"/api/v1/staff/appointments/{booked[0]['id']}/outcome", {"outcome": "resolved"}
    )
    assert early.status == 409
    assert (await early.json())["error"]["code"] == "too_early"

    on_tuesday(clock)
    for appointment, outcome in zip(booked, ("resolved", "placement", "callback", "no_show"), strict=True):
        response = await manager.post(
            f"/api/v1/staff/appointments/{appointment['id']}/outcome", {"outcome": outcome, "note": "ok"}
        )
        assert response.status == 200, await response.text()
        assert (await response.json())["outcome"] == outcome
    recorded = await events(pool, "appointment.outcome_recorded")
    assert [(e["appointment"]["id"], e["outcome"]) for e in recorded] == [
        (a["id"], o) for a, o in zip(booked, ("resolved", "placement", "callback", "no_show"), strict=True)
    ]
    created = await events(pool, "callback.created")
    assert len(created) == 1
    ticket = created[0]["callback"]
    assert ticket["appointment_id"] == booked[2]["id"] and ticket["group_id"] == "ez"
    assert datetime.fromisoformat(ticket["due_at"]) == callback_due(clock.now())
    assert recorded[2]["callback_id"] == ticket["id"]

    again = await manager.post(
        f"/api/v1/staff/appointments/{booked[0]['id']}/outcome", {"outcome": "no_show"}
    )
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "outcome_recorded"
    no_reason = await manager.post(
        f"/api/v1/staff/appointments/{booked[0]['id']}/outcome", {"outcome": "no_show", "correction": True}
    )
    assert no_reason.status == 422
    corrected = await manager.post(
        f"/api/v1/staff/appointments/{booked[0]['id']}/outcome",
        {"outcome": "no_show", "correction": True, "reason": "verwechselt"},
    )
    assert corrected.status == 200
    last = (await events(pool, "appointment.outcome_recorded"))[-1]
    assert last["correction"] is True and last["previous_outcome"] == "resolved"


@pytest.mark.req("R23")
def test_the_callback_promise_counts_48_hours_on_bremen_working_days_only() -> None:
    # Thursday before Good Friday, 14:00: Good Friday, the weekend and Easter Monday do not count.
    assert callback_due(datetime(2026, 4, 2, 14, 0, tzinfo=BERLIN)) == datetime(
        2026, 4, 8, 14, 0, tzinfo=BERLIN
    )
    # An ordinary Friday, 14:00: due on Tuesday at 14:00.
    assert callback_due(datetime(2026, 3, 6, 14, 0, tzinfo=BERLIN)) == datetime(
        2026, 3, 10, 14, 0, tzinfo=BERLIN
    )
    # A Saturday: counting starts on Monday at 00:00.
    assert callback_due(datetime(2026, 3, 7, 11, 0, tzinfo=BERLIN)) == datetime(
        2026, 3, 11, 0, 0, tzinfo=BERLIN
    )
    # A Wednesday: two working days later.
    assert callback_due(datetime(2026, 3, 4, 9, 30, tzinfo=BERLIN)) == datetime(
        2026, 3, 6, 9, 30, tzinfo=BERLIN
    )


@pytest.mark.req("R27")
async def test_staff_read_the_documents_to_bring_in_german_when_the_customer_booked_in_english(
    client: TestClient[Any, Any], manager: Staff
) -> None:
    booked = await book(client, TUESDAY, "10:00", concern="neuantrag", language="en")
    assert booked["documents"] == ["Identity card", "Tenancy agreement"]  # what the customer reads
    file = await (await manager.get(f"/api/v1/staff/appointments/{booked['id']}")).json()
    assert file["documents"] == ["Personalausweis", "Mietvertrag"]
    assert file["concern_name"] == "Neuantrag stellen"


@pytest.mark.req("R23")
async def test_the_callback_queue_of_a_team_shows_due_and_overdue_tickets_and_they_are_claimed_and_closed(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    appointment = await book(client, TUESDAY, "08:00", language="en", customer=PHONE)
    on_tuesday(clock)
    await manager.post(f"/api/v1/staff/appointments/{appointment['id']}/outcome", {"outcome": "callback"})
    queue = await (
        await manager.get("/api/v1/staff/callbacks", params={"location": HERE, "status": "open"})
    ).json()
    assert len(queue) == 1 and queue[0]["team"] == "ez" and queue[0]["overdue"] is False
    assert queue[0]["concern_name"] == "Mitteilung einer Veränderung"  # German for staff
    assert queue[0]["team_name"] == "Eingangszone"
    assert queue[0]["due_at"].startswith("2026-03-05T11:30")
    # The documented `?location=&status=open` left empty is every location the person may see.
    blank = await manager.get("/api/v1/staff/callbacks", params={"location": "", "status": "open"})
    assert blank.status == 200
    assert [t["id"] for t in await blank.json()] == [queue[0]["id"]]

    clock.set(factory.at("2026-03-05", "12:00"))
    queue = await (await manager.get("/api/v1/staff/callbacks", params={"location": HERE})).json()
    assert queue[0]["overdue"] is True
    ticket = queue[0]["id"]
    claimed = await manager.post(f"/api/v1/staff/callbacks/{ticket}/claim")
    assert (await claimed.json())["status"] == "claimed"
    closed = await manager.post(f"/api/v1/staff/callbacks/{ticket}/close", {"result": "Kundin erreicht"})
    assert (await closed.json())["status"] == "closed"
    assert (
        await (
            await manager.get("/api/v1/staff/callbacks", params={"location": HERE, "status": "open"})
        ).json()
        == []
    )
    event = (await events(pool, "callback.closed"))[0]["callback"]
    assert event["closed_at"] and event["due_at"] and event["status"] == "closed"
    assert event["closed_as"] == "done"  # the kind of ending only, never the result's text
    assert (await manager.post(f"/api/v1/staff/callbacks/{ticket}/close", {"result": "x"})).status == 409


@pytest.mark.req("R23")
async def test_the_callback_list_shows_tickets_still_to_handle_first_then_the_newest_closed_ones(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """The list ends at a limit (500): a location with many closed tickets must still see every open one
    under "alle", and its latest closed ones under "erledigt", not the oldest."""
    booked = [await book(client, TUESDAY, time, customer=PHONE) for time in ("08:00", "08:15", "08:30")]
    on_tuesday(clock)
    tickets = []
    for appointment in booked:
        await manager.post(f"/api/v1/staff/appointments/{appointment['id']}/outcome", {"outcome": "callback"})
        tickets.append(
            await pool.fetchval(
                "SELECT id FROM callbacks WHERE appointment_id = $1", uuid.UUID(appointment["id"])
            )
        )
    for ticket in tickets[:2]:  # the first two are closed, one hour apart; the third stays open
        clock.advance(timedelta(hours=1))
        await manager.post(f"/api/v1/staff/callbacks/{ticket}/close", {"result": "erreicht"})
    every = ["open", "claimed", "closed"]
    assert [r["id"] for r in await staff_db.list_callbacks(pool, [HERE], every, None, limit=2)] == [
        tickets[2],
        tickets[1],
    ]
    assert [r["id"] for r in await staff_db.list_callbacks(pool, [HERE], ["closed"], None, limit=1)] == [
        tickets[1]
    ]


@pytest.mark.req("R23")
async def test_a_corrected_outcome_hands_its_ticket_to_the_named_team_or_withdraws_it(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """A callback recorded for the wrong team, then no callback at all: the team queues follow the
    correction, and no ticket is left behind to turn overdue."""
    appointment = await book(client, TUESDAY, "08:00", customer=PHONE)
    path = f"/api/v1/staff/appointments/{appointment['id']}/outcome"
    on_tuesday(clock)
    assert (await manager.post(path, {"outcome": "callback"})).status == 200
    fix = {"correction": True, "reason": "falsches Team"}
    to_lt = await manager.post(path, {"outcome": "callback", "team": "lt", **fix})
    assert to_lt.status == 200, await to_lt.text()
    queue = await (
        await manager.get("/api/v1/staff/callbacks", params={"location": HERE, "status": "open"})
    ).json()
    assert [(t["appointment_id"], t["team"]) for t in queue] == [(appointment["id"], "lt")]
    created = [e["callback"] for e in await events(pool, "callback.created")]
    assert [(c["id"], c["group_id"]) for c in created] == [(queue[0]["id"], "ez"), (queue[0]["id"], "lt")]
    assert created[1]["revision"] > created[0]["revision"]  # reporting keeps the later team

    resolved = await manager.post(path, {"outcome": "resolved", **fix, "reason": "doch geklärt"})
    assert resolved.status == 200
    assert (
        await (
            await manager.get("/api/v1/staff/callbacks", params={"location": HERE, "status": "open"})
        ).json()
        == []
    )
    [closed] = [e["callback"] for e in await events(pool, "callback.closed")]
    assert closed["id"] == queue[0]["id"] and closed["status"] == "closed"
    assert closed["closed_as"] == "withdrawn"  # reporting counts it apart, not as kept in time
    result = await pool.fetchval("SELECT result FROM callbacks WHERE id = $1", uuid.UUID(closed["id"]))
    assert result.startswith("Zurückgenommen")

    # Back to "callback" after all: the same ticket is open again, due anew, for the team named now.
    clock.advance(timedelta(hours=3))
    back = await manager.post(path, {"outcome": "callback", "team": "ez", **fix, "reason": "doch Rückruf"})
    assert back.status == 200, await back.text()
    queue = await (
        await manager.get("/api/v1/staff/callbacks", params={"location": HERE, "status": "open"})
    ).json()
    assert [(t["id"], t["team"]) for t in queue] == [(closed["id"], "ez")]
    reopened = (await events(pool, "callback.created"))[-1]["callback"]
    assert reopened["id"] == closed["id"] and reopened["revision"] > closed["revision"]
    assert datetime.fromisoformat(reopened["due_at"]) == callback_due(clock.now())


@pytest.mark.req("R9")
async def test_staff_cancel_with_a_reason_and_the_customer_gets_the_cancellation(
    client: TestClient[Any, Any], manager: Staff, other_manager: Staff, pool: asyncpg.Pool
) -> None:
    appointment = await book(client, TUESDAY, "08:00")
    refused = await other_manager.post(
        f"/api/v1/staff/appointments/{appointment['id']}/cancel", {"reason": "x"}
    )
    assert refused.status == 403
    assert (await manager.post(f"/api/v1/staff/appointments/{appointment['id']}/cancel", {})).status == 422
    response = await manager.post(
        f"/api/v1/staff/appointments/{appointment['id']}/cancel", {"reason": "Krank"}
    )
    assert response.status == 200 and (await response.json()) == {"status": "cancelled"}
    cancelled = await events(pool, "appointment.cancelled")
    assert cancelled[0]["cancelled_by"] == "staff" and cancelled[0]["reason"] == "Krank"

    # A caller cancels through the service centre: recorded as the customer's own cancellation, so that
    # the mail confirms it instead of apologising for the jobcenter (the note is not mailed).
    callers = await book(client, TUESDAY, "08:15")
    path = f"/api/v1/staff/appointments/{callers['id']}/cancel"
    wrong = await manager.post(path, {"reason": "Anruf", "on_customer_request": "vielleicht"})
    details = (await wrong.json())["error"]["details"]
    assert wrong.status == 422 and details[0]["field"] == "on_customer_request"
    assert (await manager.post(path, {"reason": "Anruf", "on_customer_request": True})).status == 200
    cancelled = await events(pool, "appointment.cancelled")
    assert [(e["cancelled_by"], e["reason"]) for e in cancelled][1] == ("customer", "Anruf")
    file = await (await manager.get(f"/api/v1/staff/appointments/{callers['id']}")).json()
    entered = [h["detail"] for h in file["history"] if h["kind"] == "cancelled"]
    assert [d.get("on_customer_request") for d in entered] == [True]


@pytest.mark.req("R34")
@pytest.mark.req("R30")
async def test_a_location_administrator_erases_a_cancelled_or_past_appointments_data_on_request(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """Art. 17 GDPR: a customer asks for the erasure of their data before the retention period ends."""
    location_admin = Staff(client, clock, Role.LOCATION_ADMIN, HERE)
    elsewhere = Staff(client, clock, Role.LOCATION_ADMIN, THERE)
    appointment = await book(client, TUESDAY, "08:00", mode="phone")
    past = await book(client, TUESDAY, "08:15")
    path = f"/api/v1/staff/appointments/{appointment['id']}/erase"
    # Still to come: cancelled first, so that the customer gets the mail.
    pending = await location_admin.post(path)
    assert pending.status == 409 and (await pending.json())["error"]["code"] == "not_changeable"
    on_tuesday(clock, "07:30")  # the day of the call: a first attempt with a note
    attempt = await location_admin.post(
        f"/api/v1/staff/appointments/{appointment['id']}/call-attempts", {"reached": False, "note": "Mailbox"}
    )
    assert attempt.status == 201, await attempt.text()
    cancelled = await manager.post(
        f"/api/v1/staff/appointments/{appointment['id']}/cancel", {"reason": "Umzug"}
    )
    assert cancelled.status == 200
    # Appointment managers and other locations' administrators may not.
    assert (await manager.post(path)).status == 403
    assert (await elsewhere.post(path)).status == 403
    erased = await location_admin.post(path)
    assert erased.status == 200 and await erased.json() == {"erased": True}
    row = await pool.fetchrow(
        "SELECT first_name, last_name, email, phone, customer_number, cancel_reason, client_network"
        " FROM appointments WHERE id = $1",
        appointment["id"],
    )
    assert dict(row) == {
        "first_name": "",
        "last_name": "",
        "email": "",
        "phone": None,
        "customer_number": None,
        "cancel_reason": None,
        "client_network": None,
    }
    assert (
        await pool.fetchval("SELECT note FROM call_attempts WHERE appointment_id = $1", appointment["id"])
        == ""
    )
    # The notifier and reporting erase their copies on the event; the file says who erased it.
    assert [e["appointment_id"] for e in await events(pool, "appointment.personal_data_erased")] == [
        appointment["id"]
    ]
    file = await (await location_admin.get(f"/api/v1/staff/appointments/{appointment['id']}")).json()
    assert file["customer"]["email"] == "" and file["status"] == "cancelled"
    assert [(h["kind"], h["actor"]) for h in file["history"]][-1] == ("personal_data_erased", "user:kim")
    # The manage link leads nowhere any more: no token opens it (403 `forbidden`, R41).
    token = appointment["manage_url"].rsplit("token=", 1)[1]
    assert (
        await client.get(f"/api/v1/appointments/{appointment['id']}", params={"token": token})
    ).status == 403
    # The deletion report lists it (accountability, Art. 5(2) GDPR): counts, never data.
    [report] = await events(pool, "retention.run_completed")
    assert (report["job"], report["counts"]) == (
        "erasure_on_request",
        {"appointments_erased": 1, "staff_notes_erased": 1, "wishes_erased": 0},
    )
    # Twice is once.
    again = await location_admin.post(path)
    assert again.status == 200 and await again.json() == {"erased": False}
    assert len(await events(pool, "appointment.personal_data_erased")) == 1
    # The hourly retention run is not taken for done by an erasure on request.
    assert await booking_retention.run_retention(pool, booking_settings(), clock) is not None
    # A past appointment needs no cancellation first.
    on_tuesday(clock, "09:00")
    assert (await location_admin.post(f"/api/v1/staff/appointments/{past['id']}/erase")).status == 200


@pytest.mark.req("R41")
async def test_a_new_manage_link_is_sent_only_by_staff_of_the_location_and_only_for_an_upcoming_one(
    client: TestClient[Any, Any], manager: Staff, other_manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    appointment = await book(client, TUESDAY, "08:00")
    path = f"/api/v1/staff/appointments/{appointment['id']}/manage-link"
    assert (await other_manager.post(path)).status == 403
    missing = await manager.post(
        "/api/v1/staff/appointments/00000000-0000-0000-0000-000000000000/manage-link"
    )
    assert missing.status == 404
    response = await manager.post(path)
    assert response.status == 202 and (await response.json()) == {"status": "accepted"}
    again = await manager.post(path)  # staff are not held to the public form's limit: a caller waits
    assert again.status == 202
    assert [e["appointment"]["revision"] for e in await events(pool, "appointment.link_renewed")] == [2, 3]
    clock.advance(timedelta(days=2))  # the appointment lies behind
    late = await manager.post(path)
    assert late.status == 409 and (await late.json())["error"]["code"] == "too_late"
    assert len(await events(pool, "appointment.link_renewed")) == 2


@pytest.mark.req("R49")
async def test_a_phone_appointment_s_second_unreached_call_opens_one_callback_ticket(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    phone = await book(client, TUESDAY, "08:15", mode="phone")
    on_tuesday(clock, "08:20")
    calls = await (
        await manager.get(f"/api/v1/staff/locations/{HERE}/calls", params={"date": TUESDAY})
    ).json()
    assert [c["id"] for c in calls] == [phone["id"]] and calls[0]["customer"]["phone"]
    first = await manager.post(f"/api/v1/staff/appointments/{phone['id']}/call-attempts", {"reached": False})
    assert first.status == 201 and (await first.json())["callback"] is None
    second = await manager.post(
        f"/api/v1/staff/appointments/{phone['id']}/call-attempts", {"reached": False, "note": "Mailbox"}
    )
    body = await second.json()
    assert body["callback"] is not None and len(body["call_attempts"]) == 2
    await manager.post(f"/api/v1/staff/appointments/{phone['id']}/call-attempts", {"reached": False})
    assert len(await events(pool, "callback.created")) == 1
    calls = await (
        await manager.get(f"/api/v1/staff/locations/{HERE}/calls", params={"date": TUESDAY})
    ).json()
    assert len(calls[0]["call_attempts"]) == 3


async def _pending(pool: asyncpg.Pool, number: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM appointments WHERE status = 'booked' AND customer_number_key = $1", number
        )
    )


@pytest.mark.req("R24")
@pytest.mark.req("R5")
async def test_a_follow_up_in_the_responsible_team_replaces_the_entrance_zone_appointment_in_one_step(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    first = await book(client, TUESDAY, "08:00", number="001D000001")
    other = await book(client, TUESDAY, "08:30")
    on_tuesday(clock, "08:10")
    start = factory.iso("2026-03-04", "09:00")
    response = await manager.post(
        f"/api/v1/staff/appointments/{first['id']}/follow-up",
        {"concern_id": "bescheid", "start": start, "mode": "in_person"},
    )
    assert response.status == 201, await response.text()
    follow = await response.json()
    assert follow["group"] == "lt"
    assert await pool.fetchval("SELECT status FROM appointments WHERE id = $1", first["id"]) == "passed"
    # Its outcome is the follow-up (directive 3.4), told to reporting like any outcome.
    day = await (
        await manager.get(f"/api/v1/staff/locations/{HERE}/appointments", params={"date": TUESDAY})
    ).json()
    assert {a["id"]: a["outcome"] for a in day}[first["id"]] == "follow_up"
    recorded = await events(pool, "appointment.outcome_recorded")
    assert [(e["appointment"]["id"], e["outcome"]) for e in recorded] == [(first["id"], "follow_up")]
    assert recorded[0]["appointment"]["status"] == "passed"
    # Staff do not choose it themselves: only the booked follow-up says so.
    chosen = await manager.post(f"/api/v1/staff/appointments/{other['id']}/outcome", {"outcome": "follow_up"})
    assert chosen.status == 422
    assert await _pending(pool, "001D000001") == 1
    # The one pending appointment: a second follow-up is refused, nothing changes.
    again = await manager.post(
        f"/api/v1/staff/appointments/{first['id']}/follow-up",
        {"concern_id": "bescheid", "start": factory.iso("2026-03-04", "10:00"), "mode": "in_person"},
    )
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_booked"
    # No double booking: the team's two points at 09:00 taken, the third attempt finds none.
    await book(client, "2026-03-04", "09:00", concern="bescheid")
    full = await manager.post(
        f"/api/v1/staff/appointments/{other['id']}/follow-up",
        {"concern_id": "bescheid", "start": start, "mode": "in_person"},
    )
    assert full.status == 409 and (await full.json())["error"]["code"] == "slot_taken"
    assert await pool.fetchval("SELECT status FROM appointments WHERE id = $1", other["id"]) == "booked"
    booked_events = [e["appointment"]["id"] for e in await events(pool, "appointment.booked")]
    assert follow["id"] in booked_events


@pytest.mark.req("R25")
async def test_a_transfer_moves_the_appointment_to_the_responsible_location_and_the_history_keeps_both(
    client: TestClient[Any, Any], manager: Staff, other_manager: Staff, pool: asyncpg.Pool
) -> None:
    wrong = await book(client, TUESDAY, "08:00")
    start = factory.iso("2026-03-04", "09:00")
    response = await manager.post(
        f"/api/v1/staff/appointments/{wrong['id']}/transfer",
        {"location_id": THERE, "concern_id": "bescheid", "start": start},
    )
    assert response.status == 200, await response.text()
    moved = await response.json()
    assert moved["location"] == THERE and moved["id"] == wrong["id"] and moved["group"] == "lt"
    event = (await events(pool, "appointment.transferred"))[0]
    assert event["from_location_id"] == HERE and event["appointment"]["location_id"] == THERE
    assert event["appointment"]["customer"]["last_name"] == "Mustermann"
    # Now the responsible location's file: theirs to see, no longer ours.
    detail = await other_manager.get(f"/api/v1/staff/appointments/{wrong['id']}")
    history = (await detail.json())["history"]
    assert [(h["kind"], h["location"]) for h in history] == [
        ("transferred_from", HERE),
        ("transferred_to", THERE),
    ]
    assert (await manager.get(f"/api/v1/staff/appointments/{wrong['id']}")).status == 403

    # Without a slot: a callback ticket for the responsible team, and the appointment here ends.
    second = await book(client, TUESDAY, "08:15", customer=PHONE)
    response = await manager.post(
        f"/api/v1/staff/appointments/{second['id']}/transfer",
        {"location_id": THERE, "concern_id": "bescheid"},
    )
    body = await response.json()
    assert body["status"] == "cancelled" and body["callback"]["location"] == THERE
    assert body["callback"]["team"] == "lt"
    # The file stays here, cancelled; the team that calls back reads it (with the number), and only reads.
    handed = await other_manager.get(f"/api/v1/staff/appointments/{second['id']}")
    assert handed.status == 200, await handed.text()
    file = await handed.json()
    assert file["status"] == "cancelled" and file["customer"]["last_name"] == "Mustermann"
    assert file["customer"]["phone"] == PHONE["phone"]
    refused = await other_manager.post(
        f"/api/v1/staff/appointments/{second['id']}/outcome", {"outcome": "resolved"}
    )
    assert refused.status == 403
    stranger = Staff(client, manager.clock, Role.APPOINTMENT_MANAGER, "irgendwo")
    assert (await stranger.get(f"/api/v1/staff/appointments/{second['id']}")).status == 403
    # No double booking at the target: its slot is taken by the first transfer on one of two points.
    count = await pool.fetchval(
        "SELECT count(*) FROM appointments WHERE location_id = $1 AND status = 'booked' AND start_at = $2",
        THERE,
        factory.at("2026-03-04", "09:00"),
    )
    assert count == 1


@pytest.mark.req("R25")
async def test_a_transfer_to_a_phone_appointment_needs_the_customer_s_phone_number(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool
) -> None:
    """The receiving team cannot call a customer who left no number: as for a follow-up, staff are told."""
    in_person = await book(client, TUESDAY, "08:00")  # booked in person, without a phone number
    response = await manager.post(
        f"/api/v1/staff/appointments/{in_person['id']}/transfer",
        {
            "location_id": THERE,
            "concern_id": "bescheid",
            "start": factory.iso("2026-03-04", "09:00"),
            "mode": "phone",
        },
    )
    answer = await response.json()
    assert response.status == 422 and answer["error"]["details"][0]["field"] == "mode", answer
    row = await pool.fetchrow("SELECT location_id, status FROM appointments WHERE id = $1", in_person["id"])
    assert (row["location_id"], row["status"]) == (HERE, "booked")


@pytest.mark.req("R23")
@pytest.mark.req("R25")
async def test_no_callback_is_promised_to_a_customer_without_a_phone_number(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """A callback ticket (an outcome, a hand-over without a slot) promises a call: without a number it is
    refused at its field, and nothing changes; a hand-over with a slot there still works."""
    silent = await book(client, TUESDAY, "08:00")  # in person, no phone number
    handed = await manager.post(
        f"/api/v1/staff/appointments/{silent['id']}/transfer",
        {"location_id": THERE, "concern_id": "bescheid"},
    )
    answer = await handed.json()
    assert handed.status == 422, answer
    assert [(d["field"], d["type"]) for d in answer["error"]["details"]] == [("start", "no_phone")]
    assert await pool.fetchval("SELECT status FROM appointments WHERE id = $1", silent["id"]) == "booked"

    on_tuesday(clock)
    outcome = await manager.post(
        f"/api/v1/staff/appointments/{silent['id']}/outcome", {"outcome": "callback"}
    )
    answer = await outcome.json()
    assert outcome.status == 422, answer
    assert [(d["field"], d["type"]) for d in answer["error"]["details"]] == [("outcome", "no_phone")]
    assert await pool.fetchval("SELECT outcome FROM appointments WHERE id = $1", silent["id"]) is None
    assert await events(pool, "callback.created") == []
    assert await events(pool, "appointment.cancelled") == []
    resolved = await manager.post(
        f"/api/v1/staff/appointments/{silent['id']}/outcome", {"outcome": "resolved"}
    )
    assert resolved.status == 200


async def test_other_locations_and_unknown_ids_are_refused(manager: Staff, clock: ManualClock) -> None:
    response = await manager.get(f"/api/v1/staff/locations/{THERE}/appointments", params={"date": TUESDAY})
    assert response.status == 403
    missing = await manager.post("/api/v1/staff/callbacks/00000000-0000-0000-0000-000000000000/claim")
    assert missing.status == 404


@pytest.mark.req("R37")
@pytest.mark.req("R41")
async def test_staff_move_an_appointment_under_the_customer_s_rules_and_the_file_says_who_moved_it(
    client: TestClient[Any, Any], manager: Staff, other_manager: Staff, pool: asyncpg.Pool
) -> None:
    appointment = await book(client, TUESDAY, "08:00")
    path = f"/api/v1/staff/appointments/{appointment['id']}/reschedule"
    later = factory.iso(TUESDAY, "10:00")
    assert (await other_manager.post(path, {"start": later})).status == 403
    assert (await manager.post(path, {"start": factory.iso(TUESDAY, "10:07")})).status == 422
    # The customer's rules hold for staff too: nothing in the past.
    assert (await manager.post(path, {"start": factory.iso("2026-03-02", "07:00")})).status in (409, 422)

    response = await manager.post(path, {"start": later})
    assert response.status == 200, await response.text()
    moved = await response.json()
    assert moved["id"] == appointment["id"] and moved["start"] == later
    assert "token=" not in moved["manage_url"]  # only the customer's own link carries the token
    event = (await events(pool, "appointment.rescheduled"))[0]

    def moment(text: str) -> datetime:
        return datetime.fromisoformat(text)

    assert moment(event["appointment"]["start"]) == moment(later)
    assert moment(event["previous_start"]) == moment(appointment["start"])
    # The old slot is free again and the appointment holds the new one, once.
    rows = await pool.fetch("SELECT start_at FROM appointments WHERE id = $1", moved["id"])
    assert [r["start_at"] for r in rows] == [factory.at(TUESDAY, "10:00")]
    detail = await (await manager.get(f"/api/v1/staff/appointments/{appointment['id']}")).json()
    moves = [h for h in detail["history"] if h["kind"] == "rescheduled"]
    assert len(moves) == 1 and moment(moves[0]["detail"]["from_start"]) == moment(appointment["start"])
    assert moves[0]["actor"] and moment(moves[0]["start"]) == moment(later)

    # The customer's manage link still works after the move, and shows the new start.
    view = await client.get(
        f"/api/v1/appointments/{appointment['id']}",
        params={"token": appointment["manage_url"].split("token=")[1]},
    )
    assert view.status == 200 and (await view.json())["start"] == later
    # A cancelled appointment no longer moves.
    await manager.post(f"/api/v1/staff/appointments/{appointment['id']}/cancel", {"reason": "Krank"})
    assert (await manager.post(path, {"start": factory.iso(TUESDAY, "11:00")})).status == 409


@pytest.mark.req("R37")
@pytest.mark.req("R39")
async def test_a_retried_staff_booking_with_its_idempotency_key_answers_with_the_first_result(
    client: TestClient[Any, Any], clock: ManualClock, pool: asyncpg.Pool
) -> None:
    """The service centre's system retries after a timeout: the same key books once and answers 201 with
    the same appointment, not 409 `already_booked`; the key is the caller's, never shared with another."""
    body = factory.booking(factory.iso("2026-03-04", "09:00"))
    kim = {**identity_header(clock, Role.APPOINTMENT_MANAGER, HERE), "Idempotency-Key": "call-4711"}
    first = await client.post("/api/v1/staff/appointments", json=body, headers=kim)
    assert first.status == 201, await first.text()
    again = await client.post("/api/v1/staff/appointments", json=body, headers=kim)
    assert again.status == 201 and await again.json() == await first.json()
    assert await pool.fetchval("SELECT count(*) FROM appointments") == 1
    # Another caller with the same key is another request: booking's rules answer it (R5).
    lee = {
        **identity_header(clock, Role.APPOINTMENT_MANAGER, HERE, name="lee"),
        "Idempotency-Key": "call-4711",
    }
    other = await client.post("/api/v1/staff/appointments", json=body, headers=lee)
    assert other.status == 409 and (await other.json())["error"]["code"] == "already_booked"
