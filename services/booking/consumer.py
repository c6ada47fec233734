"""The events the booking service consumes: the catalog's, for its own copy of every location's bookable
configuration and of the internal allow-list, so that customers can book while the catalog is down; and
the notifier's reports of the waiting list's offer mails (`booking.mail`), because only an offer whose
mail reached the customer counts as missed when it runs out (R45, `waiting_list.expire_offers`).

Each handler runs inside the consumer's transaction, beside the inbox row (I3). A snapshot whose
revision is not higher than the stored one is stale (it was overtaken on the way) and is dropped.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.booking import db, waiting_list
from services.booking.config import Settings
from shared.consumer import Consumer, Handler
from shared.events import Envelope
from shared.events.catalog import AllowListChangedV1, LocationConfiguredV1
from shared.events.mail import OfferMailDeliveryV1
from shared.topology import bindings_of
from shared.web import BROKER, POOL, SETTINGS

log = structlog.get_logger(__name__)

CONSUMER = "booking.catalog"
MAIL_CONSUMER = "booking.mail"


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


async def _offer_mail(conn: asyncpg.Connection, _envelope: Envelope, data: Any) -> None:
    assert isinstance(data, OfferMailDeliveryV1)  # noqa: S101 -- the registry's model
    outcome = "sent" if data.delivered else "failed"
    await waiting_list.record_offer_mail(conn, data.wish_id, data.revision, outcome)


MAIL_HANDLERS: dict[str, Handler] = {OfferMailDeliveryV1.event_type: _offer_mail}


def booking_consumers(app: web.Application) -> list[Consumer]:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- booking's own settings
    wanted = [
        (CONSUMER, HANDLERS, settings.consume_catalog),
        (MAIL_CONSUMER, MAIL_HANDLERS, settings.consume_mail_reports),
    ]
    return [
        Consumer(
            name,
            pool=app[POOL],
            connection=app[BROKER],
            settings=settings,
            handlers=handlers,
            bindings=bindings_of(name),
        )
        for name, handlers, on in wanted
        if on
    ]
