"""Erasure on request (Art. 17 GDPR): a location administrator erases a customer's personal data now,
not at the end of the retention period (R34).

Which data are the person's. An erasure request names one appointment (or one wish). With the appointment
go the customer's waiting-list wishes tied to the same contact: every wish, of any location and any status,
not erased yet, whose e-mail key equals the appointment's. The e-mail key is the key of the
one-appointment rule (R5, `contact.email_key`): the address trimmed and lower-cased, so that `Max@Example.org`
and `max@example.org ` are one person, as they are for booking. Nothing else matches: not the name (many
people share one), not the customer or household number (a household shares its BG-Nummer, and numbers are
typed in by hand), and never an allow-listed address (R6: the service centre books for many callers under
one address, so its appointments have no e-mail key and match nothing).

What an erased wish keeps: place, concern, mode, the wished days and times, the status and its times, so
that the figures (booking's and reporting's waiting-list counts) stay whole. A wish still active ends
(`waiting.withdrawn`, reason `customer`: the customer asked) without a mail, since its address is gone; a
held offer is freed for the next wish. Each erased wish is published as `waiting.personal_data_erased`, on
which the notifier erases the mails and the link it keeps (reporting keeps no personal data of wishes).

Finding the wish. A customer who asks for the erasure of a wish alone (one under another address than
their appointment's, or one without an appointment) names its reference, the "Vorgangsnummer" of every
wish mail. The administrator looks it up in any status, also ended or erased, and sees only where it is
and in which state, none of the customer's data (`find_wish_for_erasure`).

Idempotent: a wish is erased once (`erased_at`); a second request, or one for an appointment erased
before, erases nothing more and publishes nothing. Concurrent requests and the matcher of other replicas
are serialised by the row locks (and the key's advisory lock that joining takes too).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import structlog

from services.booking import db, retention, waiting_list
from services.booking import waiting_db as wdb
from services.booking.domain import local_text
from services.booking.service import Deps
from services.booking.waiting_domain import Wish
from services.booking.waiting_models import StaffWishStateOut
from shared.clock import BERLIN
from shared.errors import ForbiddenError, NotFoundError
from shared.events.catalog import Mode
from shared.events.waiting_list import EndReason, WaitingPersonalDataErasedV1, WaitingWithdrawnV1, WishStatus
from shared.identity import IdentityKind, Role, StaffIdentity
from shared.outbox import add_event, delete_published_about

log = structlog.get_logger(__name__)


async def erase_appointment_on_request(
    conn: asyncpg.Connection, deps: Deps, appointment_id: uuid.UUID, now: datetime
) -> bool:
    """The appointment's personal data and those of the same person's wishes, in the caller's
    transaction; the deletion report counts both. False when the appointment was erased already."""
    erased = await retention.erase_appointment(conn, appointment_id, now, deps.clock)
    if erased is None:
        return False
    wishes = 0
    if erased.email_key is not None:  # None: an allow-listed address (R6), shared by many customers
        wishes = await erase_wishes(conn, deps, await wdb.lock_wishes_of_email(conn, erased.email_key), now)
    counts = {"appointments_erased": 1, "staff_notes_erased": erased.staff_notes, "wishes_erased": wishes}
    await retention.report_on_request(conn, counts, now, deps.clock, deps.settings.retention_days)
    return True


def refuse_api_keys(identity: StaffIdentity) -> None:
    """Erasure on request is a staff member's decision on a customer's request: no API key erases, nor looks
    up what to erase."""
    if identity.kind is IdentityKind.API_KEY:
        raise ForbiddenError("Erasing personal data needs a location administrator, not an API key.")


async def erase_wish_on_request(deps: Deps, identity: StaffIdentity, wish_id: uuid.UUID) -> bool:
    """A customer asks for the erasure of their waiting-list wish alone: a location administrator of the
    wish's location erases it now, whatever its status (an active wish ends). False when erased already."""
    refuse_api_keys(identity)
    now = deps.clock.now()
    async with db.transaction(deps.pool) as conn:
        found = await wdb.find_wish(conn, wish_id, for_update=True)
        if found is None:
            raise NotFoundError("There is no such wish on the waiting list.")
        identity.require(Role.LOCATION_ADMIN, found[0].location_id)
        erased = await erase_wishes(conn, deps, [found[0]], now)
        if erased:
            counts = {"wishes_erased": erased}
            await retention.report_on_request(conn, counts, now, deps.clock, deps.settings.retention_days)
    if erased:
        log.info("wish_erased_on_request", wish_id=str(wish_id))
    return erased > 0


async def find_wish_for_erasure(
    deps: Deps,
    identity: StaffIdentity,
    *,
    wish_id: uuid.UUID | None = None,
    reference: str | None = None,
) -> StaffWishStateOut:
    """A wish by its id or reference, in any status, for a location administrator of its location (who
    may erase it): where it is and in which state, none of the customer's data. API keys are refused, as
    for the erasure; 404 for no such wish, 403 for another location's."""
    refuse_api_keys(identity)
    found = await wdb.find_wish_for_staff(deps.pool, wish_id=wish_id, reference=reference)
    if found is None:
        raise NotFoundError("There is no such wish on the waiting list.")
    wish, erased_at = found
    identity.require(Role.LOCATION_ADMIN, wish.location_id)
    return StaffWishStateOut(
        id=wish.id,
        reference=wish.reference,
        status=wish.status,
        location_id=wish.location_id,
        concern_id=wish.concern_id,
        concern_name=await _concern_name_de(deps, wish),
        mode=Mode(wish.mode),
        registered_at=wish.registered_at.astimezone(BERLIN),
        ended_at=wish.ended_at.astimezone(BERLIN) if wish.ended_at else None,
        end_reason=wish.end_reason,
        erased_at=erased_at.astimezone(BERLIN) if erased_at else None,
    )


async def _concern_name_de(deps: Deps, wish: Wish) -> str:
    """Staff read the catalog's German name; a wish keeps the name in the customer's language."""
    try:
        config = await deps.catalog.get(deps.pool, wish.location_id)
    except NotFoundError:
        return wish.concern_name
    offer = config.concern(wish.concern_id)
    return local_text(offer.name, "de") if offer else wish.concern_name


async def erase_wishes(conn: asyncpg.Connection, deps: Deps, wishes: list[Wish], now: datetime) -> int:
    """Erase these (locked) wishes' personal data; an active one ends first, its offer freed. Returns how
    many were erased now (those erased before are skipped)."""
    erased = await wdb.erase_wishes(conn, [wish.id for wish in wishes], now)
    for wish in wishes:
        if wish.id not in erased:
            continue
        if wish.active:
            offer = await wdb.open_offer(conn, wish.id)
            if offer is not None:
                await wdb.end_offer(conn, offer, "withdrawn", now)
            # The snapshot is the erased wish: no name, no address, so no mail and no copy of them.
            ended = await wdb.set_status(
                conn, wish.id, WishStatus.WITHDRAWN, now, end_reason=EndReason.CUSTOMER
            )
            withdrawn = WaitingWithdrawnV1(wish=waiting_list.snapshot(deps, ended), reason=EndReason.CUSTOMER)
            await add_event(conn, withdrawn, producer=waiting_list.PRODUCER, clock=deps.clock)
            waiting_list.WISHES.labels("withdrawn").inc()
        await add_event(
            conn,
            WaitingPersonalDataErasedV1(wish_id=wish.id, erased_at=now),
            producer=waiting_list.PRODUCER,
            clock=deps.clock,
        )
    waiting_list.WISHES.labels("personal_data_erased").inc(len(erased))
    # The wishes' events still in the outbox (their page links' tokens among them) go with them.
    await delete_published_about(conn, "wish", list(erased))
    return len(erased)
