"""Fixtures of the staff-work tests: the booking service in-process on the test database with an
injected clock, two synthetic locations (the booking tests' factory), callers that carry the signed
staff identity the gateway would send, and for the page tests a gateway in front of that booking whose
catalog is a stand-in answering the public lists (locations, concerns) the pages read."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.booking.app import create_app
from shared.clock import BERLIN, ManualClock
from shared.config import CommonSettings
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from tests.booking import factory
from tests.booking.conftest import booking_settings, configure
from tests.staff.conftest import (  # noqa: F401 -- fixtures used by name
    Gateway,
    GatewayFactory,
    StaffClient,
    make_gateway,
    staff_db,
)

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)
HERE = factory.LOCATION  # "teststadt"
THERE = "anderswo"
TABLES = (
    # The waiting list (its offers first: they refer to the wishes).
    "waiting_offers",
    "waiting_freed",
    "waiting_catalog_changes",
    "waiting_horizon",
    "wishes",
    "appointments",
    "holds",
    "idempotent_requests",
    "locations",
    "allow_list",
    "outbox",
    "inbox",
    "dead_letters",
    "callbacks",
    "call_attempts",
    "appointment_history",
    "mass_changes",
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


@pytest.fixture
async def pool(pools: dict[str, asyncpg.Pool]) -> asyncpg.Pool:
    booking_pool = pools["booking"]
    await booking_pool.execute(";".join(f"DELETE FROM {t}" for t in TABLES))  # noqa: S608 -- fixed names
    await configure(booking_pool, factory.location())
    await configure(booking_pool, factory.location(location_id=THERE, name="Jobcenter Anderswo"))
    return booking_pool


@pytest.fixture
async def client(pool: asyncpg.Pool, clock: ManualClock) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(booking_settings(), clock=clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def identity_header(
    clock: ManualClock, role: Role = Role.APPOINTMENT_MANAGER, *locations: str, name: str = "kim"
) -> dict[str, str]:
    identity = StaffIdentity(
        subject=name,
        kind=IdentityKind.USER,
        grants=(Grant(role=role, locations=tuple(locations or (HERE,))),),
        issued_at=clock.now(),
    )
    return {HEADER: sign(identity, CommonSettings().internal_secret)}


class Staff:
    """A staff member of some locations calling booking's staff API as the gateway would."""

    def __init__(self, client: TestClient[Any, Any], clock: ManualClock, role: Role, *locations: str) -> None:
        self.client, self.clock, self.role, self.locations = client, clock, role, locations

    def _headers(self) -> dict[str, str]:
        return identity_header(self.clock, self.role, *self.locations)

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.client.get(path, headers=self._headers(), **kwargs)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.client.post(path, json=body if body is not None else {}, headers=self._headers())


@pytest.fixture
def manager(client: TestClient[Any, Any], clock: ManualClock) -> Staff:
    return Staff(client, clock, Role.APPOINTMENT_MANAGER, HERE)


@pytest.fixture
def other_manager(client: TestClient[Any, Any], clock: ManualClock) -> Staff:
    return Staff(client, clock, Role.APPOINTMENT_MANAGER, THERE)


@pytest.fixture
def leader(client: TestClient[Any, Any], clock: ManualClock) -> Staff:
    return Staff(client, clock, Role.GROUP_LEADER, HERE)


@pytest.fixture
def location_admin(client: TestClient[Any, Any], clock: ManualClock) -> Staff:
    return Staff(client, clock, Role.LOCATION_ADMIN, HERE)


async def book(client: TestClient[Any, Any], day: str, hhmm: str, **kwargs: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/appointments", json=factory.booking(factory.iso(day, hhmm), **kwargs)
    )
    assert response.status == 201, await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def events(pool: asyncpg.Pool, event_type: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT envelope FROM outbox WHERE type = $1 ORDER BY seq", event_type)
    return [r["envelope"]["data"] for r in rows]


# --- the pages ------------------------------------------------------------------------------------
NAMES = {HERE: "Jobcenter Teststadt", THERE: "Jobcenter Anderswo"}


def public_concerns() -> list[dict[str, Any]]:
    """The catalog's `GET /api/v1/locations/{id}/concerns` for the booking tests' synthetic location."""
    location = factory.location()
    groups = {g.id: g for g in location.groups}
    return [
        {
            "id": c.concern_id,
            "name": c.name["de"],
            "group": groups[c.group_id].kind.value,
            "group_id": c.group_id,
            "group_name": groups[c.group_id].name["de"],
            "duration_minutes": c.duration_minutes,
            "modes": sorted(m.value for m in c.modes),
        }
        for c in location.concerns
    ]


@pytest.fixture
async def pages_gateway(
    make_gateway: GatewayFactory,  # noqa: F811 -- the fixture imported above
    client: TestClient[Any, Any],
    clock: ManualClock,
) -> Gateway:
    return await start_pages_gateway(make_gateway, client, clock)


async def start_pages_gateway(
    make_gateway: GatewayFactory,  # noqa: F811 -- the fixture imported above
    client: TestClient[Any, Any],
    clock: ManualClock,
    **overrides: Any,
) -> Gateway:
    """A gateway in front of the real booking service, the catalog's answers for its two locations."""
    started = await make_gateway(
        urls={"booking": str(client.make_url("")).rstrip("/")}, clock=clock, **overrides
    )
    answer_for_the_catalog(started)
    return started


def answer_for_the_catalog(started: Gateway) -> None:
    """The catalog stand-in's answers for the two locations of these tests."""
    catalog = started.upstreams["catalog"]
    catalog.answers["/api/v1/locations"] = [{"id": i, "name": n} for i, n in NAMES.items()]
    for location in NAMES:
        catalog.answers[f"/api/v1/locations/{location}/concerns"] = public_concerns()


async def signed_in(
    gateway: Gateway, username: str, role: Role = Role.APPOINTMENT_MANAGER, location: str = HERE
) -> StaffClient:
    return await gateway.signed_in(username, (role, location))


async def form(browser: StaffClient, path: str, **fields: str) -> Any:
    assert browser.csrf
    return await browser.post(path, data={"csrf_token": browser.csrf, **fields})


def row_of(html: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{re.escape(row_id)}".*?</tr>', html, re.S)
    assert match, f"no row {row_id}"
    return match.group(0)
