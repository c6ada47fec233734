"""The pages of a staff member's day (issue 8), server-rendered, German, usable without JavaScript.

- GET  /staff/work                                          the locations one works at, with their pages
- GET  /staff/locations/{location_id}/day?date=             the day list by group and service point (R27)
- GET  /staff/locations/{location_id}/week?date=            the week of that day, by day, group and point
- POST /staff/appointments/{appointment_id}/outcome         record (or correct) an outcome (R23)
- GET  /staff/locations/{location_id}/callbacks?status=     the callback queue, overdue ones marked (R23)
- POST /staff/callbacks/{callback_id}/claim | /close        claim a ticket, close it with a result
- GET  /staff/locations/{location_id}/calls?date=           the call list of the day (R49)
- POST /staff/appointments/{appointment_id}/call-attempts   record a call attempt (R49)

Every write goes through `staff.forwarding.apply_change`: the same call to booking with the signed
identity, and the same audit entry (field names only, never the note's text) as the API route whose rule
the page's route repeats. Booking checks the appointment's location again (R28).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn

import aiohttp_jinja2
import jinja2
from aiohttp import web

from services.gateway.staff import pages as staff_pages
from services.gateway.staff.keys import IDENTITY
from services.gateway.staff.pages import ErrorLine, UpstreamError, location_names
from services.gateway.staff_work.common import (
    CALLBACK_REASONS_DE,
    CALLBACK_STATUS_DE,
    QUEUE_FILTERS_DE,
    STATUS_DE,
    WORK_JINJA,
    booking_change,
    booking_get,
    concerns_of,
    date_from,
    day_de,
    day_of,
    explain,
    hm,
    location_from,
    moment,
    page_status,
    register_filters,
    render,
    text,
    today,
    when,
)
from services.gateway.staff_work.teams import default_team, team_choices
from shared.identity import Role, StaffIdentity
from shared.labels import MODES_DE, OUTCOME_CHOICES_DE, OUTCOMES_DE

HERE = Path(__file__).parent

routes = web.RouteTableDef()


def setup_pages(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        # Its own templates first; the staff pages' base layout (and error page) after them.
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(HERE / "templates"),
                jinja2.FileSystemLoader(staff_pages.HERE / "templates"),
            ]
        ),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        app_key=WORK_JINJA,
    )
    register_filters(env)
    app.router.add_routes(routes)


# --- the locations one works at ---------------------------------------------------------------------
@routes.get("/staff/work")
async def work_index(request: web.Request) -> web.Response:
    identity: StaffIdentity = request[IDENTITY]
    names = await location_names(request)
    mine = identity.locations_with(Role.APPOINTMENT_MANAGER)
    ids = sorted(names) if mine is None else sorted(mine)
    return render(
        request,
        "work_index.html",
        {
            "title": "Terminarbeit",
            "locations": [{"id": i, "name": names.get(i, i)} for i in ids],
            "today": today(request).isoformat(),
        },
    )


# --- the day list (R22, R26, R27) -------------------------------------------------------------------
def _failed_row(
    row_id: str,
    row: str,
    values: dict[str, str],
    status: int,
    answer: Any,
    *,
    targets: dict[str, str],
    **explained: Any,
) -> tuple[list[ErrorLine], dict[str, Any]]:
    """A row's form refused: the lines of the summary, and what the page needs to show that row's form
    again with what was typed and each named field marked with its message (`aria-invalid`,
    `aria-describedby`). Among hundreds of rows a line leads to its field (`targets`: the form's fields
    to their ids), or to the row (`row`: its id) when it names none."""
    lines, by_field = explain(status, answer, **explained)
    summary = (
        [ErrorLine(message, targets.get(field, row)) for field, message in by_field.items()]
        if by_field
        else [ErrorLine(line, row) for line in lines]
    )
    return summary, {"id": row_id, "typed": values, "fields": by_field}


def _name_row(
    errors: Sequence[str | ErrorLine], failed: dict[str, Any] | None, rows: list[dict[str, Any]]
) -> list[str | ErrorLine]:
    """The summary's lines name the row the refused form belongs to ("08:00, Mustermann: ..." or, for a
    ticket, "fällig 05.03.2026 10:30, Mustermann: ..."), so that the reader knows which row to look at."""
    row = next((r for r in rows if failed is not None and r.get("id") == failed["id"]), None)
    if row is None:
        return list(errors)
    customer = row.get("customer") if isinstance(row.get("customer"), dict) else {}
    name = str((customer or {}).get("last_name") or row.get("reference") or "")
    label = hm(row["start"]) if row.get("start") else f"fällig {when(row.get('due_at'))}"
    prefix = f"{label}, {name}: " if name else f"{label}: "
    return [ErrorLine(prefix + str(line), getattr(line, "target", "")) for line in errors]


def _saved_row(request: web.Request, rows: list[dict[str, Any]]) -> str:
    """The row a saved form jumped back to (`?saved=`), when the page shows it: its confirmation stands
    there."""
    saved = request.query.get("saved", "")
    return f"a-{saved}" if saved and any(r.get("id") == saved for r in rows) else ""


def _groups(appointments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The day's appointments by group, then service point, each in order of time."""
    by_group: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for a in sorted(appointments, key=lambda a: (str(a.get("start")), str(a.get("reference")))):
        point = a.get("service_point")
        points = by_group.setdefault(str(a.get("group")), {})
        points.setdefault(point if isinstance(point, int) else 0, []).append(a)
    return [
        {
            "id": group,
            "name": next(str(a.get("group_name") or group) for rows in points.values() for a in rows),
            "count": sum(1 for rows in points.values() for a in rows if a.get("status") != "cancelled"),
            "points": [{"number": n, "appointments": points[n]} for n in sorted(points)],
        }
        for group, points in sorted(by_group.items())
    ]


async def _day_page(
    request: web.Request,
    location_id: str,
    day: date,
    *,
    errors: Sequence[str | ErrorLine],
    status: int = 200,
    failed: dict[str, Any] | None = None,
) -> web.Response:
    appointments = await booking_get(
        request,
        f"/api/v1/staff/locations/{location_id}/appointments",
        {"date": day.isoformat(), "include_cancelled": "true"},
    )
    names = await location_names(request)
    booked = [a for a in appointments if a.get("status") != "cancelled"]
    teams = team_choices(await concerns_of(request, location_id), appointments)
    for a in appointments:
        a["default_team"] = default_team(a, teams)
    return render(
        request,
        "work_day.html",
        {
            "title": f"Tagesliste {names.get(location_id, location_id)}, {day_de(day)}",
            # The page's own address: a refused form re-renders this page at its POST address, and the
            # day picker must not lead there (a GET on it would redirect to another page).
            "page_path": f"/staff/locations/{location_id}/day",
            "location": {"id": location_id, "name": names.get(location_id, location_id)},
            "day": day,
            "previous_day": (day - timedelta(days=1)).isoformat(),
            "next_day": (day + timedelta(days=1)).isoformat(),
            "outcomes_open": day <= today(request),
            "groups": _groups(appointments),
            "total": len(booked),
            "without_outcome": sum(1 for a in booked if not a.get("outcome")),
            "cancelled": len(appointments) - len(booked),
            "outcomes": OUTCOMES_DE,
            "outcome_choices": OUTCOME_CHOICES_DE,
            "teams": teams,
            "modes": MODES_DE,
            "statuses": STATUS_DE,
            "errors": _name_row(errors, failed, appointments),
            "failed": failed,
            "notice_at": _saved_row(request, appointments),
        },
        status=status,
    )


@routes.get("/staff/locations/{location_id}/day")
async def day_page(request: web.Request) -> web.Response:
    day, errors = day_of(request, request.query.get("date"))
    return await _day_page(request, request.match_info["location_id"], day, errors=errors)


@routes.get("/staff/locations/{location_id}/week")
async def week_page(request: web.Request) -> web.Response:
    """The week (Monday to Sunday) around a day, by day, group and service point, to prepare (R27)."""
    location_id = request.match_info["location_id"]
    day, errors = day_of(request, request.query.get("date"))
    monday = day - timedelta(days=day.weekday())
    sunday = monday + timedelta(days=6)
    appointments = await booking_get(
        request,
        f"/api/v1/staff/locations/{location_id}/appointments",
        {"date": monday.isoformat(), "to": sunday.isoformat()},
    )
    by_day: dict[date, list[dict[str, Any]]] = {}
    for a in appointments:
        start = moment(a.get("start"))
        if start is not None:
            by_day.setdefault(start.date(), []).append(a)
    names = await location_names(request)
    return render(
        request,
        "work_week.html",
        {
            "title": f"Woche {names.get(location_id, location_id)}, {monday.day}.{monday.month}. bis"
            f" {day_de(sunday)}",
            "location": {"id": location_id, "name": names.get(location_id, location_id)},
            "day": day,
            "monday": monday,
            "sunday": sunday,
            "previous_week": (monday - timedelta(days=7)).isoformat(),
            "next_week": (monday + timedelta(days=7)).isoformat(),
            "days": [
                {
                    "day": d,
                    "groups": _groups(by_day[d]),
                    "booked": sum(1 for a in by_day[d] if a.get("status") != "cancelled"),
                }
                for d in sorted(by_day)
            ],
            "total": sum(1 for a in appointments if a.get("status") != "cancelled"),
            "modes": MODES_DE,
            "statuses": STATUS_DE,
            "outcomes": OUTCOMES_DE,
            "errors": errors,
        },
    )


def _without_page(status: int, answer: Any) -> NoReturn:
    """A form posted without the location (and day) of its page: done, to the work index; refused, the
    refusal as an error page."""
    if 200 <= status < 300:
        raise web.HTTPSeeOther("/staff/work")
    raise UpstreamError(status, answer)


# R23: a callback ticket is a promise to call, which needs a number.
OUTCOME_KINDS = {
    "no_phone": "Keine Telefonnummer, darum ist ein Rückruf-Ticket nicht möglich. Bitte buchen Sie einen "
    "Folgetermin (in der Akte) oder wählen Sie ein anderes Ergebnis."
}


@routes.post("/staff/appointments/{appointment_id}/outcome")
async def outcome_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    location, day = location_from(form), date_from(form)
    correction = form.get("correction") == "true"
    data: dict[str, Any] = {"outcome": text(form, "outcome", 40), "note": text(form, "note")}
    team = text(form, "team", 64)
    # A correction of a callback to a callback shows a preselected team, not the open ticket's: untouched,
    # it must not hand the ticket (and a colleague's claim) over to that team.
    untouched = bool(team) and team == text(form, "team_shown", 64)
    if team and data["outcome"] == "callback" and not untouched:
        data["team"] = team  # the responsible team of the ticket (R23); booking checks it is the location's
    if correction:
        data.update(correction=True, reason=text(form, "reason", 500))
    appointment_id = request.match_info["appointment_id"]
    if correction and not data["reason"]:
        # Booking refuses it too, but without naming the field; here the page can mark it.
        status: int = 422
        answer: Any = {"error": {"code": "validation_error", "details": [{"field": "reason"}]}}
    else:
        status, answer = await booking_change(
            request,
            "/api/v1/staff/appointments/{appointment_id}/outcome",
            {"appointment_id": appointment_id},
            data,
        )
    if location is None or day is None:
        _without_page(status, answer)
    if not 200 <= status < 300:
        typed = {k: str(v) for k, v in data.items() if isinstance(v, str)}
        typed.update(team=team, correction=str(correction))
        form_ids = (
            {"outcome": "co-", "team": "ct-", "reason": "cr-"}
            if correction
            else {"outcome": "o-", "team": "ot-", "note": "n-"}
        )
        errors, failed = _failed_row(
            appointment_id,
            f"a-{appointment_id}",
            typed,
            status,
            answer,
            targets={name: f"{prefix}{appointment_id}" for name, prefix in form_ids.items()},
            kinds=OUTCOME_KINDS,
        )
        return await _day_page(
            request,
            location,
            date.fromisoformat(day),
            errors=errors,
            status=page_status(status),
            failed=failed,
        )
    callback = isinstance(answer, dict) and bool(answer.get("callback"))
    notice = "callback" if callback else "outcome"
    raise web.HTTPSeeOther(
        f"/staff/locations/{location}/day?date={day}&notice={notice}&saved={appointment_id}#a-{appointment_id}"
    )


# --- the callback queue (R23) -----------------------------------------------------------------------
async def _callbacks_page(
    request: web.Request,
    location_id: str,
    *,
    errors: Sequence[str | ErrorLine],
    status: int = 200,
    failed: dict[str, Any] | None = None,
) -> web.Response:
    which = request.query.get("status", "active")
    which = which if which in QUEUE_FILTERS_DE else "active"
    tickets = await booking_get(
        request, "/api/v1/staff/callbacks", {"location": location_id, "status": which}
    )
    tickets.sort(key=lambda t: (t.get("status") == "closed", str(t.get("due_at"))))
    names = await location_names(request)
    return render(
        request,
        "work_callbacks.html",
        {
            "title": f"Rückrufe {names.get(location_id, location_id)}",
            "page_path": f"/staff/locations/{location_id}/callbacks",
            "location": {"id": location_id, "name": names.get(location_id, location_id)},
            "tickets": tickets,
            "overdue": sum(1 for t in tickets if t.get("overdue")),
            "which": which,
            "filters": QUEUE_FILTERS_DE,
            "statuses": CALLBACK_STATUS_DE,
            "reasons": CALLBACK_REASONS_DE,
            "modes": MODES_DE,
            "me_subject": request[IDENTITY].subject,
            "errors": _name_row(errors, failed, tickets),
            "failed": failed,
        },
        status=status,
    )


@routes.get("/staff/locations/{location_id}/callbacks")
async def callbacks_page(request: web.Request) -> web.Response:
    return await _callbacks_page(request, request.match_info["location_id"], errors=[])


async def _ticket_action(request: web.Request, action: str, data: dict[str, Any]) -> web.StreamResponse:
    form = await request.post()
    location = location_from(form)
    status, answer = await booking_change(
        request,
        f"/api/v1/staff/callbacks/{{callback_id}}/{action}",
        {"callback_id": request.match_info["callback_id"]},
        data,
    )
    if location is None:
        _without_page(status, answer)
    if not 200 <= status < 300:
        typed = {k: v for k, v in data.items() if isinstance(v, str)}
        ticket = request.match_info["callback_id"]
        errors, failed = _failed_row(
            ticket, f"t-{ticket}", typed, status, answer, targets={"result": f"r-{ticket}"}
        )
        return await _callbacks_page(
            request, location, errors=errors, status=page_status(status), failed=failed
        )
    notice = "claimed" if action == "claim" else "closed"
    raise web.HTTPSeeOther(f"/staff/locations/{location}/callbacks?notice={notice}")


@routes.post("/staff/callbacks/{callback_id}/claim")
async def callback_claim(request: web.Request) -> web.StreamResponse:
    return await _ticket_action(request, "claim", {})


@routes.post("/staff/callbacks/{callback_id}/close")
async def callback_close(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return await _ticket_action(request, "close", {"result": text(form, "result")})


# --- the call list (R49) ----------------------------------------------------------------------------
async def _calls_page(
    request: web.Request,
    location_id: str,
    day: date,
    *,
    errors: Sequence[str | ErrorLine],
    status: int = 200,
    failed: dict[str, Any] | None = None,
) -> web.Response:
    calls = await booking_get(
        request, f"/api/v1/staff/locations/{location_id}/calls", {"date": day.isoformat()}
    )
    names = await location_names(request)
    return render(
        request,
        "work_calls.html",
        {
            "title": f"Anrufliste {names.get(location_id, location_id)}, {day_de(day)}",
            "page_path": f"/staff/locations/{location_id}/calls",
            "location": {"id": location_id, "name": names.get(location_id, location_id)},
            "day": day,
            "previous_day": (day - timedelta(days=1)).isoformat(),
            "next_day": (day + timedelta(days=1)).isoformat(),
            "calls": calls,
            "open_calls": sum(
                1
                for c in calls
                if c.get("status") != "cancelled"
                and not any(t.get("reached") for t in c.get("call_attempts") or [])
            ),
            "outcomes": OUTCOMES_DE,
            "statuses": STATUS_DE,
            "errors": _name_row(errors, failed, calls),
            "failed": failed,
            "notice_at": _saved_row(request, calls),
        },
        status=status,
    )


@routes.get("/staff/locations/{location_id}/calls")
async def calls_page(request: web.Request) -> web.Response:
    day, errors = day_of(request, request.query.get("date"))
    return await _calls_page(request, request.match_info["location_id"], day, errors=errors)


CALL_CODES_DE = {"too_early": "Anrufversuche können erst ab dem Tag des Termins erfasst werden."}


@routes.post("/staff/appointments/{appointment_id}/call-attempts")
async def call_attempt_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    location, day = location_from(form), date_from(form)
    reached = str(form.get("reached", ""))
    appointment_id = request.match_info["appointment_id"]
    if reached not in {"true", "false"}:
        status: int = 422
        answer: Any = {"error": {"code": "validation_error", "details": [{"field": "reached"}]}}
    else:
        data = {
            "reached": reached == "true",
            "note": text(form, "note"),
            "missed": reached == "false" and form.get("missed") == "true",
        }
        status, answer = await booking_change(
            request,
            "/api/v1/staff/appointments/{appointment_id}/call-attempts",
            {"appointment_id": appointment_id},
            data,
        )
    if location is None or day is None:
        _without_page(status, answer)
    if not 200 <= status < 300:
        typed = {"reached": reached, "note": text(form, "note"), "missed": str(form.get("missed") == "true")}
        errors, failed = _failed_row(
            appointment_id,
            f"a-{appointment_id}",
            typed,
            status,
            answer,
            targets={"reached": f"ca-{appointment_id}", "note": f"cn-{appointment_id}"},
            codes=CALL_CODES_DE,
        )
        return await _calls_page(
            request,
            location,
            date.fromisoformat(day),
            errors=errors,
            status=page_status(status),
            failed=failed,
        )
    notice = "attempt_callback" if isinstance(answer, dict) and answer.get("callback") else "attempt"
    raise web.HTTPSeeOther(
        f"/staff/locations/{location}/calls?date={day}&notice={notice}&saved={appointment_id}#a-{appointment_id}"
    )
