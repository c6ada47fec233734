"""The booking service's use cases, one transaction each: availability, holds, booking, the customer's
manage link (view, cancel, reschedule), and the passing of started appointments.

`book_appointment` is the one booking path of every channel: the public API calls it with
`channel=online`; the staff and service-centre entry points (issues 7/8) call it with their channel and
an `interpreter_language`.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter

from services.booking import db
from services.booking.cache import AvailabilityCache
from services.booking.config import Settings
from services.booking.contact import email_key, is_allow_listed
from services.booking.domain import (
    Appointment,
    HoldLimitError,
    LocationConfig,
    NewAppointment,
    Slot,
    Slots,
    SlotTakenError,
    TooLateError,
    available_slots,
    check_day,
    check_range,
    field_error,
    free_points,
    hold_expiry,
    local_text,
    new_reference,
    resolve_slot,
)
from services.booking.idempotency import IdempotencyKey, reused_with_other_request
from services.booking.models import (
    AppointmentOut,
    AppointmentView,
    BookingRequest,
    ConcernRef,
    CustomerOut,
    HoldOut,
    HoldRequest,
    LocationRef,
    RescheduleRequest,
)
from shared import invitation
from shared.background import with_job_lock
from shared.clock import BERLIN, Clock
from shared.errors import ForbiddenError, NotFoundError, OTVError
from shared.events.appointment import (
    AppointmentBookedV1,
    AppointmentCancelledV1,
    AppointmentPassedV1,
    AppointmentRescheduledV1,
    AppointmentSnapshot,
    AppointmentStatus,
    CancelledBy,
    Channel,
    CustomerData,
)
from shared.events.catalog import ConcernOffer, LocationConfiguredV1, Mode
from shared.languages import nearest_built_in
from shared.metrics import count_from_zero
from shared.outbox import add_event

log = structlog.get_logger(__name__)

PRODUCER = "booking"
# A use case that hit a deadlock or a colliding reference is run again this many times.
ATTEMPTS = 3

BOOKINGS = Counter("otv_booking_requests_total", "Booking attempts by outcome", ["channel", "outcome"])
# The outcomes the alerts count at 0 from the start: after a release in which no booking succeeds,
# OTVBookingsFailing must find a booked rate of 0, not no series at all (shared/metrics.py says why).
count_from_zero(BOOKINGS, Channel, ["booked", SlotTakenError.code])
PASSED = Counter("otv_booking_passed_total", "Appointments marked as passed")


class CatalogCache:
    """The parsed catalog snapshot per location, refreshed whenever the stored revision moves on. Each
    lookup is one small query that ships the snapshot only when it has changed."""

    def __init__(self) -> None:
        self._configs: dict[str, LocationConfig] = {}

    async def get(self, conn: asyncpg.Connection | asyncpg.Pool, location_id: str) -> LocationConfig:
        config, _allow_list = await self.get_with_allow_list(conn, location_id)
        return config

    async def get_with_allow_list(
        self, conn: asyncpg.Connection | asyncpg.Pool, location_id: str
    ) -> tuple[LocationConfig, list[str]]:
        """The configuration and the internal allow-list (R6), in one read (a booking needs both)."""
        found = await db.fetch_location(conn, location_id, self._known_revision(location_id))
        return self._config(location_id, found), found[2] if found else []

    async def get_with_occupancy(
        self, conn: asyncpg.Connection | asyncpg.Pool, location_id: str
    ) -> tuple[LocationConfig, int]:
        """The configuration and the location's occupancy counter, in one read (the availability cache)."""
        found = await db.fetch_location_state(conn, location_id, self._known_revision(location_id))
        return self._config(location_id, found), found[2] if found else 0

    def _known_revision(self, location_id: str) -> int | None:
        cached = self._configs.get(location_id)
        return cached.revision if cached else None

    def _config(
        self, location_id: str, found: tuple[int, dict[str, Any] | None, Any] | None
    ) -> LocationConfig:
        """The kept configuration while the stored revision is the same, else the snapshot read with it."""
        if found is None:
            raise NotFoundError("There is no such location.")
        cached = self._configs.get(location_id)
        raw = found[1]
        if raw is None and cached is not None:
            return cached
        config = LocationConfig.of(LocationConfiguredV1.model_validate(raw))
        self._configs[location_id] = config
        return config


@dataclass(frozen=True)
class Deps:
    pool: asyncpg.Pool
    clock: Clock
    settings: Settings
    catalog: CatalogCache = field(default_factory=CatalogCache)
    availability_cache: AvailabilityCache = field(default_factory=AvailabilityCache)


@dataclass(frozen=True)
class Result:
    """An HTTP-shaped answer of a use case whose answer must be repeatable byte for byte (idempotency)."""

    status: int
    body: bytes


# --- helpers ------------------------------------------------------------------------------------------------


def offered_concern(config: LocationConfig, concern_id: str, mode: Mode, *, where: str) -> ConcernOffer:
    concern = config.concern(concern_id)
    if concern is None:
        raise field_error(where, "this location does not offer this concern")
    if mode not in concern.modes:
        raise field_error("mode", f"this concern is offered as {', '.join(m.value for m in concern.modes)}")
    return concern


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def manage_url(settings: Settings, appointment_id: uuid.UUID, token: str | None) -> str:
    """The customer's manage link (R41); without the token (a change by staff or the system) the bare
    page, since only a hash of the token is kept."""
    page = f"{settings.public_base_url.rstrip('/')}/manage/{appointment_id}"
    return f"{page}?token={token}" if token else page


# What a staff entry point records of a change (the file's history), in the change's own transaction:
# called with the appointment before and after, only when the change was made (a repeated cancellation
# or move, also one that raced the first, records nothing).
Recorded = Callable[[asyncpg.Connection, Appointment, Appointment], Awaitable[None]]


def _berlin(when: datetime) -> datetime:
    return when.astimezone(BERLIN)


def appointment_out(appointment: Appointment, url: str) -> AppointmentOut:
    return AppointmentOut(
        id=appointment.id,
        reference=appointment.reference,
        status=appointment.status,
        start=_berlin(appointment.start),
        end=_berlin(appointment.end),
        mode=Mode(appointment.mode),
        location=LocationRef(
            id=appointment.location_id, name=appointment.location_name, address=appointment.location_address
        ),
        concern=ConcernRef(id=appointment.concern_id, name=appointment.concern_name),
        documents=appointment.documents,
        manage_url=url,
        evening_reserved=appointment.evening,
        language=appointment.language,
    )


def snapshot_of(appointment: Appointment, url: str) -> AppointmentSnapshot:
    return AppointmentSnapshot(
        id=appointment.id,
        reference=appointment.reference,
        revision=appointment.revision,
        status=appointment.status,
        location_id=appointment.location_id,
        location_name=appointment.location_name,
        location_address=appointment.location_address,
        group_id=appointment.group_id,
        service_point=appointment.service_point,
        concern_id=appointment.concern_id,
        concern_name=appointment.concern_name,
        sensitive=appointment.sensitive,
        emergency=appointment.emergency,
        start=appointment.start,
        end=appointment.end,
        mode=Mode(appointment.mode),
        channel=Channel(appointment.channel),
        language=nearest_built_in(appointment.language),
        language_tag=appointment.language,
        evening=appointment.evening,
        documents=appointment.documents,
        interpreter_language=appointment.interpreter_language,
        customer=CustomerData(
            first_name=appointment.first_name,
            last_name=appointment.last_name,
            email=appointment.email,
            phone=appointment.phone,
            customer_number=appointment.customer_number,
            household_number=appointment.household_number,
        ),
        manage_url=url,
        booked_at=appointment.booked_at,
        client_network=appointment.client_network,
    )


def _appointment_of(new: NewAppointment, point: int) -> Appointment:
    return Appointment(
        id=new.id,
        reference=new.reference,
        revision=1,
        status=AppointmentStatus.BOOKED,
        location_id=new.location_id,
        group_id=new.group_id,
        service_point=point,
        concern_id=new.concern_id,
        mode=new.mode,
        channel=new.channel,
        language=new.language,
        start=new.start,
        end=new.end,
        evening=new.evening,
        evening_declared=new.evening_declared,
        interpreter_language=new.interpreter_language,
        first_name=new.first_name,
        last_name=new.last_name,
        email=new.email,
        phone=new.phone,
        customer_number=new.customer_number,
        household_number=new.household_number,
        location_name=new.location_name,
        location_address=new.location_address,
        concern_name=new.concern_name,
        documents=new.documents,
        sensitive=new.sensitive,
        emergency=new.emergency,
        booked_at=new.booked_at,
        client_network=new.client_network,
    )


def _require_evening_declaration(slot: Slot, declared: bool) -> None:
    # R12: evening slots are kept for people in work or in a measure; the customer declares it.
    if slot.evening and not declared:
        raise field_error(
            "evening_declaration",
            "evening appointments are reserved for people in work or in a measure; confirm with true",
        )


# --- availability -------------------------------------------------------------------------------------------


async def availability(
    deps: Deps, location_id: str, concern_id: str, mode: Mode, first: date | None, last: date | None
) -> Slots:
    now = deps.clock.now()
    today = now.astimezone(BERLIN).date()
    first = first or today
    check_day("from", first)
    last = last or first + timedelta(days=13)
    check_range(first, last)
    cache = deps.availability_cache
    if not cache.enabled:
        config = await deps.catalog.get(deps.pool, location_id)
        return await _compute_availability(deps, config, concern_id, mode, first, last, now)
    # The state is read before the occupancy, so a kept answer is never older than the state it is
    # kept under; a change committed meanwhile moves the counter on and the next read recomputes.
    config, occupancy = await cache.state(
        location_id, lambda: deps.catalog.get_with_occupancy(deps.pool, location_id)
    )
    offered_concern(config, concern_id, mode, where="concern")
    return await cache.slots(
        (location_id, concern_id, mode.value, first, last),
        (config.revision, occupancy),
        now,
        lambda: _compute_availability(deps, config, concern_id, mode, first, last, now),
    )


async def _compute_availability(
    deps: Deps, config: LocationConfig, concern_id: str, mode: Mode, first: date, last: date, now: datetime
) -> Slots:
    concern = offered_concern(config, concern_id, mode, where="concern")
    since = datetime.combine(first, datetime.min.time(), BERLIN)
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), BERLIN)
    busy = await db.fetch_busy(deps.pool, config.location_id, concern.group_id, since, until, now)
    return available_slots(config, concern, first, last, now, busy)


# --- holds (R38) --------------------------------------------------------------------------------------------


async def place_hold(
    deps: Deps,
    location_id: str,
    request: HoldRequest,
    *,
    client_network: str | None = None,
    idempotency_key: str | None = None,
    idempotency_scope: str = "",
) -> HoldOut:
    """Hold a free point of a slot for a few minutes (R38); `renews` extends the customer's own hold of it
    (WCAG 2.2.1). R39: one holder (the renewed hold, or the same client network) holds one slot for at most
    `hold_max_minutes` without a break of a whole hold time, so that nobody blocks a slot for ever by
    renewing, or by taking it again the moment the hold runs out; then 409 `hold_limit_reached` (the slot
    can still be booked while it is free). With an `idempotency_key` (the service centre's, scoped to the
    caller by `idempotency_scope`) a repeat answers with the first hold, as for a booking: a retry after a
    lost answer must not find the slot taken by its own hold, nor hold a second point."""
    key = (
        IdempotencyKey.of(
            idempotency_key,
            scope=f"hold\x1f{idempotency_scope}",
            request=location_id.encode()
            + b"\x1f"
            + request.model_copy(update={"start": request.start.astimezone(UTC)}).model_dump_json().encode(),
            secret=deps.settings.internal_secret,
        )
        if idempotency_key is not None
        else None
    )
    if key is not None and (replayed := await _replay(deps.pool, key)) is not None:
        return HoldOut.model_validate_json(replayed.body)
    now = deps.clock.now()
    config = await deps.catalog.get(deps.pool, location_id)
    concern = offered_concern(config, request.concern_id, request.mode, where="concern_id")
    slot = resolve_slot(config, concern, request.start, now)
    try:
        async with db.transaction(deps.pool) as conn:
            if key is not None and not await db.reserve_idempotent(conn, key.key_hash, key.fingerprint, now):
                raise _AnsweredMeanwhileError
            hold = await _hold(deps, conn, location_id, concern, slot, request, now, client_network)
            if key is not None:
                await db.store_idempotent(conn, key.key_hash, 201, key.seal(hold.model_dump_json().encode()))
    except _AnsweredMeanwhileError:
        assert key is not None  # noqa: S101 -- raised only with a key
        replayed = await _replay(deps.pool, key)
        if replayed is None:  # the stored answer cannot be read (the service's secret changed)
            raise SlotTakenError("This slot is in high demand right now. Please try again.") from None
        return HoldOut.model_validate_json(replayed.body)
    return hold


async def _hold(
    deps: Deps,
    conn: asyncpg.Connection,
    location_id: str,
    concern: ConcernOffer,
    slot: Slot,
    request: HoldRequest,
    now: datetime,
    client_network: str | None,
) -> HoldOut:
    hold_for = timedelta(minutes=deps.settings.hold_minutes)
    held_since = (
        await db.hold_chain_start(
            conn,
            location_id=location_id,
            group_id=slot.group_id,
            start=slot.start,
            end=slot.end,
            renews=request.renews,
            client_network=client_network,
            ended_after=now - hold_for,
        )
        or now
    )
    expires_at = hold_expiry(now, held_since, hold_for, timedelta(minutes=deps.settings.hold_max_minutes))
    if expires_at is None:
        log.info("hold_limit_reached", location_id=location_id)
        raise HoldLimitError(
            "This time has been held for you as long as possible. You can still book it while it is free."
        )
    if request.renews is not None and await db.extend_hold(
        conn,
        request.renews,
        location_id=location_id,
        group_id=slot.group_id,
        start=slot.start,
        end=slot.end,
        expires_at=expires_at,
        now=now,
    ):
        return HoldOut(hold_id=request.renews, expires_at=_berlin(expires_at), start=slot.start, end=slot.end)
    hold_id = uuid.uuid4()
    busy = await db.fetch_busy(conn, location_id, slot.group_id, slot.start, slot.end, now)
    for point in free_points(slot, busy):
        if await db.insert_hold(
            conn,
            hold_id=hold_id,
            location_id=location_id,
            group_id=slot.group_id,
            point=point,
            concern_id=concern.concern_id,
            mode=request.mode.value,
            start=slot.start,
            end=slot.end,
            expires_at=expires_at,
            now=now,
            held_since=held_since,
            client_network=client_network,
        ):
            return HoldOut(hold_id=hold_id, expires_at=_berlin(expires_at), start=slot.start, end=slot.end)
    raise SlotTakenError("This slot has just been taken. Please choose another one.")


# --- booking ------------------------------------------------------------------------------------------------


async def book_appointment(
    deps: Deps,
    request: BookingRequest,
    *,
    channel: Channel = Channel.ONLINE,
    interpreter_language: str | None = None,
    idempotency_key: str | None = None,
    idempotency_scope: str | None = None,
    client_network: str | None = None,
) -> Result:
    """Book an appointment: 201 with the appointment, or a domain error (422, 404, 409).
    `client_network` is the /24 or /48 prefix of the customer's address (R48), for online bookings.
    An `idempotency_key` is the caller's: a repeat answers with the first result. Its scope is the channel,
    or `idempotency_scope` (a staff member or API key), so that no caller replays another's answer."""
    try:
        result = await _book(
            deps,
            request,
            channel,
            interpreter_language,
            idempotency_key,
            idempotency_scope or channel.value,
            client_network,
        )
    except OTVError as exc:
        BOOKINGS.labels(channel.value, exc.code).inc()
        raise
    BOOKINGS.labels(channel.value, "booked").inc()
    return result


def _fingerprinted(request: BookingRequest, interpreter_language: str | None) -> bytes:
    """What a repeat with the same Idempotency-Key must repeat: the body with `start` as an instant (the
    same slot in another offset, as a system that keeps UTC sends it again, is the same request), and the
    interpreter of a staff booking (R26: a retry that adds one is another request, never a silent replay
    of the booking without it)."""
    same = request.model_copy(update={"start": request.start.astimezone(UTC)})
    return same.model_dump_json().encode() + b"\x1finterpreter=" + (interpreter_language or "").encode()


async def _book(
    deps: Deps,
    request: BookingRequest,
    channel: Channel,
    interpreter_language: str | None,
    raw_key: str | None,
    key_scope: str,
    client_network: str | None,
) -> Result:
    key = (
        IdempotencyKey.of(
            raw_key,
            scope=key_scope,
            request=_fingerprinted(request, interpreter_language),
            secret=deps.settings.internal_secret,
            # The previous release's fingerprint, the body as sent (for one release; it knew no
            # interpreter, so a retry that names one is never taken for a booking without).
            legacy_request=None if interpreter_language else request.model_dump_json().encode(),
        )
        if raw_key is not None
        else None
    )
    if key is not None:
        replayed = await _replay(deps.pool, key)
        if replayed is not None:
            return replayed

    now = deps.clock.now()
    customer = request.customer
    if not customer.customer_number and not customer.household_number:
        raise field_error(
            "customer.customer_number", "a customer number or a household number (BG-Nummer) is required"
        )
    config, allow_list = await deps.catalog.get_with_allow_list(deps.pool, request.location_id)
    concern = offered_concern(config, request.concern_id, request.mode, where="concern_id")
    if request.mode is Mode.PHONE and not customer.phone:
        # R4: staff call the customer at the booked time.
        raise field_error("customer.phone", "a phone number is required for a phone appointment")
    slot = resolve_slot(config, concern, request.start, now)
    _require_evening_declaration(slot, bool(request.evening_declaration))
    allow_listed = is_allow_listed(customer.email, allow_list)

    token = secrets.token_urlsafe(32)
    language = request.language
    new = NewAppointment(
        id=uuid.uuid4(),
        reference=new_reference(secrets.choice),
        location_id=config.location_id,
        group_id=slot.group_id,
        concern_id=concern.concern_id,
        mode=request.mode.value,
        channel=channel.value,
        language=language,
        start=slot.start,
        end=slot.end,
        evening=slot.evening,
        evening_declared=bool(request.evening_declaration),
        interpreter_language=interpreter_language,
        first_name=customer.first_name,
        last_name=customer.last_name,
        email=customer.email,
        phone=customer.phone,
        customer_number=customer.customer_number,
        household_number=customer.household_number,
        # R6: an internal address is exempt from the e-mail rule; the customer's own numbers still count
        # (R47), so that one customer gets one pending appointment whoever books it.
        email_key=None if allow_listed else email_key(customer.email),
        customer_number_key=customer.customer_number,
        household_number_key=customer.household_number,
        manage_token_hash=token_hash(token),
        location_name=config.snapshot.name,
        location_address=config.address,
        concern_name=local_text(concern.name, language),
        documents=[local_text(document, language) for document in concern.documents],
        sensitive=concern.sensitive,
        emergency=concern.emergency,
        booked_at=now,
        client_network=client_network,
    )
    url = manage_url(deps.settings, new.id, token)

    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with db.transaction(deps.pool) as conn:
                if key is not None and not await db.reserve_idempotent(
                    conn, key.key_hash, key.fingerprint, now
                ):
                    raise _AnsweredMeanwhileError
                point = await _place(conn, new, slot, request.hold_id, now)
                appointment = _appointment_of(new, point)
                body = appointment_out(appointment, url).model_dump_json().encode()
                await add_event(
                    conn,
                    AppointmentBookedV1(appointment=snapshot_of(appointment, url)),
                    producer=PRODUCER,
                    clock=deps.clock,
                )
                if key is not None:
                    await db.store_idempotent(conn, key.key_hash, 201, key.seal(body))
        except _AnsweredMeanwhileError:
            assert key is not None  # noqa: S101 -- raised only with a key
            replayed = await _replay(deps.pool, key)
            if replayed is not None:
                return replayed
        except db.ReferenceTakenError:
            new = replace(new, reference=new_reference(secrets.choice))
        except db.RetryableError:
            if attempt == ATTEMPTS:
                raise SlotTakenError("This slot is in high demand right now. Please try again.") from None
        else:
            log.info(
                "appointment_booked",
                appointment_id=str(appointment.id),
                location_id=appointment.location_id,
                channel=channel.value,
            )
            return Result(201, body)
    raise SlotTakenError("This slot is in high demand right now. Please try again.")


class _AnsweredMeanwhileError(Exception):
    """A concurrent request with the same Idempotency-Key has committed its answer meanwhile."""


async def _replay(pool: asyncpg.Pool, key: IdempotencyKey) -> Result | None:
    stored = await db.find_idempotent(pool, key.key_hash)
    if stored is None:
        return None
    fingerprint, status, sealed = stored
    if not key.matches(fingerprint):
        raise reused_with_other_request()
    if status is None or sealed is None:
        return None
    body = key.open(sealed)
    return Result(status, body) if body is not None else None


async def _place(
    conn: asyncpg.Connection, new: NewAppointment, slot: Slot, hold_id: uuid.UUID | None, now: datetime
) -> int:
    """Put the appointment on a service point: the customer's own live hold first (R38), then the free
    points in order. Every attempt is guarded by the database (I1, I2); all taken: slot_taken."""
    if hold_id is not None:
        point = await db.take_hold(
            conn,
            hold_id,
            location_id=new.location_id,
            group_id=slot.group_id,
            start=slot.start,
            end=slot.end,
            now=now,
        )
        if point is not None and await db.insert_appointment(conn, new, point, now):
            return point
    busy = await db.fetch_busy(conn, new.location_id, slot.group_id, slot.start, slot.end, now)
    # First the points nobody else is placing something on right now, then, waiting in ascending order,
    # those that were busy (their writer may yet fail and leave the point free).
    point, busy_now = await db.insert_appointment_without_waiting(conn, new, free_points(slot, busy), now)
    if point is not None:
        return point
    for point in busy_now:
        if await db.insert_appointment(conn, new, point, now):
            return point
    raise SlotTakenError("This slot has just been taken. Please choose another one.")


# --- the manage link (R41) ----------------------------------------------------------------------------------


def _check_token(stored_hash: bytes, token: str | None) -> bool:
    if not token or len(token) > 256:
        return False
    return hmac.compare_digest(token_hash(token), stored_hash)


async def _authorised(
    conn: asyncpg.Connection | asyncpg.Pool, appointment_id: uuid.UUID, token: str | None, *, lock: bool
) -> Appointment:
    """The appointment, if the token is its manage token. An unknown id is 404 `not_found`; an appointment
    that exists without its token (missing, mistyped, or a link replaced by a newer one, R41) is 403
    `forbidden`, as ARCHITECTURE.md lists. The ids are random UUIDs: the 403 tells a guesser nothing."""
    found = await db.find_appointment(conn, appointment_id, for_update=lock)
    if found is None:
        raise NotFoundError("There is no such appointment.")
    if not _check_token(found[1], token):
        raise ForbiddenError("This link is not valid for the appointment: use the newest manage link.")
    return found[0]


def can_change(appointment: Appointment, now: datetime) -> bool:
    return appointment.status == AppointmentStatus.BOOKED and appointment.start > now


async def view_appointment(deps: Deps, appointment_id: uuid.UUID, token: str | None) -> AppointmentView:
    appointment = await _authorised(deps.pool, appointment_id, token, lock=False)
    assert token is not None  # noqa: S101 -- checked by _authorised
    out = appointment_out(appointment, manage_url(deps.settings, appointment.id, token))
    return AppointmentView(
        **out.model_dump(),
        customer=CustomerOut(
            first_name=appointment.first_name,
            last_name=appointment.last_name,
            email=appointment.email,
            phone=appointment.phone,
            customer_number=appointment.customer_number,
            household_number=appointment.household_number,
        ),
        can_change=can_change(appointment, deps.clock.now()),
    )


async def appointment_invitation(deps: Deps, appointment_id: uuid.UUID, token: str | None) -> bytes:
    """The calendar entry of the appointment as a file (R40) for the customer's pages: the same UID and
    SEQUENCE as the invitation in the mails, so a calendar that has one keeps one entry."""
    appointment = await _authorised(deps.pool, appointment_id, token, lock=False)
    organizer_name, organizer_address = email.utils.parseaddr(deps.settings.mail_from)
    return invitation.invitation(
        snapshot_of(appointment, manage_url(deps.settings, appointment.id, token)),
        cancel=appointment.status == AppointmentStatus.CANCELLED,
        organizer_address=organizer_address,
        organizer_name=organizer_name or "Jobcenter Bremen",
        domain=deps.settings.mail_domain,
        stamp=deps.clock.now(),
        publish=True,
    )


async def cancel_appointment(
    deps: Deps,
    appointment_id: uuid.UUID,
    *,
    token: str | None,
    cancelled_by: CancelledBy = CancelledBy.CUSTOMER,
    reason: str = "",
    for_customer: bool = False,
    recorded: Recorded | None = None,
) -> Appointment:
    """R9: cancel while the start lies in the future; cancelling twice is harmless. The customer proves
    the right with the manage token; staff entry points pass their own `cancelled_by` and no token, and
    `for_customer` when they enter the customer's own cancellation (recorded as the customer's)."""
    now = deps.clock.now()
    async with db.transaction(deps.pool) as conn:
        by_staff = cancelled_by is not CancelledBy.CUSTOMER
        if for_customer:
            cancelled_by = CancelledBy.CUSTOMER
        appointment = await _changeable(conn, appointment_id, token, by_staff=by_staff, lock=True)
        if appointment.status == AppointmentStatus.CANCELLED:
            return appointment
        if not can_change(appointment, now):
            raise TooLateError("The appointment has started or passed; it can no longer be cancelled.")
        cancelled = await db.mark_cancelled(conn, appointment.id, now, cancelled_by.value, reason)
        await db.insert_cooldown(
            conn, cancelled, now, timedelta(minutes=deps.settings.cancel_release_minutes)
        )
        url = manage_url(deps.settings, cancelled.id, token)
        await add_event(
            conn,
            AppointmentCancelledV1(
                appointment=snapshot_of(cancelled, url), cancelled_by=cancelled_by, reason=reason
            ),
            producer=PRODUCER,
            clock=deps.clock,
        )
        if recorded is not None:
            await recorded(conn, appointment, cancelled)
    log.info("appointment_cancelled", appointment_id=str(cancelled.id), cancelled_by=cancelled_by.value)
    return cancelled


async def _changeable(
    conn: asyncpg.Connection | asyncpg.Pool,
    appointment_id: uuid.UUID,
    token: str | None,
    *,
    by_staff: bool,
    lock: bool,
) -> Appointment:
    """The appointment a change is about: the customer proves the right with the manage token; staff
    entry points have checked the caller's location before and pass no token."""
    if not by_staff:
        return await _authorised(conn, appointment_id, token, lock=lock)
    found = await db.find_appointment(conn, appointment_id, for_update=lock)
    if found is None:
        raise NotFoundError("There is no such appointment.")
    return found[0]


async def reschedule_appointment(
    deps: Deps,
    appointment_id: uuid.UUID,
    token: str | None,
    request: RescheduleRequest,
    *,
    by_staff: bool = False,
    recorded: Recorded | None = None,
) -> AppointmentOut:
    """R41: move to another slot of the same concern; the new slot is taken and the old one freed in one
    transaction (for a customer's move after the cool-down of R39, as after a cancellation). The
    one-appointment rule holds: it is the same appointment. Staff and the service centre move with
    `by_staff` and no token (the manage link of the mails stays the customer's)."""
    now = deps.clock.now()
    current = await _changeable(deps.pool, appointment_id, token, by_staff=by_staff, lock=False)
    url = manage_url(deps.settings, current.id, token)
    if not can_change(current, now):
        raise TooLateError("The appointment has started, passed or was cancelled; it cannot be moved.")
    if current.start == request.start:
        # Already there: a repeat whose first answer was lost. Answered before the slot is judged anew,
        # since booking for that day may have closed meanwhile (it is no new booking of the slot).
        return appointment_out(current, url)
    config = await deps.catalog.get(deps.pool, current.location_id)
    concern = config.concern(current.concern_id)
    if concern is None or Mode(current.mode) not in concern.modes:
        raise field_error("start", "this concern is no longer offered here; please book anew")
    slot = resolve_slot(config, concern, request.start, now)
    # R12: the customer declares it on the manage page; staff and the service centre move a caller to an
    # evening slot knowingly, as for a follow-up or a transfer (staff_service.py).
    declared = bool(request.evening_declaration) or current.evening_declared or (by_staff and slot.evening)
    _require_evening_declaration(slot, declared)

    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with db.transaction(deps.pool) as conn:
                appointment = await _changeable(conn, appointment_id, token, by_staff=by_staff, lock=True)
                if not can_change(appointment, now):
                    raise TooLateError("The appointment has started, passed or was cancelled.")
                if appointment.start == slot.start and appointment.group_id == slot.group_id:
                    return appointment_out(appointment, url)
                moved = await _move(conn, appointment, slot, request.hold_id, declared, now)
                if not by_staff:
                    # R39: the slot a customer leaves cools down like a cancelled one; otherwise moving
                    # away would hand it to a buyer at once (slot trading without the delay).
                    await db.insert_cooldown(
                        conn, appointment, now, timedelta(minutes=deps.settings.cancel_release_minutes)
                    )
                await add_event(
                    conn,
                    AppointmentRescheduledV1(
                        appointment=snapshot_of(moved, url),
                        previous_start=appointment.start,
                        previous_end=appointment.end,
                    ),
                    producer=PRODUCER,
                    clock=deps.clock,
                )
                if recorded is not None:
                    await recorded(conn, appointment, moved)
        except db.RetryableError:
            if attempt == ATTEMPTS:
                raise SlotTakenError("This slot is in high demand right now. Please try again.") from None
        else:
            log.info("appointment_rescheduled", appointment_id=str(moved.id))
            return appointment_out(moved, url)
    raise SlotTakenError("This slot is in high demand right now. Please try again.")


async def _move(
    conn: asyncpg.Connection,
    appointment: Appointment,
    slot: Slot,
    hold_id: uuid.UUID | None,
    declared: bool,
    now: datetime,
) -> Appointment:
    async def move_to(point: int) -> Appointment | None:
        return await db.move_appointment(
            conn,
            appointment,
            group_id=slot.group_id,
            point=point,
            start=slot.start,
            end=slot.end,
            evening=slot.evening,
            evening_declared=declared,
            now=now,
        )

    if hold_id is not None:
        point = await db.take_hold(
            conn,
            hold_id,
            location_id=appointment.location_id,
            group_id=slot.group_id,
            start=slot.start,
            end=slot.end,
            now=now,
        )
        if point is not None and (moved := await move_to(point)) is not None:
            return moved
    busy = await db.fetch_busy(
        conn,
        appointment.location_id,
        slot.group_id,
        slot.start,
        slot.end,
        now,
        except_appointment=appointment.id,
    )
    for point in free_points(slot, busy):
        if (moved := await move_to(point)) is not None:
            return moved
    raise SlotTakenError("This slot has just been taken. Please choose another one.")


# --- passing (I7) -------------------------------------------------------------------------------------------


async def pass_started_appointments(deps: Deps) -> int:
    """Started appointments stop being pending, so that their customers can book again (R5). Runs in
    every replica; the advisory lock lets one of them do it and SKIP LOCKED keeps the rows apart."""
    now = deps.clock.now()
    passed: list[Appointment] = []

    async def work(conn: asyncpg.Connection) -> None:
        passed.extend(await db.pass_started(conn, now, deps.settings.passing_batch))
        for appointment in passed:
            await add_event(
                conn,
                AppointmentPassedV1(
                    appointment=snapshot_of(appointment, manage_url(deps.settings, appointment.id, None))
                ),
                producer=PRODUCER,
                clock=deps.clock,
            )
        await db.delete_expired(conn, now, timedelta(hours=deps.settings.idempotency_hours))

    await with_job_lock(deps.pool, "booking.passing", work)
    if passed:
        PASSED.inc(len(passed))
        log.info("appointments_passed", count=len(passed))
    return len(passed)
