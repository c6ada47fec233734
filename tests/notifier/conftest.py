"""Fixtures of the notifier's tests: the mail sink, the notifier running in-process on the real
PostgreSQL and RabbitMQ, and appointment events published through the real exchange."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from icalendar import Calendar

from services.notifier.app import SENDER, create_app
from services.notifier.config import Settings
from services.notifier.sender import MailSender
from shared.clock import BERLIN, Clock, ManualClock, SystemClock
from shared.events import Envelope, EventData, make_envelope
from shared.events.appointment import (
    AppointmentBookedV1,
    AppointmentCancelledV1,
    AppointmentRescheduledV1,
    AppointmentSnapshot,
    AppointmentStatus,
    CancelledBy,
)
from tests.conftest import TEST_OVERRIDES, publish_envelope, svc_settings
from tools.mailsink import MailSink, StoredMessage

QUEUE = f"{TEST_OVERRIDES['queue_prefix']}.notifier.appointments"


def notifier_settings(smtp_port: int, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "smtp_port": smtp_port,
        "smtp_timeout": 5.0,
        "smtp_data_timeout_seconds": 10.0,
        "mail_poll_seconds": 0.2,
        "mail_retry_base_seconds": 0.2,
        "mail_retry_max_seconds": 1.0,
        # Covers a conversation (smtp_timeout 20 in some tests + the data timeout + the recording).
        "mail_lease_seconds": 60.0,
    }
    settings = svc_settings(Settings, **{**defaults, **overrides})
    assert isinstance(settings, Settings)
    return settings


@pytest.fixture
async def clean_db(pools: dict[str, asyncpg.Pool]) -> dict[str, asyncpg.Pool]:
    """Empty the notifier's tables and the booking outbox these tests write to; the other services'
    tables are not touched here (emptying every schema took seconds per test)."""
    await pools["notifier"].execute(
        "TRUNCATE appointments, erased_appointments, mails, suppressions, mail_templates, outbox, inbox,"
        " dead_letters"
    )
    await pools["booking"].execute("TRUNCATE outbox")
    return pools


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    async with MailSink(smtp_port=0, http_port=0) as running:
        yield running


@dataclass
class Notifier:
    client: TestClient[Any, Any]
    settings: Settings
    clock: Clock
    # The other replicas started with this one (same settings and clock).
    peers: list[TestClient[Any, Any]] = field(default_factory=list)

    @property
    def sender(self) -> MailSender:
        return _sender_of(self.client)

    @property
    def senders(self) -> list[MailSender]:
        """The mail senders of this replica and its peers."""
        return [_sender_of(client) for client in (self.client, *self.peers)]


def _sender_of(client: TestClient[Any, Any]) -> MailSender:
    app = client.app
    assert app is not None
    sender: MailSender = app[SENDER]
    return sender


# Every notifier test runs against one process and, unchanged, against two replicas (invariant I7): both
# consume the one queue and both senders claim from the one mail table.
@pytest.fixture(params=[1, 2], ids=["one-replica", "two-replicas"])
async def start_notifier(
    request: pytest.FixtureRequest,
    clean_db: dict[str, asyncpg.Pool],
    amqp: aio_pika.abc.AbstractRobustConnection,
    sink: MailSink,
) -> AsyncIterator[Callable[..., Awaitable[Notifier]]]:
    """Starts the notifier in-process (consumer, sender, outbox relay, HTTP) as `replicas` processes
    of the same settings and clock; returns the first; all stopped at the end."""
    await purge_queue(amqp)
    running: list[TestClient[Any, Any]] = []
    replicas: int = request.param

    async def start(clock: Clock | None = None, **overrides: Any) -> Notifier:
        # smtp_port: a proxy in front of the sink (tests/notifier/smtp_gate.py) instead of the sink itself
        settings = notifier_settings(overrides.pop("smtp_port", sink.smtp_port), **overrides)
        used = clock or SystemClock()
        clients: list[TestClient[Any, Any]] = []
        for _ in range(replicas):
            client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, clock=used)))
            await client.start_server()
            running.append(client)
            clients.append(client)
        return Notifier(clients[0], settings, used, peers=clients[1:])

    yield start
    for client in reversed(running):
        await client.close()


async def stop_notifier(notifier: Notifier) -> None:
    await notifier.client.close()


async def purge_queue(amqp: aio_pika.abc.AbstractRobustConnection) -> None:
    """Leftovers of an earlier test must not reach this one."""
    channel = await amqp.channel()
    try:
        queue = await channel.declare_queue(QUEUE, passive=True)
        await queue.purge()
    except aio_pika.exceptions.ChannelClosed:
        return  # not declared yet: nothing to purge
    with contextlib.suppress(Exception):
        await channel.close()


# -- appointments and their events --------------------------------------------------------------------


def an_appointment(start: datetime | None = None, **changes: Any) -> AppointmentSnapshot:
    # Far ahead: the notifier of most tests runs on the real clock, and a confirmation that cannot go out
    # before the start is given up (a date of this year became a time bomb once it had passed).
    start = start or datetime(2037, 12, 8, 9, 0, tzinfo=UTC)
    customer = {
        "first_name": "Erika",
        "last_name": "Mustermann",
        "email": f"kunde-{uuid.uuid4().hex[:10]}@example.org",
        "phone": "0421 555 0101",
        "customer_number": "123D456789",
    }
    customer.update(changes.pop("customer", {}))
    appointment_id = changes.pop("id", uuid.uuid4())
    values: dict[str, Any] = {
        "id": appointment_id,
        "reference": f"OTV-{str(appointment_id)[:6].upper()}",
        "revision": 1,
        "status": AppointmentStatus.BOOKED,
        "location_id": "mitte",
        "location_name": "Geschäftsstelle Mitte",
        "location_address": "Doventorsteinweg 48-52, 28195 Bremen",
        "group_id": "mitte-ez",
        "service_point": 1,
        "concern_id": "neuantrag",
        "concern_name": "Neuantrag stellen",
        "start": start,
        "end": start + timedelta(minutes=30),
        "mode": "in_person",
        "channel": "online",
        "language": "de",
        "documents": ["Personalausweis", "Mietvertrag"],
        "customer": customer,
        "manage_url": f"https://termine.example/manage/{appointment_id}?token=secret-token-{uuid.uuid4().hex}",
        "booked_at": start - timedelta(days=5),
    }
    values.update(changes)
    return AppointmentSnapshot.model_validate(values)


def moved(snap: AppointmentSnapshot, **changes: Any) -> AppointmentSnapshot:
    return snap.model_copy(update={"revision": snap.revision + 1, **changes})


def booked(snap: AppointmentSnapshot) -> AppointmentBookedV1:
    return AppointmentBookedV1(appointment=snap)


def rescheduled(old: AppointmentSnapshot, new: AppointmentSnapshot) -> AppointmentRescheduledV1:
    return AppointmentRescheduledV1(appointment=new, previous_start=old.start, previous_end=old.end)


def cancelled(snap: AppointmentSnapshot, by: CancelledBy = CancelledBy.CUSTOMER, reason: str = "") -> Any:
    after = moved(snap, status=AppointmentStatus.CANCELLED)
    return AppointmentCancelledV1(appointment=after, cancelled_by=by, reason=reason)


@dataclass
class Publisher:
    amqp: aio_pika.abc.AbstractRobustConnection
    sent: list[Envelope] = field(default_factory=list)

    async def __call__(
        self,
        data: EventData,
        *,
        occurred_at: datetime | None = None,
        correlation_id: str | None = None,
    ) -> Envelope:
        envelope = make_envelope(
            data,
            producer="booking",
            clock=ManualClock(occurred_at) if occurred_at else SystemClock(),
            correlation_id=correlation_id or f"cid-{uuid.uuid4().hex[:12]}",
        )
        await self.publish_envelope(envelope)
        return envelope

    async def publish_envelope(self, envelope: Envelope) -> None:
        await publish_envelope(self.amqp, envelope)
        self.sent.append(envelope)


@pytest.fixture
def publish(amqp: aio_pika.abc.AbstractRobustConnection) -> Publisher:
    return Publisher(amqp)


async def confirmed(publish: Publisher, sink: MailSink, **changes: Any) -> AppointmentSnapshot:
    """An appointment on Tuesday 8 December 2037, 10:00 in Bremen, booked, its confirmation delivered."""
    snap = an_appointment(**changes)
    await publish(booked(snap))
    await mails_to(sink, snap.customer.email)
    return snap


# -- reading the sink ---------------------------------------------------------------------------------


async def mails_to(sink: MailSink, address: str, count: int = 1, wait: float = 10.0) -> list[StoredMessage]:
    async with asyncio.timeout(wait):
        return await sink.wait_for_messages(count, to=address)


def received(sink: MailSink, address: str) -> list[StoredMessage]:
    return [m for m in sink.messages if m.is_addressed_to(address)]


def calendar_of(message: StoredMessage) -> tuple[Calendar, str]:
    """The invitation of a mail, parsed back with icalendar, and the method of its alternative part."""
    parts = [p for p in message.leaf_parts() if p.get_content_type() == "text/calendar"]
    assert parts, "no text/calendar part"
    inline = next(p for p in parts if p.get_content_disposition() != "attachment")
    attachment = next(p for p in parts if p.get_content_disposition() == "attachment")
    payload = inline.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert attachment.get_payload(decode=True) == payload
    assert (attachment.get_filename() or "").endswith(".ics")
    return Calendar.from_ical(payload), str(inline.get_param("method"))


def body_of(message: StoredMessage, subtype: str) -> str:
    part = message.parsed.get_body(preferencelist=(subtype,))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


async def mail_rows(pool: asyncpg.Pool, appointment_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM mails WHERE appointment_id = $1 ORDER BY created_at, kind", appointment_id
    )
    return rows
