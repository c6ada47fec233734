"""Fixtures of the booking tests: the booking schema of the test database, an injected clock, the
booking app in-process, and the synthetic location as the catalog would have published it."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.booking.app import create_app
from services.booking.config import Settings
from services.booking.consumer import apply_allow_list_changed, apply_location_configured
from shared.clock import BERLIN, ManualClock
from shared.events.catalog import AllowListChangedV1, LocationConfiguredV1
from tests.booking import factory
from tests.conftest import svc_settings

# Monday, 2 March 2026, 10:00 in Bremen: the default "now" of these tests.
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)


def booking_settings(**overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "consume_catalog": False,
        "consume_mail_reports": False,
        "run_jobs": False,
        "db_pool_max": 20,
    }
    settings = svc_settings(Settings, **{**defaults, **overrides})
    assert isinstance(settings, Settings)
    return settings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


# The booking schema's tables, emptied before each test (DELETE: much cheaper than TRUNCATE for the few
# rows a test leaves, and only this schema: the other services' tables are not ours to touch).
BOOKING_TABLES = (
    "appointments",
    "holds",
    "idempotent_requests",
    "locations",
    "allow_list",
    "outbox",
    "inbox",
    "dead_letters",
)


@pytest.fixture
async def pool(pools: dict[str, asyncpg.Pool]) -> asyncpg.Pool:
    booking_pool = pools["booking"]
    await booking_pool.execute(";".join(f"DELETE FROM {table}" for table in BOOKING_TABLES))  # noqa: S608 -- fixed names
    return booking_pool


async def configure(pool: asyncpg.Pool, snapshot: LocationConfiguredV1) -> None:
    """Apply a catalog snapshot the way the consumer does."""
    async with pool.acquire() as conn, conn.transaction():
        await apply_location_configured(conn, None, snapshot)


async def allow(pool: asyncpg.Pool, *entries: str, revision: int = 1) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await apply_allow_list_changed(
            conn, None, AllowListChangedV1(revision=revision, entries=list(entries))
        )


@pytest.fixture
async def located(pool: asyncpg.Pool) -> asyncpg.Pool:
    await configure(pool, factory.location())
    return pool


class RoundRobin:
    """Requests spread in turn over several in-process replicas of the booking service (invariant I7):
    each call goes to the next replica, so concurrent requests of one test meet in the database only."""

    def __init__(self, clients: list[TestClient[Any, Any]]) -> None:
        self._turn = itertools.cycle(clients)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return next(self._turn).get(*args, **kwargs)

    def post(self, *args: Any, **kwargs: Any) -> Any:
        return next(self._turn).post(*args, **kwargs)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return next(self._turn).request(*args, **kwargs)


# Every booking test runs against one process and, unchanged, against two replicas sharing the database.
@pytest.fixture(params=[1, 2], ids=["one-replica", "two-replicas"])
async def client(
    request: pytest.FixtureRequest, located: asyncpg.Pool, clock: ManualClock
) -> AsyncIterator[Any]:  # a TestClient, or the round robin over two that behaves like one
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                TestClient(TestServer(create_app(booking_settings(), clock=clock)))
            )
            for _ in range(request.param)
        ]
        yield clients[0] if len(clients) == 1 else RoundRobin(clients)


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Rows of every table a request could leave something in."""
    tables = ("appointments", "holds", "outbox", "idempotent_requests")
    return {t: int(await pool.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}  # noqa: S608 -- fixed names
