"""The booking service's staff and service-centre routes for the OpenAPI document (R50): request bodies and
queries from the handlers' own models, answers from the models below. The gateway adds to each how it is
authenticated and what its rule needs (`services/gateway/staff/openapi.py`).

The answer models describe the JSON the handlers of `staff_api.py` build; tests/booking/test_staff_openapi.py
reads real answers through them (extra fields forbidden), so the document cannot drift from the code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.booking.mass_change import ApplyIn, PreviewIn
from services.booking.models import (
    AppointmentOut,
    AvailabilityOut,
    AvailabilityQuery,
    CancelledOut,
    HoldOut,
    HoldRequest,
    LinkRequestedOut,
    RescheduleRequest,
)
from services.booking.openapi import (
    APPOINTMENT_ID,
    IDEMPOTENCY_CONTRACT,
    IDEMPOTENCY_SCHEMA,
    LOCATION_ID,
    WISH_ID,
)
from services.booking.staff_api import (
    CallAttemptIn,
    CallbackQuery,
    CancelIn,
    CloseIn,
    ContactIn,
    DayListQuery,
    DayQuery,
    FollowUpIn,
    OutcomeIn,
    SearchQuery,
    StaffBookingRequest,
    TransferIn,
)
from services.booking.staff_capacity import CapacityCheckIn, CapacityCheckOut
from services.booking.waiting_models import (
    StaffWaitingListOut,
    StaffWishStateOut,
    WishErasedOut,
    WishReferenceQuery,
)
from shared.openapi import ApiRoute, Header

STAFF_IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Optional, and recommended for the service centre: a random UUID per booking, kept for the retries "
    f"of that booking. {IDEMPOTENCY_CONTRACT} A key belongs to the API key or staff member that sent it: "
    "another caller's same key is another booking. The body includes `interpreter_language`.",
    schema=IDEMPOTENCY_SCHEMA,
)

STAFF_HOLD_IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Optional, and recommended for the service centre: a random UUID per hold, kept for the retries of "
    "that hold. A repeated request with the same key and the same body answers with the first hold: "
    "same status 201, same body (same `hold_id` and `expires_at`), so that a retry after a 502, a 504 or "
    "a broken connection neither finds the slot taken by its own hold nor holds a second service point. "
    "Only a placed hold is stored, for `OTV_IDEMPOTENCY_HOURS` (24 hours); a refused request (409, 422, "
    "...) is carried out anew when repeated. The same key with another body is refused with 422 "
    "`validation_error` on `Idempotency-Key`. Keys of holds and of bookings are apart (the booking may "
    "use the same key), and a key belongs to the API key or staff member that sent it.",
    schema=IDEMPOTENCY_SCHEMA,
)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaffCustomerOut(_Out):
    first_name: str
    last_name: str
    email: str
    phone: str | None = Field(
        default=None,
        description="The customer's number, for every mode of appointment: shown to staff of the "
        "appointment's location (and to the service centre's API key there, R37), and to staff of a "
        "location a callback was handed to (R25); null when the customer gave none (R49).",
    )
    customer_number: str | None
    household_number: str | None


class CallAttemptOut(_Out):
    at: datetime
    reached: bool
    note: str


class StaffAppointmentOut(_Out):
    id: str
    reference: str
    revision: int = Field(
        description="counts the appointment's changes; send it back as `expected_revision` of a contact "
        "correction, so that a change made since is not undone unseen"
    )
    start: datetime
    end: datetime
    location: str
    group: str
    group_name: str = Field(description="the group's German name (its id when the location no longer has it)")
    service_point: int
    concern: str
    concern_name: str = Field(
        description="the concern's German name from the catalog (staff read German; the customer's mails "
        "use `language`)"
    )
    mode: str = Field(description="`in_person` or `phone`")
    status: str = Field(description="`booked`, `cancelled` or `passed`")
    channel: str = Field(description="`online`, `staff` or `service_centre`")
    language: str
    evening: bool
    emergency: bool
    documents: list[str] = Field(description="what the customer brings, in German")
    customer: StaffCustomerOut
    interpreter_language: str | None
    outcome: str | None = Field(
        description="`resolved`, `placement`, `callback` or `no_show`; `follow_up` when a follow-up was "
        "booked from it (R24)"
    )
    note: str | None
    cancel_reason: str | None
    call_attempts: list[CallAttemptOut] | None = Field(default=None, description="phone appointments only")


class ErasedOut(_Out):
    erased: bool = Field(description="false when the appointment's personal data were erased already")


class HistoryOut(_Out):
    kind: str
    revision: int
    location: str
    group: str
    group_name: str
    concern: str
    service_point: int
    start: datetime
    end: datetime
    status: str
    detail: dict[str, Any]
    actor: str
    at: datetime


class StaffAppointmentDetailOut(StaffAppointmentOut):
    history: list[HistoryOut]


class CallbackRefOut(_Out):
    id: str
    team: str
    due_at: datetime
    status: str | None = None
    location: str | None = None


class OutcomeOut(StaffAppointmentOut):
    callback: CallbackRefOut | None


class CallAttemptsOut(_Out):
    call_attempts: list[CallAttemptOut]
    callback: CallbackRefOut | None


class CallbackOut(_Out):
    id: str
    appointment_id: str
    location: str
    team: str
    team_name: str | None = Field(default=None, description="the team's German name (in the queue)")
    reason: str | None = None
    status: str = Field(description="`open`, `claimed` or `closed`")
    created_at: datetime | None = None
    due_at: datetime
    overdue: bool
    claimed_by: str | None = None
    closed_at: datetime | None
    note: str | None = None
    result: str | None = None
    reference: str | None = None
    mode: str | None = None
    customer: dict[str, str | None] | None = None
    concern_name: str | None = None
    interpreter_language: str | None = None


class FollowUpOut(_Out):
    id: str
    reference: str
    start: datetime
    end: datetime
    group: str
    service_point: int
    concern: str
    status: str
    previous_appointment_id: str = Field(description="the appointment the follow-up was booked from")


class TransferOut(_Out):
    id: str
    reference: str
    status: str = Field(
        description="`booked` when moved to a slot there, `cancelled` when handed over as a callback ticket"
    )
    location: str
    group: str
    concern: str
    start: datetime
    end: datetime
    callback: CallbackRefOut | None = Field(description="the ticket of the responsible location's team")


class PreviewCustomerOut(_Out):
    first_name: str
    last_name: str


class AffectedOut(_Out):
    appointment_id: str
    reference: str
    start: datetime
    group: str
    service_point: int
    concern: str
    mode: str
    customer: PreviewCustomerOut
    action: str = Field(description="`move` to the proposed start, or `cancel` when nothing is free")
    proposed_start: datetime | None
    proposed_service_point: int | None


class MassChangePreviewOut(_Out):
    id: str = Field(description="the preview to apply")
    date: str = Field(description="the day of the change, YYYY-MM-DD", json_schema_extra={"format": "date"})
    last: str = Field(
        description="the last day of the change, YYYY-MM-DD (`date` for a one-day change)",
        json_schema_extra={"format": "date"},
    )
    affected: list[AffectedOut]


class ToCheckOut(_Out):
    appointment_id: str
    reference: str
    start: datetime


class MassChangeAppliedOut(_Out):
    id: str
    moved: list[str]
    cancelled: list[str]
    skipped: list[str] = Field(
        description="appointments left as they are for staff to look at: changed since the preview, their "
        "proposed place taken meanwhile, or booked after the preview"
    )
    to_check: list[ToCheckOut] = Field(description="the skipped appointments with reference and start")
    already_applied: bool = Field(description="true when this preview had been applied before (nothing done)")


BOOKING = ("staff: booking",)
FILE = ("staff: appointments",)
CALLBACKS = ("staff: callbacks",)
PLANNING = ("staff: planning",)
MOVE_ERRORS = (
    "validation_error",
    "not_found",
    "forbidden",
    "slot_taken",
    "booking_closed",
    "too_late",
    "not_changeable",
)

STAFF_ROUTES = (
    ApiRoute(
        "GET",
        "/api/v1/staff/locations/{location_id}/appointments",
        "The appointments of a location on a day (or up to a week with `to`)",
        query=DayListQuery,
        response=list[StaffAppointmentOut],
        errors=("validation_error", "not_found", "forbidden"),
        path_params={"location_id": LOCATION_ID},
        tags=FILE,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/locations/{location_id}/calls",
        "The phone appointments of a location on a day, in order, with their call attempts",
        query=DayQuery,
        response=list[StaffAppointmentOut],
        errors=("validation_error", "not_found", "forbidden"),
        path_params={"location_id": LOCATION_ID},
        tags=FILE,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/appointments/search",
        "Find appointments by reference, name, e-mail, customer or household number",
        query=SearchQuery,
        response=list[StaffAppointmentOut],
        response_headers={
            "X-Result-Truncated": {
                "type": "string",
                "enum": ["true"],
                "description": "present when more than 50 appointments matched and the list was cut",
            }
        },
        errors=("validation_error",),
        tags=FILE,
        description="Within the caller's locations; at most 50 appointments, the latest start first. When "
        "more matched, the list holds the first 50 and the header `X-Result-Truncated: true` says so: "
        "narrow the search (a reference or customer number finds one). Numbers and e-mail addresses match "
        "exactly (case-insensitive), names also in part. A reference is found as a caller reads it out: "
        "in any case, with or without its hyphen (`xsf2 8yfj`, `XSF28YFJ`). An address of the internal "
        "allow-list (the service centre's or the jobcenter's own, R6) matches nothing: many callers are "
        "booked under it; search by name, reference or customer number instead.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/appointments/{appointment_id}",
        "One appointment with its history",
        response=StaffAppointmentDetailOut,
        errors=("not_found", "forbidden"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=FILE,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/locations/{location_id}/availability",
        "Free slots of a concern at a location, for staff and the service centre (R37)",
        query=AvailabilityQuery,
        response=AvailabilityOut,
        errors=("validation_error", "not_found", "forbidden"),
        path_params={"location_id": LOCATION_ID},
        tags=BOOKING,
        description="The slots of the public `GET /api/v1/locations/{location_id}/availability` (same "
        "query, same answer), for a caller's booking. Unlike that route it is not rate-limited per client "
        "address and never asks for a proof-of-work challenge (no 428, no 429 of the bot defence): a "
        "service centre's agents share one address. Use this route, not the public one, with an API key.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/locations/{location_id}/holds",
        "Hold a slot for a few minutes while the agent takes the caller's details (R38)",
        body=HoldRequest,
        response=HoldOut,
        status=201,
        headers=(STAFF_HOLD_IDEMPOTENCY_KEY,),
        errors=(
            "validation_error",
            "not_found",
            "forbidden",
            "slot_taken",
            "booking_closed",
            "too_late",
            "hold_limit_reached",
        ),
        path_params={"location_id": LOCATION_ID},
        tags=BOOKING,
        description="The hold of the public `POST /api/v1/locations/{location_id}/holds` (same body, same "
        "answer); pass its `hold_id` to `POST /api/v1/staff/appointments`. Not rate-limited per client "
        "address and no proof-of-work challenge (no 428, no 429 of the bot defence). A hold is not "
        "released explicitly: it runs out at `expires_at`, or the booking of its slot takes it. While the "
        "caller is still on the line, `renews` (the `hold_id`) extends it, for at most "
        "`OTV_HOLD_MAX_MINUTES` (60) in all: then 409 `hold_limit_reached`, and the slot can still be "
        "booked without a hold while it is free.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments",
        "Book for a caller (staff or service centre): the public booking body plus interpreter_language",
        body=StaffBookingRequest,
        response=AppointmentOut,
        status=201,
        headers=(STAFF_IDEMPOTENCY_KEY,),
        errors=(
            "validation_error",
            "not_found",
            "forbidden",
            "slot_taken",
            "already_booked",
            "booking_closed",
            "too_late",
        ),
        tags=BOOKING,
        description="Internal e-mail addresses of the allow-list may book more than once (R6, R37). The "
        "customer gets the confirmation with the manage link. Free slots and holds for it: "
        "`GET /api/v1/staff/locations/{location_id}/availability` and "
        "`POST /api/v1/staff/locations/{location_id}/holds` (with `hold_id` here), which, unlike the "
        "customers' routes, are not limited per client address by the bot defence. A 504 "
        "`upstream_timeout` does not mean that nothing was booked: repeat with the same `Idempotency-Key` "
        "and body. 409 `already_booked` names in its detail the field that matched (`customer.email`, "
        "`customer.customer_number` or `customer.household_number`) and, when the caller may read "
        "appointments (`appointments:read`) at the pending appointment's location, that appointment: "
        "`appointment_id`, `reference`, `start` and `location` (a booking repeated without its key finds "
        "the appointment it made there).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/cancel",
        "Cancel an appointment with a reason (the customer gets the cancellation mail)",
        body=CancelIn,
        response=CancelledOut,
        errors=("validation_error", "not_found", "forbidden", "too_late"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=BOOKING,
        description="409 `too_late` once the appointment has started or passed. Repeating is harmless "
        "and needs no `Idempotency-Key`: an appointment that is already cancelled answers 200 "
        '`{"status": "cancelled"}` again, and nothing is mailed or entered in its history a second time '
        "(a retry after a 502, a 504 or a broken connection, also one that arrives while the first is "
        "still being carried out).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/manage-link",
        "Send the customer a new manage link (a caller lost the confirmation mail)",
        response=LinkRequestedOut,
        status=202,
        errors=("not_found", "forbidden", "too_late"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=BOOKING,
        description="The appointment gets a new manage token; the customer gets a mail with the new link "
        "and the calendar invitation, links sent before stop working. Only for an upcoming booked "
        "appointment (`too_late` otherwise); the appointment's history records who sent it. Not "
        "idempotent: each call (also a retry after a 504) sends another mail and ends the link of the one "
        "before; look at the appointment's history before repeating.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/contact",
        "Correct the customer's name, e-mail address or phone number (a typo, a number for a callback)",
        body=ContactIn,
        response=StaffAppointmentOut,
        errors=(
            "validation_error",
            "not_found",
            "forbidden",
            "already_booked",
            "too_late",
            "not_changeable",
            "stale",
        ),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=BOOKING,
        description="Only the fields sent change, checked and normalised as at booking; `phone` `null` or "
        "empty removes the number (422 for a phone appointment, R4). The e-mail address only while the "
        "appointment is still to come (409 `too_late` once it started or passed); name and phone number "
        "also afterwards (a number for a callback, R23). 409 `not_changeable` when it was cancelled or its "
        "personal data were erased. A new "
        "e-mail address counts for the one-appointment rule (R5): 409 `already_booked` when it has another "
        "pending appointment (not for an address of the internal allow-list, R6). A changed address gives "
        "the appointment a new manage token: the confirmation with the new link and the calendar "
        "invitation goes to the new address, and the link sent to the old one stops working. A change of "
        "name or phone number alone sends no mail. Event `appointment.contact_changed`; the "
        "appointment's history records who changed which fields (not the data). With "
        "`expected_revision` (the `revision` read before) a change of the appointment since is refused "
        "with 409 `stale` and nothing changes; without it the fields sent change whatever happened since. "
        "The answer is the appointment as the day view shows it.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/erase",
        "Erase the personal data of a past or cancelled appointment now (a request under Art. 17 GDPR)",
        response=ErasedOut,
        errors=("not_found", "forbidden", "not_changeable"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=BOOKING,
        description="Location administrators (and administrators) only. What the retention run erases "
        "after the retention period (R34), now: the customer's name, contact data and numbers, the staff "
        "notes, the manage link; the notifier and reporting erase their copies. With it go the same "
        "person's waiting-list wishes, at every location: those with the same e-mail address, compared "
        "trimmed and case-insensitively as for the one-appointment rule (R5), never an allow-listed "
        "address (R6); a wish still on the list ends without a mail. 409 `not_changeable` for an "
        "appointment still to come: cancel it first, so that the customer gets the mail.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/reschedule",
        "Move an appointment to another slot of its concern at its location",
        body=RescheduleRequest,
        response=AppointmentOut,
        errors=MOVE_ERRORS,
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=BOOKING,
        description="Only a booked appointment that has not started: once it has started or passed, or "
        "when it was cancelled, 409 `too_late`. "
        "The customer's rules apply (lead time, horizon, closures), except that an evening "
        "slot needs no `evening_declaration`: staff move a caller there knowingly (R12), as for a "
        "follow-up or a transfer. The customer gets the "
        "mail with the moved calendar invitation, and the appointment's history records who moved it. "
        "`manage_url` of the answer is the bare manage page: only the customer's link carries the token. "
        "Repeating the same move is harmless and needs no `Idempotency-Key`: when the appointment already "
        "has that start, the answer is 200 with the appointment as it is, and nothing is mailed or entered "
        "in its history again (a retry after a 502, a 504 or a broken connection, also one that arrives "
        "while the first is still being carried out).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/transfer",
        "Hand the appointment to the responsible location: to a free slot there, or as a callback ticket",
        body=TransferIn,
        response=TransferOut,
        errors=MOVE_ERRORS,
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=BOOKING,
        description="Without `start` the appointment is cancelled and the responsible team gets a callback "
        "ticket; for a customer without a phone number that is refused with 422 `validation_error` on "
        "`start` (detail `type` `no_phone`): choose a slot there instead.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/follow-up",
        "Book the follow-up appointment of a customer (R24)",
        body=FollowUpIn,
        response=FollowUpOut,
        status=201,
        errors=MOVE_ERRORS,
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=BOOKING,
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/outcome",
        "Record how an appointment ended; `callback` opens a ticket due in 48 hours",
        body=OutcomeIn,
        response=OutcomeOut,
        errors=(
            "validation_error",
            "not_found",
            "forbidden",
            "too_early",
            "outcome_recorded",
            "not_changeable",
        ),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=FILE,
        description="409 before the appointment's day; a changed outcome needs `correction` and a reason. "
        "A correction moves the outcome's open callback ticket to the team it names, or closes it as "
        "withdrawn when the outcome is no longer a callback. A new `callback` for a customer without a "
        "phone number is refused with 422 `validation_error` on `outcome` (detail `type` `no_phone`).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/call-attempts",
        "Record a call attempt of a phone appointment",
        body=CallAttemptIn,
        response=CallAttemptsOut,
        status=201,
        errors=("validation_error", "not_found", "forbidden", "not_changeable"),
        path_params={"appointment_id": APPOINTMENT_ID},
        tags=FILE,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/callbacks",
        "Callback tickets (default: open and claimed)",
        query=CallbackQuery,
        response=list[CallbackOut],
        errors=("validation_error", "forbidden"),
        tags=CALLBACKS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/callbacks/{callback_id}/claim",
        "Claim a callback ticket",
        response=CallbackOut,
        errors=("not_found", "forbidden", "not_changeable"),
        path_params={"callback_id": {"type": "string", "format": "uuid"}},
        tags=CALLBACKS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/callbacks/{callback_id}/close",
        "Close a callback ticket with its result",
        body=CloseIn,
        response=CallbackOut,
        errors=("validation_error", "not_found", "forbidden", "not_changeable"),
        path_params={"callback_id": {"type": "string", "format": "uuid"}},
        tags=CALLBACKS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/locations/{location_id}/capacity-check",
        "Which booked appointments proposed windows or closures would leave without a service point (R20)",
        body=CapacityCheckIn,
        response=CapacityCheckOut,
        errors=("validation_error", "not_found", "forbidden"),
        path_params={"location_id": LOCATION_ID},
        tags=PLANNING,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/locations/{location_id}/waiting-list",
        "The location's waiting list per concern: counts, ages and the wishes with their contact data (R45)",
        response=StaffWaitingListOut,
        errors=("not_found", "forbidden"),
        path_params={"location_id": LOCATION_ID},
        tags=PLANNING,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/waiting-list",
        "Find one waiting-list wish by its reference, in any status, to erase it on request (Art. 17 GDPR)",
        query=WishReferenceQuery,
        response=StaffWishStateOut,
        errors=("validation_error", "not_found", "forbidden"),
        tags=PLANNING,
        description='The reference is the one of the customer\'s wish mails ("Vorgangsnummer"), with or '
        "without the hyphen, in any case. Found in every status, also ended (withdrawn, expired, booked) "
        "and already erased, which the location's waiting list does not show. Location administrators of "
        "the wish's location (and administrators) only, 403 `forbidden` for another location's wish; API "
        "keys are refused. The answer names place, concern, status and whether the personal data are "
        "erased, none of the customer's data.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/waiting-list/{wish_id}",
        "One waiting-list wish by its id, in any status, to erase it on request (Art. 17 GDPR)",
        response=StaffWishStateOut,
        errors=("not_found", "forbidden"),
        path_params={"wish_id": WISH_ID},
        tags=PLANNING,
        description="As `GET /api/v1/staff/waiting-list?reference=`: location administrators of the "
        "wish's location only, API keys refused, none of the customer's data.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/waiting-list/{wish_id}/erase",
        "Erase the personal data of one waiting-list wish now (a request under Art. 17 GDPR)",
        response=WishErasedOut,
        errors=("not_found", "forbidden"),
        path_params={"wish_id": WISH_ID},
        tags=PLANNING,
        description="Location administrators of the wish's location (and administrators) only; API keys "
        "are refused. The customer's name, contact data and numbers and the wish's link are erased; place, "
        "concern, wished times and status stay for the statistics. A wish still on the list ends without a "
        "mail (its address is gone) and a held offer goes to the next wish; the notifier erases its copy. "
        "The erasure of an appointment (`/api/v1/staff/appointments/{appointment_id}/erase`) erases the "
        "wishes of the same e-mail address (compared trimmed and case-insensitively) as well.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/locations/{location_id}/mass-change/preview",
        "Preview a mass change of a day or of the days `date`..`last`: who can move where, who must be "
        "cancelled (R44)",
        body=PreviewIn,
        response=MassChangePreviewOut,
        status=201,
        errors=("validation_error", "not_found", "forbidden"),
        path_params={"location_id": LOCATION_ID},
        tags=PLANNING,
        description="A group's day is for its leaders; without `group_id` (the whole location) for the "
        "location's administrators (403 `forbidden` otherwise), for the preview as for its application. "
        "`last` (optional, default `date`; at most 31 days in all, 422 on `last` otherwise) makes it a "
        "change of several days, such as a closure's: the proposals lie after `last` or, when service "
        "points are left, later on those points within the range, never on a closed point of it, so that "
        "each customer is moved once and gets one notice. Refused as the catalog refuses the closure the "
        "change stands for: a last day (`last`, else `date`) before today (Europe/Berlin) is 422 "
        "`validation_error` naming that field (`details[].type` `in_the_past`; a range that lasts until "
        "today is accepted), and more `service_points_left` than the group has (for the whole location: "
        "than its largest group has) is 422 `validation_error` naming `service_points_left` "
        "(`details[].type` `too_many_service_points`).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/staff/locations/{location_id}/mass-change/apply",
        "Apply a previewed mass change",
        body=ApplyIn,
        response=MassChangeAppliedOut,
        errors=("validation_error", "not_found", "forbidden", "conflict", "unavailable"),
        path_params={"location_id": LOCATION_ID},
        tags=PLANNING,
        description="Through the gateway, a body that names `date` (and `last` for several days), "
        "`group_id` (none: the whole location, for its administrators) and `service_points_left` first "
        "saves that capacity of the day or days in the catalog as one entry "
        "(a closure, or a restriction to service points 1..n; saved once however often it is confirmed), so "
        "that the places the moved appointments leave are not offered again; the moves wait until booking "
        "has that capacity (`catalog_revision`, set by the gateway; 503 `unavailable` after a few seconds, "
        "nothing moved); when the moves fail, that closure is taken back. A body with `preview_id` alone "
        "only moves. A preview whose `service_points_left` the group no longer has (it has shrunk since; for "
        "the whole location: its largest group) is 422 `validation_error` naming `service_points_left` "
        "(`details[].type` `too_many_service_points`) before anything moves, and the closure saved for it is "
        "taken back.",
    ),
)
