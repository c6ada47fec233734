"""R20, R44: a mass change when a location closes or a group loses capacity for a day or a few days.

`preview` lists the booked appointments of the days `date`..`last` (at most 31; `last` defaults to
`date`) that lose their place (on a service point beyond the points left; all of them when none is
left) and proposes for each the next equivalent free slot: the same location, group, concern, mode and
duration, not in the evening unless the original was, later on the remaining points of those days or on
the days after `last` (up to four weeks). Never on a closed point within the range: a customer of a
closure of several days is moved once, out of it, and gets one notice. The preview is stored under
its id without personal data. `apply` with that id moves or cancels each one in one transaction: the
exclusion constraint decides every placement (I1; a slot taken meanwhile falls back to the slot's other
points, else the appointment is left as it is for staff, as is one booked after the preview or changed
since), each customer moved or cancelled gets exactly one mail (`appointment.rescheduled`, with the
updated calendar invitation, or `appointment.cancelled`), and the preview's id is the key: applying it
again changes nothing and answers with the first result.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.booking import db, staff_db
from services.booking.api import DEPS, NO_STORE, _location_id
from services.booking.domain import Appointment, Busy, LocationConfig, candidate_slots, free_points
from services.booking.service import PRODUCER, Deps, manage_url, snapshot_of
from services.booking.staff_service import actor_of, day_bounds, today
from shared.calendar import CalendarDay
from shared.clock import BERLIN
from shared.closures import check_points_left
from shared.errors import NotFoundError, UnavailableError, ValidationError
from shared.events.appointment import (
    AppointmentCancelledV1,
    AppointmentRescheduledV1,
    AppointmentStatus,
    CancelledBy,
    SystemReason,
)
from shared.identity import Role, StaffIdentity
from shared.outbox import add_event
from shared.reasons import worded
from shared.web import parse_json, staff_identity

log = structlog.get_logger(__name__)

routes = web.RouteTableDef()

SEARCH_DAYS = 28
# How long applying waits for the catalog's capacity of the day to arrive (it takes milliseconds normally);
# well within the gateway's upstream timeout (10 s), which would take the closure back after moves made.
CATALOG_WAIT_SECONDS = 3.0
CATALOG_POLL_SECONDS = 0.1
# The longest range one mass change covers: a closure of a few weeks (holidays, a move of the office);
# a longer one is planned otherwise, and one preview must stay readable.
MAX_DAYS = 31
CANCEL_REASON = worded("cancellation", SystemReason.MASS_CHANGE, "de")  # German: the file's wording


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    date: CalendarDay
    # The last day of the change (the closure's last day), at most MAX_DAYS - 1 after `date`.
    last: CalendarDay | None = None
    group_id: Annotated[str | None, Field(max_length=64)] = None
    service_points_left: Annotated[int, Field(ge=0, le=200)] = 0


class ApplyIn(BaseModel):
    """The preview to apply. A caller that has set the capacity in the catalog first (the staff page: a
    closure or restriction of the day or days) names the days, group and points it set; applying answers
    422 when they are not those of the preview, so capacity and moves cannot drift apart."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    preview_id: uuid.UUID
    date: CalendarDay | None = None
    last: CalendarDay | None = None  # the preview's last day; none: `date` (a one-day change)
    group_id: Annotated[str | None, Field(max_length=64)] = None
    service_points_left: Annotated[int | None, Field(ge=0, le=200)] = None
    # The catalog's revision of the location that holds that capacity (its `published_revision`): the
    # moves wait until booking's copy has it, so that the places they free are not sold again, or offered
    # from the waiting list, on a day booking still takes for open.
    catalog_revision: Annotated[int | None, Field(ge=1)] = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(BERLIN).isoformat()


def _free(
    busy: dict[tuple[str, int], Busy],
    claimed: list[tuple[str, int, int, int]],
    group: str,
    point: int,
    start: int,
    end: int,
) -> bool:
    occupied = busy.get((group, point))
    if occupied is not None and not occupied.is_free(start, end):
        return False
    return not any(g == group and p == point and s < end and start < e for g, p, s, e in claimed)


def _require_may_change(identity: StaffIdentity, location_id: str, group_id: str | None) -> None:
    """A group's day is for its leaders; the whole location's day for its administrators (the catalog's
    rule for closures, which the gateway applies when it saves the day's capacity)."""
    if group_id is None:
        identity.require(Role.LOCATION_ADMIN, location_id)
    else:
        identity.require(Role.GROUP_LEADER, location_id, group_id)


def _require_range(first: date, last: date) -> None:
    if not first <= last < first + timedelta(days=MAX_DAYS):
        raise ValidationError(
            f"The last day must be on or after the first day, at most {MAX_DAYS} days in all.",
            details=[{"field": "last", "message": f"from date, at most {MAX_DAYS} days"}],
        )


def _require_not_over(deps: Deps, request: PreviewIn) -> None:
    """A change whose last day is over has nothing left to move, and the closure it stands for is refused
    by the catalog (`in_the_past`): mostly a slip of the year. One that began earlier and lasts until
    today still changes today."""
    if (request.last or request.date) < today(deps):
        field = "last" if request.last is not None else "date"
        message = "the last day is before today (Europe/Berlin)"
        raise ValidationError(
            f"Invalid {field}: {message}.",
            details=[{"field": field, "message": message, "type": "in_the_past"}],
        )


def _require_points_left(config: LocationConfig, group_id: str | None, points_left: int) -> None:
    """The catalog's rule for the closure the change stands for (`shared.closures`), on booking's copy of
    the groups: more service points left than the group has (the whole location: its largest group)
    restricts nothing, and confirming it would be refused by the catalog. A group gone since the preview
    is the catalog's to judge when the closure is saved."""
    if group_id is None:
        check_points_left(points_left, [g.service_points for g in config.groups.values()])
    elif group_id in config.groups:
        check_points_left(points_left, [config.groups[group_id].service_points])


async def preview(
    deps: Deps, identity: StaffIdentity, location_id: str, request: PreviewIn
) -> dict[str, Any]:
    _require_may_change(identity, location_id, request.group_id)
    last = request.last or request.date
    _require_range(request.date, last)
    _require_not_over(deps, request)
    now = deps.clock.now()
    config = await deps.catalog.get(deps.pool, location_id)
    if request.group_id is not None and request.group_id not in config.groups:
        raise ValidationError(
            "There is no such group.", details=[{"field": "group_id", "message": "not a group here"}]
        )
    _require_points_left(config, request.group_id, request.service_points_left)
    since, until = day_bounds(request.date, last)
    affected = await staff_db.affected_by_capacity(
        deps.pool, location_id, since, until, request.group_id, request.service_points_left
    )
    horizon_end = day_bounds(request.date, last + timedelta(days=SEARCH_DAYS))[1]
    busy_of: dict[str, dict[tuple[str, int], Busy]] = {}
    claimed: list[tuple[str, int, int, int]] = []
    proposals: list[dict[str, Any]] = []
    answer: list[dict[str, Any]] = []
    for a in affected:
        if a.group_id not in busy_of:
            busy_of[a.group_id] = await db.fetch_busy(
                deps.pool, location_id, a.group_id, since, horizon_end, now
            )
        proposal = _propose(config, a, request, busy_of[a.group_id], claimed, now)
        proposals.append(
            {
                "appointment_id": str(a.id),
                "revision": a.revision,
                **(proposal or {"action": "cancel"}),
            }
        )
        answer.append(
            {
                "appointment_id": str(a.id),
                "reference": a.reference,
                "start": _iso(a.start),
                "group": a.group_id,
                "service_point": a.service_point,
                "concern": a.concern_id,
                "mode": a.mode,
                "customer": {"first_name": a.first_name, "last_name": a.last_name},
                "action": proposal["action"] if proposal else "cancel",
                "proposed_start": proposal["start"] if proposal else None,
                "proposed_service_point": proposal["service_point"] if proposal else None,
            }
        )
    change_id = uuid.uuid4()
    await staff_db.insert_mass_change(
        deps.pool,
        change_id=change_id,
        location_id=location_id,
        day=request.date,
        last_day=last,
        group_id=request.group_id,
        points_left=request.service_points_left,
        proposals=proposals,
        actor=actor_of(identity),
        now=now,
    )
    return {
        "id": str(change_id),
        "date": request.date.isoformat(),
        "last": last.isoformat(),
        "affected": answer,
    }


def _propose(
    config: Any,
    a: Appointment,
    request: PreviewIn,
    busy: dict[tuple[str, int], Busy],
    claimed: list[tuple[str, int, int, int]],
    now: datetime,
) -> dict[str, Any] | None:
    concern = config.concern(a.concern_id)
    if concern is None or concern.group_id != a.group_id or a.mode not in {m.value for m in concern.modes}:
        return None
    duration = a.end - a.start
    last = request.last or request.date
    # Past the customers' horizon too (R19 limits customers): near it the four weeks after a closure
    # would shrink to a day or none, and its customers be cancelled though later places are free.
    until = last + timedelta(days=SEARCH_DAYS)
    for slot in candidate_slots(config, concern, request.date, until, now, horizon=False):
        # Within the changed days only on the points that stay, and never earlier than the original: a
        # closure's customer is moved out of all of its days at once (one notice, R44), not into its rest.
        in_range = request.date <= slot.start.astimezone(BERLIN).date() <= last
        if in_range and slot.start <= a.start:
            continue
        if slot.end - slot.start != duration or (slot.evening and not a.evening):
            continue
        restricted = in_range and request.group_id in (None, a.group_id)
        for point in free_points(slot, busy):
            if restricted and point > request.service_points_left:
                continue
            if not _free(busy, claimed, slot.group_id, point, slot.start_ts, slot.end_ts):
                continue
            claimed.append((slot.group_id, point, slot.start_ts, slot.end_ts))
            return {
                "action": "move",
                "group_id": slot.group_id,
                "service_point": point,
                "start": slot.start.isoformat(),
                "end": slot.end.isoformat(),
                "evening": slot.evening,
                # The points a move may fall back to when this one was taken meanwhile: on a day the
                # change restricts, only those that stay open.
                "points": min(slot.points, request.service_points_left) if restricted else slot.points,
            }
    return None


def _last_of(change: Any) -> date:
    """The preview's last day (one of before a range was possible: its only day)."""
    last: date = change["last_day"] or change["day"]
    return last


def _check_matches(change: Any, request: ApplyIn) -> None:
    if request.date is None:
        return
    wanted = (request.date, request.last or request.date, request.group_id, request.service_points_left)
    if wanted != (change["day"], _last_of(change), change["group_id"], change["service_points_left"]):
        raise ValidationError(
            "The days, group or service points are not those of the preview.",
            details=[{"field": "preview_id", "message": "belongs to other days, group or capacity"}],
        )


async def _preview_for(
    conn: asyncpg.Connection, identity: StaffIdentity, location_id: str, request: ApplyIn
) -> Any:
    """The preview to apply, locked for this transaction, when this staff member may apply it as asked."""
    change = await staff_db.lock_mass_change(conn, request.preview_id)
    if change is None or change["location_id"] != location_id:
        raise NotFoundError("There is no such mass change preview.")
    _require_may_change(identity, location_id, change["group_id"])
    _check_matches(change, request)
    return change


async def _await_catalog(deps: Deps, location_id: str, revision: int | None) -> None:
    """Wait (a few seconds at most) until booking's copy of the location has the catalog's `revision`:
    the catalog's event travels through the outbox and the broker."""
    if revision is None:
        return
    waited = 0.0
    while (await deps.catalog.get(deps.pool, location_id)).revision < revision:
        if waited >= CATALOG_WAIT_SECONDS:
            raise UnavailableError(
                "The location's new capacity has not reached booking yet; nothing was moved. Try again in"
                " a moment."
            )
        await asyncio.sleep(CATALOG_POLL_SECONDS)
        waited += CATALOG_POLL_SECONDS


# A deadlock with a staff member's or a customer's change of one of the appointments aborts the
# whole transaction; the next attempt sees that change.
APPLY_ATTEMPTS = 3


async def apply(deps: Deps, identity: StaffIdentity, location_id: str, request: ApplyIn) -> dict[str, Any]:
    if request.catalog_revision is not None:
        async with deps.pool.acquire() as conn:
            await _preview_for(conn, identity, location_id, request)  # refused at once, not after waiting
        await _await_catalog(deps, location_id, request.catalog_revision)
    for _attempt in range(APPLY_ATTEMPTS):
        try:
            return await _apply_once(deps, identity, location_id, request)
        except db.RetryableError:
            continue  # a deadlock with a concurrent change of one of the appointments: nothing committed
    raise UnavailableError("Other changes kept getting in the way; nothing was moved. Try again in a moment.")


async def _apply_once(
    deps: Deps, identity: StaffIdentity, location_id: str, request: ApplyIn
) -> dict[str, Any]:
    """One attempt in one transaction: the preview's moves and cancellations, or nothing."""
    preview_id = request.preview_id
    now = deps.clock.now()
    actor = actor_of(identity)
    moved: list[str] = []
    cancelled: list[str] = []
    skipped: list[Appointment] = []
    async with db.transaction(deps.pool) as conn:
        change = await _preview_for(conn, identity, location_id, request)
        if change["applied_at"] is not None:
            return {"to_check": [], **change["result"], "already_applied": True}
        # The groups may have shrunk since the preview (or it was made before the preview checked them):
        # refused before anything moves, so that no moves are made for a closure the catalog refuses.
        config = await deps.catalog.get(conn, location_id)
        _require_points_left(config, change["group_id"], change["service_points_left"])
        for proposal in change["proposals"]:
            found = await db.find_appointment(conn, uuid.UUID(proposal["appointment_id"]), for_update=True)
            if found is None:
                continue
            a = found[0]
            if a.status != AppointmentStatus.BOOKED or a.revision != proposal["revision"] or a.start <= now:
                skipped.append(a)  # changed since the preview: staff look at it again
                continue
            result = await _move(conn, a, proposal, now) if proposal["action"] == "move" else None
            url = manage_url(deps.settings, a.id, None)
            if result is None and proposal["action"] == "move":
                skipped.append(a)  # its new place was taken meanwhile: not cancelled without staff seeing it
            elif result is not None:
                await add_event(
                    conn,
                    AppointmentRescheduledV1(
                        appointment=snapshot_of(result, url),
                        previous_start=a.start,
                        previous_end=a.end,
                        reason_code=SystemReason.MASS_CHANGE,
                    ),
                    producer=PRODUCER,
                    clock=deps.clock,
                )
                await staff_db.add_history(
                    conn,
                    result,
                    "mass_change_moved",
                    actor,
                    now,
                    {"mass_change": str(preview_id), "previous_start": _iso(a.start)},
                )
                moved.append(str(a.id))
            else:
                gone = await db.mark_cancelled(conn, a.id, now, CancelledBy.STAFF.value, CANCEL_REASON)
                await add_event(
                    conn,
                    AppointmentCancelledV1(
                        appointment=snapshot_of(gone, url),
                        cancelled_by=CancelledBy.STAFF,
                        reason=CANCEL_REASON,
                        reason_code=SystemReason.MASS_CHANGE,
                    ),
                    producer=PRODUCER,
                    clock=deps.clock,
                )
                await staff_db.add_history(
                    conn, gone, "mass_change_cancelled", actor, now, {"mass_change": str(preview_id)}
                )
                cancelled.append(str(a.id))
        # Booked after the preview (before the days' capacity was saved): nobody has looked at these yet.
        since, until = day_bounds(change["day"], _last_of(change))
        handled = {p["appointment_id"] for p in change["proposals"]}
        for late in await staff_db.affected_by_capacity(
            conn, location_id, since, until, change["group_id"], change["service_points_left"]
        ):
            if str(late.id) not in handled and late.start > now:
                skipped.append(late)
        outcome = {
            "id": str(preview_id),
            "moved": moved,
            "cancelled": cancelled,
            "skipped": [str(a.id) for a in skipped],
            # What staff still have to look at: booked on the days the change is about (one the customer
            # cancelled or moved away meanwhile is theirs no longer).
            "to_check": [
                {"appointment_id": str(a.id), "reference": a.reference, "start": _iso(a.start)}
                for a in skipped
                if a.status == AppointmentStatus.BOOKED and since <= a.start < until
            ],
        }
        await staff_db.finish_mass_change(conn, preview_id, outcome, actor, now)
    log.info("mass_change_applied", location_id=location_id, moved=len(moved), cancelled=len(cancelled))
    return {**outcome, "already_applied": False}


async def _move(conn: Any, a: Appointment, proposal: dict[str, Any], now: datetime) -> Appointment | None:
    start = datetime.fromisoformat(proposal["start"])
    end = datetime.fromisoformat(proposal["end"])
    group = proposal["group_id"]
    busy = await db.fetch_busy(conn, a.location_id, group, start, end, now, except_appointment=a.id)
    points = [proposal["service_point"]] + [
        p for p in range(1, int(proposal["points"]) + 1) if p != proposal["service_point"]
    ]
    for point in points:
        occupied = busy.get((group, point))
        if occupied is not None and not occupied.is_free(int(start.timestamp()), int(end.timestamp())):
            continue
        result = await db.move_appointment(
            conn,
            a,
            group_id=group,
            point=point,
            start=start,
            end=end,
            evening=bool(proposal["evening"]),
            evening_declared=a.evening_declared or bool(proposal["evening"]),
            now=now,
        )
        if result is not None:
            return result
    return None


@routes.post("/api/v1/staff/locations/{location_id}/mass-change/preview")
async def post_preview(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    body = await parse_json(request, PreviewIn)
    found = await preview(request.app[DEPS], identity, _location_id(request), body)
    return web.json_response(found, status=201, headers=NO_STORE)


@routes.post("/api/v1/staff/locations/{location_id}/mass-change/apply")
async def post_apply(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    body = await parse_json(request, ApplyIn)
    found = await apply(request.app[DEPS], identity, _location_id(request), body)
    return web.json_response(found, headers=NO_STORE)
