"""Dead letters for administrators (I4): every service with consumers lists its dead letters and
replays one. The gateway routes `/api/v1/admin/<service>/dead-letters` here, for administrators only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shared.consumer import list_dead_letters, replay_dead_letter
from shared.errors import NotFoundError
from shared.identity import Role
from shared.web import BROKER, POOL, staff_identity

routes = web.RouteTableDef()


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {key: (value.isoformat() if hasattr(value, "isoformat") else value) for key, value in row.items()}


@routes.get("/api/v1/admin/dead-letters")
async def get_dead_letters(request: web.Request) -> web.Response:
    staff_identity(request).require(Role.ADMIN)
    include_replayed = request.query.get("include_replayed") in ("1", "true")
    rows = await list_dead_letters(request.app[POOL], include_replayed=include_replayed)
    return web.json_response([_public(r) for r in rows])


@routes.post("/api/v1/admin/dead-letters/{dead_letter_id:\\d+}/replay")
async def post_replay(request: web.Request) -> web.Response:
    staff_identity(request).require(Role.ADMIN)
    dead_letter_id = int(request.match_info["dead_letter_id"])
    if not await replay_dead_letter(request.app[POOL], request.app[BROKER], dead_letter_id):
        raise NotFoundError("No such dead letter waiting for replay.")
    return web.json_response({"id": dead_letter_id, "status": "replayed"})
