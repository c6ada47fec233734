"""One running OTV for the fault and observability tests (tests/faults/system.py): started once for the
package, each test leaves it whole again (a killed service restarted, the broker and database back)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from services.booking.consumer import apply_location_configured
from shared.clock import BERLIN
from tests.conftest import empty_schemas, free_port
from tests.faults.system import (
    SERVICES,
    Service,
    System,
    bookable_starts,
    location_snapshot,
    service_env,
)
from tools.mailsink import MailSink


@pytest.fixture(scope="package")
async def system(
    pools: dict[str, asyncpg.Pool], amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[System]:
    await empty_schemas(pools)
    today = datetime.now(BERLIN).date()
    snapshot = location_snapshot(today)
    async with pools["booking"].acquire() as conn, conn.transaction():
        await apply_location_configured(conn, None, snapshot)

    sink = MailSink(smtp_port=0, http_port=0)
    await sink.start()
    log_dir = Path(tempfile.mkdtemp(prefix="otv-faults-"))
    ports = {name: free_port() for name in SERVICES}
    services = {
        name: Service(name, ports[name], service_env(name, ports, sink.smtp_port), log_dir / f"{name}.log")
        for name in SERVICES
    }
    running = System(services, sink, pools, amqp, bookable_starts(snapshot, today), log_dir)
    try:
        for service in services.values():
            service.start()
        await running.wait_ready(timeout=90)
        yield running
    finally:
        for service in services.values():
            service.terminate()
        for service in services.values():
            await asyncio.to_thread(service.stop)
        await sink.stop()
