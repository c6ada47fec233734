"""The pages' calls of the catalog and booking APIs, over HTTP through the gateway's upstream table
(`services/gateway/proxy.py`: the same replicas, round robin, client session and timeouts as the proxy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from services.gateway.proxy import HTTP, UPSTREAMS, client_ip
from shared.logging import current_correlation_id
from shared.web import CORRELATION_HEADER

log = structlog.get_logger(__name__)


class UpstreamUnavailable(Exception):
    """No replica of the service answered (the page says so and offers the hotline)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code", "error"))
        return "error"

    @property
    def error_details(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            details = self.body["error"].get("details") or []
            return [d for d in details if isinstance(d, dict)]
        return []


async def call(
    request: web.Request,
    service: str,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
    language: str | None = None,
) -> Answer:
    sent = {CORRELATION_HEADER: current_correlation_id(), "X-Forwarded-For": client_ip(request)}
    if language:
        sent["Accept-Language"] = language
    sent.update(headers or {})
    session = request.app[HTTP]
    for base in request.app[UPSTREAMS].candidates(service):
        try:
            async with session.request(method, base + path, params=params, json=json, headers=sent) as up:
                try:
                    body = await up.json(content_type=None)
                except ValueError:
                    body = None
                return Answer(up.status, body)
        except aiohttp.ClientConnectorError:
            log.warning("upstream_unreachable", service=service, upstream=base)
            continue
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("upstream_error", service=service, upstream=base, error=type(exc).__name__)
            raise UpstreamUnavailable(service) from None
    raise UpstreamUnavailable(service)
