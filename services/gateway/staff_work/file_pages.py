"""The appointment file (issue 8): everything about one appointment, and what staff do with it.

- GET  /staff/appointments/{appointment_id}             the file: customer, concern, mode, interpreter,
                                                         notes, status, place, history (R22, R26, R27)
- POST /staff/appointments/{appointment_id}/cancel      cancel with a reason; the customer gets the mail (R9)
- POST /staff/appointments/{appointment_id}/follow-up   book one of the next free slots of the responsible
                                                         team in one click (R24)
- POST /staff/appointments/{appointment_id}/transfer    hand it to the responsible location: a free slot
                                                         there, or a callback ticket (R25)
- POST /staff/appointments/{appointment_id}/reschedule  move it to another free slot of its concern here (a
                                                         caller's wish; the customer gets the mail, R41)
- POST /staff/appointments/{appointment_id}/contact     correct the customer's name, e-mail address or phone
                                                         number (a new address gets the confirmation, R41)

The follow-up and the transfer are chosen in steps that are plain GET forms on the file itself
(`?follow_up=<concern>|<mode>`, `?transfer_to=<location>` and `?transfer=<concern>|<mode>`: catalog ids,
never personal data), so that the page works without JavaScript; the last step is one button per slot.
Booking checks the appointment's location on every call (R28): another location's file is a 403 page
that shows nothing of it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from services.gateway.staff import upstream
from services.gateway.staff.keys import IDENTITY
from services.gateway.staff.mail_languages import MAIL_LANGUAGES
from services.gateway.staff.pages import ErrorLine, UpstreamError, location_names
from services.gateway.staff_work.common import (
    HORIZON_DAYS,
    STATUS_DE,
    booking_change,
    concern_choice,
    concern_options,
    concerns_of,
    explain,
    first_day_of,
    free_slots,
    location_from,
    page_status,
    render,
    text,
    today,
)
from services.gateway.staff_work.contact_form import CONTACT_FIELDS, ContactForm
from services.gateway.staff_work.teams import ENTRANCE_KINDS
from shared.errors import NotFoundError
from shared.identity import Role
from shared.labels import CHANNELS_DE, MODES_DE, OUTCOMES_DE
from shared.web import CLOCK

routes = web.RouteTableDef()

HISTORY_DE = {
    "cancelled": "Abgesagt durch Mitarbeitende",
    "outcome": "Ergebnis erfasst",
    "outcome_corrected": "Ergebnis korrigiert",
    "follow_up_of": "Gebucht als Folgetermin",
    "follow_up_booked": "Folgetermin gebucht",
    "transferred_from": "An einen anderen Standort übergeben",
    "transferred_to": "Von einem anderen Standort übernommen",
    "transferred_to_callback": "Übergeben als Rückruf-Ticket (Termin abgesagt)",
    "rescheduled": "Verlegt durch Mitarbeitende",
    "mass_change_moved": "Durch Massenänderung verlegt",
    "mass_change_cancelled": "Durch Massenänderung abgesagt",
    "link_renewed": "Neuen Link zum Termin gesendet",
    "contact_changed": "Kontaktdaten korrigiert",
    "personal_data_erased": "Personenbezogene Daten auf Antrag gelöscht (Art. 17 DSGVO)",
}
ERASE_CODES = {
    "not_changeable": "Der Termin steht noch bevor: bitte zuerst absagen (die Kundin / der Kunde erhält die "
    "Absage per E-Mail), dann die Daten löschen.",
}
CANCEL_FIELDS = {"by": "Wer sagt ab?", "reason": "Grund der Absage"}
CANCELLED_BY = ("customer", "jobcenter")
FOLLOW_UP_CODES = {
    "too_early": "Ein Folgetermin kann erst ab dem Tag des Termins gebucht werden.",
    "not_changeable": (
        "Ein Folgetermin wird aus einem Termin der Eingangszone gebucht, der nicht abgesagt ist."
    ),
}
TRANSFER_CODES = {"not_changeable": "Nur ein gebuchter Termin kann übergeben werden."}
# R25: without a slot the customer is promised a call back, which needs a number.
TRANSFER_KINDS = {
    "no_phone": "Keine Telefonnummer, darum ist ein Rückruf nicht möglich. Bitte wählen Sie eine Zeit am "
    "zuständigen Standort."
}
MOVE_CODES = {"too_late": "Der Termin hat begonnen oder ist vorbei; er kann nicht mehr verlegt werden."}
CONTACT_CODES = {
    "too_late": "Der Termin hat begonnen oder ist vorbei; seine Kontaktdaten bleiben, wie sie sind.",
    "not_changeable": "Der Termin ist abgesagt; seine Kontaktdaten bleiben, wie sie sind.",
}
CONTACT_TAKEN = (
    "Unter dieser E-Mail-Adresse ist schon ein anderer offener Termin gebucht. Es ist nur ein offener "
    "Termin je Kundin / Kunde erlaubt: bitte prüfen Sie die Adresse."
)
STEP_FIELDS = {
    "concern_id": "Anliegen",
    "mode": "Art",
    "start": "Zeit",
    "location_id": "Standort",
    "evening_declaration": "Abendtermin",
}


def appointment_id_of(request: web.Request) -> str:
    raw = request.match_info["appointment_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFoundError("There is no such appointment.") from None


async def _slots_step(
    request: web.Request,
    location_id: str,
    choice: tuple[str, str] | None,
    offered: list[dict[str, str]],
    first: date,
) -> dict[str, Any] | None:
    """The free slots of the chosen concern and mode (only one the list offers) from the day `first` on."""
    if choice is None or f"{choice[0]}|{choice[1]}" not in {o["value"] for o in offered}:
        return None
    slots = await free_slots(request, location_id, choice[0], choice[1], first=first)
    return {"concern_id": choice[0], "mode": choice[1], "value": f"{choice[0]}|{choice[1]}", "slots": slots}


async def get_appointment(request: web.Request, appointment_id: str) -> dict[str, Any]:
    status, data = await upstream.call(
        request, "booking", "GET", f"/api/v1/staff/appointments/{appointment_id}"
    )
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("customer"), dict):
        raise UpstreamError(status if status != 200 else 502, data)
    return data


async def file_page(
    request: web.Request,
    appointment_id: str,
    *,
    errors: list[Any] | None = None,
    field_errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    a = await get_appointment(request, appointment_id)
    location_id = str(a.get("location") or "")
    names = await location_names(request)
    concerns = await concerns_of(request, location_id)
    # The lists of free times start there (after a refused move: the day they were listed from).
    first = first_day_of(request, request.query.get("from") or (values or {}).get("from"))
    group_kind = next((c.get("group") for c in concerns if c.get("group_id") == a.get("group")), None)
    follow_up: dict[str, Any] | None = None
    if a.get("status") != "cancelled" and group_kind in ENTRANCE_KINDS:
        offered = concern_options([c for c in concerns if c.get("group_id") != a.get("group")])
        choice = concern_choice(request.query.get("follow_up") or (values or {}).get("follow_up"))
        step = await _slots_step(request, location_id, choice, offered, first)
        follow_up = {"options": offered, "step": step}
    move: dict[str, Any] | None = None
    moving = request.query.get("move") == "1" or (values or {}).get("move") == "1"
    if a.get("status") == "booked" and moving:
        slots = await free_slots(request, location_id, str(a.get("concern")), str(a.get("mode")), first=first)
        move = {"slots": slots}
    transfer: dict[str, Any] | None = None
    if a.get("status") == "booked":
        target = location_from(request.query, "transfer_to") or (values or {}).get("transfer_to")
        targets = {i: n for i, n in sorted(names.items(), key=lambda kv: kv[1]) if i != location_id}
        transfer = {"targets": targets, "target": target if target in targets else None}
        if transfer["target"]:
            offered = concern_options(await concerns_of(request, transfer["target"]))
            choice = concern_choice(request.query.get("transfer") or (values or {}).get("transfer"))
            transfer.update(
                options=offered, step=await _slots_step(request, transfer["target"], choice, offered, first)
            )
    return render(
        request,
        "work_file.html",
        {
            "title": f"Termin {a.get('reference', '')}",
            # The contact form jumps back to its section (`#h-contact`), which confirms it.
            "notice_at": "h-contact" if request.query.get("notice", "").startswith("contact") else "",
            # The file's own address: a refused form re-renders it at the POST address (see pages.py).
            "page_path": f"/staff/appointments/{appointment_id}",
            "a": a,
            "location": {"id": location_id, "name": names.get(location_id, location_id)},
            "day": None,
            "page": "file",
            "names": names,
            "history": [h for h in a.get("history") or [] if isinstance(h, dict)],
            "history_de": HISTORY_DE,
            "contact_fields": CONTACT_FIELDS,
            "begun": _begun(request, a),
            "follow_up": follow_up,
            "move": move,
            "first_day": first.isoformat(),
            "today_day": today(request).isoformat(),
            "last_day": (today(request) + timedelta(days=HORIZON_DAYS - 1)).isoformat(),
            "transfer": transfer,
            "may_erase": _may_erase(request, a),
            # A reason the jobcenter gives is mailed as typed: in the language of the customer's mails, which
            # is not the booking's where the notifier has no mail texts in it (then German, R43).
            "mail_language": await request.app[MAIL_LANGUAGES].mail_language(
                request, str(a.get("language") or "de")
            ),
            "outcomes": OUTCOMES_DE,
            "modes": MODES_DE,
            "statuses": STATUS_DE,
            "channels": CHANNELS_DE,
            "values": values or {},
            "errors": errors or [],
            "field_errors": field_errors or {},
        },
        status=status,
    )


def _may_erase(request: web.Request, a: dict[str, Any]) -> bool:
    """The erasure form: for a location administrator of the appointment's location, once the
    appointment is cancelled or has begun, while its customer data are still there."""
    identity = request.get(IDENTITY)
    if identity is None or not identity.has(Role.LOCATION_ADMIN, str(a.get("location") or "")):
        return False
    customer = a.get("customer") or {}
    if not customer.get("email"):
        return False
    return a.get("status") == "cancelled" or _begun(request, a)


@routes.get("/staff/appointments/{appointment_id}")
async def appointment_file(request: web.Request) -> web.Response:
    return await file_page(request, appointment_id_of(request))


@routes.post("/staff/appointments/{appointment_id}/cancel")
async def cancel_submit(request: web.Request) -> web.StreamResponse:
    appointment_id = appointment_id_of(request)
    form = await request.post()
    reason = text(form, "reason", 500)
    by = text(form, "by", 20)
    missing = [{"field": f} for f, ok in (("by", by in CANCELLED_BY), ("reason", bool(reason))) if not ok]
    if missing:
        status: int = 422
        answer: Any = {"error": {"code": "validation_error", "details": missing}}
    else:
        status, answer = await booking_change(
            request,
            "/api/v1/staff/appointments/{appointment_id}/cancel",
            {"appointment_id": appointment_id},
            {"reason": reason, "on_customer_request": by == "customer"},
        )
    if 200 <= status < 300:
        raise web.HTTPSeeOther(f"/staff/appointments/{appointment_id}?notice=cancelled")
    errors, by_field = explain(status, answer, fields=CANCEL_FIELDS)
    return await file_page(
        request,
        appointment_id,
        errors=errors,
        field_errors=by_field,
        values={"reason": reason, "by": by},
        status=page_status(status),
    )


@routes.post("/staff/appointments/{appointment_id}/erase")
async def erase_submit(request: web.Request) -> web.StreamResponse:
    """Art. 17 GDPR: a location administrator erases a past or cancelled appointment's personal data now,
    once the box that a request was made is ticked (it cannot be undone)."""
    appointment_id = appointment_id_of(request)
    form = await request.post()
    if form.get("confirm") != "yes":
        return await file_page(
            request,
            appointment_id,
            field_errors={"erase-confirm": "Bitte bestätigen Sie, dass ein Antrag auf Löschung vorliegt."},
            status=422,
        )
    status, answer = await booking_change(
        request, "/api/v1/staff/appointments/{appointment_id}/erase", {"appointment_id": appointment_id}, {}
    )
    if 200 <= status < 300:
        raise web.HTTPSeeOther(f"/staff/appointments/{appointment_id}?notice=erased")
    errors, _by_field = explain(status, answer, fields={}, codes=ERASE_CODES)
    return await file_page(request, appointment_id, errors=errors, status=page_status(status))


@routes.post("/staff/appointments/{appointment_id}/manage-link")
async def manage_link_submit(request: web.Request) -> web.StreamResponse:
    """A caller lost the confirmation mail: send a new manage link (R41)."""
    appointment_id = appointment_id_of(request)
    status, answer = await booking_change(
        request,
        "/api/v1/staff/appointments/{appointment_id}/manage-link",
        {"appointment_id": appointment_id},
        {},
    )
    if 200 <= status < 300:
        raise web.HTTPSeeOther(f"/staff/appointments/{appointment_id}?notice=link_sent")
    errors, _by_field = explain(status, answer, fields={})
    return await file_page(request, appointment_id, errors=errors, status=page_status(status))


def _begun(request: web.Request, a: dict[str, Any]) -> bool:
    """The appointment has started or passed: its e-mail address is no longer corrected (booking refuses)."""
    try:
        start = datetime.fromisoformat(str(a.get("start")))
    except ValueError:
        return True
    return start <= request.app[CLOCK].now()


@routes.post("/staff/appointments/{appointment_id}/contact")
async def contact_submit(request: web.Request) -> web.StreamResponse:
    """Correct the customer's name, e-mail address or phone number (a typo in the address, a number for a
    callback). Only the fields staff changed go to booking, against the revision the form showed
    (contact_form.py). A new address gets the confirmation with a new link, and the link sent to the old
    one stops working (R41)."""
    appointment_id = appointment_id_of(request)
    sent = ContactForm.read(await request.post())
    changes = sent.changes()
    before = await get_appointment(request, appointment_id)
    if not changes:
        raise web.HTTPSeeOther(f"/staff/appointments/{appointment_id}?notice=contact_unchanged#h-contact")
    old_email = str((before.get("customer") or {}).get("email") or "")
    revision = sent.revision
    for attempt in range(2):
        body: dict[str, Any] = dict(changes)
        if revision is not None:
            body["expected_revision"] = revision
        status, answer = await booking_change(
            request,
            "/api/v1/staff/appointments/{appointment_id}/contact",
            {"appointment_id": appointment_id},
            body,
        )
        if _code(answer) != "stale":
            break
        current = await get_appointment(request, appointment_id)
        if attempt or sent.moved(current) or not isinstance(current.get("revision"), int):
            stale_lines, moved_errors, values = sent.stale(current)
            return await file_page(
                request,
                appointment_id,
                errors=stale_lines,
                field_errors=moved_errors,
                values=values,
                status=409,
            )
        # Only something else changed (a new link, the start has come): what the form showed is still
        # what is stored, so the change goes on against the current revision (booking checks it again).
        revision = current["revision"]
    if 200 <= status < 300 and isinstance(answer, dict):
        new_email = str((answer.get("customer") or {}).get("email") or "")
        notice = "contact_email" if new_email != old_email else "contact"
        raise web.HTTPSeeOther(f"/staff/appointments/{appointment_id}?notice={notice}#h-contact")
    errors: list[str] = []
    if _code(answer) == "already_booked":
        by_field = {"email": CONTACT_TAKEN}
    else:
        errors, by_field = explain(status, answer, fields=CONTACT_FIELDS, codes=CONTACT_CODES)
    field_errors = {f"contact-{name}": message for name, message in by_field.items()}
    lines: list[Any] = [ErrorLine(m, f"contact-{name}") for name, m in by_field.items()] or list(errors)
    return await file_page(
        request,
        appointment_id,
        errors=lines,
        field_errors=field_errors,
        values=sent.values(),
        status=page_status(status) if status >= 400 else 502,
    )


def _code(answer: Any) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _slot_fields(form: Any) -> tuple[str, str, str] | None:
    choice = concern_choice(str(form.get("choice", "")))
    start = str(form.get("start", ""))[:40]
    if choice is None or not start:
        return None
    return choice[0], choice[1], start


@routes.post("/staff/appointments/{appointment_id}/follow-up")
async def follow_up_submit(request: web.Request) -> web.StreamResponse:
    appointment_id = appointment_id_of(request)
    form = await request.post()
    chosen = _slot_fields(form)
    if chosen is None:
        status: int = 422
        answer: Any = {"error": {"code": "validation_error", "details": [{"field": "start"}]}}
    else:
        concern_id, mode, start = chosen
        status, answer = await booking_change(
            request,
            "/api/v1/staff/appointments/{appointment_id}/follow-up",
            {"appointment_id": appointment_id},
            {"concern_id": concern_id, "start": start, "mode": mode},
        )
    if 200 <= status < 300 and isinstance(answer, dict) and isinstance(answer.get("id"), str):
        raise web.HTTPSeeOther(f"/staff/appointments/{answer['id']}?notice=follow_up")
    errors, _ = explain(status, answer, fields=STEP_FIELDS, codes=FOLLOW_UP_CODES)
    return await file_page(
        request,
        appointment_id,
        errors=errors,
        values={"follow_up": str(form.get("choice", ""))},
        status=page_status(status) if status >= 400 else 502,
    )


@routes.post("/staff/appointments/{appointment_id}/transfer")
async def transfer_submit(request: web.Request) -> web.StreamResponse:
    appointment_id = appointment_id_of(request)
    form = await request.post()
    target = location_from(form, "location_id")
    choice = concern_choice(str(form.get("choice", "")))
    start = str(form.get("start", ""))[:40]
    if target is None or choice is None:
        status: int = 422
        answer: Any = {"error": {"code": "validation_error", "details": [{"field": "concern_id"}]}}
    else:
        data: dict[str, Any] = {"location_id": target, "concern_id": choice[0], "mode": choice[1]}
        if start:
            data["start"] = start
        status, answer = await booking_change(
            request,
            "/api/v1/staff/appointments/{appointment_id}/transfer",
            {"appointment_id": appointment_id},
            data,
        )
    if 200 <= status < 300 and isinstance(answer, dict):
        names = await location_names(request)
        teams = {c.get("group_id"): c.get("group_name") for c in await concerns_of(request, str(target))}
        return render(
            request,
            "work_transfer_done.html",
            {
                "teams": {k: str(v) for k, v in teams.items() if isinstance(k, str) and v},
                "title": "Termin übergeben",
                "result": answer,
                "callback": answer.get("callback") if isinstance(answer.get("callback"), dict) else None,
                "target": {"id": target, "name": names.get(str(target), str(target))},
                "modes": MODES_DE,
            },
        )
    errors, _ = explain(status, answer, fields=STEP_FIELDS, codes=TRANSFER_CODES, kinds=TRANSFER_KINDS)
    return await file_page(
        request,
        appointment_id,
        errors=errors,
        values={"transfer_to": target or "", "transfer": str(form.get("choice", ""))},
        status=page_status(status) if status >= 400 else 502,
    )


@routes.post("/staff/appointments/{appointment_id}/reschedule")
async def move_submit(request: web.Request) -> web.StreamResponse:
    appointment_id = appointment_id_of(request)
    form = await request.post()
    start = str(form.get("start", ""))[:40]
    if not start:
        status: int = 422
        answer: Any = {"error": {"code": "validation_error", "details": [{"field": "start"}]}}
    else:
        status, answer = await booking_change(
            request,
            "/api/v1/staff/appointments/{appointment_id}/reschedule",
            {"appointment_id": appointment_id},
            {"start": start},
        )
    if 200 <= status < 300:
        raise web.HTTPSeeOther(f"/staff/appointments/{appointment_id}?notice=moved")
    errors, _ = explain(status, answer, fields=STEP_FIELDS, codes=MOVE_CODES)
    # The free times again (from the day they were listed from), so that another one is one click away.
    return await file_page(
        request,
        appointment_id,
        errors=errors,
        values={"move": "1", "from": str(form.get("from", ""))[:10]},
        status=page_status(status) if status >= 400 else 502,
    )
