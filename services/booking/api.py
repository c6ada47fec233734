"""HTTP handlers of the booking API: parse (pydantic) -> call a use case -> respond.

Paths and field names are the architecture's public API table. Errors are domain errors raised by the
use cases; the shared error middleware turns them into the error body with their status.
"""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from services.booking import link_renewal, service
from services.booking.contact import network_of
from services.booking.domain import Slots
from services.booking.models import (
    AvailabilityQuery,
    BookingRequest,
    CancelledOut,
    CancelRequest,
    HoldRequest,
    LinkRequest,
    LinkRequestedOut,
    RescheduleRequest,
)
from services.booking.service import Deps
from shared.errors import NotFoundError
from shared.events.appointment import AppointmentStatus
from shared.web import json_model, parse_json, parse_query, path_id

DEPS = web.AppKey("booking_deps", Deps)
TOKEN_HEADER = "X-Manage-Token"  # noqa: S105 -- the header's name, not a secret
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Answers that carry personal data or change by the second are never cached on the way.
NO_STORE = {"Cache-Control": "no-store"}
ICS_FILENAME = "termin.ics"

routes = web.RouteTableDef()


def _location_id(request: web.Request) -> str:
    return path_id(request, "location_id", "There is no such location.")


def _appointment_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["appointment_id"])
    except ValueError:
        raise NotFoundError("There is no such appointment, or the link is not valid.") from None


def _token(request: web.Request) -> str | None:
    return request.headers.get(TOKEN_HEADER) or request.query.get("token")


def _client_address(request: web.Request) -> str | None:
    # The gateway, the only way in from outside, sets X-Forwarded-For to the client's address.
    forwarded = request.headers.get("X-Forwarded-For", "")
    return forwarded.split(",")[0].strip() or request.remote


def _json(body: bytes | str, status: int = 200) -> web.Response:
    response = web.Response(status=status, content_type="application/json", headers=NO_STORE)
    response.body = body.encode() if isinstance(body, str) else body
    return response


@routes.get("/api/v1/locations/{location_id}/availability")
async def get_availability(request: web.Request) -> web.Response:
    query = parse_query(request, AvailabilityQuery)
    slots = await service.availability(
        request.app[DEPS], _location_id(request), query.concern, query.mode, query.from_, query.to
    )
    return availability_response(slots)


def availability_response(slots: Slots) -> web.Response:
    # Built by hand from the slots' own JSON, once per kept answer: eight weeks can be a few thousand
    # slots, and this is the hottest read (AvailabilityOut documents the same shape).
    return _json(slots.answer_json)


@routes.post("/api/v1/locations/{location_id}/holds")
async def post_hold(request: web.Request) -> web.Response:
    hold_request = await parse_json(request, HoldRequest)
    hold = await service.place_hold(
        request.app[DEPS],
        _location_id(request),
        hold_request,
        client_network=network_of(_client_address(request)),
    )
    return _json(hold.model_dump_json(), 201)


@routes.post("/api/v1/appointments")
async def post_appointment(request: web.Request) -> web.Response:
    booking = await parse_json(request, BookingRequest)
    result = await service.book_appointment(
        request.app[DEPS],
        booking,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
        client_network=network_of(_client_address(request)),
    )
    return _json(result.body, result.status)


@routes.get("/api/v1/appointments/{appointment_id}")
async def get_appointment(request: web.Request) -> web.Response:
    view = await service.view_appointment(request.app[DEPS], _appointment_id(request), _token(request))
    return _json(view.model_dump_json())


@routes.get("/api/v1/appointments/{appointment_id}/invitation.ics")
async def get_invitation(request: web.Request) -> web.Response:
    data = await service.appointment_invitation(request.app[DEPS], _appointment_id(request), _token(request))
    return web.Response(
        body=data,
        content_type="text/calendar",
        charset="utf-8",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{ICS_FILENAME}"'},
    )


@routes.post("/api/v1/appointments/{appointment_id}/cancel")
async def post_cancel(request: web.Request) -> web.Response:
    appointment_id = _appointment_id(request)
    cancel = await parse_json(request, CancelRequest) if request.can_read_body else CancelRequest()
    await service.cancel_appointment(
        request.app[DEPS], appointment_id, token=_token(request), reason=cancel.reason
    )
    return json_model(CancelledOut(status=AppointmentStatus.CANCELLED))


@routes.post("/api/v1/appointments/{appointment_id}/reschedule")
async def post_reschedule(request: web.Request) -> web.Response:
    appointment_id = _appointment_id(request)
    reschedule = await parse_json(request, RescheduleRequest)
    moved = await service.reschedule_appointment(
        request.app[DEPS], appointment_id, _token(request), reschedule
    )
    return _json(moved.model_dump_json())


@routes.post("/api/v1/manage-links")
async def post_manage_link(request: web.Request) -> web.Response:
    link_request = await parse_json(request, LinkRequest)
    deps = request.app[DEPS]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await link_renewal.renew_links(deps, link_request.email)
    # The same answer after the same time for any address (no timing side channel on who booked).
    await asyncio.sleep(max(0.0, deps.settings.link_request_min_seconds - (loop.time() - started)))
    return json_model(LinkRequestedOut(), status=202)
