"""Fixtures of the integration tests: a gateway on the test database with its own broker names, a fake
resolver at the network's edge, a webhook receiver on 127.0.0.1 that verifies signatures from the
Standard Webhooks specification (not with the gateway's signer), and events published through RabbitMQ."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from services.gateway.integrations.keys import RESOLVER
from services.gateway.staff.domain import GrantRow
from services.gateway.staff.keys import STAFF
from services.gateway.staff.service import Actor, create_account
from shared.clock import ManualClock
from shared.events import EventData, make_envelope
from shared.events.appointment import (
    AppointmentBookedV1,
    AppointmentCancelledV1,
    AppointmentRescheduledV1,
    AppointmentSnapshot,
    CancelledBy,
    CustomerData,
)
from shared.identity import Role
from tests.conftest import delete_broker_objects, free_port, own_broker_names, svc_settings
from tests.staff.conftest import CHEAP_HASHER, StaffClient

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeResolver:
    """DNS at the edge: names map to the addresses a test gives them."""

    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = names or {}

    async def resolve(self, host: str, port: int) -> list[str]:
        return list(self.names.get(host, []))


# --- a receiver that verifies like a subscriber would ------------------------------------------------
class SignatureError(Exception):
    pass


def verify(
    secret: str, headers: dict[str, str], body: bytes, now: datetime, tolerance: int = 300
) -> dict[str, Any]:
    """Standard Webhooks: HMAC-SHA256 over "{id}.{timestamp}.{body}" with the base64 key after `whsec_`."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now.timestamp() - int(timestamp)) > tolerance:
        raise SignatureError("stale timestamp")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    )
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            result: dict[str, Any] = json.loads(body)
            return result
    raise SignatureError("bad signature")


@dataclass
class Receiver:
    clock: ManualClock
    secret: str = ""
    status: int = 200
    # Seconds it takes to answer (a slow but healthy receiver).
    delay: float = 0.0
    # A request whose body holds one of these is refused with 422 (a payload the receiver cannot take).
    refuse: set[str] = field(default_factory=set)
    # Every request as it came (headers, raw body), and the verified events by webhook-id.
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[dict[str, Any]] = field(default_factory=list)
    server: TestServer | None = None

    def app(self) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            body = await request.read()
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append((headers, body))
            await asyncio.sleep(self.delay)
            if self.status != 200:
                return web.Response(status=self.status)
            if any(text.encode() in body for text in self.refuse):
                return web.Response(status=422)
            try:
                event = verify(self.secret, headers, body, self.clock.now())
            except SignatureError:
                return web.Response(status=401)
            if headers["webhook-id"] not in self.received:  # duplicates are dropped by id
                self.received[headers["webhook-id"]] = event
                self.order.append(event)
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        return app

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/hook"


# --- the gateway --------------------------------------------------------------------------------------
@dataclass
class Env:
    app: web.Application
    client: TestClient[web.Request, web.Application]
    clock: ManualClock
    resolver: FakeResolver
    exchange: str
    amqp: aio_pika.abc.AbstractRobustConnection

    async def account(self, username: str, *grants: tuple[Role, str]) -> StaffClient:
        await create_account(
            self.app[STAFF],
            Actor("test", "system"),
            username=username,
            display_name=username,
            grants=[GrantRow(g[0], g[1], ()) for g in grants],
            password="correct horse battery staple",
        )
        browser = StaffClient(self.client)
        response = await browser.login(username, "correct horse battery staple")
        assert response.status == 200, await response.text()
        return browser

    async def publish(self, data: EventData) -> str:
        envelope = make_envelope(data, producer="booking", clock=self.clock)
        channel = await self.amqp.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                content_type="application/json",
                message_id=str(envelope.id),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=envelope.type,
        )
        await channel.close()
        return str(envelope.id)


EnvFactory = Callable[..., Awaitable[Env]]
ReceiverFactory = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def integration_db(pools: dict[str, asyncpg.Pool]) -> asyncpg.Pool:
    pool = pools["gateway"]
    await pool.execute(
        "DELETE FROM webhook_deliveries; DELETE FROM webhook_subscriptions; DELETE FROM event_feed;"
        " DELETE FROM feed_revisions; DELETE FROM event_feed_purged;"
        " DELETE FROM inbox WHERE consumer = 'gateway.integrations';"
        " DELETE FROM staff_sessions; DELETE FROM staff_grants; DELETE FROM staff_accounts;"
        " DELETE FROM api_keys;"
    )
    return pool


@pytest.fixture
async def make_env(
    integration_db: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[EnvFactory]:
    started: list[tuple[TestClient[web.Request, web.Application], dict[str, str]]] = []

    async def start(**overrides: Any) -> Env:
        broker = own_broker_names()
        nowhere = f"http://127.0.0.1:{free_port()}"
        settings = svc_settings(
            GatewaySettings,
            port=free_port(),
            catalog_urls=nowhere,
            booking_urls=nowhere,
            reporting_urls=nowhere,
            notifier_urls=nowhere,
            **{
                "bot_defence": False,
                "webhook_allow_loopback": True,
                "webhook_send_interval_seconds": 0.05,
                "webhook_timeout_seconds": 3.0,
                # The tests move the clock by days: the administrator's session outlasts them.
                "staff_session_idle_minutes": 100_000,
                "staff_session_absolute_hours": 10_000,
                **broker,
                **overrides,
            },
        )
        clock = ManualClock(START)
        resolver = FakeResolver()
        app = create_gateway(settings, clock=clock)  # type: ignore[arg-type]
        app[RESOLVER] = resolver
        client = TestClient(TestServer(app), cookie_jar=aiohttp.DummyCookieJar())
        await client.start_server()
        app[STAFF].passwords.hasher = CHEAP_HASHER
        started.append((client, {"exchange": settings.exchange, "queue_prefix": settings.queue_prefix}))
        return Env(app, client, clock, resolver, broker["exchange"], amqp)

    yield start
    for client, broker in started:
        await client.close()
        await delete_broker_objects(amqp, **broker)


@pytest.fixture
async def receiver(make_env: EnvFactory) -> AsyncIterator[Callable[[ManualClock], Awaitable[Receiver]]]:
    servers: list[TestServer] = []

    async def start(clock: ManualClock) -> Receiver:
        rec = Receiver(clock)
        rec.server = TestServer(rec.app(), host="127.0.0.1")
        await rec.server.start_server()
        servers.append(rec.server)
        return rec

    yield start
    for server in servers:
        await server.close()


# --- events of booking's models -----------------------------------------------------------------------
def snapshot(
    appointment_id: uuid.UUID, revision: int, location: str = "mitte", **changes: Any
) -> AppointmentSnapshot:
    start = START + timedelta(days=1, hours=revision)
    values: dict[str, Any] = {
        "id": appointment_id,
        "reference": f"T-{str(appointment_id)[:6].upper()}",
        "revision": revision,
        "status": "booked",
        "location_id": location,
        "location_name": location.capitalize(),
        "location_address": "Am Markt 1, 28195 Bremen",
        "group_id": "eingang",
        "service_point": 1,
        "concern_id": "neuantrag",
        "concern_name": "Neuantrag",
        "start": start,
        "end": start + timedelta(minutes=30),
        "mode": "in_person",
        "channel": "service_centre",
        "customer": CustomerData(
            first_name="Erika",
            last_name="Mustermann",
            email="erika@example.org",
            customer_number="123D456789",
        ),
        "manage_url": f"https://termine.example/manage/{appointment_id}?token=secret-token",
        "booked_at": START,
    }
    values.update(changes)
    return AppointmentSnapshot(**values)


def booked(appointment_id: uuid.UUID, location: str = "mitte") -> AppointmentBookedV1:
    return AppointmentBookedV1(appointment=snapshot(appointment_id, 1, location))


def rescheduled(
    appointment_id: uuid.UUID, revision: int, location: str = "mitte"
) -> AppointmentRescheduledV1:
    before = snapshot(appointment_id, revision - 1, location)
    return AppointmentRescheduledV1(
        appointment=snapshot(appointment_id, revision, location),
        previous_start=before.start,
        previous_end=before.end,
    )


def cancelled(appointment_id: uuid.UUID, revision: int, location: str = "mitte") -> AppointmentCancelledV1:
    return AppointmentCancelledV1(
        appointment=snapshot(appointment_id, revision, location, status="cancelled"),
        cancelled_by=CancelledBy.SERVICE_CENTRE,
        reason="Frau Mustermann ist erkrankt",
    )
