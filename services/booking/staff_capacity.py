"""R20: which booked appointments a proposed change of time windows, capacity or closures would leave
without a service point.

`POST /api/v1/staff/locations/{location_id}/capacity-check` (reached through the gateway, which has
checked the group leader's role; checked here again from the signed identity). The gateway sends the
proposed weekly windows (and service points) of the groups it changes, and proposed new closures; the
answer lists every future booked appointment that would then have no place, without personal data:

- a new closure covers its day (of the whole location, or of its group), or a new restriction of its day
  leaves fewer service points than its number;
- no proposed window of its group covers it on its weekday and date (on the Berlin wall clock);
- its service point number lies beyond the capacity left (the window's points, capped by the group's).

An appointment keeps its own service point or is listed: moving it to another point or time is the
explicit handling that follows (the staff work's mass change, R44), never done silently here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from shared.calendar import CalendarDay, WallTime
from shared.clock import BERLIN
from shared.errors import NotFoundError
from shared.identity import Role
from shared.web import CLOCK, POOL, json_model, parse_json, staff_identity

routes = web.RouteTableDef()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowIn(_In):
    weekday: int = Field(ge=0, le=6)
    start: WallTime  # compared with the appointments' Berlin wall-clock times
    end: WallTime
    service_points: int = Field(ge=0, le=200)
    evening: bool = False
    valid_from: CalendarDay | None = None
    valid_until: CalendarDay | None = None


class GroupProposal(_In):
    group_id: str = Field(min_length=1, max_length=64)
    service_points: int = Field(ge=0, le=200)
    windows: list[WindowIn] = Field(max_length=200)


class ClosureIn(_In):
    first: CalendarDay
    last: CalendarDay
    group_id: str | None = Field(default=None, max_length=64)
    service_points_left: int = Field(default=0, ge=0, le=200)


class CapacityCheckIn(_In):
    groups: list[GroupProposal] = Field(default_factory=list, max_length=50)
    closures: list[ClosureIn] = Field(default_factory=list, max_length=50)


class AffectedOut(BaseModel):
    id: str
    reference: str
    start: datetime
    end: datetime
    group_id: str
    service_point: int
    reason: str  # "closed", "no_window" or "no_service_point"


class CapacityCheckOut(BaseModel):
    affected: list[AffectedOut]


@dataclass(frozen=True)
class Booked:
    id: str
    reference: str
    group_id: str
    service_point: int
    start: datetime
    end: datetime


def _covers(window: WindowIn, day: date, start: time, end: time) -> bool:
    if window.weekday != day.weekday():
        return False
    if window.valid_from is not None and day < window.valid_from:
        return False
    if window.valid_until is not None and day > window.valid_until:
        return False
    return window.start <= start and end <= window.end


def why_affected(booked: Booked, check: CapacityCheckIn) -> str | None:
    """Why the appointment would lose its place under the proposal, or None when it keeps it."""
    local_start, local_end = booked.start.astimezone(BERLIN), booked.end.astimezone(BERLIN)
    day = local_start.date()
    for closure in check.closures:
        if closure.first <= day <= closure.last and closure.group_id in (None, booked.group_id):
            if closure.service_points_left == 0:
                return "closed"
            if booked.service_point > closure.service_points_left:
                return "no_service_point"
    proposal = next((g for g in check.groups if g.group_id == booked.group_id), None)
    if proposal is None:
        return None  # its group does not change
    covering = [w for w in proposal.windows if _covers(w, day, local_start.time(), local_end.time())]
    if not covering or local_end.date() != day:
        return "no_window"
    capacity = max(min(w.service_points, proposal.service_points) for w in covering)
    return None if booked.service_point <= capacity else "no_service_point"


async def _booked(conn: asyncpg.Connection, location_id: str, now: datetime) -> list[Booked]:
    rows = await conn.fetch(
        "SELECT id, reference, group_id, service_point, start_at, end_at FROM appointments"
        " WHERE location_id = $1 AND status = 'booked' AND end_at > $2 ORDER BY start_at, reference",
        location_id,
        now,
    )
    return [
        Booked(
            id=str(r["id"]),
            reference=r["reference"],
            group_id=r["group_id"],
            service_point=r["service_point"],
            start=r["start_at"],
            end=r["end_at"],
        )
        for r in rows
    ]


@routes.post("/api/v1/staff/locations/{location_id}/capacity-check")
async def capacity_check(request: web.Request) -> web.Response:
    location_id = request.match_info["location_id"]
    if not 0 < len(location_id) <= 64:
        raise NotFoundError("There is no such location.")
    now = request.app[CLOCK].now()
    identity = staff_identity(request)
    identity.require(Role.GROUP_LEADER, location_id)
    check = await parse_json(request, CapacityCheckIn)
    async with request.app[POOL].acquire() as conn:
        booked = await _booked(conn, location_id, now)
    affected: list[AffectedOut] = []
    for appointment in booked:
        reason = why_affected(appointment, check)
        if reason is not None:
            affected.append(
                AffectedOut(
                    id=appointment.id,
                    reference=appointment.reference,
                    start=appointment.start.astimezone(BERLIN),
                    end=appointment.end.astimezone(BERLIN),
                    group_id=appointment.group_id,
                    service_point=appointment.service_point,
                    reason=reason,
                )
            )
    response = json_model(CapacityCheckOut(affected=affected))
    response.headers["Cache-Control"] = "no-store"
    return response
