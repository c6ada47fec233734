"""The gateway's table of API routes: which service owns which path (the architecture's contract)."""

from __future__ import annotations

from typing import NamedTuple


class ProxyRoute(NamedTuple):
    method: str
    path: str
    service: str


# Customer booking API (public). Staff and admin routes are added with their authorisation rules.
PUBLIC_ROUTES: tuple[ProxyRoute, ...] = (
    ProxyRoute("GET", "/api/v1/locations", "catalog"),
    ProxyRoute("GET", "/api/v1/finder", "catalog"),
    ProxyRoute("GET", "/api/v1/locations/{location_id}/concerns", "catalog"),
    ProxyRoute("GET", "/api/v1/locations/{location_id}/availability", "booking"),
    ProxyRoute("POST", "/api/v1/locations/{location_id}/holds", "booking"),
    ProxyRoute("POST", "/api/v1/appointments", "booking"),
    ProxyRoute("GET", "/api/v1/appointments/{appointment_id}", "booking"),
    ProxyRoute("GET", "/api/v1/appointments/{appointment_id}/invitation.ics", "booking"),  # R40
    ProxyRoute("POST", "/api/v1/appointments/{appointment_id}/cancel", "booking"),
    ProxyRoute("POST", "/api/v1/appointments/{appointment_id}/reschedule", "booking"),
    ProxyRoute("POST", "/api/v1/manage-links", "booking"),  # the manage link again (R41)
    # The waiting list (R45, issue 11): join, view, confirm (double opt-in), withdraw, accept an offer.
    ProxyRoute("GET", "/api/v1/locations/{location_id}/waiting-list/weekdays", "booking"),
    ProxyRoute("POST", "/api/v1/waiting-list", "booking"),
    ProxyRoute("GET", "/api/v1/waiting-list/{wish_id}", "booking"),
    ProxyRoute("POST", "/api/v1/waiting-list/{wish_id}/confirm", "booking"),
    ProxyRoute("POST", "/api/v1/waiting-list/{wish_id}/withdraw", "booking"),
    ProxyRoute("POST", "/api/v1/waiting-list/{wish_id}/offer/accept", "booking"),
)
