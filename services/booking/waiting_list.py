"""The waiting list's use cases (R45), one transaction each: join (with double opt-in), confirm, view,
withdraw, accept an offer (a normal booking with the offer's hold), and the matcher job.

The matcher runs in every replica (I7). Its steps claim their rows with `FOR UPDATE SKIP LOCKED`, and the
offers of one location are made under a per-location advisory lock, so that freed capacity goes to the
wishes of that location strictly in order of registration. Whatever a replica does, the database decides
(exclusion constraint of open offers, hold rows, one open offer per wish): exactly one offer per freed slot
at a time.

An offer is a hold (R38) of the slot for the wish until `OTV_WAITING_OFFER_HOURS` have passed, never past
the day's booking cutoff; accepting it is `book_appointment` with that hold, so the customer gets every mail
of a booking. The new appointment ends the wish in the same transaction (the trigger on `appointments`);
the matcher publishes that ending (`waiting.fulfilled`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import uuid
from collections import Counter
from datetime import datetime, timedelta

import asyncpg
import pydantic
import structlog
from prometheus_client import Counter as Metric

from services.booking import db
from services.booking import waiting_db as wdb
from services.booking.contact import email_key, is_allow_listed
from services.booking.domain import (
    BookingClosedError,
    BusyMap,
    LocationConfig,
    Slot,
    available_slots,
    candidate_slots,
    field_error,
    free_points,
    last_bookable_day,
    local_text,
    new_reference,
)
from services.booking.models import BookingRequest, ConcernRef, CustomerIn, CustomerOut, LocationRef
from services.booking.service import Deps, Result, book_appointment, offered_concern, token_hash
from services.booking.waiting_domain import (
    MAX_WISH_DAYS,
    Criteria,
    Freed,
    LinkExpiredError,
    Offer,
    SlotsAvailableError,
    Wish,
    added_capacity,
    check_latest_date,
    entered_horizon,
    offer_expiry,
    slots_in,
)
from services.booking.waiting_models import (
    OfferOut,
    StaffConcernWaitingOut,
    StaffWaitingListOut,
    StaffWishOut,
    WishDaysOut,
    WishOut,
    WishRequest,
    WishStatusOut,
    WishView,
)
from shared.clock import BERLIN, Clock
from shared.errors import NotFoundError, ValidationError
from shared.events import EventData
from shared.events.catalog import ConcernOffer, LeadTime, LocationConfiguredV1, Mode
from shared.events.waiting_list import (
    EndReason,
    OfferSnapshot,
    WaitingConfirmedV1,
    WaitingExpiredV1,
    WaitingFulfilledV1,
    WaitingOfferedV1,
    WaitingOfferExpiredV1,
    WaitingPersonalDataErasedV1,
    WaitingRegisteredV1,
    WaitingWithdrawnV1,
    WishCustomer,
    WishSnapshot,
    WishStatus,
)
from shared.languages import nearest_built_in
from shared.outbox import add_event, delete_published_about

log = structlog.get_logger(__name__)

PRODUCER = "booking"
ATTEMPTS = 3
BATCH = 200

WISHES = Metric("otv_waiting_wishes_total", "Waiting-list transitions", ["transition"])


# --- helpers ------------------------------------------------------------------------------------------


def page_url(base: str, wish_id: uuid.UUID, token: str | None) -> str:
    """The wish's page (`<base>/waiting-list/{id}?token=`); without the token the bare page."""
    page = f"{base.rstrip('/')}/waiting-list/{wish_id}"
    return f"{page}?token={token}" if token else page


def snapshot(deps: Deps, wish: Wish, token: str | None = None) -> WishSnapshot:
    return WishSnapshot(
        id=wish.id,
        reference=wish.reference,
        revision=wish.revision,
        status=wish.status,
        location_id=wish.location_id,
        location_name=wish.location_name,
        location_address=wish.location_address,
        concern_id=wish.concern_id,
        concern_name=wish.concern_name,
        sensitive=wish.sensitive,
        mode=Mode(wish.mode),
        weekdays=sorted(wish.criteria.weekdays),
        earliest=wish.criteria.earliest,
        latest=wish.criteria.latest,
        latest_date=wish.criteria.latest_date,
        language=nearest_built_in(wish.language),
        language_tag=wish.language,
        customer=WishCustomer(first_name=wish.first_name, last_name=wish.last_name, email=wish.email),
        page_url=page_url(deps.settings.public_base_url, wish.id, token),
        registered_at=wish.registered_at,
        confirm_by=wish.confirm_by(deps.settings.waiting_opt_in_hours),
    )


def offer_snapshot(offer: Offer) -> OfferSnapshot:
    return OfferSnapshot(
        id=offer.id,
        start=offer.start,
        end=offer.end,
        expires_at=offer.expires_at,
        evening=offer.evening,
        offered_revision=offer.offered_revision,
    )


async def _publish(conn: asyncpg.Connection, deps: Deps, data: EventData) -> None:
    await add_event(conn, data, producer=PRODUCER, clock=deps.clock)
    WISHES.labels(data.event_type.removeprefix("waiting.")).inc()


def _check_token(stored_hash: bytes, token: str | None) -> bool:
    if not token or len(token) > 256:
        return False
    return hmac.compare_digest(token_hash(token), stored_hash)


async def _authorised(
    conn: asyncpg.Connection | asyncpg.Pool, wish_id: uuid.UUID, token: str | None, *, lock: bool
) -> Wish:
    """The wish, if the token is its token; otherwise 404 whether it exists or not."""
    found = await wdb.find_wish(conn, wish_id, for_update=lock)
    if found is None or not _check_token(found[1], token):
        raise NotFoundError("There is no such wish on the waiting list, or the link is not valid.")
    return found[0]


def _berlin(when: datetime) -> datetime:
    return when.astimezone(BERLIN)


def _offer_out(offer: Offer) -> OfferOut:
    return OfferOut(
        start=_berlin(offer.start),
        end=_berlin(offer.end),
        expires_at=_berlin(offer.expires_at),
        evening_reserved=offer.evening,
    )


def wish_out(wish: Wish, opt_in_hours: float) -> WishOut:
    confirm_by = wish.confirm_by(opt_in_hours)
    return WishOut(
        id=wish.id,
        reference=wish.reference,
        status=wish.status,
        location=LocationRef(id=wish.location_id, name=wish.location_name, address=wish.location_address),
        concern=ConcernRef(id=wish.concern_id, name=wish.concern_name),
        mode=Mode(wish.mode),
        weekdays=sorted(wish.criteria.weekdays),
        earliest=wish.criteria.earliest,
        latest=wish.criteria.latest,
        latest_date=wish.criteria.latest_date,
        language=wish.language,
        registered_at=_berlin(wish.registered_at),
        confirm_by=_berlin(confirm_by) if confirm_by else None,
    )


def _customer_out(wish: Wish) -> CustomerOut:
    return CustomerOut(
        first_name=wish.first_name,
        last_name=wish.last_name,
        email=wish.email,
        phone=wish.phone,
        customer_number=wish.customer_number,
        household_number=wish.household_number,
    )


# --- joining ------------------------------------------------------------------------------------------


async def join_waiting_list(deps: Deps, request: WishRequest) -> WishOut:
    """Register a wish; it counts once the address is confirmed from the mail (double opt-in). 409
    `already_booked` for a customer with a pending appointment, `already_waiting` for one on the list,
    `slots_available` when a free appointment suits the wish (nothing to wait for)."""
    now = deps.clock.now()
    customer = request.customer
    # The booking's own rules for contact data (R4, R47): the same messages, the same fields.
    if not customer.customer_number and not customer.household_number:
        raise field_error(
            "customer.customer_number", "a customer number or a household number (BG-Nummer) is required"
        )
    config, allow_list = await deps.catalog.get_with_allow_list(deps.pool, request.location_id)
    if not config.snapshot.active:
        raise BookingClosedError("This location takes no bookings at the moment.")
    concern = offered_concern(config, request.concern_id, request.mode, where="concern_id")
    if request.mode is Mode.PHONE and not customer.phone:
        raise field_error("customer.phone", "a phone number is required for a phone appointment")
    problem = check_latest_date(request.latest_date, now.astimezone(BERLIN).date())
    if problem:
        raise field_error("latest_date", problem)
    await _refuse_when_free(deps, config, concern, request, now)
    allow_listed = is_allow_listed(customer.email, allow_list)
    keys = (
        None if allow_listed else email_key(customer.email),
        customer.customer_number,
        customer.household_number,
    )

    token = secrets.token_urlsafe(32)
    language = request.language
    values = {
        "id": uuid.uuid4(),
        "reference": new_reference(secrets.choice),
        "location_id": config.location_id,
        "group_id": concern.group_id,
        "concern_id": concern.concern_id,
        "mode": request.mode.value,
        "weekdays": list(request.weekdays),
        "earliest": request.earliest,
        "latest": request.latest,
        "latest_date": request.latest_date,
        "evening_declared": bool(request.evening_declaration),
        "language": language,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "phone": customer.phone,
        "customer_number": customer.customer_number,
        "household_number": customer.household_number,
        "email_key": keys[0],
        "customer_number_key": keys[1],
        "household_number_key": keys[2],
        "token_hash": token_hash(token),
        "location_name": config.snapshot.name,
        "location_address": config.address,
        "concern_name": local_text(concern.name, language),
        "sensitive": concern.sensitive,
        "registered_at": now,
    }
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with db.transaction(deps.pool) as conn:
                # Under the key locks the trigger on `appointments` takes too (R5: never both).
                await wdb.lock_keys(conn, *keys)
                await wdb.check_no_booked_appointment(conn, *keys)
                replaced_wishes = await wdb.replace_unconfirmed(conn, *keys, now)
                for replaced in replaced_wishes:
                    await _publish(
                        conn,
                        deps,
                        WaitingWithdrawnV1(wish=snapshot(deps, replaced), reason=EndReason.REPLACED),
                    )
                wish = await wdb.insert_wish(conn, values)
                registered = WaitingRegisteredV1(
                    wish=snapshot(deps, wish, token), replaces_unconfirmed=bool(replaced_wishes)
                )
                await _publish(conn, deps, registered)
        except db.ReferenceTakenError:
            values["reference"] = new_reference(secrets.choice)
        except db.RetryableError:
            if attempt == ATTEMPTS:
                raise
        else:
            log.info("wish_registered", wish_id=str(wish.id), location_id=wish.location_id)
            return wish_out(wish, deps.settings.waiting_opt_in_hours)
    raise RuntimeError("no free reference")  # pragma: no cover -- three colliding random references


async def wish_weekdays(deps: Deps, location_id: str, concern_id: str, mode: Mode) -> WishDaysOut:
    """The days of the week a wish can name: those with appointments of the concern (free or booked)
    between today and the furthest `latest_date` (8 weeks), so that the join page offers no Saturday
    where nobody works."""
    now = deps.clock.now()
    config = await deps.catalog.get(deps.pool, location_id)
    concern = offered_concern(config, concern_id, mode, where="concern")
    first = now.astimezone(BERLIN).date()
    until = first + timedelta(days=MAX_WISH_DAYS)
    grid = candidate_slots(config, concern, first, until, now)
    weekdays = sorted({slot.start.astimezone(BERLIN).weekday() for slot in grid})
    return WishDaysOut(weekdays=weekdays, until=until)


FREE_SHOWN = 3  # free appointments named in a `slots_available` answer


async def _refuse_when_free(
    deps: Deps, config: LocationConfig, concern: ConcernOffer, request: WishRequest, now: datetime
) -> None:
    """422 `no_matching_times` when the location has no appointment of this concern on the wished days
    and times at all before the wish's last day (it would wait for ever: a Saturday where nobody works);
    409 `slots_available` when one that suits the wish can be booked now: the list offers only what is
    freed or added later, so such a customer would wait for nothing."""
    criteria = Criteria(
        weekdays=frozenset(request.weekdays),
        earliest=request.earliest,
        latest=request.latest,
        latest_date=request.latest_date,
        evening_declared=bool(request.evening_declaration),
    )
    first = now.astimezone(BERLIN).date()
    grid = candidate_slots(config, concern, first, request.latest_date, now)
    if not any(criteria.fits(slot) for slot in grid):
        # The days that have appointments at the wished times (afternoons: Thursday only), else any day.
        any_day = dataclasses.replace(criteria, weekdays=frozenset(range(7)))
        at_times = {slot.start.astimezone(BERLIN).weekday() for slot in grid if any_day.fits(slot)}
        offered = sorted(at_times or {slot.start.astimezone(BERLIN).weekday() for slot in grid})
        raise ValidationError(
            "Invalid input: weekdays.",
            details=[
                {
                    "field": "weekdays",
                    "message": "no appointment of this concern on these days and times before latest_date",
                    "type": "no_matching_times",
                    "offered_weekdays": offered,  # the days it has (none: not before latest_date)
                }
            ],
        )
    since = datetime.combine(first, datetime.min.time(), BERLIN)
    until = datetime.combine(request.latest_date + timedelta(days=1), datetime.min.time(), BERLIN)
    busy = await db.fetch_busy(deps.pool, config.location_id, concern.group_id, since, until, now)
    free = [
        slot
        for slot in available_slots(config, concern, first, request.latest_date, now, busy)
        if criteria.fits(slot)
    ]
    if free:
        raise SlotsAvailableError(
            "Appointments that suit this wish are free: book one of them instead.",
            details=[{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in free[:FREE_SHOWN]],
        )


# --- the customer's link ------------------------------------------------------------------------------


async def view_wish(deps: Deps, wish_id: uuid.UUID, token: str | None) -> WishView:
    wish = await _authorised(deps.pool, wish_id, token, lock=False)
    offer = await wdb.open_offer(deps.pool, wish.id) if wish.status is WishStatus.OFFERED else None
    before = (
        await wdb.waiting_before(deps.pool, wish)
        if wish.status in (WishStatus.WAITING, WishStatus.OFFERED)
        else None
    )
    return WishView(
        **wish_out(wish, deps.settings.waiting_opt_in_hours).model_dump(),
        customer=_customer_out(wish),
        confirmed_at=_berlin(wish.confirmed_at) if wish.confirmed_at else None,
        ended_at=_berlin(wish.ended_at) if wish.ended_at else None,
        end_reason=wish.end_reason,
        waiting_before=before,
        offer=_offer_out(offer) if offer is not None and offer.expires_at > deps.clock.now() else None,
    )


async def confirm_wish(deps: Deps, wish_id: uuid.UUID, token: str | None) -> WishView:
    """The double opt-in: from now on the wish counts. Confirming twice is harmless; the link of a wish
    that has ended (or whose opt-in time ran out) answers 410 `link_expired`."""
    now = deps.clock.now()
    too_late = False
    async with db.transaction(deps.pool) as conn:
        wish = await _authorised(conn, wish_id, token, lock=True)
        if wish.status is WishStatus.PENDING_OPT_IN:
            deadline = wish.confirm_by(deps.settings.waiting_opt_in_hours)
            if deadline is not None and deadline <= now:
                ended = await wdb.set_status(
                    conn, wish.id, WishStatus.EXPIRED, now, end_reason=EndReason.NOT_CONFIRMED
                )
                await _publish(
                    conn, deps, WaitingExpiredV1(wish=snapshot(deps, ended), reason=EndReason.NOT_CONFIRMED)
                )
                too_late = True
            else:
                confirmed = await wdb.set_status(conn, wish.id, WishStatus.WAITING, now, confirmed=True)
                await _publish(conn, deps, WaitingConfirmedV1(wish=snapshot(deps, confirmed)))
                log.info("wish_confirmed", wish_id=str(wish.id))
        elif not wish.active:
            too_late = True
    if too_late:
        raise LinkExpiredError("This wish has ended. You are welcome to join the waiting list again.")
    return await view_wish(deps, wish_id, token)


async def withdraw_wish(deps: Deps, wish_id: uuid.UUID, token: str | None) -> WishStatusOut:
    """Leave the waiting list (the link in every mail). A held offer is freed for the next wish at once.
    Withdrawing an ended wish changes nothing and says how it ended."""
    now = deps.clock.now()
    async with db.transaction(deps.pool) as conn:
        wish = await _authorised(conn, wish_id, token, lock=True)
        if not wish.active:
            return WishStatusOut(status=wish.status)
        offer = await wdb.open_offer(conn, wish.id)
        if offer is not None:
            await wdb.end_offer(conn, offer, "withdrawn", now)
        ended = await wdb.set_status(conn, wish.id, WishStatus.WITHDRAWN, now, end_reason=EndReason.CUSTOMER)
        await _publish(conn, deps, WaitingWithdrawnV1(wish=snapshot(deps, ended), reason=EndReason.CUSTOMER))
    log.info("wish_withdrawn", wish_id=str(wish_id))
    return WishStatusOut(status=WishStatus.WITHDRAWN)


def _offer_idempotency_key(deps: Deps, offer: Offer) -> str:
    # One booking per offer, whatever the clicks: a repeat answers with the first result (R39).
    return hmac.new(deps.settings.internal_secret.encode(), offer.id.bytes, hashlib.sha256).hexdigest()


async def accept_offer(
    deps: Deps, wish_id: uuid.UUID, token: str | None, *, client_network: str | None = None
) -> Result:
    """Book the offered slot: a normal booking (`book_appointment`) with the offer's hold, so the customer
    gets the booking's mails and manage link. 410 `link_expired` once the offer has run out."""
    now = deps.clock.now()
    wish = await _authorised(deps.pool, wish_id, token, lock=False)
    offer = await wdb.open_offer(deps.pool, wish.id)
    if offer is None and wish.status is WishStatus.BOOKED:
        offer = await wdb.accepted_offer(deps.pool, wish.id)  # a repeated click: the first answer again
    if offer is None or (offer.status == "open" and offer.expires_at <= now):
        raise LinkExpiredError(
            "This offer has expired. The slot has been offered to the next person waiting."
        )
    customer = CustomerIn.model_validate(
        {
            "first_name": wish.first_name,
            "last_name": wish.last_name,
            "email": wish.email,
            "phone": wish.phone,
            "customer_number": wish.customer_number,
            "household_number": wish.household_number,
        }
    )
    request = BookingRequest(
        location_id=wish.location_id,
        concern_id=wish.concern_id,
        start=_berlin(offer.start),
        mode=Mode(wish.mode),
        customer=customer,
        evening_declaration=True if offer.evening and wish.criteria.evening_declared else None,
        language=wish.language,
        hold_id=offer.id,
    )
    result = await book_appointment(
        deps, request, idempotency_key=_offer_idempotency_key(deps, offer), client_network=client_network
    )
    await announce_ended(deps)
    log.info("wish_offer_accepted", wish_id=str(wish.id))
    return result


# --- the matcher job ----------------------------------------------------------------------------------


async def run_matcher(deps: Deps) -> dict[str, int]:
    """One round of the waiting list's background work; safe to run in every replica at once (I7)."""
    counts: Counter[str] = Counter()
    counts["offers_expired"] = await expire_offers(deps)
    counts["wishes_expired"] = await expire_wishes(deps)
    counts["fulfilled"] = await announce_ended(deps)
    counts["capacity_changes"] = await apply_catalog_changes(deps)
    counts["horizon_days"] = await free_horizon_days(deps)
    counts["offers_made"] = await offer_freed_capacity(deps)
    if any(counts.values()):
        log.info("waiting_list_matched", **counts)
    return dict(counts)


async def expire_offers(deps: Deps) -> int:
    """Offers not accepted in time: the wish waits again (or ends after too many), and the slot goes to
    the next wish in order (`waiting_freed`).

    Only an offer whose mail reached the customer (the notifier said so, `mail.offer_delivery`) was
    missed: one the relay never took (an outage until the offer's end, a suppressed address) or that was
    never sent does not count against the wish, so the customer keeps their place, and the notifier sends
    no mail about it. Without a report by now it counts as not delivered: the notifier gives an offer mail
    up only at the offer's end, so a report of that arrives after the expiry; one that comes later
    changes nothing."""
    now = deps.clock.now()
    async with db.transaction(deps.pool) as conn:
        rows = await conn.fetch(
            "SELECT o.id FROM waiting_offers o JOIN wishes w ON w.id = o.wish_id"
            " WHERE o.status = 'open' AND o.expires_at <= $1 ORDER BY o.expires_at LIMIT $2"
            " FOR UPDATE OF o, w SKIP LOCKED",
            now,
            BATCH,
        )
        for row in rows:
            offer = await wdb.find_offer(conn, row["id"])
            found = await wdb.find_wish(conn, offer.wish_id)
            assert found is not None  # noqa: S101 -- a foreign key
            await wdb.end_offer(conn, offer, "expired", now)
            missed = offer.delivered
            if missed and found[0].missed_offers + 1 >= deps.settings.waiting_max_missed_offers:
                ended = await wdb.set_status(
                    conn,
                    offer.wish_id,
                    WishStatus.EXPIRED,
                    now,
                    end_reason=EndReason.OFFERS_MISSED,
                    missed_offer=True,
                )
                await _publish(
                    conn, deps, WaitingExpiredV1(wish=snapshot(deps, ended), reason=EndReason.OFFERS_MISSED)
                )
                continue
            waiting = await wdb.set_status(conn, offer.wish_id, WishStatus.WAITING, now, missed_offer=missed)
            expired = WaitingOfferExpiredV1(
                wish=snapshot(deps, waiting), offer=offer_snapshot(offer), missed=missed
            )
            await _publish(conn, deps, expired)
            if not missed:
                log.info("wish_offer_not_delivered", wish_id=str(offer.wish_id), outcome=offer.mail_outcome)
    return len(rows)


async def record_offer_mail(
    conn: asyncpg.Connection, wish_id: uuid.UUID, revision: int, outcome: str
) -> None:
    """The notifier's report of a waiting-list offer mail (`mail.offer_delivery`), in the consumer's
    transaction (I3): whether the offer reached the customer decides, when it runs out, whether it was
    missed (`expire_offers`)."""
    if not await wdb.record_offer_mail(conn, wish_id, revision, outcome):
        # An offer mail of a wish erased since, or of an offer made before this report was kept.
        log.info("offer_mail_report_unmatched", wish_id=str(wish_id), revision=revision)


async def expire_wishes(deps: Deps) -> int:
    """Wishes past their latest date end with a short mail; unconfirmed ones whose opt-in time ran out
    end silently (their address was never confirmed)."""
    now = deps.clock.now()
    today = now.astimezone(BERLIN).date()
    unconfirmed_before = now - timedelta(hours=deps.settings.waiting_opt_in_hours)
    async with db.transaction(deps.pool) as conn:
        wishes = await wdb.wishes_to_expire(conn, today, unconfirmed_before, BATCH)
        for wish in wishes:
            offer = await wdb.open_offer(conn, wish.id)
            if offer is not None:
                await wdb.end_offer(conn, offer, "expired", now)
            reason = (
                EndReason.NOT_CONFIRMED if wish.status is WishStatus.PENDING_OPT_IN else EndReason.LATEST_DATE
            )
            ended = await wdb.set_status(conn, wish.id, WishStatus.EXPIRED, now, end_reason=reason)
            await _publish(conn, deps, WaitingExpiredV1(wish=snapshot(deps, ended), reason=reason))
    return len(wishes)


async def announce_ended(deps: Deps) -> int:
    """Publish the endings the database made (a customer booked: the trigger on `appointments`)."""
    async with db.transaction(deps.pool) as conn:
        ended = await wdb.unannounced(conn, BATCH)
        for wish, via_offer in ended:
            assert wish.appointment_id is not None  # noqa: S101 -- set by the trigger with the status
            await _publish(
                conn,
                deps,
                WaitingFulfilledV1(
                    wish=snapshot(deps, wish), appointment_id=wish.appointment_id, via_offer=via_offer
                ),
            )
            await wdb.mark_announced(conn, wish.id)
    return len(ended)


async def apply_catalog_changes(deps: Deps) -> int:
    """A new window, more service points, a lifted closure: the slots the new configuration adds are
    freed capacity for the wishes waiting at the location."""
    now = deps.clock.now()
    async with db.transaction(deps.pool) as conn:
        changes = await wdb.due_catalog_changes(conn, 20)
        for change_id, location_id, old_raw in changes:
            try:
                old: LocationConfig | None = LocationConfig.of(LocationConfiguredV1.model_validate(old_raw))
            except pydantic.ValidationError:
                old = None
            try:
                new = await deps.catalog.get(conn, location_id)
            except NotFoundError:
                new = None
            concerns, last = await wdb.active_wish_scope(conn, location_id)
            if new is not None and concerns and last is not None:
                for group_id, point, start, end in added_capacity(old, new, concerns, last, now):
                    await wdb.insert_freed(
                        conn, location_id, group_id, start, end, "capacity", now, now, point=point
                    )
            await wdb.finish_catalog_change(conn, change_id, now)
    return len(changes)


async def free_horizon_days(deps: Deps) -> int:
    """R45 with R19: at midnight a new day enters each location's booking horizon (today + `max_days`),
    and its slots go to the waiting wishes in order of registration before anybody else can book them,
    as a new window's would. Once per location and day, whichever replica comes first (the horizon row
    is locked meanwhile). A raised `max_days` is a catalog change (`apply_catalog_changes`) as well; the
    same days freed twice offer nothing twice (one open offer per slot and per wish)."""
    now = deps.clock.now()
    freed = 0
    for location_id in await wdb.locations_with_waiting_wishes(deps.pool):
        try:
            config = await deps.catalog.get(deps.pool, location_id)
        except NotFoundError:
            continue
        horizon = last_bookable_day(now, config.snapshot.lead_time)
        seen = await wdb.horizon_seen(deps.pool, location_id)
        if seen is not None and seen >= horizon:
            continue  # the usual case: this day's new day is done
        async with db.transaction(deps.pool) as conn:
            claimed, seen = await wdb.claim_horizon(conn, location_id, now)
            if not claimed or (seen is not None and seen >= horizon):
                continue  # another replica frees it right now, or has just done so
            concerns, latest, since = await wdb.horizon_scope(conn, location_id)
            if concerns and latest is not None and since is not None:
                for group_id, start, end in entered_horizon(config, concerns, seen, since, latest, now):
                    await wdb.insert_freed(
                        conn, location_id, group_id, start, end, "capacity", now, now, point=None
                    )
                    freed += 1
            await wdb.set_horizon(conn, location_id, horizon, now)
    return freed


async def offer_freed_capacity(deps: Deps) -> int:
    """Offer freed capacity to the waiting wishes of each location, in order of registration."""
    now = deps.clock.now()
    made = 0
    for location_id in await wdb.locations_with_due_freed(deps.pool, now):
        async with db.transaction(deps.pool) as conn:
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))", f"otv.booking.waiting.{location_id}"
            ):
                continue  # another replica offers this location's capacity right now
            rows = await wdb.due_freed(conn, location_id, now)
            wishes = await wdb.waiting_wishes(conn, location_id)
            try:
                config = await deps.catalog.get(conn, location_id)
            except NotFoundError:
                config = None
            offered = await wdb.offered_before(conn, [w.id for w in wishes]) if wishes else set()
            for freed in rows:
                retry_at = None
                if config is not None and wishes:
                    placed, retry_at = await _offer_range(conn, deps, config, freed, wishes, offered, now)
                    made += placed
                await wdb.finish_freed(conn, freed.id, now, retry_at=retry_at)
    return made


async def _offer_range(
    conn: asyncpg.Connection,
    deps: Deps,
    config: LocationConfig,
    freed: Freed,
    wishes: list[Wish],
    offered: set[tuple[uuid.UUID, int]],
    now: datetime,
) -> tuple[int, datetime | None]:
    """Offer what fits in one freed range to the wishes in order; each wish gets at most one slot. The
    offered wishes leave `wishes`. Returns how many were offered, and when to look again (a fitting slot
    still blocked by a live hold or the cool-down after a cancellation, R39), or None when done."""
    if freed.end <= now:
        return 0, None
    lead = config.snapshot.lead_time
    min_offer = timedelta(minutes=deps.settings.waiting_offer_min_minutes)
    busy = await db.fetch_busy(conn, config.location_id, freed.group_id, freed.start, freed.end, now)
    placed = 0
    unserved = False
    for wish in list(wishes):
        concern = config.concern(wish.concern_id)
        if concern is None or concern.group_id != freed.group_id or Mode(wish.mode) not in concern.modes:
            continue
        slots = [
            slot
            for slot in slots_in(
                config, wish.concern_id, freed.start, freed.end, wish.criteria.latest_date, now
            )
            if wish.criteria.fits(slot)
            and (wish.id, slot.start_ts) not in offered
            and offer_expiry(now, slot, lead, deps.settings.waiting_offer_hours) - now >= min_offer
        ]
        if not slots:
            continue
        offer = await _place(conn, deps, wish, slots, busy, lead, now, only_point=freed.service_point)
        if offer is None:
            unserved = True
            continue
        placed += 1
        wishes.remove(wish)
        offered.add((wish.id, int(offer.start.timestamp())))
        busy = await db.fetch_busy(conn, config.location_id, freed.group_id, freed.start, freed.end, now)
    if not unserved:
        return placed, None
    return placed, await wdb.blocking_hold_expiry(
        conn, config.location_id, freed.group_id, freed.start, freed.end, now
    )


async def _place(
    conn: asyncpg.Connection,
    deps: Deps,
    wish: Wish,
    slots: list[Slot],
    busy: BusyMap,
    lead: LeadTime,
    now: datetime,
    *,
    only_point: int | None,
) -> Offer | None:
    for slot in slots:
        for point in free_points(slot, busy):
            if only_point is not None and point != only_point:
                continue  # exactly the freed place: the others of that time were free before
            offer = Offer(
                id=uuid.uuid4(),
                wish_id=wish.id,
                status="open",
                location_id=wish.location_id,
                group_id=slot.group_id,
                service_point=point,
                start=slot.start,
                end=slot.end,
                evening=slot.evening,
                expires_at=offer_expiry(now, slot, lead, deps.settings.waiting_offer_hours),
                offered_at=now,
            )
            if await wdb.place_offer(
                conn,
                offer_id=offer.id,
                wish=wish,
                group_id=slot.group_id,
                point=point,
                start=slot.start,
                end=slot.end,
                evening=slot.evening,
                expires_at=offer.expires_at,
                now=now,
            ):
                offered = await wdb.set_status(conn, wish.id, WishStatus.OFFERED, now)
                # The offer mail's reports name this revision (R45: only a delivered offer is missed).
                await wdb.set_offered_revision(conn, offer.id, offered.revision)
                offer = dataclasses.replace(offer, offered_revision=offered.revision)
                await _publish(
                    conn, deps, WaitingOfferedV1(wish=snapshot(deps, offered), offer=offer_snapshot(offer))
                )
                log.info("wish_offered", wish_id=str(wish.id), location_id=wish.location_id)
                return offer
    return None


async def erase_personal_data(conn: asyncpg.Connection, cutoff: datetime, now: datetime, clock: Clock) -> int:
    """R34: wishes that ended before `cutoff` lose their personal data, in booking's retention run
    (`retention.py`, so that the deletion report counts them); the notifier erases its copy on
    `waiting.personal_data_erased`."""
    erased = await wdb.erase_ended(conn, cutoff, now, BATCH)
    for wish_id in erased:
        await add_event(
            conn, WaitingPersonalDataErasedV1(wish_id=wish_id, erased_at=now), producer=PRODUCER, clock=clock
        )
    WISHES.labels("personal_data_erased").inc(len(erased))
    await delete_published_about(conn, "wish", erased)
    await conn.execute("DELETE FROM waiting_freed WHERE done_at < $1", cutoff)
    await conn.execute("DELETE FROM waiting_catalog_changes WHERE done_at < $1", cutoff)
    return len(erased)


# --- staff --------------------------------------------------------------------------------------------


async def staff_waiting_list(deps: Deps, location_id: str) -> StaffWaitingListOut:
    """The location's waiting list per concern: counts and ages, and the wishes with their contact data
    (the caller's role at this location is checked by the handler)."""
    now = deps.clock.now()
    rows = await wdb.staff_list(deps.pool, location_id)
    try:
        config: LocationConfig | None = await deps.catalog.get(deps.pool, location_id)
    except NotFoundError:
        config = None

    def german_name(concern_id: str, stored: str) -> str:
        """Staff read the catalog's German name; a wish keeps it in the customer's language."""
        offer = config.concern(concern_id) if config else None
        return local_text(offer.name, "de") if offer else stored

    per_concern: dict[str, list[tuple[Wish, Offer | None]]] = {}
    for wish, offer in rows:
        per_concern.setdefault(wish.concern_id, []).append((wish, offer))
    concerns = []
    for concern_id, entries in per_concern.items():
        oldest = min(wish.registered_at for wish, _ in entries)
        concerns.append(
            StaffConcernWaitingOut(
                concern_id=concern_id,
                concern_name=german_name(concern_id, entries[0][0].concern_name),
                pending_opt_in=sum(1 for w, _ in entries if w.status is WishStatus.PENDING_OPT_IN),
                waiting=sum(1 for w, _ in entries if w.status is WishStatus.WAITING),
                offered=sum(1 for w, _ in entries if w.status is WishStatus.OFFERED),
                oldest_registered_at=_berlin(oldest),
                oldest_age_days=(now - oldest).days,
                wishes=[
                    StaffWishOut(
                        id=wish.id,
                        reference=wish.reference,
                        status=wish.status,
                        mode=Mode(wish.mode),
                        registered_at=_berlin(wish.registered_at),
                        age_days=(now - wish.registered_at).days,
                        weekdays=sorted(wish.criteria.weekdays),
                        earliest=wish.criteria.earliest,
                        latest=wish.criteria.latest,
                        latest_date=wish.criteria.latest_date,
                        customer=_customer_out(wish),
                        offer=_offer_out(offer) if offer is not None else None,
                    )
                    for wish, offer in entries
                ],
            )
        )
    return StaffWaitingListOut(location_id=location_id, concerns=concerns)
