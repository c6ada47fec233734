"""The booking service's own copy of the catalog, kept from catalog events on the real broker: booking
works without the catalog service, and a stale snapshot is dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.booking.app import create_app
from shared.clock import ManualClock, SystemClock
from shared.events import EventData, make_envelope
from shared.events.catalog import AllowListChangedV1
from tests.booking import factory
from tests.booking.conftest import booking_settings
from tests.booking.factory import booking, iso
from tests.conftest import publish_envelope, wait_for

Client = TestClient[Any, Any]


async def publish(amqp: aio_pika.abc.AbstractRobustConnection, data: EventData) -> str:
    """Publish an event as the catalog service's outbox relay would."""
    envelope = make_envelope(data, producer="catalog", clock=SystemClock())
    await publish_envelope(amqp, envelope)
    return str(envelope.id)


@pytest.fixture
async def consuming(
    pool: asyncpg.Pool, clock: ManualClock, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[Client]:
    """The booking service alone, with its catalog consumer; no catalog service runs anywhere."""
    app = create_app(booking_settings(consume_catalog=True), clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield client


async def applied(pool: asyncpg.Pool, *event_ids: str) -> bool:
    done = await pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = 'booking.catalog' AND event_id = ANY($1::uuid[])",
        list(event_ids),
    )
    return bool(done == len(event_ids))


@pytest.mark.req("R1")
async def test_booking_works_from_its_own_copy_without_the_catalog_service(
    consuming: Client, pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    event_id = await publish(amqp, factory.location(revision=1))
    await wait_for(lambda: applied(pool, event_id), what="the snapshot to arrive")
    found = await consuming.get(
        f"/api/v1/locations/{factory.LOCATION}/availability",
        params={"concern": "neuantrag", "from": "2026-03-03", "to": "2026-03-03"},
    )
    assert found.status == 200 and len((await found.json())["slots"]) == 4
    response = await consuming.post("/api/v1/appointments", json=booking(iso("2026-03-03", "09:00")))
    assert response.status == 201


async def test_a_stale_snapshot_revision_is_dropped(
    consuming: Client, pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    newer = await publish(amqp, factory.location(revision=5, name="Neuer Name"))
    await wait_for(lambda: applied(pool, newer), what="revision 5")
    older = await publish(amqp, factory.location(revision=4, name="Alter Name"))
    await wait_for(lambda: applied(pool, older), what="revision 4 to be handled")
    row = await pool.fetchrow("SELECT revision, snapshot FROM locations WHERE id = $1", factory.LOCATION)
    assert row["revision"] == 5 and row["snapshot"]["name"] == "Neuer Name"
    response = await consuming.post("/api/v1/appointments", json=booking(iso("2026-03-03", "09:00")))
    assert (await response.json())["location"]["name"] == "Neuer Name"


@pytest.mark.req("R6")
async def test_the_allow_list_arrives_as_an_event_and_a_stale_one_is_dropped(
    consuming: Client, pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    ids = [
        await publish(amqp, factory.location(revision=1)),
        await publish(amqp, AllowListChangedV1(revision=2, entries=["sc@jobcenter.example"])),
        await publish(amqp, AllowListChangedV1(revision=1, entries=[])),
    ]
    await wait_for(lambda: applied(pool, *ids), what="the events")
    assert await pool.fetchval("SELECT entries FROM allow_list") == ["sc@jobcenter.example"]
    for start in ("09:00", "10:00"):
        response = await consuming.post(
            "/api/v1/appointments", json=booking(iso("2026-03-03", start), email="SC@jobcenter.example")
        )
        assert response.status == 201
