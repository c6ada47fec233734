"""The staff and admin API in the OpenAPI document (R50): the routes the gateway answers itself (sign-in,
accounts, API keys, the audit log), and, for every staff and admin route, how it is authenticated and
what its rule needs (from `rules.py`, so the document cannot drift from the checks).

`document()` is merged with the services' documents; `annotate(merged)` then adds the security schemes
(the session cookie of the staff pages, `Authorization: Bearer <key>` of the service centre), 401/403 and
the rule of each staff/admin operation, and a short entry for a forwarded staff route that its service
does not declare yet.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from services.gateway.config import Settings
from services.gateway.staff.api import (
    AccountIn,
    ApiKeyIn,
    ApiKeyLimitIn,
    AuditQuery,
    GrantsIn,
    LocationRolesIn,
    LoginIn,
    PasswordIn,
)
from services.gateway.staff.authz import COOKIE, CSRF_HEADER
from services.gateway.staff.deprecation import USERNAME_FORM_DEPRECATED, deprecation_header
from services.gateway.staff.domain import ACCOUNT_ID, KEY_REQUESTS_PER_MINUTE_MAX, USERNAME
from services.gateway.staff.rules import FORWARDED, From, Rule, is_staff_path, rule_table
from shared.openapi import ApiRoute, add_error_responses, build_document


class GrantOut(BaseModel):
    role: str
    location: str  # a location id, or "*" for every location
    groups: list[str]


class LoginOut(BaseModel):
    username: str
    must_change_password: bool
    csrf_token: str  # for scripts: send it as X-CSRF-Token with cookie-authenticated writes


class StatusOut(BaseModel):
    status: str


class MeGrantOut(BaseModel):
    role: str
    locations: list[str]
    groups: list[str]


class MeOut(BaseModel):
    subject: str
    kind: str  # "user" or "api_key"
    display_name: str
    channel: str  # "staff" or "service_centre"
    grants: list[MeGrantOut]
    operations: list[str]
    must_change_password: bool | None = None
    csrf_token: str | None = None
    session_expires_at: AwareDatetime | None = None


# The account in the admin API's paths: its id; a username in the same place is still answered for
# existing clients, deprecated since document version 1.5.0 (R34). No username has the shape of an id
# (gateway migration 015), so the segment is read by its shape.
ACCOUNT_IN_PATH = {
    "account_id": {
        "description": "The account's id (`AccountOut.id`). A username in its place is deprecated: it still "
        "names the account for existing clients, but a username names the employee and ends up in access "
        "logs; no username has the shape of an id. Every answer to the username form says so in the headers "
        '`Deprecation` and (where the account is known) `Link` with `rel="successor-version"`.',
        "anyOf": [
            {"type": "string", "format": "uuid", "pattern": ACCOUNT_ID.pattern},
            {
                "type": "string",
                "pattern": USERNAME.pattern,
                "not": {"pattern": ACCOUNT_ID.pattern},
                "deprecated": True,
            },
        ],
    }
}


class AccountOut(BaseModel):
    id: str = Field(
        description="The account's opaque id (a UUID): how the admin API's paths name the account, since a "
        "username names the employee and does not belong in a URL"
    )
    username: str
    display_name: str
    active: bool
    locked: bool = Field(
        description="Locked for every network the account does not know: too many failed sign-ins over "
        "all client networks (a distributed guess) within the lock-out window. Networks the account signed "
        "in from within OTV_STAFF_LOGIN_KNOWN_NETWORK_DAYS (30) still get in. Failures from one network "
        "lock the account for that network "
        "only, which this does not show. A new start password (reset) unlocks it."
    )
    must_change_password: bool
    last_login_at: AwareDatetime | None
    created_at: AwareDatetime
    demo: bool
    grants: list[GrantOut]


class AccountCreatedOut(BaseModel):
    account: AccountOut
    start_password: str | None  # shown once; must be changed at the first sign-in


class StartPasswordOut(BaseModel):
    start_password: str


class LocationRoleOut(BaseModel):
    account_id: str = Field(description="The account's id, for `PUT .../staff-roles/{account_id}`")
    username: str
    role: str
    location: str
    groups: list[str]


class KeyAllowanceOut(BaseModel):
    """What the gateway lets the key send per replica (while its rate limits are on): its own limit or the
    default, and the burst derived from it."""

    requests_per_minute: int
    burst: int


class ApiKeyOut(BaseModel):
    id: str
    prefix: str
    name: str
    locations: list[str]
    operations: list[str]
    created_at: AwareDatetime
    created_by: str
    expires_at: AwareDatetime | None
    revoked_at: AwareDatetime | None
    last_used_at: AwareDatetime | None
    requests_per_minute: int | None = Field(
        description="The key's own request limit a minute (per gateway replica); null: the settings' "
        "default (OTV_API_KEY_REQUESTS_PER_MINUTE)."
    )
    allowance: KeyAllowanceOut


class ApiKeyCreatedOut(ApiKeyOut):
    key: str  # `otv_<prefix>_<secret>`: shown once, stored only as a hash


class AuditEntryOut(BaseModel):
    id: int
    occurred_at: AwareDatetime
    actor: str
    actor_kind: str
    action: str
    entity: str
    entity_id: str | None
    location: str | None
    outcome: str  # "ok" or "refused"
    status: int | None
    ip: str | None  # the client address while it is kept (OTV_AUDIT_ADDRESS_RETENTION_DAYS), then null
    method: str | None
    route: str | None
    changes: dict[str, Any]
    correlation_id: str | None


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None  # pass as `before` for the next (older) page


TAG_AUTH = ("staff: sign-in",)
TAG_ACCOUNTS = ("staff: accounts and roles",)
TAG_KEYS = ("staff: API keys",)
TAG_AUDIT = ("staff: audit log",)

ROUTES = (
    ApiRoute(
        "POST",
        "/api/v1/staff/login",
        "Sign in (sets the session cookie)",
        body=LoginIn,
        response=LoginOut,
        errors=("unauthenticated", "validation_error", "rate_limited", "unavailable"),
        tags=TAG_AUTH,
        description="Wrong name, wrong password and a locked or disabled account get the same 401 (failed "
        "sign-ins lock an account for the failing client network only, and beyond a ceiling over all "
        "networks for every network it has not signed in from within OTV_STAFF_LOGIN_KNOWN_NETWORK_DAYS, "
        "30 by default). The body must be "
        "`application/json`. Too many failed sign-ins from one network: 429 with `Retry-After`. Too many "
        "sign-ins at once for the gateway's password checks (OTV_STAFF_PASSWORD_CHECKS, each waiting up "
        "to OTV_STAFF_PASSWORD_WAIT_SECONDS): 503 `unavailable` with `Retry-After`, not a failed sign-in.",
    ),
    ApiRoute("POST", "/api/v1/staff/logout", "Sign out", response=StatusOut, tags=TAG_AUTH),
    ApiRoute("GET", "/api/v1/staff/me", "Who is signed in, with roles", response=MeOut, tags=TAG_AUTH),
    ApiRoute(
        "POST",
        "/api/v1/staff/password",
        "Change one's own password (ends the other sessions)",
        body=PasswordIn,
        response=StatusOut,
        errors=("validation_error", "unauthenticated", "unavailable"),
        tags=TAG_AUTH,
        description="Only for a signed-in person (an API key has no password: 401). Too many password "
        "checks at once: 503 `unavailable` with `Retry-After`, as for the sign-in. A wrong current "
        "password is 422 `validation_error` (field `current_password`) and counts as a failed sign-in of "
        "the account from the caller's network, with the same lock-out as `POST /api/v1/staff/login`. The "
        "try that locks the account there, and any try while the account is locked for that network "
        "(after failed sign-ins from it, or beyond the ceiling over all networks for a network it has not "
        "signed in from; the current password is then not checked), ends the session: 401 "
        "`unauthenticated`. Sign in again after the lock-out (OTV_STAFF_LOGIN_LOCKOUT_MINUTES, 15 by "
        "default).",
    ),
    ApiRoute("GET", "/api/v1/admin/accounts", "Staff accounts", response=list[AccountOut], tags=TAG_ACCOUNTS),
    ApiRoute(
        "POST",
        "/api/v1/admin/accounts",
        "Create an account (with a one-time start password)",
        body=AccountIn,
        response=AccountCreatedOut,
        status=201,
        errors=("validation_error", "conflict"),
        tags=TAG_ACCOUNTS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/accounts/{account_id}",
        "One account",
        response=AccountOut,
        errors=("not_found",),
        path_params=ACCOUNT_IN_PATH,
        tags=TAG_ACCOUNTS,
    ),
    ApiRoute(
        "PUT",
        "/api/v1/admin/accounts/{account_id}/grants",
        "Replace an account's roles",
        body=GrantsIn,
        response=AccountOut,
        errors=("not_found", "validation_error", "conflict"),
        path_params=ACCOUNT_IN_PATH,
        tags=TAG_ACCOUNTS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/accounts/{account_id}/disable",
        "Disable an account (ends its sessions)",
        response=AccountOut,
        errors=("not_found", "conflict"),
        path_params=ACCOUNT_IN_PATH,
        tags=TAG_ACCOUNTS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/accounts/{account_id}/enable",
        "Enable an account",
        response=AccountOut,
        errors=("not_found",),
        path_params=ACCOUNT_IN_PATH,
        tags=TAG_ACCOUNTS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/accounts/{account_id}/reset-password",
        "A new one-time start password (unlocks the account)",
        response=StartPasswordOut,
        errors=("not_found",),
        path_params=ACCOUNT_IN_PATH,
        tags=TAG_ACCOUNTS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/locations/{location_id}/staff-roles",
        "Who has which role at a location",
        response=list[LocationRoleOut],
        tags=TAG_ACCOUNTS,
    ),
    ApiRoute(
        "PUT",
        "/api/v1/admin/locations/{location_id}/staff-roles/{account_id}",
        "A location administrator sets an account's appointment-manager and group-leader roles there",
        body=LocationRolesIn,
        response=AccountOut,
        errors=("not_found", "validation_error"),
        path_params=ACCOUNT_IN_PATH,
        tags=TAG_ACCOUNTS,
    ),
    ApiRoute(
        "GET", "/api/v1/admin/api-keys", "API keys (never the keys)", response=list[ApiKeyOut], tags=TAG_KEYS
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/api-keys",
        "Create an API key (the key is in this answer only)",
        body=ApiKeyIn,
        response=ApiKeyCreatedOut,
        status=201,
        errors=("validation_error",),
        tags=TAG_KEYS,
    ),
    ApiRoute(
        "PUT",
        "/api/v1/admin/api-keys/{key_id}/request-limit",
        "Set an API key's own request limit (or null: the default)",
        body=ApiKeyLimitIn,
        response=ApiKeyOut,
        errors=("not_found", "validation_error", "conflict"),
        tags=TAG_KEYS,
        description="The key's requests a minute per gateway replica, 1 to "
        f"{KEY_REQUESTS_PER_MINUTE_MAX} (a whole number; anything else is 422 `validation_error` naming "
        "`requests_per_minute`), or null for the settings' default. Its burst is the same share of a "
        "minute as the default's (OTV_API_KEY_BURST of OTV_API_KEY_REQUESTS_PER_MINUTE), at least 1. "
        "Every gateway replica applies it from the key's next request on (the key is read on every "
        "request): a lower limit leaves the key at most its new burst at once. Written to the audit log "
        "(action `set_limit`, before and after); setting the value the key has already changes nothing. "
        "A revoked key: 409 `conflict`.",
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/api-keys/{key_id}/revoke",
        "Revoke an API key",
        response=ApiKeyOut,
        errors=("not_found",),
        tags=TAG_KEYS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/audit-log",
        "The audit log, newest first, with filters and paging",
        query=AuditQuery,
        response=AuditPageOut,
        errors=("validation_error",),
        tags=TAG_AUDIT,
    ),
)

# Forwarded staff routes whose service may not declare them (yet): what the architecture says of them.
FORWARDED_SUMMARIES = {
    ("GET", "/api/v1/staff/locations/{location_id}/appointments"): "The day's appointments of a location",
    ("POST", "/api/v1/staff/appointments"): (
        "Book for a customer (staff or service centre); the public booking body plus interpreter_language"
    ),
    ("POST", "/api/v1/staff/appointments/{appointment_id}/cancel"): "Cancel an appointment with a reason",
    ("POST", "/api/v1/staff/appointments/{appointment_id}/erase"): (
        "Erase a past or cancelled appointment's personal data now (Art. 17 GDPR; location administrators)"
    ),
    ("POST", "/api/v1/staff/waiting-list/{wish_id}/erase"): (
        "Erase one waiting-list wish's personal data now (Art. 17 GDPR; location administrators)"
    ),
    ("GET", "/api/v1/staff/waiting-list"): (
        "Find one waiting-list wish by its reference, in any status, to erase it (Art. 17 GDPR; location "
        "administrators)"
    ),
    ("GET", "/api/v1/staff/waiting-list/{wish_id}"): (
        "One waiting-list wish by its id, in any status, to erase it (Art. 17 GDPR; location administrators)"
    ),
    (
        "POST",
        "/api/v1/staff/appointments/{appointment_id}/reschedule",
    ): "Move an appointment to another start",
    ("POST", "/api/v1/staff/appointments/{appointment_id}/outcome"): "Record how an appointment ended",
    ("GET", "/api/v1/staff/callbacks"): "Callback tickets",
    ("POST", "/api/v1/staff/locations/{location_id}/capacity-check"): (
        "Which booked appointments proposed windows or closures would leave without a service point (R20)"
    ),
    ("GET", "/api/v1/staff/locations/{location_id}/day-list"): "The Excel day list of a location",
    ("GET", "/api/v1/staff/statistics/summary"): "Statistics (statistics role only)",
    ("GET", "/staff/statistics"): "The statistics page with charts and tables (statistics role)",
    ("GET", "/staff/admin/booking-patterns"): "The page of unusual booking patterns (administrators)",
    ("GET", "/staff/admin/retention"): "The page of what personal data is kept and when it is deleted",
}

_WHERE = {
    From.PATH: "at the location `{name}` of the path",
    From.QUERY: "at the location of the query parameter `{name}` (absent: at every location)",
    From.QUERY_OR_OWN: (
        "at the location of the query parameter `{name}` (absent or empty: the role at some location;"
        " the answer covers the caller's own locations)"
    ),
    From.BODY: "at the location of the body field `{name}`",
    From.LOOKUP: "at the location of the {kind} in the path",
    From.EVERY_LOCATION: "for every location",
    From.SOME_LOCATION: "at some location (the service checks the entity's location)",
    From.NONE: "",
}


# How a script signed in with the session cookie (no browser, no Origin) writes (`authz.check_csrf`).
CSRF_PARAMETER = {
    "name": CSRF_HEADER,
    "in": "header",
    "required": False,
    "description": "Only with the session cookie (`staffSession`), not with an API key: the session's "
    "`csrf_token` (from `POST /api/v1/staff/login` or `GET /api/v1/staff/me`), for a client that sends "
    "no same-origin `Origin` header, such as a script. Without either: 403 `csrf_failed`.",
    "schema": {"type": "string"},
}


def rule_text(rule: Rule) -> str:
    who = f"the role `{rule.role}`" if rule.role is not None else "any signed-in staff member"
    where = _WHERE[rule.location.source].format(name=rule.location.name, kind=rule.location.kind)
    text = f"Needs {who} {where}".rstrip() + "."
    if rule.relaxed is not None:
        text += f" A `{rule.relaxed.role}` of the group may make the narrower change"
        text += f" (fields {sorted(rule.relaxed.fields)})." if rule.relaxed.fields else "."
    text += (
        f" API keys: operation `{rule.operation}`, and at most the key's own limit or"
        " OTV_API_KEY_REQUESTS_PER_MINUTE requests a minute per key (see the `apiKey` scheme), beyond that"
        " 429 `rate_limited` with Retry-After."
        if rule.operation
        else " Every valid API key too (its own grants and operations)."
        if rule.keys_too
        else " Not for API keys."
    )
    if rule.capacity_check is not None:
        text += (
            " R20: answers 409 `capacity_conflict` listing booked appointments that would lose their"
            " service point, unless confirmed: the query `?confirm_affected=true` (any method, DELETE"
            ' too), or `"confirm_affected": true` in a JSON body (the gateway takes the field out'
            " before the body reaches the service, whose schema does not name it)."
        )
    return text


def _default(setting: str) -> object:
    return Settings.model_fields[setting].default


def document() -> dict[str, Any]:
    return build_document(ROUTES, title="Staff access")


def annotate(merged: dict[str, Any]) -> None:
    """Security, 401/403 and the rule on every staff and admin operation of the merged document."""
    merged.setdefault("components", {})["securitySchemes"] = {
        "staffSession": {
            "type": "apiKey",
            "in": "cookie",
            "name": COOKIE,
            "description": "The session of the staff pages (POST /api/v1/staff/login). Behind TLS (an "
            f"https public address) the cookie is named `__Host-{COOKIE}`. Writes need a "
            "same-origin Origin header (or Sec-Fetch-Site: same-origin, or X-CSRF-Token).",
        },
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key of the service centre or another system (`otv_<prefix>_<secret>`), "
            "scoped to locations and operations. Each key has an allowance of requests, whatever they ask "
            f"for: OTV_API_KEY_BURST ({_default('api_key_burst')}) at once, refilled at "
            f"OTV_API_KEY_REQUESTS_PER_MINUTE ({_default('api_key_requests_per_minute')}) a minute, per "
            "gateway replica (the operator's settings; the defaults in brackets), unless an administrator "
            "gave the key a limit of its own (`requests_per_minute` of `GET /api/v1/admin/api-keys`; its "
            "`allowance` says what holds, burst included). Beyond it the answer is "
            "429 `rate_limited` with `Retry-After` (seconds): wait that long before the next request, and "
            "spread batch work out. Staff signed in with the session cookie have no such limit.",
        },
    }
    paths: dict[str, dict[str, Any]] = merged.setdefault("paths", {})
    for route in FORWARDED:
        operations = paths.setdefault(route.path, {})
        if route.method.lower() not in operations:
            summary = FORWARDED_SUMMARIES.get((route.method, route.path), f"Forwarded to {route.service}")
            ok: dict[str, Any] = {"description": "OK"}
            if not route.path.startswith("/api/"):  # a staff page the service renders
                ok = {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}
            operations[route.method.lower()] = {
                "operationId": f"{route.method.lower()}_{route.path.strip('/').replace('/', '_')}",
                "summary": summary,
                "tags": [f"staff: {route.service}"],
                "responses": {"200": ok},
            }
    table = rule_table()
    for path, operations in paths.items():
        if not is_staff_path(path):
            continue
        for method, operation in operations.items():
            rule = table.get((method.upper(), path))
            if rule is None or rule.public:
                continue
            by_key = rule.operation is not None or rule.keys_too
            operation["security"] = [{"staffSession": []}] + ([{"apiKey": []}] if by_key else [])
            description = operation.get("description", "")
            operation["description"] = (description + "\n\n" if description else "") + rule_text(rule)
            # rate_limited: beyond a few refused API keys a minute from one network (a refused request of
            # a valid account or key stays 403, audited or not), and beyond a valid key's allowance.
            refusals = ["unauthenticated", "forbidden", "password_change_required", "rate_limited"]
            if method != "get":
                refusals.append("csrf_failed")  # a cookie-authenticated write from another origin
                if path.startswith("/api/"):
                    operation.setdefault("parameters", []).append(dict(CSRF_PARAMETER))
            if rule.capacity_check is not None:
                refusals.append("capacity_conflict")
            # The rule's check of the location (authz.py): an id in the path that cannot be one, or an
            # unknown group, window or closure, is 404; one in the query or the body that cannot be, 422.
            if path.startswith("/api/"):
                if rule.location.source in (From.PATH, From.LOOKUP) or rule.group is not None:
                    refusals.append("not_found")
                elif rule.location.source in (From.QUERY, From.QUERY_OR_OWN, From.BODY):
                    refusals.append("validation_error")
            add_error_responses(operation.setdefault("responses", {}), refusals)


def declare_deprecation(merged: dict[str, Any]) -> None:
    """The headers of the username form (`deprecation.py`) on every answer of its routes' operations: to
    be called once every response of the merged document is declared."""
    for path, since in USERNAME_FORM_DEPRECATED.items():
        when = since.strftime("%Y-%m-%d %H:%M:%S UTC")
        headers = {
            "Deprecation": {
                "description": "Only in an answer to the deprecated form, an account named by its username "
                f"in the path: `{deprecation_header(since)}` (RFC 9745), the form was deprecated on {when}. "
                "Name the account by its id instead.",
                "schema": {"type": "string", "pattern": "^@-?[0-9]+$"},
            },
            "Link": {
                "description": "Only in an answer to the deprecated form, once the caller has passed "
                "authentication and the route's rule and the username names an account: the same route by "
                f'the account\'s id, `<{path}>; rel="successor-version"` with the id as `account_id` (RFC '
                "8288, RFC 5829). Not for a name that is no account, nor in a refusal of the caller.",
                "schema": {"type": "string"},
            },
        }
        for operation in merged["paths"][path].values():
            for response in operation["responses"].values():
                response.setdefault("headers", {}).update(headers)
