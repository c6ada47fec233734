"""Every SQL statement of the notifier."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.notifier.domain import MailStatus
from shared.events.appointment import AppointmentSnapshot

# -- the appointment copy -----------------------------------------------------------------------------


async def apply_snapshot(
    conn: asyncpg.Connection,
    snap: AppointmentSnapshot,
    now: datetime,
    manage_url: str | None,
    *,
    changes_state: bool,
) -> asyncpg.Record | None:
    """Store the snapshot unless a newer or equal revision is already known. Returns the stored row
    (with the manage link that holds a token, if one is known, `new`: the appointment was not known
    before, and `erased`: its personal data were erased) when it was fresh, None when stale.

    ON CONFLICT takes the row lock, so two replicas applying events of one appointment at once are
    serialised and the second compares against what the first committed."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "INSERT INTO appointments (id, revision, status, start_at, end_at, updated_at, manage_url,"
        " state_revision, link_revision)"
        " VALUES ($1, $2, $3::text, $4, $5, $6, CASE WHEN $3::text = 'booked' THEN $7::text END,"
        " CASE WHEN $8 THEN $2 ELSE 0 END, CASE WHEN $7::text IS NOT NULL THEN $2 ELSE 0 END)"
        " ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, status = excluded.status,"
        " start_at = excluded.start_at, end_at = excluded.end_at, updated_at = excluded.updated_at,"
        " state_revision = CASE WHEN $8 THEN excluded.revision ELSE appointments.state_revision END,"
        " manage_url = CASE WHEN excluded.status = 'booked' AND appointments.erased_at IS NULL"
        "   THEN coalesce(excluded.manage_url, appointments.manage_url) END,"
        " link_revision = CASE WHEN excluded.manage_url IS NOT NULL THEN excluded.revision"
        "   ELSE appointments.link_revision END"
        " WHERE appointments.revision < excluded.revision"
        # xmax is 0 for a row this statement inserted, the updating transaction's id for an updated one.
        " RETURNING manage_url, xmax = 0 AS new, erased_at IS NOT NULL AS erased",
        snap.id,
        snap.revision,
        str(snap.status),
        snap.start,
        snap.end,
        now,
        manage_url,
        changes_state,
    )
    return row


async def take_late_link(conn: asyncpg.Connection, snap: AppointmentSnapshot, manage_url: str) -> bool:
    """An event older than the copy that brings a manage link newer than the copy's (a corrected address's
    new link overtaken by a staff move, which carries none): the copy keeps that link, so that the mails
    still to send (rendered with the link in force) carry it. Never for a cancelled appointment or one
    whose data were erased."""
    taken = await conn.fetchval(
        "UPDATE appointments SET manage_url = $2, link_revision = $3"
        " WHERE id = $1 AND link_revision < $3 AND status = 'booked' AND erased_at IS NULL RETURNING true",
        snap.id,
        manage_url,
        snap.revision,
    )
    return bool(taken)


async def take_overtaken_event(
    conn: asyncpg.Connection, snap: AppointmentSnapshot, *, changes_state: bool
) -> bool:
    """An event older than the copy: whether its own mail is still to be sent, that is, no change of
    state at or after its revision was seen and the copy still shows its status and time (a change not
    seen yet sends its own mail when it comes). A change of state taken so moves the copy's
    `state_revision` up, so that an older one arriving after it is dropped: the mails about the state go
    out in the order of their revisions. Never after an erasure: its mail would go to the person who
    asked to be forgotten. The row lock serialises this with every other event of the appointment."""
    taken = await conn.fetchval(
        "UPDATE appointments SET state_revision = CASE WHEN $6 THEN $2 ELSE state_revision END"
        " WHERE id = $1 AND state_revision < $2 AND revision > $2 AND status = $3::text"
        " AND start_at = $4 AND end_at = $5 AND erased_at IS NULL RETURNING true",
        snap.id,
        snap.revision,
        str(snap.status),
        snap.start,
        snap.end,
        changes_state,
    )
    return bool(taken)


# -- planning -----------------------------------------------------------------------------------------


async def serialise_erasure(conn: asyncpg.Connection, appointment_id: uuid.UUID) -> None:
    """Taken by an erasure and by the first event of an appointment (transaction-level), so that an erasure
    applied while another replica makes the appointment's copy either finds that copy (committed) or
    leaves a marker that the new copy then takes (`take_erasure_mark`)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('otv.notifier.erasure:' || $1::uuid::text, 0))",
        appointment_id,
    )


async def take_erasure_mark(conn: asyncpg.Connection, appointment_id: uuid.UUID) -> bool:
    """A new copy of an appointment erased before it came: the copy keeps the erasure (no manage link),
    so that every later event finds it there."""
    taken = await conn.fetchval(
        "UPDATE appointments a SET erased_at = e.erased_at, manage_url = NULL FROM erased_appointments e"
        " WHERE a.id = $1 AND e.id = a.id RETURNING true",
        appointment_id,
    )
    return bool(taken)


async def delete_erasure_marks_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    result: str = await conn.execute("DELETE FROM erased_appointments WHERE erased_at < $1", cutoff)
    return int(result.split()[-1])


async def erase_personal_data(conn: asyncpg.Connection, appointment_id: uuid.UUID, now: datetime) -> int:
    """The owner erased the appointment's personal data (R34, or a request under Art. 17 GDPR): so do
    we: address, content and the address's keyed hash of every mail, and the suppressions a refusal of
    them left; what was still to be sent is not sent any more (a reminder, a manage link that would lead
    nowhere). Except: the cancellation (staff cancel, then erase on the customer's request: the customer
    must still learn that the appointment is off), and a mail a sender is delivering at this moment
    (taking it away would record a delivered mail as cancelled). Their end wipes them, as every mail's
    end does (FINISH, which takes the hash too once the appointment is erased), at the latest when they
    give up.

    Without a copy yet (the appointment's events come later: a replayed dead letter, a backlog out of
    order) a marker keeps the erasure for them (`take_erasure_mark`)."""
    await serialise_erasure(conn, appointment_id)
    copy = await conn.fetchval(
        "UPDATE appointments SET manage_url = NULL, erased_at = coalesce(erased_at, $2) WHERE id = $1"
        " RETURNING true",
        appointment_id,
        now,
    )
    if not copy:
        await conn.execute(
            "INSERT INTO erased_appointments (id, erased_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            appointment_id,
            now,
        )
    result: str = await conn.execute(
        "UPDATE mails SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,"
        " finished_at = coalesce(finished_at, $2), recipient = NULL, payload = NULL, recipient_hash = '',"
        " claim_token = NULL, claimed_until = NULL"
        " WHERE appointment_id = $1"
        " AND (recipient IS NOT NULL OR payload IS NOT NULL OR recipient_hash <> '')"
        " AND NOT (status = 'pending' AND (kind = 'cancellation' OR coalesce(claimed_until > $2, false)))",
        appointment_id,
        now,
    )
    await delete_suppressions_of(conn, appointment_id)
    return int(result.split()[-1])


async def delete_suppressions_of(conn: asyncpg.Connection, appointment_id: uuid.UUID) -> int:
    """An erasure (R34): the suppressions a refusal of the appointment's (or wish's) mails left. The keyed
    hash of the address beside the refused mail ties the address to the appointment. A later refusal of
    the address suppresses it again."""
    result: str = await conn.execute(
        "DELETE FROM suppressions WHERE mail_id IN (SELECT id FROM mails WHERE appointment_id = $1)",
        appointment_id,
    )
    return int(result.split()[-1])


async def cancel_superseded_mails(
    conn: asyncpg.Connection,
    appointment_id: uuid.UUID,
    now: datetime,
    kinds: Sequence[str],
    *,
    revision: int,
    mark_in_delivery: bool,
) -> list[asyncpg.Record]:
    """Cancel the appointment's pending mails of these kinds and of earlier revisions that `revision`
    made wrong (a confirmation still waiting for the mail server after the appointment was cancelled
    would otherwise arrive after the cancellation). A mail a sender is delivering at this moment stays
    with it; with `mark_in_delivery` it is marked as superseded by `revision`, so that a failed attempt
    cancels it instead of trying again (`lock_claim`). Returns each mail's kind, the start it was about,
    whether its time had come (tried already, or due), and `held`: only marked, not cancelled.

    The lock is taken on every pending mail of the kinds, held or not, and whether a sender holds it is
    read after the lock: a sender that records a failed attempt at the same moment either sees the mark
    or leaves the mail unclaimed before it is looked at, so it is cancelled either way.

    The mails of a wish that ended go the same way (`waiting_mail`, the wish's id in `appointment_id`)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "UPDATE mails m SET"
        " status = CASE WHEN old.held THEN m.status ELSE 'cancelled' END,"
        " finished_at = CASE WHEN old.held THEN m.finished_at ELSE $2 END,"
        " recipient = CASE WHEN old.held THEN m.recipient END,"
        " payload = CASE WHEN old.held THEN m.payload END,"
        " superseded_by = CASE WHEN old.held THEN $4 ELSE m.superseded_by END"
        " FROM (SELECT id, payload->'appointment'->>'start' AS start,"
        "   coalesce(claimed_until > $2, false) AS held FROM mails"
        "   WHERE appointment_id = $1 AND status = 'pending' AND kind = ANY($3::text[]) AND revision < $4"
        "   FOR UPDATE) old"
        " WHERE m.id = old.id AND (NOT old.held OR $5)"
        " RETURNING m.kind, old.start, (m.attempts > 0 OR m.due_at <= $2) AS came, old.held",
        appointment_id,
        now,
        list(kinds),
        revision,
        mark_in_delivery,
    )
    return rows


async def correct_pending_mails(
    conn: asyncpg.Connection,
    appointment_id: uuid.UUID,
    revision: int,
    customer: dict[str, Any],
    now: datetime,
) -> int:
    """Staff corrected the customer's contact data: the appointment's mails of earlier revisions still
    waiting tell the new name. Not one a sender holds (it is being written); the address does not
    change here (a corrected address supersedes those mails instead, `cancel_superseded_mails`)."""
    result: str = await conn.execute(
        "UPDATE mails SET payload = jsonb_set(payload, '{appointment,customer}', $3::jsonb)"
        " WHERE appointment_id = $1 AND revision < $2 AND status = 'pending' AND payload ? 'appointment'"
        " AND NOT coalesce(claimed_until > $4, false)",
        appointment_id,
        revision,
        customer,
        now,
    )
    return int(result.split()[-1])


async def insert_mails(
    conn: asyncpg.Connection,
    *,
    appointment_id: uuid.UUID,
    planned: Sequence[tuple[str, datetime, datetime]],
    revision: int,
    language: str,
    recipient: str,
    recipient_hash: str,
    payload: dict[str, Any],
    correlation_id: str,
    now: datetime,
) -> list[str]:
    """Plan the mails (kind, due, deadline) of one revision in one statement; returns the kinds planned now
    (a kind this revision already has is not planned twice)."""
    rows = await conn.fetch(
        "INSERT INTO mails (id, appointment_id, kind, revision, language, due_at, deadline, recipient,"
        " recipient_hash, payload, correlation_id, created_at)"
        " SELECT gen_random_uuid(), $1, kind, $2, $3, due_at, deadline, $4, $5, $6::jsonb, $7, $8"
        " FROM unnest($9::text[], $10::timestamptz[], $11::timestamptz[]) AS p(kind, due_at, deadline)"
        " ON CONFLICT (appointment_id, kind, revision) DO NOTHING RETURNING kind",
        appointment_id,
        revision,
        language,
        recipient,
        recipient_hash,
        payload,
        correlation_id,
        now,
        [kind for kind, _due, _deadline in planned],
        [due for _kind, due, _deadline in planned],
        [deadline for _kind, _due, deadline in planned],
    )
    return [row["kind"] for row in rows]


# -- sending ------------------------------------------------------------------------------------------


async def claim_due(
    conn: asyncpg.Connection,
    *,
    now: datetime,
    lease_until: datetime,
    token: uuid.UUID,
    limit: int,
    exclude: list[uuid.UUID],
) -> list[asyncpg.Record]:
    """Take due mails that no live sender holds (I7): SKIP LOCKED keeps two replicas from taking the
    same row at the same moment, the lease keeps them apart while one is sending."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "UPDATE mails SET claim_token = $3, claimed_until = $2, attempts = attempts + 1"
        " WHERE id IN ("
        "   SELECT id FROM mails WHERE status = 'pending' AND due_at <= $1"
        "   AND (claimed_until IS NULL OR claimed_until <= $1) AND id <> ALL($5::uuid[])"
        "   ORDER BY due_at, created_at LIMIT $4 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, appointment_id, kind, revision, language, attempts, deadline, recipient,"
        " recipient_hash, payload, correlation_id, superseded_by IS NOT NULL AS superseded,"
        " unknown_outcomes > 0 AS unknown_before,"
        # The manage link in force now: a renewal after the mail was planned made its link void.
        " (SELECT a.manage_url FROM appointments a WHERE a.id = mails.appointment_id) AS current_manage_url,"
        " EXISTS (SELECT 1 FROM suppressions s WHERE s.recipient_hash = mails.recipient_hash) AS suppressed",
        now,
        lease_until,
        token,
        limit,
        exclude,
    )
    return rows


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    # ORDER BY ... LIMIT 1, not min(): with the statistics of a new or emptied table the planner turned
    # min() into a scan of the whole index (1.3 ms a look in bench (b)); this form reads one entry always.
    value: datetime | None = await conn.fetchval(
        "SELECT greatest(due_at, coalesce(claimed_until, due_at)) AS due FROM mails WHERE status = 'pending'"
        " ORDER BY 1 LIMIT 1"
    )
    return value


async def add_suppression(
    conn: asyncpg.Connection, recipient_hash: str, reason: str, mail_id: uuid.UUID, now: datetime
) -> None:
    """An address the receiving server refused for good; a new refusal renews it. The retention run
    lifts it after the retention period (the hash is personal data too, and a mailbox may come back).
    None for the last mail of an appointment or wish whose data were erased meanwhile (a cancellation, a
    mail in a sender's hands): the erasure leaves no suppression (`delete_suppressions_of`)."""
    await conn.execute(
        "INSERT INTO suppressions (recipient_hash, reason, mail_id, created_at) SELECT $1, $2, $3, $4"
        " FROM mails m WHERE m.id = $3 AND NOT EXISTS (SELECT 1 FROM appointments a"
        "   WHERE a.id = m.appointment_id AND a.erased_at IS NOT NULL)"
        " AND NOT EXISTS (SELECT 1 FROM erased_appointments e WHERE e.id = m.appointment_id)"
        " AND NOT EXISTS (SELECT 1 FROM waiting_wishes w"
        "   WHERE w.id = m.appointment_id AND w.erased_at IS NOT NULL)"
        " ON CONFLICT (recipient_hash) DO UPDATE SET reason = EXCLUDED.reason, mail_id = EXCLUDED.mail_id,"
        " created_at = EXCLUDED.created_at",
        recipient_hash,
        reason,
        mail_id,
        now,
    )


async def remove_suppression(conn: asyncpg.Connection, recipient_hash: str) -> bool:
    result: str = await conn.execute("DELETE FROM suppressions WHERE recipient_hash = $1", recipient_hash)
    return result != "DELETE 0"


# The end of a mail, wiping its personal data (R34). Only the holder of the claim may: no row otherwise.
FINISH = (
    "UPDATE mails SET status = $3::text, finished_at = $4,"
    " sent_at = CASE WHEN $3::text = 'sent' THEN $4::timestamptz END, last_error = $5,"
    " recipient = NULL, payload = NULL, claim_token = NULL, claimed_until = NULL,"
    # The end of a mail the erasure left to go out (a cancellation, one in a sender's hands): the keyed
    # hash goes too, which the erasure left for the suppression check of its sending (R34).
    " recipient_hash = CASE WHEN EXISTS (SELECT 1 FROM appointments a"
    "   WHERE a.id = mails.appointment_id AND a.erased_at IS NOT NULL)"
    "   OR EXISTS (SELECT 1 FROM erased_appointments e WHERE e.id = mails.appointment_id)"
    "   THEN '' ELSE recipient_hash END"
    " WHERE id = $1 AND claim_token = $2 RETURNING true"
)


def finish_args(
    mail_id: uuid.UUID, token: uuid.UUID, *, status: MailStatus, now: datetime, error: str | None = None
) -> tuple[Any, ...]:
    return (mail_id, token, str(status), now, error)


async def finish(
    conn: asyncpg.Connection,
    mail_id: uuid.UUID,
    token: uuid.UUID,
    *,
    status: MailStatus,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Record the end of a mail (FINISH). False when another sender holds the claim now."""
    done = await conn.fetchval(FINISH, *finish_args(mail_id, token, status=status, now=now, error=error))
    return bool(done)


async def lock_claim(conn: asyncpg.Connection, mail_id: uuid.UUID, token: uuid.UUID) -> bool | None:
    """Lock a mail this claim still holds, before its failed attempt is recorded; returns whether a newer
    revision superseded it meanwhile (`cancel_superseded_mails`), None when the claim is lost."""
    superseded: bool | None = await conn.fetchval(
        "SELECT superseded_by IS NOT NULL FROM mails"
        " WHERE id = $1 AND claim_token = $2 AND status = 'pending' FOR UPDATE",
        mail_id,
        token,
    )
    return superseded


async def cancel_superseded(
    conn: asyncpg.Connection, mail_id: uuid.UUID, token: uuid.UUID, *, now: datetime, error: str | None
) -> bool:
    """The end of a mail that a newer revision superseded while a sender held it: cancelled, as the
    mails waiting then were, and wiped (R34). Only the holder of the claim may."""
    done = await conn.fetchval(
        "UPDATE mails SET status = 'cancelled', finished_at = $3, last_error = coalesce($4, last_error),"
        " recipient = NULL, payload = NULL, claim_token = NULL, claimed_until = NULL"
        " WHERE id = $1 AND claim_token = $2 AND status = 'pending' AND superseded_by IS NOT NULL"
        " RETURNING true",
        mail_id,
        token,
        now,
        error,
    )
    return bool(done)


async def retry_later(
    conn: asyncpg.Connection,
    mail_id: uuid.UUID,
    token: uuid.UUID,
    *,
    due_at: datetime,
    error: str,
    unknown: bool = False,
) -> bool:
    """Give the mail back for a later try; `unknown`: no reply came after its data (counted apart)."""
    done = await conn.fetchval(
        "UPDATE mails SET due_at = $3, last_error = $4, claim_token = NULL, claimed_until = NULL,"
        " unknown_outcomes = unknown_outcomes + CASE WHEN $5 THEN 1 ELSE 0 END"
        " WHERE id = $1 AND claim_token = $2 AND status = 'pending' RETURNING true",
        mail_id,
        token,
        due_at,
        error,
        unknown,
    )
    return bool(done)


# -- texts (R10) --------------------------------------------------------------------------------------


async def lock_template(conn: asyncpg.Connection, kind: str, language: str) -> None:
    """Serialise the changes of one mail text until the end of the transaction (its row may not exist
    yet, so a row lock would not do): a save checked against the version read under it stays right."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('otv.notifier.mail_template:' || $1 || '/' || $2, 0))",
        kind,
        language,
    )


async def find_template(
    conn: asyncpg.Connection | asyncpg.Pool, kind: str, language: str
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT subject, body_text, body_html, updated_at FROM mail_templates"
        " WHERE kind = $1 AND language = $2",
        kind,
        language,
    )
    return row


async def find_templates(conn: asyncpg.Connection, keys: list[tuple[str, str]]) -> list[asyncpg.Record]:
    """The stored texts of several (kind, language) pairs at once."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT kind, language, subject, body_text, body_html FROM mail_templates"
        " WHERE (kind, language) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        [kind for kind, _ in keys],
        [language for _, language in keys],
    )
    return rows


async def save_template(
    conn: asyncpg.Connection | asyncpg.Pool,
    kind: str,
    language: str,
    *,
    subject: str,
    text: str,
    html: str,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO mail_templates (kind, language, subject, body_text, body_html, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, language) DO UPDATE SET"
        " subject = excluded.subject, body_text = excluded.body_text, body_html = excluded.body_html,"
        " updated_at = excluded.updated_at",
        kind,
        language,
        subject,
        text,
        html,
        now,
    )


async def delete_template(conn: asyncpg.Connection | asyncpg.Pool, kind: str, language: str) -> bool:
    result: str = await conn.execute(
        "DELETE FROM mail_templates WHERE kind = $1 AND language = $2", kind, language
    )
    return result != "DELETE 0"
