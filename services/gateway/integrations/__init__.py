"""Integrations of the gateway (issue 12, R50): signed webhooks (Standard Webhooks) and a versioned,
paged event feed for the service centre and other systems.

`setup_integrations(app)` is the one entry point the composition root calls, after `setup_staff`: the
gateway's broker connection, the consumer `gateway.integrations`, the webhook sender and the feed's
retention job. The routes' authorisation rules are in `staff/rules.py` with every other staff route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from aiohttp import web

from services.gateway.config import Settings
from services.gateway.integrations import api, consumer, service
from services.gateway.integrations.domain import RetryPolicy
from services.gateway.integrations.keys import INTEGRATIONS, RESOLVER, WEBHOOK_HTTP
from services.gateway.integrations.net import SystemResolver, webhook_session
from shared.background import consumers_context, periodic_context, with_job_lock
from shared.web import CLOCK, POOL, SETTINGS, broker_context


def setup_integrations(app: web.Application) -> None:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the gateway's own settings, for mypy
    app.router.add_routes(api.routes)

    async def start(app: web.Application) -> AsyncIterator[None]:
        app[INTEGRATIONS] = service.Integrations(
            pool=app[POOL],
            clock=app[CLOCK],
            resolver=app.get(RESOLVER) or SystemResolver(),
            policy=RetryPolicy(
                give_up_after=timedelta(hours=settings.webhook_give_up_hours),
                pause_after=timedelta(hours=settings.webhook_pause_after_hours),
                pause_after_failures=settings.webhook_pause_after_failures,
            ),
            allow_loopback=settings.webhook_allow_loopback,
            feed_retention=timedelta(days=settings.event_feed_retention_days),
            message_retention=timedelta(days=settings.retention_days),
        )
        yield

    # After the database pool (a cleanup context registered before this one).
    app.cleanup_ctx.append(start)
    if not settings.integrations:
        return
    app.cleanup_ctx.extend(
        [
            broker_context(settings),
            consumers_context(consumer.consumers),
            _sender(settings),
            periodic_context(
                "event-feed-retention", settings.retention_interval_seconds, _purge, first_delay=30
            ),
            periodic_context("webhook-state", 60, _report_state),
        ]
    )


def _sender(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def send(app: web.Application) -> None:
        it = app[INTEGRATIONS]
        # Several rounds while there is work; the next tick otherwise.
        while await service.send_due(it, app[WEBHOOK_HTTP]):
            pass

    loop = periodic_context("webhook-sender", settings.webhook_send_interval_seconds, send)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        it = app[INTEGRATIONS]
        async with webhook_session(
            it.resolver, allow_loopback=it.allow_loopback, timeout=settings.webhook_timeout_seconds
        ) as session:
            app[WEBHOOK_HTTP] = session
            async for _ in loop(app):
                yield

    return ctx


async def _purge(app: web.Application) -> None:
    it = app[INTEGRATIONS]

    async def work(_conn: object) -> None:
        await service.purge_feed(it)

    await with_job_lock(it.pool, "otv.gateway.event_feed_retention", work)


async def _report_state(app: web.Application) -> None:
    await service.report_state(app[INTEGRATIONS])
