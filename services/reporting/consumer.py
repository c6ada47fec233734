"""The events reporting consumes (`reporting.events`, bindings in shared/topology.py), each applied with
its inbox row in the consumer's transaction (I3): appointments, callbacks, catalog snapshots, mails, and
the retention runs of the other services."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from services.reporting import service, waiting_list
from services.reporting.config import Settings
from shared.clock import Clock
from shared.consumer import Consumer, Handler
from shared.events import Envelope
from shared.topology import bindings_of
from shared.web import BROKER, CLOCK, POOL, SETTINGS

NAME = "reporting.events"

# Every appointment event carries the whole appointment; outcome and transfer come with staff work.
APPOINTMENT_EVENTS = (
    "appointment.booked",
    "appointment.rescheduled",
    "appointment.cancelled",
    "appointment.passed",
    "appointment.outcome_recorded",
    "appointment.transferred",
    "appointment.link_renewed",
    "appointment.contact_changed",  # staff corrected the customer's name, address or phone number
)


def handlers(settings: Settings, clock: Clock) -> dict[str, Handler]:
    async def appointment(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        await service.apply_appointment_event(conn, envelope, data, settings=settings, clock=clock)

    async def erased(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        await service.apply_personal_data_erased(conn, envelope, data, clock=clock)

    async def location(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        await service.apply_location_configured(conn, envelope, data, settings=settings, clock=clock)

    async def callback(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        await service.apply_callback_event(conn, envelope, data, clock=clock)

    return {
        **dict.fromkeys(APPOINTMENT_EVENTS, appointment),
        "appointment.personal_data_erased": erased,
        "callback.created": callback,
        "callback.closed": callback,
        "catalog.location_configured": location,
        "catalog.allow_list_changed": service.apply_allow_list,
        "mail.sent": service.apply_mail_event,
        "mail.failed": service.apply_mail_event,
        "retention.run_completed": service.apply_retention_run,
        **waiting_list.HANDLERS,
    }


def consumers(app: web.Application) -> list[Consumer]:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the composition root passes the service's settings
    return [
        Consumer(
            NAME,
            pool=app[POOL],
            connection=app[BROKER],
            settings=settings,
            handlers=handlers(settings, app[CLOCK]),
            bindings=bindings_of(NAME),
        )
    ]
