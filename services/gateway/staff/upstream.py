"""Calls of the staff pages to the owning services (catalog, notifier, booking), with the signed
identity of the signed-in person, so that the services see who acts and may check it again."""

from __future__ import annotations

from typing import Any

import aiohttp
import structlog
from aiohttp import web

from services.gateway.proxy import HTTP, UPSTREAMS, client_ip
from services.gateway.staff.forwarding import identity_headers
from shared.errors import UnavailableError
from shared.logging import current_correlation_id
from shared.web import CORRELATION_HEADER

log = structlog.get_logger(__name__)


async def call(
    request: web.Request,
    service: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
    signed: bool = True,
) -> tuple[int, Any]:
    """(status, parsed JSON body or None). 503 `unavailable` when no replica answers."""
    headers = {
        CORRELATION_HEADER: current_correlation_id(),
        "X-Forwarded-For": client_ip(request),
        "Accept": "application/json",
    }
    if signed:
        headers.update(identity_headers(request))
    session = request.app[HTTP]
    for base in request.app[UPSTREAMS].candidates(service):
        try:
            async with session.request(method, base + path, json=json, params=params, headers=headers) as r:
                try:
                    data = await r.json(content_type=None)
                except ValueError:
                    data = None
                return r.status, data
        except aiohttp.ClientConnectorError:
            log.warning("upstream_unreachable", service=service, upstream=base)
            continue
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("upstream_error", service=service, error=type(exc).__name__)
            break
    raise UnavailableError(f"The {service} service is not available at the moment.")
