"""HTTP handlers of the staff work (issue 8), reached only through the gateway (its rule table checks
the role and sets the signed identity; each use case checks the appointment's location again, R28).

- GET  /api/v1/staff/locations/{location_id}/appointments?date=&to=     day (or up to a week) view
- GET  /api/v1/staff/locations/{location_id}/calls?date=                the call list of the day (R49)
- GET  /api/v1/staff/appointments/search?q=                             reference, name, customer number
- GET  /api/v1/staff/appointments/{appointment_id}                      one appointment with its history
- GET  /api/v1/staff/locations/{location_id}/availability?concern=&mode=&from=&to=   free slots (R37)
- POST /api/v1/staff/locations/{location_id}/holds                      hold a slot (R38)
- POST /api/v1/staff/appointments                                       staff booking (+ interpreter, R26)
- POST /api/v1/staff/appointments/{appointment_id}/cancel               {reason, on_customer_request?} (R9)
- POST /api/v1/staff/appointments/{appointment_id}/contact    {first_name?, last_name?, email?, phone?,
                                                                expected_revision?}
- POST /api/v1/staff/appointments/{appointment_id}/erase                Art. 17 GDPR: its personal data now
- POST /api/v1/staff/appointments/{appointment_id}/outcome              {outcome, note?, correction?, reason?}
- POST /api/v1/staff/appointments/{appointment_id}/call-attempts        {reached, note?, missed?} (R49)
- POST /api/v1/staff/appointments/{appointment_id}/follow-up            {concern_id, start, mode} (R24)
- POST /api/v1/staff/appointments/{appointment_id}/transfer   {location_id, concern_id, start?} (R25)
- GET  /api/v1/staff/callbacks?location=&status=open&group=             the callback queue (R23)
- POST /api/v1/staff/callbacks/{callback_id}/claim | /close {result}
- POST /api/v1/staff/locations/{location_id}/mass-change/preview | /apply (R20, R44; mass_change.py)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.booking import contact
from services.booking import staff_service as staff
from services.booking.api import (
    DEPS,
    IDEMPOTENCY_HEADER,
    NO_STORE,
    _appointment_id,
    _json,
    _location_id,
    availability_response,
)
from services.booking.callbacks import is_overdue
from services.booking.domain import LocationConfig, local_text
from services.booking.models import (
    ID_PATTERN,
    AvailabilityQuery,
    BookingRequest,
    HoldRequest,
    LinkRequestedOut,
    Name,
    RescheduleRequest,
)
from services.booking.service import Deps
from services.booking.staff_db import StaffRow
from shared.calendar import CalendarDay
from shared.clock import BERLIN
from shared.errors import NotFoundError
from shared.events.catalog import ConcernOffer, Mode
from shared.events.staff_work import Outcome
from shared.identity import StaffIdentity
from shared.web import blank_is_none, json_model, parse_json, parse_query, staff_identity

routes = web.RouteTableDef()

# Said on a search whose list was cut at `staff_service.SEARCH_LIMIT` (the body stays a plain list).
TRUNCATED_HEADER = "X-Result-Truncated"

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
Text = Annotated[str, Field(max_length=2000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DayQuery(_In):
    date: CalendarDay = Field(description="The day, YYYY-MM-DD (Europe/Berlin).")
    to: CalendarDay | None = Field(
        default=None,
        description="The last day of a range starting at `date`, inclusive: from `date` to at most 6 days "
        "after it (a week); absent: `date` alone. Another value is 422 `validation_error` naming `to`.",
    )

    @field_validator("to")
    @classmethod
    def _week_at_most(cls, to: CalendarDay | None, info: ValidationInfo) -> CalendarDay | None:
        first = info.data.get("date")  # absent when `date` itself was refused
        if to is not None and first is not None and not (first <= to <= first + timedelta(days=6)):
            raise ValueError("at most 6 days after date, and not before it")
        return to


class DayListQuery(DayQuery):
    # With the day's cancellations too (the day page strikes them through, as the Excel list does).
    include_cancelled: bool = Field(
        default=False, description="Also the day's cancelled appointments (`status` `cancelled`)."
    )


class SearchQuery(_In):
    q: Annotated[str, Field(min_length=2, max_length=100)]


class StaffBookingRequest(BookingRequest):
    interpreter_language: Annotated[str | None, Field(max_length=60)] = Field(
        default=None,
        description="The language the customer needs an interpreter for (R26), as staff read it (free "
        "text); absent or blank: none. Shown to staff (day list, file) and in the customer's mails "
        '("Sprachmittlung").',
    )


class CancelIn(_In):
    reason: Annotated[
        str,
        Field(
            min_length=1,
            max_length=500,
            pattern=r"\S",
            description="Why. The cancellation mail tells the customer this reason word for word when the "
            "jobcenter cancels (`on_customer_request` false); on the customer's request it stays in the "
            "file only. Trimmed; a blank one (spaces alone) is 422 `validation_error` naming `reason`.",
        ),
    ]
    on_customer_request: bool | None = Field(
        default=None,
        description="The customer asked for the cancellation (a caller, at the counter): the mail confirms "
        "the customer's own cancellation instead of apologising for the jobcenter's, does not quote "
        "`reason`, and the statistics count it as the customer's. The file's history keeps who entered "
        "it. Absent: `true` for an API key (the service centre cancels for its callers), `false` for a "
        "staff member (the jobcenter cancels). Send `false` with an API key for a cancellation by the "
        "jobcenter whose reason the customer is to read.",
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return value.strip()


class ContactIn(_In):
    """The customer's contact data to correct: only the fields sent change, with the booking's rules."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    first_name: Name | None = None
    last_name: Name | None = None
    email: Annotated[str | None, Field(min_length=3, max_length=254)] = None
    phone: Annotated[
        str | None,
        Field(
            max_length=40,
            description="`null` or an empty string removes the number (not for a phone appointment).",
        ),
    ] = None

    expected_revision: int | None = Field(
        default=None,
        ge=1,
        description="The appointment's `revision` as the client read it (its file, a day list). Given, "
        "a change made since (a colleague's correction, a move, a new link) refuses this one with 409 "
        "`stale` and nothing changes: read the appointment again and decide anew. Absent: the fields sent "
        "change whatever happened since.",
    )

    @field_validator("first_name", "last_name")
    @classmethod
    def _name(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("a name cannot be removed")
        return contact.normalise_name(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("an e-mail address cannot be removed")
        return contact.normalise_email(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return contact.normalise_phone(value) if value and value.strip() else None

    @model_validator(mode="after")
    def _something(self) -> ContactIn:
        if not self.model_fields_set & {"first_name", "last_name", "email", "phone"}:
            raise ValueError("send at least one of first_name, last_name, email, phone")
        return self

    def change(self) -> staff.ContactChange:
        return staff.ContactChange(
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email,
            phone=self.phone,
            phone_given="phone" in self.model_fields_set,
            expected_revision=self.expected_revision,
        )


class ChosenOutcome(StrEnum):
    """The outcomes staff record (the contract's four). `follow_up` is not among them: booking the
    follow-up (POST .../follow-up) records it (R24)."""

    RESOLVED = Outcome.RESOLVED.value
    PLACEMENT = Outcome.PLACEMENT.value
    CALLBACK = Outcome.CALLBACK.value
    NO_SHOW = Outcome.NO_SHOW.value


class OutcomeIn(_In):
    outcome: ChosenOutcome
    note: Text = ""
    correction: bool = False
    reason: Annotated[str, Field(max_length=500)] = ""
    team: Id | None = None  # the responsible group of a callback; default the appointment's group

    @model_validator(mode="after")
    def _correction_has_reason(self) -> OutcomeIn:
        if self.correction and not self.reason.strip():
            raise ValueError("reason: a correction needs a reason")
        return self


class CallAttemptIn(_In):
    reached: bool
    note: Text = ""
    missed: bool = False


class FollowUpIn(_In):
    concern_id: Id
    start: AwareDatetime
    mode: Mode = Mode.IN_PERSON
    interpreter_language: Annotated[str | None, Field(max_length=60)] = None


class TransferIn(_In):
    location_id: Id
    concern_id: Id
    start: AwareDatetime | None = None
    mode: Mode | None = None


class CallbackQuery(_In):
    # Empty (`?location=`, a form's "alle") is every location the caller may see, as at the gateway.
    location: Annotated[Id | None, BeforeValidator(blank_is_none)] = None
    status: Annotated[str, Field(pattern=r"^(open|claimed|closed|active|all)$")] = "active"
    group: Id | None = None


class CloseIn(_In):
    result: Annotated[str, Field(min_length=1, max_length=2000)]


# --- answers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffNames:
    """The German names of concerns, their documents and groups for staff. An appointment keeps its
    concern's name and documents in the customer's language (for their mails); staff read the catalog's
    German ones, and the group's name beside its id. A concern or group the location no longer has keeps
    what was stored (or the id)."""

    configs: dict[str, LocationConfig]

    @classmethod
    async def of(cls, deps: Deps, location_ids: Iterable[str]) -> StaffNames:
        configs = {}
        for location_id in set(location_ids):
            try:
                configs[location_id] = await deps.catalog.get(deps.pool, location_id)
            except NotFoundError:
                continue
        return cls(configs)

    def _offer(self, location_id: str, concern_id: str) -> ConcernOffer | None:
        config = self.configs.get(location_id)
        return config.concern(concern_id) if config else None

    def concern(self, location_id: str, concern_id: str, stored: str) -> str:
        offer = self._offer(location_id, concern_id)
        return local_text(offer.name, "de") if offer else stored

    def documents(self, location_id: str, concern_id: str, stored: list[str]) -> list[str]:
        offer = self._offer(location_id, concern_id)
        return [local_text(document, "de") for document in offer.documents] if offer else stored

    def group(self, location_id: str, group_id: str) -> str:
        config = self.configs.get(location_id)
        group = config.groups.get(group_id) if config else None
        return local_text(group.name, "de") if group else group_id


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(BERLIN).isoformat() if moment is not None else None


def appointment_json(
    identity: StaffIdentity,
    row: StaffRow,
    names: StaffNames,
    attempts: list[asyncpg.Record] | None = None,
    *,
    handed_over: bool = False,
) -> dict[str, Any]:
    a = row.appointment
    customer: dict[str, Any] = {
        "first_name": a.first_name,
        "last_name": a.last_name,
        "email": a.email,
        "customer_number": a.customer_number,
        "household_number": a.household_number,
    }
    if handed_over or staff.shows_phone(identity, a):
        customer["phone"] = a.phone
    found: dict[str, Any] = {
        "id": str(a.id),
        "reference": a.reference,
        "revision": a.revision,
        "start": _iso(a.start),
        "end": _iso(a.end),
        "location": a.location_id,
        "group": a.group_id,
        "group_name": names.group(a.location_id, a.group_id),
        "service_point": a.service_point,
        "concern": a.concern_id,
        "concern_name": names.concern(a.location_id, a.concern_id, a.concern_name),
        "mode": a.mode,
        "status": a.status.value,
        "channel": a.channel,
        "language": a.language,
        "evening": a.evening,
        "emergency": a.emergency,
        "documents": names.documents(a.location_id, a.concern_id, a.documents),
        "customer": customer,
        "interpreter_language": a.interpreter_language,
        "outcome": row.outcome,
        "note": row.outcome_note,
        "cancel_reason": a.cancel_reason,
    }
    if a.mode == Mode.PHONE.value:
        found["call_attempts"] = [
            {"at": _iso(t["at"]), "reached": t["reached"], "note": t["note"]} for t in attempts or []
        ]
    return found


def callback_json(row: Any, now: datetime, names: StaffNames) -> dict[str, Any]:
    found = {
        "id": str(row["id"]),
        "appointment_id": str(row["appointment_id"]),
        "location": row["location_id"],
        "team": row["group_id"],
        "team_name": names.group(row["location_id"], row["group_id"]),
        "reason": row["reason"],
        "status": row["status"],
        "created_at": _iso(row["created_at"]),
        "due_at": _iso(row["due_at"]),
        "overdue": row["status"] != "closed" and is_overdue(row["due_at"], now),
        "claimed_by": row["claimed_by"],
        "closed_at": _iso(row["closed_at"]),
        "note": row["note"],
        "result": row["result"],
    }
    if "reference" in row:
        found.update(
            reference=row["reference"],
            mode=row["mode"],
            customer={"first_name": row["first_name"], "last_name": row["last_name"], "phone": row["phone"]},
            concern_name=names.concern(
                row["appointment_location_id"], row["appointment_concern_id"], row["concern_name"]
            ),
            interpreter_language=row["interpreter_language"],
        )
    return found


def _ok(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers=NO_STORE)


def _uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFoundError("There is no such entry.") from None


# --- reading -------------------------------------------------------------------------------------------


@routes.get("/api/v1/staff/locations/{location_id}/appointments")
async def get_day(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, DayListQuery)
    deps = request.app[DEPS]
    rows = await staff.day_view(
        deps,
        identity,
        _location_id(request),
        query.date,
        query.to or query.date,
        include_cancelled=query.include_cancelled,
    )
    attempts = await staff.attempts_of(deps, rows)
    names = await StaffNames.of(deps, [r.appointment.location_id for r in rows])
    return _ok([appointment_json(identity, r, names, attempts.get(r.appointment.id)) for r in rows])


@routes.get("/api/v1/staff/locations/{location_id}/calls")
async def get_calls(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, DayQuery)
    deps = request.app[DEPS]
    rows = await staff.day_view(deps, identity, _location_id(request), query.date, query.to or query.date)
    rows = sorted(
        (r for r in rows if r.appointment.mode == Mode.PHONE.value), key=lambda r: r.appointment.start
    )
    attempts = await staff.attempts_of(deps, rows)
    names = await StaffNames.of(deps, [r.appointment.location_id for r in rows])
    return _ok([appointment_json(identity, r, names, attempts.get(r.appointment.id)) for r in rows])


@routes.get("/api/v1/staff/appointments/search")
async def get_search(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, SearchQuery)
    deps = request.app[DEPS]
    rows, truncated = await staff.search(deps, identity, query.q)
    names = await StaffNames.of(deps, [r.appointment.location_id for r in rows])
    response = _ok([appointment_json(identity, r, names) for r in rows])
    if truncated:
        response.headers[TRUNCATED_HEADER] = "true"
    return response


@routes.get("/api/v1/staff/appointments/{appointment_id}")
async def get_appointment(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    deps = request.app[DEPS]
    row, history, attempts, handed_over = await staff.appointment_detail(
        deps, identity, _appointment_id(request)
    )
    places = [row.appointment.location_id, *(h["location_id"] for h in history)]
    names = await StaffNames.of(deps, places)
    found = appointment_json(identity, row, names, attempts, handed_over=handed_over)
    found["history"] = [
        {
            "kind": h["kind"],
            "revision": h["revision"],
            "location": h["location_id"],
            "group": h["group_id"],
            "group_name": names.group(h["location_id"], h["group_id"]),
            "concern": h["concern_id"],
            "service_point": h["service_point"],
            "start": _iso(h["start_at"]),
            "end": _iso(h["end_at"]),
            "status": h["status"],
            "detail": h["detail"],
            "actor": h["actor"],
            "at": _iso(h["at"]),
        }
        for h in history
    ]
    return _ok(found)


# --- writing -------------------------------------------------------------------------------------------


@routes.get("/api/v1/staff/locations/{location_id}/availability")
async def get_availability(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, AvailabilityQuery)
    slots = await staff.staff_availability(
        request.app[DEPS], identity, _location_id(request), query.concern, query.mode, query.from_, query.to
    )
    return availability_response(slots)


@routes.post("/api/v1/staff/locations/{location_id}/holds")
async def post_hold(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    hold_request = await parse_json(request, HoldRequest)
    hold = await staff.staff_hold(
        request.app[DEPS],
        identity,
        _location_id(request),
        hold_request,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    return _json(hold.model_dump_json(), 201)


@routes.post("/api/v1/staff/appointments")
async def post_appointment(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    booking = await parse_json(request, StaffBookingRequest)
    plain = BookingRequest.model_validate(booking.model_dump(exclude={"interpreter_language"}))
    result = await staff.staff_book(
        request.app[DEPS],
        identity,
        plain,
        (booking.interpreter_language or "").strip() or None,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    response = web.Response(status=result.status, content_type="application/json", headers=NO_STORE)
    response.body = result.body
    return response


@routes.post("/api/v1/staff/appointments/{appointment_id}/cancel")
async def post_cancel(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    cancel = await parse_json(request, CancelIn)
    await staff.staff_cancel(
        request.app[DEPS],
        identity,
        _appointment_id(request),
        cancel.reason,
        on_customer_request=cancel.on_customer_request,
    )
    return _ok({"status": "cancelled"})


@routes.post("/api/v1/staff/appointments/{appointment_id}/contact")
async def post_contact(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    body = await parse_json(request, ContactIn)
    deps = request.app[DEPS]
    row = await staff.change_contact(deps, identity, _appointment_id(request), body.change())
    names = await StaffNames.of(deps, [row.appointment.location_id])
    return _ok(appointment_json(identity, row, names))


@routes.post("/api/v1/staff/appointments/{appointment_id}/manage-link")
async def post_manage_link(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    await staff.staff_renew_link(request.app[DEPS], identity, _appointment_id(request))
    return json_model(LinkRequestedOut(), status=202)


@routes.post("/api/v1/staff/appointments/{appointment_id}/erase")
async def post_erase(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    erased = await staff.erase_on_request(request.app[DEPS], identity, _appointment_id(request))
    return _ok({"erased": erased})


@routes.post("/api/v1/staff/appointments/{appointment_id}/reschedule")
async def post_reschedule(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    reschedule = await parse_json(request, RescheduleRequest)
    moved = await staff.staff_reschedule(request.app[DEPS], identity, _appointment_id(request), reschedule)
    return web.Response(text=moved.model_dump_json(), content_type="application/json", headers=NO_STORE)


@routes.post("/api/v1/staff/appointments/{appointment_id}/outcome")
async def post_outcome(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    body = await parse_json(request, OutcomeIn)
    note = body.note.strip()
    if body.correction:
        note = (note + "\n" if note else "") + f"Korrektur: {body.reason.strip()}"
    deps = request.app[DEPS]
    row, ticket = await staff.record_outcome(
        deps,
        identity,
        _appointment_id(request),
        Outcome(body.outcome.value),
        note=note,
        correction=body.correction,
        team=body.team,
    )
    found = appointment_json(identity, row, await StaffNames.of(deps, [row.appointment.location_id]))
    found["callback"] = (
        {
            "id": str(ticket.id),
            "team": ticket.group_id,
            "due_at": _iso(ticket.due_at),
            "status": ticket.status,
        }
        if ticket
        else None
    )
    return _ok(found)


@routes.post("/api/v1/staff/appointments/{appointment_id}/call-attempts")
async def post_call_attempt(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    body = await parse_json(request, CallAttemptIn)
    attempts, ticket = await staff.record_call_attempt(
        request.app[DEPS],
        identity,
        _appointment_id(request),
        reached=body.reached,
        note=body.note.strip(),
        missed=body.missed,
    )
    return _ok(
        {
            "call_attempts": [
                {"at": _iso(t["at"]), "reached": t["reached"], "note": t["note"]} for t in attempts
            ],
            "callback": {"id": str(ticket.id), "due_at": _iso(ticket.due_at), "team": ticket.group_id}
            if ticket
            else None,
        },
        201,
    )


@routes.post("/api/v1/staff/appointments/{appointment_id}/follow-up")
async def post_follow_up(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    body = await parse_json(request, FollowUpIn)
    booked, _url = await staff.follow_up(
        request.app[DEPS],
        identity,
        _appointment_id(request),
        concern_id=body.concern_id,
        start=body.start,
        mode=body.mode,
        interpreter_language=body.interpreter_language,
    )
    return _ok(
        {
            "id": str(booked.id),
            "reference": booked.reference,
            "start": _iso(booked.start),
            "end": _iso(booked.end),
            "group": booked.group_id,
            "service_point": booked.service_point,
            "concern": booked.concern_id,
            "status": booked.status.value,
            "previous_appointment_id": request.match_info["appointment_id"],
        },
        201,
    )


@routes.post("/api/v1/staff/appointments/{appointment_id}/transfer")
async def post_transfer(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    body = await parse_json(request, TransferIn)
    moved, ticket = await staff.transfer(
        request.app[DEPS],
        identity,
        _appointment_id(request),
        location_id=body.location_id,
        concern_id=body.concern_id,
        start=body.start,
        mode=body.mode,
    )
    return _ok(
        {
            "id": str(moved.id),
            "reference": moved.reference,
            "status": moved.status.value,
            "location": moved.location_id,
            "group": moved.group_id,
            "concern": moved.concern_id,
            "start": _iso(moved.start),
            "end": _iso(moved.end),
            "callback": {
                "id": str(ticket.id),
                "location": ticket.location_id,
                "team": ticket.group_id,
                "due_at": _iso(ticket.due_at),
            }
            if ticket
            else None,
        }
    )


# --- callbacks (R23) -----------------------------------------------------------------------------------

_STATUSES = {
    "open": ["open"],
    "claimed": ["claimed"],
    "closed": ["closed"],
    "active": ["open", "claimed"],
    "all": ["open", "claimed", "closed"],
}


@routes.get("/api/v1/staff/callbacks")
async def get_callbacks(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, CallbackQuery)
    deps = request.app[DEPS]
    rows = await staff.list_callbacks(deps, identity, query.location, _STATUSES[query.status], query.group)
    now = deps.clock.now()
    names = await StaffNames.of(
        deps, [r[key] for r in rows for key in ("location_id", "appointment_location_id")]
    )
    return _ok([callback_json(r, now, names) for r in rows])


@routes.post("/api/v1/staff/callbacks/{callback_id}/claim")
async def post_claim(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    deps = request.app[DEPS]
    ticket = await staff.claim_callback(deps, identity, _uuid(request, "callback_id"))
    return _ok(_ticket_json(ticket, deps.clock.now()))


@routes.post("/api/v1/staff/callbacks/{callback_id}/close")
async def post_close(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    body = await parse_json(request, CloseIn)
    deps = request.app[DEPS]
    ticket = await staff.close_callback(deps, identity, _uuid(request, "callback_id"), body.result.strip())
    return _ok(_ticket_json(ticket, deps.clock.now()))


def _ticket_json(ticket: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": str(ticket.id),
        "appointment_id": str(ticket.appointment_id),
        "location": ticket.location_id,
        "team": ticket.group_id,
        "status": ticket.status.value,
        "due_at": _iso(ticket.due_at),
        "closed_at": _iso(ticket.closed_at),
        "overdue": is_overdue(ticket.due_at, now, ticket.closed_at),
    }


__all__ = ["json_model", "routes"]
