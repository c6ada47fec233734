"""Scheduled deletion of personal data in the booking service (R34, I6).

Booking owns the appointments, so it erases its own copy: this many days (`OTV_RETENTION_DAYS`, the
setting every service shares) after an appointment's end, the customer's name, address, numbers, the
keys of the one-appointment rule, the cancellation reason and the client network are erased, and the
manage link stops working (its token hash is replaced). The reference (in every mail the customer has)
is replaced by a random one, so that it leads nobody to the file, and of the interpreter only that one
was needed stays (`INTERPRETER_ERASED`), not the language. What stays (location, group, concern, times,
status, channel) identifies nobody. The staff work's free text goes as well: the outcome's
note, callback tickets' notes and results, call attempts' notes, and history details other than ids,
places, times and outcomes. Waiting-list wishes that ended that long ago lose their contact data
(`waiting_list.erase_personal_data`). The events it published about such appointments and wishes leave
the outbox with them, also those written after the end (an outcome recorded weeks later); any other
published event left the outbox after `OTV_OUTBOX_KEEP_PUBLISHED_HOURS` (`shared.outbox`), and dead
letters of the retention period's age go too.

For each erased appointment it publishes `appointment.personal_data_erased`, so that the notifier and
reporting erase their copies at once; and one `retention.run_completed` per run with the counts, which
reporting shows in the deletion report. One run per interval across replicas (I7): the advisory lock
serialises them, and the last `retention.run_completed` in the outbox says whether this interval's run
has happened.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiohttp import web

from services.booking import waiting_list
from shared import retention
from shared.clock import Clock
from shared.config import CommonSettings
from shared.events.appointment import INTERPRETER_ERASED
from shared.events.retention import AppointmentPersonalDataErasedV1, RetentionRunCompletedV1
from shared.outbox import add_event, delete_published_about

BATCH = 2000  # appointments per transaction; the next run takes the rest
# An erased appointment's reference: this and 16 random hex digits (64 bits: never two alike). A space, not
# a hyphen, before them: the staff pages may break the line there on a narrow screen (WCAG 1.4.10).
ERASED_REFERENCE_PREFIX = "GELÖSCHT "


# What an erased appointment keeps of its customer: nothing. The manage link of an erased appointment must
# lead nowhere (R41): no token matches a hash of a random value. Nor does the reference: a random one of
# another shape than the references handed out (so unique, and never one a customer could read out), as
# migration 012 gave the appointments erased before.
ERASE_CUSTOMER = (
    "first_name = '', last_name = '', email = '', phone = NULL, customer_number = NULL,"
    " household_number = NULL, email_key = NULL, customer_number_key = NULL, household_number_key = NULL,"
    " cancel_reason = NULL, client_network = NULL,"
    " manage_token_hash = sha256(convert_to(gen_random_uuid()::text, 'UTF8')),"
    f" reference = '{ERASED_REFERENCE_PREFIX}' || upper(substr(md5(gen_random_uuid()::text), 1, 16)),"
    " interpreter_language = CASE WHEN interpreter_language IS NULL THEN NULL"
    f" ELSE '{INTERPRETER_ERASED}' END"
)


async def _erase(
    conn: asyncpg.Connection, cutoff: datetime, started: datetime, clock: Clock
) -> dict[str, int]:
    erased = await conn.fetch(
        f"UPDATE appointments SET {ERASE_CUSTOMER}, updated_at = $2"  # noqa: S608 -- a constant
        " WHERE id IN (SELECT id FROM appointments WHERE end_at < $1 AND email <> ''"
        "   ORDER BY end_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " RETURNING id",
        cutoff,
        started,
        BATCH,
    )
    for row in erased:
        await _published(conn, row["id"], started, clock)
    # Their events still in the outbox, also those written after the end (an outcome recorded late).
    await delete_published_about(conn, "appointment", [row["id"] for row in erased])
    staff_notes = await _erase_staff_work(conn, "a.end_at < $1", cutoff)
    wishes = await waiting_list.erase_personal_data(conn, cutoff, started, clock)
    return {"appointments_erased": len(erased), "staff_notes_erased": staff_notes, "wishes_erased": wishes}


ON_REQUEST = "erasure_on_request"  # the deletion report's job of an erasure under Art. 17 GDPR


@dataclass(frozen=True)
class ErasedAppointment:
    # The appointment's key of the one-appointment rule as it was (`contact.email_key`: the address
    # trimmed and lower-cased), so that the same person's waiting-list wishes can be found (`erasure.py`);
    # None for an allow-listed address (R6), which many customers share.
    email_key: str | None
    staff_notes: int


async def erase_appointment(
    conn: asyncpg.Connection, appointment_id: uuid.UUID, now: datetime, clock: Clock
) -> ErasedAppointment | None:
    """Erase one appointment's personal data before its time (a request under Art. 17 GDPR), as the
    retention run would: the customer's data, the staff work's free text, the manage link; the notifier
    and reporting erase their copies on the event. None when they were erased already. The caller
    (`erasure.py`) erases the same person's wishes and reports the erasure (`report_on_request`)."""
    erased = await conn.fetchrow(
        f"UPDATE appointments a SET {ERASE_CUSTOMER}, updated_at = $2"  # noqa: S608 -- a constant
        " FROM (SELECT id, email_key FROM appointments WHERE id = $1 FOR UPDATE) old"
        " WHERE a.id = old.id AND a.email <> '' RETURNING old.email_key",
        appointment_id,
        now,
    )
    notes = await _erase_staff_work(conn, "a.id = $1", appointment_id)
    if erased is None:
        return None
    await _published(conn, appointment_id, now, clock)
    await delete_published_about(conn, "appointment", [appointment_id])
    return ErasedAppointment(email_key=erased["email_key"], staff_notes=notes)


async def report_on_request(
    conn: asyncpg.Connection, counts: dict[str, int], now: datetime, clock: Clock, retention_days: int
) -> None:
    """The deletion report lists an erasure on request (accountability, Art. 5(2) GDPR): counts only."""
    report = RetentionRunCompletedV1(
        service="booking",
        job=ON_REQUEST,
        started_at=now,
        finished_at=now,
        retention_days=retention_days,
        counts=counts,
    )
    await add_event(conn, report, producer="booking", clock=clock)


async def _published(conn: asyncpg.Connection, appointment_id: uuid.UUID, at: datetime, clock: Clock) -> None:
    await add_event(
        conn,
        AppointmentPersonalDataErasedV1(appointment_id=appointment_id, erased_at=at),
        producer="booking",
        clock=clock,
    )


async def run_retention(
    pool: asyncpg.Pool, settings: CommonSettings, clock: Clock, *, force: bool = False
) -> dict[str, int] | None:
    """Erase what the retention period allows; None when another replica ran it in this interval."""
    return await retention.run_retention(pool, settings, clock, _erase, force=force)


def retention_context(settings: CommonSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    return retention.retention_context(settings, _erase)


# The staff work (issue 8) keeps free text about the customer beside the appointment: the outcome's note,
# a callback ticket's note and result, the notes of call attempts. Of the history's details only these
# keys stay (ids, places, times, outcomes: nobody is identified by them); any other key is dropped.
HISTORY_KEYS = [
    "outcome",
    "previous_outcome",
    "reason_given",
    "on_customer_request",
    "previous_appointment",
    "follow_up",
    "to_location_id",
    "from_location_id",
    "mass_change",
    "previous_start",
]


async def _erase_staff_work(conn: asyncpg.Connection, which: str, value: object) -> int:
    """Erase the staff work's free text of the appointments `which` selects (`a.end_at < $1`: those that
    ended before the cutoff, also those whose customer data an earlier run erased; `a.id = $1`: one);
    the number of rows changed. `which` is always one of these two constants of this module, never
    input; the value is a parameter."""
    changed = 0
    for statement, args in (
        (
            f"UPDATE appointments a SET outcome_note = NULL WHERE {which}"  # noqa: S608 -- see below
            " AND a.outcome_note IS NOT NULL",
            (value,),
        ),
        (
            "UPDATE callbacks c SET note = '', result = CASE WHEN c.result IS NULL THEN NULL ELSE '' END"  # noqa: S608
            f" FROM appointments a WHERE a.id = c.appointment_id AND {which}"
            " AND (c.note <> '' OR coalesce(c.result, '') <> '')",
            (value,),
        ),
        (
            "UPDATE call_attempts t SET note = '' FROM appointments a"  # noqa: S608
            f" WHERE a.id = t.appointment_id AND {which} AND t.note <> ''",
            (value,),
        ),
        (
            "UPDATE appointment_history h SET detail = coalesce("  # noqa: S608
            "   (SELECT jsonb_object_agg(key, value) FROM jsonb_each(h.detail) WHERE key = ANY($2::text[])),"
            "   '{}'::jsonb)"
            f" FROM appointments a WHERE a.id = h.appointment_id AND {which}"
            " AND EXISTS (SELECT 1 FROM jsonb_object_keys(h.detail) k WHERE k <> ALL($2::text[]))",
            (value, HISTORY_KEYS),
        ),
    ):
        status = await conn.execute(statement, *args)  # `which` is one of this module's two conditions
        changed += int(status.split()[-1])
    return changed
