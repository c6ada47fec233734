"""Scheduled deletion of personal data in the notifier (R34, I6).

The notifier wipes a mail's address and content once the mail is done, and erases everything of an
appointment when booking says so (`appointment.personal_data_erased`). This job is the schedule behind
both, with the setting every service shares (`OTV_RETENTION_DAYS`): for appointments that ended longer
ago than that it wipes what may still be there (address, content, the address's keyed hash on the mail,
the manage link), and it deletes the published events and the dead letters of that age (a dead letter
holds a whole appointment event). The suppression list stays: it holds keyed hashes only, and it is what
keeps mail away from addresses that bounced.

One `retention.run_completed` per run, with counts, for reporting's deletion report; one run per
interval across replicas (I7), serialised by an advisory lock and decided by the last run in the outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import asyncpg
import structlog
from aiohttp import web

from shared.background import periodic_context
from shared.clock import Clock
from shared.config import CommonSettings
from shared.events.retention import RetentionRunCompletedV1
from shared.outbox import add_event
from shared.web import CLOCK, POOL

log = structlog.get_logger(__name__)

PRODUCER = "notifier"
LOCK = "otv.notifier.retention"


async def _last_run(conn: asyncpg.Connection) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT max((envelope->>'occurred_at')::timestamptz) FROM outbox"
        " WHERE type = 'retention.run_completed'"
    )
    return value


async def run_retention(
    pool: asyncpg.Pool, settings: CommonSettings, clock: Clock, *, force: bool = False
) -> dict[str, int] | None:
    """Erase what the retention period allows; None when another replica ran it in this interval."""
    started = clock.now()
    cutoff = started - timedelta(days=settings.retention_days)
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", LOCK):
            return None
        last = await _last_run(conn)
        if (
            not force
            and last is not None
            and last > started - timedelta(seconds=settings.retention_interval_seconds)
        ):
            return None
        mails = await conn.execute(
            "UPDATE mails m SET recipient = NULL, payload = NULL, recipient_hash = '',"
            " status = CASE WHEN m.status = 'pending' THEN 'cancelled' ELSE m.status END,"
            " finished_at = coalesce(m.finished_at, $2), claim_token = NULL, claimed_until = NULL"
            " FROM appointments a WHERE a.id = m.appointment_id AND a.end_at < $1"
            " AND (m.recipient IS NOT NULL OR m.payload IS NOT NULL OR m.recipient_hash <> '')",
            cutoff,
            started,
        )
        links = await conn.execute(
            "UPDATE appointments SET manage_url = NULL WHERE end_at < $1 AND manage_url IS NOT NULL", cutoff
        )
        outbox = await conn.execute(
            "DELETE FROM outbox WHERE published_at IS NOT NULL"
            " AND (envelope->>'occurred_at')::timestamptz < $1",
            cutoff,
        )
        dead = await conn.execute("DELETE FROM dead_letters WHERE dead_at < $1", cutoff)
        counts = {
            "mails_erased": int(mails.split()[-1]),
            "manage_links_erased": int(links.split()[-1]),
            "outbox_events_deleted": int(outbox.split()[-1]),
            "dead_letters_deleted": int(dead.split()[-1]),
        }
        await add_event(
            conn,
            RetentionRunCompletedV1(
                service=PRODUCER,
                job="personal_data",
                started_at=started,
                finished_at=clock.now(),
                retention_days=settings.retention_days,
                cutoff=cutoff,
                counts=counts,
            ),
            producer=PRODUCER,
            clock=clock,
        )
    log.info("retention_run", **counts)
    return counts


def retention_context(settings: CommonSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The retention job as a cleanup context (checks every few minutes whether its interval is due)."""

    async def job(app: web.Application) -> None:
        await run_retention(app[POOL], settings, app[CLOCK])

    return periodic_context(
        "retention", min(300.0, settings.retention_interval_seconds), job, first_delay=30.0
    )
