"""RabbitMQ and PostgreSQL restarted under the running services (invariants I3, I4, I7): the services
come back by themselves, without a restart of their own, and nothing is lost or repeated.

Both restarts briefly disturb every other user of the machine's broker or database (other test runs
too), so there is one test of each, and each brings the server back before it ends.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.conftest import broker_stopped, wait_for
from tests.faults.system import System, assert_consistent, booking_stream


def _run(*argv: str, timeout: float = 90) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=timeout)


def _postgres_cluster() -> tuple[str, str]:
    listed = subprocess.run(
        ["pg_lsclusters", "--no-header"], check=True, capture_output=True, text=True, timeout=30
    )
    for line in listed.stdout.splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return version, name
    raise AssertionError(f"no PostgreSQL cluster on port 5432: {listed.stdout}")


async def _postgres_answers() -> bool:
    done = await asyncio.to_thread(
        subprocess.run, ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False, timeout=10
    )
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.req("R51")
async def test_a_rabbitmq_restart_loses_no_booking_event_and_the_services_reconnect_by_themselves(
    system: System,
) -> None:
    await system.wait_ready()
    started = {name: s.popen.pid for name, s in system.services.items() if s.popen is not None}

    async def restart_broker() -> None:
        await asyncio.sleep(1.0)
        async with broker_stopped():
            await asyncio.sleep(2.0)  # bookings go on meanwhile: they wait in booking's outbox
        await system.wait_ready(timeout=60)

    attempts = await booking_stream(system, "broker-restart", restart_broker)

    # Booking needs no broker to accept a booking (the transactional outbox, I3).
    assert {a.status for a in attempts} == {201}, [a.status for a in attempts]
    await assert_consistent(system, "broker-restart", attempts)
    # The same processes: they reconnected by themselves.
    assert {name: s.popen.pid for name, s in system.services.items() if s.popen is not None} == started


@pytest.mark.slow
@pytest.mark.req("R51")
async def test_a_postgresql_restart_loses_no_accepted_booking_and_the_services_reconnect_by_themselves(
    system: System,
) -> None:
    await system.wait_ready()
    started = {name: s.popen.pid for name, s in system.services.items() if s.popen is not None}
    version, cluster = await asyncio.to_thread(_postgres_cluster)
    back_at = 0.0

    async def restart_database() -> None:
        nonlocal back_at
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(
                _run, "pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"
            )
        finally:
            await wait_for(_postgres_answers, timeout=60, interval=0.2, what="PostgreSQL back")
        back_at = time.time()
        await system.wait_ready(timeout=60)
        await asyncio.sleep(1.0)  # bookings after the restart

    attempts = await booking_stream(system, "db-restart", restart_database)

    # While the database is away a booking fails cleanly (an error body, never a hang).
    assert {a.status for a in attempts} <= {201, 500, 502, 503, 504}, [a.status for a in attempts]
    assert any(a.status == 201 for a in attempts[-4:]), "no booking was accepted after the restart"
    assert back_at > 0
    await assert_consistent(system, "db-restart", attempts)
    assert {name: s.popen.pid for name, s in system.services.items() if s.popen is not None} == started
