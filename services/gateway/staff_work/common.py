"""What every page of the staff work shares: the German texts, formatting, rendering with the staff
layout, booking's refusals in German (as a list and by form field, for `aria-describedby`), reading
forms, and the calls to booking and the catalog (a change always through `apply_change`, so that the
page writes the same audit entry as the API route whose rule it repeats)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import jinja2
from aiohttp import web

from services.gateway.staff import upstream
from services.gateway.staff.forwarding import apply_change
from services.gateway.staff.keys import IDENTITY
from services.gateway.staff.pages import UpstreamError
from services.gateway.staff.pages import render as staff_render
from shared.calendar import day_list_available, in_calendar
from shared.clock import BERLIN
from shared.errors import OTVError
from shared.identity import Role
from shared.labels import MODES_DE, language_de
from shared.phone import phone_link
from shared.web import CLOCK

WORK_JINJA = web.AppKey("otv_staff_work_jinja2", jinja2.Environment)

# Location ids as the catalog makes them (slugs); anything else in a form is not a location.
LOCATION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Concern and group ids of the catalog (the booking API's ID_PATTERN is no stricter).
CATALOG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

STATUS_DE = {"booked": "gebucht", "cancelled": "abgesagt", "passed": "abgeschlossen"}
CALLBACK_STATUS_DE = {"open": "offen", "claimed": "übernommen", "closed": "erledigt"}
CALLBACK_REASONS_DE = {
    "outcome": "Ergebnis eines Termins",
    "missed_call": "Telefontermin nicht erreicht",
    "transfer": "Übernahme von einem anderen Standort",
    "promise": "Rückrufzusage",
}
QUEUE_FILTERS_DE = {
    "active": "offen und übernommen",
    "open": "nur offen",
    "claimed": "nur übernommen",
    "closed": "erledigt",
    "all": "alle",
}
CODES_DE = {
    "too_early": "Ein Ergebnis kann erst ab dem Tag des Termins erfasst werden.",
    "outcome_recorded": (
        "Für diesen Termin ist schon ein Ergebnis erfasst. Zum Ändern wählen Sie „Ergebnis korrigieren“ "
        "und geben eine Begründung an."
    ),
    "not_changeable": "Dieser Termin kann nicht mehr geändert werden (zum Beispiel, weil er abgesagt ist).",
    "conflict": "Das ist schon geschehen (zum Beispiel ist das Ticket bereits erledigt).",
    "forbidden": "Dafür fehlt Ihnen die Rolle oder der Standort.",
    "not_found": "Das gibt es nicht (mehr).",
    "unavailable": "Die Terminverwaltung antwortet gerade nicht. Bitte versuchen Sie es gleich noch einmal.",
    "slot_taken": "Diese Zeit ist gerade vergeben worden. Bitte wählen Sie eine andere.",
    "already_booked": (
        "Diese Kundin / dieser Kunde hat schon einen offenen Termin. Es ist nur ein offener Termin erlaubt."
    ),
    "booking_closed": "Zu dieser Zeit kann nicht (mehr) gebucht werden.",
    "too_late": "Dieser Termin hat schon begonnen oder ist vorbei.",
}
# Booking's `too_late` with a detail on `start`: the chosen time has passed, not the appointment.
START_PASSED = "Diese Zeit ist schon vorbei. Bitte wählen Sie eine andere."
FIELDS_DE = {
    "outcome": "Ergebnis",
    "note": "Notiz",
    "reason": "Begründung der Korrektur",
    "result": "Ergebnis des Rückrufs",
    "reached": "Erreicht",
    "team": "Team",
}
# The confirmations after a form (`?notice=`), shown in role=status.
NOTICES_DE = {
    "outcome": "Das Ergebnis ist gespeichert.",
    "callback": "Das Ergebnis ist gespeichert und ein Rückruf-Ticket für das zuständige Team angelegt.",
    "claimed": "Sie haben das Ticket übernommen.",
    "closed": "Das Ticket ist erledigt.",
    "attempt": "Der Anrufversuch ist gespeichert.",
    "attempt_callback": "Der Anrufversuch ist gespeichert; ein Rückruf-Ticket ist angelegt.",
    "cancelled": "Der Termin ist abgesagt; die Kundin / der Kunde erhält die Absage per E-Mail.",
    "follow_up": (
        "Der Folgetermin ist gebucht; der erste Termin ist abgeschlossen. Die Kundin / der Kunde erhält "
        "die Bestätigung per E-Mail."
    ),
    "booked": "Der Termin ist gebucht; die Kundin / der Kunde erhält die Bestätigung per E-Mail.",
    "moved": "Der Termin ist verlegt; die Kundin / der Kunde erhält die neue Zeit per E-Mail.",
    "link_sent": (
        "Die Kundin / der Kunde erhält einen neuen Link zum Termin per E-Mail. Links aus früheren E-Mails "
        "gelten nicht mehr."
    ),
    "contact": "Die Kontaktdaten sind gespeichert.",
    "contact_unchanged": "Die Kontaktdaten waren schon so gespeichert; nichts geändert.",
    "contact_email": (
        "Die Kontaktdaten sind gespeichert. Die Bestätigung mit einem neuen Link zum Termin geht an die neue "
        "E-Mail-Adresse; der Link aus früheren E-Mails gilt nicht mehr."
    ),
    "erased": "Die personenbezogenen Daten dieses Termins sind gelöscht (Art. 17 DSGVO).",
    "wish_erased": (
        "Die personenbezogenen Daten dieses Eintrags auf der Warteliste sind gelöscht (Art. 17 DSGVO)."
    ),
}
WEEKDAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
MONTHS_DE = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)


# --- formatting -------------------------------------------------------------------------------------
def moment(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value.astimezone(BERLIN) if isinstance(value, datetime) else None


def hm(value: Any) -> str:
    found = moment(value)
    return found.strftime("%H:%M") if found else "\N{EN DASH}"


def when(value: Any) -> str:
    found = moment(value)
    return found.strftime("%d.%m.%Y %H:%M") if found else "\N{EN DASH}"


def day_de(value: date) -> str:
    return f"{WEEKDAYS_DE[value.weekday()]}, {value.day}. {MONTHS_DE[value.month - 1]} {value.year}"


def slot_de(value: Any) -> str:
    """'Mittwoch, 4. März 2026, 09:00 Uhr'."""
    found = moment(value)
    return f"{day_de(found.date())}, {found.strftime('%H:%M')} Uhr" if found else "\N{EN DASH}"


def register_filters(env: jinja2.Environment) -> None:
    env.filters["hm"] = hm
    env.filters["when"] = when
    env.filters["day_de"] = day_de
    env.filters["slot_de"] = slot_de
    env.filters["language_de"] = language_de  # a customer's language (R43): "Türkisch", not `tr`
    env.filters["phone_link"] = phone_link  # a link that dials a global number, else the number as text


# --- rendering --------------------------------------------------------------------------------------
def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    identity = request.get(IDENTITY)
    notice = NOTICES_DE.get(request.query.get("notice", ""), "")
    # A page that jumps back to the row or section of the saved form (`notice_at`: its anchor) confirms it
    # there, once: the top of a long list is neither where the eye nor where a screen reader is.
    at = str(context.get("notice_at") or "") if notice else ""
    ctx = {
        "notice": "" if at else notice,
        "saved_notice": notice if at else "",
        "notice_at": at,
        "errors": [],
        "field_errors": {},
        # R20, R44: the mass change is offered to group leaders of the location only.
        "may_lead": lambda location: identity is not None and identity.has(Role.GROUP_LEADER, location),
        **context,
    }
    day = context.get("day")
    if isinstance(day, date):
        # R22, R33: reporting makes the Excel list of today up to 90 days ahead and refuses other days
        # (a past day's list is deleted); the page says so instead of linking to a refusal in JSON.
        ctx["day_list_when"] = (
            "open" if day_list_available(day, today(request)) else "past" if day < today(request) else "later"
        )
    return staff_render(request, template, ctx, status=status, app_key=WORK_JINJA)


def explain(
    status: int,
    data: Any,
    *,
    fields: dict[str, str] | None = None,
    codes: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Booking's refusal in German: the lines of the error summary, and a message per form field it
    named (for the field's `aria-describedby`). `fields` names the form's fields, `codes` overrides the
    words of a code for this page, `kinds` words a field's refusal by its detail `type` (what staff can
    do about it, where "bitte prüfen" would not tell them)."""
    names = fields if fields is not None else FIELDS_DE
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "")
    if code == "validation_error" or status == 422:
        lines: list[str] = []
        by_field: dict[str, str] = {}
        for detail in error.get("details") or []:
            field = str(detail.get("field") or "") if isinstance(detail, dict) else ""
            kind = str(detail.get("type") or "") if isinstance(detail, dict) else ""
            key = field.split(".")[-1]
            name = names.get(key, "")
            if name and key not in by_field:
                worded = (kinds or {}).get(kind)
                by_field[key] = worded or f"{name}: bitte prüfen bzw. ausfüllen."
                lines.append(by_field[key])
        return lines or ["Bitte prüfen Sie Ihre Eingaben."], by_field
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    if code == "too_late" and any(d.get("field") == "start" for d in details):
        # The time chosen has passed (a list left open too long), not the appointment: choose another.
        line = START_PASSED
        return [line], ({"start": line} if "start" in names else {})
    words = {**CODES_DE, **(codes or {})}
    return [words.get(code) or words.get("conflict" if status == 409 else "", "Das hat nicht geklappt.")], {}


def messages_de(status: int, data: Any) -> list[str]:
    """German lines for a refusal of booking: its code in words, and the fields it named."""
    return explain(status, data)[0]


def page_status(status: int) -> int:
    """The status of a page that shows a refusal: the service's 4xx, a 502 for its 5xx."""
    return status if status < 500 else 502


# --- reading requests -------------------------------------------------------------------------------
def today(request: web.Request) -> date:
    return request.app[CLOCK].now().astimezone(BERLIN).date()


def day_of(request: web.Request, raw: str | None) -> tuple[date, list[str]]:
    if not raw:
        return today(request), []
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is None or not in_calendar(day):
        return today(request), ["Das Datum ist ungültig; angezeigt wird heute."]
    return day, []


def location_from(form: Any, name: str = "location") -> str | None:
    value = str(form.get(name, ""))
    return value if LOCATION_ID.fullmatch(value) else None


def date_from(form: Any) -> str | None:
    try:
        day = date.fromisoformat(str(form.get("date", "")))
    except ValueError:
        return None
    return day.isoformat() if in_calendar(day) else None


def text(form: Any, name: str, limit: int = 2000) -> str:
    return str(form.get(name, "")).strip()[:limit]


def catalog_id(raw: Any) -> str | None:
    value = str(raw or "")
    return value if CATALOG_ID.fullmatch(value) else None


def concern_choice(raw: str | None) -> tuple[str, str] | None:
    """`<concern>|<mode>` of a concern select (catalog ids, never personal data, so it may travel in
    a GET form); None when absent or not well-formed."""
    concern, _, mode = (raw or "").partition("|")
    if catalog_id(concern) is None or mode not in MODES_DE:
        return None
    return concern, mode


def concern_options(concerns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One option per concern and mode it is offered in: value `<concern>|<mode>`."""
    return [
        {
            "value": f"{c['id']}|{mode}",
            "label": f"{c.get('name') or c['id']} ({MODES_DE[mode]})",
            "group": str(c.get("group_name") or c.get("group_id") or ""),
        }
        for c in concerns
        for mode in c.get("modes") or []
        if mode in MODES_DE
    ]


# --- calls ------------------------------------------------------------------------------------------
async def booking_get(request: web.Request, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    status, data = await upstream.call(request, "booking", "GET", path, params=params)
    if status != 200:
        raise UpstreamError(status, data)
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


async def booking_change(
    request: web.Request,
    api_route: str,
    params: dict[str, str],
    data: dict[str, Any],
    *,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A POST to booking's staff API as the API route would make it (signed identity, audit entry);
    a service that does not answer becomes its status and code instead of an exception."""
    try:
        status, answer, _ = await apply_change(
            request, "booking", "POST", api_route, params, data, extra_headers=extra_headers
        )
    except OTVError as exc:
        status, answer = exc.status, {"error": {"code": exc.code}}
    return status, answer


async def concerns_of(request: web.Request, location_id: str) -> list[dict[str, Any]]:
    """The concerns a location offers (the catalog's public list, in German): `[]` when it has none or
    the catalog does not answer (the page then says so instead of failing)."""
    try:
        status, data = await upstream.call(
            request, "catalog", "GET", f"/api/v1/locations/{location_id}/concerns", params={"lang": "de"}
        )
    except OTVError:
        return []
    if status != 200 or not isinstance(data, list):
        return []
    return [c for c in data if isinstance(c, dict) and isinstance(c.get("id"), str)]


HORIZON_DAYS = 56  # booking's availability answers at most eight weeks at once


def first_day_of(request: web.Request, raw: str | None) -> date:
    """The day from which free times are listed: today, or a later day staff chose (a wrong one: today)."""
    try:
        chosen = date.fromisoformat(raw or "")
    except ValueError:
        return today(request)
    return max(chosen, today(request)) if in_calendar(chosen) else today(request)


async def free_slots(
    request: web.Request,
    location_id: str,
    concern_id: str,
    mode: str,
    *,
    limit: int = 12,
    first: date | None = None,
) -> list[dict[str, Any]]:
    """The next free slots of a concern from today, or from a later day `first` (a caller who wants a
    day in three weeks), on: booking's public availability, eight weeks, and from today up to the last
    day booking takes (today + 56 days, R19): one day more, asked for when the eight weeks are not full."""
    first = max(first or today(request), today(request))
    last = max(first + timedelta(days=HORIZON_DAYS - 1), today(request) + timedelta(days=HORIZON_DAYS))
    now = request.app[CLOCK].now()
    found: list[dict[str, Any]] = []
    while first <= last and len(found) < limit:
        until = min(last, first + timedelta(days=HORIZON_DAYS - 1))
        status, data = await upstream.call(
            request,
            "booking",
            "GET",
            f"/api/v1/locations/{location_id}/availability",
            params={"concern": concern_id, "mode": mode, "from": first.isoformat(), "to": until.isoformat()},
        )
        if status in (404, 409, 422):
            return []
        if status != 200 or not isinstance(data, dict):
            raise UpstreamError(status, data)
        slots = [s for s in data.get("slots") or [] if isinstance(s, dict) and moment(s.get("start"))]
        found += [s for s in slots if (moment(s["start"]) or now) > now]
        first = until + timedelta(days=1)
    return found[:limit]
