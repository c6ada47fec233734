"""Composition root of the gateway.

The parts plug in here, each from its own package: the API proxy (`proxy.py`, `routes.py`), the
customer web pages (`web/`), staff access (`staff/`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from services.gateway.bot_defence import setup_bot_defence
from services.gateway.config import Settings
from services.gateway.integrations import setup_integrations
from services.gateway.proxy import HTTP, TRUSTED_PROXIES, UPSTREAMS, Upstreams, make_proxy
from services.gateway.routes import PUBLIC_ROUTES
from services.gateway.staff import setup_staff
from services.gateway.staff_work import setup_staff_work
from services.gateway.web import setup_web
from services.gateway.web_waiting import setup_waiting
from shared.clock import Clock
from shared.errors import NotFoundError
from shared.networks import parse_networks
from shared.web import create_base_app, database_context, single_valued_query

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = create_base_app(settings, clock=clock)
    app[UPSTREAMS] = Upstreams(settings.upstreams())
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)
    app.cleanup_ctx.extend([database_context(settings), _http_client(settings)])
    for route in PUBLIC_ROUTES:
        app.router.add_route(route.method, route.path, make_proxy(route.service))
    setup_bot_defence(app)
    setup_web(app)
    setup_waiting(app)  # the waiting-list pages (R45, issue 11)
    setup_staff(app)
    setup_staff_work(app)  # the staff member's day: day list, outcomes, callbacks, calls (issue 8)
    setup_integrations(app)
    app.middlewares.append(internal_endpoints_middleware)
    # Innermost: a repeated query parameter is a 422 after the staff routes' authentication, and the
    # pages' middlewares around it answer it with their error page (the API with the error body).
    app.middlewares.append(single_valued_query)
    if asks_for_https_only(settings.public_base_url):
        app.on_response_prepare.append(strict_transport_security)
    return app


# HSTS (a year) whenever the public address is https (not this machine): browsers never try the site over http
# again, whichever ingress terminates TLS (ingress-nginx adds its own too; deploy/k8s/ingress.yaml).
# Without includeSubDomains: hosts below the public one, if there are any, are not the gateway's to decide
# for. A browser ignores the header on a plain-http answer, so it is harmless behind the ingress as well.
HSTS = "max-age=31536000"


def asks_for_https_only(public_base_url: str) -> bool:
    """HSTS for an https public address, but not for a developer's local TLS proxy (https://localhost:8443):
    HSTS ignores the port, so the browser would then refuse plain http to every local service for a year."""
    parts = urlsplit(public_base_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() != "https" or not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):  # loopback by definition (RFC 6761)
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name


async def strict_transport_security(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Strict-Transport-Security", HSTS)


INTERNAL_PATHS = frozenset({"/metrics", "/readyz", "/healthz"})


@web.middleware
async def internal_endpoints_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Probes and Prometheus reach a pod directly; a request through the ingress (it carries
    X-Forwarded-For) gets no metrics or readiness details: they name routes, traffic and internal errors."""
    if request.path in INTERNAL_PATHS and (
        "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    ):
        raise NotFoundError("There is no such page.")
    return await handler(request)


def _http_client(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(
            total=settings.upstream_timeout, sock_connect=settings.upstream_connect_timeout
        )
        connector = aiohttp.TCPConnector(limit=200, ttl_dns_cache=300)
        # One client carries everybody's requests: a cookie a service sets must not be kept and sent
        # with the next person's request (the jar keeps none; the answer's Set-Cookie is not passed on).
        jar = aiohttp.DummyCookieJar()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector, cookie_jar=jar) as session:
            app[HTTP] = session
            yield

    return ctx
