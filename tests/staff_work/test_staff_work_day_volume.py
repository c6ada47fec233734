"""R22, R27, R28: a day with 200 appointments at one location (and others at another location and on
another day): the day view answers with exactly those 200, none of the other location's. How fast it
answers is measured by `bench/staff_day_bench.py`, not here."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.clock import ManualClock
from shared.identity import Role
from tests.booking.conftest import configure
from tests.staff_work.conftest import Staff
from tests.staff_work.day_fill import big_location, fill_day

BIG, SMALL = "grossstadt", "kleinstadt"
TUESDAY = date(2026, 3, 3)


@pytest.mark.req("R22")
@pytest.mark.req("R27")
@pytest.mark.req("R28")
async def test_a_day_with_200_appointments_shows_exactly_those_and_none_of_another_location(
    client: TestClient[Any, Any], pool: asyncpg.Pool, clock: ManualClock
) -> None:
    await configure(pool, big_location(BIG, "Jobcenter Großstadt"))
    await configure(pool, big_location(SMALL, "Jobcenter Kleinstadt"))
    mine = await fill_day(client, BIG, TUESDAY, 200, first_customer=10_000)
    await fill_day(client, SMALL, TUESDAY, 30, first_customer=20_000)
    await fill_day(client, BIG, date(2026, 3, 4), 10, first_customer=30_000)

    both = Staff(client, clock, Role.APPOINTMENT_MANAGER, BIG, SMALL)
    response = await both.get(f"/api/v1/staff/locations/{BIG}/appointments", params={"date": "2026-03-03"})
    assert response.status == 200
    day = await response.json()
    assert len(day) == 200 and {a["id"] for a in day} == set(mine)
    assert {a["location"] for a in day} == {BIG}
    order = [(a["group"], a["service_point"], a["start"]) for a in day]
    assert order == sorted(order)  # by group and service point, each in order of time
    phone = [a for a in day if a["mode"] == "phone"]
    assert len(phone) == 40 and all("call_attempts" in a for a in phone)
    # Staff of the other location only do not see this day at all.
    other = Staff(client, clock, Role.APPOINTMENT_MANAGER, SMALL)
    refused = await other.get(f"/api/v1/staff/locations/{BIG}/appointments", params={"date": "2026-03-03"})
    assert refused.status == 403
    theirs = await other.get(f"/api/v1/staff/locations/{SMALL}/appointments", params={"date": "2026-03-03"})
    assert len(await theirs.json()) == 30
