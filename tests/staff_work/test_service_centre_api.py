"""The service centre through booking's staff API, as its API key reaches it (R37): what a caller's
cancellation tells the customer (R9), and what a retry with the same Idempotency-Key repeats (R26)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.gateway.openapi import document
from services.notifier.texts import default_templates, mail_context, render
from shared.clock import ManualClock
from shared.config import CommonSettings
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from tests.booking import factory
from tests.staff_work.conftest import HERE, THERE, Staff, book, events

TUESDAY = "2026-03-03"
NOTE = "Anruf: Kundin ist krank"


def service_centre(
    clock: ManualClock,
    *locations: str,
    operations: tuple[str, ...] = ("appointments:read", "appointments:write"),
) -> dict[str, str]:
    """The identity the gateway signs for the service centre's API key (scoped to HERE)."""
    identity = StaffIdentity(
        subject="api-key:service-centre",
        kind=IdentityKind.API_KEY,
        grants=(Grant(role=Role.SERVICE_CENTRE, locations=locations or (HERE,)),),
        issued_at=clock.now(),
        operations=operations,
        display_name="Service-Center",
    )
    return {HEADER: sign(identity, CommonSettings().internal_secret)}


def cancellation_mail(event: dict[str, Any]) -> str:
    """The German cancellation mail the notifier writes from the event."""
    context = mail_context("cancellation", event, public_base_url="http://127.0.0.1:8080")
    return render(default_templates("cancellation", "de"), context).text


@pytest.mark.req("R9")
@pytest.mark.req("R37")
async def test_a_service_centre_cancellation_without_the_flag_is_the_callers_own_and_its_note_is_not_mailed(
    client: TestClient[Any, Any], manager: Staff, clock: ManualClock, pool: asyncpg.Pool
) -> None:
    """The contract's body `{reason}` alone: the caller asked for it, so the customer's mail confirms
    their own cancellation and does not quote the agent's note; staff and an explicit `false` keep the
    jobcenter's cancellation with its reason."""
    by_caller = await book(client, TUESDAY, "08:00")
    by_jobcenter = await book(client, TUESDAY, "08:15")
    by_staff = await book(client, TUESDAY, "08:30")
    key = service_centre(clock)
    bodies: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (by_caller, {"reason": NOTE}),
        (by_jobcenter, {"reason": "Raum gesperrt", "on_customer_request": False}),
    ]
    for appointment, body in bodies:
        response = await client.post(
            f"/api/v1/staff/appointments/{appointment['id']}/cancel", json=body, headers=key
        )
        assert response.status == 200, await response.text()
    staff_cancel = await manager.post(
        f"/api/v1/staff/appointments/{by_staff['id']}/cancel", {"reason": "Krank"}
    )
    assert staff_cancel.status == 200

    cancelled = {e["appointment"]["id"]: e for e in await events(pool, "appointment.cancelled")}
    caller = cancelled[by_caller["id"]]
    assert caller["cancelled_by"] == "customer"
    mail = cancellation_mail(caller)
    assert "Sie haben Ihren Termin im Jobcenter Bremen abgesagt" in mail
    assert NOTE not in mail and "entschuldigen" not in mail
    jobcenter = cancelled[by_jobcenter["id"]]
    assert jobcenter["cancelled_by"] == "service_centre"
    assert "Grund: Raum gesperrt" in cancellation_mail(jobcenter)
    assert cancelled[by_staff["id"]]["cancelled_by"] == "staff"
    # The file's history keeps that it was the caller's wish.
    file = await client.get(f"/api/v1/staff/appointments/{by_caller['id']}", headers=service_centre(clock))
    entered = [h["detail"] for h in (await file.json())["history"] if h["kind"] == "cancelled"]
    assert [d.get("on_customer_request") for d in entered] == [True]


@pytest.mark.req("R26")
@pytest.mark.req("R37")
async def test_a_retry_with_the_same_key_that_adds_an_interpreter_is_refused_not_replayed_without_one(
    client: TestClient[Any, Any], clock: ManualClock
) -> None:
    """The first request timed out; the agent adds "interpreter: Arabic" and the system sends again with
    the same key. A silent replay would leave the appointment without the interpreter."""
    body = factory.booking(factory.iso(TUESDAY, "09:00"))
    key = {**service_centre(clock), "Idempotency-Key": "crm-call-4711"}
    first = await client.post("/api/v1/staff/appointments", json=body, headers=key)
    assert first.status == 201, await first.text()
    again = await client.post(
        "/api/v1/staff/appointments", json={**body, "interpreter_language": "Arabisch"}, headers=key
    )
    assert again.status == 422, await again.text()
    assert (await again.json())["error"]["details"][0]["field"] == "Idempotency-Key"
    # Sent again as it was, it is the first booking's answer.
    same = await client.post("/api/v1/staff/appointments", json=body, headers=key)
    assert same.status == 201 and (await same.json())["id"] == (await first.json())["id"]


@pytest.mark.req("R37")
async def test_a_retry_with_the_same_key_and_the_same_start_in_utc_gets_the_first_booking(
    client: TestClient[Any, Any], clock: ManualClock
) -> None:
    """A system that keeps times in UTC serialises `start` anew for its retry: the same instant is the
    same request, so the answer is the booking it already made, not 422."""
    start = factory.at(TUESDAY, "09:00")
    body = factory.booking(start.isoformat())
    key = {**service_centre(clock), "Idempotency-Key": "crm-call-4712"}
    first = await client.post("/api/v1/staff/appointments", json=body, headers=key)
    assert first.status == 201, await first.text()
    in_utc = start.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert in_utc != body["start"] and datetime.fromisoformat(in_utc) == start
    again = await client.post("/api/v1/staff/appointments", json={**body, "start": in_utc}, headers=key)
    assert again.status == 201, await again.text()
    assert await again.json() == await first.json()
    # Another start with that key is still another request.
    other = await client.post(
        "/api/v1/staff/appointments", json={**body, "start": factory.iso(TUESDAY, "09:30")}, headers=key
    )
    assert other.status == 422


@pytest.mark.req("R37")
@pytest.mark.req("R50")
async def test_a_staff_booking_of_a_start_that_has_passed_is_too_late_as_the_document_says(
    client: TestClient[Any, Any], clock: ManualClock
) -> None:
    clock.set(factory.at(TUESDAY, "10:00"))
    late = await client.post(
        "/api/v1/staff/appointments",
        json=factory.booking(factory.iso(TUESDAY, "09:00")),
        headers=service_centre(clock),
    )
    assert late.status == 409
    code = (await late.json())["error"]["code"]
    assert code == "too_late"
    documented = document()["paths"]["/api/v1/staff/appointments"]["post"]["responses"]["409"]
    assert f"`{code}`" in documented["description"]


@pytest.mark.req("R50")
async def test_the_answer_and_the_events_of_one_appointment_name_its_start_with_an_offset_as_one_instant(
    client: TestClient[Any, Any], clock: ManualClock, pool: asyncpg.Pool
) -> None:
    """What docs/webhooks.md tells an integrator: every time has an offset, not always the same one, so
    compare times as instants, never as strings."""
    key = service_centre(clock)
    booked = await client.post(
        "/api/v1/staff/appointments", json=factory.booking(factory.iso(TUESDAY, "09:00")), headers=key
    )
    assert booked.status == 201, await booked.text()
    appointment = await booked.json()
    cancelled = await client.post(
        f"/api/v1/staff/appointments/{appointment['id']}/cancel", json={"reason": "Anruf"}, headers=key
    )
    assert cancelled.status == 200
    starts = [appointment["start"]] + [
        e["appointment"]["start"]
        for kind in ("appointment.booked", "appointment.cancelled")
        for e in await events(pool, kind)
        if e["appointment"]["id"] == appointment["id"]
    ]
    assert len(starts) == 3
    instants = {datetime.fromisoformat(start) for start in starts}
    assert instants == {factory.at(TUESDAY, "09:00")}
    assert all(datetime.fromisoformat(start).utcoffset() is not None for start in starts)
    assert len(set(starts)) > 1  # the strings differ: "+01:00" in the answer, "Z" in the cancellation


@pytest.mark.req("R5")
@pytest.mark.req("R37")
async def test_a_booking_repeated_without_its_key_names_the_pending_appointment_to_a_caller_who_may_read_it(
    client: TestClient[Any, Any], clock: ManualClock
) -> None:
    """The CRM sent no Idempotency-Key and repeated a booking whose answer it lost: the 409
    `already_booked` names the appointment it made (id, reference, start), so that the agent tells the
    caller their appointment instead of "already booked". Only to a caller who may read that location's
    appointments: the rule itself is all anyone else learns."""
    body = factory.booking(factory.iso(TUESDAY, "09:00"))
    first = await client.post("/api/v1/staff/appointments", json=body, headers=service_centre(clock))
    assert first.status == 201, await first.text()
    made = await first.json()
    again = await client.post("/api/v1/staff/appointments", json=body, headers=service_centre(clock))
    assert again.status == 409
    error = (await again.json())["error"]
    assert error["code"] == "already_booked"
    [detail] = error["details"]
    assert detail["field"] == "customer.email"
    assert (detail["appointment_id"], detail["reference"]) == (made["id"], made["reference"])
    assert datetime.fromisoformat(detail["start"]) == datetime.fromisoformat(made["start"])
    assert detail["location"] == HERE

    # The same customer at another location, by a key of that location only, or one that may not read.
    elsewhere = {**body, "location_id": THERE}
    for headers in (
        service_centre(clock, THERE),
        service_centre(clock, HERE, THERE, operations=("appointments:write",)),
    ):
        refused = await client.post("/api/v1/staff/appointments", json=elsewhere, headers=headers)
        assert refused.status == 409
        [detail] = (await refused.json())["error"]["details"]
        assert detail == {"field": "customer.email", "message": "has a pending appointment"}


@pytest.mark.req("R38")
@pytest.mark.req("R50")
async def test_copies_of_one_hold_and_one_booking_sent_at_once_to_two_replicas_make_one_of_each(
    client: TestClient[Any, Any], clock: ManualClock
) -> None:
    """Behind the gateway each copy of a retried request may reach another booking replica: the key's
    row in PostgreSQL, not a replica's memory, makes them one hold and one appointment."""
    from aiohttp.test_utils import TestServer

    from services.booking.app import create_app
    from tests.booking.conftest import booking_settings

    async with TestClient(TestServer(create_app(booking_settings(), clock=clock))) as replica:
        replicas = (client, replica)
        start = factory.iso(TUESDAY, "10:00")
        hold = {"concern_id": "veraenderung", "mode": "in_person", "start": start}
        key = {**service_centre(clock), "Idempotency-Key": "crm-hold-4713"}
        held = await asyncio.gather(
            *(r.post(f"/api/v1/staff/locations/{HERE}/holds", json=hold, headers=key) for r in replicas)
        )
        assert [h.status for h in held] == [201, 201]
        bodies = [await h.json() for h in held]
        assert bodies[0] == bodies[1]
        body = {**factory.booking(start), "hold_id": bodies[0]["hold_id"]}
        key = {**service_centre(clock), "Idempotency-Key": "crm-call-4713"}
        booked = await asyncio.gather(
            *(r.post("/api/v1/staff/appointments", json=body, headers=key) for r in replicas)
        )
        assert [b.status for b in booked] == [201, 201]
        answers = [await b.json() for b in booked]
        assert answers[0] == answers[1]
        day = await client.get(
            f"/api/v1/staff/locations/{HERE}/appointments",
            params={"date": TUESDAY},
            headers=service_centre(clock),
        )
        assert [a["id"] for a in await day.json()] == [answers[0]["id"]]
