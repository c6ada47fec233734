"""R45 under concurrency: exactly one offer per freed slot at a time, with several matchers (replicas)
and concurrent cancellations; the database decides, and nothing is ever double-booked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from tests.booking import factory
from tests.waiting_list.conftest import Waiting, start_waiting, unique_email
from tools.mailsink import MailSink


@pytest.fixture
async def waiting_now(pools: dict[str, asyncpg.Pool], amqp: Any, sink: MailSink) -> AsyncIterator[Waiting]:
    """Without the anti-slot-trading delay, so that matchers offer while cancellations still happen."""
    async for found in start_waiting(pools, sink, cancel_release_minutes=0):
        yield found


STARTS = [
    factory.iso(day, f"{8 + quarter // 4:02d}:{quarter % 4 * 15:02d}")
    for day in ("2026-03-03", "2026-03-04")
    for quarter in range(10)
]


@pytest.mark.req("R45")
@pytest.mark.req("R38")
async def test_twenty_concurrent_cancellations_and_five_wishes_each_wish_gets_exactly_one_offer(
    waiting_now: Waiting,
) -> None:
    waiting = waiting_now
    # Every point of the twenty starts is booked, so the wishes for them wait; one of each start cancels.
    appointments = [(await waiting.fill(start))[0] for start in STARTS]
    wanted = {"weekdays": [1, 2], "earliest": "08:00", "latest": "10:30", "latest_date": "2026-03-04"}
    wishes = [await waiting.joined_and_confirmed(unique_email(f"wish{n}"), **wanted) for n in range(5)]
    cancelling = asyncio.gather(*(waiting.cancel(appointment) for appointment in appointments))

    async def replica() -> None:
        # A matcher of one replica, running again and again while the cancellations come in.
        while not cancelling.done():
            await waiting.match()
            await asyncio.sleep(0)
        await waiting.match()

    await asyncio.gather(cancelling, replica(), replica(), replica())
    await asyncio.gather(*(waiting.match() for _ in range(3)))

    offers = await waiting.pool.fetch(
        "SELECT wish_id, status, group_id, service_point, start_at FROM waiting_offers ORDER BY start_at"
    )
    per_wish: dict[str, list[asyncpg.Record]] = {}
    for offer in offers:
        per_wish.setdefault(str(offer["wish_id"]), []).append(offer)
    # Each wish exactly one offer, all open, and no slot offered twice.
    assert sorted(per_wish) == sorted(wish_id for wish_id, _ in wishes)
    assert all(len(found) == 1 and found[0]["status"] == "open" for found in per_wish.values())
    slots = {(o["group_id"], o["service_point"], o["start_at"]) for o in offers}
    assert len(slots) == 5
    # Only freed (cancelled) slots are offered.
    assert {o["start_at"] for o in offers} <= {datetime.fromisoformat(start) for start in STARTS}
    statuses = await waiting.pool.fetch("SELECT status FROM wishes")
    assert {row["status"] for row in statuses} == {"offered"}

    # All five accept at once: five appointments, nothing double-booked.
    async def accept(wish_id: str, token: str) -> int:
        response = await waiting.client.post(
            f"/api/v1/waiting-list/{wish_id}/offer/accept", params={"token": token}
        )
        return response.status

    assert await asyncio.gather(*(accept(wish_id, token) for wish_id, token in wishes)) == [201] * 5
    overlapping = await waiting.pool.fetchval(
        "SELECT count(*) FROM appointments a JOIN appointments b ON a.id < b.id"
        " AND a.location_id = b.location_id AND a.group_id = b.group_id AND a.service_point = b.service_point"
        " AND tstzrange(a.start_at, a.end_at) && tstzrange(b.start_at, b.end_at)"
        " WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'"
    )
    assert overlapping == 0
    # The forty bookings that stayed, and the five from the offers.
    assert await waiting.pool.fetchval("SELECT count(*) FROM appointments WHERE status = 'booked'") == 45
    assert await waiting.pool.fetchval("SELECT count(*) FROM wishes WHERE status = 'booked'") == 5
    assert await waiting.pool.fetchval("SELECT count(*) FROM waiting_offers WHERE status = 'accepted'") == 5
