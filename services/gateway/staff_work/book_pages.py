"""A new appointment booked by staff (R22, R26): concern and mode, one of the next free slots, the
customer's data and an interpreter need (language), through booking's `POST /api/v1/staff/appointments`
(channel `staff`; the customer gets the confirmation mail like any booking).

- GET  /staff/locations/{location_id}/book?choice=<concern>|<mode>   choose, then the booking form
- POST /staff/locations/{location_id}/book                            book; to the new file

The booking rules are booking's (lead time, capacity, one pending appointment, evening slots); a refusal
is shown in German on the form, next to the field it concerns.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from aiohttp import web

from services.gateway.staff.pages import location_names
from services.gateway.staff_work.common import (
    HORIZON_DAYS,
    booking_change,
    concern_choice,
    concern_options,
    concerns_of,
    day_de,
    explain,
    first_day_of,
    free_slots,
    moment,
    page_status,
    render,
    text,
    today,
)
from services.gateway.web.i18n import offered_languages
from shared.labels import languages_de

routes = web.RouteTableDef()

SLOTS_SHOWN = 40
CUSTOMER_FIELDS = ("first_name", "last_name", "email", "phone", "customer_number", "household_number")
FIELDS_DE = {
    "first_name": "Vorname",
    "last_name": "Nachname",
    "email": "E-Mail-Adresse",
    "phone": "Telefonnummer",
    "customer_number": "Kundennummer",
    "household_number": "Nummer der Bedarfsgemeinschaft",
    "interpreter_language": "Dolmetschung (Sprache)",
    "start": "Zeit",
    "evening_declaration": "Abendtermin",
    "language": "Sprache der Buchung",
    "concern_id": "Anliegen",
    "mode": "Art",
}
CODES_DE = {
    "already_booked": (
        "Diese Kundin / dieser Kunde hat schon einen offenen Termin (gleiche E-Mail-Adresse oder "
        "Kundennummer). Es ist nur ein offener Termin erlaubt."
    ),
}


def _by_day(slots: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    days: dict[str, list[dict[str, Any]]] = {}
    for slot in slots:
        found = moment(slot.get("start"))
        if found is not None:
            days.setdefault(day_de(found.date()), []).append(slot)
    return list(days.items())


async def _page(
    request: web.Request,
    location_id: str,
    choice_raw: str | None,
    first_raw: str | None,
    *,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    names = await location_names(request)
    options = concern_options(await concerns_of(request, location_id))
    choice = concern_choice(choice_raw)
    if choice is not None and f"{choice[0]}|{choice[1]}" not in {o["value"] for o in options}:
        choice = None
    first = first_day_of(request, first_raw)
    slots = await free_slots(request, location_id, *choice, limit=SLOTS_SHOWN, first=first) if choice else []
    return render(
        request,
        "work_book.html",
        {
            "title": f"Neuer Termin {names.get(location_id, location_id)}",
            "page": "book",
            "location": {"id": location_id, "name": names.get(location_id, location_id)},
            "day": None,
            "options": options,
            "choice": f"{choice[0]}|{choice[1]}" if choice else "",
            "first_day": first.isoformat(),
            "first_label": day_de(first),
            "today_day": today(request).isoformat(),
            "last_day": (today(request) + timedelta(days=HORIZON_DAYS - 1)).isoformat(),
            "mode": choice[1] if choice else "",
            "slot_days": _by_day(slots),
            "evening": any(s.get("evening_reserved") for s in slots),
            "languages": languages_de(offered_languages(request.app)),
            "values": values or {},
            "idempotency_key": str(uuid.uuid4()),  # each form shown is one attempt; a corrected one, a new
            "errors": errors or [],
            "field_errors": field_errors or {},
        },
        status=status,
    )


@routes.get("/staff/locations/{location_id}/book")
async def book_form(request: web.Request) -> web.Response:
    query = request.query
    return await _page(request, request.match_info["location_id"], query.get("choice"), query.get("from"))


def _add_number_rule(status: int, answer: Any, values: dict[str, str]) -> None:
    """Booking checks that a customer or household number is given (R47) only once every field is valid,
    so a form with a wrong e-mail address and no number named the number only on the second try: a
    refused form names it at once, with the other fields."""
    if status != 422 or values["customer_number"] or values["household_number"]:
        return
    error = answer.get("error") if isinstance(answer, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return
    named = {str(d.get("field") or "").split(".")[-1] for d in details if isinstance(d, dict)}
    if "customer_number" not in named:
        details.append({"field": "customer.customer_number", "type": "missing"})


@routes.post("/staff/locations/{location_id}/book")
async def book_submit(request: web.Request) -> web.StreamResponse:
    location_id = request.match_info["location_id"]
    form = await request.post()
    values = {name: text(form, name, 254) for name in (*CUSTOMER_FIELDS, "interpreter_language", "start")}
    # The languages the customer pages offer (R43): the customer then reads the manage page in it too.
    chosen = text(form, "language", 40)
    values["language"] = chosen if chosen in offered_languages(request.app) else "de"
    values["evening_declaration"] = "true" if form.get("evening_declaration") == "true" else ""
    choice = concern_choice(str(form.get("choice", "")))
    if choice is None or not values["start"]:
        field = "concern_id" if choice is None else "start"
        status: int = 422
        answer: Any = {"error": {"code": "validation_error", "details": [{"field": field}]}}
    else:
        customer = {name: values[name] for name in CUSTOMER_FIELDS if values[name]}
        body: dict[str, Any] = {
            "location_id": location_id,
            "concern_id": choice[0],
            "mode": choice[1],
            "start": values["start"],
            "customer": customer,
            "language": values["language"],
            "evening_declaration": bool(values["evening_declaration"]),
        }
        if values["interpreter_language"]:
            body["interpreter_language"] = values["interpreter_language"][:60]
        # A second click (or a reload) of the same form books once: booking answers it with the first result.
        attempt = text(form, "idempotency_key", 64)
        headers = {"Idempotency-Key": attempt} if attempt else None
        status, answer = await booking_change(
            request, "/api/v1/staff/appointments", {}, body, extra_headers=headers
        )
    if 200 <= status < 300 and isinstance(answer, dict) and isinstance(answer.get("id"), str):
        raise web.HTTPSeeOther(f"/staff/appointments/{answer['id']}?notice=booked")
    _add_number_rule(status, answer, values)
    errors, by_field = explain(status, answer, fields=FIELDS_DE, codes=CODES_DE)
    return await _page(
        request,
        location_id,
        str(form.get("choice", "")),
        str(form.get("from", "")),
        values=values,
        errors=errors,
        field_errors=by_field,
        status=page_status(status) if status >= 400 else 502,
    )
