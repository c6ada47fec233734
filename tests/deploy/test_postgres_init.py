"""deploy/postgres-init.sql, the database bootstrap of compose and of a managed PostgreSQL, does what
scripts/setup.sh does on a developer's machine: applied to a fresh database it gives every service its
role and schema (and nothing of the others'), btree_gist and the append-only audit log, and the
migrations of every service then run on it.

It runs as the superuser on a scratch database of its own (<test db>_deploy), emptied first. The
roles belong to the cluster: the script sets their passwords to what scripts/setup.sh sets
(OTV_<SERVICE>_DB_PASSWORD or the development default), so a run changes nothing for anyone else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from shared.config import SERVICE_NAMES
from shared.migrate import migrate
from tests.conftest import TEST_DB, db_settings

ROOT = Path(__file__).resolve().parents[2]
INIT_SQL = ROOT / "deploy" / "postgres-init.sql"
SCRATCH_DB = f"{TEST_DB}_deploy"


def superuser_psql() -> list[str] | None:
    """psql as the superuser postgres, the way scripts/setup.sh reaches it; None where we cannot."""
    probe = ["-X", "-q", "-At", "-d", "postgres", "-c", "select 1"]
    candidates = []
    if os.geteuid() == 0 and shutil.which("runuser"):
        candidates.append(["runuser", "-u", "postgres", "--", "psql"])
    candidates.append(["psql", "-h", "127.0.0.1", "-U", "postgres", "-w"])
    for command in candidates:
        if shutil.which(command[0]) is None:
            continue
        try:
            done = subprocess.run([*command, *probe], cwd="/", capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return command
    return None


def role_password(service: str) -> str:
    return os.environ.get(f"OTV_{service.upper()}_DB_PASSWORD", f"otv_{service}")


def run_psql(psql: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*psql, "-X", "-v", "ON_ERROR_STOP=1", *args],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def apply_init(psql: list[str], database: str) -> subprocess.CompletedProcess[str]:
    variables = [f"db={database}"] + [f"{s}_password={role_password(s)}" for s in SERVICE_NAMES]
    args = [arg for v in variables for arg in ("-v", v)]
    # psql reads the file itself (-f would need the postgres user to read it; stdin does not).
    return subprocess.run(
        [*psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", *args],
        input=INIT_SQL.read_text(encoding="utf-8"),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


RESET = (
    "DROP SCHEMA IF EXISTS gateway, catalog, booking, notifier, reporting, gateway_audit CASCADE;"
    " DROP EXTENSION IF EXISTS btree_gist;"
    " GRANT ALL ON SCHEMA public TO PUBLIC;"
)


@pytest.fixture(scope="module")
async def scratch_db() -> str:
    psql = superuser_psql()
    if psql is None:
        pytest.skip("no superuser access to PostgreSQL (run as root, or allow psql -U postgres)")
    # A database left by an earlier run is emptied instead of dropped: DROP DATABASE waits for a
    # checkpoint, which takes seconds on a machine where other tests write. It is kept afterwards for the
    # same reason (an empty-ish database of a few MB; the next run empties it again).
    query = f"SELECT 1 FROM pg_database WHERE datname = '{SCRATCH_DB}'"  # noqa: S608 -- our own test db's name
    exists = run_psql(psql, "-At", "-d", "postgres", "-c", query)
    if exists.stdout.strip() == "1":
        reset = run_psql(psql, "-q", "-d", SCRATCH_DB, "-c", RESET)
        assert reset.returncode == 0, reset.stderr
    first = apply_init(psql, SCRATCH_DB)
    assert first.returncode == 0, first.stderr
    again = apply_init(psql, SCRATCH_DB)  # idempotent: a second run changes nothing and fails nothing
    assert again.returncode == 0, again.stderr
    return SCRATCH_DB


async def connect_as(service: str, database: str) -> asyncpg.Connection:
    return await asyncpg.connect(db_settings(service, db_name=database).database_url)


async def test_the_init_script_gives_each_service_its_own_schema_and_the_migrations_run_on_it(
    scratch_db: str,
) -> None:
    for service in SERVICE_NAMES:
        applied = await migrate(db_settings(service, db_name=scratch_db))
        assert applied, f"no migration applied for {service}"
    for service in SERVICE_NAMES:
        conn = await connect_as(service, scratch_db)
        try:
            assert await conn.fetchval("SELECT current_schema()") == service
            for other in SERVICE_NAMES:
                usable = await conn.fetchval("SELECT has_schema_privilege($1, 'USAGE')", other)
                assert usable is (other == service), f"{service} on schema {other}"
            assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'btree_gist'") == 1
        finally:
            await conn.close()


async def test_the_gateway_may_only_append_to_the_audit_log_it_does_not_own(scratch_db: str) -> None:
    conn = await connect_as("gateway", scratch_db)
    try:
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'gateway_audit.audit_log'::regclass"
        )
        assert owner == "otv_audit_owner"
        for privilege, allowed in (("SELECT", True), ("INSERT", True), ("UPDATE", False), ("DELETE", False)):
            granted = await conn.fetchval(
                "SELECT has_table_privilege('gateway_audit.audit_log', $1)", privilege
            )
            assert granted is allowed, privilege
        assert not await conn.fetchval("SELECT has_table_privilege('gateway_audit.audit_log', 'TRUNCATE')")
        # The entries' client addresses: deleted after their retention period, never changed.
        addresses = "gateway_audit.audit_client_addresses"
        for privilege, allowed in (("SELECT", True), ("INSERT", True), ("UPDATE", False), ("DELETE", True)):
            granted = await conn.fetchval("SELECT has_table_privilege($1, $2)", addresses, privilege)
            assert granted is allowed, f"{privilege} on {addresses}"
    finally:
        await conn.close()


def test_the_audit_log_part_is_the_one_of_setup_sh() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    function = re.search(r"^audit_log_sql\(\) \{\n    cat <<'SQL'\n(.*?)^SQL\n\}", setup, re.S | re.M)
    if function is None:
        pytest.skip("scripts/setup.sh has no audit_log_sql() (yet)")
    ours = re.search(
        r"^-- BEGIN audit_log_sql\n(.*?)^-- END audit_log_sql", INIT_SQL.read_text(), re.S | re.M
    )
    assert ours is not None, "deploy/postgres-init.sql lost its audit_log_sql markers"
    assert ours.group(1) == function.group(1), (
        "scripts/setup.sh changed the audit log: copy its audit_log_sql() body into deploy/postgres-init.sql"
    )


# The audit log as it was before its client addresses moved to a table of their own.
OLD_AUDIT_LOG = """
CREATE SCHEMA gateway_audit AUTHORIZATION otv_audit_owner;
CREATE TABLE gateway_audit.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, occurred_at timestamptz NOT NULL,
    actor text NOT NULL, actor_kind text NOT NULL, action text NOT NULL, entity text NOT NULL,
    entity_id text, location text, outcome text NOT NULL, status integer, ip text, method text,
    route text, changes jsonb NOT NULL DEFAULT '{}', correlation_id text
);
ALTER TABLE gateway_audit.audit_log OWNER TO otv_audit_owner;
CREATE FUNCTION gateway_audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON gateway_audit.audit_log
    FOR EACH ROW EXECUTE FUNCTION gateway_audit.refuse_change();
INSERT INTO gateway_audit.audit_log (occurred_at, actor, actor_kind, action, entity, outcome, ip)
    VALUES ('2026-01-05 09:00+00', 'anna', 'user', 'login', 'session', 'ok', '192.0.2.7'),
           ('2026-01-05 09:01+00', 'system', 'system', 'create', 'staff_account', 'ok', NULL);
"""


def audit_log_sql() -> str:
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    function = re.search(r"^audit_log_sql\(\) \{\n    cat <<'SQL'\n(.*?)^SQL\n\}", setup, re.S | re.M)
    assert function is not None
    return function.group(1)


def superuser_sql(psql: list[str], database: str, sql: str) -> None:
    done = subprocess.run(
        [*psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database],
        input=sql,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def test_the_set_up_moves_the_addresses_of_an_older_audit_log_beside_its_entries(
    scratch_db: str,
) -> None:
    psql = superuser_psql()
    assert psql is not None
    # An audit log of the old shape, then the set-up of today over it, twice (idempotent).
    superuser_sql(psql, scratch_db, f"DROP SCHEMA gateway_audit CASCADE; {OLD_AUDIT_LOG}")
    superuser_sql(psql, scratch_db, audit_log_sql())
    superuser_sql(psql, scratch_db, audit_log_sql())
    conn = await connect_as("gateway", scratch_db)
    try:
        # A gateway of the release before writes the address into the entry during a rolling update.
        await conn.execute(
            "INSERT INTO gateway_audit.audit_log"
            " (occurred_at, actor, actor_kind, action, entity, outcome, ip)"
            " VALUES ('2026-01-05 09:02+00', 'bert', 'user', 'login', 'session', 'ok', '192.0.2.8')"
        )
        entries = await conn.fetch(
            "SELECT e.id, e.occurred_at, e.actor, e.action, e.ip, a.client_address, a.recorded_at"
            " FROM gateway_audit.audit_log e LEFT JOIN gateway_audit.audit_client_addresses a"
            " ON a.audit_id = e.id ORDER BY e.id"
        )
        assert [(e["actor"], e["action"], e["ip"], e["client_address"]) for e in entries] == [
            ("anna", "login", None, "192.0.2.7"),
            ("system", "create", None, None),
            ("bert", "login", None, "192.0.2.8"),
        ]
        assert all(e["recorded_at"] == e["occurred_at"] for e in entries if e["client_address"])
        # The entries are still append-only: the moved address can go, its entry cannot.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE gateway_audit.audit_log SET ip = NULL WHERE id = $1", entries[0]["id"])
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM gateway_audit.audit_log WHERE id = $1", entries[0]["id"])
        await conn.execute(
            "DELETE FROM gateway_audit.audit_client_addresses WHERE audit_id = $1", entries[0]["id"]
        )
    finally:
        await conn.close()
    # The trigger that refuses changes is back on for the owner too.
    refused = run_psql(psql, "-d", scratch_db, "-c", "DELETE FROM gateway_audit.audit_log")
    assert refused.returncode != 0 and "append-only" in refused.stderr
