"""Reporting counts the waiting list's events per day, location and concern, without personal data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from services.reporting.waiting_list import HANDLERS
from shared.clock import ManualClock
from shared.events import EventData, make_envelope
from shared.events.waiting_list import (
    OfferSnapshot,
    WaitingConfirmedV1,
    WaitingOfferExpiredV1,
    WaitingRegisteredV1,
    WishSnapshot,
)


def wish(location: str) -> WishSnapshot:
    return WishSnapshot.model_validate(
        {
            "id": str(uuid.uuid4()),
            "reference": "ABCD-EFGH",
            "revision": 1,
            "status": "pending_opt_in",
            "location_id": location,
            "location_name": "Mitte",
            "location_address": "Straße 1",
            "concern_id": "veraenderung",
            "concern_name": "Veränderung",
            "mode": "in_person",
            "weekdays": [0],
            "latest_date": "2026-03-31",
            "customer": {"first_name": "Erika", "last_name": "Muster", "email": "erika@example.org"},
            "page_url": "https://x.example/waiting-list/1?token=t",
            "registered_at": "2026-03-02T10:00:00+01:00",
        }
    )


async def counted(pool: asyncpg.Pool, location: str, events: Sequence[EventData]) -> list[asyncpg.Record]:
    """Apply booking's waiting-list events as reporting's consumer does, in one transaction; the location's
    counts afterwards."""
    clock = ManualClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    async with pool.acquire() as conn, conn.transaction():
        for data in events:
            envelope = make_envelope(data, producer="booking", clock=clock)
            await HANDLERS[envelope.type](conn, envelope, data)
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM waiting_counts WHERE location_id = $1 ORDER BY event", location
    )
    return rows


@pytest.mark.req("R45")
async def test_reporting_counts_wishes_and_confirmations_without_personal_data(
    pools: dict[str, asyncpg.Pool],
) -> None:
    pool = pools["reporting"]
    location = f"count-{uuid.uuid4().hex[:6]}"
    events: list[WaitingRegisteredV1 | WaitingConfirmedV1] = [
        WaitingRegisteredV1(wish=wish(location)),
        WaitingRegisteredV1(wish=wish(location)),
        WaitingConfirmedV1(wish=wish(location)),
    ]
    rows = await counted(pool, location, events)
    assert [(r["day"], r["event"], r["count"]) for r in rows] == [
        (date(2026, 3, 2), "confirmed", 1),
        (date(2026, 3, 2), "registered", 2),
    ]
    assert set(rows[0].keys()) == {"day", "location_id", "concern_id", "event", "count"}


def _offer() -> OfferSnapshot:
    start = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    return OfferSnapshot(
        id=uuid.uuid4(),
        start=start,
        end=start + timedelta(minutes=15),
        expires_at=start - timedelta(hours=20),
    )


@pytest.mark.req("R45")
async def test_reporting_counts_an_offer_whose_mail_never_arrived_as_not_delivered_not_as_missed(
    pools: dict[str, asyncpg.Pool],
) -> None:
    pool = pools["reporting"]
    location = f"count-{uuid.uuid4().hex[:6]}"
    events = [
        WaitingOfferExpiredV1(wish=wish(location), offer=_offer()),  # the customer let it run out
        WaitingOfferExpiredV1(wish=wish(location), offer=_offer(), missed=False),  # never reached them
    ]
    rows = await counted(pool, location, events)
    assert [(r["event"], r["count"]) for r in rows] == [("offer_expired", 1), ("offer_not_delivered", 1)]
    # An event of a booking before this field counted every expiry as missed, and still does.
    older = WaitingOfferExpiredV1.model_validate(
        {"wish": wish(location).model_dump(mode="json"), "offer": _offer().model_dump(mode="json")}
    )
    assert older.missed
