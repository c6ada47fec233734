"""The consumer `gateway.integrations`: every appointment.* and callback.* event into the feed and the
webhook deliveries, with the inbox row in the same transaction (I3)."""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg
from aiohttp import web

import shared.events.all
from services.gateway.integrations import service
from services.gateway.integrations.domain import FAMILIES
from services.gateway.integrations.keys import INTEGRATIONS
from shared.consumer import Consumer, Handler
from shared.events import Envelope
from shared.topology import bindings_of
from shared.web import BROKER, POOL, SETTINGS

with contextlib.suppress(ImportError):
    # callback.* and appointment.outcome_recorded/transferred are being defined there (issue 10); until
    # the module is in shared.events.all, importing it here registers them.
    import shared.events.staff_work  # type: ignore[import-not-found,unused-ignore]  # noqa: F401

NAME = "gateway.integrations"


class FamilyHandlers(dict[str, Handler]):
    """One handler for every event type of the families, whatever types exist now or are added later
    (the consumer base still ignores a type or version without a registered model)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self._handler = handler

    def get(self, key: str, default: Any = None) -> Any:
        return self._handler if key.startswith(FAMILIES) else default


def consumers(app: web.Application) -> list[Consumer]:
    integrations = app[INTEGRATIONS]

    async def handle(conn: asyncpg.Connection, envelope: Envelope, _data: Any) -> None:
        await service.store_event(conn, envelope, integrations.clock.now())

    return [
        Consumer(
            NAME,
            pool=app[POOL],
            connection=app[BROKER],
            settings=app[SETTINGS],
            handlers=FamilyHandlers(handle),
            bindings=bindings_of(NAME),
        )
    ]
