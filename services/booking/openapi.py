"""The booking service's public routes for the OpenAPI document, declared from its own pydantic models
(`services/booking/models.py`). Served at `GET /openapi.json`; the gateway merges it into
`/api/v1/openapi.json`."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.booking.models import (
    AppointmentOut,
    AppointmentView,
    AvailabilityOut,
    AvailabilityQuery,
    BookingRequest,
    CancelledOut,
    CancelRequest,
    HoldOut,
    HoldRequest,
    LinkRequest,
    LinkRequestedOut,
    RescheduleRequest,
)
from services.booking.waiting_models import (
    WishDaysOut,
    WishDaysQuery,
    WishOut,
    WishRequest,
    WishStatusOut,
    WishView,
)
from shared.openapi import ApiRoute, Header, build_document, openapi_handler


class TokenQuery(BaseModel):
    """The manage token may come as `?token=` instead of the `X-Manage-Token` header."""

    model_config = ConfigDict(extra="ignore")

    token: str | None = Field(default=None, description="The manage token from the manage link.")


APPOINTMENT_ID = {"type": "string", "format": "uuid"}
LOCATION_ID = {"type": "string", "minLength": 1, "maxLength": 64, "examples": ["mitte"]}
MANAGE_TOKEN = Header(
    "X-Manage-Token",
    "The manage token from the manage link (or `?token=`). A missing or wrong token (also a link that a "
    "newer one replaced, R41) is answered 403 `forbidden`; an unknown appointment id 404 `not_found`.",
    required=False,
)
IDEMPOTENCY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"}
# What a repeat with the same key gets, whoever's key it is (the scope differs: see the two headers).
IDEMPOTENCY_CONTRACT = (
    "A repeated request with the same key and the same body answers with the first result: same status "
    "201, same body (a double click books once). Only a successful booking (201) is stored, for "
    "`OTV_IDEMPOTENCY_HOURS` (24 hours) after it; a request that failed (409, 422, ...) stored nothing "
    "and is carried out anew when repeated. The same key with another body is refused with 422 "
    "`validation_error` on `Idempotency-Key`; the body is compared with `start` as an instant (the same "
    "time in another offset is the same body). After a 502 `upstream_unavailable`, a 504 "
    "`upstream_timeout` or a broken connection the booking may have been made: repeat the request with "
    "the same key and the same body, never with a new key."
)
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    f"Optional; a random UUID per booking. {IDEMPOTENCY_CONTRACT} Keys of the public booking share one "
    "scope: choose them so that they do not collide.",
    schema=IDEMPOTENCY_SCHEMA,
)
TAGS = ("booking",)

ROUTES = (
    ApiRoute(
        "GET",
        "/api/v1/locations/{location_id}/availability",
        "Free slots of a concern at a location",
        query=AvailabilityQuery,
        response=AvailabilityOut,
        errors=("validation_error", "not_found"),
        path_params={"location_id": LOCATION_ID},
        tags=TAGS,
        description="Dates `YYYY-MM-DD`, `to` inclusive, at most 8 weeks. `evening_reserved` marks slots "
        "reserved for people in work or in a measure (R12).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/locations/{location_id}/holds",
        "Hold a slot for a few minutes while the customer types (R38)",
        body=HoldRequest,
        response=HoldOut,
        status=201,
        errors=(
            "validation_error",
            "not_found",
            "slot_taken",
            "booking_closed",
            "too_late",
            "hold_limit_reached",
        ),
        path_params={"location_id": LOCATION_ID},
        tags=TAGS,
        description="`renews` (the caller's own hold of this slot) extends it. One holder (the renewed hold, "
        "or the same client network) holds one slot for at most `OTV_HOLD_MAX_MINUTES` (60) without a "
        "break of a whole hold time, renewals and holds taken again at once included: then 409 "
        "`hold_limit_reached`; the slot can still be booked without a hold while it is free (R38, R39).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/appointments",
        "Book an appointment",
        body=BookingRequest,
        response=AppointmentOut,
        status=201,
        headers=(IDEMPOTENCY_KEY,),
        errors=(
            "validation_error",
            "not_found",
            "slot_taken",
            "already_booked",
            "booking_closed",
            "too_late",
        ),
        tags=TAGS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/appointments/{appointment_id}",
        "The customer's view of an appointment (needs the manage token)",
        query=TokenQuery,
        headers=(MANAGE_TOKEN,),
        response=AppointmentView,
        errors=("forbidden", "not_found"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=TAGS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/appointments/{appointment_id}/invitation.ics",
        "The appointment as a calendar file (needs the manage token, R40)",
        query=TokenQuery,
        headers=(MANAGE_TOKEN,),
        content_type="text/calendar",
        raw_response_schema={"type": "string"},
        response_headers={
            "Content-Disposition": {"type": "string", "examples": ['attachment; filename="termin.ics"']}
        },
        errors=("forbidden", "not_found"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=TAGS,
        description="iCalendar with METHOD:PUBLISH and the same UID and SEQUENCE (the appointment's "
        "revision) as the invitations in the mails, so a calendar keeps one entry and follows changes.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/appointments/{appointment_id}/cancel",
        "Cancel an appointment (needs the manage token)",
        query=TokenQuery,
        headers=(MANAGE_TOKEN,),
        body=CancelRequest,
        body_required=False,
        response=CancelledOut,
        errors=("validation_error", "forbidden", "not_found", "too_late"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=TAGS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/appointments/{appointment_id}/reschedule",
        "Move an appointment to another slot (needs the manage token, R41)",
        query=TokenQuery,
        headers=(MANAGE_TOKEN,),
        body=RescheduleRequest,
        response=AppointmentOut,
        errors=("validation_error", "forbidden", "not_found", "slot_taken", "booking_closed", "too_late"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=TAGS,
        description="409 `too_late` with a detail on `start`: the new start has already passed (choose "
        "another); without a detail: the appointment itself has begun, passed or was cancelled.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/manage-links",
        "Send the manage link again to the address an appointment was booked with (R41)",
        body=LinkRequest,
        response=LinkRequestedOut,
        status=202,
        errors=("validation_error",),
        tags=TAGS,
        description="For a customer who lost the confirmation mail. Each upcoming appointment of the "
        "address gets a new manage token and a mail with the new link (`appointment.link_renewed`); links "
        "sent before stop working. The answer is the same whether the address booked or not. One "
        "appointment's link is renewed at most every 10 minutes (`OTV_LINK_RENEWAL_MINUTES`).",
    ),
)


WISH_ID = {"type": "string", "format": "uuid"}
WISH_TOKEN_ERRORS = ("not_found", "link_expired")
WAITING_TAGS = ("waiting list",)


class WishTokenQuery(BaseModel):
    """Every link of the waiting list carries the wish's secret token."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(description="The token from the link in the waiting-list mail.")


WAITING_ROUTES = (
    ApiRoute(
        "GET",
        "/api/v1/locations/{location_id}/waiting-list/weekdays",
        "The days of the week a wish for this concern can name (R45)",
        query=WishDaysQuery,
        response=WishDaysOut,
        errors=("validation_error", "not_found"),
        path_params={"location_id": LOCATION_ID},
        tags=WAITING_TAGS,
        description="The days (0 = Monday) with appointments of the concern between today and `until` "
        "(8 weeks), free or booked. A wish for other days is refused with `no_matching_times`.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/waiting-list",
        "Join the waiting list when nothing suits (R45); counts once the address is confirmed",
        body=WishRequest,
        response=WishOut,
        status=201,
        errors=("validation_error", "not_found", "already_booked", "already_waiting", "slots_available"),
        tags=WAITING_TAGS,
        description="409 `slots_available` (with the first free starts) when an appointment that suits the "
        "wish is free now: book it instead. 422 with a detail of type `no_matching_times` on `weekdays` "
        "(with `offered_weekdays`, 0 = Monday) when the location has no appointment of this concern on "
        "those days and times before `latest_date` at all, such as a Saturday where nobody works.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/waiting-list/{wish_id}",
        "The customer's wish and any offer (needs the token)",
        query=WishTokenQuery,
        response=WishView,
        errors=WISH_TOKEN_ERRORS,
        path_params={"wish_id": WISH_ID},
        tags=WAITING_TAGS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/waiting-list/{wish_id}/confirm",
        "Confirm the e-mail address (double opt-in)",
        query=WishTokenQuery,
        response=WishView,
        errors=WISH_TOKEN_ERRORS,
        path_params={"wish_id": WISH_ID},
        tags=WAITING_TAGS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/waiting-list/{wish_id}/withdraw",
        "Withdraw the wish",
        query=WishTokenQuery,
        response=WishStatusOut,
        errors=WISH_TOKEN_ERRORS,
        path_params={"wish_id": WISH_ID},
        tags=WAITING_TAGS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/waiting-list/{wish_id}/offer/accept",
        "Book the slot offered to this wish",
        query=WishTokenQuery,
        response=AppointmentOut,
        status=201,
        errors=(*WISH_TOKEN_ERRORS, "slot_taken", "already_booked", "booking_closed"),
        path_params={"wish_id": WISH_ID},
        tags=WAITING_TAGS,
    ),
)


def document() -> dict[str, Any]:
    from services.booking.staff_openapi import STAFF_ROUTES  # which uses this module's parameters

    return build_document(
        (*ROUTES, *WAITING_ROUTES, *STAFF_ROUTES),
        title="Booking",
        description="Availability, holds and appointments; the staff and service-centre routes.",
    )


def setup_openapi(app: web.Application) -> None:
    """Serve this service's part of the public API's description at `GET /openapi.json`."""
    app.router.add_get("/openapi.json", openapi_handler(document))
