"""Test fixtures on the real PostgreSQL (database `otv_test`) and the real RabbitMQ.

Each test session uses its own exchange and queue names, so that a running `make run` and the tests
never see each other's events; everything it declared is deleted at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aio_pika
import asyncpg
import pytest

from shared.config import SERVICE_NAMES, CommonSettings
from shared.db import create_pool
from shared.events import Envelope
from shared.events.appointment import AppointmentSnapshot
from shared.events.staff_work import AppointmentTransferredV1
from shared.migrate import migrate
from shared.topology import CONSUMERS, queues_of
from tests.machine_watch import MachineWatch

RUN_ID = uuid.uuid4().hex[:8]
TEST_DB = os.environ.get("OTV_TEST_DB_NAME", "otv_test")

TEST_OVERRIDES: dict[str, Any] = {
    "db_name": TEST_DB,
    "exchange": f"otv.test.{RUN_ID}.events",
    "queue_prefix": f"otv.test.{RUN_ID}",
    "log_json": False,
    "consumer_retry_base_ms": 50,
    "outbox_poll_seconds": 0.5,
    "shutdown_timeout": 5.0,
}


def svc_settings(cls: type[CommonSettings], **overrides: Any) -> CommonSettings:
    """Settings of a service for tests: the test database and this session's broker names."""
    return cls(**{**TEST_OVERRIDES, **overrides})


def db_settings(service: str, **overrides: Any) -> CommonSettings:
    cls = type(f"{service.capitalize()}TestSettings", (CommonSettings,), {"service_name": service})
    return svc_settings(cls, **overrides)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


WATCH = MachineWatch(CommonSettings().broker_url)


def pytest_sessionstart(session: pytest.Session) -> None:
    WATCH.start()


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    WATCH.test = nodeid


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Last before pytest's own closing line, where a CI log that keeps only its tail still shows it."""
    WATCH.stop()
    for line in WATCH.report():
        terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    # Child processes started by tests use the same database and broker names.
    os.environ["OTV_DB_NAME"] = TEST_DB
    os.environ["OTV_EXCHANGE"] = TEST_OVERRIDES["exchange"]
    os.environ["OTV_QUEUE_PREFIX"] = TEST_OVERRIDES["queue_prefix"]


@pytest.fixture(scope="session", autouse=True)
def expiring_test_queues() -> None:
    """A run that is killed cannot delete its queues; a broker policy drops test queues unused for half an
    hour (quorum queues are not free: hundreds of them exhaust RabbitMQ's file handles)."""
    policy = '{"expires": 1800000}'
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [
                "rabbitmqctl",
                "-q",
                "set_policy",
                "--apply-to",
                "queues",
                "otv-test-expiry",
                r"^otv\.test\.",
                policy,
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )


@pytest.fixture(scope="session", autouse=True)
async def migrated_database() -> None:
    for service in SERVICE_NAMES:
        await migrate(db_settings(service))


@pytest.fixture(scope="session")
async def pools() -> AsyncIterator[dict[str, asyncpg.Pool]]:
    created = {service: await create_pool(db_settings(service)) for service in SERVICE_NAMES}
    yield created
    for pool in created.values():
        await pool.close()


async def empty_schemas(pools: dict[str, asyncpg.Pool]) -> None:
    """Empty every table of the given services' schemas (each role empties its own), and the session's
    queues: an event left by an earlier test must not reach the consumers of the next one."""
    await purge_test_queues()
    for service, pool in pools.items():
        tables = await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'",
            service,
        )
        if tables:
            names = ", ".join(f'{service}."{t["tablename"]}"' for t in tables)
            await pool.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


async def publish_envelope(amqp: aio_pika.abc.AbstractRobustConnection, envelope: Envelope) -> None:
    """Publish an event to this session's exchange as an outbox relay would (persistent, confirmed)."""
    channel = await amqp.channel(publisher_confirms=True)
    try:
        exchange = await channel.declare_exchange(
            TEST_OVERRIDES["exchange"], aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(envelope.id),
            ),
            routing_key=envelope.type,
        )
    finally:
        await channel.close()


def transferred(old: AppointmentSnapshot, new: AppointmentSnapshot) -> AppointmentTransferredV1:
    """The event of a transfer from `old`'s place and time to `new` (as booking writes it, R25)."""
    return AppointmentTransferredV1(
        appointment=new,
        from_location_id=old.location_id,
        from_location_name=old.location_name,
        from_group_id=old.group_id,
        from_concern_id=old.concern_id,
        previous_start=old.start,
        previous_end=old.end,
    )


async def purge_test_queues() -> None:
    """Drop every message waiting in this session's consumer queues (those not declared yet are skipped)."""
    settings = db_settings("booking")
    connection = await aio_pika.connect(settings.broker_url)
    try:
        channel = await connection.channel()
        for name in CONSUMERS:
            for queue_name in (f"{settings.queue_prefix}.{name}", f"{settings.queue_prefix}.{name}.retry"):
                try:
                    queue = await channel.declare_queue(queue_name, passive=True)
                except aio_pika.exceptions.ChannelNotFoundEntity:
                    channel = await connection.channel()  # a missing queue closes the channel
                    continue
                await queue.purge()
    finally:
        await connection.close()


@pytest.fixture
async def clean_db(pools: dict[str, asyncpg.Pool]) -> dict[str, asyncpg.Pool]:
    """Every service's schema emptied before the test."""
    await empty_schemas(pools)
    return pools


SESSION_CLEANUP_SECONDS = 45


@pytest.fixture(scope="session")
async def amqp() -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(CommonSettings().broker_url)
    yield connection
    prefix = TEST_OVERRIDES["queue_prefix"]
    try:
        # Bounded: the run's result is decided by now, and a hang here would fail the last test by its
        # timeout (seen once, at a load of ten with other runs beside it; where it hung is not known).
        async with asyncio.timeout(SESSION_CLEANUP_SECONDS):
            await _delete_test_broker_objects(connection)
    except TimeoutError:
        print(f"broker clean-up: not done within {SESSION_CLEANUP_SECONDS} s; {prefix}* queues may be left")
    await connection.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@contextlib.asynccontextmanager
async def broker_stopped() -> AsyncIterator[None]:
    """The body runs with RabbitMQ's application stopped: the SHARED broker of this machine (every other
    run on it sees the outage too), started again and awaited afterwards, also when the body fails. The
    machine watch reports an outage meanwhile as one a test made on purpose."""
    WATCH.planned += 1
    try:
        await asyncio.to_thread(_rabbitmqctl, "stop_app")
        try:
            yield
        finally:
            await asyncio.to_thread(_rabbitmqctl, "start_app")
            await asyncio.to_thread(_rabbitmqctl, "await_startup")
    finally:
        WATCH.planned -= 1


def own_broker_names() -> dict[str, str]:
    """Exchange and queue names of one stack alone, below this session's (deleted with it at the latest)."""
    own = uuid.uuid4().hex[:6]
    return {
        "exchange": f"{TEST_OVERRIDES['exchange']}.{own}",
        "queue_prefix": f"{TEST_OVERRIDES['queue_prefix']}.{own}",
    }


async def delete_broker_objects(
    amqp: aio_pika.abc.AbstractRobustConnection,
    *,
    queue_prefix: str,
    exchange: str | None = None,
    consumers: Iterable[str] = CONSUMERS,
) -> None:
    """Delete the work, retry and dead-letter queues of `consumers` under `queue_prefix` (what they hold
    included) and `exchange` with its dead-letter exchange, when the stack that used them stops. Quorum
    queues are not free: each is a Raft log the broker keeps and recovers at every restart, and a run
    that kept every stack's queues to its end held some 300 of them when its broker restarts came."""
    settings = svc_settings(CommonSettings, queue_prefix=queue_prefix)
    channel = await amqp.channel()
    try:
        for consumer in consumers:
            for queue in queues_of(consumer, settings):
                await channel.queue_delete(queue)
        if exchange is not None:
            for name in (exchange, exchange + ".dlx"):
                await channel.exchange_delete(name)
    finally:
        await channel.close()


async def _delete_test_broker_objects(connection: aio_pika.abc.AbstractRobustConnection) -> None:
    prefix = TEST_OVERRIDES["queue_prefix"]
    try:
        listed = await asyncio.to_thread(
            subprocess.run,
            ["rabbitmqctl", "-q", "list_queues", "name"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return
    channel = await connection.channel()
    for name in listed.stdout.split():
        if name.startswith(prefix):
            await channel.queue_delete(name)
    for name in (TEST_OVERRIDES["exchange"], TEST_OVERRIDES["exchange"] + ".dlx"):
        await channel.exchange_delete(name)
    await channel.close()


async def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 -- a polling helper whose deadline is its point
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll an (async or plain) condition until it is truthy; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
