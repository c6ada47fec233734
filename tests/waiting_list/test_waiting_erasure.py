"""Erasure on request (Art. 17 GDPR, R34): erasing a customer's appointment erases their waiting-list wishes
of the same e-mail address too, in booking and in the notifier, and leaves the figures and other people's
wishes whole; a location administrator can erase one wish on its own."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.notifier.config import Settings as NotifierSettings
from services.notifier.waiting_mail import apply_waiting_event, erase_wish
from services.reporting.waiting_list import HANDLERS as REPORTING_WAITING
from shared.clock import ManualClock
from shared.events import Envelope, make_envelope, model_for
from shared.events.waiting_list import WaitingConfirmedV1, WaitingRegisteredV1, WishSnapshot, WishStatus
from shared.identity import Grant, IdentityKind, Role, StaffIdentity, sign
from tests.booking import factory
from tests.conftest import svc_settings
from tests.waiting_list.conftest import TUESDAY_EIGHT, Waiting, unique_email

SECRET = "otv-dev-internal-secret-change-me"  # the internal secret of the test settings


def identity(role: Role, location: str, kind: IdentityKind = IdentityKind.USER) -> dict[str, str]:
    signed = StaffIdentity(
        subject="staff-test",
        kind=kind,
        grants=(Grant(role=role, locations=(location,)),),
        issued_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    return {"X-OTV-Identity": sign(signed, SECRET)}


PERSONAL = ("first_name", "last_name", "email", "phone", "customer_number", "household_number")


async def kept(waiting: Waiting, wish_id: str) -> list[str]:
    """The personal fields of the wish that still hold something (names only: a failure shows no data)."""
    row = await waiting.wish_row(wish_id)
    return [name for name in PERSONAL if row[name]]


async def notifier_mails(notifier: asyncpg.Pool, wish_ids: list[str]) -> list[asyncpg.Record]:
    return list(
        await notifier.fetch(
            "SELECT status, attempts, recipient, payload, recipient_hash FROM mails"
            " WHERE appointment_id = ANY($1::uuid[])",
            [uuid.UUID(w) for w in wish_ids],
        )
    )


async def until(check: Any, seconds: float = 15) -> None:
    """Poll another process's state (the notifier's consumer and sender have no event to wait on here)."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 -- polling a database another task writes
            await asyncio.sleep(0.1)


async def waiting_events(booking: asyncpg.Pool) -> dict[str, Any]:
    """The waiting-list events in booking's outbox now, by id (an erasure takes the wishes' events out of
    the outbox: reporting got them through the broker before)."""
    rows = await booking.fetch("SELECT id, envelope FROM outbox WHERE type LIKE 'waiting.%' ORDER BY seq")
    return {str(row["id"]): row["envelope"] for row in rows}


async def waiting_figures(reporting: asyncpg.Pool, events: dict[str, Any]) -> dict[str, int]:
    """Reporting's waiting-list figures of these events (applied as its consumer would, rolled back)."""
    async with reporting.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("DELETE FROM waiting_counts WHERE location_id = $1", factory.LOCATION)
            for raw in events.values():
                envelope = Envelope.model_validate(raw)
                handler = REPORTING_WAITING.get(envelope.type)
                model = model_for(envelope.type, envelope.version)
                if handler is not None and model is not None:
                    await handler(conn, envelope, model.model_validate(envelope.data))
            counted = await conn.fetch(
                "SELECT event, sum(count)::int AS n FROM waiting_counts WHERE location_id = $1"
                " GROUP BY event",
                factory.LOCATION,
            )
        finally:
            await transaction.rollback()
    return {row["event"]: row["n"] for row in counted}


@pytest.mark.req("R34")
@pytest.mark.req("R45")
async def test_erasing_an_appointment_on_request_erases_the_same_persons_waiting_list_wishes_everywhere(
    waiting: Waiting, pools: dict[str, asyncpg.Pool]
) -> None:
    notifier = pools["notifier"]
    email = unique_email("forget-me")
    appointment = await waiting.book(TUESDAY_EIGHT, email)
    await waiting.cancel(appointment)
    # An ended wish of the person, and another person's wish that waits.
    ended_id, token = await waiting.joined_and_confirmed(email)
    await waiting.client.post(f"/api/v1/waiting-list/{ended_id}/withdraw", params={"token": token})
    other_id, _ = await waiting.joined_and_confirmed(unique_email("keep-me"))
    # The person waits again, under the same address written differently (the key of R5 matches it); the
    # mail server fails for now, so that the notifier holds their mails for a retry.
    waiting.sink.fail_temporarily = True
    try:
        local, domain = email.split("@")
        active_id, _ = await waiting.joined_and_confirmed(f"{local.upper()}@{domain}")

        async def mails_held() -> bool:
            mails = await notifier_mails(notifier, [active_id])
            return len(mails) == 2 and all(m["status"] == "pending" and m["attempts"] >= 1 for m in mails)

        await until(mails_held)
        published = await waiting_events(waiting.pool)
        admin = identity(Role.LOCATION_ADMIN, factory.LOCATION)
        erased = await waiting.client.post(
            f"/api/v1/staff/appointments/{appointment['id']}/erase", headers=admin
        )
        assert erased.status == 200 and await erased.json() == {"erased": True}

        # Booking: no name, address, phone or number of the person in any of their wishes; the one that
        # waited has ended; the other person's wish is untouched.
        assert await kept(waiting, ended_id) == []
        assert await kept(waiting, active_id) == []
        assert (await waiting.wish_row(active_id))["status"] == "withdrawn"
        assert await kept(waiting, other_id) == ["first_name", "last_name", "email", "customer_number"]
        assert (await waiting.wish_row(other_id))["status"] == "waiting"

        # The notifier: nothing of theirs is still to be sent, nothing of them is kept.
        async def notifier_erased() -> bool:
            mails = await notifier_mails(notifier, [ended_id, active_id])
            return all(
                m["status"] != "pending"
                and (m["recipient"], m["payload"], m["recipient_hash"]) == (None, None, "")
                for m in mails
            )

        await until(notifier_erased)
        links = await notifier.fetch(
            "SELECT id, page_url FROM waiting_wishes WHERE id = ANY($1::uuid[])",
            [uuid.UUID(w) for w in (ended_id, active_id, other_id)],
        )
        assert {str(r["id"]): r["page_url"] is not None for r in links} == {
            ended_id: False,
            active_id: False,
            other_id: True,
        }
    finally:
        waiting.sink.fail_temporarily = False

    # The figures still count every wish: three registered, two withdrawn (one by the erasure).
    figures = await waiting_figures(pools["reporting"], {**published, **await waiting_events(waiting.pool)})
    assert (figures["registered"], figures["confirmed"], figures["withdrawn"]) == (3, 3, 2)
    # The deletion report counts the wishes with the appointment; twice is once.
    reports = await waiting.pool.fetch(
        "SELECT envelope->'data'->'counts' AS counts FROM outbox WHERE type = 'retention.run_completed'"
    )
    assert [r["counts"] for r in reports] == [
        {"appointments_erased": 1, "staff_notes_erased": 0, "wishes_erased": 2}
    ]
    again = await waiting.client.post(f"/api/v1/staff/appointments/{appointment['id']}/erase", headers=admin)
    assert again.status == 200 and await again.json() == {"erased": False}
    erased_events = await waiting.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'waiting.personal_data_erased'"
    )
    assert erased_events == 2


@pytest.mark.req("R34")
@pytest.mark.req("R30")
async def test_a_location_administrator_erases_one_wish_on_request_and_nobody_else_may(
    waiting: Waiting,
) -> None:
    wish_id, token = await waiting.joined_and_confirmed(unique_email("wish-only"))
    path = f"/api/v1/staff/waiting-list/{wish_id}/erase"
    assert (await waiting.client.post(path)).status == 401
    for refused in (
        identity(Role.APPOINTMENT_MANAGER, factory.LOCATION),
        identity(Role.LOCATION_ADMIN, "mitte"),
        identity(Role.LOCATION_ADMIN, factory.LOCATION, IdentityKind.API_KEY),
    ):
        assert (await waiting.client.post(path, headers=refused)).status == 403
    admin = identity(Role.LOCATION_ADMIN, factory.LOCATION)
    unknown = await waiting.client.post(f"/api/v1/staff/waiting-list/{uuid.uuid4()}/erase", headers=admin)
    assert unknown.status == 404
    assert await kept(waiting, wish_id) != []

    async def outbox_holding(needle: str) -> list[str]:
        rows = await waiting.pool.fetch(
            "SELECT type, envelope::text AS text FROM outbox WHERE published_at IS NOT NULL"
        )
        return [r["type"] for r in rows if needle in r["text"]]

    async def published() -> bool:
        return bool(await waiting.pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"))

    await until(published)
    assert await outbox_holding(token) == ["waiting.registered"]
    erased = await waiting.client.post(path, headers=admin)
    assert erased.status == 200 and await erased.json() == {"erased": True}
    assert await kept(waiting, wish_id) == []
    # Its published events went with it: the page link's token, the name and address (R34).
    assert await outbox_holding(token) == []
    # Only the erasure's own events may name the wish afterwards (once the relay has published them).
    assert set(await outbox_holding(wish_id)) <= {"waiting.withdrawn", "waiting.personal_data_erased"}
    assert (await waiting.wish_row(wish_id))["status"] == "withdrawn"  # it waits no more
    gone = await waiting.client.get(f"/api/v1/waiting-list/{wish_id}", params={"token": token})
    assert gone.status == 404
    again = await waiting.client.post(path, headers=admin)
    assert again.status == 200 and await again.json() == {"erased": False}
    reports = await waiting.pool.fetch(
        "SELECT envelope->'data' AS data FROM outbox WHERE type = 'retention.run_completed'"
    )
    assert [(r["data"]["job"], r["data"]["counts"]) for r in reports] == [
        ("erasure_on_request", {"wishes_erased": 1})
    ]


@pytest.mark.req("R34")
async def test_an_event_of_an_erased_wish_arriving_late_brings_nothing_back_and_plans_no_mail(
    pools: dict[str, asyncpg.Pool],
) -> None:
    """Events may arrive late, in any order and twice: the registration (published before the erasure)
    after `waiting.personal_data_erased` must not give the notifier the address and link again."""
    pool = pools["notifier"]
    settings = svc_settings(NotifierSettings)
    assert isinstance(settings, NotifierSettings)
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    wish = WishSnapshot.model_validate(
        {
            "id": str(uuid.uuid4()),
            "reference": "ABCD-EFGH",
            "revision": 1,
            "status": "pending_opt_in",
            "location_id": factory.LOCATION,
            "location_name": "Teststadt",
            "location_address": "Straße 1",
            "concern_id": "veraenderung",
            "concern_name": "Veränderung",
            "mode": "in_person",
            "weekdays": [0],
            "latest_date": "2026-03-31",
            "customer": {"first_name": "Erika", "last_name": "Muster", "email": unique_email("late")},
            "page_url": "https://termine.example/waiting-list/x?token=secret-token",
            "registered_at": "2026-03-02T10:00:00+01:00",
        }
    )
    confirmed = wish.model_copy(
        update={"revision": 2, "status": WishStatus.WAITING, "page_url": "https://x/w"}
    )
    late: list[WaitingRegisteredV1 | WaitingConfirmedV1] = [
        WaitingRegisteredV1(wish=wish),
        WaitingConfirmedV1(wish=confirmed),
    ]
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await erase_wish(conn, wish.id, clock.now())
            for data in late:
                envelope = make_envelope(data, producer="booking", clock=clock)
                assert await apply_waiting_event(conn, envelope, data, clock=clock, settings=settings) is None
            await erase_wish(conn, wish.id, clock.now())  # the erasure twice
            mails = await conn.fetchval("SELECT count(*) FROM mails WHERE appointment_id = $1", wish.id)
            link = await conn.fetchval("SELECT page_url FROM waiting_wishes WHERE id = $1", wish.id)
        finally:
            await transaction.rollback()
    assert (mails, link) == (0, None)
