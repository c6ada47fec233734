"""R34 for the staff work: booking's retention job erases, with an appointment's personal data, the free
text staff wrote about it (the outcome's note, the callback ticket's note and result, the call attempts'
notes, personal details in its history), and leaves that of appointments still within the period."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.booking.retention import run_retention
from shared.clock import ManualClock
from tests.booking import factory
from tests.booking.conftest import booking_settings
from tests.staff_work.conftest import Staff, book

TUESDAY, THURSDAY = "2026-03-03", "2026-03-05"
SECRET = "Frau M. hat Mietschulden"


async def _staff_work(manager: Staff, clock: ManualClock, day: str, appointment: dict[str, Any]) -> None:
    clock.set(factory.at(day, "07:55"))
    path = f"/api/v1/staff/appointments/{appointment['id']}"
    attempt = await manager.post(f"{path}/call-attempts", {"reached": False, "note": SECRET, "missed": True})
    assert attempt.status == 201, await attempt.text()
    outcome = await manager.post(f"{path}/outcome", {"outcome": "callback", "note": SECRET})
    assert outcome.status == 200, await outcome.text()
    for ticket in await (await manager.get("/api/v1/staff/callbacks", params={"status": "all"})).json():
        if ticket["appointment_id"] == appointment["id"] and ticket["status"] != "closed":
            closed = await manager.post(f"/api/v1/staff/callbacks/{ticket['id']}/close", {"result": SECRET})
            assert closed.status == 200, await closed.text()


async def _texts(pool: asyncpg.Pool, appointment_id: str) -> list[str]:
    """Every free text kept about the appointment, as one list."""
    key = uuid.UUID(appointment_id)
    found = [await pool.fetchval("SELECT coalesce(outcome_note, '') FROM appointments WHERE id = $1", key)]
    for row in await pool.fetch(
        "SELECT note, coalesce(result, '') AS result FROM callbacks WHERE appointment_id = $1", key
    ):
        found += [row["note"], row["result"]]
    found += [
        r["note"] for r in await pool.fetch("SELECT note FROM call_attempts WHERE appointment_id = $1", key)
    ]
    found += [
        json.dumps(r["detail"])
        for r in await pool.fetch("SELECT detail FROM appointment_history WHERE appointment_id = $1", key)
    ]
    return found


@pytest.mark.req("R34")
async def test_retention_erases_the_staff_work_s_free_text_of_past_appointments_only(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    past = await book(client, TUESDAY, "08:00", mode="phone")
    recent = await book(client, THURSDAY, "08:00", mode="phone", number=factory.customer_number(77))
    await _staff_work(manager, clock, TUESDAY, past)
    await _staff_work(manager, clock, THURSDAY, recent)
    # A history row that carries customer data (as a later kind of change might): only known keys stay.
    for appointment in (past, recent):
        await pool.execute(
            "INSERT INTO appointment_history (appointment_id, revision, kind, location_id, group_id,"
            " concern_id, service_point, start_at, end_at, status, detail, actor, at)"
            " SELECT id, revision, 'note', location_id, group_id, concern_id, service_point, start_at,"
            " end_at, status, $2::jsonb, 'kim', start_at FROM appointments WHERE id = $1",
            uuid.UUID(appointment["id"]),
            {"outcome": "callback", "customer": {"last_name": "Mustermann"}, "remark": SECRET},
        )
    for appointment in (past, recent):
        assert SECRET in " ".join(await _texts(pool, appointment["id"]))

    settings = booking_settings()
    clock.set(factory.at(TUESDAY, "12:00") + timedelta(days=settings.retention_days + 1))
    counts = await run_retention(pool, settings, clock, force=True)
    assert counts is not None and counts["appointments_erased"] == 1 and counts["staff_notes_erased"] >= 5

    erased = await _texts(pool, past["id"])
    assert not any(SECRET in text or "Mustermann" in text for text in erased)
    assert any('"outcome": "callback"' in text for text in erased)  # what identifies nobody stays
    assert SECRET in " ".join(await _texts(pool, recent["id"]))
    # A second run finds nothing more to erase.
    again = await run_retention(pool, settings, clock, force=True)
    assert again is not None and again["staff_notes_erased"] == 0
