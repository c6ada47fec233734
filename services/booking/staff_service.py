"""Use cases of the staff work (issue 8), one transaction each: the day view and search (R22, R27,
R28), staff bookings with an interpreter (R26), staff cancellation (R9), outcomes and callback tickets
(R23), call attempts of phone appointments (R49), follow-up bookings (R24) and transfers (R25).

Every use case receives the staff identity the gateway signed; the location of the appointment decides
(R28): staff see and change only their own locations' appointments, the phone number only there (R49).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.booking import db, erasure, link_renewal, staff_db
from services.booking.callbacks import callback_due, is_overdue
from services.booking.contact import email_key, is_allow_listed
from services.booking.domain import (
    AlreadyBookedError,
    Appointment,
    NewAppointment,
    Slots,
    SlotTakenError,
    TooLateError,
    field_error,
    free_points,
    local_text,
    new_reference,
    resolve_slot,
)
from services.booking.models import AppointmentOut, BookingRequest, HoldOut, HoldRequest, RescheduleRequest
from services.booking.service import (
    PRODUCER,
    Deps,
    Result,
    _appointment_of,
    availability,
    book_appointment,
    can_change,
    cancel_appointment,
    manage_url,
    offered_concern,
    place_hold,
    reschedule_appointment,
    snapshot_of,
    token_hash,
)
from services.booking.staff_db import StaffRow
from shared.clock import BERLIN
from shared.errors import ConflictError, ForbiddenError, NotFoundError, StaleError
from shared.events.appointment import (
    AppointmentBookedV1,
    AppointmentCancelledV1,
    AppointmentContactChangedV1,
    AppointmentPassedV1,
    AppointmentStatus,
    CancelledBy,
    Channel,
    SystemReason,
)
from shared.events.catalog import GroupKind, Mode
from shared.events.staff_work import (
    AppointmentOutcomeRecordedV1,
    AppointmentTransferredV1,
    CallbackClosedV1,
    CallbackClosure,
    CallbackCreatedV1,
    CallbackReason,
    CallbackStatus,
    CallbackTicket,
    Outcome,
)
from shared.identity import IdentityKind, Role, StaffIdentity
from shared.outbox import add_event
from shared.reasons import worded

log = structlog.get_logger(__name__)

AM = Role.APPOINTMENT_MANAGER
# R49: after this many unreached call attempts the appointment becomes a callback ticket.
MISSED_AFTER_ATTEMPTS = 2
WITHDRAWN_RESULT = "Zurückgenommen: das Ergebnis des Termins wurde korrigiert."
# The detail type of a callback refused for want of a number: the pages word it for their form.
NO_PHONE = "no_phone"


class TooEarlyError(ConflictError):
    code = "too_early"


class OutcomeRecordedError(ConflictError):
    code = "outcome_recorded"


class NotChangeableError(ConflictError):
    code = "not_changeable"


def today(deps: Deps) -> date:
    return deps.clock.now().astimezone(BERLIN).date()


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(first, datetime.min.time(), BERLIN),
        datetime.combine(last + timedelta(days=1), datetime.min.time(), BERLIN),
    )


def actor_of(identity: StaffIdentity) -> str:
    return f"{identity.kind.value}:{identity.subject}"


def _working_role(identity: StaffIdentity) -> Role:
    """Who works with appointments: an appointment manager (or more); an API key of the service centre
    at its key's locations (R37), its operations checked where it acts (`require_operation`)."""
    return Role.SERVICE_CENTRE if identity.kind is IdentityKind.API_KEY else AM


def works_at(identity: StaffIdentity, location_id: str) -> bool:
    return identity.has(_working_role(identity), location_id)


def require_location(identity: StaffIdentity, location_id: str, role: Role = AM) -> None:
    if role is not AM:
        identity.require(role, location_id)
    elif not works_at(identity, location_id):
        raise ForbiddenError("This needs a role or location you do not have.")


def require_operation(identity: StaffIdentity, operation: str) -> None:
    """An API key's scope (R50), checked here too, behind the gateway's rules; staff accounts have all."""
    if not identity.may(operation):
        raise ForbiddenError(f"This API key may not do this ({operation}).")


def _visible_locations(identity: StaffIdentity) -> list[str] | None:
    found = identity.locations_with(_working_role(identity))
    return None if found is None else sorted(found)


def shows_phone(identity: StaffIdentity, appointment: Appointment) -> bool:
    """R49: the number only for staff of the appointment's location."""
    return works_at(identity, appointment.location_id)


def _url(deps: Deps, appointment: Appointment) -> str:
    return manage_url(deps.settings, appointment.id, None)


async def _load(
    conn: asyncpg.Connection | asyncpg.Pool, appointment_id: uuid.UUID, *, lock: bool
) -> StaffRow:
    row = await staff_db.find(conn, appointment_id, for_update=lock)
    if row is None:
        raise NotFoundError("There is no such appointment.")
    return row


async def _load_for(
    conn: asyncpg.Connection | asyncpg.Pool, identity: StaffIdentity, appointment_id: uuid.UUID, *, lock: bool
) -> StaffRow:
    row = await _load(conn, appointment_id, lock=lock)
    if not works_at(identity, row.appointment.location_id):
        # R28: another location's file; the same answer whether it exists or not would hide more, but
        # the architecture's contract for a location one lacks is 403.
        raise ForbiddenError("This appointment belongs to a location you do not work for.")
    return row


def ticket_of(row: asyncpg.Record) -> CallbackTicket:
    return CallbackTicket(
        id=row["id"],
        appointment_id=row["appointment_id"],
        location_id=row["location_id"],
        group_id=row["group_id"],
        reason=CallbackReason(row["reason"]),
        status=CallbackStatus(row["status"]),
        revision=row["revision"],
        created_at=row["created_at"],
        due_at=row["due_at"],
        claimed_at=row["claimed_at"],
        closed_at=row["closed_at"],
        closed_as=_closed_as(row),
    )


def _closed_as(row: asyncpg.Record) -> str | None:
    """How the ticket ended, as a code for reporting (the result's text stays here, R34)."""
    if row["closed_at"] is None:
        return None
    return CallbackClosure.WITHDRAWN if row["result"] == WITHDRAWN_RESULT else CallbackClosure.DONE


# --- reading (R22, R27, R28) -------------------------------------------------------------------------


async def day_view(
    deps: Deps,
    identity: StaffIdentity,
    location_id: str,
    first: date,
    last: date,
    *,
    include_cancelled: bool = False,
) -> list[StaffRow]:
    require_location(identity, location_id)
    require_operation(identity, "appointments:read")
    await deps.catalog.get(deps.pool, location_id)  # 404 for an unknown location
    since, until = day_bounds(first, last)
    return await staff_db.day_view(deps.pool, location_id, since, until, include_cancelled=include_cancelled)


# A search lists at most this many appointments (the latest starts first).
SEARCH_LIMIT = 50


async def search(deps: Deps, identity: StaffIdentity, text: str) -> tuple[list[StaffRow], bool]:
    """The appointments found, and whether there were more than `SEARCH_LIMIT` (then the caller must
    narrow the search: the list is cut, and the one sought may be among those left out)."""
    require_operation(identity, "appointments:read")
    rows = await staff_db.search(deps.pool, _visible_locations(identity), text.strip(), SEARCH_LIMIT + 1)
    return rows[:SEARCH_LIMIT], len(rows) > SEARCH_LIMIT


async def appointment_detail(
    deps: Deps, identity: StaffIdentity, appointment_id: uuid.UUID
) -> tuple[StaffRow, list[asyncpg.Record], list[asyncpg.Record], bool]:
    """The file, its history and call attempts, and whether the reader sees it as the location it was
    handed to: a transfer without a slot (R25) leaves the file at the old location and a callback ticket
    at the responsible one, whose staff must read it (and the number) to call the customer back."""
    require_operation(identity, "appointments:read")
    row = await _load(deps.pool, appointment_id, lock=False)
    handed_over = False
    if not works_at(identity, row.appointment.location_id):
        handed_to = await staff_db.callback_locations(deps.pool, appointment_id)
        handed_over = any(works_at(identity, location) for location in handed_to)
        if not handed_over:
            raise ForbiddenError("This appointment belongs to a location you do not work for.")
    history = await staff_db.history(deps.pool, appointment_id)
    attempts = await staff_db.call_attempts(deps.pool, [appointment_id])
    return row, history, attempts, handed_over


async def attempts_of(deps: Deps, rows: list[StaffRow]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    found: dict[uuid.UUID, list[asyncpg.Record]] = {}
    phone = [r.appointment.id for r in rows if r.appointment.mode == Mode.PHONE.value]
    if phone:
        for attempt in await staff_db.call_attempts(deps.pool, phone):
            found.setdefault(attempt["appointment_id"], []).append(attempt)
    return found


# --- staff bookings (R26) and cancellation (R9) --------------------------------------------------------


async def staff_availability(
    deps: Deps,
    identity: StaffIdentity,
    location_id: str,
    concern_id: str,
    mode: Mode,
    first: date | None,
    last: date | None,
) -> Slots:
    """The customers' free slots, for staff and the service centre (R37): the same slots, behind the
    staff rules instead of the customers' per-address bot defence, which a service centre's many agents
    behind one address would run into (R39 is for anonymous clients)."""
    require_location(identity, location_id)
    require_operation(identity, "appointments:write")
    return await availability(deps, location_id, concern_id, mode, first, last)


async def staff_hold(
    deps: Deps,
    identity: StaffIdentity,
    location_id: str,
    request: HoldRequest,
    idempotency_key: str | None = None,
) -> HoldOut:
    """A hold of a slot while the agent takes the caller's details (R38), as the customers' hold. With an
    `Idempotency-Key` a retry (after a lost answer) gets the first hold, per staff member or API key."""
    require_location(identity, location_id)
    require_operation(identity, "appointments:write")
    channel = Channel.SERVICE_CENTRE if identity.kind is IdentityKind.API_KEY else Channel.STAFF
    return await place_hold(
        deps,
        location_id,
        request,
        idempotency_key=idempotency_key,
        idempotency_scope=f"{channel.value}\x1f{actor_of(identity)}",
    )


async def staff_book(
    deps: Deps,
    identity: StaffIdentity,
    request: BookingRequest,
    interpreter_language: str | None,
    idempotency_key: str | None = None,
) -> Result:
    """A booking for a caller. With an `Idempotency-Key` a retry (the service centre's system after a
    timeout, a second click) answers with the first result, per staff member or API key."""
    require_location(identity, request.location_id)
    require_operation(identity, "appointments:write")
    channel = Channel.SERVICE_CENTRE if identity.kind is IdentityKind.API_KEY else Channel.STAFF
    try:
        return await book_appointment(
            deps,
            request,
            channel=channel,
            interpreter_language=interpreter_language,
            idempotency_key=idempotency_key,
            idempotency_scope=f"{channel.value}\x1f{actor_of(identity)}",
        )
    except AlreadyBookedError as refused:
        await _name_pending(deps, identity, request, refused)
        raise


async def _name_pending(
    deps: Deps, identity: StaffIdentity, request: BookingRequest, refused: AlreadyBookedError
) -> None:
    """A booking repeated without its Idempotency-Key (the answer was lost) meets the one-appointment rule
    with the appointment it made: the refusal names that appointment (id, reference, start, location) to a
    caller who may read it there, so that the agent tells the caller their appointment instead of "already
    booked". Anyone else learns the rule alone, as before."""
    if not refused.details or not identity.may("appointments:read"):
        return
    which = str(refused.details[0].get("field", "")).removeprefix("customer.")
    customer = request.customer
    keys = {
        "email": email_key(customer.email),
        "customer_number": customer.customer_number,
        "household_number": customer.household_number,
    }
    key = keys.get(which)
    if key is None:
        return
    pending = await staff_db.find_pending(deps.pool, which, key)
    if pending is None or not works_at(identity, pending.location_id):
        return
    refused.details[0].update(
        appointment_id=str(pending.id),
        reference=pending.reference,
        start=pending.start.astimezone(BERLIN).isoformat(),
        location=pending.location_id,
    )


async def staff_cancel(
    deps: Deps,
    identity: StaffIdentity,
    appointment_id: uuid.UUID,
    reason: str,
    *,
    on_customer_request: bool | None = None,
) -> None:
    """Staff and the service centre cancel: for the jobcenter (the mail apologises and gives the reason),
    or on the customer's request (a caller; the mail confirms the customer's own cancellation).

    Not said: the service centre (an API key) cancels for the caller on the line, nearly always at their
    request; its note ("Anruf: Kundin ist krank", maybe health data) must not be mailed to them as the
    jobcenter's reason with an apology (R9). Staff pages always say which; a staff member's API call
    without it cancels for the jobcenter, as before."""
    if on_customer_request is None:
        on_customer_request = identity.kind is IdentityKind.API_KEY
    require_operation(identity, "appointments:write")
    await _load_for(deps.pool, identity, appointment_id, lock=False)
    by = CancelledBy.SERVICE_CENTRE if identity.kind is IdentityKind.API_KEY else CancelledBy.STAFF
    detail = {"reason_given": True, "on_customer_request": on_customer_request}

    async def recorded(conn: asyncpg.Connection, _before: Appointment, cancelled: Appointment) -> None:
        # In the cancellation's transaction: a repeat (a retry after a timeout, also one that raced the
        # first) cancels nothing and records nothing.
        await staff_db.add_history(conn, cancelled, "cancelled", actor_of(identity), deps.clock.now(), detail)

    await cancel_appointment(
        deps,
        appointment_id,
        token=None,
        cancelled_by=by,
        reason=reason,
        for_customer=on_customer_request,
        recorded=recorded,
    )


async def staff_reschedule(
    deps: Deps, identity: StaffIdentity, appointment_id: uuid.UUID, request: RescheduleRequest
) -> AppointmentOut:
    """Staff and the service centre move a caller's appointment to another slot of the same concern at
    the same location, under the customer's rules (R41); the customer gets the mail with the new
    calendar invitation, and the file's history says who moved it from where."""
    require_operation(identity, "appointments:write")
    await _load_for(deps.pool, identity, appointment_id, lock=False)

    async def recorded(conn: asyncpg.Connection, before: Appointment, moved: Appointment) -> None:
        # In the move's transaction, with the appointment as it was locked: a repeat of the same move
        # (a retry after a timeout, also one that raced the first) moves nothing and records nothing.
        detail = {"from_start": before.start.isoformat(), "from_group_id": before.group_id}
        await staff_db.add_history(conn, moved, "rescheduled", actor_of(identity), deps.clock.now(), detail)

    return await reschedule_appointment(deps, appointment_id, None, request, by_staff=True, recorded=recorded)


async def erase_on_request(deps: Deps, identity: StaffIdentity, appointment_id: uuid.UUID) -> bool:
    """A customer asks for the erasure of their data (Art. 17 GDPR) before the retention period ends: a
    location administrator erases the appointment's personal data now, as the retention run would (R34),
    and with them the same person's waiting-list wishes (`erasure.py` says which).
    Not while the appointment is still to come (cancel it first: the customer gets that mail). The file's
    history says who erased it and when. False when its data were erased already."""
    if identity.kind is IdentityKind.API_KEY:
        raise ForbiddenError("Erasing personal data needs a location administrator, not an API key.")
    now = deps.clock.now()
    async with db.transaction(deps.pool) as conn:
        row = await _load_for(conn, identity, appointment_id, lock=True)
        appointment = row.appointment
        identity.require(Role.LOCATION_ADMIN, appointment.location_id)
        if appointment.status is AppointmentStatus.BOOKED and appointment.start > now:
            raise NotChangeableError(
                "The appointment is still to come: cancel it first (the customer gets the cancellation"
                " mail), then erase its data."
            )
        erased = await erasure.erase_appointment_on_request(conn, deps, appointment_id, now)
        if erased:
            await staff_db.add_history(conn, appointment, "personal_data_erased", actor_of(identity), now)
    if erased:
        log.info("appointment_erased_on_request", appointment_id=str(appointment_id))
    return erased


async def staff_renew_link(deps: Deps, identity: StaffIdentity, appointment_id: uuid.UUID) -> None:
    """A caller lost the confirmation mail: the appointment gets a new manage link by mail (links sent
    before stop working), and the file's history says who sent it."""
    require_operation(identity, "appointments:write")
    now = deps.clock.now()
    async with db.transaction(deps.pool) as conn:
        row = await _load_for(conn, identity, appointment_id, lock=True)
        if not can_change(row.appointment, now):
            raise TooLateError("The appointment has started, passed or was cancelled: no link to send.")
        renewed = await link_renewal.renew(conn, deps, appointment_id, now)
        await staff_db.add_history(conn, renewed, "link_renewed", actor_of(identity), now)
    log.info("manage_link_renewed_by_staff", appointment_id=str(appointment_id))


@dataclass(frozen=True)
class ContactChange:
    """The contact data staff correct; None leaves a field as it is. The phone number is removed with
    `phone=None` and `phone_given`. `expected_revision`: the appointment's revision the change was made
    against (a form's), None for no check."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    phone_given: bool = False
    expected_revision: int | None = None


async def change_contact(
    deps: Deps, identity: StaffIdentity, appointment_id: uuid.UUID, change: ContactChange
) -> StaffRow:
    """Staff and the service centre correct the name, e-mail address or phone number of a booked
    appointment (a typo in the address, a number for a callback, R37); the address only while the
    appointment is still to come, name and phone number also once it has begun. A new address is
    one customer's key of the one-appointment rule (R5; the database decides, I2) and gets a new manage
    token (R41): the link sent to the old address, maybe a stranger's, stops opening the appointment,
    and the confirmation with the new link goes to the new one (`appointment.contact_changed`, I3). The
    file's history says who changed which fields, never the data."""
    require_operation(identity, "appointments:write")
    now = deps.clock.now()
    actor = actor_of(identity)
    async with db.transaction(deps.pool) as conn:
        row = await _load_for(conn, identity, appointment_id, lock=True)
        current = row.appointment
        if current.status is AppointmentStatus.CANCELLED:
            raise NotChangeableError("The appointment was cancelled: its contact data stay as they were.")
        if not current.email:
            # Erased on request or by the retention run (R34): nothing comes back.
            raise NotChangeableError("The customer's data were erased: they cannot be entered again here.")
        if change.expected_revision is not None and change.expected_revision != current.revision:
            # A form loaded before a colleague's correction would undo it unseen, and a stale address
            # would get the new manage link (R41). Checked under the row's lock.
            raise StaleError(
                f"The appointment changed since revision {change.expected_revision} (it is at"
                f" {current.revision} now): read it again and check the contact data before changing them."
            )
        if change.email and change.email != current.email and not can_change(current, now):
            # A new address would get the confirmation of an appointment that has begun. Name and phone
            # number stay correctable: at the counter a customer gives the number for a callback (R23).
            raise TooLateError(
                "The appointment has started or passed: its e-mail address stays as it was. The name and "
                "the phone number can still be corrected."
            )
        first_name = change.first_name or current.first_name
        last_name = change.last_name or current.last_name
        email = change.email or current.email
        phone = change.phone if change.phone_given else current.phone
        if current.mode == Mode.PHONE.value and not phone:
            # R4: staff call the customer at the booked time.
            raise field_error("phone", "a phone appointment needs a phone number")
        changed = [
            name
            for name, old, new in (
                ("first_name", current.first_name, first_name),
                ("last_name", current.last_name, last_name),
                ("email", current.email, email),
                ("phone", current.phone, phone),
            )
            if old != new
        ]
        if not changed:
            return row
        email_changed = "email" in changed
        _config, allow_list = await deps.catalog.get_with_allow_list(conn, current.location_id)
        token = secrets.token_urlsafe(32) if email_changed else None
        try:
            updated = await staff_db.change_contact(
                conn,
                appointment_id,
                first_name=first_name,
                last_name=last_name,
                email=email,
                phone=phone,
                # R6: an internal address is exempt from the e-mail rule, as at booking.
                email_key=None if is_allow_listed(email, allow_list) else email_key(email),
                token_hash=token_hash(token) if token else None,
                now=now,
            )
        except AlreadyBookedError as exc:
            raise AlreadyBookedError(
                exc.message, details=[{"field": "email", "message": "has a pending appointment"}]
            ) from None
        await add_event(
            conn,
            AppointmentContactChangedV1(
                appointment=snapshot_of(
                    updated.appointment, manage_url(deps.settings, appointment_id, token)
                ),
                email_changed=email_changed,
            ),
            producer=PRODUCER,
            clock=deps.clock,
        )
        await staff_db.add_history(
            conn, updated.appointment, "contact_changed", actor, now, {"fields": changed}
        )
    log.info(
        "appointment_contact_changed",
        appointment_id=str(appointment_id),
        fields=changed,
        channel=identity.kind.value,
    )
    return updated


# --- outcomes and callback tickets (R23) ---------------------------------------------------------------


async def _open_callback(
    conn: asyncpg.Connection,
    deps: Deps,
    appointment: Appointment,
    *,
    group_id: str,
    location_id: str,
    reason: CallbackReason,
    note: str,
    actor: str,
) -> tuple[CallbackTicket, bool]:
    now = deps.clock.now()
    row, created = await staff_db.insert_callback(
        conn,
        appointment_id=appointment.id,
        location_id=location_id,
        group_id=group_id,
        reason=reason.value,
        note=note,
        actor=actor,
        now=now,
        due_at=callback_due(now),
    )
    ticket = ticket_of(row)
    if created:
        await add_event(conn, CallbackCreatedV1(callback=ticket), producer=PRODUCER, clock=deps.clock)
    return ticket, created


async def _outcome_callback(
    conn: asyncpg.Connection, deps: Deps, appointment: Appointment, team: str | None, note: str, actor: str
) -> CallbackTicket:
    """The outcome's ticket for the responsible team. A correction that names another team hands a ticket
    not yet closed over to it; one back to "callback" opens a withdrawn ticket again, due anew. Either is
    `callback.created` again: the same ticket, a higher revision (reporting keeps the newest)."""
    wanted = team or appointment.group_id
    ticket, created = await _open_callback(
        conn,
        deps,
        appointment,
        group_id=wanted,
        location_id=appointment.location_id,
        reason=CallbackReason.OUTCOME,
        note=note,
        actor=actor,
    )
    if created:
        return ticket
    if team is None:
        wanted = ticket.group_id  # a correction that names no team leaves the ticket with its team
    if ticket.status == CallbackStatus.CLOSED:
        due = callback_due(deps.clock.now())
        row = await staff_db.reopen_callback(conn, ticket.id, wanted, WITHDRAWN_RESULT, due)
    elif ticket.group_id != wanted:
        row = await staff_db.reassign_callback(conn, ticket.id, wanted)
    else:
        return ticket
    if row is None:  # closed meanwhile, or done: nothing to hand over
        return ticket
    changed = ticket_of(row)
    await add_event(conn, CallbackCreatedV1(callback=changed), producer=PRODUCER, clock=deps.clock)
    return changed


async def _withdraw_outcome_callback(
    conn: asyncpg.Connection, deps: Deps, appointment_id: uuid.UUID, actor: str, now: datetime
) -> None:
    """An outcome corrected away from "callback": its ticket, still open, is closed as withdrawn, so that
    the team's queue does not show it as overdue."""
    row = await staff_db.open_callback_of(conn, appointment_id, CallbackReason.OUTCOME.value)
    if row is None:
        return
    closed = await staff_db.close_callback(conn, row["id"], actor, WITHDRAWN_RESULT, now)
    await add_event(conn, CallbackClosedV1(callback=ticket_of(closed)), producer=PRODUCER, clock=deps.clock)


async def record_outcome(
    deps: Deps,
    identity: StaffIdentity,
    appointment_id: uuid.UUID,
    outcome: Outcome,
    *,
    note: str = "",
    correction: bool = False,
    team: str | None = None,
) -> tuple[StaffRow, CallbackTicket | None]:
    """Record once how the appointment ended (R23); a second time only as an explicit correction. A
    `callback` opens a ticket for the responsible team (the appointment's group unless `team` names
    another group of the location), due in 48 hours counted on Bremen working days."""
    now = deps.clock.now()
    actor = actor_of(identity)
    async with db.transaction(deps.pool) as conn:
        row = await _load_for(conn, identity, appointment_id, lock=True)
        appointment = row.appointment
        if appointment.status == AppointmentStatus.CANCELLED:
            raise NotChangeableError("The appointment was cancelled; it has no outcome.")
        if appointment.start.astimezone(BERLIN).date() > now.astimezone(BERLIN).date():
            raise TooEarlyError("An outcome can be recorded from the appointment's day on.")
        if row.outcome is not None and not correction:
            raise OutcomeRecordedError(
                "An outcome is recorded already; send correction: true with a reason to change it.",
                details=[{"field": "outcome", "message": f"recorded: {row.outcome}"}],
            )
        if outcome is Outcome.CALLBACK and row.outcome != Outcome.CALLBACK.value and not appointment.phone:
            # A callback is a binding promise (R23): without a number nobody can keep it.
            raise field_error(
                "outcome",
                "the customer has no phone number for a callback; book a follow-up or record another outcome",
                NO_PHONE,
            )
        if team is not None and team != appointment.group_id:
            config = await deps.catalog.get(conn, appointment.location_id)
            if team not in config.groups:
                raise field_error("team", "is not a group of this location")
        updated = await staff_db.set_outcome(conn, appointment_id, outcome.value, note, actor, now)
        ticket: CallbackTicket | None = None
        if outcome is Outcome.CALLBACK:
            ticket = await _outcome_callback(conn, deps, updated.appointment, team, note, actor)
        elif row.outcome == Outcome.CALLBACK.value:
            await _withdraw_outcome_callback(conn, deps, appointment_id, actor, now)
        await staff_db.add_history(
            conn,
            updated.appointment,
            "outcome_corrected" if row.outcome is not None else "outcome",
            actor,
            now,
            {"outcome": outcome.value, "previous_outcome": row.outcome},
        )
        await add_event(
            conn,
            AppointmentOutcomeRecordedV1(
                appointment=snapshot_of(updated.appointment, _url(deps, appointment)),
                outcome=outcome,
                note=note,
                correction=row.outcome is not None,
                previous_outcome=Outcome(row.outcome) if row.outcome else None,
                callback_id=ticket.id if ticket else None,
            ),
            producer=PRODUCER,
            clock=deps.clock,
        )
    log.info("outcome_recorded", appointment_id=str(appointment_id), outcome=outcome.value)
    return updated, ticket


async def list_callbacks(
    deps: Deps, identity: StaffIdentity, location: str | None, statuses: list[str], group_id: str | None
) -> list[asyncpg.Record]:
    if location is not None:
        require_location(identity, location)
        locations: list[str] | None = [location]
    else:
        locations = _visible_locations(identity)
    return await staff_db.list_callbacks(deps.pool, locations, statuses, group_id)


async def _change_callback(
    deps: Deps, identity: StaffIdentity, callback_id: uuid.UUID, *, result: str | None
) -> CallbackTicket:
    now = deps.clock.now()
    actor = actor_of(identity)
    async with db.transaction(deps.pool) as conn:
        row = await staff_db.find_callback(conn, callback_id, for_update=True)
        if row is None:
            raise NotFoundError("There is no such callback ticket.")
        require_location(identity, row["location_id"])
        if row["status"] == CallbackStatus.CLOSED:
            raise NotChangeableError("The callback ticket is closed already.")
        if result is None:
            if row["status"] == CallbackStatus.CLAIMED and row["claimed_by"] != actor:
                raise NotChangeableError("A colleague has claimed this callback already.")
            changed = await staff_db.claim_callback(conn, callback_id, actor, now)
            return ticket_of(changed)
        changed = await staff_db.close_callback(conn, callback_id, actor, result, now)
        ticket = ticket_of(changed)
        await add_event(conn, CallbackClosedV1(callback=ticket), producer=PRODUCER, clock=deps.clock)
    log.info("callback_closed", callback_id=str(callback_id), in_time=not is_overdue(ticket.due_at, now))
    return ticket


async def claim_callback(deps: Deps, identity: StaffIdentity, callback_id: uuid.UUID) -> CallbackTicket:
    return await _change_callback(deps, identity, callback_id, result=None)


async def close_callback(
    deps: Deps, identity: StaffIdentity, callback_id: uuid.UUID, result: str
) -> CallbackTicket:
    return await _change_callback(deps, identity, callback_id, result=result)


# --- phone appointments (R49) --------------------------------------------------------------------------


async def record_call_attempt(
    deps: Deps,
    identity: StaffIdentity,
    appointment_id: uuid.UUID,
    *,
    reached: bool,
    note: str = "",
    missed: bool = False,
) -> tuple[list[asyncpg.Record], CallbackTicket | None]:
    """A call attempt; after the second unreached attempt (or when staff say the call is missed) the
    appointment becomes a callback ticket of its team (once)."""
    now = deps.clock.now()
    actor = actor_of(identity)
    async with db.transaction(deps.pool) as conn:
        row = await _load_for(conn, identity, appointment_id, lock=True)
        appointment = row.appointment
        if appointment.mode != Mode.PHONE.value:
            raise NotChangeableError("This is not a phone appointment.")
        if appointment.status == AppointmentStatus.CANCELLED:
            raise NotChangeableError("The appointment was cancelled.")
        if appointment.start.astimezone(BERLIN).date() > now.astimezone(BERLIN).date():
            raise TooEarlyError("Calls are recorded from the appointment's day on.")
        attempts = await staff_db.add_call_attempt(conn, appointment_id, reached, note, actor, now)
        unreached = sum(1 for a in attempts if not a["reached"])
        ticket = None
        if not reached and (missed or unreached >= MISSED_AFTER_ATTEMPTS):
            ticket, _ = await _open_callback(
                conn,
                deps,
                appointment,
                group_id=appointment.group_id,
                location_id=appointment.location_id,
                reason=CallbackReason.MISSED_CALL,
                note=note,
                actor=actor,
            )
    return attempts, ticket


# --- follow-up booking (R24) ---------------------------------------------------------------------------


async def follow_up(
    deps: Deps,
    identity: StaffIdentity,
    appointment_id: uuid.UUID,
    *,
    concern_id: str,
    start: datetime,
    mode: Mode,
    interpreter_language: str | None = None,
) -> tuple[Appointment, str]:
    """From an entrance-zone appointment, book the next one in the responsible team in one step, with
    the customer booking's rules (slot, capacity, one pending appointment): the finished appointment
    is passed in the same transaction, so the follow-up replaces it."""
    now = deps.clock.now()
    actor = actor_of(identity)
    first = await _load_for(deps.pool, identity, appointment_id, lock=False)
    source = first.appointment
    config, allow_list = await deps.catalog.get_with_allow_list(deps.pool, source.location_id)
    group = config.groups.get(source.group_id)
    if group is None or group.kind not in (GroupKind.ENTRANCE_ZONE, GroupKind.JBA_ENTRANCE_ZONE):
        raise NotChangeableError("A follow-up is booked from an appointment in the entrance zone.")
    if source.status == AppointmentStatus.CANCELLED:
        raise NotChangeableError("The appointment was cancelled.")
    if source.start.astimezone(BERLIN).date() > now.astimezone(BERLIN).date():
        raise TooEarlyError("A follow-up is booked from the appointment's day on.")
    concern = offered_concern(config, concern_id, mode, where="concern_id")
    if mode is Mode.PHONE and not source.phone:
        raise field_error("mode", "the customer has no phone number for a phone appointment")
    slot = resolve_slot(config, concern, start, now)
    allow_listed = is_allow_listed(source.email, allow_list)
    token = secrets.token_urlsafe(32)
    language = source.language
    new = NewAppointment(
        id=uuid.uuid4(),
        reference=new_reference(secrets.choice),
        location_id=config.location_id,
        group_id=slot.group_id,
        concern_id=concern.concern_id,
        mode=mode.value,
        channel=Channel.STAFF.value,
        language=language,
        start=slot.start,
        end=slot.end,
        evening=slot.evening,
        evening_declared=slot.evening,  # staff book an evening slot knowingly
        interpreter_language=interpreter_language or source.interpreter_language,
        first_name=source.first_name,
        last_name=source.last_name,
        email=source.email,
        phone=source.phone,
        customer_number=source.customer_number,
        household_number=source.household_number,
        email_key=None if allow_listed else email_key(source.email),
        customer_number_key=source.customer_number,
        household_number_key=source.household_number,
        manage_token_hash=token_hash(token),
        location_name=config.snapshot.name,
        location_address=config.address,
        concern_name=local_text(concern.name, language),
        documents=[local_text(d, language) for d in concern.documents],
        sensitive=concern.sensitive,
        emergency=concern.emergency,
        booked_at=now,
    )
    url = manage_url(deps.settings, new.id, token)
    for _attempt in range(3):
        try:
            async with db.transaction(deps.pool) as conn:
                row = await _load_for(conn, identity, appointment_id, lock=True)
                current = row.appointment
                if current.status == AppointmentStatus.CANCELLED:
                    raise NotChangeableError("The appointment was cancelled.")
                if current.status == AppointmentStatus.BOOKED:
                    passed = await staff_db.mark_passed(conn, current.id, now)
                    await add_event(
                        conn,
                        AppointmentPassedV1(appointment=snapshot_of(passed, _url(deps, passed))),
                        producer=PRODUCER,
                        clock=deps.clock,
                    )
                if row.outcome is None:
                    # The follow-up is how it ended (directive 3.4), not "passed without an outcome";
                    # one staff recorded before stays.
                    await _record_follow_up(conn, deps, current.id, actor, now)
                busy = await db.fetch_busy(conn, new.location_id, slot.group_id, slot.start, slot.end, now)
                for point in free_points(slot, busy):
                    if await db.insert_appointment(conn, new, point, now):
                        break
                else:
                    raise SlotTakenError("This slot has just been taken. Please choose another one.")
                booked = _appointment_of(new, point)
                await add_event(
                    conn,
                    AppointmentBookedV1(appointment=snapshot_of(booked, url)),
                    producer=PRODUCER,
                    clock=deps.clock,
                )
                await staff_db.add_history(
                    conn, booked, "follow_up_of", actor, now, {"previous_appointment": str(current.id)}
                )
                await staff_db.add_history(
                    conn, current, "follow_up_booked", actor, now, {"follow_up": str(booked.id)}
                )
        except db.ReferenceTakenError:
            new = replace(new, reference=new_reference(secrets.choice))
        except db.RetryableError:
            continue
        else:
            return booked, url
    raise SlotTakenError("This slot is in high demand right now. Please try again.")


async def _record_follow_up(
    conn: asyncpg.Connection, deps: Deps, appointment_id: uuid.UUID, actor: str, now: datetime
) -> None:
    updated = await staff_db.set_outcome(conn, appointment_id, Outcome.FOLLOW_UP.value, "", actor, now)
    await add_event(
        conn,
        AppointmentOutcomeRecordedV1(
            appointment=snapshot_of(updated.appointment, _url(deps, updated.appointment)),
            outcome=Outcome.FOLLOW_UP,
        ),
        producer=PRODUCER,
        clock=deps.clock,
    )


# --- transfer (R25) ------------------------------------------------------------------------------------


async def transfer(
    deps: Deps,
    identity: StaffIdentity,
    appointment_id: uuid.UUID,
    *,
    location_id: str,
    concern_id: str,
    start: datetime | None,
    mode: Mode | None,
) -> tuple[Appointment, CallbackTicket | None]:
    """The responsible location takes the appointment over (R25). With `start`: the same appointment
    moves to that free slot there (its history keeps where it was; the customer gets the `transferred`
    mail with the new calendar invitation). Without: the responsible team gets a callback ticket due in
    48 hours, and the appointment here is cancelled with that reason (the customer gets the mail)."""
    now = deps.clock.now()
    actor = actor_of(identity)
    first = await _load_for(deps.pool, identity, appointment_id, lock=False)
    source = first.appointment
    if source.status != AppointmentStatus.BOOKED:
        raise NotChangeableError("Only a booked appointment can be taken over.")
    if location_id == source.location_id:
        raise field_error("location_id", "is the appointment's own location")
    config = await deps.catalog.get(deps.pool, location_id)
    wanted_mode = mode or Mode(source.mode)
    concern = offered_concern(config, concern_id, wanted_mode, where="concern_id")
    if start is not None and wanted_mode is Mode.PHONE and not source.phone:
        raise field_error("mode", "the customer has no phone number for a phone appointment")
    if start is None and not source.phone:
        # Without a slot the appointment is cancelled and the customer told "we call you back" (R25):
        # a promise nobody could keep without a number.
        raise field_error(
            "start",
            "the customer has no phone number for a callback; choose a slot at the responsible location",
            NO_PHONE,
        )
    if start is None:
        async with db.transaction(deps.pool) as conn:
            row = await _load_for(conn, identity, appointment_id, lock=True)
            if row.appointment.status != AppointmentStatus.BOOKED:
                raise NotChangeableError("Only a booked appointment can be taken over.")
            ticket, _ = await _open_callback(
                conn,
                deps,
                row.appointment,
                group_id=concern.group_id,
                location_id=location_id,
                reason=CallbackReason.TRANSFER,
                note="",
                actor=actor,
            )
            reason = worded("cancellation", SystemReason.HANDED_OVER, "de", location=config.snapshot.name)
            cancelled = await db.mark_cancelled(conn, appointment_id, now, CancelledBy.STAFF.value, reason)
            await add_event(
                conn,
                AppointmentCancelledV1(
                    appointment=snapshot_of(cancelled, _url(deps, cancelled)),
                    cancelled_by=CancelledBy.STAFF,
                    reason=reason,
                    reason_code=SystemReason.HANDED_OVER,
                    handed_to=config.snapshot.name,
                ),
                producer=PRODUCER,
                clock=deps.clock,
            )
            await staff_db.add_history(
                conn, cancelled, "transferred_to_callback", actor, now, {"to_location_id": location_id}
            )
        return cancelled, ticket
    slot = resolve_slot(config, concern, start, now)
    language = source.language
    values: dict[str, Any] = {
        "location_id": location_id,
        "group_id": slot.group_id,
        "concern_id": concern.concern_id,
        "mode": wanted_mode.value,
        "start": slot.start,
        "end": slot.end,
        "evening": slot.evening,
        "location_name": config.snapshot.name,
        "location_address": config.address,
        "concern_name": local_text(concern.name, language),
        "documents": [local_text(d, language) for d in concern.documents],
        "sensitive": concern.sensitive,
        "emergency": concern.emergency,
    }
    for _attempt in range(3):
        try:
            async with db.transaction(deps.pool) as conn:
                row = await _load_for(conn, identity, appointment_id, lock=True)
                current = row.appointment
                if current.status != AppointmentStatus.BOOKED:
                    raise NotChangeableError("Only a booked appointment can be taken over.")
                busy = await db.fetch_busy(
                    conn, location_id, slot.group_id, slot.start, slot.end, now, except_appointment=current.id
                )
                moved = None
                for point in free_points(slot, busy):
                    moved = await staff_db.transfer_appointment(conn, current.id, point, values, now)
                    if moved is not None:
                        break
                if moved is None:
                    raise SlotTakenError("This slot has just been taken. Please choose another one.")
                await staff_db.add_history(
                    conn,
                    current,
                    "transferred_from",
                    actor,
                    now,
                    {"to_location_id": location_id},
                )
                await staff_db.add_history(
                    conn, moved, "transferred_to", actor, now, {"from_location_id": current.location_id}
                )
                await add_event(
                    conn,
                    AppointmentTransferredV1(
                        appointment=snapshot_of(moved, _url(deps, moved)),
                        from_location_id=current.location_id,
                        from_location_name=current.location_name,
                        from_group_id=current.group_id,
                        from_concern_id=current.concern_id,
                        previous_start=current.start,
                        previous_end=current.end,
                    ),
                    producer=PRODUCER,
                    clock=deps.clock,
                )
        except db.RetryableError:
            continue
        else:
            log.info("appointment_transferred", appointment_id=str(appointment_id), to=location_id)
            return moved, None
    raise SlotTakenError("This slot is in high demand right now. Please try again.")


__all__ = ["TooLateError"]
