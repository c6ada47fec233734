"""Dead letters for administrators (I4): every service with consumers lists its dead letters and
replays one. The gateway routes `/api/v1/admin/<service>/dead-letters` here, for administrators only;
its own (the integrations consumer's) it answers with `listing` and `replay` itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from shared.consumer import list_dead_letters, replay_dead_letter
from shared.errors import NotFoundError
from shared.identity import Role
from shared.openapi import ApiRoute
from shared.web import BROKER, POOL, parse_query, staff_identity

routes = web.RouteTableDef()


class DeadLetterOut(BaseModel):
    """A message its consumer gave up on: what and why, never the customer's data."""

    id: int
    consumer: str
    queue: str
    event_id: str | None
    event_type: str | None
    reason: str
    attempts: int
    dead_at: datetime
    replayed_at: datetime | None


class DeadLetterQuery(BaseModel):
    include_replayed: bool = False


class ReplayedOut(BaseModel):
    id: int
    status: str


def api_routes(service: str) -> tuple[ApiRoute, ApiRoute]:
    """The gateway's two routes of a service's dead letters, for the OpenAPI document."""
    base = f"/api/v1/admin/{service}/dead-letters"
    tags = ("admin: dead letters",)
    return (
        ApiRoute(
            "GET",
            base,
            f"The dead letters of {service}",
            query=DeadLetterQuery,
            response=list[DeadLetterOut],
            errors=("validation_error",),
            tags=tags,
        ),
        ApiRoute(
            "POST",
            base + "/{dead_letter_id}/replay",
            f"Replay a dead letter of {service} to its consumer, with a fresh retry budget",
            response=ReplayedOut,
            # 422: the gateway refuses an id that is not one path segment before forwarding it.
            errors=("not_found", "validation_error"),
            path_params={"dead_letter_id": {"type": "integer", "minimum": 1}},
            tags=tags,
        ),
    )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {key: (value.isoformat() if hasattr(value, "isoformat") else value) for key, value in row.items()}


async def listing(request: web.Request) -> web.Response:
    """The dead letters of this service (`?include_replayed=1`: the replayed ones too); a flag that is no
    boolean is 422, not quietly "false"."""
    query = parse_query(request, DeadLetterQuery)
    rows = await list_dead_letters(request.app[POOL], include_replayed=query.include_replayed)
    return web.json_response([_public(r) for r in rows])


async def replay(request: web.Request) -> web.Response:
    """Publishes one dead letter again, to this service's queue only; 404 when there is none waiting."""
    raw = request.match_info["dead_letter_id"]
    dead_letter_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0
    broker = request.app.get(BROKER)
    if (
        not dead_letter_id
        or broker is None
        or not await replay_dead_letter(request.app[POOL], broker, dead_letter_id)
    ):
        raise NotFoundError("No such dead letter waiting for replay.")
    return web.json_response({"id": dead_letter_id, "status": "replayed"})


@routes.get("/api/v1/admin/dead-letters")
async def get_dead_letters(request: web.Request) -> web.Response:
    staff_identity(request).require(Role.ADMIN)
    return await listing(request)


@routes.post("/api/v1/admin/dead-letters/{dead_letter_id}/replay")
async def post_replay(request: web.Request) -> web.Response:
    staff_identity(request).require(Role.ADMIN)
    return await replay(request)
