"""Forwarding API requests to the owning service, balanced across its replicas, with timeouts.

An upstream that cannot be reached answers 502 `upstream_unavailable`, a slow one 504
`upstream_timeout`, both in the error body. A request whose connection could not even be opened is
tried on the next replica (nothing was sent, so that is safe for every method).
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import structlog
from aiohttp import web
from yarl import URL

from shared.logging import current_correlation_id
from shared.networks import within
from shared.web import CORRELATION_HEADER, error_response, route_of

log = structlog.get_logger(__name__)

# Request headers that travel to the service; everything else (cookies included) stays at the gateway.
FORWARDED_REQUEST_HEADERS = (
    "Content-Type",
    "Accept",
    "Accept-Language",
    "Idempotency-Key",
    "X-Manage-Token",
)
RETURNED_RESPONSE_HEADERS = (
    "Content-Type",
    "Content-Disposition",
    "Retry-After",
    "Location",
    "Cache-Control",
    # Answers in the asked language (catalog's concerns): a shared cache must keep one per language.
    "Content-Language",
    "Vary",
    # A service's own pages (reporting's staff pages) bring their own policy.
    "Content-Security-Policy",
    # A staff search whose list was cut (booking's `staff_api.TRUNCATED_HEADER`).
    "X-Result-Truncated",
)


class Upstreams:
    """Round-robin over the replicas of each service."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self._table = table
        self._cycles = {name: itertools.cycle(range(len(urls))) for name, urls in table.items() if urls}

    def candidates(self, service: str) -> Iterator[str]:
        urls = self._table.get(service) or []
        if not urls:
            return iter(())
        start = next(self._cycles[service])
        return iter(urls[start:] + urls[:start])


UPSTREAMS = web.AppKey("upstreams", Upstreams)
HTTP = web.AppKey("http_client", aiohttp.ClientSession)


TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple)


def client_ip(request: web.Request) -> str:
    """The customer's address: the socket's peer, or, behind a trusted proxy, the last address in
    X-Forwarded-For that is not itself a trusted proxy (a client can prepend anything to that header)."""
    peer = request.remote or "unknown"
    trusted = request.app.get(TRUSTED_PROXIES, ())
    if not trusted or not within(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not within(hop, trusted):
            return hop
    return peer


# An IPv6 subscriber gets at least a /64 and may use any address in it at will.
_IPV6_CLIENT_PREFIX = 64
# German providers hand each line (a home, a small office) a /56 or a /48 of its own: 256 or more /64s
# that one subscriber may switch between at will.
_IPV6_LINE_PREFIX = 56


def client_network(address: str) -> str:
    """What the limits count as one client (bot defence, sign-in throttle, refused API keys): an IPv4
    address itself, the /64 of an IPv6 address (else each of its 2^64 addresses would start with a full
    allowance); anything that is no address stays as it is."""
    return _network_of(address, _IPV6_CLIENT_PREFIX)


def lockout_network(address: str) -> str:
    """What the staff sign-in lock-out counts as one network, and remembers as a network an account
    signed in from: an IPv4 address itself, the /56 of an IPv6 address. Coarser than `client_network`:
    counted per /64, one IPv6 line (a /56 holds 256 of them) could fail five times from each of many /64s
    and reach the account-wide ceiling alone. A line with a /48 still has 256 /56s; against that the
    ceiling stays low and spares the networks the account knows (`LockoutPolicy`)."""
    return _network_of(address, _IPV6_LINE_PREFIX)


def _network_of(address: str, ipv6_prefix: int) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)


# R51: every write that passes the gateway leaves one log line with its correlation id (the line the
# booking service and the notifier continue); reads are counted by the metrics only, they are too many.
_QUIET_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _log_write(request: web.Request, service: str, status: int, started: float) -> None:
    log.info(
        "request_forwarded",
        upstream_service=service,
        method=request.method,
        route=route_of(request),
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def make_proxy(
    service: str, extra_headers: Callable[[web.Request], dict[str, str]] | None = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await forward(request, service, extra_headers(request) if extra_headers else None)

    return handler


async def forward(
    request: web.Request,
    service: str,
    extra_headers: dict[str, str] | None = None,
    *,
    body: bytes | None = None,
    path: str | None = None,
) -> web.StreamResponse:
    """Forward the request; `body` replaces the request's own body (the staff part strips fields only
    the gateway reads, such as R20's `confirm_affected`), `path` its path (the query string stays)."""
    headers = {h: request.headers[h] for h in FORWARDED_REQUEST_HEADERS if h in request.headers}
    headers[CORRELATION_HEADER] = current_correlation_id()
    headers["X-Forwarded-For"] = client_ip(request)
    headers.update(extra_headers or {})
    if body is None:
        body = await request.read()
    target = request.rel_url.raw_path_qs
    if path is not None:
        query = request.rel_url.raw_query_string
        target = path + (f"?{query}" if query else "")
    session = request.app[HTTP]
    started = time.perf_counter()
    for base in request.app[UPSTREAMS].candidates(service):
        try:
            # Exactly the path the gateway routed and checked: as a plain string, yarl would decode and
            # resolve a `%2E%2E` segment and the service would see another route than the rule's.
            url = URL(base + target, encoded=True)
            async with session.request(request.method, url, headers=headers, data=body or None) as upstream:
                payload = await upstream.read()
                response = web.Response(body=payload, status=upstream.status)
                for name in RETURNED_RESPONSE_HEADERS:
                    if name in upstream.headers:
                        response.headers[name] = upstream.headers[name]
                if request.method not in _QUIET_METHODS:
                    _log_write(request, service, upstream.status, started)
                return response
        except aiohttp.ClientConnectorError:
            log.warning("upstream_unreachable", upstream_service=service, upstream=base)
            continue
        except TimeoutError:
            log.warning("upstream_timeout", upstream_service=service, upstream=base)
            return error_response(504, "upstream_timeout", f"The {service} service did not answer in time.")
        except aiohttp.ClientError as exc:
            log.warning("upstream_error", upstream_service=service, upstream=base, error=type(exc).__name__)
            return error_response(502, "upstream_unavailable", f"The {service} service is unavailable.")
    return error_response(502, "upstream_unavailable", f"The {service} service is unavailable.")
