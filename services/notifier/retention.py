"""Scheduled deletion of personal data in the notifier (R34, I6).

The notifier wipes a mail's address and content once the mail is done, and erases everything of an
appointment when booking says so (`appointment.personal_data_erased`). This job is the schedule behind
both, with the setting every service shares (`OTV_RETENTION_DAYS`): for appointments that ended longer
ago than that it wipes what may still be there (address, content, the address's keyed hash on the mail,
the manage link), and it deletes the published events and the dead letters of that age (a dead letter
holds a whole appointment event). A suppression (the keyed hash of an address a server refused for good)
is lifted after the same period: the hash is personal data too, and a mailbox may come back.

One `retention.run_completed` per run, with counts, for reporting's deletion report; one run per
interval across replicas (I7), serialised by an advisory lock and decided by the last run in the outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

import asyncpg
from aiohttp import web

from services.notifier import db
from shared import retention
from shared.clock import Clock
from shared.config import CommonSettings


async def _erase(
    conn: asyncpg.Connection, cutoff: datetime, started: datetime, _clock: Clock
) -> dict[str, int]:
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
    # What is left of an erased wish (no personal data), and the marks of appointments erased before
    # their copy came: no event of that age arrives any more (its dead letter is deleted with them).
    await conn.execute("DELETE FROM waiting_wishes WHERE erased_at < $1", cutoff)
    await db.delete_erasure_marks_before(conn, cutoff)
    # A refused address is suppressed for the retention period, then mail to it is tried again.
    lifted = await conn.execute("DELETE FROM suppressions WHERE created_at < $1", cutoff)
    return {
        "mails_erased": int(mails.split()[-1]),
        "manage_links_erased": int(links.split()[-1]),
        "suppressions_lifted": int(lifted.split()[-1]),
    }


async def run_retention(
    pool: asyncpg.Pool, settings: CommonSettings, clock: Clock, *, force: bool = False
) -> dict[str, int] | None:
    """Erase what the retention period allows; None when another replica ran it in this interval."""
    return await retention.run_retention(pool, settings, clock, _erase, force=force)


def retention_context(settings: CommonSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    return retention.retention_context(settings, _erase)
