"""The catalog deletes its published events after the retention period, so that the location snapshots
(a whole configuration each) do not pile up in its outbox for ever."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from services.catalog.app import create_app
from services.catalog.outbox_cleanup import delete_old_events
from shared.clock import ManualClock
from shared.events.catalog import AllowListChangedV1
from shared.outbox import add_event
from tests.catalog.conftest import NOW, catalog_settings, outbox_count, snapshot_events, staff_headers
from tests.conftest import wait_for

LATER = NOW + timedelta(days=29)  # one day past the default retention period of 28 days


async def _add_recent_event(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await add_event(
            conn, AllowListChangedV1(revision=99, entries=[]), producer="catalog", clock=ManualClock(LATER)
        )


async def test_published_snapshots_older_than_the_retention_period_are_deleted_newer_and_unsent_ones_stay(
    demo_pool: asyncpg.Pool,
) -> None:
    old = await outbox_count(demo_pool)
    assert old > 6, "the demo data publish a snapshot of every location"
    unsent = await demo_pool.fetchval("SELECT min(seq) FROM outbox")
    await _add_recent_event(demo_pool)
    await demo_pool.execute(
        "UPDATE outbox SET published_at = CASE WHEN seq = $1 THEN NULL ELSE now() END", unsent
    )

    deleted = await delete_old_events(demo_pool, catalog_settings(), ManualClock(LATER))

    assert deleted == old - 1
    remaining = await demo_pool.fetch("SELECT seq, type, published_at FROM outbox ORDER BY seq")
    assert [(r["seq"], r["type"], r["published_at"] is None) for r in remaining] == [
        (unsent, "catalog.location_configured", True),
        (unsent + old, "catalog.allow_list_changed", False),
    ]
    # Within the retention period nothing is deleted.
    assert await delete_old_events(demo_pool, catalog_settings(), ManualClock(NOW + timedelta(days=27))) == 0


async def test_the_running_catalog_deletes_its_old_published_snapshots_by_itself(
    demo_pool: asyncpg.Pool,
) -> None:
    await demo_pool.execute("UPDATE outbox SET published_at = now()")
    assert len(await snapshot_events(demo_pool, "nord")) >= 1
    settings = catalog_settings(retention_interval_seconds=0.2)
    async with TestClient(
        TestServer(create_app(settings, clock=ManualClock(LATER))), headers=staff_headers(at=LATER)
    ) as client:
        response = await client.patch(
            "/api/v1/admin/groups/nord-lt",
            json={"service_points": 8},
            headers=staff_headers("nord-admin", at=LATER),
        )
        assert response.status == 200, await response.text()

        async def only_the_new_snapshot_is_left() -> bool:
            events = await snapshot_events(demo_pool)
            return [e["data"]["location_id"] for e in events] == ["nord"]

        await wait_for(only_the_new_snapshot_is_left, timeout=10, what="the old snapshots deleted")
