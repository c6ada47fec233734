"""The capacity a mass change stands for (R20, R44), saved in the catalog before the moves.

Moving the appointments of a day alone would leave their places free for the next customers on a day
nobody works. So confirming a mass change, on the staff page or through the API, first saves a closure
of the location or group (0 service points left) or a restriction to points 1..n, one for the whole
range `date`..`last` (`last` defaults to `date`), then applies the preview; when the moves fail, the
closure just added is taken back. Saving the same closure again adds none (the catalog's rule), so a
repeated confirmation changes nothing.

Closing or restricting the whole location is for its administrators (the catalog's rule for closures); a
group leader names one of their groups.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import structlog
from aiohttp import web

from services.gateway.proxy import forward
from services.gateway.staff.authz import json_body
from services.gateway.staff.forwarding import Handler, apply_change, audit_upstream_change
from services.gateway.staff.keys import IDENTITY
from services.gateway.staff.rules import Forwarded
from services.gateway.staff.upstream import api_path, identity_headers
from shared.calendar import in_calendar
from shared.errors import OTVError
from shared.identity import Role, StaffIdentity

log = structlog.get_logger(__name__)

CLOSURE_REASON = "Massenänderung"
MAX_POINTS = 200
MAX_DAYS = 31  # booking's longest mass change (services/booking/mass_change.py)
WHOLE_LOCATION_DE = (
    "Betroffen: den ganzen Standort schließen oder einschränken darf nur die Standort-Administration."
    " Bitte wählen Sie eine Gruppe."
)
GROUP_DE = "Diese Gruppe schließen oder einschränken dürfen nur ihre Leitung und die Standort-Administration."


def may_change(request: web.Request, location_id: str, group_id: str | None) -> bool:
    """The catalog's rule for closures: the whole location for its administrators, a group for its
    leaders."""
    identity = request.get(IDENTITY)
    if not isinstance(identity, StaffIdentity):
        return False
    if group_id is None:
        return identity.has(Role.LOCATION_ADMIN, location_id)
    return identity.has(Role.GROUP_LEADER, location_id, group_id)


def last_day(first: date, last: str) -> date | None:
    """The last day of a range from `first` as typed (empty: `first`), or None when it is no day from
    `first` on within MAX_DAYS days, or `first` is no day of the calendar (the range would overflow)."""
    try:
        day = date.fromisoformat(last) if last else first
    except ValueError:
        return None
    if not in_calendar(first):
        return None
    return day if first <= day < first + timedelta(days=MAX_DAYS) else None


def named_capacity(body: Any) -> dict[str, Any] | None:
    """The days, group and points a confirmation names (`date`, optional `last`, `group_id`,
    `service_points_left`), or None when it names no valid days and points (an API client of before:
    only the moves; booking refuses a `last` that is not the preview's)."""
    if not isinstance(body, dict):
        return None
    points = body.get("service_points_left")
    group = body.get("group_id")
    try:
        day = date.fromisoformat(str(body.get("date")))
    except ValueError:
        return None
    last = last_day(day, str(body.get("last") or ""))
    if last is None:
        return None
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= MAX_POINTS:
        return None
    if group is not None and not isinstance(group, str):
        return None
    return {
        "date": day.isoformat(),
        "last": last.isoformat(),
        "group_id": group or None,
        "service_points_left": points,
    }


async def save(request: web.Request, location_id: str, capacity: dict[str, Any]) -> tuple[int, Any]:
    """The closure (0 points left) or restriction of the day or days in the catalog, one for the whole
    range, before anything moves."""
    group_id = capacity.get("group_id")
    if not may_change(request, location_id, group_id):
        message = WHOLE_LOCATION_DE if group_id is None else GROUP_DE
        return 403, {"error": {"code": "forbidden", "message": message, "details": []}}
    closure = {
        "first": capacity["date"],
        "last": capacity.get("last") or capacity["date"],
        "group_id": group_id,
        "reason": CLOSURE_REASON,
        "service_points_left": capacity["service_points_left"],
    }
    try:
        status, answer, _ = await apply_change(
            request,
            "catalog",
            "POST",
            "/api/v1/admin/locations/{location_id}/closures",
            {"location_id": location_id},
            closure,
            entity="closure",
        )
    except OTVError as exc:
        status, answer = exc.status, {"error": {"code": exc.code, "message": exc.message, "details": []}}
    return status, answer


def catalog_revision_of(saved: Any) -> dict[str, int]:
    """What booking's apply waits for: the catalog revision that holds the saved capacity (none when the
    closure existed already, so nothing new has to arrive)."""
    revision = saved.get("published_revision") if isinstance(saved, dict) else None
    return {"catalog_revision": revision} if isinstance(revision, int) else {}


async def undo(request: web.Request, saved: Any) -> None:
    """Remove the closure `save` has just added when the moves failed (a preview that is gone, or one
    for another day); one that existed before (no new revision) stays."""
    if not isinstance(saved, dict) or saved.get("published_revision") is None or "id" not in saved:
        return
    try:
        await apply_change(
            request,
            "catalog",
            "DELETE",
            "/api/v1/admin/closures/{closure_id}",
            {"closure_id": str(saved["id"])},
            None,
            entity="closure",
        )
    except OTVError:
        log.warning("mass_change_closure_left", closure_id=saved["id"])


def make_apply_handler(route: Forwarded) -> Handler:
    """The API's `POST /api/v1/staff/locations/{location_id}/mass-change/apply`, as the staff page does
    it: a confirmation that names `date` (and `last`), `group_id` and `service_points_left` saves that
    capacity in the catalog first and takes it back when booking refuses the moves; one that names none
    (a client of before) only moves."""

    async def handler(request: web.Request) -> web.StreamResponse:
        path = api_path(route.upstream_path, request.match_info) if route.upstream_path else None
        capacity = named_capacity(await json_body(request))
        saved: Any = None
        if capacity is not None:
            status, saved = await save(request, request.match_info["location_id"], capacity)
            if not 200 <= status < 300:
                refused = saved if isinstance(saved, dict) else {"error": {"code": "upstream_error"}}
                return web.json_response(refused, status=status)
        body = None
        if isinstance(saved, dict) and isinstance(saved.get("published_revision"), int):
            body = json.dumps({**await json_body(request), **catalog_revision_of(saved)}).encode()
        headers = identity_headers(request, route.service, path)
        response = await forward(request, route.service, headers, body=body, path=path)
        if 200 <= response.status < 300:
            await audit_upstream_change(request, response)
        elif saved is not None:
            await undo(request, saved)  # nothing moved: the day stays as it was
        return response

    return handler
