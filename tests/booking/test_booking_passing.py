"""Passing (I7): a started appointment stops being pending, once across replicas, so that the customer
can book again (R5); the event says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import BaseTestServer, TestClient, TestServer

from services.booking import service
from services.booking.app import create_app
from shared.clock import ManualClock
from tests.booking.conftest import booking_settings
from tests.booking.factory import at, booking, iso
from tests.conftest import wait_for

Client = TestClient[Any, Any]


@pytest.mark.req("R5")
async def test_a_passed_appointment_frees_the_customer_to_book_again(
    client: Client, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    first = booking(iso("2026-03-03", "09:00"), email="erika@example.org", number="333D333333")
    assert (await client.post("/api/v1/appointments", json=first)).status == 201
    later = booking(iso("2026-03-10", "09:00"), email="erika@example.org", number="333D333333")
    assert (await client.post("/api/v1/appointments", json=later)).status == 409

    clock.set(at("2026-03-03", "09:00"))
    deps = service.Deps(pool=pool, clock=clock, settings=booking_settings())
    assert await service.pass_started_appointments(deps) == 1
    assert await pool.fetchval("SELECT status FROM appointments") == "passed"
    event = await pool.fetchrow("SELECT envelope FROM outbox WHERE type = 'appointment.passed'")
    snapshot = event["envelope"]["data"]["appointment"]
    assert snapshot["status"] == "passed" and snapshot["revision"] == 2
    assert "token=" not in snapshot["manage_url"]  # the token is not kept, only its hash
    assert (await client.post("/api/v1/appointments", json=later)).status == 201


async def test_an_appointment_that_has_not_started_stays_booked(
    client: Client, pool: asyncpg.Pool, clock: ManualClock
) -> None:
    assert (await client.post("/api/v1/appointments", json=booking(iso("2026-03-03", "09:00")))).status == 201
    clock.set(at("2026-03-03", "08:59"))
    deps = service.Deps(pool=pool, clock=clock, settings=booking_settings())
    assert await service.pass_started_appointments(deps) == 0
    assert await pool.fetchval("SELECT status FROM appointments") == "booked"


@pytest.fixture
async def two_replicas(located: asyncpg.Pool, clock: ManualClock) -> AsyncIterator[list[BaseTestServer]]:
    settings = booking_settings(run_jobs=True, passing_interval_seconds=0.05)
    async with (
        TestServer(create_app(settings, clock=clock)) as one,
        TestServer(create_app(settings, clock=clock)) as two,
    ):
        yield [one, two]


async def test_the_passing_job_runs_once_across_two_replicas(
    two_replicas: list[BaseTestServer], pool: asyncpg.Pool, clock: ManualClock
) -> None:
    client: Client
    async with TestClient(two_replicas[0]) as client:
        starts = [iso("2026-03-03", t) for t in ("08:00", "08:15", "08:30", "08:45", "09:00")]
        for start in starts * 3:  # fifteen appointments, three per slot
            assert (await client.post("/api/v1/appointments", json=booking(start))).status == 201
    clock.set(at("2026-03-03", "12:00"))

    async def all_passed() -> bool:
        passed = await pool.fetchval("SELECT count(*) FROM appointments WHERE status = 'passed'")
        return bool(passed == 15)

    await wait_for(all_passed, what="the passing job of either replica")
    await asyncio.sleep(0.3)  # both replicas keep running their schedule meanwhile
    passed_events = await pool.fetchval("SELECT count(*) FROM outbox WHERE type = 'appointment.passed'")
    assert passed_events == 15
    assert await pool.fetchval("SELECT max(revision) FROM appointments") == 2
