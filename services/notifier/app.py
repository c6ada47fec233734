"""Composition root of the notifier service."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.notifier import api, consumer
from services.notifier.config import Settings
from services.notifier.retention import retention_context
from services.notifier.sender import MailSender, Transport
from shared import dead_letters
from shared.background import consumers_context, relay_context
from shared.clock import Clock
from shared.web import CLOCK, POOL, broker_context, create_base_app, database_context, single_valued_query

SENDER = web.AppKey("mail_sender", MailSender)


def create_app(
    settings: Settings, *, clock: Clock | None = None, transport: Transport | None = None
) -> web.Application:
    app = create_base_app(settings, clock=clock)
    app.middlewares.append(single_valued_query)  # innermost: a repeated query parameter is a 422
    app.add_routes(api.routes)
    app.add_routes(dead_letters.routes)

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        sender = MailSender(app[POOL], settings, app[CLOCK], transport=transport)
        app[SENDER] = sender
        await sender.start()
        yield
        await sender.stop()

    app.cleanup_ctx.extend(
        [
            database_context(settings),
            broker_context(settings),
            relay_context,
            consumers_context(consumer.consumers),
            sender_ctx,
        ]
    )
    app.cleanup_ctx.append(retention_context(settings))  # R34: erases its own copy on schedule
    return app
