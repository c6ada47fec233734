"""The catalog's clean-up of its outbox: published events older than `OTV_RETENTION_DAYS` are deleted.

Every snapshot of a location (`catalog.location_configured`) is a whole copy of its configuration, so
without this the table grows with every change, for ever. The catalog holds no personal data and so runs
no retention job of `shared.retention`; this is the part of one it needs. Nothing reads old catalog
events: the consumers keep their own copy, and a new consumer (or one whose copy is lost) gets the current
state from `python -m services.catalog republish`, which builds the snapshots from the catalog's tables,
not from the outbox. Runs once across replicas (I7) under a transaction-scoped advisory lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import asyncpg
import structlog
from aiohttp import web

from shared.background import periodic_context, with_job_lock
from shared.clock import Clock
from shared.config import CommonSettings
from shared.outbox import delete_published_before
from shared.web import CLOCK, POOL

log = structlog.get_logger(__name__)

LOCK = "otv.catalog.outbox_cleanup"


async def delete_old_events(pool: asyncpg.Pool, settings: CommonSettings, clock: Clock) -> int | None:
    """One run: how many published events were deleted; None when another replica holds the lock."""
    cutoff = clock.now() - timedelta(days=settings.retention_days)
    deleted = 0

    async def work(conn: asyncpg.Connection) -> None:
        nonlocal deleted
        deleted = await delete_published_before(conn, cutoff)

    if not await with_job_lock(pool, LOCK, work):
        return None
    log.info("outbox_cleaned", events_deleted=deleted)
    return deleted


def outbox_cleanup_context(settings: CommonSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The clean-up as a cleanup context: every `OTV_RETENTION_INTERVAL_SECONDS`, the first run half a
    minute after the start (or after one interval, when that is shorter)."""

    async def job(app: web.Application) -> None:
        await delete_old_events(app[POOL], settings, app[CLOCK])

    interval = settings.retention_interval_seconds
    return periodic_context("outbox-cleanup", interval, job, first_delay=min(30.0, interval))
