"""Every SQL statement of integrations (tables of migration 090)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.gateway.integrations.domain import PARALLEL_PER_TARGET, Placement, reduce_envelope

SUBSCRIPTION_COLUMNS = (
    "id, name, url, event_types, locations, include_personal_data, status, paused_reason, paused_at,"
    " consecutive_failures, failing_since, last_success_at, created_at, created_by, updated_at,"
    " previous_secret_until"
)
DELIVERY_COLUMNS = (
    "id, subscription_id, position, event_id, event_type, order_key, status, attempts, next_attempt_at,"
    " last_attempt_at, last_status, last_error, delivered_at, created_at"
)
# Serialises inserts into the feed, so that positions commit in order (a reader never skips one).
FEED_LOCK = "otv.gateway.event_feed"


# --- the feed ---------------------------------------------------------------------------------------
# One round trip per event: the lock, the feed row, and the subscriptions that may want it (a stored event
# is the consumer's hottest statement: every appointment event of every location passes here).
_STORE_IN_FEED = """
WITH feed_lock AS (SELECT pg_advisory_xact_lock(hashtext($1)))
, stored AS (
    INSERT INTO event_feed (event_id, type, version, occurred_at, location_id, order_key, order_seq,
                            envelope, stored_at)
    SELECT $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10 FROM feed_lock
    ON CONFLICT (event_id) DO NOTHING
    RETURNING position
)
SELECT stored.position, s.id, s.event_types, s.locations
  FROM stored LEFT JOIN webhook_subscriptions s ON true
"""


async def strip_personal_data(conn: asyncpg.Connection, order_key: str) -> int:
    """The stored envelopes of one appointment (`order_key`) without their personal data."""
    rows = await conn.fetch(
        "SELECT position, envelope FROM event_feed WHERE order_key = $1 FOR UPDATE", order_key
    )
    for row in rows:
        stored = json.loads(row["envelope"]) if isinstance(row["envelope"], str) else row["envelope"]
        await conn.execute(
            "UPDATE event_feed SET envelope = $2::jsonb WHERE position = $1",
            row["position"],
            json.dumps(reduce_envelope(stored, include_personal_data=False)),
        )
    return len(rows)


async def mark_erased(conn: asyncpg.Connection, order_key: str, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO erased_appointments (order_key, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        order_key,
        now,
    )


async def reduce_if_erased(
    conn: asyncpg.Connection, position: int, order_key: str, reduced: dict[str, Any]
) -> bool:
    """Store the feed row at `position` without personal data when its appointment was erased before."""
    done = await conn.fetchval(
        "UPDATE event_feed SET envelope = $3::jsonb WHERE position = $1"
        " AND EXISTS (SELECT FROM erased_appointments WHERE order_key = $2) RETURNING true",
        position,
        order_key,
        json.dumps(reduced),
    )
    return bool(done)


_MARK_FEED_REVISION = """
WITH newest AS (SELECT revision FROM feed_revisions WHERE order_key = $2)
, marked AS (
    INSERT INTO feed_revisions (order_key, revision, seen_at) VALUES ($2, $3, $4)
    ON CONFLICT (order_key) DO UPDATE SET revision = greatest(feed_revisions.revision, EXCLUDED.revision),
                                          seen_at = EXCLUDED.seen_at
)
UPDATE event_feed SET superseded = true
 WHERE position = $1 AND $3 < (SELECT revision FROM newest)
RETURNING (SELECT revision FROM newest)
"""


async def mark_feed_revision(
    conn: asyncpg.Connection, position: int, order_key: str, revision: int, now: datetime
) -> int | None:
    """Remember the highest revision of the appointment stored in the feed. When a newer one was stored
    before, the feed row at `position` is superseded (the feed does not hand it out): that revision is
    returned, otherwise None. Only under the feed lock (taken by the insert, in an earlier statement: a
    statement's snapshot is taken before it waits for the lock)."""
    newest: int | None = await conn.fetchval(_MARK_FEED_REVISION, position, order_key, revision, now)
    return newest


async def delete_revision_marks_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    feed = await conn.execute("DELETE FROM feed_revisions WHERE seen_at < $1", cutoff)
    hooks = await conn.execute("DELETE FROM webhook_revisions WHERE seen_at < $1", cutoff)
    return int(feed.split()[-1]) + int(hooks.split()[-1])


async def forget_expired_secrets(conn: asyncpg.Connection, now: datetime) -> int:
    """A rotated-out signing secret that no longer signs is deleted, not kept until the next rotation."""
    result = await conn.execute(
        "UPDATE webhook_subscriptions SET previous_secret = NULL, previous_secret_until = NULL"
        " WHERE previous_secret_until <= $1",
        now,
    )
    return int(result.split()[-1])


async def delete_erasure_marks_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    result = await conn.execute("DELETE FROM erased_appointments WHERE erased_at < $1", cutoff)
    return int(result.split()[-1])


async def insert_feed_row(
    conn: asyncpg.Connection, envelope: dict[str, Any], placement: Placement, now: datetime
) -> tuple[int, list[asyncpg.Record]] | None:
    """Store the event in the feed: its position and every subscription (paused ones too: they collect
    their deliveries and send them when resumed), or None when the feed already has the event."""
    rows = await conn.fetch(
        _STORE_IN_FEED,
        FEED_LOCK,
        uuid.UUID(str(envelope["id"])),
        envelope["type"],
        int(envelope["version"]),
        datetime.fromisoformat(str(envelope["occurred_at"])),
        placement.location_id,
        placement.order_key,
        placement.order_seq or 0,
        json.dumps(envelope),
        now,
    )
    if not rows:
        return None
    return int(rows[0]["position"]), [row for row in rows if row["id"] is not None]


async def read_feed(
    conn: asyncpg.Connection, *, after: int, limit: int, locations: list[str] | None, types: list[str] | None
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT position, envelope FROM event_feed WHERE position > $1 AND NOT superseded"
        " AND ($2::text[] IS NULL OR location_id = ANY($2::text[]))"
        " AND ($3::text[] IS NULL OR type = ANY($3::text[]))"
        " ORDER BY position LIMIT $4",
        after,
        locations,
        types,
        limit,
    )
    return rows


ADMIN_PAUSE = "paused by an administrator"  # the reason of a pause on purpose


async def count_undelivered_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM webhook_deliveries d JOIN event_feed f ON f.position = d.position"
        " WHERE f.stored_at < $1 AND d.status NOT IN ('delivered', 'superseded')",
        cutoff,
    )
    return count


async def count_paused(conn: asyncpg.Connection) -> int:
    """Subscriptions paused for failing (not those an administrator paused)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM webhook_subscriptions WHERE status = 'paused'"
        " AND paused_reason IS DISTINCT FROM $1",
        ADMIN_PAUSE,
    )
    return count


async def delete_feed_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    """Delete the feed's rows stored before `cutoff`, remembering the highest position deleted."""
    deleted = await conn.fetch("DELETE FROM event_feed WHERE stored_at < $1 RETURNING position", cutoff)
    if deleted:
        await conn.execute(
            "INSERT INTO event_feed_purged (one, upto) VALUES (true, $1) ON CONFLICT (one)"
            " DO UPDATE SET upto = greatest(event_feed_purged.upto, EXCLUDED.upto)",
            max(row["position"] for row in deleted),
        )
    return len(deleted)


async def purged_up_to(conn: asyncpg.Connection) -> int:
    """The highest feed position deleted at the end of the retention period (0: none yet)."""
    upto: int | None = await conn.fetchval("SELECT upto FROM event_feed_purged")
    return upto or 0


# --- subscriptions ----------------------------------------------------------------------------------
async def insert_subscription(conn: asyncpg.Connection, **values: Any) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "INSERT INTO webhook_subscriptions (name, url, event_types, locations, include_personal_data,"  # noqa: S608 -- fixed column lists, values are parameters
        " secret, created_at, created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)"
        f" RETURNING {SUBSCRIPTION_COLUMNS}",
        values["name"],
        values["url"],
        values["event_types"],
        values["locations"],
        values["include_personal_data"],
        values["secret"],
        values["now"],
        values["created_by"],
    )
    return row


async def list_subscriptions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id"  # noqa: S608 -- fixed column lists, values are parameters
    )
    return rows


async def find_subscription(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {SUBSCRIPTION_COLUMNS}, secret FROM webhook_subscriptions WHERE id = $1"  # noqa: S608 -- fixed column lists, values are parameters
        + (" FOR UPDATE" if lock else ""),
        subscription_id,
    )
    return row


async def update_subscription(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, changes: dict[str, Any]
) -> asyncpg.Record:
    allowed = {
        "name",
        "url",
        "event_types",
        "locations",
        "include_personal_data",
        "status",
        "paused_reason",
        "paused_at",
        "consecutive_failures",
        "failing_since",
        "updated_at",
        "secret",
        "previous_secret",
        "previous_secret_until",
    }
    names = [k for k in changes if k in allowed]
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, 2))
    row: asyncpg.Record = await conn.fetchrow(
        f"UPDATE webhook_subscriptions SET {sets} WHERE id = $1 RETURNING {SUBSCRIPTION_COLUMNS}",  # noqa: S608 -- column names from the fixed set above
        subscription_id,
        *(changes[n] for n in names),
    )
    return row


async def delete_subscription(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval("DELETE FROM webhook_subscriptions WHERE id = $1 RETURNING true", subscription_id)
    )


# --- deliveries -------------------------------------------------------------------------------------
# The highest revision of the appointment this subscription wanted is remembered; a delivery of an older
# revision than one stored for it before is recorded as superseded and never sent (a receiver never sees an
# appointment's revision go down). Without a revision of its own (a callback's event), a delivery goes
# behind the events of its appointment pending for this subscription, and is never superseded.
_INSERT_DELIVERY = """
WITH newest AS (SELECT revision FROM webhook_revisions WHERE subscription_id = $1 AND order_key = $5)
, marked AS (
    INSERT INTO webhook_revisions (subscription_id, order_key, revision, seen_at)
    SELECT $1, $5, $6, $7 WHERE $6::bigint IS NOT NULL
    ON CONFLICT (subscription_id, order_key) DO UPDATE
        SET revision = greatest(webhook_revisions.revision, EXCLUDED.revision), seen_at = EXCLUDED.seen_at
)
INSERT INTO webhook_deliveries (subscription_id, position, event_id, event_type, order_key, order_seq,
                                status, next_attempt_at, created_at, retry_from)
VALUES ($1, $2, $3, $4, $5,
        coalesce($6::bigint, (SELECT coalesce(max(order_seq), 0) FROM webhook_deliveries
                               WHERE subscription_id = $1 AND order_key = $5 AND status = 'pending')),
        CASE WHEN $6::bigint < (SELECT revision FROM newest) THEN 'superseded' ELSE 'pending' END,
        $7, $7, $7)
ON CONFLICT (subscription_id, event_id) DO NOTHING
RETURNING status
"""


async def insert_delivery(
    conn: asyncpg.Connection,
    subscription_id: uuid.UUID,
    position: int,
    envelope: dict[str, Any],
    placement: Placement,
    now: datetime,
) -> str | None:
    """The delivery's status (`pending`, or `superseded`), None when the subscription has it already.
    Only under the feed lock, like `mark_feed_revision`."""
    status: str | None = await conn.fetchval(
        _INSERT_DELIVERY,
        subscription_id,
        position,
        uuid.UUID(str(envelope["id"])),
        envelope["type"],
        placement.order_key,
        placement.order_seq,
        now,
    )
    return status


@dataclass(frozen=True)
class Due:
    id: int
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    attempts: int
    created_at: datetime
    envelope: dict[str, Any]
    url: str
    # The secrets that sign it: the current one, and the previous one during a rotation's overlap.
    secrets: list[str]
    include_personal_data: bool


# The earliest due deliveries (a bounded number, found by the index: a backlog of many thousands is not
# ranked whole every round), then per target of their URLs (scheme, host and port, a default port left
# out: as the client's connection pool counts them) in the order they are sent.
_CLAIM_DUE = """
WITH candidates AS (
    SELECT d.id, d.next_attempt_at, s.url
      FROM webhook_deliveries d
      JOIN webhook_subscriptions s ON s.id = d.subscription_id
     WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND s.status = 'active'
       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id
                          AND e.order_key = d.order_key AND e.status = 'pending'
                          AND (e.order_seq, e.id) < (d.order_seq, d.id))
     ORDER BY d.next_attempt_at, d.id LIMIT $4
)
, due AS (
    SELECT id, row_number() OVER (
               PARTITION BY regexp_replace(substring(lower(url) from '^[a-z][a-z0-9+.-]*://[^/?#]*'),
                                           ':(443|80)$', '')
               ORDER BY next_attempt_at, id) AS nth
      FROM candidates
)
SELECT d.id, d.subscription_id, d.event_id, d.attempts, d.retry_from, f.envelope, s.url, s.secret,
       CASE WHEN s.previous_secret_until > $1 THEN s.previous_secret END AS previous_secret,
       s.include_personal_data
  FROM webhook_deliveries d
  JOIN webhook_subscriptions s ON s.id = d.subscription_id
  JOIN event_feed f ON f.position = d.position
 WHERE d.id IN (SELECT id FROM due WHERE nth <= $3) AND d.status = 'pending' AND d.next_attempt_at <= $1
 ORDER BY d.next_attempt_at, d.id LIMIT $2
   FOR UPDATE OF d SKIP LOCKED
"""


async def claim_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Due]:
    """Due deliveries of active subscriptions, locked for this transaction (I7: other replicas skip
    them); one waits while an earlier one of the same appointment and subscription is pending. At most
    `PARALLEL_PER_TARGET` per target: the rest are due in the next round (one that another replica holds
    counts too, so a target never gets more at once)."""
    rows = await conn.fetch(_CLAIM_DUE, now, limit, PARALLEL_PER_TARGET, limit * 20)
    return [
        Due(
            id=r["id"],
            subscription_id=r["subscription_id"],
            event_id=r["event_id"],
            attempts=r["attempts"],
            created_at=r["retry_from"],
            envelope=json.loads(r["envelope"]) if isinstance(r["envelope"], str) else r["envelope"],
            url=r["url"],
            secrets=[r["secret"], *([r["previous_secret"]] if r["previous_secret"] else [])],
            include_personal_data=r["include_personal_data"],
        )
        for r in rows
    ]


async def mark_delivered(conn: asyncpg.Connection, delivery_id: int, status: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_attempt_at = $2,"
        " last_status = $3, last_error = NULL, delivered_at = $2 WHERE id = $1",
        delivery_id,
        now,
        status,
    )


async def mark_failed_attempt(
    conn: asyncpg.Connection,
    delivery_id: int,
    *,
    now: datetime,
    status: int | None,
    error: str,
    next_attempt_at: datetime,
    give_up: bool,
) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $2, last_status = $3,"
        " last_error = $4, next_attempt_at = $5, status = CASE WHEN $6 THEN 'failed' ELSE status END"
        " WHERE id = $1",
        delivery_id,
        now,
        status,
        error[:500],
        next_attempt_at,
        give_up,
    )


async def subscription_succeeded(conn: asyncpg.Connection, subscription_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE webhook_subscriptions SET consecutive_failures = 0, failing_since = NULL,"
        " last_success_at = $2 WHERE id = $1",
        subscription_id,
        now,
    )


async def subscription_failed(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, now: datetime
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "UPDATE webhook_subscriptions SET consecutive_failures = consecutive_failures + 1,"
        " failing_since = coalesce(failing_since, $2) WHERE id = $1"
        " RETURNING consecutive_failures, failing_since, status",
        subscription_id,
        now,
    )
    return row


@dataclass(frozen=True)
class DeliveryFilter:
    subscription_id: uuid.UUID | None = None
    status: str | None = None
    event_type: str | None = None
    order_key: str | None = None
    before_id: int | None = None
    limit: int = 50


async def list_deliveries(conn: asyncpg.Connection, f: DeliveryFilter) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries"  # noqa: S608 -- fixed column lists, values are parameters
        " WHERE ($1::uuid IS NULL OR subscription_id = $1) AND ($2::text IS NULL OR status = $2)"
        " AND ($3::text IS NULL OR event_type = $3) AND ($4::text IS NULL OR order_key = $4)"
        " AND ($5::bigint IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
        f.subscription_id,
        f.status,
        f.event_type,
        f.order_key,
        f.before_id,
        f.limit,
    )
    return rows


async def lock_for_resend(conn: asyncpg.Connection, delivery_id: int) -> bool:
    """Lock the delivery's row (waiting for a sender's round that has it), then the feed (False: no such
    delivery). In this order and in statements of their own: a check after them sees every revision
    committed before, and none can be stored until the resend commits; checked in the statement that
    waited for the row, the revisions would be those of before the wait (READ COMMITTED re-reads only the
    locked row), and a newer one stored and delivered meanwhile would be overtaken by the older one. Never
    the other way round: a sender holds delivery rows while it POSTs, the feed lock must not wait on that."""
    found = await conn.fetchval("SELECT true FROM webhook_deliveries WHERE id = $1 FOR UPDATE", delivery_id)
    if not found:
        return False
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", FEED_LOCK)
    return True


async def delivery_is_outdated(conn: asyncpg.Connection, delivery_id: int) -> bool | None:
    """Whether the delivery carries an older revision of its appointment than the newest one stored for its
    subscription (a superseded one always does; one given up can be overtaken too); None: no such delivery.
    Events without a revision of their own (order 0 in the feed) are never outdated. For a resend, only
    after `lock_for_resend`."""
    row = await conn.fetchrow(
        "SELECT d.status = 'superseded' OR coalesce(f.order_seq > 0 AND f.order_seq < r.revision, false)"
        " AS outdated FROM webhook_deliveries d JOIN event_feed f ON f.position = d.position"
        " LEFT JOIN webhook_revisions r"
        "   ON r.subscription_id = d.subscription_id AND r.order_key = d.order_key"
        " WHERE d.id = $1 FOR UPDATE OF d",
        delivery_id,
    )
    return None if row is None else bool(row["outdated"])


async def resend(conn: asyncpg.Connection, delivery_id: int, now: datetime) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $2, retry_from = $2"  # noqa: S608 -- fixed column lists, values are parameters
        f" WHERE id = $1 AND status <> 'superseded' RETURNING {DELIVERY_COLUMNS}",
        delivery_id,
        now,
    )
    return row
