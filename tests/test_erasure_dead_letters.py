"""R34, I4, I6: a dead letter is a whole event, customer data and the manage link's token included. When
booking erases an appointment's or a wish's personal data (on request, or by its retention run), every
consumer's dead letters about it keep the event (an administrator still sees and may replay it) but no
longer the person's data, also a dead letter that comes only after the erasure. Each service does this in
its own schema, on the erasure event it consumes anyway: the notifier, reporting and the gateway."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from services.notifier.app import create_app as create_notifier
from services.notifier.config import Settings as NotifierSettings
from services.reporting.app import create_app as create_reporting
from services.reporting.config import Settings as ReportingSettings
from shared.clock import SystemClock
from shared.events import EventData, make_envelope
from shared.events.appointment import AppointmentBookedV1
from shared.events.retention import AppointmentPersonalDataErasedV1
from shared.events.waiting_list import WaitingPersonalDataErasedV1, WaitingRegisteredV1, WishSnapshot
from tests.conftest import TEST_OVERRIDES, free_port, purge_test_queues, svc_settings, wait_for
from tests.notifier.conftest import an_appointment
from tools.mailsink import MailSink

# An event of a version no replica knows goes to the dead letters after one try.
UNKNOWN_AT_ONCE: dict[str, Any] = {"consumer_unknown_max_tries": 1, "consumer_unknown_retry_seconds": 0.1}
APPOINTMENT_CONSUMERS = ("notifier", "reporting", "gateway")
WISH_CONSUMERS = ("notifier", "reporting")


@pytest.fixture
async def consumers(clean_db: dict[str, asyncpg.Pool]) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    """The notifier, reporting and the gateway in-process, consuming this session's exchange."""
    await purge_test_queues()
    async with contextlib.AsyncExitStack() as stack:
        sink = await stack.enter_async_context(MailSink(smtp_port=0, http_port=0))
        nowhere = f"http://127.0.0.1:{free_port()}"
        apps = (
            create_notifier(svc_settings(NotifierSettings, smtp_port=sink.smtp_port, **UNKNOWN_AT_ONCE)),  # type: ignore[arg-type]
            create_reporting(svc_settings(ReportingSettings, **UNKNOWN_AT_ONCE)),  # type: ignore[arg-type]
            create_gateway(
                svc_settings(  # type: ignore[arg-type]
                    GatewaySettings,
                    port=free_port(),
                    catalog_urls=nowhere,
                    booking_urls=nowhere,
                    reporting_urls=nowhere,
                    notifier_urls=nowhere,
                    bot_defence=False,
                    **UNKNOWN_AT_ONCE,
                )
            ),
        )
        for app in apps:
            await stack.enter_async_context(TestClient(TestServer(app)))
        yield clean_db


async def publish(
    amqp: aio_pika.abc.AbstractRobustConnection, data: EventData, *, version: int | None = None
) -> str:
    """Publish as booking's relay would; `version`: as a newer release would (no replica knows it)."""
    envelope = make_envelope(data, producer="booking", clock=SystemClock())
    raw = envelope.model_dump(mode="json")
    if version is not None:
        raw["version"] = version
    channel = await amqp.channel(publisher_confirms=True)
    try:
        exchange = await channel.get_exchange(TEST_OVERRIDES["exchange"])
        await exchange.publish(
            aio_pika.Message(
                json.dumps(raw).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(envelope.id),
            ),
            routing_key=envelope.type,
        )
    finally:
        await channel.close()
    return str(envelope.id)


async def dead_bodies(pool: asyncpg.Pool, event_id: str) -> list[bytes]:
    rows = await pool.fetch("SELECT body FROM dead_letters WHERE event_id = $1", event_id)
    return [bytes(r["body"]) for r in rows]


async def dead_everywhere(pools: dict[str, asyncpg.Pool], services: tuple[str, ...], event_id: str) -> None:
    for service in services:

        async def collected(pool: asyncpg.Pool = pools[service]) -> bool:
            return bool(await dead_bodies(pool, event_id))

        await wait_for(collected, timeout=15, what=f"the dead letter at the {service}")


async def applied_everywhere(
    pools: dict[str, asyncpg.Pool], services: tuple[str, ...], event_id: str
) -> None:
    for service in services:

        async def applied(pool: asyncpg.Pool = pools[service]) -> bool:
            return bool(
                await pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", uuid.UUID(event_id))
            )

        await wait_for(applied, timeout=15, what=f"the erasure applied at the {service}")


def holds(bodies: list[bytes], *needles: str) -> bool:
    return any(needle.encode() in body for body in bodies for needle in needles)


@pytest.mark.req("R34")
async def test_an_erasure_leaves_every_consumers_dead_letters_about_the_appointment_without_its_data(
    consumers: dict[str, asyncpg.Pool], amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    pools = consumers
    erased, kept = an_appointment(), an_appointment()
    personal = (erased.customer.email, erased.customer.last_name, erased.customer.customer_number or "?")
    token = erased.manage_url.split("?", 1)[1]
    dead = await publish(amqp, AppointmentBookedV1(appointment=erased), version=99)
    other = await publish(amqp, AppointmentBookedV1(appointment=kept), version=99)
    await dead_everywhere(pools, APPOINTMENT_CONSUMERS, dead)
    await dead_everywhere(pools, APPOINTMENT_CONSUMERS, other)
    for service in APPOINTMENT_CONSUMERS:
        assert holds(await dead_bodies(pools[service], dead), *personal, token), service

    erasure = await publish(
        amqp, AppointmentPersonalDataErasedV1(appointment_id=erased.id, erased_at=erased.start)
    )
    await applied_everywhere(pools, APPOINTMENT_CONSUMERS, erasure)
    for service in APPOINTMENT_CONSUMERS:
        [body] = await dead_bodies(pools[service], dead)
        assert not holds([body], *personal, token), service
        # Still the event, for the administrator's list and a replay: the appointment, its place and time.
        envelope = json.loads(body)
        assert (envelope["type"], envelope["data"]["appointment"]["id"]) == (
            "appointment.booked",
            str(erased.id),
        )
        assert datetime.fromisoformat(envelope["data"]["appointment"]["start"]) == erased.start
        AppointmentBookedV1.model_validate(envelope["data"])  # a valid event of its type still
        # Another customer's dead letter is untouched.
        assert holds(await dead_bodies(pools[service], other), kept.customer.email), service

    # A dead letter about the erased appointment that comes only now is kept without the data too.
    late = await publish(
        amqp, AppointmentBookedV1(appointment=erased.model_copy(update={"revision": 2})), version=99
    )
    await dead_everywhere(pools, APPOINTMENT_CONSUMERS, late)
    for service in APPOINTMENT_CONSUMERS:
        assert not holds(await dead_bodies(pools[service], late), *personal, token), service


@pytest.mark.req("R34")
@pytest.mark.req("R45")
async def test_an_erased_wish_leaves_no_address_in_the_dead_letters_of_the_notifier_and_reporting(
    consumers: dict[str, asyncpg.Pool], amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    pools = consumers
    wish = _wish_snapshot()
    dead = await publish(amqp, WaitingRegisteredV1(wish=wish), version=99)
    await dead_everywhere(pools, WISH_CONSUMERS, dead)
    for service in WISH_CONSUMERS:
        assert holds(await dead_bodies(pools[service], dead), wish.customer.email, "token="), service

    erasure = await publish(amqp, WaitingPersonalDataErasedV1(wish_id=wish.id, erased_at=wish.registered_at))
    await applied_everywhere(pools, WISH_CONSUMERS, erasure)
    for service in WISH_CONSUMERS:
        [body] = await dead_bodies(pools[service], dead)
        assert not holds([body], wish.customer.email, wish.customer.last_name, "token="), service
        assert json.loads(body)["data"]["wish"]["id"] == str(wish.id)


def _wish_snapshot() -> WishSnapshot:
    wish_id = uuid.uuid4()
    return WishSnapshot.model_validate(
        {
            "id": wish_id,
            "reference": "W-" + wish_id.hex[:6].upper(),
            "revision": 1,
            "status": "pending_opt_in",
            "location_id": "mitte",
            "location_name": "Geschäftsstelle Mitte",
            "location_address": "Doventorsteinweg 48-52, 28195 Bremen",
            "concern_id": "neuantrag",
            "concern_name": "Neuantrag stellen",
            "mode": "in_person",
            "weekdays": [1, 2],
            "latest_date": date(2037, 12, 31),
            "customer": {
                "first_name": "Erika",
                "last_name": "Wartelistig",
                "email": f"wish-{wish_id.hex[:8]}@example.org",
            },
            "page_url": f"https://termine.example/waiting-list/{wish_id}?token=wish-token-{uuid.uuid4().hex}",
            "registered_at": datetime(2037, 12, 1, 9, 0, tzinfo=UTC),
        }
    )
