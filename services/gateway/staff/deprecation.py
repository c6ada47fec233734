"""The admin API's deprecated form: a staff account named by its username in the path instead of its id.

A username names the employee and ends up in access logs (R34), so since document version 1.5.0 the
admin API names an account by its id; the username in the same place still works for existing clients.
Every answer to that form says so in a way a client can read, success and error alike:
- `Deprecation: @<Unix seconds>` (RFC 9745): when the form was deprecated;
- `Link: <the same route by the account's id>; rel="successor-version"` (RFC 5829) where the caller
  reached the account: only a handler finds it (`name_successor`), after authentication and the route's
  rule, so that neither an anonymous nor a refused caller learns from it which usernames exist.
Operators see whether clients still use the form, by the route's pattern and never by the username: the
counter `otv_deprecated_requests_total{route}` (at 0 from the start) and the log line
`deprecated_form_used`, one per request.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime

import structlog
from aiohttp import web
from prometheus_client import Counter

from services.gateway.staff.domain import is_account_id
from services.gateway.staff.keys import SUCCESSOR
from shared.metrics import count_from_zero
from shared.web import correlation_middleware, route_of

log = structlog.get_logger(__name__)

# When each route's username form was deprecated: the commits that introduced the id form (21963c5 for
# the account routes, 37ee33a for a location's staff roles), released together as document version 1.5.0.
_ACCOUNTS = datetime(2026, 12, 7, 13, 56, 4, tzinfo=UTC)
_STAFF_ROLES = datetime(2026, 12, 7, 14, 2, 32, tzinfo=UTC)
ACCOUNT_ROUTE = "/api/v1/admin/accounts/{account_id}"
USERNAME_FORM_DEPRECATED: dict[str, datetime] = {
    ACCOUNT_ROUTE: _ACCOUNTS,
    f"{ACCOUNT_ROUTE}/grants": _ACCOUNTS,
    f"{ACCOUNT_ROUTE}/disable": _ACCOUNTS,
    f"{ACCOUNT_ROUTE}/enable": _ACCOUNTS,
    f"{ACCOUNT_ROUTE}/reset-password": _ACCOUNTS,
    "/api/v1/admin/locations/{location_id}/staff-roles/{account_id}": _STAFF_ROLES,
}

DEPRECATED_REQUESTS = Counter(
    "otv_deprecated_requests_total",
    "Requests in a deprecated form of the API (an admin route naming a staff account by its username "
    "instead of its id), by route pattern: when it stays at 0, clients have moved to the id",
    ["route"],
)
count_from_zero(DEPRECATED_REQUESTS, USERNAME_FORM_DEPRECATED)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def deprecation_header(since: datetime) -> str:
    """The `Deprecation` field's value (RFC 9745: a structured-field date, `@` and Unix seconds)."""
    return f"@{int(since.timestamp())}"


def name_successor(request: web.Request, account_id: uuid.UUID) -> None:
    """The answer to this request (in the username form) names the same route by the account's id."""
    resource = request.match_info.route.resource
    if resource is not None:
        parts = {**request.match_info, "account_id": str(account_id)}
        request[SUCCESSOR] = str(resource.url_for(**parts))


@web.middleware
async def deprecation_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = route_of(request)
    since = USERNAME_FORM_DEPRECATED.get(route)
    if since is None or is_account_id(request.match_info.get("account_id", "")):
        return await handler(request)
    DEPRECATED_REQUESTS.labels(route).inc()
    log.info("deprecated_form_used", route=route, method=request.method)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a redirect passes the error middleware as an exception
        _declare(request, exc.headers, since)
        raise
    _declare(request, response.headers, since)
    return response


def _declare(request: web.Request, headers: MutableMapping[str, str], since: datetime) -> None:
    headers["Deprecation"] = deprecation_header(since)
    successor = request.get(SUCCESSOR)
    if successor is not None:
        headers["Link"] = f'<{successor}>; rel="successor-version"'


def setup_deprecation(app: web.Application) -> None:
    """Just inside the correlation id (so that the log line carries it) and outside the error middleware,
    so that every answer gets the headers, the refusals of authentication and the rules included."""
    app.middlewares.insert(app.middlewares.index(correlation_middleware) + 1, deprecation_middleware)
