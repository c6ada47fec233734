"""Crashes and restarts (I3, I7): a notifier process killed with SIGKILL in the middle of sending, with
events waiting in its queue, and a RabbitMQ restart while events wait: afterwards every mail was sent
exactly once, counted in the sink."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import aiohttp
import asyncpg
import pytest

from shared.clock import SystemClock
from shared.outbox import OutboxRelay, add_event
from tests.conftest import broker_stopped, db_settings, free_port, wait_for
from tests.notifier.conftest import Notifier, Publisher, an_appointment, booked, purge_queue
from tests.notifier.smtp_gate import SmtpGate
from tools.mailsink import MailSink

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
StartNotifier = Callable[..., Awaitable[Notifier]]


class NotifierProcess:
    """`python -m services.notifier` as a child process, as operators run it."""

    def __init__(self, smtp_port: int) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,  # the test database, exchange and queue prefix (tests/conftest.py)
            "OTV_PORT": str(self.port),
            "OTV_SMTP_PORT": str(smtp_port),
            # The lease is as short as the settings allow (timeout + data timeout + 5 s), so that the mails
            # of the killed process are taken over soon; their conversations are caught before the data.
            "OTV_SMTP_TIMEOUT": "10",
            "OTV_SMTP_DATA_TIMEOUT_SECONDS": "5",
            "OTV_MAIL_LEASE_SECONDS": "20",
            "OTV_MAIL_POLL_SECONDS": "0.5",
            "OTV_MAIL_RETRY_BASE_SECONDS": "0.5",
            "OTV_LOG_JSON": "true",
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.notifier",
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(ready, timeout=20, what="the notifier process to become ready")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()


@pytest.fixture
async def processes() -> AsyncIterator[list[NotifierProcess]]:
    started: list[NotifierProcess] = []
    yield started
    for process in started:
        await process.kill()


async def test_a_notifier_killed_while_sending_sends_every_mail_exactly_once_after_restart(
    clean_db: dict[str, asyncpg.Pool],
    amqp: aio_pika.abc.AbstractRobustConnection,
    sink: MailSink,
    publish: Publisher,
    processes: list[NotifierProcess],
) -> None:
    await purge_queue(amqp)
    pool = clean_db["notifier"]
    gate = SmtpGate(sink.smtp_port)
    await gate.start()
    try:
        first = NotifierProcess(gate.port)
        processes.append(first)
        await first.start()
        sent_before = [an_appointment() for _ in range(5)]
        for snap in sent_before:
            await publish(booked(snap))
        async with asyncio.timeout(15):
            await sink.wait_for_messages(5)

        # The next mails are claimed and caught in their SMTP conversation when the process dies.
        gate.holding = True
        in_flight = [an_appointment() for _ in range(5)]
        for snap in in_flight:
            await publish(booked(snap))
        await wait_for(lambda: len(gate.held) >= 5, timeout=15, what="five deliveries in flight")
        await first.kill()

        # Events that arrive while no notifier runs wait in the queue.
        waiting = [an_appointment() for _ in range(5)]
        for snap in waiting:
            await publish(booked(snap))
        gate.release()

        second = NotifierProcess(gate.port)
        processes.append(second)
        await second.start()
        async with asyncio.timeout(60):  # the lease of the mails in flight runs out first (20 s)
            await sink.wait_for_messages(15)
        await asyncio.sleep(2.0)  # longer than the back-off: a duplicate would show

        everyone = sent_before + in_flight + waiting
        delivered = Counter(rcpt for m in sink.messages for rcpt in m.envelope_to)
        assert delivered == Counter({s.customer.email: 1 for s in everyone})
        assert len({m.parsed["Message-ID"] for m in sink.messages}) == 15
        rows = await pool.fetch(
            "SELECT appointment_id, status, attempts FROM mails WHERE kind = 'confirmation'"
        )
        assert {r["status"] for r in rows} == {"sent"}
        attempts = {r["appointment_id"]: r["attempts"] for r in rows}
        assert all(attempts[s.id] == 2 for s in in_flight)  # taken over after the lease
        assert all(attempts[s.id] == 1 for s in sent_before + waiting)
    finally:
        await gate.stop()


@pytest.mark.slow
async def test_events_waiting_through_a_rabbitmq_restart_send_every_mail_exactly_once(
    start_notifier: StartNotifier,
    clean_db: dict[str, asyncpg.Pool],
    amqp: aio_pika.abc.AbstractRobustConnection,
    sink: MailSink,
) -> None:
    """Restarts the SHARED RabbitMQ of this machine (`rabbitmqctl stop_app` / `start_app`, as
    tests/test_messaging.py does): other test sessions on the broker see the outage too."""
    await start_notifier()
    booking_pool = clean_db["booking"]
    relay = OutboxRelay(booking_pool, amqp, db_settings("booking"))
    await relay.start()
    clock = SystemClock()

    async def book(count: int) -> list[str]:
        snaps = [an_appointment() for _ in range(count)]
        async with booking_pool.acquire() as conn, conn.transaction():
            for snap in snaps:
                await add_event(conn, booked(snap), producer="booking", clock=clock)
        return [s.customer.email for s in snaps]

    try:
        addresses = await book(3)
        async with asyncio.timeout(15):
            await sink.wait_for_messages(3)

        async with broker_stopped():
            addresses += await book(5)  # held in the booking outbox while the broker is down
            await asyncio.sleep(1.0)

        async with asyncio.timeout(60):
            await sink.wait_for_messages(8)
        await asyncio.sleep(1.5)
        delivered = Counter(rcpt for m in sink.messages for rcpt in m.envelope_to)
        assert delivered == Counter(dict.fromkeys(addresses, 1))

        async def mail_events_published() -> bool:
            pending = await clean_db["notifier"].fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            return int(pending) == 0

        await wait_for(mail_events_published, timeout=30, what="mail.sent events to leave the outbox")
    finally:
        await relay.stop()
