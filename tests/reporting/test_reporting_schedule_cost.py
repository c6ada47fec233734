"""The reporting scheduler ticks every 30 s in every replica. A tick with nothing due (the hourly capacity
run and the retention run done, no list to build, rebuild or delete) asks PostgreSQL once what is due and
writes nothing: it neither locks the job rows nor runs the clean-up's UPDATEs, which cost a transaction,
WAL and a dirtied page every tick, in every replica, all day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from services.reporting import service
from shared.db import _init_connection, create_pool
from tests.reporting.conftest import DAY, Appt, Reporting, berlin, location_event

# Statements that change rows or lock them (a claim's upsert locks its row even when not due).
WRITES = ("INSERT", "UPDATE", "DELETE")


class Statements:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, record: Any) -> None:
        self.seen.append(" ".join(record.query.split()))

    def work(self) -> list[str]:
        """What a tick asked, without the pool's reset of a returned connection."""
        return [q for q in self.seen if not q.startswith("SELECT pg_advisory_unlock_all()")]


@pytest.fixture
async def observed(reporting: Reporting) -> AsyncIterator[tuple[asyncpg.Pool, Statements]]:
    """A pool of the reporting schema, as the service's, whose connections report every statement."""
    statements = Statements()

    async def watched(conn: asyncpg.Connection) -> None:
        await _init_connection(conn)  # the service pool's own set-up
        conn.add_query_logger(statements)

    pool = await create_pool(reporting.settings, min_size=1, max_size=2, init=watched)
    yield pool, statements
    await pool.close()


async def idle_tick(reporting: Reporting, pool: asyncpg.Pool, statements: Statements) -> list[str]:
    statements.seen.clear()
    await service.run_schedule(pool, reporting.settings, reporting.clock)
    return statements.work()


async def test_a_tick_with_nothing_due_asks_once_and_writes_nothing(
    reporting: Reporting, observed: tuple[asyncpg.Pool, Statements]
) -> None:
    pool, statements = observed
    reporting.clock.set(berlin(DAY, 5))
    await reporting.start(scheduler_interval_seconds=3600.0)  # the consumer; its scheduler sleeps
    await reporting.send((location_event("mitte"), berlin(DAY, 0) - timedelta(days=5)))
    early = Appt("mitte", "neuantrag", berlin(DAY, 8), last_name="Früh")
    await reporting.send((early.booked(), early.booked_at))

    for hour, minute in ((5, 1), (7, 1)):  # before the lists are due, and after they are built
        reporting.clock.set(berlin(DAY, hour, minute))
        await service.run_schedule(pool, reporting.settings, reporting.clock)  # does what is due
        for _ in range(3):
            reporting.clock.advance(timedelta(seconds=30))
            asked = await idle_tick(reporting, pool, statements)
            assert [q for q in asked if q.upper().startswith(WRITES)] == [], asked
            assert len(asked) == 1, asked
    assert await pool.fetchval("SELECT generation FROM day_lists WHERE location_id = 'mitte'") == 1

    # What becomes due is still done at the next tick: a change to today's list, the next hour's capacity.
    late = Appt("mitte", "leistungsbezug", berlin(DAY, 10), last_name="Spät")
    await reporting.send((late.booked(), berlin(DAY, 7, 5)))
    reporting.clock.advance(timedelta(hours=1))
    await service.run_schedule(pool, reporting.settings, reporting.clock)
    assert await pool.fetchval("SELECT generation FROM day_lists WHERE location_id = 'mitte'") == 2
    assert await pool.fetchval("SELECT last_run_at FROM job_runs WHERE job = 'capacity'") == (
        reporting.clock.now()
    )
