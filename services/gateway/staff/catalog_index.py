"""Where a catalog entity belongs: the location (and group) of a group, window or closure id.

The catalog's admin API addresses groups, windows and closures by their own ids (`/api/v1/admin/windows/
{window_id}`), so the gateway looks their location up before it checks a rule. A group never moves to
another location and its id never comes back at another one (the catalog keeps deleted groups' ids bound
to their location: migration 003), so what is known stays true; an unknown id triggers one
refresh from the catalog (at most one at a time, and not more often than every second), and is 404 if it
is still unknown. What is created through the gateway is learnt from the catalog's answer at once. The
catalog is asked with the gateway's own signed identity (read-only calls).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web

from services.gateway.staff import upstream
from shared.errors import NotFoundError
from shared.identity import Grant, IdentityKind, Role, StaffIdentity
from shared.web import CLOCK

log = structlog.get_logger(__name__)

SYSTEM_SUBJECT = "system:gateway"
REFRESH_AT_MOST_EVERY = 1.0


def system_identity(request: web.Request) -> StaffIdentity:
    return StaffIdentity(
        subject=SYSTEM_SUBJECT,
        kind=IdentityKind.USER,
        grants=(Grant(role=Role.ADMIN, locations=("*",)),),
        issued_at=request.app[CLOCK].now(),
    )


class CatalogIndex:
    def __init__(self) -> None:
        self._known: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._lock = asyncio.Lock()
        self._refreshed = -REFRESH_AT_MOST_EVERY

    def remember(self, kind: str, key: str, location: str, group: str | None) -> None:
        self._known[(kind, key)] = (location, group)

    async def locate(self, request: web.Request, kind: str, key: str) -> tuple[str, str | None]:
        found = self._known.get((kind, key))
        if found is not None:
            return found
        missed_at = time.monotonic()
        async with self._lock:
            found = self._known.get((kind, key))
            if found is None and self._refreshed <= missed_at:
                # Not more than one refresh a second (a signed-in caller cannot make the gateway scan the
                # catalog in a loop); a miss waits for the next one rather than failing.
                pause = REFRESH_AT_MOST_EVERY - (time.monotonic() - self._refreshed)
                if pause > 0:
                    await asyncio.sleep(pause)
                await self._refresh(request)
                found = self._known.get((kind, key))
        if found is None:
            raise NotFoundError("Not found.")
        return found

    async def _refresh(self, request: web.Request) -> None:
        self._refreshed = time.monotonic()  # when this refresh started: it sees what existed by then
        identity = system_identity(request)
        status, locations = await upstream.call(
            request, "catalog", "GET", "/api/v1/admin/locations", identity=identity
        )
        if status != 200 or not isinstance(locations, list):
            log.warning("catalog_index_refresh_failed", status=status)
            return
        for location in locations:
            location_id = str(location.get("id")) if isinstance(location, dict) else ""
            if not location_id:
                continue
            status, details = await upstream.call(
                request, "catalog", "GET", f"/api/v1/admin/locations/{location_id}", identity=identity
            )
            if status == 200 and isinstance(details, dict):
                self.learn(location_id, details)

    def learn(self, location_id: str, details: dict[str, Any]) -> None:
        """Remember the entities of one location's details (`GET /api/v1/admin/locations/{id}`)."""
        for group in details.get("groups") or []:
            self.remember("group", str(group["id"]), location_id, str(group["id"]))
        for window in details.get("windows") or []:
            self.remember("window", str(window["id"]), location_id, str(window["group_id"]))
        for closure in details.get("closures") or []:
            group_id = closure.get("group_id")
            self.remember("closure", str(closure["id"]), location_id, str(group_id) if group_id else None)


CATALOG_INDEX = web.AppKey("staff_catalog_index", CatalogIndex)


def learn_created(
    request: web.Request,
    api_route: str,
    location: str | None,
    group: str | None,
    data: object,
    answer: object,
) -> None:
    """After a 2xx creation through the gateway: remember the new group, window or closure."""
    index = request.app[CATALOG_INDEX]
    new_id = answer.get("id") if isinstance(answer, dict) else None
    if not location or new_id is None:
        return
    if api_route == "/api/v1/admin/locations/{location_id}/groups":
        index.remember("group", str(new_id), location, str(new_id))
    elif api_route == "/api/v1/admin/groups/{group_id}/windows":
        index.remember("window", str(new_id), location, group)
    elif api_route == "/api/v1/admin/locations/{location_id}/closures":
        named = data.get("group_id") if isinstance(data, dict) else None
        index.remember("closure", str(new_id), location, str(named) if named else None)
