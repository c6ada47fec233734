"""Fixtures of the catalog's tests: the catalog's pool on an emptied schema, the app under test with a
manual clock, and the demo data.

Loading the demo data takes a second or more on a busy machine, so it is loaded once per session and
each test that needs it gets the tables restored from that copy (one statement per table)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.catalog import demo
from services.catalog.app import create_app
from services.catalog.config import Settings
from shared.clock import BERLIN, ManualClock
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from tests.conftest import TEST_OVERRIDES, svc_settings

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)  # a Wednesday

# In the order of their foreign keys.
TABLES = (
    "locations",
    "concerns",
    "service_point_groups",
    "offers",
    "windows",
    "closures",
    "policy_approvals",
    "allow_list",
    "allow_list_state",
    "other_jobcenters",
    "finder_postcodes",
    "finder_streets",
    "change_log",
    "catalog_meta",
    "outbox",
)
SERIALS = {
    "windows": "id",
    "closures": "id",
    "policy_approvals": "id",
    "finder_streets": "id",
    "change_log": "id",
    "outbox": "seq",
}


# The catalog's tests publish on an exchange of their own: the snapshots they make must not wait in the
# queues other services' tests declared on the session's exchange (booking.catalog, reporting.events).
EXCHANGE = f"{TEST_OVERRIDES['exchange']}.catalog"


def catalog_settings(**overrides: Any) -> Settings:
    settings = svc_settings(Settings, **{"exchange": EXCHANGE, **overrides})
    assert isinstance(settings, Settings)
    return settings


@pytest.fixture(scope="session", autouse=True)
async def _delete_catalog_exchange() -> AsyncIterator[None]:
    yield
    connection = await aio_pika.connect_robust(Settings().broker_url)
    try:
        channel = await connection.channel()
        for name in (EXCHANGE, f"{EXCHANGE}.dlx"):
            await channel.exchange_delete(name)
        await channel.close()
    finally:
        await connection.close()


async def empty_catalog(pool: asyncpg.Pool) -> None:
    """Empty the catalog's schema (only the catalog's: these tests touch nothing else)."""
    tables = await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'catalog' AND tablename <> 'schema_migrations'"
    )
    names = ", ".join(f'catalog."{t["tablename"]}"' for t in tables)
    await pool.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
async def demo_copy(pools: dict[str, asyncpg.Pool]) -> dict[str, Any]:
    """The catalog's tables right after one real `load_demo`."""
    pool = pools["catalog"]
    await empty_catalog(pool)
    await demo.load_demo(pool, ManualClock(NOW))
    copy = {}
    for table in TABLES:
        copy[table] = await pool.fetchval(f"SELECT coalesce(json_agg(t), '[]'::json) FROM catalog.{table} t")  # noqa: S608 -- fixed table names
    await empty_catalog(pool)
    return copy


async def restore(pool: asyncpg.Pool, copy: dict[str, Any]) -> None:
    await empty_catalog(pool)
    async with pool.acquire() as conn, conn.transaction():
        for table in TABLES:
            await conn.execute(
                f"INSERT INTO catalog.{table}"  # noqa: S608 -- fixed table names
                f" SELECT * FROM json_populate_recordset(NULL::catalog.{table}, $1::json)",
                copy[table],
            )
        for table, column in SERIALS.items():
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('catalog.{table}', '{column}'),"  # noqa: S608 -- fixed names
                f" coalesce((SELECT max({column}) FROM catalog.{table}), 0) + 1, false)"
            )


# A recorded prior approval of a restricted opening time (directive 3.6, R21).
APPROVAL = {
    "rule": "R17",
    "reference": "GBL2-2026-041",
    "approved_by": "GBL 2",
    "valid_from": "2026-11-01",
    "valid_until": "2026-12-31",
}


def staff_headers(
    name: str = "catalog-admin", role: Role = Role.ADMIN, location: str = "*", *, at: datetime = NOW
) -> dict[str, str]:
    """The staff identity the gateway signs for the catalog (the catalog's admin API needs one)."""
    identity = StaffIdentity(
        subject=name,
        kind=IdentityKind.USER,
        grants=(Grant(role=role, locations=(location,)),),
        issued_at=at,
    )
    return {HEADER: sign(identity, catalog_settings().internal_secret)}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def pool(pools: dict[str, asyncpg.Pool]) -> asyncpg.Pool:
    catalog = pools["catalog"]
    await empty_catalog(catalog)
    return catalog


@pytest.fixture
async def demo_pool(pools: dict[str, asyncpg.Pool], demo_copy: dict[str, Any]) -> asyncpg.Pool:
    catalog = pools["catalog"]
    await restore(catalog, demo_copy)
    return catalog


@pytest.fixture
async def client(
    pool: asyncpg.Pool, clock: ManualClock
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(
        TestServer(create_app(catalog_settings(), clock=clock)), headers=staff_headers()
    ) as test_client:
        yield test_client


@pytest.fixture
async def demo_client(
    demo_pool: asyncpg.Pool, clock: ManualClock
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(
        TestServer(create_app(catalog_settings(), clock=clock)), headers=staff_headers()
    ) as test_client:
        yield test_client


@pytest.fixture(scope="module")
async def demo_module(
    pools: dict[str, asyncpg.Pool], demo_copy: dict[str, Any]
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The demo data once for a module of read-only tests, and the app over it."""
    await restore(pools["catalog"], demo_copy)
    async with TestClient(
        TestServer(create_app(catalog_settings(), clock=ManualClock(NOW))), headers=staff_headers()
    ) as test_client:
        yield test_client


async def snapshot_events(pool: asyncpg.Pool, location_id: str | None = None) -> list[dict[str, Any]]:
    """The `catalog.location_configured` envelopes in the outbox, oldest first."""
    rows = await pool.fetch(
        "SELECT envelope FROM outbox WHERE type = 'catalog.location_configured' ORDER BY seq"
    )
    envelopes = [r["envelope"] for r in rows]
    return [e for e in envelopes if location_id is None or e["data"]["location_id"] == location_id]


async def outbox_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox"))
