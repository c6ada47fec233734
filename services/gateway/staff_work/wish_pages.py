"""Erasure on request (Art. 17 GDPR) of one waiting-list wish: a location administrator finds the wish a
customer names by the reference of its mails ("Vorgangsnummer"), in any status (an ended wish is on no
list), sees where it is and in which state (none of the customer's data), and erases it once the box that
a request was made is ticked.

- GET  /staff/waiting-list/search             the form
- POST /staff/waiting-list/search             look the reference up; found: 303 to the wish's page
- GET  /staff/waiting-list/{wish_id}          the wish: reference, location, concern, status, erased or not
- POST /staff/waiting-list/{wish_id}/erase    erase its personal data now

The reference is posted, not sent as `?reference=`, like the words of the appointment search
(`search_pages.py`): it stays out of URLs, the browser's history and access logs; the wish's page has only
its id in the path. Booking checks the wish's location on every call (another location's wish: the 403
page that shows nothing of it) and refuses API keys; the erasure goes through `apply_change`, so that it
gets the audit entry of `POST /api/v1/staff/waiting-list/{wish_id}/erase`.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from services.gateway.staff import upstream
from services.gateway.staff.pages import ErrorLine, UpstreamError, location_names
from services.gateway.staff_work.common import booking_change, explain, page_status, render, text
from shared.errors import NotFoundError
from shared.labels import MODES_DE

routes = web.RouteTableDef()

REFERENCE_MAX = 20  # "ABCD-EF23" as typed, with spaces or dashes to spare
WISH_STATUS_DE = {
    "pending_opt_in": "angemeldet, E-Mail-Adresse noch nicht bestätigt",
    "waiting": "wartet auf einen Termin",
    "offered": "ein Termin ist angeboten",
    "booked": "beendet: Termin gebucht",
    "withdrawn": "beendet: zurückgezogen",
    "expired": "beendet: abgelaufen",
}
END_REASONS_DE = {
    "customer": "von der Kundin / dem Kunden zurückgezogen oder auf Antrag gelöscht",
    "replaced": "durch eine neue Anmeldung ersetzt",
    "latest_date": "der letzte gewünschte Tag ist vorbei",
    "not_confirmed": "die E-Mail-Adresse wurde nicht rechtzeitig bestätigt",
    "offers_missed": "mehrere Angebote blieben unbeantwortet",
    "booked": "die Kundin / der Kunde hat einen Termin gebucht",
}
REFERENCE_MESSAGES = {
    422: "Vorgangsnummer: bitte die acht Zeichen aus der E-Mail zur Warteliste eingeben, zum Beispiel "
    "ABCD-EF23.",
    404: "Vorgangsnummer: es gibt keinen Eintrag auf einer Warteliste mit dieser Nummer. Bitte prüfen Sie "
    "die Nummer; Buchungsnummern von Terminen finden Sie über die Suche nach Terminen.",
}
CONFIRM_MISSING = "Bitte bestätigen Sie, dass ein Antrag auf Löschung vorliegt."


def _wish_id_of(request: web.Request) -> str:
    try:
        return str(uuid.UUID(request.match_info["wish_id"]))
    except ValueError:
        raise NotFoundError("There is no such wish on the waiting list.") from None


def _search_page(
    request: web.Request, reference: str, *, field_errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    return render(
        request,
        "work_wish_search.html",
        {
            "title": "Wartelisten-Eintrag löschen",
            "reference": reference,
            # Each line of the summary links to its field.
            "errors": [ErrorLine(m, "reference") for m in (field_errors or {}).values()],
            "field_errors": field_errors or {},
        },
        status=status,
    )


@routes.get("/staff/waiting-list/search")
async def wish_search_form(request: web.Request) -> web.Response:
    return _search_page(request, "")


@routes.post("/staff/waiting-list/search")
async def wish_search(request: web.Request) -> web.Response:
    form = await request.post()
    reference = text(form, "reference", REFERENCE_MAX + 1)
    if not reference or len(reference) > REFERENCE_MAX:
        field_errors = {"reference": REFERENCE_MESSAGES[422]}
        return _search_page(request, reference[:REFERENCE_MAX], field_errors=field_errors, status=422)
    status, data = await upstream.call(
        request, "booking", "GET", "/api/v1/staff/waiting-list", params={"reference": reference}
    )
    if status == 200 and isinstance(data, dict) and isinstance(data.get("id"), str):
        raise web.HTTPSeeOther(f"/staff/waiting-list/{_checked_id(data['id'])}")
    if status in REFERENCE_MESSAGES:
        field_errors = {"reference": REFERENCE_MESSAGES[status]}
        return _search_page(request, reference, field_errors=field_errors, status=status)
    raise UpstreamError(status if status != 200 else 502, data)  # 403: another location's wish


def _checked_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise UpstreamError(502, None) from None


async def wish_page(
    request: web.Request,
    wish_id: str,
    *,
    errors: list[str] | None = None,
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    found, wish = await upstream.call(request, "booking", "GET", f"/api/v1/staff/waiting-list/{wish_id}")
    if found != 200 or not isinstance(wish, dict):
        raise UpstreamError(found if found != 200 else 502, wish)
    location_id = str(wish.get("location_id") or "")
    names = await location_names(request)
    context: dict[str, Any] = {
        "title": f"Wartelisten-Eintrag {wish.get('reference', '')}",
        "page_path": f"/staff/waiting-list/{wish_id}",
        "w": wish,
        "location_name": names.get(location_id, location_id),
        "statuses": WISH_STATUS_DE,
        "reasons": END_REASONS_DE,
        "modes": MODES_DE,
        "errors": errors or [ErrorLine(m, field) for field, m in (field_errors or {}).items()],
        "field_errors": field_errors or {},
    }
    return render(request, "work_wish.html", context, status=status)


@routes.get("/staff/waiting-list/{wish_id}")
async def wish_file(request: web.Request) -> web.Response:
    return await wish_page(request, _wish_id_of(request))


@routes.post("/staff/waiting-list/{wish_id}/erase")
async def wish_erase(request: web.Request) -> web.StreamResponse:
    """Art. 17 GDPR: erase the wish's personal data now, whatever its status (a wish still on the list
    ends without a mail), once the box that a request was made is ticked (it cannot be undone)."""
    wish_id = _wish_id_of(request)
    form = await request.post()
    if form.get("confirm") != "yes":
        return await wish_page(request, wish_id, field_errors={"erase-confirm": CONFIRM_MISSING}, status=422)
    status, answer = await booking_change(
        request, "/api/v1/staff/waiting-list/{wish_id}/erase", {"wish_id": wish_id}, {}
    )
    if 200 <= status < 300:
        raise web.HTTPSeeOther(f"/staff/waiting-list/{wish_id}?notice=wish_erased")
    errors, _by_field = explain(status, answer, fields={})
    return await wish_page(request, wish_id, errors=errors, status=page_status(status))
