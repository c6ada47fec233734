"""The whole of OTV as real processes for the fault and observability tests: every service started as
`python -m services.<name>` on a free loopback port, against the test database and this test session's
exchange and queues (tests/conftest.py puts them into os.environ), sending mail to an in-process MailSink.
Each process writes its JSON log lines to a file of its own, which tests read.

Helpers here: start, SIGKILL and restart one service; wait until every service is ready; a stream of
bookings through the gateway; and the checks every fault test ends with (`assert_consistent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg

from services.booking.domain import LocationConfig, available_slots
from shared.clock import BERLIN
from shared.events.catalog import (
    Address,
    ConcernOffer,
    GroupKind,
    GroupSnapshot,
    LeadTime,
    LocationConfiguredV1,
    Mode,
    WindowSnapshot,
)
from tests.conftest import TEST_OVERRIDES, wait_for
from tools.mailsink import MailSink, StoredMessage

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("catalog", "booking", "notifier", "reporting", "gateway")
LOCATION = "fault-mitte"
GROUP = "ez"
POINTS = 20
CONCERN = "kurz"

# Short timers, so that recovery is seen within seconds: the outbox relay and the mail sender look for
# work twice a second even without a NOTIFY; a crashed sender's mails are taken over after 15 s (the
# shortest lease the SMTP timeouts below allow); a failed delivery or event is retried after a fraction of
# a second.
FAST_TIMERS = {
    "OTV_OUTBOX_POLL_SECONDS": "0.5",
    "OTV_MAIL_POLL_SECONDS": "0.5",
    "OTV_SMTP_TIMEOUT": "5",
    "OTV_SMTP_DATA_TIMEOUT_SECONDS": "5",
    "OTV_MAIL_LEASE_SECONDS": "15",
    "OTV_MAIL_RETRY_BASE_SECONDS": "0.5",
    "OTV_MAIL_RETRY_MAX_SECONDS": "2",
    "OTV_CONSUMER_RETRY_BASE_MS": "100",
    "OTV_SHUTDOWN_TIMEOUT": "5",
}


@dataclass
class Service:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no cleanup, as when a node dies."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM without waiting (stop several at once, then `stop` each)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_lines(self) -> list[dict[str, Any]]:
        """The process's JSON log lines (other output, such as a traceback on stderr, is left out)."""
        lines = []
        for raw in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                parsed = json.loads(raw)
                if isinstance(parsed, dict):
                    lines.append(parsed)
        return lines

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class System:
    services: dict[str, Service]
    sink: MailSink
    pools: dict[str, asyncpg.Pool]
    amqp: aio_pika.abc.AbstractRobustConnection
    starts: list[datetime]
    log_dir: Path
    _next_start: int = 0
    _taken: dict[str, int] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.services['gateway'].port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.services[service].port}"

    def describe(self) -> str:
        return "\n".join(
            f"--- {s.name} (alive {s.alive}, started {s.starts}x):\n{s.tail()}"
            for s in self.services.values()
        )

    def next_slot(self) -> str:
        """A start no other booking of this session has used on every point yet (POINTS per start)."""
        start = self.starts[self._next_start // POINTS]
        self._next_start += 1
        return start.isoformat()

    async def restart(self, name: str) -> None:
        service = self.services[name]
        if service.alive:
            service.stop()
        service.start()
        await self.wait_ready([name])

    async def wait_ready(self, names: list[str] | None = None, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        wanted = names or list(self.services)

        async def ready() -> bool:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
                for name in wanted:
                    service = self.services[name]
                    if not service.alive:
                        raise AssertionError(f"{name} exited\n{self.describe()}")
                    try:
                        async with http.get(f"{self.url(name)}/readyz") as response:
                            if response.status != 200:
                                return False
                    except (aiohttp.ClientError, TimeoutError):
                        return False
            return True

        try:
            await wait_for(ready, timeout=timeout, interval=0.2, what=f"{', '.join(wanted)} ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None


def location_snapshot(today: date) -> LocationConfiguredV1:
    return LocationConfiguredV1(
        location_id=LOCATION,
        revision=int(time.time() * 1000),
        name="Jobcenter Fault-Mitte",
        address=Address(street="Teststraße 1", postcode="28195"),
        hotline="0421 0000000",
        lead_time=LeadTime(min_minutes=0, max_days=56),
        groups=[
            GroupSnapshot(id=GROUP, kind=GroupKind.ENTRANCE_ZONE, name={"de": "EZ"}, service_points=POINTS)
        ],
        windows=[
            WindowSnapshot(
                group_id=GROUP, weekday=d, start=wall_time(7), end=wall_time(19), service_points=POINTS
            )
            for d in range(5)
        ],
        concerns=[
            ConcernOffer(
                concern_id=CONCERN,
                group_id=GROUP,
                name={"de": "Kurze Frage", "en": "Short question"},
                duration_minutes=15,
                modes=[Mode.IN_PERSON, Mode.PHONE],
            )
        ],
    )


def bookable_starts(snapshot: LocationConfiguredV1, today: date) -> list[datetime]:
    config = LocationConfig.of(snapshot)
    offer = config.concern(CONCERN)
    assert offer is not None
    # From the day after tomorrow on: no slot closes (cutoff, lead time) while a test runs.
    first, last = today + timedelta(days=2), today + timedelta(days=50)
    return [s.start for s in available_slots(config, offer, first, last, datetime.now(BERLIN), {})]


def service_env(
    name: str, ports: dict[str, int], smtp_port: int, extra: dict[str, str] | None = None
) -> dict[str, str]:
    public = f"http://127.0.0.1:{ports['gateway']}"
    env = {
        **os.environ,  # OTV_DB_NAME, OTV_EXCHANGE, OTV_QUEUE_PREFIX of this test session
        **FAST_TIMERS,
        "OTV_PORT": str(ports[name]),
        "OTV_PUBLIC_BASE_URL": public,
        "OTV_SMTP_PORT": str(smtp_port),
        "OTV_BOT_DEFENCE": "off",
        "OTV_LOG_JSON": "true",
        "OTV_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    if name == "gateway":
        for upstream in ("catalog", "booking", "notifier", "reporting"):
            env[f"OTV_{upstream.upper()}_URLS"] = f"http://127.0.0.1:{ports[upstream]}"
    env.update(extra or {})
    return env


# --- bookings ---------------------------------------------------------------------------------------------


@dataclass
class Attempt:
    n: int
    email: str
    status: int  # 0: no answer (connection refused or reset)
    appointment_id: str | None
    correlation_id: str | None


_CUSTOMER_NUMBERS = itertools.count(1)


def customer(tag: str, n: int) -> dict[str, str]:
    k = next(_CUSTOMER_NUMBERS)
    return {
        "first_name": "Fault",
        "last_name": f"Test {n}",
        "email": f"{tag}-{n}@faults.invalid",
        # 123D456789 (three digits, a letter, six digits); every customer of the session has their own (R47).
        "customer_number": f"{k // 1_000_000 % 1000:03d}F{k % 1_000_000:06d}",
    }


async def book(
    http: aiohttp.ClientSession, system: System, tag: str, n: int, *, headers: dict[str, str] | None = None
) -> Attempt:
    body = {
        "location_id": LOCATION,
        "concern_id": CONCERN,
        "start": system.next_slot(),
        "mode": "in_person",
        "customer": customer(tag, n),
    }
    email = body["customer"]["email"]  # type: ignore[index]
    try:
        async with http.post(f"{system.gateway}/api/v1/appointments", json=body, headers=headers) as response:
            answer = await response.json(content_type=None)
            appointment_id = answer.get("id") if response.status == 201 else None
            cid = response.headers.get("X-Correlation-ID")
            return Attempt(n, email, response.status, appointment_id, cid)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return Attempt(n, email, 0, None, None)


async def booking_stream(
    system: System, tag: str, fault: Callable[[], Awaitable[None]], *, workers: int = 2, pause: float = 0.05
) -> list[Attempt]:
    """Book continuously through the gateway while `fault` runs (and one second after it), then return
    every attempt with its answer."""
    attempts: list[Attempt] = []
    done = asyncio.Event()
    counter = iter(range(100_000))

    async def worker(http: aiohttp.ClientSession) -> None:
        while not done.is_set():
            attempts.append(await book(http, system, tag, next(counter)))
            await asyncio.sleep(pause)

    timeout = aiohttp.ClientTimeout(total=15)
    # A new connection per request: a restarted gateway is reached at once, no dead pooled connection.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        tasks = [asyncio.create_task(worker(http)) for _ in range(workers)]
        try:
            await fault()
            await asyncio.sleep(1.0)
        finally:
            done.set()
            await asyncio.gather(*tasks)
    return attempts


# --- the checks -------------------------------------------------------------------------------------------

OUTBOX_SCHEMAS = ("gateway", "catalog", "booking", "notifier", "reporting")


async def unpublished(system: System) -> dict[str, int]:
    counts = {}
    for schema in OUTBOX_SCHEMAS:
        counts[schema] = int(
            await system.pools[schema].fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        )
    return {k: v for k, v in counts.items() if v}


async def queue_depths(system: System) -> dict[str, int]:
    """Messages waiting in the work, retry and dead-letter queues of every consumer of this session."""
    prefix = TEST_OVERRIDES["queue_prefix"]
    depths = {}
    channel = await system.amqp.channel()
    try:
        for consumer in ("booking.catalog", "booking.mail", "notifier.appointments", "reporting.events"):
            for suffix in ("", ".retry", ".dead"):
                name = f"{prefix}.{consumer}{suffix}"
                queue = await channel.declare_queue(name, passive=True)
                depths[name] = queue.declaration_result.message_count or 0
    finally:
        await channel.close()
    return {k: v for k, v in depths.items() if v}


def mails_to(sink: MailSink, tag: str) -> dict[str, list[StoredMessage]]:
    found: dict[str, list[StoredMessage]] = {}
    suffix = "@faults.invalid"
    for message in sink.messages:
        for rcpt in message.envelope_to:
            if rcpt.startswith(f"{tag}-") and rcpt.endswith(suffix):
                found.setdefault(rcpt, []).append(message)
    return found


def message_id(message: StoredMessage) -> str:
    parsed = BytesParser(policy=default_policy).parsebytes(message.raw)
    return str(parsed["Message-ID"])


async def assert_consistent(
    system: System, tag: str, attempts: list[Attempt], *, resent_allowed: bool = False
) -> None:
    """After a fault: every accepted booking (201) exists once; every appointment of these customers got
    its confirmation once (`resent_allowed`: the one SMTP edge, a mail the server had taken when the
    notifier died before recording it, may come twice, with the same Message-ID); no outbox holds an
    unpublished event and no queue a waiting message; every service is ready again."""
    accepted = {a.appointment_id: a.email for a in attempts if a.status == 201}
    assert accepted, f"no booking was accepted at all: {[a.status for a in attempts]}\n{system.describe()}"
    booking = system.pools["booking"]
    rows = await booking.fetch(
        "SELECT id::text AS id, email, status FROM appointments WHERE email LIKE $1", f"{tag}-%"
    )
    stored = {r["id"]: r for r in rows}
    for appointment_id, email in accepted.items():
        assert appointment_id in stored, f"accepted booking {appointment_id} is missing"
        assert stored[appointment_id]["email"] == email
        assert stored[appointment_id]["status"] == "booked"
    emails = [r["email"] for r in rows]
    assert len(emails) == len(set(emails)), "a customer holds two appointments"
    # A booking whose answer was lost (the gateway or booking died after the commit) exists too; its
    # customer is told by mail all the same. Every appointment here has a customer of this test.
    await system.wait_ready(timeout=60)

    async def every_mail_arrived() -> bool:
        got = mails_to(system.sink, tag)
        return all(email in got for email in emails)

    try:
        await wait_for(every_mail_arrived, timeout=45, interval=0.2, what="every confirmation mail")
    except AssertionError as exc:
        missing = sorted(set(emails) - set(mails_to(system.sink, tag)))
        raise AssertionError(f"{exc}: missing {len(missing)} of {len(emails)}\n{system.describe()}") from None
    await wait_for(lambda: _outboxes_empty(system), timeout=30, interval=0.2, what="every outbox published")
    await wait_for(lambda: _queues_empty(system), timeout=30, interval=0.2, what="every queue drained")
    await asyncio.sleep(0.5)  # a duplicate would arrive by now
    got = mails_to(system.sink, tag)
    assert set(got) == set(emails), f"mail to somebody without an appointment: {set(got) - set(emails)}"
    for messages in got.values():
        ids = {message_id(m) for m in messages}
        assert len(ids) == 1, f"{len(ids)} different confirmations for one appointment"
        if resent_allowed:
            assert len(messages) <= 2, f"{len(messages)} copies of one confirmation"
        else:
            assert len(messages) == 1, f"{len(messages)} copies of one confirmation"
    notifier = system.pools["notifier"]
    dead = await notifier.fetchval("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL")
    assert dead == 0, "an event of the stream ended in the notifier's dead letters"


async def _outboxes_empty(system: System) -> bool:
    try:
        return not await unpublished(system)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def _queues_empty(system: System) -> bool:
    try:
        return not await queue_depths(system)
    except (aio_pika.exceptions.AMQPError, OSError, RuntimeError):
        return False
