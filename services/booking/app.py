"""Composition root of the booking service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from services.booking import (  # issue 8: staff work
    api,
    mass_change,
    service,
    staff_api,
    staff_capacity,
    waiting_api,
)
from services.booking.cache import AvailabilityCache
from services.booking.config import Settings
from services.booking.consumer import booking_consumers
from services.booking.openapi import setup_openapi
from services.booking.retention import retention_context
from shared import dead_letters
from shared.background import consumers_context, periodic_context, relay_context
from shared.clock import Clock
from shared.web import CLOCK, POOL, broker_context, create_base_app, database_context, single_valued_query


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = create_base_app(settings, clock=clock)
    app.middlewares.append(single_valued_query)  # innermost: a repeated query parameter is a 422
    app.cleanup_ctx.extend(
        [database_context(settings), _deps_context(settings), broker_context(settings), relay_context]
    )
    if settings.consume_catalog or settings.consume_mail_reports:
        app.cleanup_ctx.append(consumers_context(booking_consumers))
    if settings.run_jobs:
        app.cleanup_ctx.append(
            periodic_context("passing", settings.passing_interval_seconds, _pass_started, first_delay=1.0)
        )
    app.cleanup_ctx.append(retention_context(settings))  # R34: erases its own copy on schedule
    app.router.add_routes(api.routes)
    app.router.add_routes(dead_letters.routes)  # I4: administrators see and replay them
    app.router.add_routes(staff_capacity.routes)  # R20, for the gateway's staff access (issue 7)
    app.router.add_routes(waiting_api.routes)  # R45, the waiting list (issue 11)
    app.router.add_routes([*staff_api.routes, *mass_change.routes])  # staff work (issue 8)
    app.cleanup_ctx.append(waiting_api.matcher_context(settings))  # R45: offers, expiries, erasure
    setup_openapi(app)  # GET /openapi.json: this service's part of the public API description
    return app


def _deps_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[api.DEPS] = service.Deps(
            pool=app[POOL],
            clock=app[CLOCK],
            settings=settings,
            availability_cache=AvailabilityCache(
                settings.availability_cache_seconds, settings.availability_cache_entries
            ),
        )
        yield

    return ctx


async def _pass_started(app: web.Application) -> None:
    await service.pass_started_appointments(app[api.DEPS])
