"""The customer's whole journey through the gateway (its proxy and route table) to the booking service:
availability, hold, book, view, reschedule, cancel; and rejected requests leave nothing behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.booking.app import create_app as create_booking
from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from shared.clock import ManualClock
from tests.booking import factory
from tests.booking.conftest import booking_settings, counts
from tests.booking.factory import booking, iso
from tests.conftest import svc_settings

Client = TestClient[Any, Any]

# aiohttp-jinja2 (the gateway's pages) stores its environment under a plain string key, which aiohttp
# warns about; that is the library's choice and irrelevant to the proxy under test.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.fixture
async def gateway(located: asyncpg.Pool, clock: ManualClock) -> AsyncIterator[Client]:
    async with TestServer(create_booking(booking_settings(), clock=clock)) as booking_server:
        settings = svc_settings(
            GatewaySettings, booking_urls=str(booking_server.make_url("")).rstrip("/"), bot_defence=False
        )
        async with TestClient(TestServer(create_gateway(settings))) as client:  # type: ignore[arg-type]
            yield client


@pytest.mark.req("R2")
@pytest.mark.req("R38")
@pytest.mark.req("R41")
@pytest.mark.req("R9")
async def test_hold_book_reschedule_and_cancel_through_the_gateway(
    gateway: Client, pool: asyncpg.Pool
) -> None:
    start = iso("2026-03-03", "09:00")
    found = await gateway.get(
        f"/api/v1/locations/{factory.LOCATION}/availability",
        params={"concern": "neuantrag", "mode": "in_person", "from": "2026-03-03", "to": "2026-03-03"},
    )
    assert found.status == 200
    assert start in [s["start"] for s in (await found.json())["slots"]]

    hold = await gateway.post(
        f"/api/v1/locations/{factory.LOCATION}/holds",
        json={"concern_id": "neuantrag", "mode": "in_person", "start": start},
    )
    assert hold.status == 201
    hold_id = (await hold.json())["hold_id"]

    body = booking(start, concern="neuantrag", hold_id=hold_id)
    booked = await gateway.post("/api/v1/appointments", json=body, headers={"Idempotency-Key": "gw-1"})
    appointment = await booked.json()
    assert booked.status == 201, appointment
    repeated = await gateway.post("/api/v1/appointments", json=body, headers={"Idempotency-Key": "gw-1"})
    assert repeated.status == 201 and await repeated.json() == appointment
    token = appointment["manage_url"].split("token=")[1]
    path = f"/api/v1/appointments/{appointment['id']}"

    view = await gateway.get(path, headers={"X-Manage-Token": token})
    assert view.status == 200 and (await view.json())["start"] == start
    foreign = await gateway.get(path, headers={"X-Manage-Token": "falsch"})
    assert foreign.status == 403 and (await foreign.json())["error"]["code"] == "forbidden"

    moved = await gateway.post(
        f"{path}/reschedule", params={"token": token}, json={"start": iso("2026-03-04", "10:00")}
    )
    assert moved.status == 200
    assert (await moved.json())["start"] == iso("2026-03-04", "10:00")

    cancelled = await gateway.post(f"{path}/cancel", headers={"X-Manage-Token": token})
    assert cancelled.status == 200 and await cancelled.json() == {"status": "cancelled"}
    view = await gateway.get(path, params={"token": token})
    assert (await view.json())["status"] == "cancelled"

    events = await pool.fetch("SELECT type, envelope FROM outbox ORDER BY seq")
    assert [e["type"] for e in events] == [
        "appointment.booked",
        "appointment.rescheduled",
        "appointment.cancelled",
    ]
    # R48: the network the booking came from, cut to its /24 by the booking service.
    assert {e["envelope"]["data"]["appointment"]["client_network"] for e in events} == {"127.0.0.0/24"}


async def test_rejected_requests_through_the_gateway_leave_nothing_behind(
    gateway: Client, pool: asyncpg.Pool
) -> None:
    before = await counts(pool)
    bad = [
        ("POST", "/api/v1/appointments", booking(iso("2026-03-03", "09:05"))),
        ("POST", "/api/v1/appointments", {"location_id": factory.LOCATION}),
        ("POST", "/api/v1/appointments", booking(iso("2026-03-03", "09:00"), concern="gibt-es-nicht")),
        ("POST", f"/api/v1/locations/{factory.LOCATION}/holds", {"concern_id": "neuantrag", "start": "bald"}),
        ("POST", "/api/v1/appointments/00000000-0000-0000-0000-000000000000/cancel", None),
    ]
    for method, path, body in bad:
        response = await gateway.request(method, path, json=body)
        assert 400 <= response.status < 500, (path, response.status)
        assert "error" in await response.json()
    assert await counts(pool) == before
