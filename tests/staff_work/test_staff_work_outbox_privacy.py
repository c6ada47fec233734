"""R34, I6 for booking's outbox: an event that has left (it is published) is kept only as long as a
restore may need to publish it again (`OTV_OUTBOX_KEEP_PUBLISHED_HOURS`), not for the whole retention
period; an erasure, on request or on schedule, takes the appointment's published events with it, also
those written after the appointment's end (an outcome recorded late)."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.booking import retention as booking_retention
from services.booking.app import create_app
from shared.clock import ManualClock
from shared.identity import Role
from tests.booking import factory
from tests.booking.conftest import booking_settings
from tests.conftest import wait_for
from tests.staff_work.conftest import HERE, Staff, book

TUESDAY = "2026-03-03"
NOTE = "Frau M. hat Mietschulden"


async def _holding(pool: asyncpg.Pool, *needles: str) -> list[str]:
    """The types of the outbox rows whose event names any of the needles."""
    rows = await pool.fetch("SELECT type, envelope::text AS text FROM outbox ORDER BY seq")
    return [r["type"] for r in rows if any(needle in r["text"] for needle in needles)]


async def _all_published(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"))


@pytest.mark.req("R34")
async def test_a_published_event_leaves_the_outbox_once_its_keep_time_is_over(
    pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """The manage link's token and the customer's data stay in the outbox no longer than the relay needs
    them; the retention runs' own reports (counts only) stay, the next run is decided by them."""
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            TestClient(TestServer(create_app(booking_settings(outbox_keep_published_hours=0), clock=clock)))
        )
        booked = await book(client, TUESDAY, "08:00")
        token = booked["manage_url"].rsplit("token=", 1)[1]
        email = (await pool.fetchval("SELECT email FROM appointments WHERE id = $1", booked["id"])) or "?"
        assert await _holding(pool, token, email) == ["appointment.booked"]
        await booking_retention.run_retention(pool, booking_settings(), clock, force=True)

        async def gone() -> bool:
            return await _all_published(pool) and not await _holding(pool, token, email)

        await wait_for(gone, timeout=10, what="the published events leaving the outbox")
        kept = await pool.fetch("SELECT type FROM outbox")
        assert [r["type"] for r in kept] == ["retention.run_completed"]


@pytest.mark.req("R34")
async def test_an_erasure_on_request_takes_the_appointments_published_events_with_it(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    location_admin = Staff(client, clock, Role.LOCATION_ADMIN, HERE)
    appointment = await book(client, TUESDAY, "08:00", mode="phone")
    other = await book(client, TUESDAY, "08:15")
    token = appointment["manage_url"].rsplit("token=", 1)[1]
    email = await pool.fetchval("SELECT email FROM appointments WHERE id = $1", appointment["id"])
    path = f"/api/v1/staff/appointments/{appointment['id']}"
    cancelled = await manager.post(f"{path}/cancel", {"reason": "Umzug nach Hamburg"})
    assert cancelled.status == 200
    await wait_for(lambda: _all_published(pool), what="the events published")
    assert await _holding(pool, token, email, "Hamburg") == ["appointment.booked", "appointment.cancelled"]

    erased = await location_admin.post(f"{path}/erase")
    assert erased.status == 200, await erased.text()
    assert await _holding(pool, token, email, "Hamburg") == []
    # What the erasure itself publishes is there, and so is another customer's booking.
    assert await _holding(pool, appointment["id"]) == ["appointment.personal_data_erased"]
    assert await _holding(pool, other["id"]) == ["appointment.booked"]


@pytest.mark.req("R34")
async def test_the_scheduled_erasure_takes_an_outcome_recorded_after_the_appointment_with_it(
    client: TestClient[Any, Any], manager: Staff, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """An outcome (with staff's note) recorded three weeks after the day is erased with the appointment,
    four weeks after its end, not four weeks after the outcome."""
    appointment = await book(client, TUESDAY, "08:00")
    email = await pool.fetchval("SELECT email FROM appointments WHERE id = $1", appointment["id"])
    clock.set(factory.at(TUESDAY, "08:15") + timedelta(days=20))
    outcome = await manager.post(
        f"/api/v1/staff/appointments/{appointment['id']}/outcome", {"outcome": "resolved", "note": NOTE}
    )
    assert outcome.status == 200, await outcome.text()
    await wait_for(lambda: _all_published(pool), what="the events published")
    assert "appointment.outcome_recorded" in await _holding(pool, NOTE, email)

    clock.set(factory.at(TUESDAY, "12:00") + timedelta(days=29))
    counts = await booking_retention.run_retention(pool, booking_settings(), clock, force=True)
    assert counts is not None and counts["appointments_erased"] == 1
    assert await _holding(pool, NOTE, email) == []
