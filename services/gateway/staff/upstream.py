"""Calls of the staff pages to the owning services (catalog, notifier, booking), with the signed
identity of the signed-in person, so that the services see who acts and may check it again."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from yarl import URL

from services.gateway.proxy import HTTP, UPSTREAMS, client_ip
from services.gateway.staff.keys import IDENTITY
from shared.errors import NotFoundError, UnavailableError, ValidationError
from shared.identity import HEADER, StaffIdentity, request_target, sign
from shared.logging import current_correlation_id
from shared.web import CLOCK, CORRELATION_HEADER, SETTINGS

log = structlog.get_logger(__name__)


# A value that goes into a path segment of a service's route: an id (slug, number, uuid), never a
# separator or a dot segment, which would make the path name another route than the one whose rule was
# checked (a form field `../../nord/...` once reached another location's route).
_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}")


def api_path(route: str, params: Mapping[str, str]) -> str:
    """`route` (`/api/v1/.../{name}/...`) with `params` filled in, each checked to be one plain segment;
    422 `validation_error` naming the parameter otherwise."""
    for name, value in params.items():
        if not _SEGMENT.fullmatch(str(value)):
            raise ValidationError(
                f"Invalid input: {name}.", details=[{"field": name, "message": "not an id"}]
            )
    return route.format(**params)


def identity_headers(
    request: web.Request,
    service: str,
    path: str | None = None,
    *,
    method: str | None = None,
    identity: StaffIdentity | None = None,
) -> dict[str, str]:
    """The verified identity (or `identity`), signed for this one call: the owning service, the method
    (the request's own by default) and the path (the request's own by default; a query does not count),
    so that the header opens no other route (shared/identity.py). Fresh: it is valid for a minute."""
    fresh = (identity or request[IDENTITY]).model_copy(update={"issued_at": request.app[CLOCK].now()})
    decoded = URL(path, encoded=True).path if path is not None else request.path
    target = request_target(service, method or request.method, decoded)
    return {HEADER: sign(fresh, request.app[SETTINGS].internal_secret, target=target)}


async def call(
    request: web.Request,
    service: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
    signed: bool = True,
    identity: StaffIdentity | None = None,
    extra_headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, parsed JSON body or None). 503 `unavailable` when no replica answers. The call carries
    the signed identity of the person (or `identity`, e.g. the gateway's own for look-ups). The answer's
    headers are copied into `response_headers` where given, under lower-case names."""
    if any(segment in {".", ".."} for segment in path.split("?", 1)[0].split("/")):
        # A dot segment would be resolved by the HTTP client into another route than the caller meant.
        raise NotFoundError("Not found.")
    headers = {
        CORRELATION_HEADER: current_correlation_id(),
        "X-Forwarded-For": client_ip(request),
        "Accept": "application/json",
        **(extra_headers or {}),
    }
    if identity is not None or signed:
        # The path as the client will send it (it passes the string through yarl the same way).
        sent = URL(path).raw_path
        headers.update(identity_headers(request, service, sent, method=method, identity=identity))
    session = request.app[HTTP]
    for base in request.app[UPSTREAMS].candidates(service):
        try:
            async with session.request(method, base + path, json=json, params=params, headers=headers) as r:
                if response_headers is not None:
                    response_headers.update((name.lower(), value) for name, value in r.headers.items())
                try:
                    data = await r.json(content_type=None)
                except ValueError:
                    data = None
                return r.status, data
        except aiohttp.ClientConnectorError:
            log.warning("upstream_unreachable", upstream_service=service, upstream=base)
            continue
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("upstream_error", upstream_service=service, error=type(exc).__name__)
            break
    raise UnavailableError(f"The {service} service is not available at the moment.")
