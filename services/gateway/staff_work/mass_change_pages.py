"""The mass change of a day or a few days (R20, R44) for group leaders: a location closes, or a group
keeps fewer service points; staff see the affected appointments with the proposed new slot (or
"absagen"), confirm, and each customer gets exactly one mail. Booking's preview is stored under its id;
applying that id again changes nothing and answers "already applied". A closure of several days is one
mass change (first day to "bis einschließlich", at most 31 days): nobody is moved into its later days.

- GET  /staff/locations/{location_id}/mass-change           the form: day (and last day), group (or
                                                             the whole location), service points left
- POST /staff/locations/{location_id}/mass-change/preview   the affected appointments and proposals
- POST /staff/locations/{location_id}/mass-change/apply     set the day's capacity, then apply the
                                                             preview once; the result

Applying first saves the day's capacity in the catalog (`staff/day_capacity.py`, shared with the API):
a closure of the location or group (0 points left) or a restriction to points 1..n, the same as the
location page's form. Without it, the places the moved appointments leave would be offered to the next
customers on a day nobody works. Closing or restricting the whole location is for its administrators;
a group leader chooses one of their groups.

The groups to choose from are those of the location's concerns (the catalog's public list): an
appointment always belongs to a concern's group, so a group without concerns has nothing to move.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from aiohttp import web

from services.gateway.staff import day_capacity
from services.gateway.staff.day_capacity import (
    MAX_DAYS,
    MAX_POINTS,
    WHOLE_LOCATION_DE,
    last_day,
    may_change,
)
from services.gateway.staff.pages import location_names, too_many_points_de_of
from services.gateway.staff_work.common import (
    booking_change,
    catalog_id,
    concerns_of,
    day_de,
    explain,
    page_status,
    render,
    text,
    today,
)
from shared.calendar import in_calendar
from shared.labels import MODES_DE

routes = web.RouteTableDef()

FIELDS_DE = {
    "date": "Tag",
    "last": "Bis einschließlich",
    "group_id": "Gruppe",
    "service_points_left": "Verbleibende Serviceplätze",
    "preview_id": "Vorschau",
}
CODES_DE = {
    "not_found": "Diese Vorschau gibt es nicht (mehr). Bitte erstellen Sie eine neue.",
}


def _groups(concerns: list[dict[str, Any]]) -> dict[str, str]:
    groups: dict[str, str] = {}
    for concern in concerns:
        group = concern.get("group_id")
        if isinstance(group, str) and group not in groups:
            groups[group] = str(concern.get("group_name") or group)
    return dict(sorted(groups.items(), key=lambda kv: kv[1]))


async def _group_names(request: web.Request, location_id: str) -> dict[str, str]:
    return _groups(await concerns_of(request, location_id))


async def _context(request: web.Request, location_id: str) -> dict[str, Any]:
    names = await location_names(request)
    return {
        "page": "mass-change",
        "location": {"id": location_id, "name": names.get(location_id, location_id)},
        "day": None,
        "title": f"Massenänderung {names.get(location_id, location_id)}",
    }


async def _form_page(
    request: web.Request,
    location_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "work_mass_change.html",
        {
            **await _context(request, location_id),
            "groups": {
                gid: name
                for gid, name in (await _group_names(request, location_id)).items()
                if may_change(request, location_id, gid)
            },
            "whole_location": may_change(request, location_id, None),
            "values": values or {"date": today(request).isoformat(), "service_points_left": "0"},
            "max_points": MAX_POINTS,
            "max_days": MAX_DAYS,
            "errors": errors or [],
            "field_errors": field_errors or {},
        },
        status=status,
    )


async def _refused(
    request: web.Request, location_id: str, values: dict[str, str], problems: dict[str, str]
) -> web.Response:
    """The form again as typed, each problem at its field and in the summary (422)."""
    return await _form_page(
        request, location_id, values=values, errors=list(problems.values()), field_errors=problems, status=422
    )


@routes.get("/staff/locations/{location_id}/mass-change")
async def mass_change_form(request: web.Request) -> web.Response:
    """The form, filled in from the query where a link gives the day (the location page, after a closure)."""
    values = None
    if request.query.get("date"):
        values, _body, _problems = _read(request.query)
    return await _form_page(request, request.match_info["location_id"], values=values)


def _days_de(first: date, last: date) -> str:
    return day_de(first) if last == first else f"{day_de(first)} bis {day_de(last)}"


def _read(form: Any) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The form's values (to show again), the preview request, and German messages by field."""
    values = {
        "date": text(form, "date", 10),
        "last": text(form, "last", 10),
        "group_id": text(form, "group_id", 64),
        "service_points_left": text(form, "service_points_left", 4) or "0",
    }
    problems: dict[str, str] = {}
    body: dict[str, Any] = {}
    try:
        first = date.fromisoformat(values["date"])
        if not in_calendar(first):  # 9999-12-31: no day to change, and its range would overflow
            raise ValueError(values["date"])
        body["date"] = first.isoformat()
    except ValueError:
        problems["date"] = "Tag: bitte ein Datum wählen."
    else:
        last = last_day(first, values["last"])
        if last is None:
            problems["last"] = (
                f"Bis einschließlich: ein Tag ab dem ersten Tag, höchstens {MAX_DAYS} Tage insgesamt"
                " (bei einer längeren Schließung bitte in Abschnitten)."
            )
        else:
            body["last"] = last.isoformat()
    if values["group_id"]:
        if catalog_id(values["group_id"]) is None:
            problems["group_id"] = "Gruppe: bitte aus der Liste wählen."
        body["group_id"] = values["group_id"]
    try:
        points = int(values["service_points_left"])
    except ValueError:
        points = -1
    if not 0 <= points <= MAX_POINTS:
        problems["service_points_left"] = f"Verbleibende Serviceplätze: eine Zahl von 0 bis {MAX_POINTS}."
    body["service_points_left"] = points
    return values, body, problems


def _points_left_de(text: str) -> str:
    return f"{FIELDS_DE['service_points_left']}: {text}."


def _refused_points_left(answer: Any) -> dict[str, str]:
    """The catalog's refusal of more places left than the group has, worded with the number (as the
    preview words it), for `explain`'s `kinds`."""
    error = answer.get("error") if isinstance(answer, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("type") == "too_many_service_points":
            return {
                "too_many_service_points": _points_left_de(too_many_points_de_of(str(detail.get("message"))))
            }
    return {}


def _refuse_past(request: web.Request, body: dict[str, Any], problems: dict[str, str]) -> None:
    """A day that is over has nothing left to move, and a closure saved for it would only mislead (a
    mistyped year in January "applied" with 0 moves): the first day is today or later."""
    if "date" in body and date.fromisoformat(body["date"]) < today(request):
        problems["date"] = "Tag: Der Tag ist schon vorbei; bitte heute oder einen späteren Tag wählen."


@routes.post("/staff/locations/{location_id}/mass-change/preview")
async def mass_change_preview(request: web.Request) -> web.Response:
    location_id = request.match_info["location_id"]
    values, body, problems = _read(await request.post())
    _refuse_past(request, body, problems)
    if not values["group_id"] and not may_change(request, location_id, None):
        problems["group_id"] = WHOLE_LOCATION_DE
    if problems:
        return await _refused(request, location_id, values, problems)
    # Booking's preview refuses what the catalog would refuse when the closure is saved (more places
    # left than the group has, shared.closures), in the same words as the confirmation.
    status, answer = await booking_change(
        request,
        "/api/v1/staff/locations/{location_id}/mass-change/preview",
        {"location_id": location_id},
        body,
    )
    if not 200 <= status < 300 or not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
        kinds = _refused_points_left(answer)
        errors, by_field = explain(status, answer, fields=FIELDS_DE, codes=CODES_DE, kinds=kinds)
        return await _form_page(
            request,
            location_id,
            values=values,
            errors=errors,
            field_errors=by_field,
            status=page_status(status) if status >= 400 else 502,
        )
    affected = [a for a in answer.get("affected") or [] if isinstance(a, dict)]
    concerns = await concerns_of(request, location_id)  # German names of the concerns and groups
    groups = _groups(concerns)
    return render(
        request,
        "work_mass_change_preview.html",
        {
            **await _context(request, location_id),
            "preview_id": answer["id"],
            "values": values,
            "day_label": _days_de(date.fromisoformat(body["date"]), date.fromisoformat(body["last"])),
            "several_days": body["last"] != body["date"],
            "scope": groups.get(values["group_id"], values["group_id"]) if values["group_id"] else "",
            "points_left": body["service_points_left"],
            "affected": affected,
            "moves": sum(1 for a in affected if a.get("action") == "move"),
            "cancels": sum(1 for a in affected if a.get("action") != "move"),
            "modes": MODES_DE,
            "groups": groups,
            "concern_names": {c["id"]: str(c.get("name") or c["id"]) for c in concerns},
        },
    )


@routes.post("/staff/locations/{location_id}/mass-change/apply")
async def mass_change_apply(request: web.Request) -> web.Response:
    location_id = request.match_info["location_id"]
    form = await request.post()
    values, body, problems = _read(form)
    _refuse_past(request, body, problems)
    try:
        body["preview_id"] = str(uuid.UUID(text(form, "preview_id", 40)))
    except ValueError:
        problems["preview_id"] = "Vorschau: bitte prüfen."
    if problems:
        return await _refused(request, location_id, values, problems)
    status, saved_closure = await day_capacity.save(request, location_id, body)
    answer: Any = saved_closure
    if 200 <= status < 300:
        status, answer = await booking_change(
            request,
            "/api/v1/staff/locations/{location_id}/mass-change/apply",
            {"location_id": location_id},
            {**body, **day_capacity.catalog_revision_of(saved_closure)},
        )
        if not 200 <= status < 300:
            await day_capacity.undo(request, saved_closure)  # nothing moved: the day stays as it was
    if not 200 <= status < 300 or not isinstance(answer, dict):
        kinds = _refused_points_left(answer)
        errors, by_field = explain(status, answer, fields=FIELDS_DE, codes=CODES_DE, kinds=kinds)
        # The form as it was sent, not the defaults (today, the whole location, no places): a new preview
        # is then one click for the same day and scope.
        return await _form_page(
            request,
            location_id,
            values=values,
            errors=errors,
            field_errors=by_field,
            status=page_status(status) if status >= 400 else 502,
        )
    return render(
        request,
        "work_mass_change_done.html",
        {
            **await _context(request, location_id),
            "already": bool(answer.get("already_applied")),
            "day_label": _days_de(date.fromisoformat(body["date"]), date.fromisoformat(body["last"])),
            "scope": (await _group_names(request, location_id)).get(body.get("group_id") or "", ""),
            "points_left": body["service_points_left"],
            "moved": len(answer.get("moved") or []),
            "cancelled": len(answer.get("cancelled") or []),
            "skipped": len(answer.get("skipped") or []),
            "to_check": [
                {"id": c["appointment_id"], "reference": c.get("reference", ""), "start": c.get("start")}
                for c in answer.get("to_check") or []
                if isinstance(c, dict) and "appointment_id" in c
            ],
        },
    )
