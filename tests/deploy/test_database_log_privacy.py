"""R34: the PostgreSQL server log is kept outside OTV's retention and erasure, so the sessions of the
services must make it name no person. The bootstrap (deploy/postgres-init.sql, and scripts/setup.sh, which
has the same role settings) has the server log the services' errors terse, without the DETAIL that names a
violated key's value, and without bind parameters. The code avoids the violations it knows (R5, R47, a
username that exists already); this is the defence for the ones nobody foresaw.

It runs on the scratch database of tests/deploy/test_postgres_init.py (<test db>_deploy); the role
settings are per database, so nothing changes for anyone else's database.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from shared.config import SERVICE_NAMES
from shared.migrate import migrate
from tests.conftest import db_settings
from tests.deploy.test_manifests import compose
from tests.deploy.test_postgres_init import connect_as, scratch_db
from tests.server_log import server_log_during

__all__ = ["scratch_db"]  # the fixture, shared with test_postgres_init.py


async def test_every_service_logs_its_errors_terse_and_without_parameters(scratch_db: str) -> None:
    for service in SERVICE_NAMES:
        conn = await connect_as(service, scratch_db)
        try:
            assert await conn.fetchval("SHOW log_error_verbosity") == "terse", service
            assert await conn.fetchval("SHOW log_parameter_max_length") == "0", service
            assert await conn.fetchval("SHOW log_parameter_max_length_on_error") == "0", service
        finally:
            await conn.close()


@pytest.mark.req("R34")
async def test_a_violation_nobody_foresaw_leaves_no_personal_data_in_the_database_server_log(
    scratch_db: str,
) -> None:
    """A statement that violates the unique index on the staff accounts' usernames, and a check that
    refuses a row: as the gateway's own role, straight, without the code's guards."""
    await migrate(db_settings("gateway", db_name=scratch_db))
    username = f"erika.muster-{uuid.uuid4().hex[:8]}"
    display_name = f"Erika Muster {uuid.uuid4().hex[:8]}"
    insert = (
        "INSERT INTO staff_accounts (username, display_name, password_hash, created_at, updated_at,"
        " password_changed_at) VALUES ($1, $2, 'x', now(), now(), now())"
    )
    pool = await asyncpg.create_pool(db_settings("gateway", db_name=scratch_db).database_url, min_size=1)
    try:
        await pool.execute(insert, username, display_name)

        async def violate() -> None:
            with pytest.raises(asyncpg.UniqueViolationError) as duplicate:
                await pool.execute(insert, username, display_name)
            # The client (the service) still gets the whole error; only the server's log is terse.
            assert username in (duplicate.value.detail or "")
            with pytest.raises(asyncpg.CheckViolationError):
                await pool.execute(insert, f"{username}!", display_name)

        logged = await server_log_during(pool, violate)
        assert "staff_accounts_username" in logged  # the error itself is logged
        assert username not in logged and display_name not in logged
        await pool.execute("DELETE FROM staff_accounts WHERE username = $1", username)
    finally:
        await pool.close()


def test_the_compose_postgres_logs_terse_and_without_parameters_server_wide() -> None:
    """compose's own server, for a data directory the bootstrap ran on before these role settings too."""
    command = compose()["services"]["postgres"]["command"]
    settings = {command[i + 1] for i, arg in enumerate(command) if arg == "-c"}
    assert command[0] == "postgres"
    assert {
        "log_error_verbosity=terse",
        "log_parameter_max_length=0",
        "log_parameter_max_length_on_error=0",
    } <= (settings)
