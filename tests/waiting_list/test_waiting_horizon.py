"""R45 at the edge of the booking horizon (R19): a day that enters a location's horizon at midnight is new
capacity for the wishes waiting there, offered once in order of registration, whatever the replicas."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest

from shared.clock import BERLIN
from shared.events.catalog import LeadTime
from tests.booking import factory
from tests.booking.conftest import configure
from tests.waiting_list.conftest import Waiting, unique_email

# Geschäftsstelle Nord books 42 days ahead. On Monday 2 March 2026 the horizon ends on Monday 13 April.
NORD_LEAD = LeadTime(min_minutes=60, max_days=42)
# Monday mornings have one place, 08:00-08:15 (Easter Monday, 6 April 2026, is a public holiday).
FULL_MONDAYS = ("2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30", "2026-04-13")
MONDAY_WISH = {"weekdays": [0], "earliest": "08:00", "latest": "08:15", "latest_date": "2026-04-27"}


async def with_nord_horizon(waiting: Waiting) -> None:
    windows = [
        factory.window("ez", 0, "08:00", "08:15", 1) if (w.group_id, w.weekday) == ("ez", 0) else w
        for w in factory.default_windows()
    ]
    await configure(waiting.pool, factory.location(revision=2, windows=windows, lead=NORD_LEAD))


async def offers_of(waiting: Waiting, wish_id: str) -> list[datetime]:
    rows = await waiting.pool.fetch(
        "SELECT start_at FROM waiting_offers WHERE wish_id = $1 ORDER BY start_at", uuid.UUID(wish_id)
    )
    return [row["start_at"] for row in rows]


@pytest.mark.req("R45")
@pytest.mark.req("R19")
async def test_a_day_entering_the_booking_horizon_at_midnight_is_offered_to_the_first_wish_once(
    waiting: Waiting,
) -> None:
    await with_nord_horizon(waiting)
    for day in FULL_MONDAYS:
        await waiting.fill(factory.iso(day, "08:00"), points=1)
    # Two customers wait for a Monday morning up to 27 April, which the join page allows (8 weeks).
    first_id, first_token = await waiting.joined_and_confirmed(unique_email("first"), **MONDAY_WISH)
    waiting.clock.advance(timedelta(minutes=1))
    second_id, _ = await waiting.joined_and_confirmed(unique_email("second"), **MONDAY_WISH)
    assert (await waiting.match())["offers_made"] == 0

    # At midnight Monday 20 April enters the horizon, its place free; three replicas' matchers run.
    waiting.clock.set(datetime(2026, 3, 9, 0, 5, tzinfo=BERLIN))
    await asyncio.gather(waiting.match(), waiting.match(), waiting.match())
    assert await offers_of(waiting, first_id) == [factory.at("2026-04-20", "08:00")]
    assert await offers_of(waiting, second_id) == []
    # Later rounds of the same day offer that day's place no second time.
    waiting.clock.set(datetime(2026, 3, 9, 0, 30, tzinfo=BERLIN))
    assert (await waiting.match())["offers_made"] == 0
    offered = await waiting.pool.fetchval("SELECT count(*) FROM outbox WHERE type = 'waiting.offered'")
    assert offered == 1
    accepted = await waiting.client.post(
        f"/api/v1/waiting-list/{first_id}/offer/accept", params={"token": first_token}
    )
    assert accepted.status == 201, await accepted.text()

    # A week later Monday 27 April enters the horizon: the second customer, next in line, gets it.
    waiting.clock.set(datetime(2026, 3, 16, 0, 5, tzinfo=BERLIN))
    await asyncio.gather(waiting.match(), waiting.match())
    assert await offers_of(waiting, second_id) == [factory.at("2026-04-27", "08:00")]
