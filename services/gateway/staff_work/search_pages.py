"""Search for an appointment by reference, name or customer number within one's own locations (R22,
R28), through booking's `GET /api/v1/staff/appointments/search`, which narrows it to the locations of
the signed identity.

- GET  /staff/search    the search form
- POST /staff/search    the results, each linked to its file

The form is posted, not sent as `?q=`: a name or customer number in the URL would stay in the browser's
history, in the login redirect's `next=` and in the access log of any proxy in front of the gateway. The
gateway passes `q` to booking on the internal call only; neither service logs query strings
(`shared.web` logs the path of a failed request, never its query).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.gateway.staff import upstream
from services.gateway.staff.pages import UpstreamError, location_names
from services.gateway.staff_work.common import STATUS_DE, render, text
from shared.labels import MODES_DE

routes = web.RouteTableDef()

QUERY_MIN, QUERY_MAX = 2, 100
# Booking says so on a search whose list it cut at 50 (`services/booking/staff_api.py`).
TRUNCATED_HEADER = "X-Result-Truncated"


def _page(
    request: web.Request,
    query: str,
    results: list[dict[str, Any]] | None,
    names: dict[str, str],
    *,
    field_errors: dict[str, str] | None = None,
    status: int = 200,
    truncated: bool = False,
) -> web.Response:
    return render(
        request,
        "work_search.html",
        {
            "title": "Termin suchen",
            "page": "search",
            "q": query,
            "results": results,
            "truncated": truncated,
            "names": names,
            "modes": MODES_DE,
            "statuses": STATUS_DE,
            "errors": list((field_errors or {}).values()),
            "field_errors": field_errors or {},
        },
        status=status,
    )


@routes.get("/staff/search")
async def search_form(request: web.Request) -> web.Response:
    return _page(request, "", None, {})


@routes.post("/staff/search")
async def search_results(request: web.Request) -> web.Response:
    form = await request.post()
    query = text(form, "q", QUERY_MAX + 1)
    if not QUERY_MIN <= len(query) <= QUERY_MAX:
        message = f"Suchbegriff: bitte {QUERY_MIN} bis {QUERY_MAX} Zeichen eingeben."
        return _page(request, query[:QUERY_MAX], None, {}, field_errors={"q": message}, status=422)
    headers: dict[str, str] = {}
    status, data = await upstream.call(
        request,
        "booking",
        "GET",
        "/api/v1/staff/appointments/search",
        params={"q": query},
        response_headers=headers,
    )
    if status != 200 or not isinstance(data, list):
        raise UpstreamError(status if status != 200 else 502, data)
    found = [a for a in data if isinstance(a, dict) and isinstance(a.get("customer"), dict)]
    truncated = headers.get(TRUNCATED_HEADER.lower()) == "true"
    return _page(request, query, found, await location_names(request), truncated=truncated)
