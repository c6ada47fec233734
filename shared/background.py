"""Background work of a service as aiohttp cleanup contexts: the outbox relay, the consumers, and
periodic jobs that run once across replicas (I7)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import structlog
from aiohttp import web

from shared.broker import broker_ready
from shared.consumer import Consumer
from shared.outbox import OutboxRelay
from shared.web import BROKER, POOL, SETTINGS

log = structlog.get_logger(__name__)

RELAY = web.AppKey("outbox_relay", OutboxRelay)
CONSUMERS = web.AppKey("consumers", list)

ConsumerFactory = Callable[[web.Application], list[Consumer]]
Job = Callable[[web.Application], Awaitable[object]]


async def relay_context(app: web.Application) -> AsyncIterator[None]:
    relay = OutboxRelay(app[POOL], app[BROKER], app[SETTINGS])
    app[RELAY] = relay
    await relay.start()
    yield
    await relay.stop()


def consumers_context(factory: ConsumerFactory) -> Callable[[web.Application], AsyncIterator[None]]:
    """The service's consumers: started before the service takes requests when the broker is there (their
    queues exist before anything is published), else in the background as soon as it answers."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        consumers = factory(app)
        app[CONSUMERS] = consumers
        starting: asyncio.Task[None] | None = None
        if broker_ready(app[BROKER]):
            for consumer in consumers:
                await consumer.start()
        else:
            starting = asyncio.create_task(_start_when_connected(app, consumers), name="consumers-start")
        yield
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        for consumer in consumers:
            await consumer.stop()

    return ctx


async def _start_when_connected(app: web.Application, consumers: list[Consumer]) -> None:
    pending = list(consumers)
    while pending:
        await app[BROKER].ready()
        try:
            await pending[0].start()
            log.info("consumer_started_late", consumer=pending[0].name)
            pending.pop(0)
        except Exception as exc:  # noqa: BLE001 -- the broker went away again: wait for it and retry
            log.warning("consumer_start_failed", consumer=pending[0].name, error=type(exc).__name__)
            await pending[0].stop()  # its half-opened channel
            await asyncio.sleep(2.0)


def periodic_context(
    name: str, interval: float, job: Job, *, first_delay: float = 0.0
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Run `job(app)` every `interval` seconds until shutdown; a failing run is logged and retried."""

    async def loop(app: web.Application) -> None:
        await asyncio.sleep(first_delay)
        while True:
            try:
                await job(app)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- one failed run must not end the schedule
                log.warning("periodic_job_failed", job=name, error=type(exc).__name__)
            await asyncio.sleep(interval)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop(app), name=f"periodic-{name}")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


async def with_job_lock(
    pool: asyncpg.Pool, key: str, work: Callable[[asyncpg.Connection], Awaitable[object]]
) -> bool:
    """Run `work` in a transaction holding the advisory lock `key`, unless another replica holds it."""
    async with pool.acquire() as conn, conn.transaction():
        got = await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", key)
        if not got:
            return False
        await work(conn)
        return True
