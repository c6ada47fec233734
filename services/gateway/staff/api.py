"""JSON handlers of staff access: sign-in, one's own account, accounts and roles, API keys, the audit log.

Who may call what is decided in `authz.py` from `rules.py` before a handler runs; handlers parse,
call a use case and answer.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.gateway.proxy import client_ip
from services.gateway.staff import service
from services.gateway.staff.authz import session_cookie
from services.gateway.staff.db import AuditFilter
from services.gateway.staff.deprecation import name_successor
from services.gateway.staff.domain import (
    KEY_REQUESTS_PER_MINUTE_MAX,
    KEY_REQUESTS_PER_MINUTE_MIN,
    LoginRefused,
    LoginThrottled,
    is_account_id,
)
from services.gateway.staff.keys import IDENTITY, SESSION, STAFF
from services.gateway.staff.service import Actor, grant_json, key_json
from shared.calendar import in_calendar
from shared.clock import BERLIN
from shared.db import BIGINT_MAX
from shared.errors import NotFoundError, UnauthenticatedError, ValidationError
from shared.logging import current_correlation_id
from shared.web import SETTINGS, parse_json, parse_query

routes = web.RouteTableDef()

LOGIN_REFUSED = "Wrong username or password, or the account is locked for a while."


# The audit filter's `who` (service.audit_filter_by_who): an id or a word, never a username.
WHO_PATTERN = (
    r"^(system|unknown|unknown-key|(api-key:)?[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12})$"
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=500)


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=500)


class PasswordIn(_In):
    current_password: str = Field(min_length=1, max_length=500)
    new_password: str = Field(min_length=1, max_length=500)


class GrantIn(_In):
    role: str = Field(max_length=40)
    location: str = Field(default="*", max_length=63)
    groups: list[str] = Field(default_factory=list, max_length=50)


class AccountIn(_In):
    username: str = Field(min_length=2, max_length=63)
    display_name: str = Field(default="", max_length=120)
    grants: list[GrantIn] = Field(default_factory=list, max_length=100)


class GrantsIn(_In):
    grants: list[GrantIn] = Field(max_length=100)


class LocationRolesIn(_In):
    roles: list[str] = Field(max_length=5)
    groups: list[str] = Field(default_factory=list, max_length=50)


# An API key's own request limit (R50): a whole number (strict: "600" or 600.5 is refused, not read as
# 600), within the bounds the database holds too (migration 014).
KeyRequestsPerMinute = Annotated[
    int,
    Field(
        strict=True,
        ge=KEY_REQUESTS_PER_MINUTE_MIN,
        le=KEY_REQUESTS_PER_MINUTE_MAX,
        description="The key's own request limit: requests a minute per gateway replica, with a burst of "
        "the same share of a minute as OTV_API_KEY_BURST is of OTV_API_KEY_REQUESTS_PER_MINUTE (120 of 600 "
        "by default: a fifth), at least 1. null: the settings' default for every key.",
    ),
]


class ApiKeyIn(_In):
    name: str = Field(min_length=1, max_length=120)
    locations: list[str] = Field(min_length=1, max_length=50)
    operations: list[str] = Field(min_length=1, max_length=10)
    expires_at: AwareDatetime | None = None
    requests_per_minute: KeyRequestsPerMinute | None = None


class ApiKeyLimitIn(_In):
    # Required, null included: a body that forgets the field does not silently reset the key's limit.
    requests_per_minute: KeyRequestsPerMinute | None


class AuditQuery(_In):
    actor: str | None = Field(
        default=None,
        max_length=120,
        description="Who, as the log names it: a username, api-key:<id>, system, ... (kept for existing "
        "clients; a username names a person and does not belong in an address: prefer `who`)",
    )
    who: str | None = Field(
        default=None,
        max_length=60,
        pattern=WHO_PATTERN,
        description="Who, without a person's name: a staff account's id, api-key:<id>, system (every "
        "automatic step), unknown (sign-ins with a name that is no account) or unknown-key",
    )
    entity: str | None = Field(default=None, max_length=60)
    entity_id: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=63)
    outcome: str | None = Field(default=None, pattern="^(ok|refused)$")
    from_: AwareDatetime | date | None = Field(default=None, alias="from")
    to: AwareDatetime | date | None = None
    before: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    limit: int = Field(default=50, ge=1, le=500)

    @field_validator("from_", "to")
    @classmethod
    def _in_calendar(cls, value: datetime | date | None) -> datetime | date | None:
        day = value.date() if isinstance(value, datetime) else value
        if day is not None and not in_calendar(day):
            raise ValueError("is not a day of the audit log")
        return value

    @model_validator(mode="after")
    def _one_who(self) -> AuditQuery:
        if self.actor and self.who:
            raise ValueError("give either actor or who")
        return self

    def filter(self) -> AuditFilter:
        """The filter without `who`: `service.audit_filter_by_who` adds it (it may need the database)."""
        return AuditFilter(
            actor=self.actor or None,
            entity=self.entity or None,
            entity_id=self.entity_id or None,
            location=self.location or None,
            outcome=self.outcome,
            since=_instant(self.from_, end=False),
            until=_instant(self.to, end=True),
            before_id=self.before,
            limit=self.limit,
        )


def _instant(value: datetime | date | None, *, end: bool) -> datetime | None:
    """A date means its Berlin day: `from` its start, `to` (inclusive) the start of the next day."""
    if value is None or isinstance(value, datetime):
        return value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0), tzinfo=BERLIN).astimezone(UTC)


def actor(request: web.Request) -> Actor:
    return Actor.of(request[IDENTITY], client_ip(request), current_correlation_id())


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    staff = request.app[STAFF]
    settings = request.app[SETTINGS]
    response.set_cookie(
        session_cookie(request.app),
        token,
        path="/",  # and no Domain: both required of a `__Host-` cookie
        httponly=True,
        secure=bool(getattr(settings, "staff_cookie_secure", True)),
        samesite="Lax",
        max_age=int(staff.sessions.absolute.total_seconds()),
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    # With the attributes it was set with: a browser ignores a `__Host-` cookie's deletion without Secure.
    secure = bool(getattr(request.app[SETTINGS], "staff_cookie_secure", True))
    response.del_cookie(session_cookie(request.app), path="/", secure=secure, httponly=True, samesite="Lax")


# --- sign-in and one's own account ------------------------------------------------------------------
@routes.post("/api/v1/staff/login")
async def login(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        # Login CSRF: a page of another site can post a form as text/plain whose body reads as this JSON
        # and sign the victim in to an account of the attacker's; application/json it cannot send
        # without our consent (a CORS preflight the gateway never grants).
        raise ValidationError(
            "The sign-in needs a JSON body (Content-Type: application/json).",
            details=[{"field": "body", "message": "must be application/json"}],
        )
    data = await parse_json(request, LoginIn, allow_nul=True)  # a NUL in a name: 401 like any wrong name
    who = Actor("", "user", client_ip(request), current_correlation_id())
    try:
        session = await service.login(request.app[STAFF], data.username, data.password, who)
    except LoginRefused:
        raise UnauthenticatedError(LOGIN_REFUSED) from None
    except LoginThrottled as throttled:
        response = web.json_response(
            {"error": {"code": "rate_limited", "message": "Too many failed sign-ins.", "details": []}},
            status=429,
        )
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    response = web.json_response(
        {
            "username": session.username,
            "must_change_password": session.must_change_password,
            "csrf_token": session.csrf_token,
        }
    )
    set_session_cookie(request, response, session.token)
    return response


@routes.post("/api/v1/staff/logout")
async def logout(request: web.Request) -> web.Response:
    session = request.get(SESSION)
    if session is not None:
        await service.logout(request.app[STAFF], session, actor(request))
    response = web.json_response({"status": "logged_out"})
    clear_session_cookie(request, response)
    return response


@routes.get("/api/v1/staff/me")
async def me(request: web.Request) -> web.Response:
    identity = request[IDENTITY]
    session = request.get(SESSION)
    body: dict[str, Any] = {
        "subject": identity.subject,
        "kind": str(identity.kind),
        "display_name": identity.display_name,
        "channel": identity.channel,
        "grants": [g.model_dump(mode="json") for g in identity.grants],
        "operations": list(identity.operations),
    }
    if session is not None:
        body["must_change_password"] = session.must_change_password
        body["csrf_token"] = session.csrf_token
        body["session_expires_at"] = session.expires_at.isoformat()
    return web.json_response(body)


@routes.post("/api/v1/staff/password")
async def change_password(request: web.Request) -> web.Response:
    session = request.get(SESSION)
    if session is None:  # an API key has no password
        raise UnauthenticatedError("Only a signed-in person changes a password.")
    data = await parse_json(request, PasswordIn)
    await service.change_password(
        request.app[STAFF], session, data.current_password, data.new_password, actor(request)
    )
    return web.json_response({"status": "changed"})


# --- accounts and roles -----------------------------------------------------------------------------
@routes.get("/api/v1/admin/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    return web.json_response([a.as_json() for a in await service.list_accounts(request.app[STAFF])])


@routes.post("/api/v1/admin/accounts")
async def create_account(request: web.Request) -> web.Response:
    data = await parse_json(request, AccountIn)
    grants = service.parse_grants([g.model_dump() for g in data.grants])
    view, password = await service.create_account(
        request.app[STAFF],
        actor(request),
        username=data.username,
        display_name=data.display_name,
        grants=grants,
    )
    return web.json_response({"account": view.as_json(), "start_password": password}, status=201)


# An account in the path: its id (`AccountOut.id`). A username in the same place still works for existing
# clients but is deprecated (R34: it names the employee, and a URL ends up in logs); the two never overlap
# (`domain.ACCOUNT_ID`), so `service._get` tells them apart by shape.
async def account_in_path(request: web.Request) -> str:
    """The path's account, as the use cases take it. In the deprecated username form the answer names the
    same route by the account's id (`deprecation.py`), found here, once the caller has passed the rule."""
    ref = request.match_info["account_id"]
    if not is_account_id(ref):
        # No such account: the use case answers 404 in its turn (after the body's checks).
        with contextlib.suppress(NotFoundError):
            name_successor(request, await service.account_id_of(request.app[STAFF], ref))
    return ref


@routes.get("/api/v1/admin/accounts/{account_id}")
async def get_account(request: web.Request) -> web.Response:
    view = await service.get_account(request.app[STAFF], await account_in_path(request))
    return web.json_response(view.as_json())


@routes.put("/api/v1/admin/accounts/{account_id}/grants")
async def put_grants(request: web.Request) -> web.Response:
    ref = await account_in_path(request)
    data = await parse_json(request, GrantsIn)
    grants = service.parse_grants([g.model_dump() for g in data.grants])
    view = await service.replace_account_grants(request.app[STAFF], actor(request), ref, grants)
    return web.json_response(view.as_json())


@routes.post("/api/v1/admin/accounts/{account_id}/disable")
async def disable_account(request: web.Request) -> web.Response:
    view = await service.set_account_active(
        request.app[STAFF], actor(request), await account_in_path(request), False
    )
    return web.json_response(view.as_json())


@routes.post("/api/v1/admin/accounts/{account_id}/enable")
async def enable_account(request: web.Request) -> web.Response:
    view = await service.set_account_active(
        request.app[STAFF], actor(request), await account_in_path(request), True
    )
    return web.json_response(view.as_json())


@routes.post("/api/v1/admin/accounts/{account_id}/reset-password")
async def reset_password(request: web.Request) -> web.Response:
    password = await service.reset_password(
        request.app[STAFF], actor(request), await account_in_path(request)
    )
    return web.json_response({"start_password": password})


@routes.get("/api/v1/admin/locations/{location_id}/staff-roles")
async def location_staff(request: web.Request) -> web.Response:
    rows = await service.staff_at_location(request.app[STAFF], request.match_info["location_id"])
    return web.json_response(
        [{"account_id": str(account_id), "username": name, **grant_json(g)} for name, account_id, g in rows]
    )


# The account by its id, or (deprecated) its username, as on the account routes above.
@routes.put("/api/v1/admin/locations/{location_id}/staff-roles/{account_id}")
async def put_location_roles(request: web.Request) -> web.Response:
    ref = await account_in_path(request)
    data = await parse_json(request, LocationRolesIn)
    view = await service.set_location_roles(
        request.app[STAFF],
        actor(request),
        request.match_info["location_id"],
        ref,
        data.roles,
        data.groups,
    )
    return web.json_response(view.as_json())


# --- API keys ---------------------------------------------------------------------------------------
@routes.get("/api/v1/admin/api-keys")
async def list_keys(request: web.Request) -> web.Response:
    staff = request.app[STAFF]
    return web.json_response([key_json(k, staff.key_allowance) for k in await service.list_api_keys(staff)])


@routes.post("/api/v1/admin/api-keys")
async def create_key(request: web.Request) -> web.Response:
    data = await parse_json(request, ApiKeyIn)
    created = await service.create_api_key(
        request.app[STAFF],
        actor(request),
        name=data.name,
        locations=data.locations,
        operations=data.operations,
        expires_at=data.expires_at,
        requests_per_minute=data.requests_per_minute,
    )
    staff = request.app[STAFF]
    keys = {k.id: k for k in await service.list_api_keys(staff)}
    # The key itself is in this answer only: it is stored as a hash.
    return web.json_response(
        {**key_json(keys[created.id], staff.key_allowance), "key": created.plain}, status=201
    )


@routes.put("/api/v1/admin/api-keys/{key_id}/request-limit")
async def put_key_limit(request: web.Request) -> web.Response:
    data = await parse_json(request, ApiKeyLimitIn)
    staff = request.app[STAFF]
    key = await service.set_api_key_limit(
        staff, actor(request), request.match_info["key_id"], data.requests_per_minute
    )
    return web.json_response(key_json(key, staff.key_allowance))


@routes.post("/api/v1/admin/api-keys/{key_id}/revoke")
async def revoke_key(request: web.Request) -> web.Response:
    staff = request.app[STAFF]
    key = await service.revoke_api_key(staff, actor(request), request.match_info["key_id"])
    return web.json_response(key_json(key, staff.key_allowance))


# --- the audit log (R46) ----------------------------------------------------------------------------
def audit_json(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        **entry,
        "occurred_at": entry["occurred_at"].isoformat(),
    }


@routes.get("/api/v1/admin/audit-log")
async def audit_log(request: web.Request) -> web.Response:
    query = parse_query(request, AuditQuery)
    staff = request.app[STAFF]
    entries = await service.search_audit(
        staff, await service.audit_filter_by_who(staff, query.filter(), query.who)
    )
    next_before = entries[-1]["id"] if len(entries) == query.limit else None
    return web.json_response({"entries": [audit_json(e) for e in entries], "next_before": next_before})
