"""The events the notifier consumes: every `appointment.*` event that carries the appointment snapshot
plans its mails in the same transaction as the consumer's inbox row (I3)."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from services.notifier.config import Settings
from services.notifier.planning import apply_appointment_event, erase_personal_data
from services.notifier.waiting_mail import handlers as waiting_handlers
from shared.consumer import Consumer, Handler
from shared.events import Envelope
from shared.events.retention import AppointmentPersonalDataErasedV1
from shared.topology import bindings_of
from shared.web import BROKER, CLOCK, POOL, SETTINGS

CONSUMER_NAME = "notifier.appointments"

# Booked, rescheduled, cancelled, transferred, a renewed manage link and a corrected e-mail address each
# send their mail; the others only move the reminder schedule (a passed appointment, a recorded outcome,
# a corrected name or phone number). Types without a registered model are acknowledged with a log line
# by the consumer base until their model exists.
EVENT_TYPES = (
    "appointment.booked",
    "appointment.rescheduled",
    "appointment.cancelled",
    "appointment.transferred",
    "appointment.link_renewed",
    "appointment.contact_changed",  # a corrected address gets the confirmation anew
    "appointment.passed",
    "appointment.outcome_recorded",
)


def handlers(app: web.Application) -> dict[str, Handler]:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the notifier's app holds its own settings

    async def on_appointment_event(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        if getattr(data, "appointment", None) is None:
            return  # a future event type without the snapshot: nothing to plan from it
        await apply_appointment_event(conn, envelope, data, clock=app[CLOCK], settings=settings)

    async def on_erased(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        assert isinstance(data, AppointmentPersonalDataErasedV1)  # noqa: S101 -- the registry's model
        await erase_personal_data(conn, envelope, data, clock=app[CLOCK])

    return {
        **dict.fromkeys(EVENT_TYPES, on_appointment_event),
        "appointment.personal_data_erased": on_erased,
        **waiting_handlers(app),  # the waiting list's mails (R45, issue 11)
    }


def consumers(app: web.Application) -> list[Consumer]:
    return [
        Consumer(
            CONSUMER_NAME,
            pool=app[POOL],
            connection=app[BROKER],
            settings=app[SETTINGS],
            handlers=handlers(app),
            bindings=bindings_of(CONSUMER_NAME),
        )
    ]
