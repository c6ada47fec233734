"""A location with room for a full day (ten service points from 07:00 to 19:00 on Tuesdays and
Wednesdays), and a helper that books many appointments into one day through booking's public API; shared
by the 200-appointment test and `bench/staff_day_bench.py`."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from shared.clock import BERLIN
from shared.events.catalog import ConcernOffer, GroupKind, GroupSnapshot, LocationConfiguredV1, Mode
from tests.booking import factory

POINTS = 10
SLOT_MINUTES = 15


def big_location(location_id: str, name: str) -> LocationConfiguredV1:
    return factory.location(
        location_id=location_id,
        name=name,
        groups=[
            GroupSnapshot(
                id="ez", kind=GroupKind.ENTRANCE_ZONE, name={"de": "Eingangszone"}, service_points=POINTS
            )
        ],
        windows=[factory.window("ez", weekday, "07:00", "19:00", POINTS) for weekday in (1, 2)],
        concerns=[
            ConcernOffer(
                concern_id="veraenderung",
                group_id="ez",
                name={"de": "Mitteilung einer Veränderung"},
                duration_minutes=SLOT_MINUTES,
                modes=[Mode.IN_PERSON, Mode.PHONE],
            )
        ],
    )


async def fill_day(
    client: TestClient[Any, Any], location_id: str, day: date, count: int, *, first_customer: int
) -> list[str]:
    """Book `count` appointments on `day` (ten per slot, in parallel per slot); their ids."""
    ids: list[str] = []
    start = datetime.combine(day, datetime.min.time(), BERLIN).replace(hour=7)
    for offset in range(0, count, POINTS):
        at = (start + timedelta(minutes=SLOT_MINUTES * (offset // POINTS))).isoformat()
        batch = range(offset, min(offset + POINTS, count))

        async def one(n: int, at: str = at) -> str:
            number = first_customer + n
            body = factory.booking(
                at,
                location_id=location_id,
                email=f"tag{number}@example.org",
                number=factory.customer_number(number),
                mode="phone" if n % 5 == 0 else "in_person",
            )
            response = await client.post("/api/v1/appointments", json=body)
            assert response.status == 201, await response.text()
            return str((await response.json())["id"])

        ids += await asyncio.gather(*(one(n) for n in batch))
    return ids
