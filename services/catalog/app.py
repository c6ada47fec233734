"""Composition root of the catalog service."""

from __future__ import annotations

from aiohttp import web

from services.catalog import admin_api, api, authz
from services.catalog.config import Settings
from services.catalog.openapi import setup_openapi
from services.catalog.outbox_cleanup import outbox_cleanup_context
from shared.background import relay_context
from shared.clock import Clock
from shared.web import broker_context, create_base_app, database_context, single_valued_query


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = create_base_app(
        settings,
        clock=clock,
        handler_args={"max_line_size": settings.max_request_line, "max_field_size": 16384},
    )
    app.middlewares.append(authz.admin_guard)  # its 401/403 get the error body, before anything else
    # Innermost, after the guard: a repeated query parameter is a 422 (for a caller the guard let in).
    app.middlewares.append(single_valued_query)
    app.cleanup_ctx.extend(
        [
            database_context(settings),
            broker_context(settings),
            relay_context,
            outbox_cleanup_context(settings),  # published snapshots do not pile up for ever
        ]
    )
    app.router.add_routes(api.routes)
    app.router.add_routes(admin_api.routes)
    setup_openapi(app)  # GET /openapi.json: this service's part of the public API description
    return app
