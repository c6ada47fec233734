"""HTTP handlers of the waiting list (R45) and its matcher job as a cleanup context.

Public (through the gateway's route table): join, view, confirm (double opt-in), withdraw, accept an
offer; each link carries the wish's token as `?token=`. Staff: the location's waiting list, checked
against the signed identity (appointment managers of that location and above, R28), and the erasure of
one wish on the customer's request (location administrators of the wish's location, Art. 17 GDPR), with
the look-up of that wish by its reference or id in any status (the same administrators).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from services.booking import erasure, waiting_list
from services.booking.api import DEPS, NO_STORE
from services.booking.config import Settings
from services.booking.contact import network_of
from services.booking.models import ID_PATTERN
from services.booking.waiting_models import (
    WishDaysQuery,
    WishErasedOut,
    WishReferenceQuery,
    WishRequest,
)
from shared.background import periodic_context
from shared.errors import NotFoundError
from shared.identity import Role
from shared.web import parse_json, parse_query, path_id, staff_identity

routes = web.RouteTableDef()


def _wish_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["wish_id"])
    except ValueError:
        raise NotFoundError("There is no such wish on the waiting list, or the link is not valid.") from None


def _token(request: web.Request) -> str | None:
    return request.query.get("token")


def _json(body: bytes | str, status: int = 200) -> web.Response:
    response = web.Response(status=status, content_type="application/json", headers=NO_STORE)
    response.body = body.encode() if isinstance(body, str) else body
    return response


@routes.post("/api/v1/waiting-list")
async def post_wish(request: web.Request) -> web.Response:
    wish = await parse_json(request, WishRequest)
    created = await waiting_list.join_waiting_list(request.app[DEPS], wish)
    return _json(created.model_dump_json(), 201)


@routes.get("/api/v1/locations/{location_id}/waiting-list/weekdays")
async def get_wish_weekdays(request: web.Request) -> web.Response:
    query = parse_query(request, WishDaysQuery)
    location_id = path_id(request, "location_id", "There is no such location.")
    days = await waiting_list.wish_weekdays(request.app[DEPS], location_id, query.concern, query.mode)
    return _json(days.model_dump_json())


@routes.get("/api/v1/waiting-list/{wish_id}")
async def get_wish(request: web.Request) -> web.Response:
    view = await waiting_list.view_wish(request.app[DEPS], _wish_id(request), _token(request))
    return _json(view.model_dump_json())


@routes.post("/api/v1/waiting-list/{wish_id}/confirm")
async def post_confirm(request: web.Request) -> web.Response:
    view = await waiting_list.confirm_wish(request.app[DEPS], _wish_id(request), _token(request))
    return _json(view.model_dump_json())


@routes.post("/api/v1/waiting-list/{wish_id}/withdraw")
async def post_withdraw(request: web.Request) -> web.Response:
    status = await waiting_list.withdraw_wish(request.app[DEPS], _wish_id(request), _token(request))
    return _json(status.model_dump_json())


@routes.post("/api/v1/waiting-list/{wish_id}/offer/accept")
async def post_accept(request: web.Request) -> web.Response:
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip() or request.remote
    result = await waiting_list.accept_offer(
        request.app[DEPS], _wish_id(request), _token(request), client_network=network_of(forwarded)
    )
    return _json(result.body, result.status)


@routes.get("/api/v1/staff/locations/{location_id}/waiting-list")
async def get_staff_waiting_list(request: web.Request) -> web.Response:
    identity = staff_identity(request)  # 401 unless the gateway signed it (I5)
    location_id = request.match_info["location_id"]
    if not re.fullmatch(ID_PATTERN, location_id):
        raise NotFoundError("There is no such location.")
    identity.require(Role.APPOINTMENT_MANAGER, location_id)  # R28: personal data of their locations only
    listing = await waiting_list.staff_waiting_list(request.app[DEPS], location_id)
    return _json(listing.model_dump_json())


@routes.get("/api/v1/staff/waiting-list")
async def get_staff_wish_by_reference(request: web.Request) -> web.Response:
    """Art. 17 GDPR: a location administrator finds the wish a customer names by its reference, in any
    status (an ended wish is on no list), to erase it (`erasure.py`)."""
    identity = staff_identity(request)  # 401 unless the gateway signed it (I5)
    erasure.refuse_api_keys(identity)  # before the query is read: a key learns nothing here
    query = parse_query(request, WishReferenceQuery)
    found = await erasure.find_wish_for_erasure(request.app[DEPS], identity, reference=query.reference)
    return _json(found.model_dump_json())


@routes.get("/api/v1/staff/waiting-list/{wish_id}")
async def get_staff_wish(request: web.Request) -> web.Response:
    """The same for a wish by its id (the staff page of one wish)."""
    identity = staff_identity(request)  # 401 unless the gateway signed it (I5)
    found = await erasure.find_wish_for_erasure(request.app[DEPS], identity, wish_id=_wish_id(request))
    return _json(found.model_dump_json())


@routes.post("/api/v1/staff/waiting-list/{wish_id}/erase")
async def post_staff_erase_wish(request: web.Request) -> web.Response:
    """Art. 17 GDPR: a location administrator erases one wish's personal data now (`erasure.py`)."""
    identity = staff_identity(request)  # 401 unless the gateway signed it (I5)
    erased = await erasure.erase_wish_on_request(request.app[DEPS], identity, _wish_id(request))
    return _json(WishErasedOut(erased=erased).model_dump_json())


def matcher_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The matcher job (offers, expiries, announcements, erasure) in every replica that runs jobs."""

    async def job(app: web.Application) -> None:
        await waiting_list.run_matcher(app[DEPS])

    async def idle(_app: web.Application) -> AsyncIterator[None]:
        yield

    if not settings.run_jobs:
        return idle
    return periodic_context("waiting-list", settings.waiting_match_interval_seconds, job, first_delay=2.0)
