"""The service centre's documented API (R50): booking's staff routes are in the OpenAPI document with their
bodies and answers, and real answers read through the documented models (extra fields forbidden), so the
document cannot drift from the handlers."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.booking import staff_openapi as doc
from services.booking.models import AppointmentOut, CancelledOut
from services.booking.openapi import document
from shared.clock import ManualClock
from tests.booking import factory
from tests.staff_work.conftest import HERE, THERE, Staff, book

TUESDAY = "2026-03-03"


@pytest.mark.req("R50")
def test_the_staff_booking_routes_are_documented_with_their_bodies_and_answers() -> None:
    paths = document()["paths"]
    booking = paths["/api/v1/staff/appointments"]["post"]
    assert booking["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "StaffBookingRequest"
    )
    assert "201" in booking["responses"] and "409" in booking["responses"]
    for path in ("cancel", "reschedule", "outcome", "transfer", "follow-up", "call-attempts", "contact"):
        operation = paths[f"/api/v1/staff/appointments/{{appointment_id}}/{path}"]["post"]
        assert "requestBody" in operation, path
    day = paths["/api/v1/staff/locations/{location_id}/appointments"]["get"]
    assert {p["name"] for p in day["parameters"]} >= {"location_id", "date"}


@pytest.mark.req("R49")
@pytest.mark.req("R50")
async def test_the_documented_phone_rule_is_what_an_appointment_manager_reads_for_an_in_person_row(
    client: TestClient[Any, Any], manager: Staff
) -> None:
    """The document tells an integrator who gets the number: staff of the appointment's location, for
    every mode (not only phone appointments or group leaders), as the answers show."""
    schema = document()["components"]["schemas"]["StaffCustomerOut"]["properties"]["phone"]
    described = schema["description"]
    assert "every mode" in described and "staff of the appointment's location" in described
    assert "for the group's leaders" not in described
    in_person = await book(client, TUESDAY, "09:00", customer={"phone": "0421 123456"})
    row = next(
        r
        for r in await (
            await manager.get(f"/api/v1/staff/locations/{HERE}/appointments", params={"date": TUESDAY})
        ).json()
        if r["id"] == in_person["id"]
    )
    assert row["mode"] == "in_person" and row["customer"]["phone"] == "0421 123456"


@pytest.mark.req("R50")
async def test_real_staff_answers_read_through_their_documented_models(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    def read(model: Any, value: Any) -> None:
        model.model_validate(value)

    booked = await manager.post(
        "/api/v1/staff/appointments",
        {
            **factory.booking(factory.iso(TUESDAY, "09:00"), customer={"phone": "0421 123456"}),
            "interpreter_language": "Farsi",
        },
    )
    assert booked.status == 201, await booked.text()
    appointment = await booked.json()
    read(AppointmentOut, appointment)
    phone = await book(client, TUESDAY, "08:15", mode="phone")
    moved = await manager.post(
        f"/api/v1/staff/appointments/{appointment['id']}/reschedule", {"start": factory.iso(TUESDAY, "10:00")}
    )
    read(AppointmentOut, await moved.json())
    corrected = await manager.post(
        f"/api/v1/staff/appointments/{appointment['id']}/contact", {"email": "korrigiert@example.org"}
    )
    assert corrected.status == 200, await corrected.text()
    read(doc.StaffAppointmentOut, await corrected.json())

    clock.set(factory.at(TUESDAY, "08:20"))
    for row in await (
        await manager.get(f"/api/v1/staff/locations/{HERE}/appointments", params={"date": TUESDAY})
    ).json():
        read(doc.StaffAppointmentOut, row)
    calls = await (
        await manager.get(f"/api/v1/staff/locations/{HERE}/calls", params={"date": TUESDAY})
    ).json()
    assert calls
    for row in calls:
        read(doc.StaffAppointmentOut, row)
    for row in await (
        await manager.get("/api/v1/staff/appointments/search", params={"q": appointment["reference"]})
    ).json():
        read(doc.StaffAppointmentOut, row)
    detail = await (await manager.get(f"/api/v1/staff/appointments/{appointment['id']}")).json()
    read(doc.StaffAppointmentDetailOut, detail)
    assert detail["history"]

    attempt = await manager.post(
        f"/api/v1/staff/appointments/{phone['id']}/call-attempts", {"reached": False}
    )
    read(doc.CallAttemptsOut, await attempt.json())
    clock.set(factory.at(TUESDAY, "11:30"))
    outcome = await manager.post(
        f"/api/v1/staff/appointments/{appointment['id']}/outcome", {"outcome": "callback"}
    )
    assert outcome.status == 200, await outcome.text()
    read(doc.OutcomeOut, await outcome.json())
    queue = await (await manager.get("/api/v1/staff/callbacks", params={"location": HERE})).json()
    assert queue
    for row in queue:
        read(doc.CallbackOut, row)
    claimed = await manager.post(f"/api/v1/staff/callbacks/{queue[0]['id']}/claim")
    read(doc.CallbackOut, await claimed.json())
    closed = await manager.post(f"/api/v1/staff/callbacks/{queue[0]['id']}/close", {"result": "erreicht"})
    read(doc.CallbackOut, await closed.json())
    later = await book(client, "2026-03-04", "09:00")
    cancelled = await manager.post(f"/api/v1/staff/appointments/{later['id']}/cancel", {"reason": "Krank"})
    assert cancelled.status == 200, await cancelled.text()
    read(CancelledOut, await cancelled.json())


@pytest.mark.req("R50")
async def test_follow_up_transfer_and_mass_change_answers_read_through_their_documented_models(
    client: TestClient[Any, Any], manager: Staff, location_admin: Staff, clock: ManualClock
) -> None:
    entrance = await book(client, TUESDAY, "08:00")
    wrong = await book(client, TUESDAY, "08:30")
    unplaced = await book(client, TUESDAY, "08:45", customer={"phone": "0421 123456"})
    clock.set(factory.at(TUESDAY, "08:10"))
    follow = await manager.post(
        f"/api/v1/staff/appointments/{entrance['id']}/follow-up",
        {"concern_id": "bescheid", "start": factory.iso("2026-03-04", "09:00"), "mode": "in_person"},
    )
    assert follow.status == 201, await follow.text()
    doc.FollowUpOut.model_validate(await follow.json())
    for appointment, start in ((wrong, {"start": factory.iso("2026-03-04", "10:00")}), (unplaced, {})):
        moved = await manager.post(
            f"/api/v1/staff/appointments/{appointment['id']}/transfer",
            {"location_id": THERE, "concern_id": "bescheid", **start},
        )
        assert moved.status == 200, await moved.text()
        doc.TransferOut.model_validate(await moved.json())

    friday = "2026-03-06"
    await book(client, friday, "09:00")
    preview = await location_admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/preview", {"date": friday, "service_points_left": 0}
    )
    assert preview.status == 201, await preview.text()
    proposed = doc.MassChangePreviewOut.model_validate(await preview.json())
    assert len(proposed.affected) == 1
    applied = await location_admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/apply", {"preview_id": proposed.id}
    )
    assert applied.status == 200, await applied.text()
    assert len(doc.MassChangeAppliedOut.model_validate(await applied.json()).moved) == 1
