"""The staff member's day (issue 8) as server-rendered pages of the gateway: the day list of a location
by group and service point, recording outcomes, the callback queue with claim and close, and the call
list of phone appointments with call attempts (R22, R23, R26, R27, R49); the week view; the appointment
file with cancellation, follow-up (R24) and transfer (R25); search; a booking by staff with an
interpreter (R26); the mass change of a day for group leaders (R20, R44); a waiting-list wish found by
its reference and erased on the customer's request (Art. 17 GDPR) for location administrators.

The pages read and write through booking's staff API with the signed identity of the person, exactly as
the API routes do; who may open them is decided by `staff/authz.py` from the rules in `staff/rules.py`
(each page route repeats the rule of the API route it calls), and forms carry the session's CSRF token.

`setup_staff_work(app)` is the one entry point; call it after `setup_staff(app)`.
"""

from __future__ import annotations

from aiohttp import web

from services.gateway.staff_work import book_pages, file_pages, mass_change_pages, search_pages, wish_pages
from services.gateway.staff_work.pages import setup_pages


def setup_staff_work(app: web.Application) -> None:
    setup_pages(app)
    for module in (file_pages, search_pages, book_pages, mass_change_pages, wish_pages):
        app.router.add_routes(module.routes)


__all__ = ["setup_staff_work"]
