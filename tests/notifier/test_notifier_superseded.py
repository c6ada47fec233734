"""A mail in a sender's hands when a newer change of the appointment comes (R9): the change cannot take it
away (it may be delivered this moment), but should its delivery fail for now, or the sender vanish, it
is not tried again: it would arrive after the newer mail. Delivered, it stays delivered. The same holds
for a waiting-list mail in a sender's hands when the wish ends (R45)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.notifier import db, planning, service, waiting_mail
from services.notifier.config import Settings
from services.notifier.domain import MailStatus, Outcome
from services.notifier.sender import MailSender
from shared.clock import ManualClock, SystemClock
from shared.events import EventData, make_envelope
from shared.events.appointment import AppointmentLinkRenewedV1, AppointmentSnapshot
from shared.events.waiting_list import (
    OfferSnapshot,
    WaitingOfferedV1,
    WaitingRegisteredV1,
    WaitingWithdrawnV1,
    WishSnapshot,
    WishStatus,
)
from tests.conftest import wait_for
from tests.notifier.conftest import (
    Notifier,
    Publisher,
    an_appointment,
    body_of,
    booked,
    cancelled,
    mail_rows,
    mails_to,
    notifier_settings,
    received,
    rescheduled,
)
from tests.notifier.smtp_gate import SmtpGate
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]


async def statuses(pool: asyncpg.Pool, appointment_id: uuid.UUID) -> dict[str, str]:
    return {r["kind"]: r["status"] for r in await mail_rows(pool, appointment_id)}


def subjects(sink: MailSink, snap: AppointmentSnapshot) -> list[str]:
    return [m.subject.split(":")[0] for m in received(sink, snap.customer.email)]


@pytest.mark.req("R9")
async def test_a_confirmation_in_delivery_when_the_cancellation_comes_is_not_retried_after_it_fails(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """A sender is in the middle of delivering the confirmation when the appointment is cancelled, and
    the mail server drops the conversation: once it answers again, the customer gets the cancellation
    only, never the confirmation of the cancelled time after it."""
    pool = clean_db["notifier"]
    gate = SmtpGate(sink.smtp_port)
    await gate.start()
    try:
        await start_notifier(smtp_port=gate.port, smtp_timeout=20.0)
        gate.holding = True  # the server stops answering: each delivery is caught in its conversation
        snap = an_appointment()
        await publish(booked(snap))

        async def confirmation_in_delivery() -> bool:
            rows = await mail_rows(pool, snap.id)
            return len(gate.held) >= 1 and any(
                r["kind"] == "confirmation" and r["claimed_until"] is not None for r in rows
            )

        await wait_for(confirmation_in_delivery, what="the confirmation in a sender's hands")
        await publish(cancelled(snap))

        async def cancellation_in_delivery() -> bool:
            return "cancellation" in await statuses(pool, snap.id) and len(gate.held) >= 2

        await wait_for(cancellation_in_delivery, what="the cancellation in a sender's hands too")
        assert (await statuses(pool, snap.id))["confirmation"] == "pending"  # still the sender's
        gate.release()  # both conversations break off (a temporary failure); the server answers again

        await mails_to(sink, snap.customer.email)
        await asyncio.sleep(1.5)  # longer than the back-off: a late confirmation would show
        assert subjects(sink, snap) == ["Absage"]
        assert (await statuses(pool, snap.id))["confirmation"] == "cancelled"
        rows = await mail_rows(pool, snap.id)
        assert all(r["recipient"] is None and r["payload"] is None for r in rows)  # R34
    finally:
        await gate.stop()


async def _apply(pool: asyncpg.Pool, data: EventData, *, clock: ManualClock, settings: Settings) -> None:
    """The notifier's effect of one event, as its consumer applies it (appointment or waiting-list)."""
    envelope = make_envelope(data, producer="booking", clock=clock, correlation_id="cid-superseded")
    handle = waiting_mail.apply_waiting_event if hasattr(data, "wish") else planning.apply_appointment_event
    async with pool.acquire() as conn, conn.transaction():
        await handle(conn, envelope, data, clock=clock, settings=settings)


async def _claim(pool: asyncpg.Pool, *, clock: ManualClock, settings: Settings) -> tuple[Any, uuid.UUID]:
    token = uuid.uuid4()
    [mail] = await service.claim_due_mails(pool, clock=clock, settings=settings, token=token, limit=5)
    return mail, token


async def take_over_both_after_the_lease(pool: asyncpg.Pool, settings: Settings, clock: ManualClock) -> None:
    """The first sender vanished: after its lease a new one takes over both mails and handles them."""
    clock.advance(timedelta(seconds=settings.mail_lease_seconds + 1))
    sender = MailSender(pool, settings, clock)
    try:
        assert await sender.claim_and_spawn(10) == 2
        await wait_for(lambda: sender.busy == 0, what="both mails handled")
    finally:
        await sender.stop()


@pytest.mark.req("R9")
async def test_a_superseded_mail_whose_sender_vanished_is_not_sent_by_the_sender_taking_it_over(
    sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """The sender holding the confirmation dies before it reports; the appointment is cancelled
    meanwhile. The sender that takes the mails over once the lease has run out sends the cancellation
    and drops the confirmation."""
    pool = clean_db["notifier"]
    clock = ManualClock(SystemClock().now())
    settings = notifier_settings(sink.smtp_port)
    snap = an_appointment()
    await _apply(pool, booked(snap), clock=clock, settings=settings)
    mail, _vanished = await _claim(pool, clock=clock, settings=settings)
    assert mail.kind == "confirmation"
    await _apply(pool, cancelled(snap), clock=clock, settings=settings)

    await take_over_both_after_the_lease(pool, settings, clock)
    assert subjects(sink, snap) == ["Absage"]
    assert await statuses(pool, snap.id) == {
        "confirmation": "cancelled",
        "reminder": "cancelled",
        "cancellation": "sent",
    }


async def test_a_change_waits_for_a_failed_attempt_being_recorded_and_then_cancels_the_mail(
    clean_db: dict[str, asyncpg.Pool],
) -> None:
    """Two replicas at the same moment: one records a failed attempt of the confirmation, the other
    applies the cancellation. The change waits for the row lock and finds the mail no longer held: it
    cancels it outright instead of leaving it to a retry (and would not wait if it only looked at mails
    nobody holds)."""
    pool = clean_db["notifier"]
    clock = ManualClock(SystemClock().now())
    settings = notifier_settings(1025)
    snap = an_appointment()
    await _apply(pool, booked(snap), clock=clock, settings=settings)
    mail, token = await _claim(pool, clock=clock, settings=settings)
    now = clock.now()
    async with pool.acquire() as sender:
        async with sender.transaction():
            # The retry is written, not yet committed, when the cancellation comes.
            assert await db.retry_later(sender, mail.id, token, due_at=now, error="smtp_451_rcpt")
            change = asyncio.create_task(_apply(pool, cancelled(snap), clock=clock, settings=settings))
            await asyncio.sleep(0.3)
            assert not change.done()  # waits for the sender's lock
        await change
    assert (await statuses(pool, snap.id))["confirmation"] == "cancelled"


async def test_a_superseded_mail_delivered_while_held_stays_delivered(
    clean_db: dict[str, asyncpg.Pool],
) -> None:
    pool = clean_db["notifier"]
    clock = ManualClock(SystemClock().now())
    settings = notifier_settings(1025)
    snap = an_appointment()
    await _apply(pool, booked(snap), clock=clock, settings=settings)
    mail, token = await _claim(pool, clock=clock, settings=settings)
    await _apply(pool, cancelled(snap), clock=clock, settings=settings)
    async with pool.acquire() as conn:
        assert await db.finish(conn, mail.id, token, status=MailStatus.SENT, now=clock.now())
    assert (await statuses(pool, snap.id))["confirmation"] == "sent"


# -- an event overtaken by a newer revision ------------------------------------------------------------


def _with_link(snap: AppointmentSnapshot, revision: int, token: str) -> AppointmentSnapshot:
    link = f"https://termine.example/manage/{snap.id}?token={token}"
    return snap.model_copy(update={"revision": revision, "manage_url": link})


@pytest.mark.req("R9")
async def test_a_staff_move_overtaken_by_a_link_renewal_still_tells_the_customer_of_the_new_time(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """Staff move the appointment (revision 2); the customer renews the link (revision 3), and that
    event reaches the notifier first (two replicas, a retry). The move's own mail still goes out, with
    the link in force, since no later mail tells of the move."""
    pool = clean_db["notifier"]
    await start_notifier()
    snap = an_appointment()
    await publish(booked(snap))
    await mails_to(sink, snap.customer.email)
    later = snap.start + timedelta(days=2)
    staff_move = snap.model_copy(
        update={
            "revision": 2,
            "start": later,
            "end": later + (snap.end - snap.start),
            "manage_url": f"https://termine.example/manage/{snap.id}",  # staff: the bare page
        }
    )
    renewal = _with_link(staff_move, 3, "renewed-token")
    await publish(AppointmentLinkRenewedV1(appointment=renewal))
    await mails_to(sink, snap.customer.email, 2)
    await publish(rescheduled(snap, staff_move))

    [move_mail] = [
        m for m in await mails_to(sink, snap.customer.email, 3) if m.subject.startswith("Neue Zeit")
    ]
    text = body_of(move_mail, "plain")
    assert "renewed-token" in text and snap.manage_url.split("token=")[1] not in text
    assert len(subjects(sink, snap)) == 3

    async def recorded() -> bool:
        return (await statuses(pool, snap.id)).get("reschedule") == "sent"

    await wait_for(recorded, what="the move's mail recorded as sent")


@pytest.mark.req("R9")
async def test_an_overtaken_event_whose_mail_a_newer_change_of_state_made_wrong_sends_nothing(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """The customer renews the link (revision 2), then cancels (revision 3); the cancellation arrives
    first: the customer gets the cancellation only, no link to a cancelled appointment after it."""
    pool = clean_db["notifier"]
    await start_notifier()
    snap = an_appointment()
    await publish(booked(snap))
    await mails_to(sink, snap.customer.email)
    renewal = _with_link(snap, 2, "renewed-token")
    await publish(cancelled(renewal))
    await mails_to(sink, snap.customer.email, 2)
    await publish(AppointmentLinkRenewedV1(appointment=renewal))

    async def handled() -> bool:
        return int(await pool.fetchval("SELECT count(*) FROM inbox")) >= 3

    await wait_for(handled, what="the overtaken renewal")
    await asyncio.sleep(0.5)
    assert subjects(sink, snap) == ["Terminbestätigung", "Absage"]
    assert "manage_link" not in await statuses(pool, snap.id)


# -- a waiting-list mail when the wish ends -------------------------------------------------------------

# The German subjects of the waiting list's mails, by how they begin.
WISH_SUBJECTS = {
    "Bitte bestätigen Sie Ihren Eintrag": "waiting_opt_in",
    "Ein Termin ist frei": "waiting_offer",
    "Sie haben sich von der Warteliste": "waiting_withdrawn",
}


def a_wish() -> WishSnapshot:
    wish_id = uuid.uuid4()
    values = {
        **waiting_mail.sample_payload("de")["wish"],
        "id": str(wish_id),
        "revision": 1,
        "status": WishStatus.PENDING_OPT_IN,
        "customer": {
            "first_name": "Erika",
            "last_name": "Mustermann",
            "email": f"warte-{wish_id.hex[:10]}@example.org",
        },
        "page_url": f"https://termine.example/waiting-list/{wish_id}?token=secret-{uuid.uuid4().hex}",
    }
    return WishSnapshot.model_validate(values)


def wish_events(
    wish: WishSnapshot, now: datetime
) -> tuple[WaitingRegisteredV1, WaitingOfferedV1, WaitingWithdrawnV1]:
    """Registered (revision 1), a slot offered until tomorrow (2), withdrawn by the customer (3); the later
    events carry the bare page, as booking publishes them."""
    bare = wish.page_url.split("?", 1)[0]
    start = now + timedelta(days=2)
    offer = OfferSnapshot(
        id=uuid.uuid4(), start=start, end=start + timedelta(minutes=30), expires_at=now + timedelta(days=1)
    )
    offered = wish.model_copy(update={"revision": 2, "status": WishStatus.OFFERED, "page_url": bare})
    withdrawn = wish.model_copy(update={"revision": 3, "status": WishStatus.WITHDRAWN, "page_url": bare})
    return (
        WaitingRegisteredV1(wish=wish),
        WaitingOfferedV1(wish=offered, offer=offer),
        WaitingWithdrawnV1(wish=withdrawn),
    )


def wish_mails(sink: MailSink, wish: WishSnapshot) -> list[str]:
    return [
        next((kind for start, kind in WISH_SUBJECTS.items() if m.subject.startswith(start)), "?")
        for m in received(sink, wish.customer.email)
    ]


@pytest.mark.req("R45")
async def test_an_offer_in_delivery_when_the_wish_is_withdrawn_is_not_retried_after_it_fails(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """A sender is in the middle of delivering the offer when the customer withdraws the wish, and the
    mail server drops the conversation: once it answers again, the customer gets the confirmation of the
    withdrawal only, never the offer of a slot for a wish that has ended."""
    pool = clean_db["notifier"]
    gate = SmtpGate(sink.smtp_port)
    await gate.start()
    try:
        await start_notifier(smtp_port=gate.port, smtp_timeout=20.0)
        wish = a_wish()
        registered, offered, withdrawn = wish_events(wish, SystemClock().now())
        await publish(registered)
        await mails_to(sink, wish.customer.email)
        gate.cut()  # the sender's open connection is gone: the offer's delivery starts a new conversation
        gate.holding = True  # the server stops answering: each delivery is caught in its conversation
        await publish(offered)

        async def offer_in_delivery() -> bool:
            rows = await mail_rows(pool, wish.id)
            return len(gate.held) >= 1 and any(
                r["kind"] == "waiting_offer" and r["claimed_until"] is not None for r in rows
            )

        await wait_for(offer_in_delivery, what="the offer in a sender's hands")
        await publish(withdrawn)

        async def withdrawal_in_delivery() -> bool:
            return "waiting_withdrawn" in await statuses(pool, wish.id) and len(gate.held) >= 2

        await wait_for(withdrawal_in_delivery, what="the withdrawal's mail in a sender's hands too")
        assert (await statuses(pool, wish.id))["waiting_offer"] == "pending"  # still the sender's
        gate.release()  # both conversations break off (a temporary failure); the server answers again

        await mails_to(sink, wish.customer.email, 2)
        await asyncio.sleep(1.5)  # longer than the back-off: a late offer would show
        assert wish_mails(sink, wish) == ["waiting_opt_in", "waiting_withdrawn"]
        assert (await statuses(pool, wish.id))["waiting_offer"] == "cancelled"
        [offer_mail] = [r for r in await mail_rows(pool, wish.id) if r["kind"] == "waiting_offer"]
        assert offer_mail["recipient"] is None and offer_mail["payload"] is None  # R34
    finally:
        await gate.stop()


@pytest.mark.req("R45")
async def test_an_offer_held_by_a_vanished_sender_is_not_sent_by_the_one_taking_it_over_after_the_withdrawal(
    sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """The sender holding the offer dies before it reports; the customer withdraws meanwhile. The sender
    that takes the mails over once the lease has run out sends the withdrawal's mail and drops the offer."""
    pool = clean_db["notifier"]
    clock = ManualClock(SystemClock().now())
    settings = notifier_settings(sink.smtp_port)
    wish = a_wish()
    registered, offered, withdrawn = wish_events(wish, clock.now())
    await _apply(pool, registered, clock=clock, settings=settings)
    opt_in, token = await _claim(pool, clock=clock, settings=settings)
    async with pool.acquire() as conn:
        assert await db.finish(conn, opt_in.id, token, status=MailStatus.SENT, now=clock.now())
    await _apply(pool, offered, clock=clock, settings=settings)
    offer_mail, _vanished = await _claim(pool, clock=clock, settings=settings)
    assert offer_mail.kind == "waiting_offer"
    await _apply(pool, withdrawn, clock=clock, settings=settings)

    await take_over_both_after_the_lease(pool, settings, clock)
    assert wish_mails(sink, wish) == ["waiting_withdrawn"]
    assert await statuses(pool, wish.id) == {
        "waiting_opt_in": "sent",
        "waiting_offer": "cancelled",
        "waiting_withdrawn": "sent",
    }


@pytest.mark.req("R34")
@pytest.mark.parametrize(
    ("outcome", "recorded"),
    [(Outcome.SENT, MailStatus.SENT), (Outcome.TEMPORARY, MailStatus.CANCELLED)],
    ids=["delivered", "failed-for-now"],
)
async def test_an_offer_in_delivery_when_the_wish_is_erased_keeps_what_became_of_it_without_the_data(
    clean_db: dict[str, asyncpg.Pool], outcome: Outcome, recorded: MailStatus
) -> None:
    """A sender is delivering the offer when a location administrator erases the wish on request. The
    mail's data go at once; a delivered offer is recorded as sent (and counted: mail.sent), one whose
    delivery fails for now is cancelled, not tried again."""
    pool = clean_db["notifier"]
    clock = ManualClock(SystemClock().now())
    settings = notifier_settings(1025)
    wish = a_wish()
    registered, offered, _withdrawn = wish_events(wish, clock.now())
    await _apply(pool, registered, clock=clock, settings=settings)
    opt_in, token = await _claim(pool, clock=clock, settings=settings)
    async with pool.acquire() as conn:
        assert await db.finish(conn, opt_in.id, token, status=MailStatus.SENT, now=clock.now())
    await _apply(pool, offered, clock=clock, settings=settings)
    offer_mail, token = await _claim(pool, clock=clock, settings=settings)
    assert offer_mail.kind == "waiting_offer"

    # The notifier's effect of waiting.personal_data_erased (waiting_mail.handlers' on_erased).
    async with pool.acquire() as conn, conn.transaction():
        await waiting_mail.erase_wish(conn, wish.id, clock.now())
    [row] = [r for r in await mail_rows(pool, wish.id) if r["kind"] == "waiting_offer"]
    assert (row["recipient"], row["payload"], row["recipient_hash"]) == (None, None, "")

    status = await service.record_outcome(
        pool, offer_mail, token, outcome, error=None, clock=clock, settings=settings
    )
    assert status is recorded
    assert (await statuses(pool, wish.id))["waiting_offer"] == recorded.value
    sent_events = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'mail.sent' AND envelope -> 'data' ->> 'mail_id' = $1",
        str(offer_mail.id),
    )
    assert sent_events == (1 if outcome is Outcome.SENT else 0)
    [row] = [r for r in await mail_rows(pool, wish.id) if r["kind"] == "waiting_offer"]
    assert (row["recipient"], row["payload"]) == (None, None)
