"""Authorisation at one place (invariant I5, R28-R32, R46): the rule of every staff and admin route.

Every route under `/api/v1/staff/`, `/api/v1/admin/` and `/staff/` has exactly one rule here: which role
it needs, where the location comes from (a path parameter, a query parameter, a field of the JSON body,
"every location" for central work, or "some location" where the owning service checks the entity's
location itself), which group narrows a group leader's grant, which operation an API key needs (no
operation: no API key may call it), and what the audit log calls the entity of a write.

The middleware in `authz.py` applies these rules and nothing else decides; routes forwarded to another
service are listed in `FORWARDED` and registered from it. A route without a rule is refused for
everybody, and `tests/staff/test_route_rules.py` walks the router and fails for it.

Where the location of an entity is not in the request (an appointment id in the path), the rule says
`SOME_LOCATION`: the gateway checks that the caller has the role somewhere and passes the signed identity;
the owning service (booking, for appointments) compares the appointment's location with
`identity.has(role, location)` and answers 403 `forbidden` (or 404) for another location's appointment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.identity import Role

# The location a rule resolves to for central work: the role is needed at every location.
ALL_LOCATIONS_MARK = "*"


class From(StrEnum):
    PATH = "path"  # a path parameter
    QUERY = "query"  # a query parameter; absent: the role is needed at every location
    BODY = "body"  # a top-level field of the JSON body
    EVERY_LOCATION = "every_location"  # central work: the role at all locations (admin, statistics, audit)
    SOME_LOCATION = "some_location"  # the role somewhere; the owning service checks the entity's location
    NONE = "none"  # no location involved (one's own password, the start page)


@dataclass(frozen=True)
class LocationFrom:
    source: From
    name: str = ""


def path(name: str = "location_id") -> LocationFrom:
    return LocationFrom(From.PATH, name)


def query(name: str = "location") -> LocationFrom:
    return LocationFrom(From.QUERY, name)


def body(name: str = "location_id") -> LocationFrom:
    return LocationFrom(From.BODY, name)


EVERY = LocationFrom(From.EVERY_LOCATION)
SOME = LocationFrom(From.SOME_LOCATION)
NO_LOCATION = LocationFrom(From.NONE)


@dataclass(frozen=True)
class Rule:
    # None: any signed-in staff member (their own password, the start page, logout).
    role: Role | None
    location: LocationFrom = NO_LOCATION
    # A path parameter naming a service point group: a group leader's grant may be limited to groups.
    group: str | None = None
    # The operation an API key needs (R37, R50); None: API keys are refused.
    operation: str | None = None
    # The audit log's name of the entity a write changes.
    entity: str = ""
    # Open without signing in: the login itself and the login page's assets.
    public: bool = False
    # R20: a change of windows or capacity that is checked against booked appointments first.
    capacity_check: bool = False


PUBLIC = Rule(role=None, public=True)
SIGNED_IN = Rule(role=None)


@dataclass(frozen=True)
class Forwarded:
    method: str
    path: str
    service: str
    rule: Rule


AM = Role.APPOINTMENT_MANAGER
GL = Role.GROUP_LEADER
LA = Role.LOCATION_ADMIN
ADMIN = Role.ADMIN

# --- routes forwarded to the owning service, with the signed identity -------------------------------
FORWARDED: tuple[Forwarded, ...] = (
    # The staff API of ARCHITECTURE.md (booking, reporting).
    Forwarded(
        "GET",
        "/api/v1/staff/locations/{location_id}/appointments",
        "booking",
        Rule(AM, path(), operation="appointments:read"),
    ),
    Forwarded(
        "POST",
        "/api/v1/staff/appointments",
        "booking",
        Rule(AM, body(), operation="appointments:write", entity="appointment"),
    ),
    Forwarded(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/cancel",
        "booking",
        Rule(AM, SOME, operation="appointments:write", entity="appointment"),
    ),
    # R37: the service centre moves an appointment for a caller (booking checks the location).
    Forwarded(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/reschedule",
        "booking",
        Rule(AM, SOME, operation="appointments:write", entity="appointment"),
    ),
    Forwarded(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/outcome",
        "booking",
        Rule(AM, SOME, entity="appointment"),
    ),
    Forwarded("GET", "/api/v1/staff/callbacks", "booking", Rule(AM, query())),
    # R20: which booked appointments would lose their service point under proposed windows.
    Forwarded("POST", "/api/v1/staff/locations/{location_id}/capacity-check", "booking", Rule(GL, path())),
    Forwarded("GET", "/api/v1/staff/locations/{location_id}/day-list", "reporting", Rule(AM, path())),
    Forwarded("GET", "/api/v1/staff/statistics/summary", "reporting", Rule(Role.STATISTICS, EVERY)),
    # The notifier's mail and page texts (R10): administrators only.
    Forwarded("GET", "/api/v1/admin/mail-templates", "notifier", Rule(ADMIN, EVERY)),
    Forwarded("GET", "/api/v1/admin/mail-templates/{kind}/{language}", "notifier", Rule(ADMIN, EVERY)),
    Forwarded(
        "PUT",
        "/api/v1/admin/mail-templates/{kind}/{language}",
        "notifier",
        Rule(ADMIN, EVERY, entity="mail_template"),
    ),
)

# --- routes the gateway answers itself (handlers in api.py and pages.py) -----------------------------
OWN: dict[tuple[str, str], Rule] = {
    # Sign-in, sign-out, one's own account.
    ("POST", "/api/v1/staff/login"): PUBLIC,
    ("POST", "/api/v1/staff/logout"): SIGNED_IN,
    ("GET", "/api/v1/staff/me"): SIGNED_IN,
    ("POST", "/api/v1/staff/password"): Rule(None, entity="staff_account"),
    # Accounts and roles (R31: administrators; R30: a location administrator's own staff).
    ("GET", "/api/v1/admin/accounts"): Rule(ADMIN, EVERY),
    ("POST", "/api/v1/admin/accounts"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("GET", "/api/v1/admin/accounts/{username}"): Rule(ADMIN, EVERY),
    ("PUT", "/api/v1/admin/accounts/{username}/grants"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/api/v1/admin/accounts/{username}/disable"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/api/v1/admin/accounts/{username}/enable"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/api/v1/admin/accounts/{username}/reset-password"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("GET", "/api/v1/admin/locations/{location_id}/staff-roles"): Rule(LA, path()),
    ("PUT", "/api/v1/admin/locations/{location_id}/staff-roles/{username}"): Rule(
        LA, path(), entity="staff_account"
    ),
    # API keys (R37, R50).
    ("GET", "/api/v1/admin/api-keys"): Rule(ADMIN, EVERY),
    ("POST", "/api/v1/admin/api-keys"): Rule(ADMIN, EVERY, entity="api_key"),
    ("POST", "/api/v1/admin/api-keys/{key_id}/revoke"): Rule(ADMIN, EVERY, entity="api_key"),
    # The audit log (R46): audit review and administrators (an administrator's role includes it).
    ("GET", "/api/v1/admin/audit-log"): Rule(Role.AUDIT, EVERY),
    # --- the staff pages ---
    ("GET", "/staff/login"): PUBLIC,
    ("POST", "/staff/login"): PUBLIC,
    ("GET", "/staff/static/{name}"): PUBLIC,
    ("POST", "/staff/logout"): SIGNED_IN,
    ("GET", "/staff/"): SIGNED_IN,
    ("GET", "/staff/password"): SIGNED_IN,
    ("POST", "/staff/password"): Rule(None, entity="staff_account"),
    ("GET", "/staff/admin/accounts"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/accounts"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("GET", "/staff/admin/accounts/{username}"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/accounts/{username}/grants"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/staff/admin/accounts/{username}/grants/remove"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/staff/admin/accounts/{username}/active"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/staff/admin/accounts/{username}/reset-password"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("GET", "/staff/admin/api-keys"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/api-keys"): Rule(ADMIN, EVERY, entity="api_key"),
    ("POST", "/staff/admin/api-keys/{key_id}/revoke"): Rule(ADMIN, EVERY, entity="api_key"),
    ("GET", "/staff/admin/audit-log"): Rule(Role.AUDIT, EVERY),
    ("GET", "/staff/admin/texts"): Rule(ADMIN, EVERY),
    ("GET", "/staff/admin/texts/{kind}/{language}"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/texts/{kind}/{language}"): Rule(ADMIN, EVERY, entity="mail_template"),
    ("GET", "/staff/locations/{location_id}/staff-roles"): Rule(LA, path()),
    ("POST", "/staff/locations/{location_id}/staff-roles"): Rule(LA, path(), entity="staff_account"),
}


def rule_table() -> dict[tuple[str, str], Rule]:
    """Every rule by (method, route pattern); HEAD follows GET."""
    table = dict(OWN)
    for route in FORWARDED:
        key = (route.method, route.path)
        if key in table:
            raise ValueError(f"two rules for {key}")
        table[key] = route.rule
    return table


STAFF_PREFIXES = ("/api/v1/staff/", "/api/v1/admin/", "/staff/")


def is_staff_path(path: str) -> bool:
    return path == "/staff" or path.startswith(STAFF_PREFIXES)
