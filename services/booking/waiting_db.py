"""Every SQL statement of the waiting list (R45). Driver errors become domain errors here only.

The guarantees are the database's (migrations/003_waiting_list.sql): the partial unique indexes of one
active wish per customer key, the key locks shared with the trigger on `appointments` (a wish and a
booked appointment never stand side by side, R5), and the exclusion constraint of open offers (one offer
per slot of a service point). Offers are placed with a *try* lock of the service point (the booking's own
advisory lock, `db.POINT_LOCK_SPACE`): the matcher holds wish rows while it offers, and a booking that
holds a point may need a wish row (the trigger), so the matcher never waits for a point, it skips it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import asyncpg

from services.booking.db import POINT_LOCK_SPACE, ReferenceTakenError
from services.booking.domain import AlreadyBookedError
from services.booking.waiting_domain import AlreadyWaitingError, Criteria, Freed, Offer, Wish
from shared.events.waiting_list import WishStatus

ACTIVE = "('pending_opt_in', 'waiting', 'offered')"

_WISH_COLUMNS = """
id, reference, revision, status, location_id, group_id, concern_id, mode, weekdays, earliest, latest,
latest_date, evening_declared, language, first_name, last_name, email, phone, customer_number,
household_number, location_name, location_address, concern_name, sensitive, registered_at, confirmed_at,
ended_at, end_reason, appointment_id, missed_offers, token_hash
"""
_OFFER_COLUMNS = """
id, wish_id, status, location_id, group_id, service_point, start_at, end_at, evening, expires_at, offered_at,
offered_revision, mail_outcome
"""


def _wish(row: asyncpg.Record) -> Wish:
    return Wish(
        id=row["id"],
        reference=row["reference"],
        revision=row["revision"],
        status=WishStatus(row["status"]),
        location_id=row["location_id"],
        group_id=row["group_id"],
        concern_id=row["concern_id"],
        mode=row["mode"],
        criteria=Criteria(
            weekdays=frozenset(int(d) for d in row["weekdays"]),
            earliest=row["earliest"],
            latest=row["latest"],
            latest_date=row["latest_date"],
            evening_declared=row["evening_declared"],
        ),
        language=row["language"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        phone=row["phone"],
        customer_number=row["customer_number"],
        household_number=row["household_number"],
        location_name=row["location_name"],
        location_address=row["location_address"],
        concern_name=row["concern_name"],
        sensitive=row["sensitive"],
        registered_at=row["registered_at"],
        confirmed_at=row["confirmed_at"],
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
        appointment_id=row["appointment_id"],
        missed_offers=row["missed_offers"],
    )


def _offer(row: Mapping[str, Any]) -> Offer:
    return Offer(
        id=row["id"],
        wish_id=row["wish_id"],
        status=row["status"],
        location_id=row["location_id"],
        group_id=row["group_id"],
        service_point=row["service_point"],
        start=row["start_at"],
        end=row["end_at"],
        evening=row["evening"],
        expires_at=row["expires_at"],
        offered_at=row["offered_at"],
        offered_revision=row["offered_revision"],
        mail_outcome=row["mail_outcome"],
    )


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{name.strip()}" for name in columns.split(","))


# --- joining -----------------------------------------------------------------------------------------


async def lock_keys(
    conn: asyncpg.Connection, email_key: str | None, customer_key: str | None, household_key: str | None
) -> None:
    """The key locks the trigger on `appointments` takes too, always in this order (no deadlock)."""
    for kind, key in (("e", email_key), ("c", customer_key), ("h", household_key)):
        if key is not None:
            await conn.execute("SELECT waiting_lock_key($1, $2)", kind, key)


async def check_no_booked_appointment(
    conn: asyncpg.Connection, email_key: str | None, customer_key: str | None, household_key: str | None
) -> None:
    """R5: a customer with a pending appointment does not wait as well. Run under the key locks."""
    row = await conn.fetchrow(
        "SELECT email_key = $1 AS email, customer_number_key = $2 AS customer_number,"
        " household_number_key = $3 AS household_number FROM appointments WHERE status = 'booked'"
        " AND (email_key = $1 OR customer_number_key = $2 OR household_number_key = $3) LIMIT 1",
        email_key,
        customer_key,
        household_key,
    )
    if row is None:
        return
    which = next((name for name in ("email", "customer_number", "household_number") if row[name]), "email")
    raise AlreadyBookedError(
        "There is already a booked appointment for this customer. It has to take place, pass or be"
        " cancelled before the customer can wait for another one.",
        details=[{"field": f"customer.{which}", "message": "has a pending appointment"}],
    )


async def replace_unconfirmed(
    conn: asyncpg.Connection,
    email_key: str | None,
    customer_key: str | None,
    household_key: str | None,
    now: datetime,
) -> list[Wish]:
    """A new registration replaces an unconfirmed one of the same customer (a mistyped wish, a lost mail)."""
    rows = await conn.fetch(
        "UPDATE wishes SET status = 'withdrawn', end_reason = 'replaced', ended_at = $4, updated_at = $4,"  # noqa: S608 -- fixed columns
        " revision = revision + 1 WHERE status = 'pending_opt_in'"
        " AND (email_key = $1 OR customer_number_key = $2 OR household_number_key = $3)"
        f" RETURNING {_WISH_COLUMNS}",
        email_key,
        customer_key,
        household_key,
        now,
    )
    return [_wish(row) for row in rows]


_INSERT_WISH = f"""
INSERT INTO wishes (
    id, reference, status, location_id, group_id, concern_id, mode, weekdays, earliest, latest, latest_date,
    evening_declared, language, first_name, last_name, email, phone, customer_number, household_number,
    email_key, customer_number_key, household_number_key, token_hash, location_name, location_address,
    concern_name, sensitive, registered_at, updated_at
) VALUES ($1, $2, 'pending_opt_in', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
          $19, $20, $21, $22, $23, $24, $25, $26, $27, $27)
ON CONFLICT DO NOTHING  -- the unique indexes refuse without an ERROR (its DETAIL, in the server's log,
                        -- would name the address or number, R34); `_WHY_NO_WISH` says which
RETURNING {_WISH_COLUMNS}
"""  # noqa: S608 -- a fixed column list, no input

# Why the insert above wrote no row, asked right after it (a statement of its own: it sees what the insert
# waited for and found): an active wish of the customer under one of the keys, the reference; NULL when
# nothing refuses it any more.
_WHY_NO_WISH = """
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM wishes WHERE status IN ('pending_opt_in', 'waiting', 'offered')
                 AND email_key = $1) THEN 'email'
    WHEN EXISTS (SELECT 1 FROM wishes WHERE status IN ('pending_opt_in', 'waiting', 'offered')
                 AND customer_number_key = $2) THEN 'customer_number'
    WHEN EXISTS (SELECT 1 FROM wishes WHERE status IN ('pending_opt_in', 'waiting', 'offered')
                 AND household_number_key = $3) THEN 'household_number'
    WHEN EXISTS (SELECT 1 FROM wishes WHERE reference = $4) THEN 'reference'
END
"""


async def insert_wish(conn: asyncpg.Connection, values: dict[str, Any]) -> Wish:
    """The new wish; AlreadyWaitingError when the customer has an active one (one per key, by the partial
    unique indexes), ReferenceTakenError when the random reference exists."""
    args = [values[name] for name in _WISH_VALUES]
    for _ in range(3):
        row = await conn.fetchrow(_INSERT_WISH, *args)
        if row is not None:
            return _wish(row)
        refusal = await conn.fetchval(
            _WHY_NO_WISH,
            values["email_key"],
            values["customer_number_key"],
            values["household_number_key"],
            values["reference"],
        )
        if refusal == "reference":
            raise ReferenceTakenError
        if refusal is not None:
            raise AlreadyWaitingError(
                "This customer is already on the waiting list. Withdraw that wish first (link in its"
                " e-mails).",
                details=[{"field": f"customer.{refusal}", "message": "is already on the waiting list"}],
            )
        # The wish that refused it ended meanwhile (or rolled back): the insert once more.
    raise RuntimeError("the wish's insert was refused for a reason not found")


# The insert's parameters $1 to $27, in order.
_WISH_VALUES = (
    "id",
    "reference",
    "location_id",
    "group_id",
    "concern_id",
    "mode",
    "weekdays",
    "earliest",
    "latest",
    "latest_date",
    "evening_declared",
    "language",
    "first_name",
    "last_name",
    "email",
    "phone",
    "customer_number",
    "household_number",
    "email_key",
    "customer_number_key",
    "household_number_key",
    "token_hash",
    "location_name",
    "location_address",
    "concern_name",
    "sensitive",
    "registered_at",
)


# --- one wish -----------------------------------------------------------------------------------------


async def find_wish(
    conn: asyncpg.Connection | asyncpg.Pool, wish_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Wish, bytes] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_WISH_COLUMNS} FROM wishes WHERE id = $1{lock}", wish_id)  # noqa: S608 -- fixed columns
    if row is None:
        return None
    return _wish(row), bytes(row["token_hash"])


async def find_wish_for_staff(
    conn: asyncpg.Connection | asyncpg.Pool, *, wish_id: uuid.UUID | None = None, reference: str | None = None
) -> tuple[Wish, datetime | None] | None:
    """One wish by its id or its reference (unique), in any status, erased or not: the wish and when its
    personal data were erased (None: not yet)."""
    row = await conn.fetchrow(
        f"SELECT {_WISH_COLUMNS}, erased_at FROM wishes WHERE id = $1 OR reference = $2",  # noqa: S608 -- fixed columns
        wish_id,
        reference,
    )
    if row is None:
        return None
    return _wish(row), row["erased_at"]


async def set_status(
    conn: asyncpg.Connection,
    wish_id: uuid.UUID,
    status: WishStatus,
    now: datetime,
    *,
    end_reason: str | None = None,
    confirmed: bool = False,
    missed_offer: bool = False,
) -> Wish:
    ended = status in (WishStatus.BOOKED, WishStatus.WITHDRAWN, WishStatus.EXPIRED)
    row = await conn.fetchrow(
        "UPDATE wishes SET status = $2, updated_at = $3, revision = revision + 1,"  # noqa: S608 -- fixed columns
        " end_reason = coalesce($4, end_reason), ended_at = CASE WHEN $5 THEN $3 ELSE ended_at END,"
        " confirmed_at = CASE WHEN $6 THEN $3 ELSE confirmed_at END,"
        " missed_offers = missed_offers + CASE WHEN $7 THEN 1 ELSE 0 END"
        f" WHERE id = $1 RETURNING {_WISH_COLUMNS}",
        wish_id,
        status.value,
        now,
        end_reason,
        ended,
        confirmed,
        missed_offer,
    )
    return _wish(row)


async def waiting_before(conn: asyncpg.Connection | asyncpg.Pool, wish: Wish) -> int:
    count = await conn.fetchval(
        "SELECT count(*) FROM wishes WHERE location_id = $1 AND concern_id = $2"
        " AND status IN ('waiting', 'offered') AND (registered_at, id) < ($3, $4)",
        wish.location_id,
        wish.concern_id,
        wish.registered_at,
        wish.id,
    )
    return int(count)


# --- offers -------------------------------------------------------------------------------------------


async def open_offer(conn: asyncpg.Connection | asyncpg.Pool, wish_id: uuid.UUID) -> Offer | None:
    row = await conn.fetchrow(
        f"SELECT {_OFFER_COLUMNS} FROM waiting_offers WHERE wish_id = $1 AND status = 'open'",  # noqa: S608 -- fixed columns
        wish_id,
    )
    return _offer(row) if row is not None else None


async def find_offer(conn: asyncpg.Connection | asyncpg.Pool, offer_id: uuid.UUID) -> Offer:
    row = await conn.fetchrow(f"SELECT {_OFFER_COLUMNS} FROM waiting_offers WHERE id = $1", offer_id)  # noqa: S608 -- fixed columns
    return _offer(row)


async def accepted_offer(conn: asyncpg.Connection | asyncpg.Pool, wish_id: uuid.UUID) -> Offer | None:
    row = await conn.fetchrow(
        f"SELECT {_OFFER_COLUMNS} FROM waiting_offers WHERE wish_id = $1 AND status = 'accepted'"  # noqa: S608 -- fixed columns
        " ORDER BY offered_at DESC LIMIT 1",
        wish_id,
    )
    return _offer(row) if row is not None else None


async def offered_before(conn: asyncpg.Connection, wish_ids: list[uuid.UUID]) -> set[tuple[uuid.UUID, int]]:
    """(wish, slot start) of every offer already made: a wish is never offered the same slot twice."""
    rows = await conn.fetch(
        "SELECT wish_id, start_at FROM waiting_offers WHERE wish_id = ANY($1::uuid[])", wish_ids
    )
    return {(row["wish_id"], int(row["start_at"].timestamp())) for row in rows}


_INSERT_OFFER_HOLD = """
INSERT INTO holds (id, kind, location_id, group_id, service_point, concern_id, mode, start_at, end_at,
                   expires_at, created_at)
SELECT $1::uuid, 'hold', $2::text, $3::text, $4::int, $5::text, $6::text, $7::timestamptz,
       $8::timestamptz, $9::timestamptz, $10::timestamptz
WHERE NOT EXISTS (
    SELECT 1 FROM holds h
     WHERE h.location_id = $2 AND h.group_id = $3 AND h.service_point = $4
       AND h.start_at < $8 AND h.end_at > $7 AND h.expires_at > $10
)
  AND NOT EXISTS (
    SELECT 1 FROM appointments a
     WHERE a.location_id = $2 AND a.group_id = $3 AND a.service_point = $4 AND a.status <> 'cancelled'
       AND a.start_at < $8 AND a.end_at > $7
)
RETURNING id
"""


async def place_offer(
    conn: asyncpg.Connection,
    *,
    offer_id: uuid.UUID,
    wish: Wish,
    group_id: str,
    point: int,
    start: datetime,
    end: datetime,
    evening: bool,
    expires_at: datetime,
    now: datetime,
) -> bool:
    """Hold one service point for the wish and record the offer; False when the point is taken, held,
    locked by a booking in progress, or already offered (I1 and the offers' exclusion constraint)."""
    try:
        async with conn.transaction():
            got = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, hashtext($2))",
                POINT_LOCK_SPACE,
                f"{wish.location_id}\x1f{group_id}\x1f{point}",
            )
            if not got:
                return False
            held = await conn.fetchval(
                _INSERT_OFFER_HOLD,
                offer_id,
                wish.location_id,
                group_id,
                point,
                wish.concern_id,
                wish.mode,
                start,
                end,
                expires_at,
                now,
            )
            if held is None:
                return False
            await conn.execute(
                "INSERT INTO waiting_offers (id, wish_id, status, location_id, group_id, service_point,"
                " start_at, end_at, evening, expires_at, offered_at)"
                " VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, $8, $9, $10)",
                offer_id,
                wish.id,
                wish.location_id,
                group_id,
                point,
                start,
                end,
                evening,
                expires_at,
                now,
            )
    except (asyncpg.ExclusionViolationError, asyncpg.UniqueViolationError):
        return False
    return True


async def set_offered_revision(conn: asyncpg.Connection, offer_id: uuid.UUID, revision: int) -> None:
    await conn.execute("UPDATE waiting_offers SET offered_revision = $2 WHERE id = $1", offer_id, revision)


async def record_offer_mail(
    conn: asyncpg.Connection, wish_id: uuid.UUID, revision: int, outcome: str
) -> bool:
    """The notifier's report of an offer mail (R45). A delivered mail stays delivered, whatever report
    comes after it (a repeated or late event); a report after the offer's end is kept, but changes
    nothing of how that end counted. False when no offer of the wish has that revision."""
    found = await conn.fetchval(
        "UPDATE waiting_offers SET mail_outcome = CASE WHEN mail_outcome = 'sent' THEN 'sent' ELSE $3 END"
        " WHERE wish_id = $1 AND offered_revision = $2 RETURNING id",
        wish_id,
        revision,
        outcome,
    )
    return found is not None


async def end_offer(conn: asyncpg.Connection, offer: Offer, status: str, now: datetime) -> None:
    """Close an open offer: its hold goes, and its slot is freed capacity for the next wish."""
    await conn.execute(
        "UPDATE waiting_offers SET status = $2, ended_at = $3 WHERE id = $1 AND status = 'open'",
        offer.id,
        status,
        now,
    )
    await conn.execute("DELETE FROM holds WHERE id = $1", offer.id)
    await insert_freed(
        conn,
        offer.location_id,
        offer.group_id,
        offer.start,
        offer.end,
        "offer_ended",
        now,
        now,
        point=offer.service_point,
    )


async def due_offers(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Offer]:
    """Open offers whose time is up; rows another replica works on are skipped (I7)."""
    rows = await conn.fetch(
        f"SELECT {_OFFER_COLUMNS} FROM waiting_offers WHERE status = 'open' AND expires_at <= $1"  # noqa: S608 -- fixed columns
        " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [_offer(row) for row in rows]


# --- the matcher's queues ----------------------------------------------------------------------------


async def insert_freed(
    conn: asyncpg.Connection,
    location_id: str,
    group_id: str,
    start: datetime,
    end: datetime,
    source: str,
    available_at: datetime,
    now: datetime,
    *,
    point: int | None,
) -> None:
    await conn.execute(
        "INSERT INTO waiting_freed (location_id, group_id, start_at, end_at, source, available_at,"
        " created_at, service_point) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        location_id,
        group_id,
        start,
        end,
        source,
        available_at,
        now,
        point,
    )


async def locations_with_due_freed(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT location_id FROM waiting_freed WHERE done_at IS NULL AND available_at <= $1", now
    )
    return [row["location_id"] for row in rows]


async def due_freed(conn: asyncpg.Connection, location_id: str, now: datetime) -> list[Freed]:
    rows = await conn.fetch(
        "SELECT id, location_id, group_id, service_point, start_at, end_at, source, available_at"
        " FROM waiting_freed"
        " WHERE location_id = $1 AND done_at IS NULL AND available_at <= $2"
        " ORDER BY available_at, id FOR UPDATE SKIP LOCKED",
        location_id,
        now,
    )
    return [
        Freed(
            id=row["id"],
            location_id=row["location_id"],
            group_id=row["group_id"],
            service_point=row["service_point"],
            start=row["start_at"],
            end=row["end_at"],
            source=row["source"],
            available_at=row["available_at"],
        )
        for row in rows
    ]


async def finish_freed(
    conn: asyncpg.Connection, freed_id: int, now: datetime, *, retry_at: datetime | None
) -> None:
    if retry_at is None:
        await conn.execute("UPDATE waiting_freed SET done_at = $2 WHERE id = $1", freed_id, now)
    else:
        await conn.execute("UPDATE waiting_freed SET available_at = $2 WHERE id = $1", freed_id, retry_at)


async def waiting_wishes(conn: asyncpg.Connection, location_id: str) -> list[Wish]:
    """The location's confirmed wishes without an open offer, in order of registration; a wish another
    transaction holds (a booking ending it right now) is skipped."""
    rows = await conn.fetch(
        f"SELECT {_WISH_COLUMNS} FROM wishes WHERE location_id = $1 AND status = 'waiting'"  # noqa: S608 -- fixed columns
        " ORDER BY registered_at, id FOR UPDATE SKIP LOCKED",
        location_id,
    )
    return [_wish(row) for row in rows]


async def blocking_hold_expiry(
    conn: asyncpg.Connection, location_id: str, group_id: str, start: datetime, end: datetime, now: datetime
) -> datetime | None:
    """When the earliest live hold or cool-down in the range ends (not an offer's: an ended offer frees
    its own slot): the freed capacity is looked at again then."""
    value: datetime | None = await conn.fetchval(
        "SELECT min(h.expires_at) FROM holds h WHERE h.location_id = $1 AND h.group_id = $2"
        " AND h.start_at < $4 AND h.end_at > $3 AND h.expires_at > $5"
        " AND NOT EXISTS (SELECT 1 FROM waiting_offers o WHERE o.id = h.id)",
        location_id,
        group_id,
        start,
        end,
        now,
    )
    return value


async def due_catalog_changes(conn: asyncpg.Connection, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
    rows = await conn.fetch(
        "SELECT id, location_id, old_snapshot FROM waiting_catalog_changes WHERE done_at IS NULL"
        " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )
    return [(row["id"], row["location_id"], row["old_snapshot"]) for row in rows]


async def finish_catalog_change(conn: asyncpg.Connection, change_id: int, now: datetime) -> None:
    await conn.execute("UPDATE waiting_catalog_changes SET done_at = $2 WHERE id = $1", change_id, now)


async def active_wish_scope(conn: asyncpg.Connection, location_id: str) -> tuple[list[str], date | None]:
    """The concerns that confirmed wishes at the location wait for, and the latest of their dates."""
    row = await conn.fetchrow(
        "SELECT array_agg(DISTINCT concern_id) AS concerns, max(latest_date) AS last FROM wishes"
        " WHERE location_id = $1 AND status IN ('waiting', 'offered')",
        location_id,
    )
    if row is None or row["concerns"] is None:
        return [], None
    return list(row["concerns"]), row["last"]


async def locations_with_waiting_wishes(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    rows = await conn.fetch("SELECT DISTINCT location_id FROM wishes WHERE status IN ('waiting', 'offered')")
    return [row["location_id"] for row in rows]


async def horizon_seen(conn: asyncpg.Connection | asyncpg.Pool, location_id: str) -> date | None:
    """The last day of the location's horizon that has been freed for the waiting wishes (None: none)."""
    seen: date | None = await conn.fetchval(
        "SELECT last_day FROM waiting_horizon WHERE location_id = $1", location_id
    )
    return seen


async def claim_horizon(
    conn: asyncpg.Connection, location_id: str, now: datetime
) -> tuple[bool, date | None]:
    """Lock the location's horizon row for this transaction: (False, None) when another replica holds it
    (it frees the new days right now), else (True, the last day freed before, or None)."""
    await conn.execute(
        "INSERT INTO waiting_horizon (location_id, updated_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        location_id,
        now,
    )
    row = await conn.fetchrow(
        "SELECT last_day FROM waiting_horizon WHERE location_id = $1 FOR UPDATE SKIP LOCKED", location_id
    )
    return (False, None) if row is None else (True, row["last_day"])


async def set_horizon(conn: asyncpg.Connection, location_id: str, last_day: date, now: datetime) -> None:
    """A shorter horizon (a lowered `max_days`) keeps the later day: its days were offered already."""
    await conn.execute(
        "UPDATE waiting_horizon SET last_day = GREATEST(last_day, $2), updated_at = $3"
        " WHERE location_id = $1",
        location_id,
        last_day,
        now,
    )


async def horizon_scope(
    conn: asyncpg.Connection, location_id: str
) -> tuple[list[str], date | None, datetime | None]:
    """The concerns that confirmed wishes at the location wait for, the latest of their dates, and when
    the oldest of them was registered."""
    row = await conn.fetchrow(
        "SELECT array_agg(DISTINCT concern_id) AS concerns, max(latest_date) AS last,"
        " min(registered_at) AS since FROM wishes"
        " WHERE location_id = $1 AND status IN ('waiting', 'offered')",
        location_id,
    )
    if row is None or row["concerns"] is None:
        return [], None, None
    return list(row["concerns"]), row["last"], row["since"]


# --- ends without the customer -----------------------------------------------------------------------


async def wishes_to_expire(
    conn: asyncpg.Connection, today: date, unconfirmed_before: datetime, limit: int
) -> list[Wish]:
    rows = await conn.fetch(
        f"SELECT {_WISH_COLUMNS} FROM wishes WHERE (status IN ('waiting', 'offered') AND latest_date < $1)"  # noqa: S608 -- fixed columns
        " OR (status = 'pending_opt_in' AND (registered_at < $2 OR latest_date < $1))"
        " ORDER BY registered_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        today,
        unconfirmed_before,
        limit,
    )
    return [_wish(row) for row in rows]


async def unannounced(conn: asyncpg.Connection, limit: int) -> list[tuple[Wish, bool]]:
    """Wishes the database ended (the customer booked) whose event is still to be published, with
    whether the booking took the wish's own offer."""
    rows = await conn.fetch(
        f"SELECT {_prefixed('w', _WISH_COLUMNS)}, EXISTS (SELECT 1 FROM waiting_offers o"  # noqa: S608 -- fixed columns
        " WHERE o.wish_id = w.id AND o.status = 'accepted') AS via_offer"
        " FROM wishes w WHERE NOT w.announced ORDER BY w.updated_at LIMIT $1 FOR UPDATE OF w SKIP LOCKED",
        limit,
    )
    return [(_wish(row), bool(row["via_offer"])) for row in rows]


async def mark_announced(conn: asyncpg.Connection, wish_id: uuid.UUID) -> None:
    await conn.execute("UPDATE wishes SET announced = true WHERE id = $1", wish_id)


# What an erased wish keeps of its customer: nothing; its link leads nowhere (no token matches a hash of a
# random value). Place, concern, times and status stay for the figures.
_ERASE_WISH = (
    "first_name = '', last_name = '', email = '', phone = NULL, customer_number = NULL,"
    " household_number = NULL, email_key = NULL, customer_number_key = NULL, household_number_key = NULL,"
    " token_hash = sha256(convert_to(gen_random_uuid()::text, 'UTF8'))"
)


async def erase_ended(
    conn: asyncpg.Connection, cutoff: datetime, now: datetime, limit: int
) -> list[uuid.UUID]:
    """R34: the personal data of wishes that ended before `cutoff`; the link stops working."""
    rows = await conn.fetch(
        f"UPDATE wishes SET {_ERASE_WISH}, erased_at = $2"  # noqa: S608 -- a constant
        " WHERE id IN (SELECT id FROM wishes WHERE ended_at < $1 AND erased_at IS NULL AND announced"
        "   ORDER BY ended_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " RETURNING id",
        cutoff,
        now,
        limit,
    )
    return [row["id"] for row in rows]


async def lock_wishes_of_email(conn: asyncpg.Connection, email_key: str) -> list[Wish]:
    """Every wish not yet erased whose key of the one-appointment rule is `email_key` (any status, any
    location), locked; under the key's lock, so that a registration of that address at this moment
    comes before or after, never beside (the lock joining and the trigger on `appointments` take)."""
    await conn.execute("SELECT waiting_lock_key('e', $1)", email_key)
    rows = await conn.fetch(
        f"SELECT {_WISH_COLUMNS} FROM wishes WHERE email_key = $1 AND erased_at IS NULL"  # noqa: S608 -- fixed columns
        " ORDER BY registered_at, id FOR UPDATE",
        email_key,
    )
    return [_wish(row) for row in rows]


async def erase_wishes(conn: asyncpg.Connection, wish_ids: list[uuid.UUID], now: datetime) -> set[uuid.UUID]:
    """Erase these wishes' personal data now (Art. 17 GDPR); the ids of those not erased before."""
    rows = await conn.fetch(
        f"UPDATE wishes SET {_ERASE_WISH}, erased_at = $2"  # noqa: S608 -- a constant
        " WHERE id = ANY($1::uuid[]) AND erased_at IS NULL RETURNING id",
        wish_ids,
        now,
    )
    return {row["id"] for row in rows}


# --- staff --------------------------------------------------------------------------------------------


async def staff_list(
    conn: asyncpg.Connection | asyncpg.Pool, location_id: str
) -> list[tuple[Wish, Offer | None]]:
    rows = await conn.fetch(
        f"SELECT {_prefixed('w', _WISH_COLUMNS)}, o.id AS o_id, o.wish_id AS o_wish_id, o.status AS o_status,"  # noqa: S608 -- fixed columns
        " o.location_id AS o_location_id, o.group_id AS o_group_id, o.service_point AS o_service_point,"
        " o.start_at AS o_start_at, o.end_at AS o_end_at, o.evening AS o_evening,"
        " o.expires_at AS o_expires_at, o.offered_at AS o_offered_at,"
        " o.offered_revision AS o_offered_revision, o.mail_outcome AS o_mail_outcome"
        " FROM wishes w LEFT JOIN waiting_offers o ON o.wish_id = w.id AND o.status = 'open'"
        f" WHERE w.location_id = $1 AND w.status IN {ACTIVE} ORDER BY w.concern_id, w.registered_at, w.id",
        location_id,
    )
    found: list[tuple[Wish, Offer | None]] = []
    for row in rows:
        offer = None
        if row["o_id"] is not None:
            offer = _offer({key[2:]: value for key, value in row.items() if key.startswith("o_")})
        found.append((_wish(row), offer))
    return found
