"""SQL of the staff work (issue 8): the day view, outcomes, callback tickets, call attempts, history,
transfers and mass changes. The guarantees stay in the database: the exclusion constraint decides every
placement (I1), the partial unique indexes the one pending appointment (I2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.booking import db
from services.booking.domain import Appointment, reference_in

_EXTRA = "outcome, outcome_note, outcome_at, outcome_by"
_SELECT = f"SELECT {db._COLUMNS}, {_EXTRA} FROM appointments"  # noqa: S608 -- fixed column lists


@dataclass(frozen=True)
class StaffRow:
    """An appointment with what staff recorded about it."""

    appointment: Appointment
    outcome: str | None
    outcome_note: str | None
    outcome_at: datetime | None
    outcome_by: str | None


def _row(row: asyncpg.Record) -> StaffRow:
    return StaffRow(
        appointment=db._appointment(row),
        outcome=row["outcome"],
        outcome_note=row["outcome_note"],
        outcome_at=row["outcome_at"],
        outcome_by=row["outcome_by"],
    )


async def day_view(
    conn: asyncpg.Connection | asyncpg.Pool,
    location_id: str,
    since: datetime,
    until: datetime,
    *,
    include_cancelled: bool = False,
) -> list[StaffRow]:
    cancelled = "" if include_cancelled else " AND status <> 'cancelled'"
    rows = await conn.fetch(
        f"{_SELECT} WHERE location_id = $1 AND start_at >= $2 AND start_at < $3{cancelled}"
        " ORDER BY group_id, service_point, start_at",
        location_id,
        since,
        until,
    )
    return [_row(r) for r in rows]


async def search(
    conn: asyncpg.Connection | asyncpg.Pool, locations: list[str] | None, text: str, limit: int
) -> list[StaffRow]:
    """By reference, customer number, household number or e-mail address (exact, normalised), or by
    name (part). A reference is found as a caller reads it out ("xsf2 8yfj": `domain.reference_in`).
    The name's ILIKE reads the visible locations' rows anyway; the reference itself is unique.
    The e-mail address is matched by the one-appointment rule's key (R5), which an allow-listed address
    has not (R6): the service centre books hundreds of callers under its own address, and a search for it
    would list some of them, never the caller's one."""
    reference = reference_in(text) or text.upper()
    rows = await conn.fetch(
        f"{_SELECT} WHERE ($1::text[] IS NULL OR location_id = ANY($1))"
        " AND (reference = $5 OR customer_number_key = upper($2)"
        "      OR household_number_key = upper($2) OR email_key = lower($2)"
        "      OR (first_name || ' ' || last_name) ILIKE '%' || $3 || '%')"
        " ORDER BY start_at DESC LIMIT $4",
        locations,
        text,
        text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"),
        limit,
        reference,
    )
    return [_row(r) for r in rows]


async def find(
    conn: asyncpg.Connection | asyncpg.Pool, appointment_id: uuid.UUID, *, for_update: bool = False
) -> StaffRow | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"{_SELECT} WHERE id = $1{lock}", appointment_id)
    return _row(row) if row is not None else None


# The keys of the one-appointment rule (R5, R47) by the field an `already_booked` names.
_PENDING_KEYS = {
    "email": "email_key",
    "customer_number": "customer_number_key",
    "household_number": "household_number_key",
}


async def find_pending(conn: asyncpg.Connection | asyncpg.Pool, which: str, key: str) -> Appointment | None:
    """The customer's pending appointment under one key of the one-appointment rule (at most one: I2)."""
    column = _PENDING_KEYS[which]
    row = await conn.fetchrow(
        f"SELECT {db._COLUMNS} FROM appointments WHERE {column} = $1 AND status = 'booked'",  # noqa: S608 -- fixed names
        key,
    )
    return db._appointment(row) if row is not None else None


async def set_outcome(
    conn: asyncpg.Connection, appointment_id: uuid.UUID, outcome: str, note: str, actor: str, now: datetime
) -> StaffRow:
    row = await conn.fetchrow(
        "UPDATE appointments SET outcome = $2, outcome_note = $3, outcome_by = $4, outcome_at = $5,"  # noqa: S608 -- fixed columns
        " updated_at = $5, revision = revision + 1 WHERE id = $1"
        f" RETURNING {db._COLUMNS}, {_EXTRA}",
        appointment_id,
        outcome,
        note,
        actor,
        now,
    )
    return _row(row)


async def change_contact(
    conn: asyncpg.Connection,
    appointment_id: uuid.UUID,
    *,
    first_name: str,
    last_name: str,
    email: str,
    phone: str | None,
    email_key: str | None,
    token_hash: bytes | None,
    now: datetime,
) -> StaffRow:
    """Correct the customer's contact data. The key of the one-appointment rule changes with the address
    (`token_hash` is given then: a new manage token): AlreadyBookedError when the new address has another
    pending appointment (I2). The update itself leaves a pending appointment's row alone then, without an
    ERROR (whose DETAIL, the address, would go into the database server's log, R34); the partial unique
    index stays the last word for a booking under that address committed in the same moment. A correction
    of the name or the phone number alone keeps the key the booking was made with (not one from today's
    allow-list)."""
    try:
        row = await conn.fetchrow(
            "UPDATE appointments SET first_name = $2, last_name = $3, email = $4, phone = $5,"  # noqa: S608 -- fixed columns
            " email_key = CASE WHEN $7::bytea IS NULL THEN email_key ELSE $6 END,"
            " manage_token_hash = coalesce($7, manage_token_hash),"
            " link_renewed_at = CASE WHEN $7::bytea IS NULL THEN link_renewed_at ELSE $8 END,"
            " updated_at = $8, revision = revision + 1 WHERE id = $1"
            " AND NOT (status = 'booked' AND $7::bytea IS NOT NULL AND $6::text IS NOT NULL AND EXISTS ("
            "   SELECT 1 FROM appointments o WHERE o.status = 'booked' AND o.email_key = $6 AND o.id <> $1))"
            f" RETURNING {db._COLUMNS}, {_EXTRA}",
            appointment_id,
            first_name,
            last_name,
            email,
            phone,
            email_key,
            token_hash,
            now,
        )
    except asyncpg.UniqueViolationError as exc:
        raise db._unique_error(exc) from None
    if row is None:  # the appointment exists (the caller holds its lock): the guard above refused
        raise db.already_booked("email")
    return _row(row)


async def mark_passed(conn: asyncpg.Connection, appointment_id: uuid.UUID, now: datetime) -> Appointment:
    """The finished appointment stops being pending (so that a follow-up may be booked, R24)."""
    row = await conn.fetchrow(
        "UPDATE appointments SET status = 'passed', passed_at = $2, updated_at = $2,"  # noqa: S608 -- fixed columns
        f" revision = revision + 1 WHERE id = $1 RETURNING {db._COLUMNS}",
        appointment_id,
        now,
    )
    return db._appointment(row)


async def add_history(
    conn: asyncpg.Connection,
    appointment: Appointment,
    kind: str,
    actor: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO appointment_history (appointment_id, revision, kind, location_id, group_id,"
        " concern_id, service_point, start_at, end_at, status, detail, actor, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13)",
        appointment.id,
        appointment.revision,
        kind,
        appointment.location_id,
        appointment.group_id,
        appointment.concern_id,
        appointment.service_point,
        appointment.start,
        appointment.end,
        appointment.status.value,
        detail or {},
        actor,
        now,
    )


async def history(conn: asyncpg.Connection | asyncpg.Pool, appointment_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT revision, kind, location_id, group_id, concern_id, service_point, start_at, end_at,"
            " status, detail, actor, at FROM appointment_history WHERE appointment_id = $1 ORDER BY id",
            appointment_id,
        )
    )


# --- callback tickets ----------------------------------------------------------------------------------

_CALLBACK = (
    "id, appointment_id, location_id, group_id, reason, status, revision, note, created_at, created_by,"
    " due_at, claimed_at, claimed_by, closed_at, closed_by, result"
)


async def insert_callback(
    conn: asyncpg.Connection,
    *,
    appointment_id: uuid.UUID,
    location_id: str,
    group_id: str,
    reason: str,
    note: str,
    actor: str,
    now: datetime,
    due_at: datetime,
) -> tuple[asyncpg.Record, bool]:
    """The ticket of this appointment and reason; True when it was opened now (one per reason)."""
    row = await conn.fetchrow(
        "INSERT INTO callbacks (id, appointment_id, location_id, group_id, reason, status, note,"  # noqa: S608 -- fixed columns
        " created_at, created_by, due_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9)"
        f" ON CONFLICT (appointment_id, reason) DO NOTHING RETURNING {_CALLBACK}",
        uuid.uuid4(),
        appointment_id,
        location_id,
        group_id,
        reason,
        note,
        now,
        actor,
        due_at,
    )
    if row is not None:
        return row, True
    existing = await conn.fetchrow(
        f"SELECT {_CALLBACK} FROM callbacks WHERE appointment_id = $1 AND reason = $2",  # noqa: S608 -- fixed columns
        appointment_id,
        reason,
    )
    return existing, False


async def list_callbacks(
    conn: asyncpg.Connection | asyncpg.Pool,
    locations: list[str] | None,
    statuses: list[str],
    group_id: str | None,
    limit: int = 500,
) -> list[asyncpg.Record]:
    """The tickets still to handle first, the most urgent first; then the closed ones, the newest first
    (the list ends at `limit`: it must never push out a ticket still to handle, nor show only the oldest
    closed ones of a location with many)."""
    return list(
        await conn.fetch(
            f"SELECT c.{_CALLBACK.replace(', ', ', c.')}, a.reference, a.mode, a.first_name, a.last_name,"  # noqa: S608 -- fixed columns
            " a.phone, a.concern_name, a.interpreter_language,"
            " a.location_id AS appointment_location_id, a.concern_id AS appointment_concern_id"
            " FROM callbacks c JOIN appointments a ON a.id = c.appointment_id"
            " WHERE ($1::text[] IS NULL OR c.location_id = ANY($1)) AND c.status = ANY($2)"
            " AND ($3::text IS NULL OR c.group_id = $3)"
            " ORDER BY c.status = 'closed', CASE WHEN c.status <> 'closed' THEN c.due_at END,"
            " c.closed_at DESC, c.id LIMIT $4",
            locations,
            statuses,
            group_id,
            limit,
        )
    )


async def open_callback_of(
    conn: asyncpg.Connection, appointment_id: uuid.UUID, reason: str
) -> asyncpg.Record | None:
    """The ticket of this appointment and reason while it is not closed (locked for the change)."""
    return await conn.fetchrow(
        f"SELECT {_CALLBACK} FROM callbacks WHERE appointment_id = $1 AND reason = $2"  # noqa: S608 -- fixed columns
        " AND status <> 'closed' FOR UPDATE",
        appointment_id,
        reason,
    )


async def callback_locations(conn: asyncpg.Connection | asyncpg.Pool, appointment_id: uuid.UUID) -> set[str]:
    """The locations holding a callback ticket of this appointment (a transfer's target among them)."""
    rows = await conn.fetch(
        "SELECT DISTINCT location_id FROM callbacks WHERE appointment_id = $1", appointment_id
    )
    return {r["location_id"] for r in rows}


async def find_callback(
    conn: asyncpg.Connection | asyncpg.Pool, callback_id: uuid.UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_CALLBACK} FROM callbacks WHERE id = $1{lock}", callback_id)  # noqa: S608 -- fixed columns


async def claim_callback(
    conn: asyncpg.Connection, callback_id: uuid.UUID, actor: str, now: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE callbacks SET status = 'claimed', claimed_at = $3, claimed_by = $2, revision = revision + 1"  # noqa: S608 -- fixed columns
        f" WHERE id = $1 RETURNING {_CALLBACK}",
        callback_id,
        actor,
        now,
    )


async def reassign_callback(
    conn: asyncpg.Connection, callback_id: uuid.UUID, group_id: str
) -> asyncpg.Record | None:
    """A ticket not yet closed handed to another team (its outcome corrected to name that team); a claim
    by the old team ends with it. None when it was closed meanwhile."""
    return await conn.fetchrow(
        "UPDATE callbacks SET group_id = $2, status = 'open', claimed_at = NULL, claimed_by = NULL,"  # noqa: S608 -- fixed columns
        f" revision = revision + 1 WHERE id = $1 AND status <> 'closed' RETURNING {_CALLBACK}",
        callback_id,
        group_id,
    )


async def reopen_callback(
    conn: asyncpg.Connection, callback_id: uuid.UUID, group_id: str, withdrawn: str, due_at: datetime
) -> asyncpg.Record | None:
    """A ticket closed as withdrawn (`withdrawn`: its result) opened again for `group_id`, due anew; None
    for a ticket that was closed otherwise (a done callback stays done)."""
    return await conn.fetchrow(
        "UPDATE callbacks SET group_id = $2, status = 'open', claimed_at = NULL, claimed_by = NULL,"  # noqa: S608 -- fixed columns
        " closed_at = NULL, closed_by = NULL, result = NULL, due_at = $4, revision = revision + 1"
        f" WHERE id = $1 AND status = 'closed' AND result = $3 RETURNING {_CALLBACK}",
        callback_id,
        group_id,
        withdrawn,
        due_at,
    )


async def close_callback(
    conn: asyncpg.Connection, callback_id: uuid.UUID, actor: str, result: str, now: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE callbacks SET status = 'closed', closed_at = $3, closed_by = $2, result = $4,"  # noqa: S608 -- fixed columns
        " claimed_at = coalesce(claimed_at, $3), claimed_by = coalesce(claimed_by, $2),"
        f" revision = revision + 1 WHERE id = $1 RETURNING {_CALLBACK}",
        callback_id,
        actor,
        now,
        result,
    )


# --- call attempts (R49) -------------------------------------------------------------------------------


async def add_call_attempt(
    conn: asyncpg.Connection, appointment_id: uuid.UUID, reached: bool, note: str, actor: str, now: datetime
) -> list[asyncpg.Record]:
    await conn.execute(
        "INSERT INTO call_attempts (appointment_id, reached, note, at, actor) VALUES ($1, $2, $3, $4, $5)",
        appointment_id,
        reached,
        note,
        now,
        actor,
    )
    return await call_attempts(conn, [appointment_id])


async def call_attempts(
    conn: asyncpg.Connection | asyncpg.Pool, appointment_ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT appointment_id, reached, note, at, actor FROM call_attempts"
            " WHERE appointment_id = ANY($1) ORDER BY id",
            appointment_ids,
        )
    )


# --- transfer (R25) ------------------------------------------------------------------------------------

_TRANSFER = f"""
UPDATE appointments
   SET location_id = $2, group_id = $3, service_point = $4, concern_id = $5, mode = $6,
       start_at = $7, end_at = $8, evening = $9, location_name = $10, location_address = $11,
       concern_name = $12, documents = $13::jsonb, sensitive = $14, emergency = $15,
       updated_at = $16, revision = revision + 1
 WHERE id = $1
   AND NOT EXISTS (
       SELECT 1 FROM holds h
        WHERE h.location_id = $2 AND h.group_id = $3 AND h.service_point = $4
          AND h.start_at < $8 AND h.end_at > $7 AND h.expires_at > $16
   )
RETURNING {db._COLUMNS}
"""  # noqa: S608 -- a fixed column list


async def transfer_appointment(
    conn: asyncpg.Connection, appointment_id: uuid.UUID, point: int, values: dict[str, Any], now: datetime
) -> Appointment | None:
    """Move the appointment to another location's slot in place; None when the point is taken (I1)."""
    try:
        async with conn.transaction():
            await db._lock_point(conn, values["location_id"], values["group_id"], point)
            row = await conn.fetchrow(
                _TRANSFER,
                appointment_id,
                values["location_id"],
                values["group_id"],
                point,
                values["concern_id"],
                values["mode"],
                values["start"],
                values["end"],
                values["evening"],
                values["location_name"],
                values["location_address"],
                values["concern_name"],
                values["documents"],
                values["sensitive"],
                values["emergency"],
                now,
            )
    except asyncpg.ExclusionViolationError:
        return None
    return db._appointment(row) if row is not None else None


# --- mass changes (R20, R44) ---------------------------------------------------------------------------


async def affected_by_capacity(
    conn: asyncpg.Connection | asyncpg.Pool,
    location_id: str,
    since: datetime,
    until: datetime,
    group_id: str | None,
    points_left: int,
) -> list[Appointment]:
    rows = await conn.fetch(
        f"SELECT {db._COLUMNS} FROM appointments WHERE location_id = $1 AND status = 'booked'"  # noqa: S608 -- fixed columns
        " AND start_at >= $2 AND start_at < $3 AND ($4::text IS NULL OR group_id = $4)"
        " AND service_point > $5 ORDER BY start_at, group_id, service_point",
        location_id,
        since,
        until,
        group_id,
        points_left,
    )
    return [db._appointment(r) for r in rows]


async def insert_mass_change(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    change_id: uuid.UUID,
    location_id: str,
    day: Any,
    last_day: Any,
    group_id: str | None,
    points_left: int,
    proposals: list[dict[str, Any]],
    actor: str,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO mass_changes (id, location_id, day, last_day, group_id, service_points_left,"
        " proposals, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)",
        change_id,
        location_id,
        day,
        last_day,
        group_id,
        points_left,
        proposals,
        now,
        actor,
    )


async def lock_mass_change(conn: asyncpg.Connection, change_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM mass_changes WHERE id = $1 FOR UPDATE", change_id)


async def finish_mass_change(
    conn: asyncpg.Connection, change_id: uuid.UUID, result: dict[str, Any], actor: str, now: datetime
) -> None:
    await conn.execute(
        "UPDATE mass_changes SET applied_at = $2, applied_by = $3, result = $4::jsonb WHERE id = $1",
        change_id,
        now,
        actor,
        result,
    )
