"""Composition root of the notifier service."""

from __future__ import annotations

from aiohttp import web

from services.notifier.config import Settings
from shared.background import relay_context
from shared.clock import Clock
from shared.web import broker_context, create_base_app, database_context


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = create_base_app(settings, clock=clock)
    app.cleanup_ctx.extend([database_context(settings), broker_context(settings), relay_context])
    return app
