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
import structlog
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from shared.config import SERVICE_NAMES
from shared.migrate import migrate
from tests.conftest import TEST_DB, db_settings, free_port, svc_settings

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


def apply_init(
    psql: list[str], database: str, *, as_role: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the script as the superuser, or (`as_role`) with the privileges of that role only."""
    env = {**os.environ, "PGOPTIONS": f"-c role={as_role}"} if as_role else None
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
        env=env,
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
        # The entries' client addresses: read only. A trigger puts them there, the owner's function deletes
        # them after their retention period; both run as the owner.
        addresses = "gateway_audit.audit_client_addresses"
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"):
            granted = await conn.fetchval("SELECT has_table_privilege($1, $2)", addresses, privilege)
            assert granted is (privilege == "SELECT"), f"{privilege} on {addresses}"
        functions = await conn.fetch(
            "SELECT proname, pg_get_userbyid(proowner) AS owner, prosecdef, proconfig,"
            " has_function_privilege(oid, 'EXECUTE') AS callable"
            " FROM pg_proc WHERE pronamespace = 'gateway_audit'::regnamespace ORDER BY proname"
        )
        assert [(f["proname"], f["owner"], f["prosecdef"], f["callable"]) for f in functions] == [
            ("erase_client_addresses", "otv_audit_owner", True, True),
            ("put_address_aside", "otv_audit_owner", True, False),
            ("refuse_change", "otv_audit_owner", False, True),
        ]
        # A function that runs as the owner finds nothing through a search_path a caller chose.
        assert all(f["proconfig"] == ["search_path=pg_catalog, pg_temp"] for f in functions if f["prosecdef"])
    finally:
        await conn.close()


async def test_an_administrator_who_is_no_superuser_can_run_the_script(scratch_db: str) -> None:
    psql = superuser_psql()
    assert psql is not None
    # A managed PostgreSQL's administrator (deploy/README.md, step 1): CREATEROLE and CREATEDB but no
    # superuser, a member of the roles it made, and the owner of the database it made.
    admin = f"{TEST_DB}_admin"
    roles = ", ".join([*(f"otv_{service}" for service in SERVICE_NAMES), "otv_audit_owner"])
    made = run_psql(
        psql,
        "-q",
        "-d",
        "postgres",
        "-c",
        f"DROP ROLE IF EXISTS {admin}",
        "-c",
        f"CREATE ROLE {admin} NOLOGIN NOSUPERUSER CREATEROLE CREATEDB",
        "-c",
        f"GRANT {roles} TO {admin}",
        "-c",
        f"ALTER DATABASE {scratch_db} OWNER TO {admin}",
    )
    try:
        assert made.returncode == 0, made.stderr
        done = apply_init(psql, scratch_db, as_role=admin)
        assert done.returncode == 0, done.stderr
        # It may not set the server log's superuser-only settings, and says what to do instead.
        assert "not allowed to set log_error_verbosity, log_parameter_max_length" in done.stderr
        assert "GRANT SET ON PARAMETER" in done.stderr
    finally:
        undone = run_psql(
            psql,
            "-q",
            "-d",
            "postgres",
            "-c",
            f"ALTER DATABASE {scratch_db} OWNER TO CURRENT_USER",
            "-c",
            f"DROP ROLE IF EXISTS {admin}",
        )
        assert undone.returncode == 0, undone.stderr
    conn = await connect_as("gateway", scratch_db)
    try:
        assert not await conn.fetchval(
            "SELECT bool_or(rolsuper) FROM pg_roles WHERE rolname LIKE 'otv\\_%' AND rolname <> $1", admin
        )
        assert await conn.fetchval("SELECT has_table_privilege('gateway_audit.audit_log', 'INSERT')")
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


def test_the_role_settings_are_the_ones_of_setup_sh() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    function = re.search(r"^role_settings_sql\(\) \{\n    cat <<'SQL'\n(.*?)^SQL\n\}", setup, re.S | re.M)
    assert function is not None, "scripts/setup.sh lost its role_settings_sql()"
    ours = re.search(
        r"^-- BEGIN role_settings_sql\n(.*?)^-- END role_settings_sql", INIT_SQL.read_text(), re.S | re.M
    )
    assert ours is not None, "deploy/postgres-init.sql lost its role_settings_sql markers"
    assert ours.group(1) == function.group(1), (
        "scripts/setup.sh changed the role settings: copy its role_settings_sql() body into"
        " deploy/postgres-init.sql"
    )


async def test_a_transaction_whose_client_is_gone_does_not_keep_its_locks_for_hours(scratch_db: str) -> None:
    """Every service's connection ends a transaction left idle for a minute (a replica that died inside
    it), and its keepalives find a vanished client in a minute, not after the operating system's two hours;
    through a pooler too, as they are the roles' own settings, not the client's."""
    for service in SERVICE_NAMES:
        conn = await connect_as(service, scratch_db)
        try:
            assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "1min", service
            assert await conn.fetchval("SHOW tcp_keepalives_idle") == "30", service
            assert await conn.fetchval("SHOW tcp_keepalives_interval") == "10", service
            assert await conn.fetchval("SHOW tcp_keepalives_count") == "3", service
        finally:
            await conn.close()


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


def without_the_move(sql: str) -> tuple[str, str]:
    """audit_log_sql() split into everything but the move of old addresses, and the move (its DO block)."""
    move = re.search(r"^DO \$\$\n.*?^END \$\$;\n", sql, re.S | re.M)
    assert move is not None
    return sql[: move.start()] + sql[move.end() :], move.group(0)


async def audit_state(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT e.*, a.client_address, a.recorded_at FROM gateway_audit.audit_log e"
        " LEFT JOIN gateway_audit.audit_client_addresses a ON a.audit_id = e.id ORDER BY e.id"
    )
    return rows


async def test_the_set_up_moves_the_addresses_of_an_older_audit_log_beside_its_entries(
    scratch_db: str,
) -> None:
    psql = superuser_psql()
    assert psql is not None
    # An audit log of the old shape, with more entries than one batch of the move.
    many = (
        "INSERT INTO gateway_audit.audit_log (occurred_at, actor, actor_kind, action, entity, outcome, ip)"
        " SELECT '2026-01-04 09:00+00'::timestamptz + n * interval '1 second', 'clerk', 'user', 'login',"
        " 'session', 'ok', '198.51.100.' || (n % 250) FROM generate_series(1, 20500) AS n;"
    )
    superuser_sql(psql, scratch_db, f"DROP SCHEMA gateway_audit CASCADE; {OLD_AUDIT_LOG} {many}")
    rest, move = without_the_move(audit_log_sql())
    superuser_sql(psql, scratch_db, rest)
    conn = await connect_as("gateway", scratch_db)
    try:
        # The move runs while the gateway writes: it takes no lock that waits for the gateway's writes or
        # holds them up (a lock it cannot have within 5 s fails it).
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO gateway_audit.audit_log"
                " (occurred_at, actor, actor_kind, action, entity, outcome, ip)"
                " VALUES ('2026-01-05 09:01:30+00', 'carla', 'user', 'login', 'session', 'ok', '192.0.2.9')"
            )
            superuser_sql(psql, scratch_db, f"SET lock_timeout = '5s';\n{move}")
        # Then today's set-up over it, whole, twice: the second run changes nothing.
        superuser_sql(psql, scratch_db, audit_log_sql())
        state = await audit_state(conn)
        superuser_sql(psql, scratch_db, audit_log_sql())
        assert await audit_state(conn) == state
        # A gateway of the release before writes the address into the entry during a rolling update.
        await conn.execute(
            "INSERT INTO gateway_audit.audit_log"
            " (occurred_at, actor, actor_kind, action, entity, outcome, ip)"
            " VALUES ('2026-01-05 09:02+00', 'bert', 'user', 'login', 'session', 'ok', '192.0.2.8')"
        )
        entries = await audit_state(conn)
        assert len(entries) == 2 + 20500 + 2
        assert all(e["ip"] is None for e in entries)
        named = [e for e in entries if e["actor"] != "clerk"]
        assert [(e["actor"], e["action"], e["client_address"]) for e in named] == [
            ("anna", "login", "192.0.2.7"),
            ("system", "create", None),
            ("carla", "login", "192.0.2.9"),
            ("bert", "login", "192.0.2.8"),
        ]
        clerks = [e for e in entries if e["actor"] == "clerk"]
        assert all(e["client_address"] == f"198.51.100.{i % 250}" for i, e in enumerate(clerks, 1))
        assert all(e["recorded_at"] == e["occurred_at"] for e in entries if e["client_address"])
        # The entries are still append-only, and their addresses are not the gateway's to delete.
        first = entries[0]["id"]
        for statement in (
            "UPDATE gateway_audit.audit_log SET ip = NULL WHERE id = $1",
            "DELETE FROM gateway_audit.audit_log WHERE id = $1",
            "DELETE FROM gateway_audit.audit_client_addresses WHERE audit_id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, first)
    finally:
        await conn.close()
    # The trigger that refuses changes is back on for everyone, the owner included; the move's escape
    # opens only for the owner, only to empty `ip`, and only when the address is beside the entry.
    for sql in (
        "DELETE FROM gateway_audit.audit_log",
        "SET otv.audit_move = 'on'; UPDATE gateway_audit.audit_log SET ip = NULL",
        "SET ROLE otv_audit_owner; UPDATE gateway_audit.audit_log SET ip = NULL",
        *(
            "SET ROLE otv_audit_owner; SET otv.audit_move = 'on'; " + change
            for change in (
                "UPDATE gateway_audit.audit_log SET ip = NULL",
                "DELETE FROM gateway_audit.audit_log",
                "UPDATE gateway_audit.audit_log SET actor = 'x'",
                "UPDATE gateway_audit.audit_log SET ip = '192.0.2.1'",
            )
        ),
    ):
        refused = run_psql(psql, "-d", scratch_db, "-c", sql)
        assert refused.returncode != 0 and "append-only" in refused.stderr, sql


async def test_the_gateway_is_not_ready_until_the_audit_log_of_its_release_is_set_up(scratch_db: str) -> None:
    psql = superuser_psql()
    assert psql is not None
    # The release before: an audit log without the addresses' table, postgres-init.sql not run again.
    grants = (
        "GRANT USAGE ON SCHEMA gateway_audit TO otv_gateway;"
        " GRANT SELECT, INSERT ON gateway_audit.audit_log TO otv_gateway;"
    )
    superuser_sql(psql, scratch_db, f"DROP SCHEMA gateway_audit CASCADE; {OLD_AUDIT_LOG} {grants}")
    await migrate(db_settings("gateway", db_name=scratch_db))
    settings = svc_settings(GatewaySettings, db_name=scratch_db, port=free_port(), bot_defence=False)
    with structlog.testing.capture_logs() as logs:
        async with TestClient(TestServer(create_gateway(settings))) as client:  # type: ignore[arg-type]
            for _ in range(2):
                response = await client.get("/readyz")
                assert response.status == 503
                reason = (await response.json())["error"]["message"]
                assert "gateway_audit.audit_client_addresses" in reason
                assert "gateway_audit.erase_client_addresses(interval)" in reason
                assert "run deploy/postgres-init.sql again" in reason
            # The operator runs the step; the pod becomes ready without a restart.
            superuser_sql(psql, scratch_db, audit_log_sql())
            response = await client.get("/readyz")
            assert response.status == 200, await response.text()
    # Said once in the log, at the start, not at every probe.
    missed = [e for e in logs if e["event"] == "audit_log_not_set_up"]
    assert len(missed) == 1 and missed[0]["log_level"] == "error"
    assert "postgres-init.sql" in missed[0]["fix"]
