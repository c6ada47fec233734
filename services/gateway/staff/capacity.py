"""R20: a change of time windows or capacity never drops booked appointments silently.

Before the gateway forwards such a change to the catalog it works out the group's windows (and closures)
as they would be afterwards, and asks booking which booked appointments would then have no service point
(`POST /api/v1/staff/locations/{id}/capacity-check`). If there are any, the change is refused with 409
`capacity_conflict`, listing them without personal data (id, reference, start, end, group, service point,
reason); with `confirm_affected: true` (in the JSON body, or `?confirm_affected=true` for a DELETE) it is
applied and the answer lists them for explicit handling (moving or cancelling them: the staff work's mass
change, R44). If booking cannot answer, the change is not made (503): never silently.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from services.gateway.staff import upstream
from services.gateway.staff.catalog_index import CATALOG_INDEX
from services.gateway.staff.keys import LOCATION
from services.gateway.staff.rules import CONFIRM_AFFECTED, CapacityChange
from shared.errors import ConflictError, UnavailableError

CONFIRM = CONFIRM_AFFECTED
WINDOW_FIELDS = ("weekday", "start", "end", "service_points", "evening", "valid_from", "valid_until")


class CapacityConflictError(ConflictError):
    code = "capacity_conflict"


def confirmed_and_body(request: web.Request, data: Any) -> tuple[bool, bytes | None]:
    """Whether the change is confirmed, and the body to forward without the gateway's own field."""
    confirmed = request.query.get(CONFIRM, "").lower() == "true"
    if isinstance(data, dict) and CONFIRM in data:
        confirmed = confirmed or data.get(CONFIRM) is True
        rest = {k: v for k, v in data.items() if k != CONFIRM}
        return confirmed, json.dumps(rest).encode()
    return confirmed, None


def _window(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: raw.get(k) for k in WINDOW_FIELDS if k in raw}


def _stale(data: Any, current: dict[str, Any] | None) -> bool:
    """The change was made against another version of the window or group than the current one: the
    catalog refuses it (409 `stale`), so there is nothing to confirm; a list of appointments affected by
    values that are no longer there would only mislead."""
    expected = data.get("expected_version") if isinstance(data, dict) else None
    return isinstance(expected, str) and current is not None and expected != current.get("version")


async def proposal(
    request: web.Request, change: CapacityChange, data: Any
) -> tuple[str, dict[str, Any]] | None:
    """(location, what to ask booking) for the change, or None when it cannot reduce anything."""
    location = request[LOCATION]
    status, details = await upstream.call(request, "catalog", "GET", f"/api/v1/admin/locations/{location}")
    if status != 200 or not isinstance(details, dict):
        return None  # the catalog will answer the change itself (404, 503 ...)
    request.app[CATALOG_INDEX].learn(location, details)
    groups = {str(g["id"]): g for g in details.get("groups") or []}
    windows = details.get("windows") or []

    def group_proposal(
        group_id: str, new_windows: list[dict[str, Any]], points: int | None = None
    ) -> dict[str, Any]:
        group = groups.get(group_id, {})
        return {
            "group_id": group_id,
            "service_points": points if points is not None else int(group.get("service_points") or 0),
            "windows": [_window(w) for w in new_windows],
        }

    if change in (CapacityChange.WINDOW_UPDATE, CapacityChange.WINDOW_DELETE):
        window_id = request.match_info["window_id"]
        current = next((w for w in windows if str(w.get("id")) == window_id), None)
        if current is None:
            return None
        group_id = str(current["group_id"])
        others = [w for w in windows if str(w["group_id"]) == group_id and str(w.get("id")) != window_id]
        if change is CapacityChange.WINDOW_UPDATE:
            if not isinstance(data, dict) or _stale(data, current):
                return None
            others.append({**_window(current), **_window(data)})
        return location, {"groups": [group_proposal(group_id, others)], "closures": []}
    if change in (CapacityChange.GROUP_UPDATE, CapacityChange.GROUP_DELETE):
        group_id = request.match_info["group_id"]
        own = [w for w in windows if str(w["group_id"]) == group_id]
        if change is CapacityChange.GROUP_DELETE:
            return location, {"groups": [group_proposal(group_id, [], 0)], "closures": []}
        if not isinstance(data, dict) or _stale(data, groups.get(group_id)):
            return None
        if data.get("active") is False:  # a deactivated group offers nothing any more
            return location, {"groups": [group_proposal(group_id, [], 0)], "closures": []}
        points = data.get("service_points")
        if not isinstance(points, int) or isinstance(points, bool):
            return None  # neither the capacity nor the group's availability changes
        return location, {"groups": [group_proposal(group_id, own, points)], "closures": []}
    if change is CapacityChange.CLOSURE_CREATE and isinstance(data, dict):
        closure = {k: data.get(k) for k in ("first", "last", "group_id")}
        closure["service_points_left"] = data.get("service_points_left") or 0
        return location, {"groups": [], "closures": [closure]}
    return None


async def affected_by(request: web.Request, change: CapacityChange, data: Any) -> list[dict[str, Any]]:
    """The booked appointments the change would leave without a service point (booking decides)."""
    found = await proposal(request, change, data)
    if found is None:
        return []
    location, body = found
    status, answer = await upstream.call(
        request, "booking", "POST", f"/api/v1/staff/locations/{location}/capacity-check", json=body
    )
    if status == 422:
        return []  # booking cannot read the proposal: the catalog validates the change itself
    if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("affected"), list):
        raise UnavailableError(
            "Booked appointments could not be checked against this change; it was not made. Please try again."
        )
    return [a for a in answer["affected"] if isinstance(a, dict)]


def conflict(affected: list[dict[str, Any]]) -> CapacityConflictError:
    return CapacityConflictError(
        f"{len(affected)} booked appointment(s) would lose their service point. Move or cancel them, or "
        f"send the change again with {CONFIRM}: true to apply it and handle them explicitly.",
        details=affected,
    )


def with_affected(response: web.StreamResponse, affected: list[dict[str, Any]]) -> web.StreamResponse:
    """The upstream's JSON answer with the affected appointments added (for handling them)."""
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | bytearray):
        return response
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return response
    if not isinstance(data, dict):
        return response
    data["affected_appointments"] = affected
    answer = web.json_response(data, status=response.status)
    for name in ("Cache-Control", "Location"):
        if name in response.headers:
            answer.headers[name] = response.headers[name]
    return answer
