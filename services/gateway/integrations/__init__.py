"""Integrations of the gateway (issue 12, R50): signed webhooks (Standard Webhooks) and a versioned,
paged event feed for the service centre and other systems.

`setup_integrations(app)` is the one entry point the composition root calls, after `setup_staff`: the
gateway's broker connection, the consumer `gateway.integrations`, the webhook sender and the feed's
retention job. The routes' authorisation rules are in `staff/rules.py` with every other staff route.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import structlog
from aiohttp import web

from services.gateway.config import Settings
from services.gateway.integrations import api, consumer, service
from services.gateway.integrations.domain import RetryPolicy
from services.gateway.integrations.keys import INTEGRATIONS, RESOLVER, WEBHOOK_HTTP
from services.gateway.integrations.net import SystemResolver, webhook_session
from shared.background import consumers_context, periodic_context, with_job_lock
from shared.broker import connection_in_background
from shared.topology import INTEGRATIONS as INTEGRATIONS_CONSUMER
from shared.topology import remove_queues
from shared.web import CLOCK, POOL, SETTINGS, broker_context

log = structlog.get_logger(__name__)


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
        app.cleanup_ctx.append(_remove_queues(settings))
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


def _remove_queues(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Integrations off: the consumer's queues go, with what they hold (R34), whatever declared them (an
    earlier release, or a set-up that did not see the setting). In the background, once the broker answers;
    the gateway serves meanwhile and needs no broker otherwise."""

    async def remove() -> None:
        connection, connecting = connection_in_background(settings)
        try:
            await connecting
            await remove_queues(connection, INTEGRATIONS_CONSUMER, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- best effort: tried again at the next start
            log.warning("integration_queues_not_removed", error=type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(remove(), name="remove-integration-queues")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


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
