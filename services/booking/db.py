"""Every SQL statement of the booking service. Driver errors become domain errors here and only here.

The guarantees live in the database (I1, I2): the exclusion constraint `appointments_no_double_booking`
and the partial unique indexes `appointments_one_pending_per_*`. Holds and cool-downs (R38, R39) occupy a
service point too; every writer that places something on a service point first takes a transaction-level
advisory lock on that point, so that a hold and a booking cannot pass each other unseen. Points are always
locked in ascending order, so two writers never wait for each other in a circle.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.booking.domain import AlreadyBookedError, Appointment, Busy, NewAppointment
from shared.events.appointment import AppointmentStatus

# The first key of the two-key advisory lock of a service point ("OTVb"); the second is a hash of the point.
POINT_LOCK_SPACE = 0x4F545662

_ONE_PER_CUSTOMER = {
    "appointments_one_pending_per_email": "email",
    "appointments_one_pending_per_customer_number": "customer_number",
    "appointments_one_pending_per_household_number": "household_number",
}


class ReferenceTakenError(Exception):
    """The random reference exists already (rare): the caller draws another one."""


class RetryableError(Exception):
    """The database gave up on a transaction that may well succeed when run again (a deadlock)."""


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One use case's transaction; a deadlock or serialisation failure becomes RetryableError."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            yield conn
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
        raise RetryableError from None


# --- the catalog copy ------------------------------------------------------------------------------------


async def fetch_location(
    conn: asyncpg.Connection | asyncpg.Pool, location_id: str, known_revision: int | None
) -> tuple[int, dict[str, Any] | None, list[str]] | None:
    """The location's revision, its snapshot only when it differs from `known_revision` (a cache), and the
    internal allow-list (R6), which a booking needs beside it: one round trip for both."""
    row = await conn.fetchrow(
        "SELECT revision, CASE WHEN revision IS DISTINCT FROM $2 THEN snapshot END AS snapshot,"
        " (SELECT entries FROM allow_list WHERE singleton) AS allow_list"
        " FROM locations WHERE id = $1",
        location_id,
        known_revision,
    )
    if row is None:
        return None
    return int(row["revision"]), row["snapshot"], list(row["allow_list"] or [])


async def fetch_location_state(
    conn: asyncpg.Connection | asyncpg.Pool, location_id: str, known_revision: int | None
) -> tuple[int, dict[str, Any] | None, int] | None:
    """As `fetch_location`, plus the location's occupancy counter (the availability cache's validator)."""
    row = await conn.fetchrow(
        "SELECT revision, CASE WHEN revision IS DISTINCT FROM $2 THEN snapshot END AS snapshot,"
        " (SELECT coalesce(sum(version), 0) FROM occupancy_changes WHERE location_id = $1) AS occupancy"
        " FROM locations WHERE id = $1",
        location_id,
        known_revision,
    )
    if row is None:
        return None
    return int(row["revision"]), row["snapshot"], int(row["occupancy"])


async def store_location(
    conn: asyncpg.Connection, location_id: str, revision: int, snapshot: dict[str, Any]
) -> bool:
    """Keep a newer snapshot; False when the one in hand is as new or newer (a stale update is dropped)."""
    stored = await conn.fetchval(
        "INSERT INTO locations (id, revision, snapshot, updated_at) VALUES ($1, $2, $3::jsonb, now())"
        " ON CONFLICT (id) DO UPDATE SET revision = EXCLUDED.revision, snapshot = EXCLUDED.snapshot,"
        " updated_at = now() WHERE locations.revision < EXCLUDED.revision RETURNING true",
        location_id,
        revision,
        snapshot,
    )
    return bool(stored)


async def store_allow_list(conn: asyncpg.Connection, revision: int, entries: Sequence[str]) -> bool:
    stored = await conn.fetchval(
        "INSERT INTO allow_list (singleton, revision, entries, updated_at) VALUES (true, $1, $2, now())"
        " ON CONFLICT (singleton) DO UPDATE SET revision = EXCLUDED.revision, entries = EXCLUDED.entries,"
        " updated_at = now() WHERE allow_list.revision < EXCLUDED.revision RETURNING true",
        revision,
        list(entries),
    )
    return bool(stored)


# --- occupancy -------------------------------------------------------------------------------------------

_OCCUPIED = """
    SELECT service_point, start_at, end_at FROM appointments
     WHERE location_id = $1 AND group_id = $2 AND status <> 'cancelled'
       AND start_at < $4::timestamptz AND start_at > $3::timestamptz - interval '1 day' AND end_at > $3
       {overlap} {except_appointment}
    UNION ALL
    SELECT service_point, start_at, end_at FROM holds
     WHERE location_id = $1 AND group_id = $2 AND expires_at > $5
       AND start_at < $4::timestamptz AND start_at > $3::timestamptz - interval '1 day' AND end_at > $3
       {except_hold}
"""
# For one slot: the exclusion constraint's own expression besides the start bounds, so that whichever index
# the planner picks (the btree by start, or the constraint's GiST index when the statistics do not know a
# location yet) it reads only the slot's rows. Without it, a stale estimate let the GiST index read every
# appointment of the group for each booking (2.5 ms instead of 0.08 ms in the bench, issue 10). For a range
# of days the btree's index-only scan is the better plan, and this condition would lure the planner away.
_SLOT_OVERLAP = "AND tstzrange(start_at, end_at, '[)') && tstzrange($3::timestamptz, $4::timestamptz, '[)')"
_EXCEPT = {"except_appointment": "AND id IS DISTINCT FROM $6", "except_hold": "AND id IS DISTINCT FROM $7"}
_NO_EXCEPT = {"except_appointment": "", "except_hold": ""}

# Per service point, the occupied times merged by PostgreSQL (range_agg) into few sorted intervals, as
# epoch seconds: few rows and little work for Python, whatever the number of appointments.
_MERGED = """
SELECT service_point,
       array_agg(date_part('epoch', lower(occupied))::bigint ORDER BY occupied) AS starts,
       array_agg(date_part('epoch', upper(occupied))::bigint ORDER BY occupied) AS ends
FROM (
    SELECT service_point, unnest(range_agg(tstzrange(start_at, end_at))) AS occupied
    FROM ({occupied}) AS busy
    GROUP BY service_point
) AS merged
GROUP BY service_point
"""

# Keyed by (one slot?, leaving something out?). Availability and new bookings read the occupancy indexes
# only; rescheduling leaves out the appointment being moved and the mover's own hold.
_BUSY = {
    (slot, leaving_out): _MERGED.format(
        occupied=_OCCUPIED.format(
            overlap=_SLOT_OVERLAP if slot else "", **(_EXCEPT if leaving_out else _NO_EXCEPT)
        )
    )
    for slot in (False, True)
    for leaving_out in (False, True)
}
# Longer than any slot, shorter than a day of availability.
_SLOT_WINDOW = timedelta(hours=12)


async def fetch_busy(
    conn: asyncpg.Connection | asyncpg.Pool,
    location_id: str,
    group_id: str,
    since: datetime,
    until: datetime,
    now: datetime,
    *,
    except_appointment: uuid.UUID | None = None,
    except_hold: uuid.UUID | None = None,
) -> dict[tuple[str, int], Busy]:
    """What occupies the group's service points between `since` and `until`: appointments that are not
    cancelled, and holds and cool-downs that have not expired by `now`. One query, few rows."""
    slot = until - since <= _SLOT_WINDOW
    if except_appointment is None and except_hold is None:
        rows = await conn.fetch(_BUSY[slot, False], location_id, group_id, since, until, now)
    else:
        rows = await conn.fetch(
            _BUSY[slot, True], location_id, group_id, since, until, now, except_appointment, except_hold
        )
    return {(group_id, row["service_point"]): Busy.of_sorted(row["starts"], row["ends"]) for row in rows}


async def _lock_point(conn: asyncpg.Connection, location_id: str, group_id: str, point: int) -> None:
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        POINT_LOCK_SPACE,
        f"{location_id}\x1f{group_id}\x1f{point}",
    )


_INSERT_APPOINTMENT = """
INSERT INTO appointments (
    id, reference, status, location_id, group_id, service_point, concern_id, mode, channel, language,
    start_at, end_at, evening, evening_declared, interpreter_language,
    first_name, last_name, email, phone, customer_number, household_number,
    email_key, customer_number_key, household_number_key, manage_token_hash,
    location_name, location_address, concern_name, documents, sensitive, emergency,
    booked_at, updated_at, client_network
)
SELECT $1::uuid, $2::text, 'booked', $3::text, $4::text, $5::int, $6::text, $7::text, $8::text, $9::text,
       $10::timestamptz, $11::timestamptz, $12::bool, $13::bool, $14::text,
       $15::text, $16::text, $17::text, $18::text, $19::text, $20::text,
       $21::text, $22::text, $23::text, $24::bytea,
       $25::text, $26::text, $27::text, $28::jsonb, $29::bool, $30::bool,
       $31::timestamptz, $31::timestamptz, $33::text
WHERE NOT EXISTS (  -- somebody else's live hold or cool-down on this point
    SELECT 1 FROM holds h
     WHERE h.location_id = $3 AND h.group_id = $4 AND h.service_point = $5
       AND h.start_at < $11 AND h.end_at > $10 AND h.expires_at > $32
)
-- No target: every unique index and the exclusion constraint refuse the row without an ERROR (an ERROR
-- goes into the server's log with its DETAIL, the key's value: the customer's address or number, R34).
-- I1 (the point is taken), I2 (the customer has a pending appointment, R5, R47), the reference:
-- `_WHY_NOT_INSERTED` says which.
ON CONFLICT DO NOTHING
RETURNING id
"""

# Why the insert above wrote no row, asked right after it in the same transaction (a statement of its own,
# so under READ COMMITTED it sees what the insert waited for and found): the point (another appointment at
# that time, I1, or somebody else's live hold), a pending appointment of the customer under one of the keys
# (I2), the reference; NULL when nothing refuses it any more (that row was cancelled or rolled back
# meanwhile). The point comes first, as it did when the exclusion constraint was the insert's only arbiter.
_WHY_NOT_INSERTED = """
SELECT CASE
    WHEN EXISTS (
        SELECT 1 FROM appointments a
         WHERE a.location_id = $1 AND a.group_id = $2 AND a.service_point = $3 AND a.status <> 'cancelled'
           AND tstzrange(a.start_at, a.end_at, '[)') && tstzrange($4, $5, '[)'))
      OR EXISTS (
        SELECT 1 FROM holds h
         WHERE h.location_id = $1 AND h.group_id = $2 AND h.service_point = $3
           AND h.start_at < $5 AND h.end_at > $4 AND h.expires_at > $6) THEN 'point'
    WHEN EXISTS (SELECT 1 FROM appointments WHERE status = 'booked' AND email_key = $7) THEN 'email'
    WHEN EXISTS (SELECT 1 FROM appointments WHERE status = 'booked' AND customer_number_key = $8)
        THEN 'customer_number'
    WHEN EXISTS (SELECT 1 FROM appointments WHERE status = 'booked' AND household_number_key = $9)
        THEN 'household_number'
    WHEN EXISTS (SELECT 1 FROM appointments WHERE reference = $10) THEN 'reference'
END
"""


def _insert_args(new: NewAppointment, point: int, now: datetime) -> tuple[Any, ...]:
    return (
        new.id,
        new.reference,
        new.location_id,
        new.group_id,
        point,
        new.concern_id,
        new.mode,
        new.channel,
        new.language,
        new.start,
        new.end,
        new.evening,
        new.evening_declared,
        new.interpreter_language,
        new.first_name,
        new.last_name,
        new.email,
        new.phone,
        new.customer_number,
        new.household_number,
        new.email_key,
        new.customer_number_key,
        new.household_number_key,
        new.manage_token_hash,
        new.location_name,
        new.location_address,
        new.concern_name,
        new.documents,
        new.sensitive,
        new.emergency,
        new.booked_at,
        now,
        new.client_network,
    )


async def insert_appointment(
    conn: asyncpg.Connection, new: NewAppointment, point: int, now: datetime
) -> bool:
    """Book `new` on one service point, waiting for the point's lock. False when the point is taken (by an
    appointment, I1, or by somebody else's live hold); AlreadyBookedError when the customer has a pending
    appointment (I2)."""
    await _lock_point(conn, new.location_id, new.group_id, point)
    return await _insert_on(conn, new, point, now)


async def _insert_on(conn: asyncpg.Connection, new: NewAppointment, point: int, now: datetime) -> bool:
    """The insert on a point whose lock we hold. It is its own statement, after the lock: its snapshot then
    shows every hold committed before we got the lock. A refusal is no error (ON CONFLICT DO NOTHING), so
    no savepoint is needed (two round trips fewer) and nothing of the customer reaches the server's log;
    the point stays locked until our transaction ends, which only makes other writers wait for a point they
    could not book either. False: the point is taken; AlreadyBookedError, ReferenceTakenError."""
    for _ in range(3):
        if await conn.fetchval(_INSERT_APPOINTMENT, *_insert_args(new, point, now)) is not None:
            return True
        refusal = await conn.fetchval(
            _WHY_NOT_INSERTED,
            new.location_id,
            new.group_id,
            point,
            new.start,
            new.end,
            now,
            new.email_key,
            new.customer_number_key,
            new.household_number_key,
            new.reference,
        )
        if refusal == "point":
            return False
        if refusal == "reference":
            raise ReferenceTakenError
        if refusal is not None:
            raise already_booked(refusal)
        # What refused the row is gone again (cancelled, or rolled back): the insert once more.
    raise RuntimeError("the appointment's insert was refused for a reason not found")


# The first of the given points whose lock nobody holds, locked (in the given order; the scan stops at the
# first lock it gets, so no other point is locked). The key is the one of _lock_point.
_LOCK_FIRST_FREE = """
SELECT point FROM unnest($3::int[]) AS candidate(point)
 WHERE pg_try_advisory_xact_lock($1, hashtext($2 || point::text))
 LIMIT 1
"""


async def insert_appointment_without_waiting(
    conn: asyncpg.Connection, new: NewAppointment, points: list[int], now: datetime
) -> tuple[int | None, list[int]]:
    """Book `new` on the first of `points` (ascending) that nobody else is placing something on right now,
    without queueing behind another writer's commit: concurrent bookers of one slot spread over its free
    points at once (issue 10, the rush).

    Returns the point booked (or None) and the points skipped because another writer held them: those
    may still come free (that writer may fail) and are for `insert_appointment`, which waits."""
    prefix = f"{new.location_id}\x1f{new.group_id}\x1f"
    remaining = list(points)
    skipped: list[int] = []
    while remaining:
        locked: int | None = await conn.fetchval(_LOCK_FIRST_FREE, POINT_LOCK_SPACE, prefix, remaining)
        if locked is None:
            skipped.extend(remaining)
            return None, skipped
        if await _insert_on(conn, new, locked, now):
            return locked, skipped
        at = remaining.index(locked)
        skipped.extend(remaining[:at])
        remaining = remaining[at + 1 :]
    return None, skipped


def already_booked(which: str) -> AlreadyBookedError:
    """R5, R47: the customer has a pending appointment under this key (`email`, `customer_number`,
    `household_number`). Never the address or number itself: the message goes to the client and maybe
    into a log."""
    return AlreadyBookedError(
        "There is already a booked appointment for this customer. It has to take place, pass or be"
        " cancelled before a new one can be booked.",
        details=[{"field": f"customer.{which}", "message": "has a pending appointment"}],
    )


def _unique_error(exc: asyncpg.UniqueViolationError) -> Exception:
    """A unique violation the database raised after all (a race the checks before it could not see)."""
    constraint = getattr(exc, "constraint_name", None) or ""
    if constraint == "appointments_reference_key":
        return ReferenceTakenError()
    which = _ONE_PER_CUSTOMER.get(constraint)
    if which is None:
        return RuntimeError(f"unexpected unique violation: {constraint}")
    return already_booked(which)


_INSERT_HOLD = """
INSERT INTO holds (id, kind, location_id, group_id, service_point, concern_id, mode, start_at, end_at,
                   expires_at, created_at, held_since, client_network)
SELECT $1::uuid, $2::text, $3::text, $4::text, $5::int, $6::text, $7::text, $8::timestamptz,
       $9::timestamptz, $10::timestamptz, $11::timestamptz, $12::timestamptz, $13::text
WHERE NOT EXISTS (
    SELECT 1 FROM holds h
     WHERE h.location_id = $3 AND h.group_id = $4 AND h.service_point = $5
       AND h.start_at < $9 AND h.end_at > $8 AND h.expires_at > $11
)
  AND NOT EXISTS (
    SELECT 1 FROM appointments a
     WHERE a.location_id = $3 AND a.group_id = $4 AND a.service_point = $5 AND a.status <> 'cancelled'
       AND a.start_at < $9 AND a.end_at > $8
)
RETURNING id
"""


async def insert_hold(
    conn: asyncpg.Connection,
    *,
    hold_id: uuid.UUID,
    location_id: str,
    group_id: str,
    point: int,
    concern_id: str,
    mode: str,
    start: datetime,
    end: datetime,
    expires_at: datetime,
    now: datetime,
    held_since: datetime,
    client_network: str | None,
) -> bool:
    """Hold one service point (R38); False when it is booked or held already."""
    async with conn.transaction():
        await _lock_point(conn, location_id, group_id, point)
        inserted = await conn.fetchval(
            _INSERT_HOLD,
            hold_id,
            "hold",
            location_id,
            group_id,
            point,
            concern_id,
            mode,
            start,
            end,
            expires_at,
            now,
            held_since,
            client_network,
        )
    return inserted is not None


async def hold_chain_start(
    conn: asyncpg.Connection,
    *,
    location_id: str,
    group_id: str,
    start: datetime,
    end: datetime,
    renews: uuid.UUID | None,
    client_network: str | None,
    ended_after: datetime,
) -> datetime | None:
    """Since when this holder has held exactly this slot without a break (R38 with R39): the earliest
    `held_since` of its holds of the slot, `renews` or from the same client network, that are live or
    ended after `ended_after`; None when it holds it afresh. A waiting-list offer's hold is not the
    customer's to renew."""
    since: datetime | None = await conn.fetchval(
        "SELECT min(coalesce(h.held_since, h.created_at)) FROM holds h"
        " WHERE h.kind = 'hold' AND h.location_id = $1 AND h.group_id = $2 AND h.start_at = $3"
        " AND h.end_at = $4 AND h.expires_at > $7"
        " AND (h.id = $5 OR (h.client_network IS NOT NULL AND h.client_network = $6))"
        " AND NOT EXISTS (SELECT 1 FROM waiting_offers o WHERE o.id = h.id)",
        location_id,
        group_id,
        start,
        end,
        renews,
        client_network,
        ended_after,
    )
    return since


async def extend_hold(
    conn: asyncpg.Connection,
    hold_id: uuid.UUID,
    *,
    location_id: str,
    group_id: str,
    start: datetime,
    end: datetime,
    expires_at: datetime,
    now: datetime,
) -> bool:
    """Give a live hold of exactly this slot a later expiry (R38, WCAG 2.2.1); False when it has expired,
    was used up, is another slot's or a waiting-list offer's. Under its point's lock, so that it cannot
    pass a writer that saw the hold expire a moment ago."""
    point = await conn.fetchval(
        "SELECT service_point FROM holds WHERE id = $1 AND kind = 'hold' AND location_id = $2"
        " AND group_id = $3 AND start_at = $4 AND end_at = $5 AND expires_at > $6"
        # A waiting-list offer runs out when its offer does (R45), however it is asked.
        " AND NOT EXISTS (SELECT 1 FROM waiting_offers o WHERE o.id = holds.id)",
        hold_id,
        location_id,
        group_id,
        start,
        end,
        now,
    )
    if point is None:
        return False
    async with conn.transaction():
        await _lock_point(conn, location_id, group_id, point)
        extended = await conn.fetchval(
            "UPDATE holds SET expires_at = greatest(expires_at, $2) WHERE id = $1 AND expires_at > $3"
            " RETURNING id",
            hold_id,
            expires_at,
            now,
        )
    return extended is not None


async def insert_cooldown(
    conn: asyncpg.Connection, appointment: Appointment, now: datetime, delay: timedelta
) -> None:
    """R39: the freed slot stays occupied for `delay`, so it cannot be handed to somebody else at once."""
    if delay <= timedelta(0):
        return
    await conn.execute(
        "INSERT INTO holds (id, kind, location_id, group_id, service_point, start_at, end_at, expires_at,"
        " created_at) VALUES ($1, 'cooldown', $2, $3, $4, $5, $6, $7, $8)",
        uuid.uuid4(),
        appointment.location_id,
        appointment.group_id,
        appointment.service_point,
        appointment.start,
        appointment.end,
        now + delay,
        now,
    )


async def take_hold(
    conn: asyncpg.Connection,
    hold_id: uuid.UUID,
    *,
    location_id: str,
    group_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> int | None:
    """Use up a live hold for exactly this slot; its service point, or None (expired, unknown, other)."""
    point = await conn.fetchval(
        "DELETE FROM holds WHERE id = $1 AND kind = 'hold' AND location_id = $2 AND group_id = $3"
        " AND start_at = $4 AND end_at = $5 AND expires_at > $6 RETURNING service_point",
        hold_id,
        location_id,
        group_id,
        start,
        end,
        now,
    )
    return int(point) if point is not None else None


# --- appointments ----------------------------------------------------------------------------------------

_COLUMNS = """
id, reference, revision, status, location_id, group_id, service_point, concern_id, mode, channel, language,
start_at, end_at, evening, evening_declared, interpreter_language, first_name, last_name, email, phone,
customer_number, household_number, location_name, location_address, concern_name, documents, sensitive,
emergency, booked_at, cancelled_at, cancelled_by, cancel_reason, manage_token_hash, client_network
"""


def _appointment(row: asyncpg.Record) -> Appointment:
    return Appointment(
        id=row["id"],
        reference=row["reference"],
        revision=row["revision"],
        status=AppointmentStatus(row["status"]),
        location_id=row["location_id"],
        group_id=row["group_id"],
        service_point=row["service_point"],
        concern_id=row["concern_id"],
        mode=row["mode"],
        channel=row["channel"],
        language=row["language"],
        start=row["start_at"],
        end=row["end_at"],
        evening=row["evening"],
        evening_declared=row["evening_declared"],
        interpreter_language=row["interpreter_language"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        phone=row["phone"],
        customer_number=row["customer_number"],
        household_number=row["household_number"],
        location_name=row["location_name"],
        location_address=row["location_address"],
        concern_name=row["concern_name"],
        documents=list(row["documents"] or []),
        sensitive=row["sensitive"],
        emergency=row["emergency"],
        booked_at=row["booked_at"],
        client_network=row["client_network"],
        cancelled_at=row["cancelled_at"],
        cancelled_by=row["cancelled_by"],
        cancel_reason=row["cancel_reason"],
    )


async def find_appointment(
    conn: asyncpg.Connection | asyncpg.Pool, appointment_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Appointment, bytes] | None:
    """The appointment and the hash of its manage token, or None."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM appointments WHERE id = $1{lock}", appointment_id)  # noqa: S608 -- fixed column list
    if row is None:
        return None
    return _appointment(row), bytes(row["manage_token_hash"])


async def mark_cancelled(
    conn: asyncpg.Connection, appointment_id: uuid.UUID, now: datetime, by: str, reason: str
) -> Appointment:
    row = await conn.fetchrow(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = $2, cancelled_by = $3,"  # noqa: S608 -- fixed column list
        f" cancel_reason = $4, updated_at = $2, revision = revision + 1 WHERE id = $1 RETURNING {_COLUMNS}",
        appointment_id,
        now,
        by,
        reason,
    )
    return _appointment(row)


async def renewable_links(
    conn: asyncpg.Connection, address: str, now: datetime, renewed_before: datetime, limit: int
) -> list[uuid.UUID]:
    """The upcoming booked appointments of an address whose link was not renewed lately, locked; one
    that another transaction is changing right now is skipped, not waited for."""
    rows = await conn.fetch(
        "SELECT id FROM appointments WHERE status = 'booked' AND lower(email) = $1 AND start_at > $2"
        " AND (link_renewed_at IS NULL OR link_renewed_at <= $3)"
        " ORDER BY start_at LIMIT $4 FOR UPDATE SKIP LOCKED",
        address.lower(),
        now,
        renewed_before,
        limit,
    )
    return [row["id"] for row in rows]


async def renew_link(
    conn: asyncpg.Connection, appointment_id: uuid.UUID, token_hash: bytes, now: datetime
) -> Appointment:
    row = await conn.fetchrow(
        "UPDATE appointments SET manage_token_hash = $2, link_renewed_at = $3, updated_at = $3,"  # noqa: S608 -- fixed column list
        f" revision = revision + 1 WHERE id = $1 RETURNING {_COLUMNS}",
        appointment_id,
        token_hash,
        now,
    )
    return _appointment(row)


_MOVE = f"""
UPDATE appointments
   SET group_id = $8, service_point = $2, start_at = $3, end_at = $4, evening = $5, evening_declared = $6,
       updated_at = $7, revision = revision + 1
 WHERE id = $1
   AND NOT EXISTS (  -- somebody else's live hold or cool-down on the new point
       SELECT 1 FROM holds h
        WHERE h.location_id = appointments.location_id AND h.group_id = $8 AND h.service_point = $2
          AND h.start_at < $4 AND h.end_at > $3 AND h.expires_at > $7
   )
RETURNING {_COLUMNS}
"""  # noqa: S608 -- a fixed column list, no input


async def move_appointment(
    conn: asyncpg.Connection,
    appointment: Appointment,
    *,
    group_id: str,
    point: int,
    start: datetime,
    end: datetime,
    evening: bool,
    evening_declared: bool,
    now: datetime,
) -> Appointment | None:
    """Move the appointment to another slot in place: the new slot is taken and the old one freed in the
    same statement. None when the point is taken (I1) or held by somebody else."""
    try:
        async with conn.transaction():
            await _lock_point(conn, appointment.location_id, group_id, point)
            row = await conn.fetchrow(
                _MOVE,
                appointment.id,
                point,
                start,
                end,
                evening,
                evening_declared,
                now,
                group_id,
            )
    except asyncpg.ExclusionViolationError:
        return None
    return _appointment(row) if row is not None else None


async def pass_started(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Appointment]:
    """Mark booked appointments whose start has come as passed; rows another replica is passing right now
    are skipped (I7), so each is passed once."""
    rows = await conn.fetch(
        "WITH due AS (SELECT id FROM appointments WHERE status = 'booked' AND start_at <= $1"  # noqa: S608 -- fixed columns
        " ORDER BY start_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " UPDATE appointments a SET status = 'passed', passed_at = $1, updated_at = $1,"
        f" revision = a.revision + 1 FROM due WHERE a.id = due.id RETURNING {_prefixed('a')}",
        now,
        limit,
    )
    return [_appointment(row) for row in rows]


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{name.strip()}" for name in _COLUMNS.split(","))


async def delete_expired(conn: asyncpg.Connection, now: datetime, idempotency_age: timedelta) -> None:
    """Tidy up: expired holds and cool-downs no longer count anyway; old idempotent answers are dropped."""
    await conn.execute("DELETE FROM holds WHERE expires_at < $1", now - timedelta(hours=1))
    await conn.execute("DELETE FROM idempotent_requests WHERE created_at < $1", now - idempotency_age)


# --- idempotent requests ---------------------------------------------------------------------------------


async def find_idempotent(
    conn: asyncpg.Connection | asyncpg.Pool, key_hash: bytes
) -> tuple[bytes, int | None, bytes | None] | None:
    row = await conn.fetchrow(
        "SELECT fingerprint, status, response FROM idempotent_requests WHERE key_hash = $1", key_hash
    )
    if row is None:
        return None
    response = row["response"]
    return bytes(row["fingerprint"]), row["status"], bytes(response) if response is not None else None


async def reserve_idempotent(
    conn: asyncpg.Connection, key_hash: bytes, fingerprint: bytes, now: datetime
) -> bool:
    """Claim the key inside the booking's transaction. A concurrent request with the same key waits here
    until the first one commits (then False: answer with its result) or rolls back (then True)."""
    reserved = await conn.fetchval(
        "INSERT INTO idempotent_requests (key_hash, fingerprint, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (key_hash) DO NOTHING RETURNING true",
        key_hash,
        fingerprint,
        now,
    )
    return bool(reserved)


async def store_idempotent(conn: asyncpg.Connection, key_hash: bytes, status: int, response: bytes) -> None:
    await conn.execute(
        "UPDATE idempotent_requests SET status = $2, response = $3 WHERE key_hash = $1",
        key_hash,
        status,
        response,
    )
