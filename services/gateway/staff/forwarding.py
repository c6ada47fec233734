"""Staff and admin routes of other services: forwarded with the signed identity, and written to the audit
log once the owning service has answered 2xx.

The audit entry of a change made in another service is written right after the upstream's 2xx answer, in
a transaction of the gateway (the change itself committed in the other service's database; a gateway
crash in between would lose that one entry, which the other service's own events still show). It names
the entity and its id, the location and the names of the fields the request set, never their values:
a staff booking's body holds a customer's name and e-mail address.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from services.gateway.proxy import client_ip, forward
from services.gateway.staff import capacity, service, upstream
from services.gateway.staff.authz import json_body
from services.gateway.staff.catalog_index import learn_created
from services.gateway.staff.domain import LOCATION_ID, changed_fields
from services.gateway.staff.keys import GROUP, IDENTITY, LOCATION, RULE, SESSION, STAFF
from services.gateway.staff.rules import ALL_LOCATIONS_MARK, Forwarded
from services.gateway.staff.service import Actor
from services.gateway.staff.upstream import api_path, identity_headers
from shared.logging import current_correlation_id
from shared.staff_nav import FORM_TOKEN_HEADER

log = structlog.get_logger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_forwarder(route: Forwarded) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        change = route.rule.capacity_check
        path = api_path(route.upstream_path, request.match_info) if route.upstream_path else None
        if change is None:
            headers = _forwarded_headers(request, route.service, path)
            response = await forward(request, route.service, headers, path=path)
            if request.method in WRITE_METHODS and 200 <= response.status < 300:
                await audit_upstream_change(request, response)
            return response
        # R20: check booked appointments first; refuse, or apply and list them when confirmed.
        data = await json_body(request)
        confirmed, body = capacity.confirmed_and_body(request, data)
        affected = await capacity.affected_by(request, change, data)
        if affected and not confirmed:
            raise capacity.conflict(affected)
        headers = identity_headers(request, route.service, path)
        response = await forward(request, route.service, headers, body=body, path=path)
        if 200 <= response.status < 300:
            extra = {"affected_appointments": [str(a.get("id")) for a in affected]} if affected else None
            await audit_upstream_change(request, response, extra=extra)
            if affected:
                return capacity.with_affected(response, affected)
        return response

    return handler


def _forwarded_headers(request: web.Request, service: str, path: str | None) -> dict[str, str]:
    """The signed identity; for a staff page another service renders (reporting's statistics), also the
    session's form token, so that the page's header can offer the logout form."""
    headers = identity_headers(request, service, path)
    session = request.get(SESSION)
    if session is not None and request.method == "GET" and request.path.startswith("/staff/"):
        headers[FORM_TOKEN_HEADER] = session.csrf_token
    return headers


def _answer(response: web.StreamResponse) -> Any:
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | bytearray) or body[:1] != b"{":
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


async def audit_upstream_change(
    request: web.Request,
    response: web.StreamResponse,
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    resource = request.match_info.route.resource
    await audit_change(
        request,
        status=response.status,
        method=request.method,
        api_route=resource.canonical if resource else request.path,
        params=dict(request.match_info),
        data=await json_body(request),
        answer=_answer(response),
        extra=extra,
    )


async def audit_change(
    request: web.Request,
    *,
    status: int,
    method: str,
    api_route: str,
    params: dict[str, str],
    data: Any,
    answer: Any,
    extra: dict[str, Any] | None = None,
    entity: str | None = None,
) -> None:
    """The audit entry of a change another service made (after its 2xx): who, what (entity and id),
    where, the names of the fields set; learns new catalog entities for the look-ups."""
    rule = request[RULE]
    location = _location_of(request, data)
    if method == "POST":
        learn_created(request, api_route, location, request.get(GROUP), data, answer)
    fields = [f for f in changed_fields(data) if f != capacity.CONFIRM]
    changes: dict[str, Any] = {"fields": fields}
    changes.update(extra or {})
    # A booking with a hold names it: an audit review ties the hold's entry to the booking that took it.
    if hold_id := _uuid_of(data.get("hold_id") if isinstance(data, dict) else None):
        changes["hold_id"] = hold_id
    entity_id = _entity_id(params)
    if entity_id is None and isinstance(answer, dict):
        # A created thing's id from the answer: `id`, or `hold_id` for a hold (booking's HoldOut).
        for key in ("id", f"{entity or rule.entity}_id"):
            if isinstance(answer.get(key), str | int):
                entity_id = str(answer[key])[:200]
                break
    try:
        await service.record(
            request.app[STAFF],
            Actor.of(request[IDENTITY], client_ip(request), current_correlation_id()),
            action=_action(method, api_route),
            entity=entity or rule.entity or "resource",
            entity_id=entity_id,
            location=location,
            status=status,
            method=method,
            route=api_route,
            changes=changes,
        )
    except Exception as exc:  # noqa: BLE001 -- the change is done upstream; the missing entry must be loud
        log.error("audit_write_failed", error=type(exc).__name__, route=api_route)


def _location_of(request: web.Request, data: Any) -> str | None:
    """The location an audit entry names: the route's, else (a route of every location) the body's."""
    location = request.get(LOCATION) or None
    if location == ALL_LOCATIONS_MARK:
        location = None
    if location is None and isinstance(data, dict) and isinstance(data.get("location_id"), str):
        # Only what can be a location id: a service that does not read the field (a DELETE, an action
        # on an appointment) made the change whatever it holds, and a NUL would lose the entry.
        location = data["location_id"] if LOCATION_ID.fullmatch(data["location_id"]) else None
    return location


def _entity_id(params: dict[str, str]) -> str | None:
    """The id an audit entry names: the route's parameters but the location (`window_id`: "17")."""
    ids = {k: v for k, v in params.items() if k != "location_id"}
    return "/".join(ids.values())[:200] if ids else None


async def last_change_of(request: web.Request, params: dict[str, str]) -> service.LastChange | None:
    """Who changed the thing this page's form changes (its rule's entity, `params` of its API route)
    last, as `audit_change` recorded it: named in a refusal as `stale`."""
    entity = request[RULE].entity
    if not entity:
        return None
    return await service.last_change(
        request.app[STAFF], entity, _entity_id(params), _location_of(request, None)
    )


def _uuid_of(value: Any) -> str | None:
    """A hold's id as the audit log keeps it: a UUID only, never free text of a request body."""
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


async def apply_change(
    request: web.Request,
    service_name: str,
    method: str,
    api_route: str,
    params: dict[str, str],
    data: dict[str, Any] | None,
    *,
    confirmed: bool = False,
    extra_headers: dict[str, str] | None = None,
    entity: str | None = None,
    query: dict[str, str] | None = None,
) -> tuple[int, Any, list[dict[str, Any]]]:
    """A change made by a staff page: the same R20 check, call and audit entry as the API route whose
    rule the page's route repeats (`entity` names what it changes where that is not the page's own,
    such as the closure a mass change saves; `query` what a DELETE says beside its path, such as the
    version it was made against). Raises `CapacityConflictError` (409) unless confirmed."""
    change = request[RULE].capacity_check
    affected: list[dict[str, Any]] = []
    if change is not None:
        affected = await capacity.affected_by(request, change, data)
        if affected and not confirmed:
            raise capacity.conflict(affected)
    path = api_path(api_route, params)
    status, answer = await upstream.call(
        request, service_name, method, path, json=data, params=query, extra_headers=extra_headers
    )
    if 200 <= status < 300:
        extra = {"affected_appointments": [str(a.get("id")) for a in affected]} if affected else None
        await audit_change(
            request,
            status=status,
            method=method,
            api_route=api_route,
            params=params,
            data=data,
            answer=answer,
            extra=extra,
            entity=entity,
        )
    return status, answer, affected


# Path endings that name an action rather than a collection.
ACTION_SEGMENTS = frozenset(
    {"cancel", "reschedule", "outcome", "transfer", "close", "claim", "confirm", "lift", "replay", "erase"}
)


def _action(method: str, api_route: str) -> str:
    """A short verb: the action a path ends with (`cancel`, `outcome`), else what the method does."""
    last = api_route.rstrip("/").rsplit("/", 1)[-1]
    if method == "POST" and last in ACTION_SEGMENTS:
        return last
    return {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}.get(
        method, method.lower()
    )
