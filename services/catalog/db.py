"""Every SQL statement of the catalog service. Driver errors become domain errors here only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any, TypeAlias

import asyncpg

from shared.errors import ConflictError, NotFoundError, ValidationError

Row: TypeAlias = asyncpg.Record


async def _fetch(conn: asyncpg.Connection, query: str, *args: object) -> list[Row]:
    rows: list[Row] = await conn.fetch(query, *args)
    return rows


def _field_error(message: str, field: str, kind: str = "value_error") -> ValidationError:
    return ValidationError(message, details=[{"field": field, "message": message, "type": kind}])


# --- locations --------------------------------------------------------------------------------------

LOCATION_COLUMNS = (
    "id, name, street, postcode, city, phone, hotline, active, sort_order, lead_min_minutes,"
    " lead_max_days, block_last_days, block_first_days, revision, snapshot_hash"
)


async def list_locations(conn: asyncpg.Connection, *, only_active: bool) -> list[Row]:
    return await _fetch(
        conn,
        f"SELECT {LOCATION_COLUMNS} FROM locations WHERE active OR NOT $1 ORDER BY sort_order, id",  # noqa: S608 -- a constant column list
        only_active,
    )


async def find_location(conn: asyncpg.Connection, location_id: str) -> Row | None:
    return await conn.fetchrow(f"SELECT {LOCATION_COLUMNS} FROM locations WHERE id = $1", location_id)  # noqa: S608 -- a constant column list


async def lock_location(conn: asyncpg.Connection, location_id: str) -> Row:
    """The location's row, locked until the end of the transaction: changes of one location (and so its
    revisions) are serialised."""
    row = await conn.fetchrow(
        f"SELECT {LOCATION_COLUMNS} FROM locations WHERE id = $1 FOR UPDATE",  # noqa: S608 -- a constant column list
        location_id,
    )
    if row is None:
        raise NotFoundError("No such location.", details=[{"field": "location_id", "message": "unknown"}])
    return row


async def lock_locations(conn: asyncpg.Connection, location_ids: Sequence[str]) -> list[str]:
    """Lock several locations in id order (the same order everywhere, so two changes cannot deadlock)."""
    rows = await conn.fetch(
        "SELECT id FROM locations WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", list(location_ids)
    )
    return [r["id"] for r in rows]


async def insert_location(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    try:
        await conn.execute(
            "INSERT INTO locations (id, name, street, postcode, city, phone, hotline, active, sort_order)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            values["id"],
            values["name"],
            values["street"],
            values["postcode"],
            values["city"],
            values.get("phone"),
            values["hotline"],
            values.get("active", True),
            values.get("sort_order", 100),
        )
    except asyncpg.UniqueViolationError:
        raise ConflictError(
            "A location with this id exists.", details=[{"field": "id", "message": "already exists"}]
        ) from None


_LOCATION_UPDATABLE = {
    "name",
    "street",
    "postcode",
    "city",
    "phone",
    "hotline",
    "active",
    "sort_order",
    "lead_min_minutes",
    "lead_max_days",
    "block_last_days",
    "block_first_days",
}


async def update_location(conn: asyncpg.Connection, location_id: str, values: dict[str, Any]) -> None:
    columns = [c for c in values if c in _LOCATION_UPDATABLE]
    if not columns:
        return
    assignments = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
    await conn.execute(
        f"UPDATE locations SET {assignments}, updated_at = now() WHERE id = $1",  # noqa: S608 -- columns from a fixed set
        location_id,
        *[values[c] for c in columns],
    )


async def record_published(
    conn: asyncpg.Connection, location_id: str, revision: int, fingerprint: str
) -> None:
    await conn.execute(
        "UPDATE locations SET revision = $2, snapshot_hash = $3 WHERE id = $1",
        location_id,
        revision,
        fingerprint,
    )


# --- groups -----------------------------------------------------------------------------------------

GROUP_COLUMNS = "id, location_id, kind, name, service_points, active, sort_order"


async def groups_of(conn: asyncpg.Connection, location_id: str) -> list[Row]:
    return await _fetch(
        conn,
        f"SELECT {GROUP_COLUMNS} FROM service_point_groups WHERE location_id = $1 ORDER BY sort_order, id",  # noqa: S608 -- a constant column list
        location_id,
    )


async def find_group(conn: asyncpg.Connection, group_id: str) -> Row | None:
    return await conn.fetchrow(f"SELECT {GROUP_COLUMNS} FROM service_point_groups WHERE id = $1", group_id)  # noqa: S608 -- a constant column list


async def _check_not_retired_elsewhere(conn: asyncpg.Connection, group_id: str, location_id: str) -> None:
    retired_at = await conn.fetchval("SELECT location_id FROM retired_group_ids WHERE id = $1", group_id)
    if retired_at is not None and retired_at != location_id:
        raise ConflictError(
            "A deleted group of another location had this id; choose another.",
            details=[{"field": "id", "message": "was used at another location"}],
        )


# Deleting groups keeps their ids bound to their location (migration 003).
_DELETE_AND_RETIRE = (
    "WITH gone AS (DELETE FROM service_point_groups WHERE {where} RETURNING id, location_id)"
    " INSERT INTO retired_group_ids (id, location_id) SELECT id, location_id FROM gone"
    " ON CONFLICT (id) DO NOTHING"
)


async def insert_group(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await _check_not_retired_elsewhere(conn, values["id"], values["location_id"])
    try:
        await conn.execute(
            "INSERT INTO service_point_groups"
            " (id, location_id, kind, name, service_points, active, sort_order)"
            " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
            values["id"],
            values["location_id"],
            values["kind"],
            values["name"],
            values["service_points"],
            values.get("active", True),
            values.get("sort_order", 100),
        )
    except asyncpg.UniqueViolationError:
        raise ConflictError(
            "A group with this id exists.", details=[{"field": "id", "message": "already exists"}]
        ) from None


async def update_group(conn: asyncpg.Connection, group_id: str, values: dict[str, Any]) -> None:
    allowed = {"name", "service_points", "active", "sort_order"}
    columns = [c for c in values if c in allowed]
    if not columns:
        return
    assignments = ", ".join(
        f"{c} = ${i + 2}::jsonb" if c == "name" else f"{c} = ${i + 2}" for i, c in enumerate(columns)
    )
    await conn.execute(
        f"UPDATE service_point_groups SET {assignments} WHERE id = $1",  # noqa: S608 -- columns from a fixed set
        group_id,
        *[values[c] for c in columns],
    )


async def delete_group(conn: asyncpg.Connection, group_id: str) -> None:
    try:
        await conn.execute(_DELETE_AND_RETIRE.format(where="id = $1"), group_id)
    except asyncpg.ForeignKeyViolationError:
        raise ConflictError(
            "The group still offers concerns; move or remove them first.",
            details=[{"field": "group_id", "message": "still offers concerns"}],
        ) from None


async def max_window_points(conn: asyncpg.Connection, group_id: str) -> int:
    value = await conn.fetchval("SELECT max(service_points) FROM windows WHERE group_id = $1", group_id)
    return int(value or 0)


# --- concerns and offers ----------------------------------------------------------------------------

CONCERN_COLUMNS = (
    "id, group_kinds, name, info, links, documents, emergency, sensitive, default_duration_minutes,"
    " active, sort_order"
)


async def list_concerns(conn: asyncpg.Connection) -> list[Row]:
    return await _fetch(conn, f"SELECT {CONCERN_COLUMNS} FROM concerns ORDER BY sort_order, id")  # noqa: S608 -- a constant column list


async def find_concern(conn: asyncpg.Connection, concern_id: str, *, lock: bool = False) -> Row | None:
    """The concern; with `lock`, its row locked until the end of the transaction (two changes of it in
    turn: the second sees the first, so its version check holds)."""
    locking = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT {CONCERN_COLUMNS} FROM concerns WHERE id = $1{locking}", concern_id)  # noqa: S608 -- a constant column list


async def concern_ids(conn: asyncpg.Connection) -> set[str]:
    return {r["id"] for r in await conn.fetch("SELECT id FROM concerns")}


async def insert_concern(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    try:
        await conn.execute(
            "INSERT INTO concerns (id, group_kinds, name, info, links, documents, emergency, sensitive,"
            " default_duration_minutes, active, sort_order)"
            " VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9, $10, $11)",
            values["id"],
            values["group_kinds"],
            values["name"],
            values["info"],
            values["links"],
            values["documents"],
            values["emergency"],
            values["sensitive"],
            values["default_duration_minutes"],
            values.get("active", True),
            values.get("sort_order", 100),
        )
    except asyncpg.UniqueViolationError:
        raise ConflictError(
            "A concern with this id exists.", details=[{"field": "id", "message": "already exists"}]
        ) from None


_JSON_CONCERN_COLUMNS = {"name", "info", "links", "documents"}


async def update_concern(conn: asyncpg.Connection, concern_id: str, values: dict[str, Any]) -> None:
    allowed = _JSON_CONCERN_COLUMNS | {
        "group_kinds",
        "emergency",
        "sensitive",
        "default_duration_minutes",
        "active",
        "sort_order",
    }
    columns = [c for c in values if c in allowed]
    if not columns:
        return
    assignments = ", ".join(
        f"{c} = ${i + 2}::jsonb" if c in _JSON_CONCERN_COLUMNS else f"{c} = ${i + 2}"
        for i, c in enumerate(columns)
    )
    await conn.execute(
        f"UPDATE concerns SET {assignments} WHERE id = $1",  # noqa: S608 -- columns from a fixed set
        concern_id,
        *[values[c] for c in columns],
    )


async def locations_offering(conn: asyncpg.Connection, concern_id: str) -> list[str]:
    rows = await conn.fetch("SELECT DISTINCT location_id FROM offers WHERE concern_id = $1", concern_id)
    return sorted(r["location_id"] for r in rows)


async def offers_of(conn: asyncpg.Connection, location_id: str) -> list[Row]:
    """The location's offers joined with their concerns and groups, in display order."""
    return await _fetch(
        conn,
        "SELECT o.concern_id, o.group_id, o.duration_minutes, o.modes, o.active AS offer_active,"
        " c.name, c.info, c.links, c.documents, c.emergency, c.sensitive, c.active AS concern_active,"
        " c.sort_order, c.group_kinds, g.kind AS group_kind, g.name AS group_name, g.active AS group_active"
        " FROM offers o JOIN concerns c ON c.id = o.concern_id"
        " JOIN service_point_groups g ON g.id = o.group_id"
        " WHERE o.location_id = $1 ORDER BY g.sort_order, g.id, c.sort_order, c.id",
        location_id,
    )


async def upsert_offer(
    conn: asyncpg.Connection, location_id: str, concern_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO offers (location_id, concern_id, group_id, duration_minutes, modes, active)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (location_id, concern_id) DO UPDATE SET group_id = EXCLUDED.group_id,"
        " duration_minutes = EXCLUDED.duration_minutes, modes = EXCLUDED.modes, active = EXCLUDED.active",
        location_id,
        concern_id,
        values["group_id"],
        values["duration_minutes"],
        values["modes"],
        values.get("active", True),
    )


async def delete_offer(conn: asyncpg.Connection, location_id: str, concern_id: str) -> bool:
    result = await conn.execute(
        "DELETE FROM offers WHERE location_id = $1 AND concern_id = $2", location_id, concern_id
    )
    return bool(result != "DELETE 0")


# --- windows ----------------------------------------------------------------------------------------

WINDOW_COLUMNS = (
    "w.id, w.group_id, w.weekday, w.start_time, w.end_time, w.service_points, w.evening, w.valid_from,"
    " w.valid_until"
)


async def windows_of(conn: asyncpg.Connection, location_id: str) -> list[Row]:
    return await _fetch(
        conn,
        f"SELECT {WINDOW_COLUMNS}, g.location_id FROM windows w"  # noqa: S608 -- a constant column list
        " JOIN service_point_groups g ON g.id = w.group_id"
        " WHERE g.location_id = $1 ORDER BY g.sort_order, g.id, w.weekday, w.start_time, w.id",
        location_id,
    )


async def find_window(conn: asyncpg.Connection, window_id: int) -> Row | None:
    return await conn.fetchrow(
        f"SELECT {WINDOW_COLUMNS}, g.location_id FROM windows w"  # noqa: S608 -- a constant column list
        " JOIN service_point_groups g ON g.id = w.group_id WHERE w.id = $1",
        window_id,
    )


def _window_conflict() -> ValidationError:
    return _field_error(
        "The window overlaps another window of the group on that weekday.", "start", "window_overlap"
    )


async def insert_window(conn: asyncpg.Connection, values: dict[str, Any]) -> int:
    try:
        window_id: int = await conn.fetchval(
            "INSERT INTO windows (group_id, weekday, start_time, end_time, service_points, evening,"
            " valid_from, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            values["group_id"],
            values["weekday"],
            values["start"],
            values["end"],
            values["service_points"],
            values["evening"],
            values.get("valid_from"),
            values.get("valid_until"),
        )
    except asyncpg.ExclusionViolationError:
        raise _window_conflict() from None
    return window_id


async def update_window(conn: asyncpg.Connection, window_id: int, values: dict[str, Any]) -> None:
    try:
        await conn.execute(
            "UPDATE windows SET weekday = $2, start_time = $3, end_time = $4, service_points = $5,"
            " evening = $6, valid_from = $7, valid_until = $8 WHERE id = $1",
            window_id,
            values["weekday"],
            values["start"],
            values["end"],
            values["service_points"],
            values["evening"],
            values.get("valid_from"),
            values.get("valid_until"),
        )
    except asyncpg.ExclusionViolationError:
        raise _window_conflict() from None


async def delete_window(conn: asyncpg.Connection, window_id: int) -> None:
    await conn.execute("DELETE FROM windows WHERE id = $1", window_id)


async def delete_windows(conn: asyncpg.Connection, window_ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM windows WHERE id = ANY($1::bigint[])", list(window_ids))


# --- closures ---------------------------------------------------------------------------------------


async def closures_of(conn: asyncpg.Connection, location_id: str) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT id, location_id, group_id, first_day, last_day, reason, service_points_left FROM closures"
        " WHERE location_id = $1 ORDER BY first_day, id",
        location_id,
    )


async def find_closure(conn: asyncpg.Connection, closure_id: int) -> Row | None:
    return await conn.fetchrow(
        "SELECT id, location_id, group_id, first_day, last_day, reason, service_points_left FROM closures"
        " WHERE id = $1",
        closure_id,
    )


async def find_same_closure(
    conn: asyncpg.Connection,
    location_id: str,
    group_id: str | None,
    first: date,
    last: date,
    points_left: int,
) -> int | None:
    """An existing closure of exactly these days, group and capacity (so that saving it twice adds none)."""
    found: int | None = await conn.fetchval(
        "SELECT id FROM closures WHERE location_id = $1 AND group_id IS NOT DISTINCT FROM $2"
        " AND first_day = $3 AND last_day = $4 AND service_points_left = $5 ORDER BY id LIMIT 1",
        location_id,
        group_id,
        first,
        last,
        points_left,
    )
    return found


async def insert_closure(
    conn: asyncpg.Connection,
    location_id: str,
    group_id: str | None,
    first: date,
    last: date,
    reason: str,
    points_left: int,
) -> int:
    closure_id: int = await conn.fetchval(
        "INSERT INTO closures (location_id, group_id, first_day, last_day, reason, service_points_left)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        location_id,
        group_id,
        first,
        last,
        reason,
        points_left,
    )
    return closure_id


async def delete_closures(conn: asyncpg.Connection, closure_ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM closures WHERE id = ANY($1::bigint[])", list(closure_ids))


# --- policy approvals -------------------------------------------------------------------------------


async def approvals_of(conn: asyncpg.Connection, location_id: str | None) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT id, location_id, rule, reference, approved_by, valid_from, valid_until, note, recorded_by,"
        " recorded_at FROM policy_approvals WHERE $1::text IS NULL OR location_id = $1"
        " ORDER BY location_id, valid_from, id",
        location_id,
    )


async def insert_approval(conn: asyncpg.Connection, values: dict[str, Any]) -> int:
    approval_id: int = await conn.fetchval(
        "INSERT INTO policy_approvals (location_id, rule, reference, approved_by, valid_from, valid_until,"
        " note, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        values["location_id"],
        values["rule"],
        values["reference"],
        values["approved_by"],
        values["valid_from"],
        values["valid_until"],
        values["note"],
        values["recorded_by"],
    )
    return approval_id


# --- allow-list -------------------------------------------------------------------------------------


async def allow_list(conn: asyncpg.Connection) -> list[Row]:
    return await _fetch(conn, "SELECT entry, note, added_by, added_at FROM allow_list ORDER BY entry")


async def allow_list_state(conn: asyncpg.Connection) -> tuple[int, str | None]:
    row = await conn.fetchrow("SELECT revision, list_hash FROM allow_list_state")
    return (int(row["revision"]), row["list_hash"]) if row is not None else (0, None)


async def lock_allow_list(conn: asyncpg.Connection) -> None:
    """Serialise allow-list changes (and so their revisions) on the state row."""
    await conn.execute(
        "INSERT INTO allow_list_state (singleton, revision) VALUES (true, 0) ON CONFLICT DO NOTHING"
    )
    await conn.execute("SELECT 1 FROM allow_list_state FOR UPDATE")


async def insert_allow_entry(conn: asyncpg.Connection, entry: str, note: str, added_by: str | None) -> bool:
    result = await conn.execute(
        "INSERT INTO allow_list (entry, note, added_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (entry) DO UPDATE SET note = EXCLUDED.note WHERE allow_list.note <> EXCLUDED.note",
        entry,
        note,
        added_by,
    )
    return bool(result != "INSERT 0 0")


async def delete_allow_entry(conn: asyncpg.Connection, entry: str) -> bool:
    result = await conn.execute("DELETE FROM allow_list WHERE entry = $1", entry)
    return bool(result != "DELETE 0")


async def record_allow_list_published(conn: asyncpg.Connection, revision: int, list_hash: str) -> None:
    await conn.execute("UPDATE allow_list_state SET revision = $1, list_hash = $2", revision, list_hash)


# --- the finder's tables ----------------------------------------------------------------------------

STREET_COLUMNS = (
    "id, street, street_key, postcode, first_number, last_number, parity, district, location_id,"
    " other_jobcenter_id"
)


async def streets_by_key(conn: asyncpg.Connection, key: str) -> list[Row]:
    return await _fetch(
        conn,
        f"SELECT {STREET_COLUMNS} FROM finder_streets WHERE street_key = $1 ORDER BY id",  # noqa: S608 -- a constant column list
        key,
    )


async def street_names(conn: asyncpg.Connection) -> list[Row]:
    return await _fetch(conn, "SELECT DISTINCT street, street_key FROM finder_streets")


async def list_streets(
    conn: asyncpg.Connection, *, location_id: str | None, district: str | None, prefix: str | None, limit: int
) -> list[Row]:
    return await _fetch(
        conn,
        f"SELECT {STREET_COLUMNS} FROM finder_streets"  # noqa: S608 -- a constant column list
        " WHERE ($1::text IS NULL OR location_id = $1) AND ($2::text IS NULL OR district = $2)"
        " AND ($3::text IS NULL OR street_key LIKE $3 || '%')"
        " ORDER BY street_key, first_number NULLS FIRST, id LIMIT $4",
        location_id,
        district,
        prefix,
        limit,
    )


async def insert_street(conn: asyncpg.Connection, values: dict[str, Any]) -> int:
    street_id: int = await conn.fetchval(
        "INSERT INTO finder_streets (street, street_key, postcode, first_number, last_number, parity,"
        " district, location_id, other_jobcenter_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        values["street"],
        values["street_key"],
        values.get("postcode"),
        values.get("first_number"),
        values.get("last_number"),
        values.get("parity", "all"),
        values.get("district", ""),
        values.get("location_id"),
        values.get("other_jobcenter_id"),
    )
    return street_id


async def find_street(conn: asyncpg.Connection, street_id: int) -> Row | None:
    return await conn.fetchrow(f"SELECT {STREET_COLUMNS} FROM finder_streets WHERE id = $1", street_id)  # noqa: S608 -- a constant column list


async def delete_streets(conn: asyncpg.Connection, street_ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM finder_streets WHERE id = ANY($1::bigint[])", list(street_ids))


async def all_streets(conn: asyncpg.Connection) -> list[Row]:
    return await _fetch(conn, f"SELECT {STREET_COLUMNS} FROM finder_streets ORDER BY id")  # noqa: S608 -- a constant column list


async def other_jobcenters(conn: asyncpg.Connection) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT j.id, j.name, j.hotline, j.address, j.website, j.verified,"
        " coalesce(array_agg(p.postcode ORDER BY p.postcode) FILTER (WHERE p.postcode IS NOT NULL), '{}')"
        " AS postcodes,"
        " coalesce(array_agg(DISTINCT p.municipality) FILTER (WHERE p.municipality IS NOT NULL), '{}')"
        " AS municipalities"
        " FROM other_jobcenters j LEFT JOIN finder_postcodes p ON p.other_jobcenter_id = j.id"
        " GROUP BY j.id ORDER BY j.name",
    )


async def find_other_jobcenter(conn: asyncpg.Connection, jobcenter_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT id, name, hotline, address, website, verified FROM other_jobcenters WHERE id = $1",
        jobcenter_id,
    )


async def other_jobcenter_for_postcode(conn: asyncpg.Connection, postcode: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT j.id, j.name, j.hotline, j.address, j.website, j.verified, p.municipality"
        " FROM finder_postcodes p JOIN other_jobcenters j ON j.id = p.other_jobcenter_id"
        " WHERE p.postcode = $1",
        postcode,
    )


async def upsert_other_jobcenter(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO other_jobcenters (id, name, hotline, address, website, verified)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
        " hotline = EXCLUDED.hotline, address = EXCLUDED.address, website = EXCLUDED.website,"
        " verified = EXCLUDED.verified"
        " WHERE (other_jobcenters.name, other_jobcenters.hotline, other_jobcenters.address,"
        " other_jobcenters.website, other_jobcenters.verified) IS DISTINCT FROM"
        " (EXCLUDED.name, EXCLUDED.hotline, EXCLUDED.address, EXCLUDED.website, EXCLUDED.verified)",
        values["id"],
        values["name"],
        values["hotline"],
        values.get("address", ""),
        values.get("website", ""),
        values.get("verified", False),
    )


async def set_postcodes(conn: asyncpg.Connection, jobcenter_id: str, postcodes: dict[str, str]) -> None:
    """Make the jobcenter's postcodes exactly `postcodes` (postcode -> municipality)."""
    await conn.execute(
        "DELETE FROM finder_postcodes WHERE other_jobcenter_id = $1 AND NOT (postcode = ANY($2::text[]))",
        jobcenter_id,
        list(postcodes),
    )
    for postcode, municipality in postcodes.items():
        try:
            await conn.execute(
                "INSERT INTO finder_postcodes (postcode, municipality, other_jobcenter_id)"
                " VALUES ($1, $2, $3)"
                " ON CONFLICT (postcode) DO UPDATE SET municipality = EXCLUDED.municipality,"
                " other_jobcenter_id = EXCLUDED.other_jobcenter_id"
                " WHERE (finder_postcodes.municipality, finder_postcodes.other_jobcenter_id) IS DISTINCT FROM"
                " (EXCLUDED.municipality, EXCLUDED.other_jobcenter_id)",
                postcode,
                municipality,
                jobcenter_id,
            )
        except asyncpg.CheckViolationError:
            raise _field_error("A postcode has five digits.", "postcodes") from None


# --- change log and meta ----------------------------------------------------------------------------


async def log_change(
    conn: asyncpg.Connection,
    *,
    at: datetime,
    staff: str | None,
    action: str,
    entity: str,
    entity_id: str,
    location_id: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO change_log (at, staff, action, entity, entity_id, location_id, details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        at,
        staff,
        action,
        entity,
        entity_id,
        location_id,
        json.loads(json.dumps(details or {}, default=_json_default)),
    )


def _json_default(value: object) -> str:
    if isinstance(value, date | time | datetime):
        return value.isoformat()
    return str(value)


async def changes(conn: asyncpg.Connection, *, location_id: str | None, limit: int) -> list[Row]:
    return await _fetch(
        conn,
        "SELECT id, at, staff, action, entity, entity_id, location_id, details FROM change_log"
        " WHERE $1::text IS NULL OR location_id = $1 ORDER BY id DESC LIMIT $2",
        location_id,
        limit,
    )


async def get_meta(conn: asyncpg.Connection, key: str) -> str | None:
    value: str | None = await conn.fetchval("SELECT value FROM catalog_meta WHERE key = $1", key)
    return value


async def set_meta(conn: asyncpg.Connection, key: str, value: str) -> None:
    await conn.execute(
        "INSERT INTO catalog_meta (key, value) VALUES ($1, $2)"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        key,
        value,
    )


def raise_for_integrity(exc: asyncpg.PostgresError) -> None:
    """Turn a check or key violation that a friendly check missed into a 422 (never a 500)."""
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        raise ValidationError(
            "A referenced item does not exist.", details=[{"field": "body", "message": "unknown reference"}]
        ) from None
    if isinstance(exc, asyncpg.CheckViolationError | asyncpg.NotNullViolationError):
        raise ValidationError(
            "A value is out of range.", details=[{"field": "body", "message": "out of range"}]
        ) from None
    raise exc


# --- declarative sync (the demo loader) -------------------------------------------------------------


async def upsert_location(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    """Create the location or bring it to `values`; a row that already matches is left alone."""
    await conn.execute(
        "INSERT INTO locations (id, name, street, postcode, city, phone, hotline, active, sort_order,"
        " lead_min_minutes, lead_max_days, block_last_days, block_first_days)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $9, $10, $11, $12)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, street = EXCLUDED.street,"
        " postcode = EXCLUDED.postcode, city = EXCLUDED.city, phone = EXCLUDED.phone,"
        " hotline = EXCLUDED.hotline, active = true, sort_order = EXCLUDED.sort_order,"
        " lead_min_minutes = EXCLUDED.lead_min_minutes, lead_max_days = EXCLUDED.lead_max_days,"
        " block_last_days = EXCLUDED.block_last_days, block_first_days = EXCLUDED.block_first_days,"
        " updated_at = now()"
        " WHERE (locations.name, locations.street, locations.postcode, locations.city, locations.phone,"
        " locations.hotline, locations.active, locations.sort_order, locations.lead_min_minutes,"
        " locations.lead_max_days, locations.block_last_days, locations.block_first_days)"
        " IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.street, EXCLUDED.postcode, EXCLUDED.city,"
        " EXCLUDED.phone, EXCLUDED.hotline, true, EXCLUDED.sort_order, EXCLUDED.lead_min_minutes,"
        " EXCLUDED.lead_max_days, EXCLUDED.block_last_days, EXCLUDED.block_first_days)",
        values["id"],
        values["name"],
        values["street"],
        values["postcode"],
        values["city"],
        values["phone"],
        values["hotline"],
        values["sort_order"],
        values["lead_min_minutes"],
        values["lead_max_days"],
        values["block_last_days"],
        values["block_first_days"],
    )


async def upsert_group(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    try:
        await conn.execute(
            "INSERT INTO service_point_groups"
            " (id, location_id, kind, name, service_points, active, sort_order)"
            " VALUES ($1, $2, $3, $4::jsonb, $5, true, $6)"
            " ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,"
            " service_points = EXCLUDED.service_points, active = true, sort_order = EXCLUDED.sort_order"
            " WHERE service_point_groups.location_id = EXCLUDED.location_id AND"
            " (service_point_groups.kind, service_point_groups.name, service_point_groups.service_points,"
            " service_point_groups.active, service_point_groups.sort_order) IS DISTINCT FROM"
            " (EXCLUDED.kind, EXCLUDED.name, EXCLUDED.service_points, true, EXCLUDED.sort_order)",
            values["id"],
            values["location_id"],
            values["kind"],
            values["name"],
            values["service_points"],
            values["sort_order"],
        )
    except asyncpg.CheckViolationError:
        raise _field_error("The group is invalid.", "service_points") from None


async def upsert_concern(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO concerns (id, group_kinds, name, info, links, documents, emergency, sensitive,"
        " default_duration_minutes, active, sort_order)"
        " VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9, true, $10)"
        " ON CONFLICT (id) DO UPDATE SET group_kinds = EXCLUDED.group_kinds, name = EXCLUDED.name,"
        " info = EXCLUDED.info, links = EXCLUDED.links, documents = EXCLUDED.documents,"
        " emergency = EXCLUDED.emergency, sensitive = EXCLUDED.sensitive,"
        " default_duration_minutes = EXCLUDED.default_duration_minutes, active = true,"
        " sort_order = EXCLUDED.sort_order"
        " WHERE (concerns.group_kinds, concerns.name, concerns.info, concerns.links, concerns.documents,"
        " concerns.emergency, concerns.sensitive, concerns.default_duration_minutes, concerns.active,"
        " concerns.sort_order) IS DISTINCT FROM (EXCLUDED.group_kinds, EXCLUDED.name, EXCLUDED.info,"
        " EXCLUDED.links, EXCLUDED.documents, EXCLUDED.emergency, EXCLUDED.sensitive,"
        " EXCLUDED.default_duration_minutes, true, EXCLUDED.sort_order)",
        values["id"],
        values["group_kinds"],
        values["name"],
        values["info"],
        values["links"],
        values["documents"],
        values["emergency"],
        values["sensitive"],
        values["default_duration_minutes"],
        values["sort_order"],
    )


async def delete_offers_outside(
    conn: asyncpg.Connection, location_id: str, concerns: Sequence[str], groups: Sequence[str]
) -> None:
    """Delete the location's offers of other concerns, or by other groups."""
    await conn.execute(
        "DELETE FROM offers WHERE location_id = $1"
        " AND NOT (concern_id = ANY($2::text[]) AND group_id = ANY($3::text[]))",
        location_id,
        list(concerns),
        list(groups),
    )


async def delete_groups_except(conn: asyncpg.Connection, location_id: str, keep: Sequence[str]) -> None:
    await conn.execute(
        _DELETE_AND_RETIRE.format(where="location_id = $1 AND NOT (id = ANY($2::text[]))"),
        location_id,
        list(keep),
    )


async def sync_offer(
    conn: asyncpg.Connection, location_id: str, concern_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO offers (location_id, concern_id, group_id, duration_minutes, modes, active)"
        " VALUES ($1, $2, $3, $4, $5, true)"
        " ON CONFLICT (location_id, concern_id) DO UPDATE SET group_id = EXCLUDED.group_id,"
        " duration_minutes = EXCLUDED.duration_minutes, modes = EXCLUDED.modes, active = true"
        " WHERE (offers.group_id, offers.duration_minutes, offers.modes, offers.active)"
        " IS DISTINCT FROM (EXCLUDED.group_id, EXCLUDED.duration_minutes, EXCLUDED.modes, true)",
        location_id,
        concern_id,
        values["group_id"],
        values["duration_minutes"],
        values["modes"],
    )
