"""The catalog events the booking service consumes: its own copy of every location's bookable
configuration and of the internal allow-list, so that customers can book while the catalog is down.

Each handler runs inside the consumer's transaction, beside the inbox row (I3). A snapshot whose
revision is not higher than the stored one is stale (it was overtaken on the way) and is dropped.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.booking import db
from shared.consumer import Consumer, Handler
from shared.events import Envelope
from shared.events.catalog import AllowListChangedV1, LocationConfiguredV1
from shared.topology import bindings_of
from shared.web import BROKER, POOL, SETTINGS

log = structlog.get_logger(__name__)

CONSUMER = "booking.catalog"


async def apply_location_configured(
    conn: asyncpg.Connection, _envelope: Envelope | None, data: LocationConfiguredV1
) -> bool:
    stored = await db.store_location(conn, data.location_id, data.revision, data.model_dump(mode="json"))
    if not stored:
        log.info("stale_location_snapshot_dropped", location_id=data.location_id, revision=data.revision)
    return stored


async def apply_allow_list_changed(
    conn: asyncpg.Connection, _envelope: Envelope | None, data: AllowListChangedV1
) -> bool:
    stored = await db.store_allow_list(conn, data.revision, data.entries)
    if not stored:
        log.info("stale_allow_list_dropped", revision=data.revision)
    return stored


async def _location(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
    await apply_location_configured(conn, envelope, data)


async def _allow_list(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
    await apply_allow_list_changed(conn, envelope, data)


HANDLERS: dict[str, Handler] = {
    LocationConfiguredV1.event_type: _location,
    AllowListChangedV1.event_type: _allow_list,
}


def catalog_consumers(app: web.Application) -> list[Consumer]:
    return [
        Consumer(
            CONSUMER,
            pool=app[POOL],
            connection=app[BROKER],
            settings=app[SETTINGS],
            handlers=HANDLERS,
            bindings=bindings_of(CONSUMER),
        )
    ]
