"""Fixtures of the waiting-list tests: the booking service (its matcher run by the test) and the notifier
in-process on the real PostgreSQL and RabbitMQ, the local mail sink, a clock the tests move, and the
synthetic location of the booking tests."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.booking.api import DEPS
from services.booking.app import create_app as create_booking
from services.booking.service import Deps
from services.booking.waiting_list import run_matcher
from services.notifier.app import create_app as create_notifier
from services.notifier.config import Settings as NotifierSettings
from shared.clock import ManualClock
from tests.booking import factory
from tests.booking.conftest import BOOKING_TABLES, MONDAY, booking_settings, configure
from tests.conftest import purge_test_queues, svc_settings, wait_for
from tools.mailsink import MailSink, StoredMessage

BASE = "https://termine.example"
WAITING_TABLES = ("waiting_offers", "waiting_freed", "waiting_catalog_changes", "waiting_horizon", "wishes")
LINK = re.compile(r"https?://[^\s\"'<>]+/waiting-list/([0-9a-f-]{36})(/[a-z]+)?\?token=([A-Za-z0-9_\-]+)")
MANAGE = re.compile(r"/manage/([0-9a-f-]{36})\?token=([A-Za-z0-9_\-]+)")


def text_of(message: StoredMessage) -> str:
    return "\n".join(
        str(part.get_content())
        for part in message.leaf_parts()
        if part.get_content_type() in ("text/plain", "text/html")
    )


SUBJECT_KINDS = {
    "Bitte bestätigen Sie Ihren Eintrag": "waiting_opt_in",
    "Sie stehen auf der Warteliste": "waiting_confirmed",
    "Ein Termin ist frei": "waiting_offer",
    "Das Angebot für den Termin am": "waiting_offer_expired",
    "Ihr Eintrag auf der Warteliste": "waiting_expired",
    "Sie haben sich von der Warteliste": "waiting_withdrawn",
    "Terminbestätigung": "confirmation",
    "Absage": "cancellation",
}


def kind_of(message: StoredMessage) -> str:
    """Which mail it is, by its German subject."""
    return next((kind for start, kind in SUBJECT_KINDS.items() if message.subject.startswith(start)), "?")


def link_of(message: StoredMessage) -> tuple[uuid.UUID, str]:
    match = LINK.search(text_of(message))
    assert match, f"no waiting-list link in {message.subject!r}"
    return uuid.UUID(match.group(1)), match.group(3)


# The default wish: Wednesday 4 March 2026 at 08:00, a start the first such wish fills (every service
# point booked), so that it is one to wait for. A wish nothing free suits is what the list is for (one a
# free appointment suits is refused with 409 `slots_available`, one the location never offers with 422).
DEFAULT_START = factory.iso("2026-03-04", "08:00")
DEFAULT_WISH: dict[str, Any] = {
    "weekdays": [2],
    "earliest": "08:00",
    "latest": "08:15",
    "latest_date": "2026-03-04",
}
# A wish for one slot only, the day before: Tuesday 3 March 2026, 08:00-08:15 (three service points).
TUESDAY_EIGHT = factory.iso("2026-03-03", "08:00")
NARROW: dict[str, Any] = {**DEFAULT_WISH, "weekdays": [1], "latest_date": "2026-03-03"}


@dataclass
class Waiting:
    client: TestClient[Any, Any]
    deps: Deps
    clock: ManualClock
    sink: MailSink
    pool: asyncpg.Pool
    default_full: bool = False

    async def join(self, email: str, *, status: int = 201, **overrides: Any) -> dict[str, Any]:
        if not self.default_full and not overrides.keys() & DEFAULT_WISH.keys():
            await self.fill(DEFAULT_START)  # the default wish waits for a full start
            self.default_full = True
        body = wish_body(email, **overrides)
        response = await self.client.post("/api/v1/waiting-list", json=body)
        answer: dict[str, Any] = await response.json()
        assert response.status == status, answer
        return answer

    async def registered_token(self, wish_id: str) -> str:
        """The link's token, as the opt-in mail carries it (read from the registration event)."""
        url = await self.pool.fetchval(
            "SELECT envelope->'data'->'wish'->>'page_url' FROM outbox WHERE type = 'waiting.registered'"
            " AND envelope->'data'->'wish'->>'id' = $1",
            wish_id,
        )
        assert url and "token=" in url
        return str(url).rsplit("token=", 1)[1]

    async def confirm(self, wish_id: str, token: str, *, status: int = 200) -> dict[str, Any]:
        response = await self.client.post(f"/api/v1/waiting-list/{wish_id}/confirm", params={"token": token})
        answer: dict[str, Any] = await response.json()
        assert response.status == status, answer
        return answer

    async def joined_and_confirmed(self, email: str, **overrides: Any) -> tuple[str, str]:
        wish = await self.join(email, **overrides)
        token = await self.registered_token(wish["id"])
        await self.confirm(wish["id"], token)
        return wish["id"], token

    async def book(self, start: str, email: str, **extra: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/appointments", json=factory.booking(start, email=email, **extra)
        )
        answer: dict[str, Any] = await response.json()
        assert response.status == 201, answer
        return answer

    async def fill(self, start: str, points: int = 3) -> list[dict[str, Any]]:
        """Book every service point of the start (the factory's entrance zone has three), so that a wish
        for it waits: nobody joins the list for an appointment that is free (409 `slots_available`)."""
        return [await self.book(start, f"booker-{uuid.uuid4().hex[:8]}@example.org") for _ in range(points)]

    async def cancel(self, appointment: dict[str, Any]) -> None:
        token = appointment["manage_url"].rsplit("token=", 1)[1]
        response = await self.client.post(
            f"/api/v1/appointments/{appointment['id']}/cancel", params={"token": token}
        )
        assert response.status == 200, await response.text()

    async def match(self) -> dict[str, int]:
        return await run_matcher(self.deps)

    async def mails_to(self, address: str, count: int) -> list[StoredMessage]:
        """Exactly `count` mails to `address` (waits for them, then a moment more for any extra one)."""
        async with asyncio.timeout(15):
            await self.sink.wait_for_messages(count, to=address)
        await asyncio.sleep(0.3)
        found = [m for m in self.sink.messages if m.is_addressed_to(address)]
        assert len(found) == count, [m.subject for m in found]
        return found

    async def offer_delivered(self, wish_id: str | uuid.UUID) -> None:
        """Wait until booking has heard that the wish's open offer reached the customer
        (`mail.offer_delivery`):
        only such an offer counts as missed when it runs out (R45)."""

        async def reported() -> bool:
            outcome = await self.pool.fetchval(
                "SELECT mail_outcome FROM waiting_offers WHERE wish_id = $1 AND status = 'open'",
                uuid.UUID(str(wish_id)),
            )
            return bool(outcome == "sent")

        await wait_for(reported, timeout=15, what="booking to hear that the offer mail was delivered")

    async def wish_row(self, wish_id: str) -> asyncpg.Record:
        row = await self.pool.fetchrow("SELECT * FROM wishes WHERE id = $1", uuid.UUID(wish_id))
        assert row is not None
        return row


def wish_body(email: str, **overrides: Any) -> dict[str, Any]:
    customer = {
        "first_name": "Erika",
        "last_name": "Mustermann",
        "email": email,
        "customer_number": factory.customer_number(uuid.uuid4().int % 999_999 + 1),
    }
    customer.update(overrides.pop("customer", {}))
    return {
        "location_id": factory.LOCATION,
        "concern_id": "veraenderung",
        "mode": "in_person",
        **DEFAULT_WISH,
        "customer": customer,
        **overrides,
    }


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.org"


async def empty_tables(pools: dict[str, asyncpg.Pool]) -> None:
    await purge_test_queues()  # events other tests left for the notifier are not this test's
    tables = (*WAITING_TABLES, *BOOKING_TABLES)
    await pools["booking"].execute(";".join(f"DELETE FROM {t}" for t in tables))  # noqa: S608 -- fixed names
    await pools["notifier"].execute(
        "DELETE FROM mails; DELETE FROM waiting_wishes; DELETE FROM appointments; DELETE FROM outbox"
    )


@pytest.fixture(scope="session")
async def sink() -> AsyncIterator[MailSink]:
    mail_sink = MailSink(smtp_port=0, http_port=0)
    await mail_sink.start()
    yield mail_sink
    await mail_sink.stop()


async def start_waiting(
    pools: dict[str, asyncpg.Pool], sink: MailSink, **booking_overrides: Any
) -> AsyncIterator[Waiting]:
    await empty_tables(pools)
    clock = ManualClock(MONDAY)
    await configure(pools["booking"], factory.location())
    # Booking hears of the offer mails' delivery (R45: only a delivered offer can be missed).
    overrides = {"consume_mail_reports": True, **booking_overrides}
    booking = create_booking(booking_settings(public_base_url=BASE, **overrides), clock=clock)
    notifier = create_notifier(
        svc_settings(  # type: ignore[arg-type]
            NotifierSettings,
            smtp_host=sink.smtp_host,
            smtp_port=sink.smtp_port,
            public_base_url=BASE,
            mail_poll_seconds=0.2,
            db_pool_max=4,
        ),
        clock=clock,
    )
    async with TestClient(TestServer(booking)) as client, TestClient(TestServer(notifier)):
        yield Waiting(client, booking[DEPS], clock, sink, pools["booking"])


@pytest.fixture
async def waiting(pools: dict[str, asyncpg.Pool], amqp: Any, sink: MailSink) -> AsyncIterator[Waiting]:
    async for found in start_waiting(pools, sink):
        yield found
