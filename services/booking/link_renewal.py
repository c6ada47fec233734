"""The manage link again (R41): a customer who lost or deleted the confirmation mail gives the address
they booked with and gets, for each upcoming appointment of that address, a mail with a new manage link.

The booking service keeps only a hash of a manage token, so the old link cannot be sent again: the
appointment gets a new token, and links sent before stop working (a forwarded or leaked mail loses its
power too). The answer is the same whether the address has appointments or not, so the form tells nobody
who booked; a link is renewed at most every `link_renewal_minutes`, so the form cannot flood a mailbox.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

import asyncpg
import structlog

from services.booking import db
from services.booking.domain import Appointment
from services.booking.service import PRODUCER, Deps, manage_url, snapshot_of, token_hash
from shared.events.appointment import AppointmentLinkRenewedV1
from shared.outbox import add_event

log = structlog.get_logger(__name__)

# An address on the internal allow-list (R6) may hold many appointments; one request renews the nearest.
MAX_RENEWED = 20


async def renew_links(deps: Deps, address: str) -> int:
    """Renew the links of the address's upcoming appointments; how many were renewed (never told to the
    asker). The mails follow through `appointment.link_renewed` (I3)."""
    now = deps.clock.now()
    renewed_before = now - timedelta(minutes=deps.settings.link_renewal_minutes)
    async with db.transaction(deps.pool) as conn:
        ids = await db.renewable_links(conn, address, now, renewed_before, MAX_RENEWED)
        for appointment_id in ids:
            await renew(conn, deps, appointment_id, now)
    log.info("manage_links_renewed", appointments=len(ids))
    return len(ids)


async def renew(
    conn: asyncpg.Connection, deps: Deps, appointment_id: uuid.UUID, now: datetime
) -> Appointment:
    """A new token for one appointment (locked by the caller) and its event with the new link. Staff
    call this directly for a caller on the phone, without the limit of the public form."""
    token = secrets.token_urlsafe(32)
    renewed = await db.renew_link(conn, appointment_id, token_hash(token), now)
    link = manage_url(deps.settings, renewed.id, token)
    await add_event(
        conn,
        AppointmentLinkRenewedV1(appointment=snapshot_of(renewed, link)),
        producer=PRODUCER,
        clock=deps.clock,
    )
    return renewed
