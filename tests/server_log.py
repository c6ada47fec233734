"""The PostgreSQL server's own log, for tests that prove something never reaches it (R34): every ERROR is
written there with its DETAIL (a unique violation's DETAIL names the key's value: an e-mail address, a
customer number), outside OTV's retention and erasure.

The log is found as the server says (`pg_current_logfile()` under the logging collector, else Debian's
`/var/log/postgresql/postgresql-<cluster>.log` that `pg_ctlcluster` writes stderr to); a test that needs it
is skipped where it cannot be read (no superuser access, or another layout). Marks written into the log
with RAISE LOG before and after the work show that it is the right file and that the work's lines are in.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import wait_for
from tests.deploy.test_postgres_init import superuser_psql


def server_log_path() -> Path | None:
    psql = superuser_psql()
    if psql is None:
        return None
    query = (
        "SELECT coalesce(pg_current_logfile(), '') || '|' || current_setting('data_directory')"
        " || '|' || current_setting('cluster_name')"
    )
    found = subprocess.run(
        [*psql, "-X", "-q", "-At", "-d", "postgres", "-c", query],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if found.returncode != 0:
        return None
    logfile, data_directory, cluster = found.stdout.strip().split("|")
    if logfile:
        path = Path(logfile) if Path(logfile).is_absolute() else Path(data_directory) / logfile
    elif cluster:
        path = Path("/var/log/postgresql") / f"postgresql-{cluster.replace('/', '-')}.log"
    else:
        return None
    try:
        with path.open("rb"):
            return path
    except OSError:
        return None


async def _mark(pool: asyncpg.Pool, mark: str) -> None:
    # RAISE LOG reaches the server log at the default log_min_messages; the mark is a uuid, no input.
    await pool.execute(f"DO $$ BEGIN RAISE LOG '{mark}'; END $$")


async def server_log_during(pool: asyncpg.Pool, work: Callable[[], Awaitable[None]]) -> str:
    """What the server logged while `work` ran (between two marks, other sessions' lines included)."""
    path = server_log_path()
    if path is None:
        pytest.skip("the PostgreSQL server log cannot be read here (no superuser access, or not on disk)")
    begin, end = f"otv-test-begin-{uuid.uuid4().hex}", f"otv-test-end-{uuid.uuid4().hex}"
    offset = path.stat().st_size
    await _mark(pool, begin)
    await work()
    await _mark(pool, end)

    def logged() -> str | None:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        return text if end in text else None

    text: str = await wait_for(logged, timeout=10, what="the end mark in the server log")
    assert begin in text, "the server log was rotated meanwhile"
    return text[text.index(begin) : text.index(end)]
