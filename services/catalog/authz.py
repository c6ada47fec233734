"""Who may call the catalog's admin API (defence in depth behind the gateway, I5): every admin route needs
the staff identity the gateway verified and signed; a change needs a role that may change the catalog
there: a group leader or more at the location of the path, or for the central tables (the concern
catalogue, the allow-list, the finder, new locations) an administrator. The finer rules (which fields a
group leader may change, the capacity check of R20) stay in the gateway's rule table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.identity import Role
from shared.web import staff_identity

ADMIN_PREFIX = "/api/v1/admin/"
# Changes of a location's own parts, reached by an id of theirs rather than the location's.
_PARTS = ("/api/v1/admin/groups/", "/api/v1/admin/windows/", "/api/v1/admin/closures/")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def admin_guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path.startswith(ADMIN_PREFIX):
        identity = staff_identity(request)  # 401 without a valid signature
        if request.method not in _READS:
            location = request.match_info.get("location_id")
            if location is not None and request.path.startswith(f"{ADMIN_PREFIX}locations/{location}/"):
                identity.require(Role.GROUP_LEADER, location)
            elif location is not None and request.method == "PATCH":
                identity.require(Role.LOCATION_ADMIN, location)
            elif request.path.startswith(_PARTS):
                identity.require(Role.GROUP_LEADER)
            else:
                identity.require(Role.ADMIN)
    return await handler(request)
