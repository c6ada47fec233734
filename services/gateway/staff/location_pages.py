"""The staff pages of the catalog's configuration (R14, R20, R21, R29-R31): for administrators the
locations, the central catalogue of concerns and the internal e-mail allow-list; for location
administrators their location with its groups, service points, concern assignments, weekly windows,
closures, month-change block and lead time; for group leaders short-notice changes of the windows and
capacity of their groups. Each location page shows the policy check of R21.

Every form's route repeats the rule of the API route it calls (`rules.py`), and the change goes through
`forwarding.apply_change`: the same R20 check with booking, the same call with the signed identity and
the same audit entry as through the API. A change that would leave booked appointments without a service
point shows them and asks for explicit confirmation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from services.gateway.staff import upstream
from services.gateway.staff.capacity import CapacityConflictError
from services.gateway.staff.forwarding import apply_change, last_change_of
from services.gateway.staff.keys import IDENTITY, LOCATION
from services.gateway.staff.location_forms import (
    SAVED_DE,
    as_typed,
    name_the_row,
    refused,
    saved_at,
    typed,
)
from services.gateway.staff.pages import (
    ErrorLine,
    UpstreamError,
    ask_first,
    confirmed,
    date_de,
    error_details,
    error_messages,
    form_refused,
    redirect,
    render,
    stale_text,
    with_version,
)
from shared.clock import BERLIN
from shared.errors import OTVError
from shared.identity import Role
from shared.labels import MODES_DE
from shared.web import CLOCK

routes = web.RouteTableDef()

WEEKDAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
GROUP_KINDS_DE = {
    "entrance_zone": "Eingangszone",
    "benefits_team": "Leistungsteam",
    "jba_entrance_zone": "Eingangszone der Jugendberufsagentur",
}
REASONS_DE = {
    "closed": "Tag geschlossen",
    "no_window": "kein Zeitfenster mehr",
    "no_service_point": "kein Serviceplatz mehr frei",
}
FINDINGS_DE = {
    "fewer_than_4_days": "Termine an weniger als 4 Tagen pro Woche (Ziffer 3.3 verlangt mindestens 4).",
    "no_day_until_18": "Kein Tag mit Terminen bis 18 Uhr (Ziffer 3.3 verlangt mindestens einen).",
    "no_entrance_zone": "Der Standort hat keine Eingangszone mit Serviceplätzen.",
    "mandatory_concern_missing_from_catalogue": "Ein Pflichtanliegen fehlt im zentralen Leistungskatalog",
    "mandatory_concern_not_offered": "Ein Pflichtanliegen (Ziffer 3.2) wird nicht angeboten",
    "mandatory_concern_in_wrong_group": "Ein Pflichtanliegen liegt bei einer unpassenden Gruppe",
    "mandatory_concern_without_windows": "Ein Pflichtanliegen hat keine Zeitfenster",
}


# The forms refused as `stale` whose row has no name of its own (name_the_row names windows and groups).
STALE_FORMS_DE = {
    "details": "Standortdaten",
    "lead-time": "Vorlaufzeit",
    "block": "Sperre zum Monatswechsel",
}

APPROVAL_REQUIRED_DE = (
    "Nicht gespeichert: Diese Änderung schränkt die Zeitfenster nach Ziffer 3.3 ein. Das ist vorab mit der"
    " Geschäftsbereichsleitung 2 oder der Bereichsleitung Leistungsgewährung & Eingangszone abzustimmen"
    " (Ziffer 3.6); die Administration trägt die Abstimmung unter „Vorgaben“ ein, danach geht die Änderung."
)


def change_errors(exc: OTVError) -> list[str]:
    """German lines for a refused change; a restriction without approval (R21) names what it would cause."""
    if exc.code == "approval_required":
        return [APPROVAL_REQUIRED_DE, *(_restriction_text(d) for d in exc.details if isinstance(d, dict))]
    return error_messages(exc)


def _restriction_text(finding: dict[str, Any]) -> str:
    """What the change would cause, and from which day (a dated window may end later)."""
    text = finding_text(finding)
    first = (finding.get("details") or {}).get("from")
    try:
        day = date.fromisoformat(str(first))
    except ValueError:
        return text
    return f"Ab {day:%d.%m.%Y}: {text}"


def finding_text(finding: dict[str, Any]) -> str:
    text = FINDINGS_DE.get(str(finding.get("code")))
    if text is None:
        return str(finding.get("message", ""))
    details = finding.get("details") or {}
    days = [d for d in details.get("weekdays") or [] if isinstance(d, int) and 0 <= d < len(WEEKDAYS_DE)]
    if finding.get("code") == "fewer_than_4_days":
        named = ", ".join(WEEKDAYS_DE[d] for d in days) or "keinem Tag"
        return f"{text} Termine gibt es an: {named}."
    concern = details.get("concern_id")
    return f"{text}: {concern}." if concern else text


async def _get(request: web.Request, path: str) -> Any:
    status, data = await upstream.call(request, "catalog", "GET", path)
    if status != 200:
        raise UpstreamError(status, data)
    return data


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str:
    return str(value or "").strip()


# --- a location ------------------------------------------------------------------------------------
async def _location_context(request: web.Request, location_id: str) -> dict[str, Any]:
    identity = request[IDENTITY]
    details = await _get(request, f"/api/v1/admin/locations/{location_id}")
    concerns = await _get(request, "/api/v1/admin/concerns")
    groups = details.get("groups") or []
    windows = sorted(details.get("windows") or [], key=lambda w: (w["group_id"], w["weekday"], w["start"]))
    today = request.app[CLOCK].now().astimezone(BERLIN).date().isoformat()
    closures = sorted(details.get("closures") or [], key=lambda c: (str(c.get("first")), str(c.get("last"))))
    return {
        "title": f"Standort {details.get('name', location_id)}: Zeitfenster und Kapazität",
        "location": details,
        "groups": groups,
        "group_names": {g["id"]: (g.get("name") or {}).get("de", g["id"]) for g in groups},
        "windows_of": {g["id"]: [w for w in windows if w["group_id"] == g["id"]] for g in groups},
        "may_edit_group": {g["id"]: identity.has(Role.GROUP_LEADER, location_id, g["id"]) for g in groups},
        "is_location_admin": identity.has(Role.LOCATION_ADMIN, location_id),
        "is_admin": identity.has(Role.ADMIN),
        "approvals": sorted(details.get("policy_approvals") or [], key=lambda a: str(a.get("valid_from"))),
        "concern_catalogue": concerns,
        "concern_names": {c["id"]: (c.get("name") or {}).get("de", c["id"]) for c in concerns},
        "findings": [{**f, "text": finding_text(f)} for f in details.get("policy_findings") or []],
        # Over closures stay for the record, folded away: the page shows what still lies ahead.
        "closures": [c for c in closures if str(c.get("last")) >= today],
        "past_closures": [c for c in reversed(closures) if str(c.get("last")) < today],
        "today": today,
        "weekdays": WEEKDAYS_DE,
        "group_kinds": GROUP_KINDS_DE,
        "modes": MODES_DE,
    }


async def _location_page(
    request: web.Request,
    location_id: str,
    *,
    errors: list[ErrorLine],
    status: int = 200,
    failed: dict[str, Any] | None = None,
    stale: str = "",
) -> web.Response:
    """The page; after a refused form (`failed`) that form as it was filled in, its lines in the
    summary; after a form refused as `stale` (its key) every form as stored now, the summary naming that
    one. A saved change is confirmed at the section or row it jumped back to (`?saved=`), once: the
    top of the page says it only when there is no such place."""
    context = await _location_context(request, location_id)
    if failed is not None:
        errors = name_the_row(errors, failed["key"], context)
    if stale:
        errors = name_the_row(errors, stale, context)
        if stale in STALE_FORMS_DE:
            errors = [ErrorLine(f"{STALE_FORMS_DE[stale]}: {line.text}", line.target) for line in errors]
    at = saved_at(request.query, context)
    saved = not at and ("saved" in request.query or request.query.get("notice") == "saved")
    page = {**context, "errors": errors, "failed": failed, "saved_at": at, "saved_text": SAVED_DE}
    if at == "closures" and "closure" in request.query:
        everything = [*context["closures"], *context["past_closures"]]
        overlap = _overlap_notice(everything, request.query["closure"], context["group_names"])
        page["saved_text"] = f"{SAVED_DE} {overlap}" if overlap else SAVED_DE
    return render(request, "location.html", {**page, "notice": SAVED_DE if saved else ""}, status=status)


@routes.get("/staff/locations/{location_id}")
async def location_page(request: web.Request) -> web.Response:
    return await _location_page(request, request.match_info["location_id"], errors=[])


def _refusal(
    exc: OTVError, form: Any, key: str, data: dict[str, Any] | None
) -> tuple[list[ErrorLine], dict[str, Any] | None]:
    """The summary's lines of a refused change and, for a form with fields (`key`), the form again: also
    when the change waits for an approval (R21), whose lines name what it would cause, not a field."""
    plain = [ErrorLine(line) for line in change_errors(exc)]
    if not key:
        return plain, None
    lines, failed = refused(key, exc, typed(form), data or {})
    return (plain if exc.code == "approval_required" or not lines else lines), failed


async def _change(
    request: web.Request,
    method: str,
    api_route: str,
    params: dict[str, str],
    data: dict[str, Any] | None,
    *,
    anchor: str,
    form_key: str = "",
    stale_key: str = "",
    query: dict[str, str] | None = None,
    saved_as: str = "",
    taken_from: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Make the change; back to the location page at `anchor`, or the page with the errors and the
    form `form_key` as it was filled in, or (R20) the list of affected appointments to confirm. A
    change without fields of its own (a removal) names its form in `stale_key`: refused as stale, that
    form is shown as stored now. `saved_as` names the query parameter that takes the id of what was
    created along to the page (which says more about it). `taken_from` names the fields left empty and
    sent with another's value: a refusal of one of them is shown at that other field."""
    form = await request.post()
    location_id = request[LOCATION]
    confirmed = form.get("confirm_affected") == "true"
    try:
        status, answer, affected = await apply_change(
            request, "catalog", method, api_route, params, data, confirmed=confirmed, query=query
        )
    except CapacityConflictError as conflict:
        return render(
            request,
            "capacity_confirm.html",
            {
                "title": "Gebuchte Termine betroffen",
                "affected": conflict.details,
                "reasons": REASONS_DE,
                "action": request.path,
                "fields": [(k, v) for k, v in form.items() if k not in {"csrf_token", "confirm_affected"}],
                "back": f"/staff/locations/{location_id}#{anchor}",
                # A closure: the mass change of its (first) day does both, the closure and the moves.
                "mass_change": _mass_change_link(location_id, data) if data and "first" in data else "",
            },
            status=409,
        )
    except OTVError as exc:
        error: OTVError = exc
    else:
        if 200 <= status < 300:
            created = answer.get("id") if saved_as and isinstance(answer, dict) else None
            saved = {saved_as: str(created)} if isinstance(created, int) else {}
            return _changed(request, location_id, affected, data, anchor, saved)
        error = UpstreamError(status, answer)
    if error.code == "stale" and (stale_key or form_key):
        lines = [ErrorLine(stale_text(request, await last_change_of(request, params)), anchor)]
        key = stale_key or form_key
        return await _location_page(request, location_id, errors=lines, status=error.status, stale=key)
    if taken_from:
        error = as_typed(error, taken_from)
    return await _refused_change(request, location_id, error, form, form_key, data)


def _changed(
    request: web.Request,
    location_id: str,
    affected: list[dict[str, Any]],
    data: dict[str, Any] | None,
    anchor: str,
    saved: dict[str, str],
) -> web.Response:
    """Saved: the appointments it left without a service point (R20), else back to where it was made
    (with `saved`, what the page says about the change)."""
    if affected:
        return render(
            request,
            "capacity_done.html",
            {
                "title": "Änderung gespeichert",
                "affected": affected,
                "reasons": REASONS_DE,
                "back": f"/staff/locations/{location_id}#{anchor}",
                "mass_change": _mass_change_link(location_id, data),
            },
        )
    raise redirect(f"/staff/locations/{location_id}?{urlencode({'saved': anchor, **saved})}#{anchor}")


async def _refused_change(
    request: web.Request,
    location_id: str,
    exc: OTVError,
    form: Any,
    form_key: str,
    data: dict[str, Any] | None,
) -> web.Response:
    """The page after a refused change, the form as it was filled in. (Made in a form loaded before
    someone else changed the same thing, 409 `stale`, the page instead shows that form as stored now,
    not what was typed against values that are no longer there, and says so at its row: `_change`.)"""
    errors, failed = _refusal(exc, form, form_key, data)
    return await _location_page(request, location_id, errors=errors, status=exc.status, failed=failed)


def _mass_change_link(location_id: str, data: dict[str, Any] | None) -> str:
    """The mass change that handles the affected appointments, filled in for a closure's days (one mass
    change for all of them: nobody is moved into its later days, R44)."""
    link = f"/staff/locations/{location_id}/mass-change"
    if data and isinstance(data.get("first"), str) and "service_points_left" in data:
        query = {
            "date": data["first"],
            "last": data.get("last") or data["first"],
            "group_id": data.get("group_id") or "",
            "service_points_left": str(data["service_points_left"]),
        }
        link += "?" + urlencode(query)
    return link


@routes.post("/staff/locations/{location_id}/details")
async def location_details(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    data: dict[str, Any] = {k: _text(form.get(k)) for k in ("name", "street", "postcode", "city", "hotline")}
    data["phone"] = _text(form.get("phone")) or None
    return await _change(
        request,
        "PATCH",
        "/api/v1/admin/locations/{location_id}",
        {"location_id": request.match_info["location_id"]},
        with_version(data, form),
        anchor="details",
        form_key="details",
    )


@routes.post("/staff/locations/{location_id}/lead-time")
async def location_lead_time(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    data = {"min_minutes": _int(form.get("min_minutes")), "max_days": _int(form.get("max_days"))}
    return await _change(
        request,
        "PUT",
        "/api/v1/admin/locations/{location_id}/lead-time",
        {"location_id": request.match_info["location_id"]},
        with_version(data, form),
        anchor="lead-time",
        form_key="lead-time",
    )


@routes.post("/staff/locations/{location_id}/month-change-block")
async def location_block(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    params = {"location_id": request.match_info["location_id"]}
    route = "/api/v1/admin/locations/{location_id}/month-change-block"
    if form.get("action") == "remove":
        # A DELETE has no body: the version the form was loaded with goes as a query parameter.
        query = with_version({}, form)
        return await _change(
            request, "DELETE", route, params, None, anchor="block", stale_key="block", query=query
        )
    data = {"last_days": _int(form.get("last_days"), 0), "first_days": _int(form.get("first_days"), 0)}
    return await _change(
        request, "PUT", route, params, with_version(data, form), anchor="block", form_key="block"
    )


@routes.post("/staff/locations/{location_id}/groups")
async def location_add_group(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    data = {
        "id": _text(form.get("id")),
        "kind": _text(form.get("kind")),
        "name": {"de": _text(form.get("name"))},
        "service_points": _int(form.get("service_points")),
    }
    return await _change(
        request,
        "POST",
        "/api/v1/admin/locations/{location_id}/groups",
        {"location_id": request.match_info["location_id"]},
        data,
        anchor="groups",
        form_key="new-group",
    )


@routes.post("/staff/groups/{group_id}")
async def group_change(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    data: dict[str, Any] = {"service_points": _int(form.get("service_points"))}
    if "name" in form:  # location administrators also rename and switch groups on and off
        # The customers' concern page shows the group's name in their language: all three are sent, so a
        # rename does not wipe the translations (an empty one falls back to German).
        names = {"de": _text(form.get("name")), "en": _text(form.get("name_en"))}
        names["de-x-ls"] = _text(form.get("name_de-x-ls"))
        data["name"] = {lang: text for lang, text in names.items() if text}
        data["active"] = form.get("active") == "true"
    return await _change(
        request,
        "PATCH",
        "/api/v1/admin/groups/{group_id}",
        {"group_id": request.match_info["group_id"]},
        with_version(data, form),
        anchor=f"group-{request.match_info['group_id']}",
        form_key=f"group-{request.match_info['group_id']}",
    )


def _window_data(form: Any) -> dict[str, Any]:
    return {
        "weekday": _int(form.get("weekday")),
        "start": _text(form.get("start")),
        "end": _text(form.get("end")),
        "service_points": _int(form.get("service_points")),
        "evening": form.get("evening") == "true",
        "valid_from": _text(form.get("valid_from")) or None,
        "valid_until": _text(form.get("valid_until")) or None,
    }


@routes.post("/staff/groups/{group_id}/windows")
async def window_add(request: web.Request) -> web.StreamResponse:
    group_id = request.match_info["group_id"]
    return await _change(
        request,
        "POST",
        "/api/v1/admin/groups/{group_id}/windows",
        {"group_id": group_id},
        _window_data(await request.post()),
        anchor=f"group-{group_id}",
        form_key=f"new-window-{group_id}",
    )


@routes.post("/staff/windows/{window_id}")
async def window_change(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return await _change(
        request,
        "PUT",
        "/api/v1/admin/windows/{window_id}",
        {"window_id": request.match_info["window_id"]},
        with_version(_window_data(form), form),
        anchor=f"window-{request.match_info['window_id']}",
        form_key=f"window-{request.match_info['window_id']}",
    )


@routes.post("/staff/windows/{window_id}/delete")
async def window_delete(request: web.Request) -> web.StreamResponse:
    if not confirmed(await request.post()):
        asked = await _ask_before_deleting_window(request, request.match_info["window_id"])
        if asked is not None:
            return asked
    return await _change(
        request,
        "DELETE",
        "/api/v1/admin/windows/{window_id}",
        {"window_id": request.match_info["window_id"]},
        None,
        anchor="groups",
    )


async def _ask_before_deleting_window(request: web.Request, window_id: str) -> web.Response | None:
    """The confirmation before a weekly window is deleted (its day, times, service points and validity
    would have to be typed again, and the group takes no new appointments in that time); None for a
    window the location does not have (the catalog refuses)."""
    location_id = request[LOCATION]
    details = await _get(request, f"/api/v1/admin/locations/{location_id}")
    window = next((w for w in details.get("windows") or [] if str(w.get("id")) == window_id), None)
    if window is None:
        return None
    groups = {g.get("id"): (g.get("name") or {}).get("de", g.get("id")) for g in details.get("groups") or []}
    day = WEEKDAYS_DE[int(window["weekday"])]
    start, end = str(window.get("start", ""))[:5], str(window.get("end", ""))[:5]
    group = groups.get(window.get("group_id"), window.get("group_id"))
    return ask_first(
        request,
        title="Zeitfenster löschen?",
        question=f"Das Zeitfenster {day} {start} bis {end} Uhr der Gruppe „{group}“ am Standort "
        f"{details.get('name', location_id)} löschen?",
        consequence="In dieser Zeit nimmt die Gruppe dann keine neuen Termine mehr an. Um es wieder "
        "einzurichten, sind Tag, Zeiten und Serviceplätze neu einzutragen.",
        button=f"Zeitfenster {day} {start} löschen",
        back=f"/staff/locations/{location_id}#window-{window_id}",
    )


def _closure_de(closure: dict[str, Any], group_names: dict[str, str]) -> str:
    """A closure or restriction and whom it concerns, after "die": "Schließung des ganzen Standorts",
    "Einschränkung auf die Plätze 1 bis 2 der Gruppe „Eingangszone“"."""
    group_id = closure.get("group_id")
    where = f"der Gruppe „{group_names.get(group_id, group_id)}“" if group_id else "des ganzen Standorts"
    points = closure.get("service_points_left") or 0
    if not points:
        return f"Schließung {where}"
    return f"Einschränkung auf {'den Platz 1' if points == 1 else f'die Plätze 1 bis {points}'} {where}"


def _days_de(first: str, last: str) -> str:
    return f"am {first}" if first == last else f"vom {first} bis {last}"


def _overlap_notice(closures: list[dict[str, Any]], saved_id: str, group_names: dict[str, str]) -> str:
    """What else is entered for the days of the closure just saved (`saved_id`): both apply, the
    stricter wins (R20). Legitimate (a restriction for a week, one day of it closed) but easily a slip,
    so the confirmation names the days; "" when nothing overlaps."""
    saved = next((c for c in closures if str(c.get("id")) == saved_id), None)
    if saved is None:
        return ""
    lines = []
    for other in closures:
        concerns_both = None in (saved.get("group_id"), other.get("group_id")) or (
            saved.get("group_id") == other.get("group_id")
        )
        first = max(str(saved.get("first")), str(other.get("first")))
        last = min(str(saved.get("last")), str(other.get("last")))
        if other is saved or not concerns_both or first > last:
            continue
        days = _days_de(date_de(first), date_de(last))
        lines.append(f"{days[0].upper()}{days[1:]} gilt schon die {_closure_de(other, group_names)}.")
    if not lines:
        return ""
    return (
        f"Hinweis: {' '.join(lines)} Wo sich Einträge überschneiden, gilt der strengere (weniger "
        "Serviceplätze oder geschlossen)."
    )


async def _ask_before_lifting_closure(request: web.Request, closure_id: str) -> web.Response | None:
    """The confirmation before a closure or restriction is lifted (customers can book those days again
    at once; to close them again it must be typed again); None for a closure the location does not have
    (the catalog refuses)."""
    location_id = request[LOCATION]
    details = await _get(request, f"/api/v1/admin/locations/{location_id}")
    closure = next((c for c in details.get("closures") or [] if str(c.get("id")) == closure_id), None)
    if closure is None:
        return None
    groups = {g.get("id"): (g.get("name") or {}).get("de", g.get("id")) for g in details.get("groups") or []}
    first, last = date_de(closure.get("first")), date_de(closure.get("last"))
    kind = "Einschränkung" if closure.get("service_points_left") else "Schließung"
    return ask_first(
        request,
        title=f"{kind} aufheben?",
        question=f"Die {_closure_de(closure, groups)} am Standort {details.get('name', location_id)} "
        f"{_days_de(first, last)} aufheben?",
        consequence=f"{'An diesem Tag' if first == last else 'An diesen Tagen'} können Kundinnen und Kunden "
        f"dann sofort wieder Termine buchen. Um die {kind} wieder einzurichten, ist sie neu einzutragen.",
        button=f"{kind} ab {first} aufheben",
        back=f"/staff/locations/{location_id}#closures",
    )


@routes.post("/staff/locations/{location_id}/concerns")
async def offer_change(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    params = {"location_id": request.match_info["location_id"], "concern_id": _text(form.get("concern_id"))}
    route = "/api/v1/admin/locations/{location_id}/concerns/{concern_id}"
    if form.get("action") == "remove":
        if not confirmed(form):
            asked = await _ask_before_removing(request, params["location_id"], params["concern_id"])
            if asked is not None:
                return asked
        return await _change(request, "DELETE", route, params, None, anchor="concerns")
    data = {
        "group_id": _text(form.get("group_id")),
        "duration_minutes": _int(form.get("duration_minutes")),
        "modes": [str(m) for m in form.getall("modes", [])],
    }
    return await _change(request, "PUT", route, params, data, anchor="concerns", form_key="offer")


async def _ask_before_removing(
    request: web.Request, location_id: str, concern_id: str
) -> web.Response | None:
    """The confirmation before a concern is no longer offered at a location (its group, duration and forms
    would have to be typed again); None for a concern the location does not offer (the catalog refuses)."""
    details = await _get(request, f"/api/v1/admin/locations/{location_id}")
    offered = {str(o.get("concern_id")) for o in details.get("concerns") or [] if isinstance(o, dict)}
    if concern_id not in offered:
        return None
    concerns = await _get(request, "/api/v1/admin/concerns")
    name = next(
        ((c.get("name") or {}).get("de", concern_id) for c in concerns if c.get("id") == concern_id),
        concern_id,
    )
    return ask_first(
        request,
        title="Anliegen entfernen?",
        question=f"Das Anliegen „{name}“ am Standort {details.get('name', location_id)} nicht mehr anbieten?",
        consequence="Es ist hier dann nicht mehr buchbar. Um es wieder anzubieten, sind Gruppe, Dauer und "
        "Form des Termins neu einzutragen.",
        button=f"„{name}“ entfernen",
        back=f"/staff/locations/{location_id}#concerns",
        fields=[("concern_id", concern_id), ("action", "remove")],
    )


@routes.post("/staff/locations/{location_id}/closures")
async def closure_add(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    # Absent (an older form) means closed; anything but a number, even empty, goes on as typed for the
    # catalog to refuse (422): a cleared field must not close the day by mistake.
    points_left = _text(form.get("service_points_left", "0"))
    # "Letzter Tag" left empty: a closure of the first day only, whose refusal (a day already over) is
    # shown at "Erster Tag", the date that was typed.
    one_day = not _text(form.get("last"))
    data = {
        "first": _text(form.get("first")),
        "last": _text(form.get("last")) or _text(form.get("first")),
        "group_id": _text(form.get("group_id")) or None,
        "reason": _text(form.get("reason")),
        "service_points_left": points_left if _int(points_left) is None else _int(points_left),
    }
    return await _change(
        request,
        "POST",
        "/api/v1/admin/locations/{location_id}/closures",
        {"location_id": request.match_info["location_id"]},
        data,
        anchor="closures",
        form_key="closure",
        saved_as="closure",
        taken_from={"last": "first"} if one_day else None,
    )


@routes.post("/staff/closures/{closure_id}/delete")
async def closure_delete(request: web.Request) -> web.StreamResponse:
    if not confirmed(await request.post()):
        asked = await _ask_before_lifting_closure(request, request.match_info["closure_id"])
        if asked is not None:
            return asked
    return await _change(
        request,
        "DELETE",
        "/api/v1/admin/closures/{closure_id}",
        {"closure_id": request.match_info["closure_id"]},
        None,
        anchor="closures",
    )


@routes.post("/staff/locations/{location_id}/policy-approvals")
async def approval_add(request: web.Request) -> web.StreamResponse:
    """R21: an administrator records the prior approval of a restriction of the opening times (directive
    3.6), so that the location's administrators can then make it."""
    form = await request.post()
    data = {
        "rule": "R17",
        "reference": _text(form.get("reference")),
        "approved_by": _text(form.get("approved_by")),
        "valid_from": _text(form.get("valid_from")),
        "valid_until": _text(form.get("valid_until")),
        "note": _text(form.get("note")),
    }
    return await _change(
        request,
        "POST",
        "/api/v1/admin/locations/{location_id}/policy-approvals",
        {"location_id": request.match_info["location_id"]},
        data,
        anchor="policy",
        form_key="approval",
    )


# --- central administration ------------------------------------------------------------------------
Refusal = Callable[[OTVError, Any], tuple[list[ErrorLine], dict[str, Any] | None]]


def _plain(exc: OTVError, _form: Any) -> tuple[list[ErrorLine], dict[str, Any] | None]:
    return [ErrorLine(line) for line in error_messages(exc)], None


def _form_of(key: str, *fields: str) -> Refusal:
    """A refused form of the page comes back as it was filled in, its fields marked (`location_forms`)."""

    def explain(exc: OTVError, form: Any) -> tuple[list[ErrorLine], dict[str, Any] | None]:
        return form_refused(key, exc, form, fields)

    return explain


async def _admin_change(
    request: web.Request,
    method: str,
    api_route: str,
    params: dict[str, str],
    data: dict[str, Any] | None,
    *,
    back: str,
    page: Any,
    refusal: Refusal = _plain,
) -> web.StreamResponse:
    try:
        status, answer, _ = await apply_change(request, "catalog", method, api_route, params, data)
    except OTVError as exc:
        error: OTVError = exc
    else:
        if 200 <= status < 300:
            raise redirect(f"{back}?notice=saved")
        error = UpstreamError(status, answer)
    if error.code == "stale":
        # Saved by someone else since the form was loaded: the page shows what is stored now.
        line = ErrorLine(stale_text(request, await last_change_of(request, params)))
        stale: web.StreamResponse = await page(request, errors=[line], status=error.status)
        return stale
    lines, failed = refusal(error, await request.post())
    response: web.StreamResponse = await page(request, errors=lines, status=error.status, failed=failed)
    return response


@routes.get("/staff/admin/locations")
async def admin_locations(request: web.Request) -> web.Response:
    return await _admin_locations(request, errors=[])


async def _admin_locations(
    request: web.Request, *, errors: list[ErrorLine], status: int = 200, failed: dict[str, Any] | None = None
) -> web.Response:
    locations = await _get(request, "/api/v1/admin/locations")
    policy = await _get(request, "/api/v1/admin/policy")
    findings = {
        p["location_id"]: [{**f, "text": finding_text(f)} for f in p.get("findings") or []]
        for p in policy.get("locations") or []
    }
    notice = "Gespeichert." if request.query.get("notice") == "saved" else ""
    return render(
        request,
        "admin_locations.html",
        {
            "title": "Standorte",
            "locations": locations,
            "findings": findings,
            "errors": errors,
            "notice": notice,
            "failed": failed,
        },
        status=status,
    )


@routes.post("/staff/admin/locations")
async def admin_location_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    data: dict[str, Any] = {
        k: _text(form.get(k)) for k in ("id", "name", "street", "postcode", "city", "hotline")
    }
    data["city"] = data["city"] or "Bremen"
    return await _admin_change(
        request,
        "POST",
        "/api/v1/admin/locations",
        {},
        data,
        back="/staff/admin/locations",
        page=_admin_locations,
        refusal=_form_of("loc", "id", "name", "street", "postcode", "city", "hotline"),
    )


@routes.get("/staff/admin/concerns")
async def admin_concerns(request: web.Request) -> web.Response:
    return await _admin_concerns(request, errors=[])


async def _admin_concerns(
    request: web.Request, *, errors: list[ErrorLine], status: int = 200, failed: dict[str, Any] | None = None
) -> web.Response:
    concerns = await _get(request, "/api/v1/admin/concerns")
    notice = "Gespeichert." if request.query.get("notice") == "saved" else ""
    return render(
        request,
        "admin_concerns.html",
        {
            "title": "Zentraler Leistungskatalog",
            "concerns": concerns,
            "group_kinds": GROUP_KINDS_DE,
            "errors": errors,
            "notice": notice,
            "failed": failed,
        },
        status=status,
    )


# The inputs of the new concern's form whose ids are not `c-<the field the catalog names>`.
NEW_CONCERN_IDS = {
    "c-group_kinds": "c-kind-" + next(iter(GROUP_KINDS_DE)),
    "c-default_duration_minutes": "c-duration",
}


def _new_concern_refusal(exc: OTVError, form: Any) -> tuple[list[ErrorLine], dict[str, Any] | None]:
    """The refused new concern as it was filled in, each field the catalog named marked and linked from
    the summary, like the other forms of the administration (the catalog names `name.de`: the field
    `name`, whose input is the German name)."""
    fields = ("id", "name", "group_kinds", "default_duration_minutes")
    lines, failed = form_refused("c", exc, form, fields)
    return [ErrorLine(line.text, NEW_CONCERN_IDS.get(line.target, line.target)) for line in lines], failed


LANGUAGES = ("de", "en", "de-x-ls")


def _rows(form: Any, prefix: str) -> list[dict[str, str]]:
    """The rows of a repeated group of fields (`doc_de`, `doc_en`, `doc_de-x-ls`, ...), in page order; a
    row without its German text is dropped (that is how a document or link is removed)."""
    columns = {lang: [_text(v) for v in form.getall(f"{prefix}_{lang}", [])] for lang in LANGUAGES}
    rows = []
    for i, german in enumerate(columns["de"]):
        if german:
            row = {
                lang: columns[lang][i] for lang in LANGUAGES if i < len(columns[lang]) and columns[lang][i]
            }
            rows.append(row)
    return rows


def _links(form: Any) -> list[dict[str, Any]]:
    urls = [_text(v) for v in form.getall("link_url", [])]
    labels = {lang: [_text(v) for v in form.getall(f"link_{lang}", [])] for lang in LANGUAGES}
    links = []
    for i, url in enumerate(urls):
        if url:
            label = {lang: labels[lang][i] for lang in LANGUAGES if i < len(labels[lang]) and labels[lang][i]}
            links.append({"label": {"de": url, **label}, "url": url})
    return links


def _concern_data(form: Any, *, new: bool) -> dict[str, Any]:
    info = {lang: _text(form.get(f"info_{lang}")) for lang in ("de", "en", "de-x-ls")}
    name = {lang: _text(form.get(f"name_{lang}")) for lang in ("de", "en", "de-x-ls")}
    data: dict[str, Any] = {
        "group_kinds": [str(k) for k in form.getall("group_kinds", [])],
        "name": {k: v for k, v in name.items() if v},
        "info": {k: v for k, v in info.items() if v},
        "links": _links(form),
        "documents": _rows(form, "doc"),
        "emergency": form.get("emergency") == "true",
        "sensitive": form.get("sensitive") == "true",
        "default_duration_minutes": _int(form.get("default_duration_minutes"), 20),
    }
    if new:
        data["id"] = _text(form.get("id"))
    else:
        data["active"] = form.get("active") == "true"
    return data


@routes.post("/staff/admin/concerns")
async def admin_concern_create(request: web.Request) -> web.StreamResponse:
    return await _admin_change(
        request,
        "POST",
        "/api/v1/admin/concerns",
        {},
        _concern_data(await request.post(), new=True),
        back="/staff/admin/concerns",
        page=_admin_concerns,
        refusal=_new_concern_refusal,
    )


@routes.get("/staff/admin/concerns/{concern_id}")
async def admin_concern(request: web.Request) -> web.Response:
    return await _admin_concern(request, errors=[])


async def _admin_concern(
    request: web.Request, *, errors: list[ErrorLine], status: int = 200, failed: dict[str, Any] | None = None
) -> web.Response:
    stored = await _get(request, f"/api/v1/admin/concerns/{request.match_info['concern_id']}")
    # After a refusal the form as it was filled in (`failed`), else what is stored.
    concern = {**failed["concern"], "id": stored.get("id")} if failed else stored
    return render(
        request,
        "admin_concern.html",
        {
            "title": f"Anliegen: {(stored.get('name') or {}).get('de', stored.get('id'))}",
            "concern": concern,
            "group_kinds": GROUP_KINDS_DE,
            # The stored rows and two empty ones to add to (a row without German text is removed); after a
            # refusal the rows as they were sent.
            "document_rows": failed["documents"]
            if failed
            else [*(d for d in concern.get("documents") or [] if isinstance(d, dict)), {}, {}],
            "link_rows": failed["links"]
            if failed
            else [*(k for k in concern.get("links") or [] if isinstance(k, dict)), {}, {}],
            "errors": errors,
            "fe": failed["fields"] if failed else {},
        },
        status=status,
    )


LANGUAGE_IDS = {"de": "de", "en": "en", "de-x-ls": "ls"}  # of the inputs' ids (`name_ls`, `doc-1-ls`)
LANGUAGE_NAMES_DE = {"de": "Deutsch", "en": "Englisch", "de-x-ls": "Leichte Sprache"}


def _sent_rows(form: Any, prefix: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The repeated rows of the concern form as they were sent, empty ones too (`doc_de`, `doc_en`, ...)."""
    values = {c: [str(v) for v in form.getall(f"{prefix}_{c}", [])] for c in columns}
    count = max((len(v) for v in values.values()), default=0)
    return [{c: values[c][i] if i < len(values[c]) else "" for c in columns} for i in range(count)]


def _concern_refusal(exc: OTVError, form: Any) -> tuple[list[ErrorLine], dict[str, Any] | None]:
    """The refused concern form as it was filled in (every edit kept, not the stored concern), each field
    the catalog named marked and linked from the summary. The catalog counts documents and links among
    the rows it got (a row without German text or address is not sent), the page among all its rows."""
    documents = _sent_rows(form, "doc", LANGUAGES)
    link_rows = _sent_rows(form, "link", ("url", *LANGUAGES))
    rows_sent = {
        "documents": [i + 1 for i, row in enumerate(documents) if row["de"].strip()],
        "links": [i + 1 for i, row in enumerate(link_rows) if row["url"].strip()],
    }
    lines: list[ErrorLine] = []
    fields: dict[str, str] = {}
    for path, line in error_details(exc):
        target, text = _concern_field(path.split("."), line, rows_sent)
        lines.append(ErrorLine(text, target))
        if target:
            fields.setdefault(target, text)
    concern = {
        "name": {lang: str(form.get(f"name_{lang}", "")) for lang in LANGUAGES},
        "info": {lang: str(form.get(f"info_{lang}", "")) for lang in LANGUAGES},
        "group_kinds": [str(k) for k in form.getall("group_kinds", [])],
        "default_duration_minutes": str(form.get("default_duration_minutes", "")),
        "emergency": form.get("emergency") == "true",
        "sensitive": form.get("sensitive") == "true",
        "active": form.get("active") == "true",
        # The version the form was loaded with, so that its next save is still checked against it.
        "version": str(form.get("expected_version", "")),
    }
    links = [{"url": row["url"], "label": {lang: row[lang] for lang in LANGUAGES}} for row in link_rows]
    failed = {"concern": concern, "documents": documents, "links": links, "fields": fields}
    return lines or [ErrorLine(line) for line in error_messages(exc)], failed


CONCERN_FIELD_IDS = {
    "group_kinds": "kind-" + next(iter(GROUP_KINDS_DE)),
    "default_duration_minutes": "duration",
    "emergency": "emergency",
    "sensitive": "sensitive",
    "active": "active",
}


def _concern_field(parts: list[str], line: str, rows_sent: dict[str, list[int]]) -> tuple[str, str]:
    """The input of the concern form a refused field path names (`name.en`, `links.0.url`), and its line
    of the summary named as the form shows it ("Link 1: Adresse: ...", "Hinweise (Englisch): ...")."""
    problem = line.split(": ", 1)[-1]
    head, rest = parts[0], parts[1:]
    if head in ("name", "info") and rest and rest[0] in LANGUAGE_IDS:
        label = "Name" if head == "name" else "Hinweise"
        return f"{head}_{LANGUAGE_IDS[rest[0]]}", f"{label} ({LANGUAGE_NAMES_DE[rest[0]]}): {problem}"
    if head in rows_sent and rest and rest[0].isdigit() and int(rest[0]) < len(rows_sent[head]):
        row = rows_sent[head][int(rest[0])]
        language = next((p for p in reversed(rest) if p in LANGUAGE_IDS), "de")
        if head == "documents":
            return (
                f"doc-{row}-{LANGUAGE_IDS[language]}",
                f"Unterlage {row} ({LANGUAGE_NAMES_DE[language]}): {problem}",
            )
        if rest[-1] == "url" or "label" not in rest:
            return f"link-{row}-url", f"Link {row}: Adresse: {problem}"
        return (
            f"link-{row}-{LANGUAGE_IDS[language]}",
            f"Link {row}: Bezeichnung ({LANGUAGE_NAMES_DE[language]}): {problem}",
        )
    return CONCERN_FIELD_IDS.get(head, ""), line


@routes.post("/staff/admin/concerns/{concern_id}")
async def admin_concern_update(request: web.Request) -> web.StreamResponse:
    concern_id = request.match_info["concern_id"]
    form = await request.post()
    return await _admin_change(
        request,
        "PATCH",
        "/api/v1/admin/concerns/{concern_id}",
        {"concern_id": concern_id},
        with_version(_concern_data(form, new=False), form),
        back="/staff/admin/concerns",
        page=_admin_concern,
        refusal=_concern_refusal,
    )


@routes.get("/staff/admin/allow-list")
async def admin_allow_list(request: web.Request) -> web.Response:
    return await _admin_allow_list(request, errors=[])


async def _admin_allow_list(
    request: web.Request, *, errors: list[ErrorLine], status: int = 200, failed: dict[str, Any] | None = None
) -> web.Response:
    listed = await _get(request, "/api/v1/admin/allow-list")
    notice = "Gespeichert." if request.query.get("notice") == "saved" else ""
    return render(
        request,
        "admin_allow_list.html",
        {
            "title": "Interne E-Mail-Adressen (Positivliste)",
            "entries": listed.get("entries") or [],
            "errors": errors,
            "notice": notice,
            "failed": failed,
        },
        status=status,
    )


@routes.post("/staff/admin/allow-list")
async def admin_allow_add(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    data = {"entry": _text(form.get("entry")), "note": _text(form.get("note"))}
    return await _admin_change(
        request,
        "POST",
        "/api/v1/admin/allow-list",
        {},
        data,
        back="/staff/admin/allow-list",
        page=_admin_allow_list,
        refusal=_form_of("allow", "entry", "note"),
    )


@routes.post("/staff/admin/allow-list/remove")
async def admin_allow_remove(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return await _admin_change(
        request,
        "DELETE",
        "/api/v1/admin/allow-list",
        {},
        {"entry": _text(form.get("entry"))},
        back="/staff/admin/allow-list",
        page=_admin_allow_list,
    )
