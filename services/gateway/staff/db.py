"""Every SQL statement of staff access: accounts, grants, sessions, API keys, and the audit log.

The audit log lives in the schema `gateway_audit`, which `scripts/setup.sh` creates with an owner of its
own: the gateway's role may read it and append to it, nothing else (invariant I5). An entry's client
address is personal data and lives beside it, in a table the gateway may only read: a trigger puts it
there as the entry is inserted, and a function of the owner deletes it after the retention period.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.gateway.staff.domain import GrantRow
from shared.errors import ConflictError, ValidationError
from shared.identity import Role

AUDIT_TABLE = "gateway_audit.audit_log"
AUDIT_ADDRESSES = "gateway_audit.audit_client_addresses"


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    username: str
    display_name: str
    password_hash: str
    active: bool
    must_change_password: bool
    # The end of the account-wide lock (the ceiling over all networks), which spares the networks in
    # `staff_known_networks`; the lock of one network is in `staff_login_failures`.
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None
    demo: bool


_ACCOUNT_COLUMNS = (
    "id, username, display_name, password_hash, active, must_change_password, locked_until, created_at, "
    "last_login_at, demo"
)


def _account(row: asyncpg.Record | None) -> Account | None:
    return Account(**dict(row)) if row is not None else None


async def find_account(conn: asyncpg.Connection, username: str, *, lock: bool = False) -> Account | None:
    sql = f"SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts WHERE username = $1"  # noqa: S608 -- fixed columns
    return _account(await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), username))


async def find_account_by_id(
    conn: asyncpg.Connection, account_id: uuid.UUID, *, lock: bool = False
) -> Account | None:
    sql = f"SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts WHERE id = $1"  # noqa: S608 -- fixed columns
    return _account(await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), account_id))


async def list_accounts(conn: asyncpg.Connection) -> list[Account]:
    sql = f"SELECT {_ACCOUNT_COLUMNS} FROM staff_accounts ORDER BY username"  # noqa: S608 -- fixed columns
    return [Account(**dict(r)) for r in await conn.fetch(sql)]


async def insert_account(
    conn: asyncpg.Connection,
    *,
    username: str,
    display_name: str,
    password_hash: str,
    must_change_password: bool,
    now: datetime,
    demo: bool = False,
) -> uuid.UUID:
    # ON CONFLICT rather than a caught unique violation: the database server would log the violation's
    # DETAIL, "Key (username)=(...)", an employee's name, outside OTV's retention (R34).
    account_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO staff_accounts (username, display_name, password_hash, must_change_password,"
        " created_at, updated_at, password_changed_at, demo)"
        " VALUES ($1, $2, $3, $4, $5, $5, $5, $6) ON CONFLICT (username) DO NOTHING RETURNING id",
        username,
        display_name,
        password_hash,
        must_change_password,
        now,
        demo,
    )
    if account_id is None:
        raise ConflictError("An account with this username exists already.")
    return account_id


@dataclass(frozen=True)
class RecentFailures:
    network: int  # of the account from this network
    account: int  # of the account from all networks
    networks: int  # how many networks these came from


async def count_login_failures(
    conn: asyncpg.Connection, account_id: uuid.UUID, network: str, since: datetime
) -> RecentFailures:
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE network = $2) AS network, count(*) AS account,"
        " count(DISTINCT network) AS networks"
        " FROM staff_login_failures WHERE account_id = $1 AND failed_at > $3",
        account_id,
        network,
        since,
    )
    assert row is not None  # noqa: S101 -- an aggregate always has its row
    return RecentFailures(network=row["network"], account=row["account"], networks=row["networks"])


async def record_login_failure(
    conn: asyncpg.Connection, account_id: uuid.UUID, network: str, now: datetime, since: datetime
) -> None:
    """One more failure; the account's failures before `since` count for nothing and go."""
    await conn.execute(
        "DELETE FROM staff_login_failures WHERE account_id = $1 AND failed_at <= $2", account_id, since
    )
    await conn.execute(
        "INSERT INTO staff_login_failures (account_id, network, failed_at) VALUES ($1, $2, $3)",
        account_id,
        network,
        now,
    )


async def lock_account(conn: asyncpg.Connection, account_id: uuid.UUID, locked_until: datetime) -> None:
    await conn.execute("UPDATE staff_accounts SET locked_until = $2 WHERE id = $1", account_id, locked_until)


async def clear_login_failures(
    conn: asyncpg.Connection, account_id: uuid.UUID, *, network: str | None = None
) -> None:
    """The failures of one network (after its successful sign-in), or of all (a new password)."""
    await conn.execute(
        "DELETE FROM staff_login_failures WHERE account_id = $1 AND ($2::text IS NULL OR network = $2)",
        account_id,
        network,
    )


async def delete_old_login_failures(conn: asyncpg.Connection, since: datetime) -> int:
    result: str = await conn.execute("DELETE FROM staff_login_failures WHERE failed_at <= $1", since)
    return int(result.split()[-1])


async def record_login_success(
    conn: asyncpg.Connection, account_id: uuid.UUID, network: str, now: datetime, new_hash: str | None
) -> None:
    await conn.execute(
        "UPDATE staff_accounts SET last_login_at = $2, password_hash = COALESCE($3, password_hash)"
        " WHERE id = $1",
        account_id,
        now,
        new_hash,
    )
    await clear_login_failures(conn, account_id, network=network)
    await conn.execute(
        "INSERT INTO staff_known_networks (account_id, network, last_success_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (account_id, network) DO UPDATE SET last_success_at = EXCLUDED.last_success_at",
        account_id,
        network,
        now,
    )


async def is_known_network(
    conn: asyncpg.Connection, account_id: uuid.UUID, network: str, since: datetime
) -> bool:
    """Whether the account signed in successfully from this network after `since`."""
    known: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM staff_known_networks"
        " WHERE account_id = $1 AND network = $2 AND last_success_at > $3)",
        account_id,
        network,
        since,
    )
    return known


async def delete_old_known_networks(conn: asyncpg.Connection, since: datetime) -> int:
    result: str = await conn.execute("DELETE FROM staff_known_networks WHERE last_success_at <= $1", since)
    return int(result.split()[-1])


async def forget_known_networks(conn: asyncpg.Connection, account_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM staff_known_networks WHERE account_id = $1", account_id)


async def set_password(
    conn: asyncpg.Connection,
    account_id: uuid.UUID,
    password_hash: str,
    *,
    must_change: bool,
    now: datetime,
) -> None:
    """A new password unlocks the account for every network: the guesses at the old one are void."""
    await conn.execute(
        "UPDATE staff_accounts SET password_hash = $2, must_change_password = $3, password_changed_at = $4,"
        " updated_at = $4, failed_logins = 0, locked_until = NULL WHERE id = $1",
        account_id,
        password_hash,
        must_change,
        now,
    )
    await clear_login_failures(conn, account_id)


async def set_active(conn: asyncpg.Connection, account_id: uuid.UUID, active: bool, now: datetime) -> None:
    await conn.execute(
        "UPDATE staff_accounts SET active = $2, updated_at = $3 WHERE id = $1", account_id, active, now
    )


# --- grants -----------------------------------------------------------------------------------------
async def grants_of(conn: asyncpg.Connection, account_id: uuid.UUID) -> list[GrantRow]:
    rows = await conn.fetch(
        "SELECT role, location, groups FROM staff_grants WHERE account_id = $1 ORDER BY role, location",
        account_id,
    )
    return [GrantRow(Role(r["role"]), r["location"], tuple(r["groups"])) for r in rows]


async def grants_at_location(
    conn: asyncpg.Connection, location: str
) -> list[tuple[str, uuid.UUID, GrantRow]]:
    """(username, account id, grant) of every grant at the location."""
    rows = await conn.fetch(
        "SELECT a.username, a.id, g.role, g.location, g.groups FROM staff_grants g"
        " JOIN staff_accounts a ON a.id = g.account_id WHERE g.location = $1"
        " ORDER BY a.username, g.role",
        location,
    )
    return [
        (r["username"], r["id"], GrantRow(Role(r["role"]), r["location"], tuple(r["groups"]))) for r in rows
    ]


async def replace_grants(
    conn: asyncpg.Connection,
    account_id: uuid.UUID,
    grants: list[GrantRow],
    *,
    by: str,
    now: datetime,
    only_location: str | None = None,
    only_roles: tuple[Role, ...] | None = None,
) -> None:
    """Replace an account's grants; narrowed to one location's grants of some roles where given."""
    if only_location is None:
        await conn.execute("DELETE FROM staff_grants WHERE account_id = $1", account_id)
    else:
        await conn.execute(
            "DELETE FROM staff_grants WHERE account_id = $1 AND location = $2 AND role = ANY($3::text[])",
            account_id,
            only_location,
            [str(r) for r in only_roles or ()],
        )
    await conn.executemany(
        "INSERT INTO staff_grants (account_id, role, location, groups, granted_at, granted_by)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (account_id, role, location) DO UPDATE SET groups = EXCLUDED.groups,"
        " granted_at = EXCLUDED.granted_at, granted_by = EXCLUDED.granted_by",
        [(account_id, str(g.role), g.location, list(g.groups), now, by) for g in grants],
    )
    await conn.execute("UPDATE staff_accounts SET updated_at = $2 WHERE id = $1", account_id, now)


# --- sessions ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionRow:
    account_id: uuid.UUID
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


async def insert_session(
    conn: asyncpg.Connection,
    id_hash: bytes,
    account_id: uuid.UUID,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO staff_sessions (id_hash, account_id, csrf_token, created_at, last_seen_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $4, $5)",
        id_hash,
        account_id,
        csrf_token,
        now,
        expires_at,
    )


async def find_session(conn: asyncpg.Connection, id_hash: bytes) -> SessionRow | None:
    row = await conn.fetchrow(
        "SELECT account_id, csrf_token, created_at, last_seen_at, expires_at FROM staff_sessions"
        " WHERE id_hash = $1",
        id_hash,
    )
    return SessionRow(**dict(row)) if row is not None else None


async def touch_session(conn: asyncpg.Connection, id_hash: bytes, now: datetime) -> None:
    await conn.execute("UPDATE staff_sessions SET last_seen_at = $2 WHERE id_hash = $1", id_hash, now)


async def delete_session(conn: asyncpg.Connection, id_hash: bytes) -> None:
    await conn.execute("DELETE FROM staff_sessions WHERE id_hash = $1", id_hash)


async def delete_sessions_of(
    conn: asyncpg.Connection, account_id: uuid.UUID, *, keep: bytes | None = None
) -> None:
    await conn.execute(
        "DELETE FROM staff_sessions WHERE account_id = $1 AND ($2::bytea IS NULL OR id_hash <> $2)",
        account_id,
        keep,
    )


async def delete_expired_sessions(conn: asyncpg.Connection, now: datetime, idle_cutoff: datetime) -> int:
    result: str = await conn.execute(
        "DELETE FROM staff_sessions WHERE expires_at <= $1 OR last_seen_at <= $2", now, idle_cutoff
    )
    return int(result.split()[-1])


# --- API keys ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    prefix: str
    secret_hash: bytes
    name: str
    locations: list[str]
    operations: list[str]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None
    # Its own request limit a minute (R50); None: the settings' default (OTV_API_KEY_REQUESTS_PER_MINUTE).
    requests_per_minute: int | None = None


_KEY_COLUMNS = (
    "id, prefix, secret_hash, name, locations, operations, created_at, created_by, expires_at,"
    " revoked_at, revoked_by, last_used_at, requests_per_minute"
)
_KEY_LIMIT_CHECK = "api_keys_requests_per_minute_range"


def _key_limit_refused() -> ValidationError:
    return ValidationError(
        "The request limit must be a whole number of requests a minute within the bounds.",
        details=[{"field": "requests_per_minute", "message": "out of range"}],
    )


async def insert_api_key(
    conn: asyncpg.Connection,
    *,
    prefix: str,
    secret_hash: bytes,
    name: str,
    locations: list[str],
    operations: list[str],
    created_by: str,
    now: datetime,
    expires_at: datetime | None,
    requests_per_minute: int | None = None,
) -> uuid.UUID:
    try:
        key_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO api_keys (prefix, secret_hash, name, locations, operations, created_at, created_by,"
            " expires_at, requests_per_minute) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            prefix,
            secret_hash,
            name,
            locations,
            operations,
            now,
            created_by,
            expires_at,
            requests_per_minute,
        )
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == _KEY_LIMIT_CHECK:
            raise _key_limit_refused() from None
        raise
    return key_id


async def find_api_key_by_prefix(conn: asyncpg.Connection, prefix: str) -> ApiKey | None:
    sql = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE prefix = $1"  # noqa: S608 -- fixed columns
    row = await conn.fetchrow(sql, prefix)
    return ApiKey(**dict(row)) if row is not None else None


async def find_api_key(conn: asyncpg.Connection, key_id: uuid.UUID, *, lock: bool = False) -> ApiKey | None:
    # `lock`: two changes at once each audit what they replaced (the second waits for the first).
    sql = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = $1" + (" FOR UPDATE" if lock else "")  # noqa: S608 -- fixed columns
    row = await conn.fetchrow(sql, key_id)
    return ApiKey(**dict(row)) if row is not None else None


async def list_api_keys(conn: asyncpg.Connection) -> list[ApiKey]:
    sql = f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY revoked_at NULLS FIRST, created_at DESC"  # noqa: S608 -- fixed columns
    return [ApiKey(**dict(r)) for r in await conn.fetch(sql)]


async def mark_key_used(conn: asyncpg.Connection, key_id: uuid.UUID, now: datetime) -> None:
    # Coarse on purpose: one write a minute per key at most, not one per request.
    await conn.execute(
        "UPDATE api_keys SET last_used_at = $2::timestamptz WHERE id = $1"
        " AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')",
        key_id,
        now,
    )


async def set_api_key_limit(
    conn: asyncpg.Connection, key_id: uuid.UUID, requests_per_minute: int | None
) -> None:
    try:
        await conn.execute(
            "UPDATE api_keys SET requests_per_minute = $2 WHERE id = $1", key_id, requests_per_minute
        )
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == _KEY_LIMIT_CHECK:
            raise _key_limit_refused() from None
        raise


async def revoke_api_key(conn: asyncpg.Connection, key_id: uuid.UUID, by: str, now: datetime) -> bool:
    result: str = await conn.execute(
        "UPDATE api_keys SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL",
        key_id,
        now,
        by,
    )
    return result.endswith(" 1")


# --- the audit log ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditEntry:
    occurred_at: datetime
    actor: str
    actor_kind: str
    action: str
    entity: str
    outcome: str = "ok"
    entity_id: str | None = None
    location: str | None = None
    status: int | None = None
    ip: str | None = None
    method: str | None = None
    route: str | None = None
    changes: dict[str, Any] | None = None
    correlation_id: str | None = None


async def insert_audit(conn: asyncpg.Connection, entry: AuditEntry) -> None:
    # The address goes into the entry; the table's trigger moves it aside, with the entry's time, in the
    # same statement (the gateway cannot write the addresses' table itself).
    await conn.execute(
        f"INSERT INTO {AUDIT_TABLE} (occurred_at, actor, actor_kind, action, entity, entity_id, location,"  # noqa: S608 -- a constant
        " outcome, status, ip, method, route, changes, correlation_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14)",
        entry.occurred_at,
        entry.actor,
        entry.actor_kind,
        entry.action,
        entry.entity,
        entry.entity_id,
        entry.location,
        entry.outcome,
        entry.status,
        entry.ip,
        entry.method,
        entry.route,
        entry.changes or {},  # the pool's jsonb codec encodes it
        entry.correlation_id,
    )


async def erase_client_addresses(conn: asyncpg.Connection, min_age: timedelta) -> int:
    """The client addresses recorded more than `min_age` ago by the database's clock; their entries stay
    as they are (I5). The owner's function refuses less than 7 days."""
    erased: int = await conn.fetchval("SELECT gateway_audit.erase_client_addresses($1::interval)", min_age)
    return erased


# What the gateway needs of the audit log beyond its first shape: made by deploy/postgres-init.sql (or
# scripts/setup.sh), which a release may need run again (deploy/README.md, "4. Each release").
AUDIT_ERASE_FUNCTION = "gateway_audit.erase_client_addresses(interval)"


async def missing_audit_objects(conn: asyncpg.Connection) -> list[str]:
    """The names of the audit log's table and function the gateway needs but the database lacks."""
    row = await conn.fetchrow(
        "SELECT to_regclass($1::text) IS NULL AS no_table, to_regprocedure($2::text) IS NULL AS no_function",
        AUDIT_ADDRESSES,
        AUDIT_ERASE_FUNCTION,
    )
    assert row is not None  # noqa: S101 -- a SELECT without FROM returns one row
    return [
        name
        for name, gone in ((AUDIT_ADDRESSES, row["no_table"]), (AUDIT_ERASE_FUNCTION, row["no_function"]))
        if gone
    ]


async def find_last_change(
    conn: asyncpg.Connection, entity: str, entity_id: str | None, location: str | None
) -> asyncpg.Record | None:
    """The newest successful change of one thing in the audit log, with who made it: an account's display
    name or an API key's name. A thing without an id of its own (a location's lead time) is named by its
    location."""
    return await conn.fetchrow(
        "SELECT e.occurred_at, e.actor, e.actor_kind, coalesce(s.display_name, k.name, '') AS name"  # noqa: S608 -- the table's name is a constant
        f" FROM {AUDIT_TABLE} e"
        " LEFT JOIN staff_accounts s ON e.actor_kind = 'user' AND s.username = e.actor"
        " LEFT JOIN api_keys k ON e.actor_kind = 'api_key' AND e.actor = 'api-key:' || k.id::text"
        " WHERE e.entity = $1 AND e.outcome = 'ok' AND e.status BETWEEN 200 AND 299"
        " AND (e.entity_id = $2 OR ($2::text IS NULL AND e.entity_id IS NULL AND e.location = $3))"
        " ORDER BY e.id DESC LIMIT 1",
        entity,
        entity_id,
        location,
    )


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    # `user`, `api_key` or `system`: with `actor`, a staff account's own entries (an account's username is
    # no system's name); alone, every automatic step (`system`, `system:webhooks`, ...).
    actor_kind: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    location: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # paging: entries older than this id (newest first)
    limit: int = 50


async def search_audit(conn: asyncpg.Connection, f: AuditFilter) -> list[dict[str, Any]]:
    conditions: list[str] = []
    args: list[Any] = []

    def add(sql: str, value: Any) -> None:
        args.append(value)
        conditions.append(sql.format(f"${len(args)}"))

    if f.actor:
        add("actor = {}", f.actor)
    if f.actor_kind:
        add("actor_kind = {}", f.actor_kind)
    if f.entity:
        add("entity = {}", f.entity)
    if f.entity_id:
        add("entity_id = {}", f.entity_id)
    if f.location:
        add("location = {}", f.location)
    if f.outcome:
        add("outcome = {}", f.outcome)
    if f.since:
        add("occurred_at >= {}", f.since)
    if f.until:
        add("occurred_at < {}", f.until)
    if f.before_id:
        add("id < {}", f.before_id)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    args.append(f.limit)
    rows = await conn.fetch(
        # The address while it is kept (its retention period), NULL after.
        "SELECT id, occurred_at, actor, actor_kind, action, entity, entity_id, location, outcome, status,"  # noqa: S608 -- conditions are fixed text, values are parameters
        f" a.client_address AS ip, method, route, changes, correlation_id FROM {AUDIT_TABLE} e"
        f" LEFT JOIN {AUDIT_ADDRESSES} a ON a.audit_id = e.id {where}"
        f" ORDER BY id DESC LIMIT ${len(args)}",
        *args,
    )
    return [dict(r) for r in rows]
