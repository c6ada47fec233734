"""The dead letters of every consumer on one page for administrators (I4): what could not be applied, why
and how often it was tried (never the customer's data), and a button that replays one to its consumer.

- GET  /staff/admin/dead-letters                                   booking, notifier, reporting, gateway
- POST /staff/admin/dead-letters/{service}/{dead_letter_id}/replay

The services' lists come from their own `/api/v1/admin/dead-letters` (with the administrator's signed
identity); the gateway's (its integrations consumer) from its own database. A replay goes the way of the
API route, with its audit entry."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.gateway.integrations.api import replay_dead_letter
from services.gateway.staff import upstream
from services.gateway.staff.forwarding import apply_change
from services.gateway.staff.pages import UpstreamError, error_messages, redirect, render
from shared.consumer import list_dead_letters
from shared.errors import NotFoundError, OTVError
from shared.web import POOL

routes = web.RouteTableDef()

UPSTREAM_SERVICES = ("booking", "notifier", "reporting")
SERVICES_DE = {
    "booking": "Buchung",
    "notifier": "E-Mail-Versand",
    "reporting": "Berichte und Statistik",
    "gateway": "Schnittstellen (Webhooks, Ereignis-Feed)",
}
NOTICES_DE = {
    "replayed": (
        "Die Nachricht ist erneut zugestellt. Scheitert sie wieder, steht sie bald wieder in der Liste."
    )
}


async def _rows_of(request: web.Request, name: str) -> tuple[list[dict[str, Any]], str | None]:
    """The open dead letters of one service, or why they could not be read."""
    if name == "gateway":
        return await list_dead_letters(request.app[POOL]), None
    try:
        status, data = await upstream.call(request, name, "GET", "/api/v1/admin/dead-letters")
    except OTVError as exc:
        return [], error_messages(exc)[0]
    if status != 200 or not isinstance(data, list):
        return [], f"Der Dienst antwortet nicht wie erwartet (HTTP {status})."
    return [r for r in data if isinstance(r, dict)], None


@routes.get("/staff/admin/dead-letters")
async def dead_letters_page(request: web.Request) -> web.Response:
    return await _page(request)


async def _page(request: web.Request, *, errors: list[str] | None = None, status: int = 200) -> web.Response:
    sections = []
    for name in (*UPSTREAM_SERVICES, "gateway"):
        rows, problem = await _rows_of(request, name)
        sections.append({"service": name, "label": SERVICES_DE[name], "rows": rows, "problem": problem})
    return render(
        request,
        "admin_dead_letters.html",
        {
            "title": "Nicht zustellbare Nachrichten",
            "sections": sections,
            "errors": errors or [],
            "notice": NOTICES_DE.get(request.query.get("notice", ""), ""),
        },
        status=status,
    )


@routes.post("/staff/admin/dead-letters/{service}/{dead_letter_id}/replay")
async def replay_submit(request: web.Request) -> web.StreamResponse:
    name = request.match_info["service"]
    if name not in SERVICES_DE:
        raise NotFoundError("There is no such service.")
    try:
        if name == "gateway":
            await replay_dead_letter(request)  # the API route's own handler, with its audit entry
        else:
            status, answer, _ = await apply_change(
                request,
                name,
                "POST",
                "/api/v1/admin/dead-letters/{dead_letter_id}/replay",
                {"dead_letter_id": request.match_info["dead_letter_id"]},
                None,
            )
            if not 200 <= status < 300:
                raise UpstreamError(status, answer)
    except OTVError as exc:
        return await _page(request, errors=error_messages(exc), status=exc.status)
    raise redirect("/staff/admin/dead-letters?notice=replayed")
