"""R34: what an erased appointment keeps identifies nobody. Its reference (in every mail the customer has)
is replaced, so that it no longer leads staff to the file with place, time, concern and outcome; of the
interpreter only that one was needed stays (R26, the statistics), not the language: the gateway and
reporting treat both as personal data too."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.booking import retention as booking_retention
from shared.clock import ManualClock
from shared.events.appointment import INTERPRETER_ERASED
from shared.identity import Role
from tests.booking import factory
from tests.booking.conftest import booking_settings
from tests.staff_work.conftest import HERE, Staff

TUESDAY = "2026-03-03"


async def _with_interpreter(manager: Staff, hhmm: str) -> dict[str, Any]:
    response = await manager.post(
        "/api/v1/staff/appointments",
        {**factory.booking(factory.iso(TUESDAY, hhmm)), "interpreter_language": "Tigrinya (Eritrea)"},
    )
    assert response.status == 201, await response.text()
    booked: dict[str, Any] = await response.json()
    return booked


async def _found(manager: Staff, text: str) -> list[str]:
    response = await manager.get("/api/v1/staff/appointments/search", params={"q": text})
    assert response.status == 200, await response.text()
    return [a["id"] for a in await response.json()]


@pytest.mark.req("R34")
@pytest.mark.req("R26")
async def test_an_erased_appointment_is_not_found_by_its_old_reference_and_keeps_no_interpreter_language(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    location_admin = Staff(client, clock, Role.LOCATION_ADMIN, HERE)
    appointment = await _with_interpreter(manager, "09:00")
    path = f"/api/v1/staff/appointments/{appointment['id']}"
    assert await _found(manager, appointment["reference"]) == [appointment["id"]]
    assert (await manager.post(f"{path}/cancel", {"reason": "Umzug"})).status == 200
    assert (await location_admin.post(f"{path}/erase")).status == 200

    assert await _found(manager, appointment["reference"]) == []
    row = await pool.fetchrow(
        "SELECT reference, interpreter_language FROM appointments WHERE id = $1", appointment["id"]
    )
    assert row["reference"] != appointment["reference"]
    assert row["interpreter_language"] == INTERPRETER_ERASED  # one was needed; which language, not kept
    file = await (await manager.get(path)).json()
    assert appointment["reference"] not in json.dumps(file) and "Tigrinya" not in json.dumps(file)
    # Two erased appointments never share a reference (it stays unique).
    other = await _with_interpreter(manager, "09:15")
    assert (
        await manager.post(f"/api/v1/staff/appointments/{other['id']}/cancel", {"reason": "x"})
    ).status == 200
    assert (await location_admin.post(f"/api/v1/staff/appointments/{other['id']}/erase")).status == 200
    assert await pool.fetchval("SELECT count(DISTINCT reference) FROM appointments") == 2


@pytest.mark.req("R34")
async def test_the_retention_run_replaces_the_reference_and_the_interpreters_language_too(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    appointment = await _with_interpreter(manager, "09:00")
    clock.set(factory.at(TUESDAY, "12:00") + timedelta(days=29))
    counts = await booking_retention.run_retention(pool, booking_settings(), clock, force=True)
    assert counts is not None and counts["appointments_erased"] == 1
    assert await _found(manager, appointment["reference"]) == []
    row = await pool.fetchrow(
        "SELECT reference, interpreter_language FROM appointments WHERE id = $1", appointment["id"]
    )
    assert (row["reference"] != appointment["reference"], row["interpreter_language"]) == (
        True,
        INTERPRETER_ERASED,
    )
