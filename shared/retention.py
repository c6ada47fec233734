"""The frame of every service's retention job (R33, R34, I6, I7): what each service erases is its own;
how a run is scheduled, serialised across replicas, and reported is the same everywhere.

A run takes the advisory lock of its service (replicas serialise), skips when the last
`retention.run_completed` in the outbox is younger than the interval, lets the service erase what lies
before the cutoff, deletes published outbox events, dead letters and inbox records of that age (events carry
whole appointments), and publishes one `retention.run_completed` with the counts for the deletion report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
import structlog
from aiohttp import web

from shared.background import periodic_context
from shared.clock import Clock
from shared.config import CommonSettings
from shared.events.retention import RetentionRunCompletedV1
from shared.metrics import RETENTION_LAST_RUN
from shared.outbox import add_event, delete_published_before
from shared.web import CLOCK, POOL

log = structlog.get_logger(__name__)

# erase(conn, cutoff, started, clock) -> counts of what it erased, inside the run's transaction
Eraser = Callable[[asyncpg.Connection, datetime, datetime, Clock], Awaitable[dict[str, int]]]


JOB = "personal_data"  # the scheduled run's job; an erasure on request (Art. 17 GDPR) reports another


async def _last_run(conn: asyncpg.Connection) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT max((envelope->>'occurred_at')::timestamptz) FROM outbox"
        " WHERE type = 'retention.run_completed' AND envelope->'data'->>'job' = $1",
        JOB,
    )
    return value


async def delete_messages_before(conn: asyncpg.Connection, cutoff: datetime) -> dict[str, int]:
    """What every consuming service's schema keeps of received events: the dead letters (each a whole
    event, customer data included) and the inbox's record of handled events (without it, the table grows
    for ever; an event is not redelivered after its sender's outbox dropped it at the same age)."""
    dead = await conn.execute("DELETE FROM dead_letters WHERE dead_at < $1", cutoff)
    inbox = await conn.execute("DELETE FROM inbox WHERE processed_at < $1", cutoff)
    # The erasures kept for dead letters still to come (shared/erasure.py): none of that age comes now.
    await conn.execute("DELETE FROM erased_subjects WHERE erased_at < $1", cutoff)
    return {"dead_letters_deleted": int(dead.split()[-1]), "inbox_rows_deleted": int(inbox.split()[-1])}


async def run_retention(
    pool: asyncpg.Pool,
    settings: CommonSettings,
    clock: Clock,
    erase: Eraser,
    *,
    force: bool = False,
) -> dict[str, int] | None:
    """One run; None when another replica ran it in this interval (or holds the lock now)."""
    service = settings.service_name
    started = clock.now()
    cutoff = started - timedelta(days=settings.retention_days)
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtext($1))", f"otv.{service}.retention"
        ):
            return None
        last = await _last_run(conn)
        interval = timedelta(seconds=settings.retention_interval_seconds)
        if not force and last is not None and last > started - interval:
            RETENTION_LAST_RUN.labels(service).set(last.timestamp())  # another replica's run
            return None
        counts = await erase(conn, cutoff, started, clock)
        counts = {
            **counts,
            "outbox_events_deleted": await delete_published_before(conn, cutoff),
            **await delete_messages_before(conn, cutoff),
        }
        await add_event(
            conn,
            RetentionRunCompletedV1(
                service=service,
                job=JOB,
                started_at=started,
                finished_at=clock.now(),
                retention_days=settings.retention_days,
                cutoff=cutoff,
                counts=counts,
            ),
            producer=service,
            clock=clock,
        )
    RETENTION_LAST_RUN.labels(service).set(clock.now().timestamp())
    log.info("retention_run", **counts)
    return counts


def retention_context(
    settings: CommonSettings, erase: Eraser
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The retention job as a cleanup context (checks every few minutes whether its interval is due);
    nothing when the service runs without its jobs (`run_jobs`, the benchmark)."""

    async def job(app: web.Application) -> None:
        await run_retention(app[POOL], settings, app[CLOCK], erase)

    async def idle(_app: web.Application) -> AsyncIterator[None]:
        yield

    if not getattr(settings, "run_jobs", True):
        return idle
    # Every few minutes at most; the first check half a minute after the start (the service settles
    # first), or sooner when the interval is shorter.
    every = min(300.0, settings.retention_interval_seconds)
    return periodic_context("retention", every, job, first_delay=min(30.0, every))
