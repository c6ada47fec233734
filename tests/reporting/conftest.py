"""Fixtures of the reporting tests: reporting app instances on the real PostgreSQL and RabbitMQ with a
moved clock, events published to the session's exchange as booking and catalog would, and signed staff
identities as the gateway would send them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.reporting.app import create_app
from services.reporting.config import Settings
from shared.clock import BERLIN, ManualClock
from shared.events import Envelope, EventData, make_envelope
from shared.events.appointment import (
    AppointmentBookedV1,
    AppointmentCancelledV1,
    AppointmentPassedV1,
    AppointmentRescheduledV1,
    AppointmentSnapshot,
    AppointmentStatus,
    CancelledBy,
    Channel,
    CustomerData,
    Language,
)
from shared.events.catalog import (
    Address,
    ConcernOffer,
    GroupKind,
    GroupSnapshot,
    LocationConfiguredV1,
    Mode,
    WindowSnapshot,
)
from shared.events.staff_work import AppointmentTransferredV1
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from tests.conftest import purge_test_queues, svc_settings, wait_for

# A Tuesday without a public holiday in Bremen, and the Monday before it.
DAY = date(2025, 3, 11)
BEFORE = date(2025, 3, 10)


def berlin(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN).astimezone(UTC)


# --- catalog snapshots ------------------------------------------------------------------------------

CONCERNS = {
    "neuantrag": ("ez", "Neuantrag stellen", 60, [Mode.IN_PERSON]),
    "veraenderung": ("ez", "Mitteilung einer Veränderung", 15, [Mode.IN_PERSON, Mode.PHONE]),
    "leistungsbezug": ("lt1", "Fragen zum Leistungsbezug", 30, [Mode.IN_PERSON, Mode.PHONE]),
    "energiesperre": ("lt1", "Drohende / eingetretene Energiesperre", 30, [Mode.IN_PERSON, Mode.PHONE]),
}
LOCATION_NAMES = {"mitte": "Bremen-Mitte", "nord": "Bremen-Nord"}


def location_event(location_id: str, revision: int = 1, *, ez_points: int = 3) -> LocationConfiguredV1:
    windows = [
        WindowSnapshot(group_id="ez", weekday=wd, start=time(8), end=time(12), service_points=ez_points)
        for wd in range(5)
    ] + [
        WindowSnapshot(group_id="lt1", weekday=wd, start=time(8), end=time(12), service_points=2)
        for wd in range(4)
    ]
    windows.append(WindowSnapshot(group_id="lt1", weekday=3, start=time(14), end=time(18), service_points=1))
    return LocationConfiguredV1(
        location_id=location_id,
        revision=revision,
        name=LOCATION_NAMES[location_id],
        address=Address(street="Doventorsteinweg 48", postcode="28195"),
        hotline="0421 1234",
        groups=[
            GroupSnapshot(
                id="ez", kind=GroupKind.ENTRANCE_ZONE, name={"de": "Eingangszone"}, service_points=3
            ),
            GroupSnapshot(
                id="lt1", kind=GroupKind.BENEFITS_TEAM, name={"de": "Leistungsteam 1"}, service_points=2
            ),
        ],
        windows=windows,
        concerns=[
            ConcernOffer(
                concern_id=cid,
                group_id=group,
                name={"de": name, "en": f"{name} (en)"},
                duration_minutes=minutes,
                modes=modes,
                sensitive=cid == "energiesperre",
                emergency=cid == "energiesperre",
            )
            for cid, (group, name, minutes, modes) in CONCERNS.items()
        ],
    )


# --- appointments ------------------------------------------------------------------------------------


@dataclass
class Appt:
    """One appointment as booking sees it; events are built from its current state."""

    location_id: str
    concern_id: str
    start: datetime
    first_name: str = "Erika"
    last_name: str = "Mustermann"
    email: str = ""
    phone: str | None = None
    customer_number: str | None = "123D456789"
    household_number: str | None = None
    mode: Mode = Mode.IN_PERSON
    channel: Channel = Channel.ONLINE
    service_point: int = 1
    interpreter_language: str | None = None
    language: Language = Language.DE
    language_tag: str = ""  # a language the pages offer as content (R43), besides `language`
    booked_at: datetime = field(default_factory=lambda: berlin(BEFORE, 10))
    client_network: str | None = None
    evening: bool = False
    status: AppointmentStatus = AppointmentStatus.BOOKED
    revision: int = 1
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        if not self.email:
            self.email = f"kunde-{self.id.hex[:8]}@example.org"

    @property
    def reference(self) -> str:
        return "T-" + self.id.hex[:8].upper()

    @property
    def group_id(self) -> str:
        return CONCERNS[self.concern_id][0]

    @property
    def minutes(self) -> int:
        return CONCERNS[self.concern_id][2]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    @property
    def day(self) -> date:
        return self.start.astimezone(BERLIN).date()

    def snapshot(self) -> AppointmentSnapshot:
        return AppointmentSnapshot(
            id=self.id,
            reference=self.reference,
            revision=self.revision,
            status=self.status,
            location_id=self.location_id,
            location_name=LOCATION_NAMES[self.location_id],
            location_address="Doventorsteinweg 48, 28195 Bremen",
            group_id=self.group_id,
            service_point=self.service_point,
            concern_id=self.concern_id,
            concern_name=CONCERNS[self.concern_id][1],
            sensitive=self.concern_id == "energiesperre",
            emergency=self.concern_id == "energiesperre",
            start=self.start,
            end=self.end,
            mode=self.mode,
            channel=self.channel,
            interpreter_language=self.interpreter_language,
            language=self.language,
            language_tag=self.language_tag,
            evening=self.evening,
            customer=CustomerData(
                first_name=self.first_name,
                last_name=self.last_name,
                email=self.email,
                phone=self.phone,
                customer_number=self.customer_number,
                household_number=self.household_number,
            ),
            manage_url=f"http://127.0.0.1:8080/manage/{self.id}?token=secret-{self.id.hex[:6]}",
            booked_at=self.booked_at,
            client_network=self.client_network,
        )

    def booked(self) -> AppointmentBookedV1:
        return AppointmentBookedV1(appointment=self.snapshot())

    def reschedule(self, start: datetime) -> AppointmentRescheduledV1:
        previous_start, previous_end = self.start, self.end
        self.start = start
        self.revision += 1
        return AppointmentRescheduledV1(
            appointment=self.snapshot(), previous_start=previous_start, previous_end=previous_end
        )

    def cancel(
        self, by: CancelledBy = CancelledBy.CUSTOMER, reason: str = "", code: str = "", handed_to: str = ""
    ) -> AppointmentCancelledV1:
        self.status = AppointmentStatus.CANCELLED
        self.revision += 1
        return AppointmentCancelledV1(
            appointment=self.snapshot(), cancelled_by=by, reason=reason, reason_code=code, handed_to=handed_to
        )

    def hand_over(self, to_location: str) -> AppointmentCancelledV1:
        """R25: the responsible location takes the concern over without a free slot (a callback there)."""
        return self.cancel(
            CancelledBy.STAFF,
            f"An {LOCATION_NAMES[to_location]} übergeben",
            code="handed_over",
            handed_to=LOCATION_NAMES[to_location],
        )

    def transfer(self, to_location: str, start: datetime | None = None) -> AppointmentTransferredV1:
        """R25: the responsible location takes the appointment over with a slot of its own."""
        before = self.copy()
        self.location_id = to_location
        self.start = start or self.start
        self.revision += 1
        return AppointmentTransferredV1(
            appointment=self.snapshot(),
            from_location_id=before.location_id,
            from_location_name=LOCATION_NAMES[before.location_id],
            from_group_id=before.group_id,
            from_concern_id=before.concern_id,
            previous_start=before.start,
            previous_end=before.end,
        )

    def passed(self) -> AppointmentPassedV1:
        self.status = AppointmentStatus.PASSED
        self.revision += 1
        return AppointmentPassedV1(appointment=self.snapshot())

    def copy(self, **changes: Any) -> Appt:
        return replace(self, **changes)


def envelope(data: EventData, at: datetime, producer: str = "booking") -> Envelope:
    return make_envelope(data, producer=producer, clock=ManualClock(at), occurred_at=at)


# --- the harness ------------------------------------------------------------------------------------


def reporting_settings(**overrides: Any) -> Settings:
    defaults: dict[str, Any] = {"scheduler_interval_seconds": 0.05, "retention_interval_seconds": 3600.0}
    return cast(Settings, svc_settings(Settings, **{**defaults, **overrides}))


class Reporting:
    """Reporting app instances of one test (each with the consumer and the scheduler), a clock they
    share, and a way to publish events as the other services would."""

    def __init__(
        self, pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection, clock: ManualClock
    ) -> None:
        self.pool = pool
        self.amqp = amqp
        self.clock = clock
        self.settings = reporting_settings()
        self.clients: list[TestClient[Any, Any]] = []
        self.published: set[uuid.UUID] = set()

    async def start(self, **overrides: Any) -> TestClient[Any, Any]:
        settings = reporting_settings(**overrides) if overrides else self.settings
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, clock=self.clock)))
        await client.start_server()
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients = []

    async def publish(self, *envelopes: Envelope) -> None:
        channel = await self.amqp.channel(publisher_confirms=True)
        try:
            exchange = await channel.get_exchange(self.settings.exchange)
            # Confirms awaited together, not one by one (each costs a disk sync of the quorum queue).
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            env.model_dump_json().encode(),
                            content_type="application/json",
                            message_id=str(env.id),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=env.type,
                    )
                    for env in envelopes
                )
            )
            self.published.update(env.id for env in envelopes)
        finally:
            await channel.close()

    async def applied(self) -> int:
        """How many of the events this test published reporting has applied."""
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = 'reporting.events'"
                " AND event_id = ANY($1::uuid[])",
                list(self.published),
            )
        )

    async def settle(self, within: float = 20.0) -> None:
        """Wait until every distinct event published so far is applied."""
        expected = len(self.published)

        async def done() -> bool:
            return await self.applied() >= expected

        await wait_for(done, timeout=within, what=f"{expected} events applied by reporting")

    async def send(self, *items: tuple[EventData, datetime]) -> None:
        await self.publish(*(envelope(data, at) for data, at in items))
        await self.settle()


def identity_header(
    clock: ManualClock,
    role: Role,
    *locations: str,
    secret: str | None = None,
    issued_at: datetime | None = None,
) -> dict[str, str]:
    identity = StaffIdentity(
        subject=f"test-{role.value}",
        kind=IdentityKind.USER,
        grants=(Grant(role=role, locations=tuple(locations)),),
        issued_at=issued_at or clock.now(),
    )
    return {HEADER: sign(identity, secret or reporting_settings().internal_secret)}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(berlin(BEFORE, 12))


async def empty_schema(pool: asyncpg.Pool, schema: str) -> None:
    """Empty a service's tables (DELETE: far cheaper than TRUNCATE for the few rows a test leaves)."""
    tables = await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'", schema
    )
    await pool.execute(";".join(f'DELETE FROM {schema}."{t["tablename"]}"' for t in tables))  # noqa: S608 -- names from the catalog


@pytest.fixture
async def reporting(
    pools: dict[str, asyncpg.Pool], amqp: aio_pika.abc.AbstractRobustConnection, clock: ManualClock
) -> AsyncIterator[Reporting]:
    """Reporting's schema emptied (only it: these tests write nowhere else unless they say so)."""
    await empty_schema(pools["reporting"], "reporting")
    harness = Reporting(pools["reporting"], amqp, clock)
    await purge_test_queues()  # events an earlier test left in the queues are not for this one
    yield harness
    await harness.close()


def refs(appts: Sequence[Appt]) -> set[str]:
    return {a.reference for a in appts}


SEARCHABLE = ("text", "character varying", "character", "jsonb", "json", "bytea", "ARRAY")


async def schema_holding(pool: asyncpg.Pool, schema: str, needles: Sequence[str]) -> list[str]:
    """Every table.column of a service's schema (read with that service's own role) in which one of the
    needles occurs, in any case: text, JSON, arrays and binary columns alike."""
    columns = await pool.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = $1 AND data_type = ANY($2::text[]) ORDER BY table_name, column_name",
        schema,
        list(SEARCHABLE),
    )
    assert columns, f"no columns visible in schema {schema}"
    found = []
    for col in columns:
        table, column = col["table_name"], col["column_name"]
        text = f"encode(\"{column}\", 'escape')" if col["data_type"] == "bytea" else f'"{column}"::text'
        for needle in needles:
            hits = await pool.fetchval(
                f"SELECT count(*) FROM {schema}.\"{table}\" WHERE {text} ILIKE '%' || $1 || '%'",  # noqa: S608 -- names from the catalog
                needle,
            )
            if hits:
                found.append(f"{schema}.{table}.{column}: {needle}")
    return found
