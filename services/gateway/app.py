"""Composition root of the gateway.

The parts plug in here, each from its own package: the API proxy (`proxy.py`, `routes.py`), the
customer web pages (`web/`), staff access (`staff/`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from services.gateway.bot_defence import setup_bot_defence
from services.gateway.config import Settings
from services.gateway.integrations import setup_integrations
from services.gateway.proxy import HTTP, TRUSTED_PROXIES, UPSTREAMS, Upstreams, make_proxy, parse_networks
from services.gateway.routes import PUBLIC_ROUTES
from services.gateway.staff import setup_staff
from services.gateway.staff_work import setup_staff_work
from services.gateway.web import setup_web
from services.gateway.web_waiting import setup_waiting
from shared.clock import Clock
from shared.web import create_base_app, database_context


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
    return app


def _http_client(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(
            total=settings.upstream_timeout, sock_connect=settings.upstream_connect_timeout
        )
        connector = aiohttp.TCPConnector(limit=200, ttl_dns_cache=300)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            app[HTTP] = session
            yield

    return ctx
