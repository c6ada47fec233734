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
    # A query parameter; absent or blank: the role somewhere, and the owning service narrows the answer to
    # the caller's own locations (the callback list's documented `?location=`).
    QUERY_OR_OWN = "query_or_own"
    BODY = "body"  # a top-level field of the JSON body
    EVERY_LOCATION = "every_location"  # central work: the role at all locations (admin, statistics, audit)
    SOME_LOCATION = "some_location"  # the role somewhere; the owning service checks the entity's location
    LOOKUP = "lookup"  # a catalog entity in the path (group, window, closure): its location is looked up
    NONE = "none"  # no location involved (one's own password, the start page)


@dataclass(frozen=True)
class LocationFrom:
    source: From
    name: str = ""
    kind: str = ""  # for LOOKUP: "group", "window" or "closure"


def path(name: str = "location_id") -> LocationFrom:
    return LocationFrom(From.PATH, name)


def query(name: str = "location") -> LocationFrom:
    return LocationFrom(From.QUERY, name)


def query_or_own(name: str = "location") -> LocationFrom:
    """The location of a query parameter; left out or empty, the caller's own locations (the owning
    service narrows a list to them), not every location."""
    return LocationFrom(From.QUERY_OR_OWN, name)


def body(name: str = "location_id") -> LocationFrom:
    return LocationFrom(From.BODY, name)


def lookup(kind: str, name: str) -> LocationFrom:
    """The location (and group) of the catalog's `kind` whose id is the path parameter `name`."""
    return LocationFrom(From.LOOKUP, name, kind)


EVERY = LocationFrom(From.EVERY_LOCATION)
SOME = LocationFrom(From.SOME_LOCATION)
NO_LOCATION = LocationFrom(From.NONE)


# R20: the body field (or query parameter) with which a change that affects booked appointments is
# confirmed; the gateway reads and strips it.
CONFIRM_AFFECTED = "confirm_affected"


class CapacityChange(StrEnum):
    """R20: changes that may leave booked appointments without a service point; checked with booking
    before they are forwarded (`capacity.py`)."""

    WINDOW_UPDATE = "window_update"
    WINDOW_DELETE = "window_delete"
    GROUP_UPDATE = "group_update"
    GROUP_DELETE = "group_delete"
    CLOSURE_CREATE = "closure_create"


@dataclass(frozen=True)
class Relaxed:
    """A lesser role that may make a narrower form of the change: a group leader changes the capacity of
    their own groups at short notice (R20, R29), but not the rest of the group."""

    role: Role
    # The JSON body may set only these fields (None: any).
    fields: frozenset[str] | None = None
    # The body field naming the group (else the group comes from the path or the looked-up entity).
    group_field: str | None = None


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
    # A narrower form of the change that a lesser role may make.
    relaxed: Relaxed | None = None
    # Open to every valid API key as well, whatever its operations: a key's own "who am I" (its grants and
    # operations), which a client checks at start before it books for a caller.
    keys_too: bool = False
    # R20: a change of windows or capacity that is checked against booked appointments first.
    capacity_check: CapacityChange | None = None


PUBLIC = Rule(role=None, public=True)
SIGNED_IN = Rule(role=None)
ANY_CALLER = Rule(role=None, keys_too=True)


@dataclass(frozen=True)
class Forwarded:
    method: str
    path: str
    service: str
    rule: Rule
    # The service's own path where it differs from the gateway's (same parameters).
    upstream_path: str | None = None
    # R20, R44: the mass change's confirmation saves the day's capacity in the catalog first
    # (`day_capacity.py`).
    saves_day_capacity: bool = False


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
    # R37, R38: the service centre's free slots and holds, behind these rules and not behind the
    # customers' per-address bot defence (R39, `bot_defence.API_PROTECTED`), which its many agents behind
    # one address would run into; the key or the staff member is known, and audited, instead.
    Forwarded(
        "GET",
        "/api/v1/staff/locations/{location_id}/availability",
        "booking",
        Rule(AM, path(), operation="appointments:write"),
    ),
    Forwarded(
        "POST",
        "/api/v1/staff/locations/{location_id}/holds",
        "booking",
        Rule(AM, path(), operation="appointments:write", entity="hold"),
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
    # Art. 17 GDPR: a location administrator erases a past or cancelled appointment's personal data now
    # (booking checks the role at the appointment's location; API keys are refused).
    Forwarded(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/erase",
        "booking",
        Rule(LA, SOME, entity="appointment"),
    ),
    # A caller lost the confirmation mail: a new manage link (booking checks the location).
    Forwarded(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/manage-link",
        "booking",
        Rule(AM, SOME, operation="appointments:write", entity="appointment"),
    ),
    # R37: staff and the service centre correct a caller's name, e-mail address or phone number
    # (booking checks the location).
    Forwarded(
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/contact",
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
    Forwarded("GET", "/api/v1/staff/callbacks", "booking", Rule(AM, query_or_own())),
    # Staff work (issue 8): the call list, search and one file (booking checks the location, R28),
    # call attempts (R49), follow-ups (R24), transfers (R25), callback tickets (R23), mass changes (R44).
    Forwarded("GET", "/api/v1/staff/locations/{location_id}/calls", "booking", Rule(AM, path())),
    Forwarded(
        "GET", "/api/v1/staff/appointments/search", "booking", Rule(AM, SOME, operation="appointments:read")
    ),
    Forwarded(
        "GET",
        "/api/v1/staff/appointments/{appointment_id}",
        "booking",
        Rule(AM, SOME, operation="appointments:read"),
    ),
    *(
        Forwarded(
            "POST",
            f"/api/v1/staff/appointments/{{appointment_id}}/{action}",
            "booking",
            Rule(AM, SOME, entity="appointment"),
        )
        for action in ("call-attempts", "follow-up", "transfer")
    ),
    *(
        Forwarded(
            "POST",
            f"/api/v1/staff/callbacks/{{callback_id}}/{action}",
            "booking",
            Rule(AM, SOME, entity="callback"),
        )
        for action in ("claim", "close")
    ),
    *(
        Forwarded(
            "POST",
            f"/api/v1/staff/locations/{{location_id}}/mass-change/{step}",
            "booking",
            Rule(GL, path(), entity="mass_change"),
            saves_day_capacity=step == "apply",
        )
        for step in ("preview", "apply")
    ),
    # R45: a location's waiting list (customers' wishes: personal data of that location only, R28).
    Forwarded("GET", "/api/v1/staff/locations/{location_id}/waiting-list", "booking", Rule(AM, path())),
    # Art. 17 GDPR: a location administrator erases one wish's personal data now (booking checks the
    # wish's location; API keys are refused).
    Forwarded("POST", "/api/v1/staff/waiting-list/{wish_id}/erase", "booking", Rule(LA, SOME, entity="wish")),
    # ... and finds the wish the customer names by its reference (any status, also ended), or by its id:
    # place and status only, no personal data (booking checks the location; API keys are refused).
    Forwarded("GET", "/api/v1/staff/waiting-list", "booking", Rule(LA, SOME)),
    Forwarded("GET", "/api/v1/staff/waiting-list/{wish_id}", "booking", Rule(LA, SOME)),
    # R20: which booked appointments would lose their service point under proposed windows.
    Forwarded("POST", "/api/v1/staff/locations/{location_id}/capacity-check", "booking", Rule(GL, path())),
    # Reporting: the day lists of a location (R22, R28), statistics for the central departments only
    # (R32, R35; a location in the query narrows them), reports for administrators (R33, R34, R48).
    Forwarded("GET", "/api/v1/staff/locations/{location_id}/day-list", "reporting", Rule(AM, path())),
    Forwarded("GET", "/api/v1/staff/locations/{location_id}/day-lists", "reporting", Rule(AM, path())),
    Forwarded("GET", "/api/v1/staff/statistics/summary", "reporting", Rule(Role.STATISTICS, query())),
    Forwarded("GET", "/api/v1/staff/statistics/report", "reporting", Rule(Role.STATISTICS, query())),
    Forwarded("GET", "/api/v1/staff/statistics/breakdown", "reporting", Rule(Role.STATISTICS, query())),
    Forwarded("GET", "/api/v1/staff/statistics/export", "reporting", Rule(Role.STATISTICS, query())),
    Forwarded("GET", "/api/v1/admin/booking-patterns", "reporting", Rule(ADMIN, EVERY)),
    Forwarded("GET", "/api/v1/admin/retention-report", "reporting", Rule(ADMIN, EVERY)),
    Forwarded("GET", "/staff/statistics", "reporting", Rule(Role.STATISTICS, query())),
    Forwarded("GET", "/staff/admin/booking-patterns", "reporting", Rule(ADMIN, EVERY)),
    Forwarded("GET", "/staff/admin/retention", "reporting", Rule(ADMIN, EVERY)),
    # The notifier's mail texts (R10) and its suppression list: administrators only.
    Forwarded("GET", "/api/v1/admin/mail-templates", "notifier", Rule(ADMIN, EVERY)),
    Forwarded("GET", "/api/v1/admin/mail-templates/{kind}/{language}", "notifier", Rule(ADMIN, EVERY)),
    Forwarded(
        "PUT",
        "/api/v1/admin/mail-templates/{kind}/{language}",
        "notifier",
        Rule(ADMIN, EVERY, entity="mail_template"),
    ),
    Forwarded(
        "DELETE",
        "/api/v1/admin/mail-templates/{kind}/{language}",
        "notifier",
        Rule(ADMIN, EVERY, entity="mail_template"),
    ),
    # A preview stores nothing: no audit entry.
    Forwarded(
        "POST", "/api/v1/admin/mail-templates/{kind}/{language}/preview", "notifier", Rule(ADMIN, EVERY)
    ),
    Forwarded(
        "POST",
        "/api/v1/admin/mail-suppressions/lift",
        "notifier",
        Rule(ADMIN, EVERY, entity="mail_suppression"),
    ),
    # --- the catalog's admin API ---
    # Locations (R31: administrators create them; R30: location administrators keep their own).
    Forwarded("GET", "/api/v1/admin/locations", "catalog", Rule(GL, SOME)),
    Forwarded("POST", "/api/v1/admin/locations", "catalog", Rule(ADMIN, EVERY, entity="location")),
    Forwarded("GET", "/api/v1/admin/locations/{location_id}", "catalog", Rule(GL, path())),
    Forwarded(
        "PATCH", "/api/v1/admin/locations/{location_id}", "catalog", Rule(LA, path(), entity="location")
    ),
    Forwarded(
        "PUT",
        "/api/v1/admin/locations/{location_id}/lead-time",
        "catalog",
        Rule(LA, path(), entity="lead_time"),
    ),
    Forwarded(
        "PUT",
        "/api/v1/admin/locations/{location_id}/month-change-block",
        "catalog",
        Rule(LA, path(), entity="month_change_block"),
    ),
    Forwarded(
        "DELETE",
        "/api/v1/admin/locations/{location_id}/month-change-block",
        "catalog",
        Rule(LA, path(), entity="month_change_block"),
    ),
    # Groups and service points (R30); a group leader changes the capacity of their groups (R20, R29).
    Forwarded(
        "POST", "/api/v1/admin/locations/{location_id}/groups", "catalog", Rule(LA, path(), entity="group")
    ),
    Forwarded(
        "PATCH",
        "/api/v1/admin/groups/{group_id}",
        "catalog",
        Rule(
            LA,
            lookup("group", "group_id"),
            entity="group",
            # `expected_version` changes nothing: the version the change was made against (an older one
            # is refused by the catalog, 409 `stale`).
            relaxed=Relaxed(GL, fields=frozenset({"service_points", "expected_version"})),
            capacity_check=CapacityChange.GROUP_UPDATE,
        ),
    ),
    Forwarded(
        "DELETE",
        "/api/v1/admin/groups/{group_id}",
        "catalog",
        Rule(LA, lookup("group", "group_id"), entity="group", capacity_check=CapacityChange.GROUP_DELETE),
    ),
    # Weekly time windows: group leaders of the group, and everyone above them (R20, R29).
    Forwarded(
        "POST",
        "/api/v1/admin/groups/{group_id}/windows",
        "catalog",
        Rule(GL, lookup("group", "group_id"), entity="window"),
    ),
    Forwarded(
        "PUT",
        "/api/v1/admin/windows/{window_id}",
        "catalog",
        Rule(GL, lookup("window", "window_id"), entity="window", capacity_check=CapacityChange.WINDOW_UPDATE),
    ),
    Forwarded(
        "DELETE",
        "/api/v1/admin/windows/{window_id}",
        "catalog",
        Rule(GL, lookup("window", "window_id"), entity="window", capacity_check=CapacityChange.WINDOW_DELETE),
    ),
    # Which concerns a location's groups offer, with duration and modes (R14, R16, R30).
    Forwarded(
        "PUT",
        "/api/v1/admin/locations/{location_id}/concerns/{concern_id}",
        "catalog",
        Rule(LA, path(), entity="concern_offer"),
    ),
    Forwarded(
        "DELETE",
        "/api/v1/admin/locations/{location_id}/concerns/{concern_id}",
        "catalog",
        Rule(LA, path(), entity="concern_offer"),
    ),
    # Closures: of the location (its administrator), or of one group at short notice (its leader, R20).
    Forwarded(
        "POST",
        "/api/v1/admin/locations/{location_id}/closures",
        "catalog",
        Rule(
            LA,
            path(),
            entity="closure",
            relaxed=Relaxed(GL, group_field="group_id"),
            capacity_check=CapacityChange.CLOSURE_CREATE,
        ),
    ),
    Forwarded(
        "DELETE",
        "/api/v1/admin/closures/{closure_id}",
        "catalog",
        Rule(LA, lookup("closure", "closure_id"), entity="closure", relaxed=Relaxed(GL)),
    ),
    # The central catalogue of concerns (R14, R31): administrators keep it, location administrators read it.
    Forwarded("GET", "/api/v1/admin/concerns", "catalog", Rule(LA, SOME)),
    Forwarded("POST", "/api/v1/admin/concerns", "catalog", Rule(ADMIN, EVERY, entity="concern")),
    Forwarded("GET", "/api/v1/admin/concerns/{concern_id}", "catalog", Rule(LA, SOME)),
    Forwarded(
        "PATCH", "/api/v1/admin/concerns/{concern_id}", "catalog", Rule(ADMIN, EVERY, entity="concern")
    ),
    # The policy check (R21): every location for administrators, one location on its page.
    Forwarded("GET", "/api/v1/admin/policy", "catalog", Rule(ADMIN, EVERY)),
    Forwarded("GET", "/api/v1/admin/locations/{location_id}/policy", "catalog", Rule(GL, path())),
    Forwarded(
        "POST",
        "/api/v1/admin/locations/{location_id}/policy-approvals",
        "catalog",
        Rule(ADMIN, EVERY, entity="policy_approval"),
    ),
    # The internal e-mail allow-list (R6) and the responsibility finder's tables: administrators.
    Forwarded("GET", "/api/v1/admin/allow-list", "catalog", Rule(ADMIN, EVERY)),
    Forwarded("POST", "/api/v1/admin/allow-list", "catalog", Rule(ADMIN, EVERY, entity="allow_list")),
    Forwarded("DELETE", "/api/v1/admin/allow-list", "catalog", Rule(ADMIN, EVERY, entity="allow_list")),
    Forwarded("GET", "/api/v1/admin/finder/streets", "catalog", Rule(ADMIN, EVERY)),
    Forwarded("POST", "/api/v1/admin/finder/streets", "catalog", Rule(ADMIN, EVERY, entity="finder_street")),
    Forwarded(
        "DELETE",
        "/api/v1/admin/finder/streets/{street_id}",
        "catalog",
        Rule(ADMIN, EVERY, entity="finder_street"),
    ),
    Forwarded("GET", "/api/v1/admin/finder/other-jobcenters", "catalog", Rule(ADMIN, EVERY)),
    Forwarded(
        "PUT",
        "/api/v1/admin/finder/other-jobcenters/{jobcenter_id}",
        "catalog",
        Rule(ADMIN, EVERY, entity="other_jobcenter"),
    ),
    # The catalog's change log of a location (absent `location`: every location, administrators).
    Forwarded("GET", "/api/v1/admin/changes", "catalog", Rule(LA, query())),
    # Bremen's public holidays: information for every signed-in staff member.
    Forwarded("GET", "/api/v1/admin/holidays", "catalog", Rule(None)),
    # Dead letters of the services that consume events (I4): administrators list and replay them.
    *(
        route
        for service in ("booking", "notifier", "reporting")
        for route in (
            Forwarded(
                "GET",
                f"/api/v1/admin/{service}/dead-letters",
                service,
                Rule(ADMIN, EVERY),
                upstream_path="/api/v1/admin/dead-letters",
            ),
            Forwarded(
                "POST",
                f"/api/v1/admin/{service}/dead-letters/{{dead_letter_id}}/replay",
                service,
                Rule(ADMIN, EVERY, entity="dead_letter"),
                upstream_path="/api/v1/admin/dead-letters/{dead_letter_id}/replay",
            ),
        )
    ),
)

# --- routes the gateway answers itself (handlers in api.py and pages.py) -----------------------------
OWN: dict[tuple[str, str], Rule] = {
    # Sign-in, sign-out, one's own account.
    ("POST", "/api/v1/staff/login"): PUBLIC,
    ("POST", "/api/v1/staff/logout"): SIGNED_IN,
    ("GET", "/api/v1/staff/me"): ANY_CALLER,
    ("POST", "/api/v1/staff/password"): Rule(None, entity="staff_account"),
    # Accounts and roles (R31: administrators; R30: a location administrator's own staff).
    ("GET", "/api/v1/admin/accounts"): Rule(ADMIN, EVERY),
    ("POST", "/api/v1/admin/accounts"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("GET", "/api/v1/admin/accounts/{account_id}"): Rule(ADMIN, EVERY),
    ("PUT", "/api/v1/admin/accounts/{account_id}/grants"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/api/v1/admin/accounts/{account_id}/disable"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/api/v1/admin/accounts/{account_id}/enable"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/api/v1/admin/accounts/{account_id}/reset-password"): Rule(
        ADMIN, EVERY, entity="staff_account"
    ),
    ("GET", "/api/v1/admin/locations/{location_id}/staff-roles"): Rule(LA, path()),
    ("PUT", "/api/v1/admin/locations/{location_id}/staff-roles/{account_id}"): Rule(
        LA, path(), entity="staff_account"
    ),
    # API keys (R37, R50).
    ("GET", "/api/v1/admin/api-keys"): Rule(ADMIN, EVERY),
    ("POST", "/api/v1/admin/api-keys"): Rule(ADMIN, EVERY, entity="api_key"),
    ("POST", "/api/v1/admin/api-keys/{key_id}/revoke"): Rule(ADMIN, EVERY, entity="api_key"),
    ("PUT", "/api/v1/admin/api-keys/{key_id}/request-limit"): Rule(ADMIN, EVERY, entity="api_key"),
    # The audit log (R46): audit review and administrators (an administrator's role includes it).
    ("GET", "/api/v1/admin/audit-log"): Rule(Role.AUDIT, EVERY),
    # Integrations (issue 12, R50): webhooks for administrators; the event feed for API keys with
    # `events:read` (the handler narrows it to the key's locations) and administrators.
    # The integrations consumer's dead letters (I4), beside those forwarded to the other services.
    ("GET", "/api/v1/admin/gateway/dead-letters"): Rule(ADMIN, EVERY),
    ("POST", "/api/v1/admin/gateway/dead-letters/{dead_letter_id}/replay"): Rule(
        ADMIN, EVERY, entity="dead_letter"
    ),
    ("GET", "/api/v1/admin/webhooks"): Rule(ADMIN, EVERY),
    ("POST", "/api/v1/admin/webhooks"): Rule(ADMIN, EVERY, entity="webhook_subscription"),
    ("GET", "/api/v1/admin/webhooks/{subscription_id}"): Rule(ADMIN, EVERY),
    ("PATCH", "/api/v1/admin/webhooks/{subscription_id}"): Rule(ADMIN, EVERY, entity="webhook_subscription"),
    ("DELETE", "/api/v1/admin/webhooks/{subscription_id}"): Rule(ADMIN, EVERY, entity="webhook_subscription"),
    ("POST", "/api/v1/admin/webhooks/{subscription_id}/pause"): Rule(
        ADMIN, EVERY, entity="webhook_subscription"
    ),
    ("POST", "/api/v1/admin/webhooks/{subscription_id}/resume"): Rule(
        ADMIN, EVERY, entity="webhook_subscription"
    ),
    ("POST", "/api/v1/admin/webhooks/{subscription_id}/rotate-secret"): Rule(
        ADMIN, EVERY, entity="webhook_subscription"
    ),
    ("GET", "/api/v1/admin/webhook-deliveries"): Rule(ADMIN, EVERY),
    ("POST", "/api/v1/admin/webhook-deliveries/{delivery_id}/resend"): Rule(
        ADMIN, EVERY, entity="webhook_delivery"
    ),
    ("GET", "/api/v1/staff/events"): Rule(ADMIN, NO_LOCATION, operation="events:read"),
    # --- the staff pages ---
    ("GET", "/staff"): PUBLIC,
    ("GET", "/staff/login"): PUBLIC,
    ("POST", "/staff/login"): PUBLIC,
    ("GET", "/staff/static/{name}"): PUBLIC,
    ("POST", "/staff/logout"): SIGNED_IN,
    ("GET", "/staff/"): SIGNED_IN,
    ("GET", "/staff/password"): SIGNED_IN,
    ("POST", "/staff/password"): Rule(None, entity="staff_account"),
    ("GET", "/staff/admin/accounts"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/accounts"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("GET", "/staff/admin/accounts/{account_id}"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/accounts/{account_id}/grants"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/staff/admin/accounts/{account_id}/grants/remove"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/staff/admin/accounts/{account_id}/active"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("POST", "/staff/admin/accounts/{account_id}/reset-password"): Rule(ADMIN, EVERY, entity="staff_account"),
    ("GET", "/staff/admin/api-keys"): Rule(ADMIN, EVERY),
    ("GET", "/staff/admin/dead-letters"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/dead-letters/{service}/{dead_letter_id}/replay"): Rule(
        ADMIN, EVERY, entity="dead_letter"
    ),
    ("POST", "/staff/admin/api-keys"): Rule(ADMIN, EVERY, entity="api_key"),
    ("POST", "/staff/admin/api-keys/{key_id}/revoke"): Rule(ADMIN, EVERY, entity="api_key"),
    ("POST", "/staff/admin/api-keys/{key_id}/request-limit"): Rule(ADMIN, EVERY, entity="api_key"),
    ("GET", "/staff/admin/audit-log"): Rule(Role.AUDIT, EVERY),
    ("GET", "/staff/admin/texts"): Rule(ADMIN, EVERY),
    ("GET", "/staff/admin/texts/{kind}/{language}"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/texts/{kind}/{language}"): Rule(ADMIN, EVERY, entity="mail_template"),
    ("GET", "/staff/locations/{location_id}/staff-roles"): Rule(LA, path()),
    ("POST", "/staff/locations/{location_id}/staff-roles"): Rule(LA, path(), entity="staff_account"),
    # Central administration pages (R6, R14, R31).
    ("GET", "/staff/admin/locations"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/locations"): Rule(ADMIN, EVERY, entity="location"),
    ("GET", "/staff/admin/concerns"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/concerns"): Rule(ADMIN, EVERY, entity="concern"),
    ("GET", "/staff/admin/concerns/{concern_id}"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/concerns/{concern_id}"): Rule(ADMIN, EVERY, entity="concern"),
    ("GET", "/staff/admin/allow-list"): Rule(ADMIN, EVERY),
    ("POST", "/staff/admin/allow-list"): Rule(ADMIN, EVERY, entity="allow_list"),
    ("POST", "/staff/admin/allow-list/remove"): Rule(ADMIN, EVERY, entity="allow_list"),
    # A location's pages (R20, R21, R29, R30): each form repeats the rule of the API route it calls.
    ("GET", "/staff/locations/{location_id}"): Rule(GL, path()),
    ("POST", "/staff/locations/{location_id}/details"): Rule(LA, path(), entity="location"),
    ("POST", "/staff/locations/{location_id}/lead-time"): Rule(LA, path(), entity="lead_time"),
    ("POST", "/staff/locations/{location_id}/month-change-block"): Rule(
        LA, path(), entity="month_change_block"
    ),
    ("POST", "/staff/locations/{location_id}/groups"): Rule(LA, path(), entity="group"),
    ("POST", "/staff/locations/{location_id}/concerns"): Rule(LA, path(), entity="concern_offer"),
    ("POST", "/staff/locations/{location_id}/policy-approvals"): Rule(
        ADMIN, path(), entity="policy_approval"
    ),
    ("POST", "/staff/locations/{location_id}/closures"): Rule(
        LA,
        path(),
        entity="closure",
        relaxed=Relaxed(GL, group_field="group_id"),
        capacity_check=CapacityChange.CLOSURE_CREATE,
    ),
    ("POST", "/staff/closures/{closure_id}/delete"): Rule(
        LA, lookup("closure", "closure_id"), entity="closure", relaxed=Relaxed(GL)
    ),
    ("POST", "/staff/groups/{group_id}"): Rule(
        LA,
        lookup("group", "group_id"),
        entity="group",
        # `expected_version` changes nothing: the version the leader's form was loaded with (a stale form
        # is refused by the catalog, 409); without it here the leader's own form was refused (403).
        relaxed=Relaxed(GL, fields=frozenset({"service_points", "expected_version"})),
        capacity_check=CapacityChange.GROUP_UPDATE,
    ),
    ("POST", "/staff/groups/{group_id}/windows"): Rule(GL, lookup("group", "group_id"), entity="window"),
    ("POST", "/staff/windows/{window_id}"): Rule(
        GL, lookup("window", "window_id"), entity="window", capacity_check=CapacityChange.WINDOW_UPDATE
    ),
    ("POST", "/staff/windows/{window_id}/delete"): Rule(
        GL, lookup("window", "window_id"), entity="window", capacity_check=CapacityChange.WINDOW_DELETE
    ),
    # The staff member's day (issue 8, services/gateway/staff_work): each page repeats the rule of the
    # booking route it calls; booking checks an appointment's or ticket's location again (R28).
    ("GET", "/staff/work"): Rule(AM, SOME),
    ("GET", "/staff/locations/{location_id}/day"): Rule(AM, path()),
    ("GET", "/staff/locations/{location_id}/calls"): Rule(AM, path()),
    ("GET", "/staff/locations/{location_id}/callbacks"): Rule(AM, path()),
    ("POST", "/staff/appointments/{appointment_id}/outcome"): Rule(AM, SOME, entity="appointment"),
    ("POST", "/staff/appointments/{appointment_id}/call-attempts"): Rule(AM, SOME, entity="appointment"),
    ("POST", "/staff/callbacks/{callback_id}/claim"): Rule(AM, SOME, entity="callback"),
    ("POST", "/staff/callbacks/{callback_id}/close"): Rule(AM, SOME, entity="callback"),
    ("GET", "/staff/locations/{location_id}/week"): Rule(AM, path()),
    # The appointment file and what staff do with it (R9, R24, R25); search within one's locations.
    ("GET", "/staff/appointments/{appointment_id}"): Rule(AM, SOME),
    ("POST", "/staff/appointments/{appointment_id}/cancel"): Rule(AM, SOME, entity="appointment"),
    ("POST", "/staff/appointments/{appointment_id}/manage-link"): Rule(AM, SOME, entity="appointment"),
    ("POST", "/staff/appointments/{appointment_id}/contact"): Rule(AM, SOME, entity="appointment"),
    ("POST", "/staff/appointments/{appointment_id}/follow-up"): Rule(AM, SOME, entity="appointment"),
    ("POST", "/staff/appointments/{appointment_id}/transfer"): Rule(AM, SOME, entity="appointment"),
    ("POST", "/staff/appointments/{appointment_id}/reschedule"): Rule(AM, SOME, entity="appointment"),
    ("POST", "/staff/appointments/{appointment_id}/erase"): Rule(LA, SOME, entity="appointment"),
    # Art. 17 GDPR for one waiting-list wish: found by the reference the customer names (posted, like the
    # search), shown by id, erased with a confirmation (booking checks the wish's location).
    ("GET", "/staff/waiting-list/search"): Rule(LA, SOME),
    ("POST", "/staff/waiting-list/search"): Rule(LA, SOME),
    ("GET", "/staff/waiting-list/{wish_id}"): Rule(LA, SOME),
    ("POST", "/staff/waiting-list/{wish_id}/erase"): Rule(LA, SOME, entity="wish"),
    ("GET", "/staff/search"): Rule(AM, SOME),
    # A search is posted so that names stay out of URLs; it reads, so no audit entity.
    ("POST", "/staff/search"): Rule(AM, SOME),
    # A booking by staff (R26): the location is the page's, where the API route reads the body's.
    ("GET", "/staff/locations/{location_id}/book"): Rule(AM, path()),
    ("POST", "/staff/locations/{location_id}/book"): Rule(AM, path(), entity="appointment"),
    # The mass change of a day (R20, R44): group leaders of the location.
    ("GET", "/staff/locations/{location_id}/mass-change"): Rule(GL, path()),
    ("POST", "/staff/locations/{location_id}/mass-change/preview"): Rule(GL, path(), entity="mass_change"),
    ("POST", "/staff/locations/{location_id}/mass-change/apply"): Rule(GL, path(), entity="mass_change"),
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
