"""R44 near the booking horizon (R19): a mass change moves customers to the next free places of the weeks
after the change even where customers cannot book yet, instead of cancelling their appointments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.clock import BERLIN, ManualClock
from shared.events.catalog import LeadTime
from tests.booking import factory
from tests.booking.conftest import configure
from tests.staff_work.conftest import HERE, Staff, book

# Geschäftsstelle Nord books 42 days ahead: on Wednesday 1 April 2026 the horizon ends on 13 May.
NORD_LEAD = LeadTime(min_minutes=60, max_days=42)
TRAINING_DAY, NEXT_DAY, FRIDAY = "2026-05-12", "2026-05-13", "2026-05-15"  # 14 May: Ascension Day


@pytest.mark.req("R44")
@pytest.mark.req("R19")
async def test_a_closure_near_the_horizon_moves_its_customers_past_the_horizon_instead_of_cancelling(
    client: TestClient[Any, Any], location_admin: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    # One place on weekday mornings, 08:00-08:15, in the entrance zone.
    windows = [factory.window("ez", day, "08:00", "08:15", 1) for day in range(5)]
    await configure(pool, factory.location(revision=2, windows=windows, lead=NORD_LEAD))
    clock.set(datetime(2026, 4, 1, 10, 0, tzinfo=BERLIN))
    training = await book(client, TRAINING_DAY, "08:00")
    await book(client, NEXT_DAY, "08:00")  # the day after is full
    beyond = await client.post("/api/v1/appointments", json=factory.booking(factory.iso(FRIDAY, "08:00")))
    assert beyond.status == 409  # customers cannot book 15 May yet

    # The team closes for a training day six weeks ahead.
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    response = await location_admin.post(
        f"{base}/preview", {"date": TRAINING_DAY, "group_id": "ez", "service_points_left": 0}
    )
    assert response.status == 201, await response.text()
    preview = await response.json()
    [affected] = preview["affected"]
    assert (affected["action"], affected["proposed_start"]) == ("move", factory.iso(FRIDAY, "08:00"))

    applied = await (await location_admin.post(f"{base}/apply", {"preview_id": preview["id"]})).json()
    assert applied["moved"] == [training["id"]] and applied["cancelled"] == []
    moved = await pool.fetchrow(
        "SELECT status, start_at FROM appointments WHERE id = $1::uuid", training["id"]
    )
    assert (moved["status"], moved["start_at"]) == ("booked", factory.at(FRIDAY, "08:00"))
