"""Every SQL statement of the reporting service (its own schema only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from services.reporting.domain import ANONYMISED_INTERPRETER, PERSONAL_COLUMNS

Row = Any  # asyncpg.Record: asyncpg ships no types


async def _fetch(conn: Any, sql: str, *args: Any) -> list[Row]:
    rows: list[Row] = await conn.fetch(sql, *args)
    return rows


async def _fetchrow(conn: Any, sql: str, *args: Any) -> Row | None:
    row: Row | None = await conn.fetchrow(sql, *args)
    return row


# --- appointments -------------------------------------------------------------------------------------

_SNAPSHOT_COLUMNS = (
    "revision",
    "status",
    "location_id",
    "location_name",
    "group_id",
    "service_point",
    "concern_id",
    "concern_name",
    "sensitive",
    "emergency",
    "start_at",
    "end_at",
    "day",
    "mode",
    "channel",
    "language",
    "evening",
    "interpreter_language",
    "booked_at",
)
# Every personal column comes with the snapshot.
_SNAPSHOT_PERSONAL = PERSONAL_COLUMNS


async def insert_appointment(
    conn: asyncpg.Connection, appointment_id: Any, values: dict[str, Any], now: datetime
) -> bool:
    """Insert the first known state of an appointment; False when a row exists already."""
    columns = ("id", *_SNAPSHOT_COLUMNS, *_SNAPSHOT_PERSONAL, "anonymised_at", "updated_at")
    args = [appointment_id, *(values[c] for c in columns[1:-1]), now]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    inserted = await conn.fetchval(
        f"INSERT INTO appointments ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608 -- column names are constants of this module
        " ON CONFLICT (id) DO NOTHING RETURNING true",
        *args,
    )
    return bool(inserted)


async def lock_appointment(conn: asyncpg.Connection, appointment_id: Any) -> Row | None:
    return await _fetchrow(
        conn,
        "SELECT revision, location_id, day, group_id, service_point, start_at, end_at, anonymised_at"
        " FROM appointments WHERE id = $1 FOR UPDATE",
        appointment_id,
    )


async def record_moved_away(
    conn: asyncpg.Connection, appointment_id: Any, old: dict[str, Any], revision: int, at: datetime
) -> None:
    """The appointment left the list of `old` (location, day): keep its old slot there (a later move away
    from the same list replaces it; an older one changes nothing)."""
    await conn.execute(
        "INSERT INTO moved_away (appointment_id, location_id, day, group_id, service_point, start_at,"
        " end_at, revision, moved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (appointment_id, location_id, day) DO UPDATE SET group_id = EXCLUDED.group_id,"
        " service_point = EXCLUDED.service_point, start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,"
        " revision = EXCLUDED.revision, moved_at = EXCLUDED.moved_at"
        " WHERE moved_away.revision < EXCLUDED.revision",
        appointment_id,
        old["location_id"],
        old["day"],
        old["group_id"],
        old["service_point"],
        old["start_at"],
        old["end_at"],
        revision,
        at,
    )


async def moved_away_lists(conn: asyncpg.Connection, appointment_id: Any) -> list[tuple[str, date]]:
    """The lists an appointment moved away from (they show it, and where it is now)."""
    rows = await conn.fetch(
        "SELECT location_id, day FROM moved_away WHERE appointment_id = $1", appointment_id
    )
    return [(r["location_id"], r["day"]) for r in rows]


async def delete_moved_away(conn: asyncpg.Connection, before: date) -> int:
    """R34: the rows of lists whose day is before `before`, and of appointments whose data are erased."""
    result = await conn.execute(
        "DELETE FROM moved_away m WHERE m.day < $1 OR EXISTS (SELECT 1 FROM appointments a"
        " WHERE a.id = m.appointment_id AND a.anonymised_at IS NOT NULL)",
        before,
    )
    return int(result.split()[-1])


async def update_appointment(
    conn: asyncpg.Connection, appointment_id: Any, values: dict[str, Any], now: datetime
) -> None:
    columns = (*_SNAPSHOT_COLUMNS, *_SNAPSHOT_PERSONAL)
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
    await conn.execute(
        f"UPDATE appointments SET {sets}, updated_at = ${len(columns) + 2} WHERE id = $1",  # noqa: S608 -- column names are constants of this module
        appointment_id,
        *(values[c] for c in columns),
        now,
    )


async def record_revision(
    conn: asyncpg.Connection,
    appointment_id: Any,
    revision: int,
    event_type: str,
    occurred_at: datetime,
    customer_hash: str,
    anonymised: bool,
) -> None:
    if anonymised:
        return  # nothing about the customer is kept for an anonymised appointment
    await conn.execute(
        "INSERT INTO appointment_revisions (appointment_id, revision, event_type, occurred_at, customer_hash)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        appointment_id,
        revision,
        event_type,
        occurred_at,
        customer_hash,
    )


async def record_cancellation(
    conn: asyncpg.Connection,
    appointment_id: Any,
    at: datetime,
    by: str | None,
    *,
    code: str | None = None,
    handed_to: str | None = None,
) -> None:
    # Facts of the cancellation are kept whatever order the events came in: the first one wins.
    await conn.execute(
        "UPDATE appointments SET cancelled_at = coalesce(cancelled_at, $2),"
        " cancelled_by = coalesce(cancelled_by, $3),"
        " cancel_code = coalesce(cancel_code, $4), handed_to = coalesce(handed_to, $5)"
        " WHERE id = $1",
        appointment_id,
        at,
        by,
        code or None,
        handed_to or None,
    )


async def record_outcome(
    conn: asyncpg.Connection, appointment_id: Any, outcome: str, at: datetime, *, newest: bool
) -> None:
    """The outcome of the newest revision wins; a stale one fills only a gap."""
    await conn.execute(
        "UPDATE appointments SET"
        " outcome = CASE WHEN $4 OR outcome IS NULL THEN $2 ELSE outcome END,"
        " outcome_at = CASE WHEN $4 OR outcome IS NULL THEN $3 ELSE outcome_at END"
        " WHERE id = $1",
        appointment_id,
        outcome,
        at,
        newest,
    )


async def record_transfer(conn: asyncpg.Connection, appointment_id: Any, from_location: str) -> None:
    await conn.execute(
        "UPDATE appointments SET transferred_from = coalesce(transferred_from, $2) WHERE id = $1",
        appointment_id,
        from_location,
    )


_ERASE = ", ".join([*(f"{c} = NULL" for c in PERSONAL_COLUMNS), ANONYMISED_INTERPRETER])


async def appointment_day(conn: asyncpg.Connection, appointment_id: Any) -> tuple[str, date] | None:
    """The location and day of an appointment's list."""
    row = await conn.fetchrow("SELECT location_id, day FROM appointments WHERE id = $1", appointment_id)
    return (row["location_id"], row["day"]) if row is not None else None


async def anonymise_appointment(conn: asyncpg.Connection, appointment_id: Any, now: datetime) -> bool:
    done = await conn.fetchval(
        f"UPDATE appointments SET {_ERASE}, anonymised_at = $2, updated_at = $2"  # noqa: S608 -- constant column names
        " WHERE id = $1 AND anonymised_at IS NULL RETURNING true",
        appointment_id,
        now,
    )
    await conn.execute("DELETE FROM appointment_revisions WHERE appointment_id = $1", appointment_id)
    return bool(done)


async def serialise_erasure(conn: asyncpg.Connection, appointment_id: Any) -> None:
    """Taken by an erasure and by the first event of an appointment (transaction-level), so that an erasure
    applied while another replica inserts the appointment's first row either finds that row or leaves a
    marker that the insert then finds."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('otv.reporting.erasure:' || $1::uuid::text, 0))",
        appointment_id,
    )


async def mark_erased(conn: asyncpg.Connection, appointment_id: Any, erased_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO erased_appointments (id, erased_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        appointment_id,
        erased_at,
    )


async def erased_at(conn: asyncpg.Connection, appointment_id: Any) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT erased_at FROM erased_appointments WHERE id = $1", appointment_id
    )
    return value


async def delete_erasure_marks_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    result = await conn.execute("DELETE FROM erased_appointments WHERE erased_at < $1", cutoff)
    return int(result.split()[-1])


async def anonymise_ended_before(conn: asyncpg.Connection, cutoff: datetime, now: datetime) -> int:
    """R34: erase the personal data of every appointment that ended before `cutoff`."""
    ids = await conn.fetch(
        f"UPDATE appointments SET {_ERASE}, anonymised_at = $2, updated_at = $2"  # noqa: S608 -- constant column names
        " WHERE anonymised_at IS NULL AND end_at < $1 RETURNING id",
        cutoff,
        now,
    )
    return len(ids)


async def delete_revisions_of_anonymised(conn: asyncpg.Connection) -> int:
    result = await conn.execute(
        "DELETE FROM appointment_revisions r USING appointments a"
        " WHERE r.appointment_id = a.id AND a.anonymised_at IS NOT NULL"
    )
    return int(result.split()[-1])


async def mark_lists_stale(conn: asyncpg.Connection, pairs: Iterable[tuple[str, date]]) -> None:
    """Also a list not built yet (no content): while its first build holds the row, this waits for it and
    then marks the new file, which may have been read before this change (a list without a file is
    never rebuilt for being stale, `claim_stale_list`)."""
    for location_id, day in pairs:
        await conn.execute(
            "UPDATE day_lists SET stale = true WHERE location_id = $1 AND day = $2", location_id, day
        )


# --- catalog ------------------------------------------------------------------------------------------


async def location_revision(conn: asyncpg.Connection, location_id: str) -> int | None:
    value = await conn.fetchval(
        "SELECT revision FROM locations WHERE location_id = $1 FOR UPDATE", location_id
    )
    return int(value) if value is not None else None


async def upsert_location(
    conn: asyncpg.Connection,
    location_id: str,
    revision: int,
    name: str,
    active: bool,
    snapshot: dict[str, Any],
    configured_at: datetime,
    now: datetime,
) -> bool:
    """Whether this snapshot is now the location's newest. False when a newer one is there: also one that
    another transaction inserted (and committed) after `location_revision` found no row, which the insert
    waited for."""
    written = await conn.fetchval(
        "INSERT INTO locations (location_id, revision, name, active, snapshot, configured_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)"
        " ON CONFLICT (location_id) DO UPDATE SET revision = EXCLUDED.revision, name = EXCLUDED.name,"
        " active = EXCLUDED.active, snapshot = EXCLUDED.snapshot, configured_at = EXCLUDED.configured_at,"
        " updated_at = EXCLUDED.updated_at WHERE locations.revision < EXCLUDED.revision RETURNING true",
        location_id,
        revision,
        name,
        active,
        snapshot,
        configured_at,
        now,
    )
    return bool(written)


async def replace_capacity(
    conn: asyncpg.Connection,
    location_id: str,
    revision: int,
    from_day: date,
    rows: Sequence[tuple[str, date, int, int]],
) -> None:
    """Offered minutes from `from_day` on, as the snapshot `revision` says; earlier days stay as they were."""
    await conn.execute(
        "DELETE FROM capacity_days WHERE location_id = $1 AND day >= $2", location_id, from_day
    )
    await add_capacity(conn, location_id, revision, rows)


async def add_capacity(
    conn: asyncpg.Connection, location_id: str, revision: int, rows: Sequence[tuple[str, date, int, int]]
) -> None:
    """Rows of (group, day, offered minutes, of them in evening windows)."""
    if not rows:
        return
    await conn.execute(
        "INSERT INTO capacity_days (location_id, group_id, day, offered_minutes, revision, evening_minutes)"
        " SELECT $1, g, d, m, $2, e"
        " FROM unnest($3::text[], $4::date[], $5::int[], $6::int[]) AS t(g, d, m, e)"
        " ON CONFLICT DO NOTHING",
        location_id,
        revision,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


async def capacity_reach(conn: asyncpg.Connection, today: date) -> list[Row]:
    """Every location with its snapshot, the last day its capacity is written for, and whether a day
    after `today` lacks its evening part (`evening_unknown`: written by the previous release's pods)."""
    return await _fetch(
        conn,
        "SELECT l.location_id, l.revision, l.snapshot, max(c.day) AS last_day,"
        " coalesce(bool_or(c.day > $1 AND c.evening_minutes IS NULL), false) AS evening_unknown"
        " FROM locations l LEFT JOIN capacity_days c ON c.location_id = l.location_id"
        " GROUP BY l.location_id, l.revision, l.snapshot",
        today,
    )


async def locations(conn: asyncpg.Connection | asyncpg.Pool) -> list[Row]:
    return await _fetch(conn, "SELECT location_id, name, active, snapshot FROM locations ORDER BY name")


async def location(conn: asyncpg.Connection | asyncpg.Pool, location_id: str) -> Row | None:
    return await _fetchrow(
        conn, "SELECT location_id, name, active, snapshot FROM locations WHERE location_id = $1", location_id
    )


async def remember_concern_names(conn: asyncpg.Connection, names: dict[str, str], named_at: datetime) -> None:
    """The German names a snapshot gives its concerns; a concern it no longer offers keeps its row."""
    if not names:
        return
    ids = sorted(names)  # one lock order for two snapshots applied at once
    await conn.execute(
        "INSERT INTO concern_names (concern_id, name, named_at)"
        " SELECT c, n, $3 FROM unnest($1::text[], $2::text[]) AS t(c, n)"
        " ON CONFLICT (concern_id) DO UPDATE SET name = EXCLUDED.name, named_at = EXCLUDED.named_at"
        " WHERE concern_names.named_at <= EXCLUDED.named_at",
        ids,
        [names[i] for i in ids],
        named_at,
    )


async def known_concern_names(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, str]:
    """Every concern's German name as the newest snapshot naming it said, offered now or not."""
    return {
        r["concern_id"]: r["name"] for r in await conn.fetch("SELECT concern_id, name FROM concern_names")
    }


async def set_allow_list(conn: asyncpg.Connection, revision: int, entries: list[str]) -> None:
    await conn.execute(
        "INSERT INTO allow_list (id, revision, entries) VALUES (1, $1, $2)"
        " ON CONFLICT (id) DO UPDATE SET revision = EXCLUDED.revision, entries = EXCLUDED.entries"
        " WHERE allow_list.revision < EXCLUDED.revision",
        revision,
        entries,
    )


async def allow_list(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    entries = await conn.fetchval("SELECT entries FROM allow_list WHERE id = 1")
    return list(entries or [])


# --- callbacks and mails --------------------------------------------------------------------------------


async def upsert_callback(conn: asyncpg.Connection, values: dict[str, Any], now: datetime) -> None:
    await conn.execute(
        "INSERT INTO callbacks (id, appointment_id, location_id, group_id, created_at, due_at, closed_at,"
        " status, revision, updated_at, closed_as) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (id) DO UPDATE SET"
        " appointment_id = coalesce(EXCLUDED.appointment_id, callbacks.appointment_id),"
        " location_id = coalesce(EXCLUDED.location_id, callbacks.location_id),"
        # The newest revision wins (a corrected outcome hands the ticket to another team, or opens a
        # withdrawn one again); a late event of an older revision changes nothing of it.
        " group_id = CASE WHEN EXCLUDED.revision >= callbacks.revision"
        "   THEN coalesce(EXCLUDED.group_id, callbacks.group_id) ELSE callbacks.group_id END,"
        " created_at = least(callbacks.created_at, EXCLUDED.created_at),"
        " due_at = CASE WHEN EXCLUDED.revision >= callbacks.revision THEN EXCLUDED.due_at"
        "   ELSE callbacks.due_at END,"
        # Closing is final for events of its revision or older: a late "created" does not reopen it.
        " closed_at = CASE WHEN EXCLUDED.revision > callbacks.revision THEN EXCLUDED.closed_at"
        "   WHEN EXCLUDED.revision < callbacks.revision THEN callbacks.closed_at"
        "   ELSE coalesce(callbacks.closed_at, EXCLUDED.closed_at) END,"
        # How it ended goes with the closing (a ticket opened again has not ended).
        " closed_as = CASE WHEN EXCLUDED.revision > callbacks.revision THEN EXCLUDED.closed_as"
        "   WHEN EXCLUDED.revision < callbacks.revision THEN callbacks.closed_as"
        "   ELSE coalesce(callbacks.closed_as, EXCLUDED.closed_as) END,"
        " status = CASE WHEN EXCLUDED.revision > callbacks.revision THEN EXCLUDED.status"
        "   WHEN EXCLUDED.revision < callbacks.revision THEN callbacks.status"
        "   WHEN callbacks.closed_at IS NOT NULL AND EXCLUDED.closed_at IS NULL"
        "   THEN callbacks.status ELSE EXCLUDED.status END,"
        " revision = greatest(callbacks.revision, EXCLUDED.revision), updated_at = EXCLUDED.updated_at",
        values["id"],
        values["appointment_id"],
        values["location_id"],
        values["group_id"],
        values["created_at"],
        values["due_at"],
        values["closed_at"],
        values["status"],
        values["revision"],
        now,
        values["closed_as"],
    )


async def upsert_mail(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO mails (mail_id, appointment_id, kind, outcome, reason, revision, attempts, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (mail_id) DO UPDATE SET"
        " outcome = EXCLUDED.outcome, reason = EXCLUDED.reason, attempts = EXCLUDED.attempts,"
        " occurred_at = EXCLUDED.occurred_at WHERE mails.occurred_at <= EXCLUDED.occurred_at",
        values["mail_id"],
        values["appointment_id"],
        values["kind"],
        values["outcome"],
        values["reason"],
        values["revision"],
        values["attempts"],
        values["occurred_at"],
    )


# --- the day lists ------------------------------------------------------------------------------------


async def booking_day_locations(conn: asyncpg.Connection, day: date) -> list[str]:
    """Locations for which `day` is a booking day: capacity offered, or appointments booked."""
    rows = await conn.fetch(
        "SELECT location_id FROM capacity_days WHERE day = $1 GROUP BY location_id"
        " HAVING sum(offered_minutes) > 0"
        " UNION SELECT DISTINCT location_id FROM appointments WHERE day = $1",
        day,
    )
    return sorted(r["location_id"] for r in rows)


async def day_list_location_known(conn: asyncpg.Connection, location_id: str, day: date) -> bool:
    """A location reporting knows, or one with appointments that day (a list row is made only for it)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM locations WHERE location_id = $1)"
            " OR EXISTS (SELECT 1 FROM appointments WHERE location_id = $1 AND day = $2)",
            location_id,
            day,
        )
    )


async def ensure_day_lists(
    conn: asyncpg.Connection, day: date, location_ids: Sequence[str], now: datetime, delete_after: datetime
) -> None:
    await conn.execute(
        "INSERT INTO day_lists (location_id, day, created_at, delete_after)"
        " SELECT l, $2, $3, $4 FROM unnest($1::text[]) AS l ON CONFLICT DO NOTHING",
        list(location_ids),
        day,
        now,
        delete_after,
    )


async def scheduled_work(conn: asyncpg.Connection, now: datetime, today: date, lists_due: bool) -> Row:
    """What the scheduler's steps would find, in one read that locks and writes nothing (most ticks find
    nothing): the periodic jobs' last runs, list files to delete (`delete_expired_lists`), today's lists to
    create or build once they are due (`booking_day_locations`, `claim_due_list`), changed lists
    (`claim_stale_list`). The steps still claim their own work; this only spares the ticks without any."""
    row = await conn.fetchrow(
        "SELECT (SELECT last_run_at FROM job_runs WHERE job = 'capacity') AS capacity_run,"
        " (SELECT last_run_at FROM job_runs WHERE job = 'retention') AS retention_run,"
        " EXISTS (SELECT 1 FROM day_lists WHERE content IS NOT NULL"
        "   AND (delete_after <= $1 OR (day > $2 AND deleted_at IS NULL))) AS expired_lists,"
        " $3 AND (EXISTS (SELECT 1 FROM day_lists"
        "     WHERE day = $2 AND generated_at IS NULL AND deleted_at IS NULL)"
        "   OR EXISTS (SELECT 1 FROM ("
        "     SELECT location_id FROM capacity_days WHERE day = $2 GROUP BY location_id"
        "     HAVING sum(offered_minutes) > 0"
        "     UNION SELECT location_id FROM appointments WHERE day = $2) AS b"
        "   WHERE NOT EXISTS (SELECT 1 FROM day_lists d WHERE d.location_id = b.location_id AND d.day = $2)))"
        "   AS due_lists,"
        " EXISTS (SELECT 1 FROM day_lists WHERE stale AND content IS NOT NULL AND day = $2) AS stale_lists",
        now,
        today,
        lists_due,
    )
    assert row is not None  # noqa: S101 -- a SELECT without FROM gives one row
    return row


async def claim_due_list(conn: asyncpg.Connection, day: date) -> Row | None:
    """A list of `day` not generated yet and not being generated by another replica (I7)."""
    return await _fetchrow(
        conn,
        "SELECT location_id, day FROM day_lists WHERE day = $1 AND generated_at IS NULL"
        " AND deleted_at IS NULL ORDER BY location_id LIMIT 1 FOR UPDATE SKIP LOCKED",
        day,
    )


async def claim_stale_list(conn: asyncpg.Connection, today: date) -> Row | None:
    """A kept list of today that changed. Only today's: a later day's file is not kept (R33), and one the
    previous release's pods stored is cleared (`delete_expired_lists`), not built again."""
    return await _fetchrow(
        conn,
        "SELECT location_id, day FROM day_lists WHERE stale AND content IS NOT NULL AND day = $1"
        " ORDER BY location_id LIMIT 1 FOR UPDATE SKIP LOCKED",
        today,
    )


async def lock_day_list(conn: asyncpg.Connection, location_id: str, day: date) -> Row:
    """The list row of a location and day, locked (waiting for another replica building it). The row is
    committed before (`ensure_day_lists`), so that a change arriving during the build finds it and marks
    the new file stale (`mark_lists_stale`)."""
    row = await conn.fetchrow(
        "SELECT location_id, day, generated_at, generation, stale, content, appointment_count"
        " FROM day_lists WHERE location_id = $1 AND day = $2 FOR UPDATE",
        location_id,
        day,
    )
    assert row is not None  # noqa: S101 -- committed by ensure_day_lists before; list rows are never deleted
    return row


async def store_day_list(
    conn: asyncpg.Connection,
    location_id: str,
    day: date,
    content: bytes,
    count: int,
    now: datetime,
    trigger: str,
) -> int:
    generation = await conn.fetchval(
        "UPDATE day_lists SET generated_at = $3, generation = generation + 1, stale = false,"
        " content = $4, appointment_count = $5 WHERE location_id = $1 AND day = $2 RETURNING generation",
        location_id,
        day,
        now,
        content,
        count,
    )
    await conn.execute(
        "INSERT INTO day_list_runs (location_id, day, generation, trigger, generated_at, appointment_count,"
        " bytes) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        location_id,
        day,
        generation,
        trigger,
        now,
        count,
        len(content),
    )
    return int(generation)


async def day_list_appointments(conn: asyncpg.Connection, location_id: str, day: date) -> list[Row]:
    """The appointments of a location and day, and those moved away from it (at their old slot, with
    where they are now: `moved_to_*`), unless moved back."""
    return await _fetch(
        conn,
        "SELECT id, reference, status, group_id, service_point, concern_id, concern_name, start_at, end_at,"
        " mode, interpreter_language, outcome, first_name, last_name, phone, customer_number,"
        " household_number, emergency, language, cancel_code, handed_to, NULL::text AS moved_to_location,"
        " NULL::text AS moved_to_name, NULL::timestamptz AS moved_to_start"
        " FROM appointments WHERE location_id = $1 AND day = $2"
        " UNION ALL"
        " SELECT a.id, a.reference, a.status, m.group_id, m.service_point, a.concern_id, a.concern_name,"
        " m.start_at, m.end_at, a.mode, a.interpreter_language, NULL, a.first_name, a.last_name, a.phone,"
        " a.customer_number, a.household_number, a.emergency, a.language, NULL, NULL, a.location_id,"
        " a.location_name, a.start_at"
        " FROM moved_away m JOIN appointments a ON a.id = m.appointment_id"
        " WHERE m.location_id = $1 AND m.day = $2 AND NOT (a.location_id = $1 AND a.day = $2)"
        " ORDER BY start_at, service_point, reference",
        location_id,
        day,
    )


async def delete_expired_lists(conn: asyncpg.Connection, now: datetime, today: date) -> int:
    """R33: the files of lists whose day is over are deleted; the row keeps the facts, not the data.
    A file of a day after `today` is not kept either (the previous release's pods stored them during the
    rolling update, after migration 004): it goes, and its row is "not generated" again, so that the
    day's own list is still made at 06:00 (R22)."""
    result = await conn.execute(
        "UPDATE day_lists SET content = NULL, stale = false, deleted_at = $1"
        " WHERE content IS NOT NULL AND delete_after <= $1",
        now,
    )
    ahead = await conn.execute(
        "UPDATE day_lists SET content = NULL, generated_at = NULL, stale = false, appointment_count = NULL"
        " WHERE content IS NOT NULL AND day > $1 AND deleted_at IS NULL",
        today,
    )
    return int(result.split()[-1]) + int(ahead.split()[-1])


async def day_lists_of(conn: asyncpg.Pool, location_id: str, first: date, last: date) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT location_id, day, generated_at, generation, appointment_count,"
        " content IS NOT NULL AS available, delete_after, deleted_at FROM day_lists"
        " WHERE location_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day",
        location_id,
        first,
        last,
    )


# --- the retention job and its report -------------------------------------------------------------------


async def claim_job(conn: asyncpg.Connection, job: str, now: datetime, interval_seconds: float) -> bool:
    """Claim a periodic job for this interval; another replica that asks in the same interval gets False
    (the row lock makes the second one wait and then see the new time, I7)."""
    claimed = await conn.fetchval(
        "INSERT INTO job_runs (job, last_run_at) VALUES ($1, $2)"
        " ON CONFLICT (job) DO UPDATE SET last_run_at = EXCLUDED.last_run_at"
        " WHERE job_runs.last_run_at <= $2 - make_interval(secs => $3) RETURNING true",
        job,
        now,
        interval_seconds,
    )
    return bool(claimed)


async def last_job_run(conn: asyncpg.Connection, job: str) -> datetime | None:
    value: datetime | None = await conn.fetchval("SELECT last_run_at FROM job_runs WHERE job = $1", job)
    return value


async def insert_retention_run(
    conn: asyncpg.Connection,
    *,
    service: str,
    job: str,
    started_at: datetime,
    finished_at: datetime,
    retention_days: int,
    cutoff: datetime | None,
    counts: dict[str, int],
    event_id: Any = None,
) -> None:
    await conn.execute(
        "INSERT INTO retention_runs (service, job, started_at, finished_at, retention_days, cutoff, counts,"
        " event_id) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) ON CONFLICT (event_id) DO NOTHING",
        service,
        job,
        started_at,
        finished_at,
        retention_days,
        cutoff,
        counts,
        event_id,
    )


async def retention_runs(conn: asyncpg.Pool, since: datetime, limit: int) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT service, job, started_at, finished_at, retention_days, cutoff, counts FROM retention_runs"
        " WHERE finished_at >= $1 ORDER BY finished_at DESC, id DESC LIMIT $2",
        since,
        limit,
    )


async def retention_totals(conn: asyncpg.Pool, since: datetime) -> tuple[list[Row], list[Row]]:
    """Per service: runs and the last one; and the sum of each count."""
    runs = await conn.fetch(
        "SELECT service, count(*) AS runs, max(finished_at) AS last_run_at FROM retention_runs"
        " WHERE finished_at >= $1 GROUP BY service ORDER BY service",
        since,
    )
    sums = await conn.fetch(
        "SELECT r.service, e.key, sum(e.value::bigint) AS total FROM retention_runs r,"
        " jsonb_each_text(r.counts) AS e WHERE r.finished_at >= $1 GROUP BY r.service, e.key",
        since,
    )
    return runs, sums


async def delete_retention_runs_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    result = await conn.execute("DELETE FROM retention_runs WHERE finished_at < $1", cutoff)
    return int(result.split()[-1])
