"""The read-only SQL of the statistics (R35) and the booking-pattern report (R48). Statistics read only the
columns that stay after anonymisation, so erasing personal data does not change them (R34)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import asyncpg

from services.reporting.domain import CANCELLED_BY_LABELS, LEAD_TIME_BUCKETS, OUTCOME_LABELS, WAITING_LABELS

Row = Any  # asyncpg.Record: asyncpg ships no types
Conn = Any  # an asyncpg connection or pool


async def _fetch(conn: Any, sql: str, *args: Any) -> list[Row]:
    rows: list[Row] = await conn.fetch(sql, *args)
    return rows


async def _fetchrow(conn: Any, sql: str, *args: Any) -> Row | None:
    row: Row | None = await conn.fetchrow(sql, *args)
    return row


@asynccontextmanager
async def snapshot(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection for every query of a report: one read-only snapshot, so that the sheets count the
    same appointments while events arrive, and no JIT compilation. Over a long period PostgreSQL would
    compile the figures' query to machine code first, which costs seconds on each request and saves
    nothing on a query run once (8 s instead of 4 s for a year of 300,000 appointments)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL jit = off")
        yield conn


# Dimensions of the breakdowns and the GROUPING SETS that compute them in one pass.
_GROUPING = (
    "GROUPING SETS ((), (location_id), (location_id, group_id), (concern_id), (mode), (channel), (day),"
    " (week), (evening))"
)


def _bucket_filters() -> str:
    parts, lower = [], None
    for index, (_, upper) in enumerate(LEAD_TIME_BUCKETS):
        cond = []
        if lower is not None:
            cond.append(f"lead_hours >= {lower}")
        if upper is not None:
            cond.append(f"lead_hours < {upper}")
        parts.append(f"count(*) FILTER (WHERE {' AND '.join(cond) or 'true'}) AS lead_{index}")
        lower = upper
    return ", ".join(parts)


_COUNTS = ", ".join(
    [
        f"count(*) FILTER (WHERE cancelled_by = '{k}' AND NOT handed_over) AS cancelled_by_{k}"
        for k in CANCELLED_BY_LABELS
    ]
    + [f"count(*) FILTER (WHERE outcome = '{k}') AS outcome_{k}" for k in OUTCOME_LABELS]
)

FIGURES_SQL = f"""
WITH a AS (
    SELECT location_id, group_id, concern_id, mode, channel, day, evening, status, cancelled_by, outcome,
           interpreter_language,
           -- R25: handed over to the responsible location without a free slot (a callback there): the
           -- concern was not cancelled, so it is counted apart from the cancellations.
           coalesce(status = 'cancelled' AND cancel_code = 'handed_over', false) AS handed_over,
           transferred_from IS NOT NULL AND transferred_from <> location_id AS transferred_in,
           to_char(day, 'IYYY-"W"IW') AS week,
           extract(epoch FROM start_at - booked_at) / 3600.0 AS lead_hours,
           extract(epoch FROM end_at - start_at) / 60.0 AS minutes
    FROM appointments
    WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR location_id = $3)
)
SELECT grouping(location_id) AS g_location, grouping(group_id) AS g_group,
       grouping(concern_id) AS g_concern, grouping(mode) AS g_mode, grouping(channel) AS g_channel,
       grouping(day) AS g_day, grouping(week) AS g_week, grouping(evening) AS g_evening,
       location_id, group_id, concern_id, mode, channel, day, week, evening,
       count(*) AS appointments,
       count(*) FILTER (WHERE status = 'cancelled' AND NOT handed_over) AS cancellations,
       {_COUNTS},
       count(*) FILTER (WHERE handed_over) AS handed_over,
       count(*) FILTER (WHERE transferred_in) AS transferred_in,
       count(*) FILTER (WHERE status = 'passed' AND outcome IS NULL) AS without_outcome,
       count(*) FILTER (WHERE interpreter_language IS NOT NULL) AS interpreter,
       coalesce(round(sum(minutes) FILTER (WHERE status <> 'cancelled')), 0)::bigint AS booked_minutes,
       avg(lead_hours) AS lead_mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_hours) AS lead_median,
       {_bucket_filters()}
FROM a
GROUP BY {_GROUPING}
"""  # noqa: S608 -- built from constants of this module, the values are parameters

CAPACITY_SQL = """
SELECT grouping(location_id) AS g_location, grouping(group_id) AS g_group, grouping(day) AS g_day,
       grouping(week) AS g_week, location_id, group_id, day, week, sum(offered_minutes)::bigint AS offered
FROM (SELECT location_id, group_id, day, offered_minutes, to_char(day, 'IYYY-"W"IW') AS week
      FROM capacity_days WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR location_id = $3)) c
GROUP BY GROUPING SETS ((), (location_id), (location_id, group_id), (day), (week))
"""


async def figures(conn: Conn, first: date, last: date, location: str | None) -> list[Row]:
    return await _fetch(conn, FIGURES_SQL, first, last, location)


async def transfers_out(conn: Conn, first: date, last: date, location: str | None) -> list[Row]:
    """Appointments of the period taken over by another location (R25), by the location they were booked
    at (directive 3.4: bookings at the wrong location); `location_id` NULL is the sum."""
    return await _fetch(
        conn,
        "SELECT transferred_from AS location_id, count(*) AS transferred_out FROM appointments"
        " WHERE day BETWEEN $1 AND $2 AND transferred_from IS NOT NULL AND transferred_from <> location_id"
        " AND ($3::text IS NULL OR transferred_from = $3)"
        " GROUP BY GROUPING SETS ((), (transferred_from))",
        first,
        last,
        location,
    )


async def capacity(conn: Conn, first: date, last: date, location: str | None) -> list[Row]:
    return await _fetch(conn, CAPACITY_SQL, first, last, location)


async def evening_capacity(conn: Conn, first: date, last: date, location: str | None) -> Row | None:
    """Minutes offered in the period, of them in evening windows (R12), and how many days' rows do not
    know their evening part (written before it was kept)."""
    return await _fetchrow(
        conn,
        "SELECT coalesce(sum(offered_minutes), 0)::bigint AS offered,"
        " coalesce(sum(evening_minutes), 0)::bigint AS evening,"
        " count(*) FILTER (WHERE evening_minutes IS NULL) AS unknown"
        " FROM capacity_days WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR location_id = $3)",
        first,
        last,
        location,
    )


async def concern_names(conn: Conn, first: date, last: date) -> list[Row]:
    """The name an appointment carried, for concerns no snapshot names any more."""
    return await _fetch(
        conn,
        "SELECT concern_id, max(concern_name) AS name FROM appointments WHERE day BETWEEN $1 AND $2"
        " GROUP BY concern_id",
        first,
        last,
    )


async def callbacks(
    conn: Conn, start: datetime, end: datetime, location: str | None, now: datetime
) -> list[Row]:
    return await _fetch(
        conn,
        # A withdrawn ticket (the outcome corrected away from callback) was no promise to keep: it is
        # counted apart, neither as created nor as closed in time (DA 2.3).
        "SELECT grouping(location_id) AS g_location, location_id,"
        " count(*) FILTER (WHERE NOT withdrawn) AS created,"
        " count(*) FILTER (WHERE NOT withdrawn AND closed_at <= due_at) AS closed_in_time,"
        " count(*) FILTER (WHERE NOT withdrawn AND closed_at > due_at) AS closed_late,"
        " count(*) FILTER (WHERE withdrawn) AS withdrawn,"
        " count(*) FILTER (WHERE closed_at IS NULL AND $4 <= due_at) AS open_in_time,"
        " count(*) FILTER (WHERE closed_at IS NULL AND $4 > due_at) AS open_overdue"
        " FROM (SELECT *, closed_at IS NOT NULL AND closed_as IS NOT DISTINCT FROM 'withdrawn' AS withdrawn"
        "   FROM callbacks) c WHERE created_at >= $1 AND created_at < $2"
        " AND ($3::text IS NULL OR location_id = $3)"
        " GROUP BY GROUPING SETS ((), (location_id))",
        start,
        end,
        location,
        now,
    )


async def mails(conn: Conn, start: datetime, end: datetime, location: str | None) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT m.kind, count(*) FILTER (WHERE m.outcome = 'sent') AS sent,"
        " count(*) FILTER (WHERE m.outcome = 'failed') AS failed"
        " FROM mails m LEFT JOIN appointments a ON a.id = m.appointment_id"
        " WHERE m.occurred_at >= $1 AND m.occurred_at < $2 AND ($3::text IS NULL OR a.location_id = $3)"
        " GROUP BY m.kind ORDER BY m.kind",
        start,
        end,
        location,
    )


_WAITING_SUMS = ", ".join(
    f"coalesce(sum(count) FILTER (WHERE event = '{k}'), 0)::bigint AS {k}" for k in WAITING_LABELS
)
WAITING_SQL = f"""
SELECT grouping(location_id) AS g_location, grouping(concern_id) AS g_concern, location_id, concern_id,
       {_WAITING_SUMS}
FROM waiting_counts
WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR location_id = $3)
GROUP BY GROUPING SETS ((), (location_id), (concern_id))
"""  # noqa: S608 -- built from constants of this module, the values are parameters


async def waiting(conn: Conn, first: date, last: date, location: str | None) -> list[Row]:
    """The waiting list's events (R45) in the period: in all, by location and by concern."""
    return await _fetch(conn, WAITING_SQL, first, last, location)


# --- booking patterns (R48) ---------------------------------------------------------------------------


async def networks(conn: Conn, start: datetime, end: datetime, minimum: int) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT client_network, count(*) AS bookings,"
        " count(*) FILTER (WHERE status = 'cancelled') AS cancellations,"
        " count(DISTINCT customer_key) AS customers, array_agg(DISTINCT location_id) AS locations,"
        " min(booked_at) AS first_booked_at, max(booked_at) AS last_booked_at"
        " FROM appointments WHERE client_network IS NOT NULL AND channel = 'online'"
        " AND booked_at >= $1 AND booked_at < $2"
        " GROUP BY client_network HAVING count(*) >= $3 ORDER BY count(*) DESC, client_network LIMIT 200",
        start,
        end,
        minimum,
    )


async def email_domains(conn: Conn, start: datetime, end: datetime, minimum: int) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT email_domain, count(*) AS bookings,"
        " count(*) FILTER (WHERE status = 'cancelled') AS cancellations,"
        " count(DISTINCT customer_key) AS customers"
        " FROM appointments WHERE email_domain IS NOT NULL AND booked_at >= $1 AND booked_at < $2"
        " GROUP BY email_domain HAVING count(*) >= $3 ORDER BY count(*) DESC, email_domain LIMIT 200",
        start,
        end,
        minimum,
    )


async def rebooking(conn: Conn, start: datetime, end: datetime, window_minutes: int) -> list[Row]:
    """Customers who booked again soon after cancelling (slot trading, R39/R48)."""
    return await _fetch(
        conn,
        "SELECT c.customer_key, count(DISTINCT (c.id, b.id)) AS cycles,"
        " array_agg(DISTINCT c.reference) || array_agg(DISTINCT b.reference) AS refs,"
        " array_agg(DISTINCT b.location_id) AS locations"
        " FROM appointments c JOIN appointments b ON b.customer_key = c.customer_key AND b.id <> c.id"
        " AND b.booked_at >= c.cancelled_at AND b.booked_at < c.cancelled_at + make_interval(mins => $3)"
        " WHERE c.cancelled_at >= $1 AND c.cancelled_at < $2 AND c.customer_key IS NOT NULL"
        " GROUP BY c.customer_key ORDER BY count(DISTINCT (c.id, b.id)) DESC, c.customer_key LIMIT 200",
        start,
        end,
        window_minutes,
    )


async def changes(conn: Conn, start: datetime, end: datetime, min_reschedules: int) -> list[Row]:
    return await _fetch(
        conn,
        "WITH r AS (SELECT appointment_id, event_type, customer_hash,"
        "   lag(customer_hash) OVER (PARTITION BY appointment_id ORDER BY revision) AS previous"
        "   FROM appointment_revisions)"
        " SELECT a.reference, a.location_id, a.booked_at,"
        " count(*) FILTER (WHERE r.event_type = 'appointment.rescheduled') AS reschedules,"
        " count(*) FILTER (WHERE r.previous IS NOT NULL AND r.previous <> r.customer_hash) AS data_changes"
        " FROM appointments a JOIN r ON r.appointment_id = a.id"
        " WHERE a.booked_at >= $1 AND a.booked_at < $2 AND a.anonymised_at IS NULL"
        " GROUP BY a.id, a.reference, a.location_id, a.booked_at"
        " HAVING count(*) FILTER (WHERE r.event_type = 'appointment.rescheduled') >= $3"
        " OR count(*) FILTER (WHERE r.previous IS NOT NULL AND r.previous <> r.customer_hash) > 0"
        " ORDER BY a.booked_at LIMIT 500",
        start,
        end,
        min_reschedules,
    )
