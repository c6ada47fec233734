"""Delivery: the recorded state of every mail and its `mail.*` event, an SMTP server that is down or
answers 451 for a while, a 550 address that is not retried and suppressed afterwards, customer text
that is escaped and encoded, sensitive concerns kept out of subjects, titles and logs (R52), several
senders that share the work (I7), and the time from booking to the mail."""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import structlog

from services.notifier import db
from services.notifier.domain import MailStatus, address_hash
from services.notifier.retention import run_retention
from shared.clock import ManualClock, SystemClock
from shared.events.appointment import AppointmentLinkRenewedV1, AppointmentSnapshot
from shared.events.retention import AppointmentPersonalDataErasedV1
from tests.conftest import wait_for
from tests.notifier.conftest import (
    Notifier,
    Publisher,
    an_appointment,
    body_of,
    booked,
    calendar_of,
    cancelled,
    mail_rows,
    mails_to,
    moved,
    received,
    rescheduled,
)
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]


async def statuses(pool: asyncpg.Pool, appointment_id: Any) -> list[tuple[str, str]]:
    return [(r["kind"], r["status"]) for r in await mail_rows(pool, appointment_id)]


async def _confirmation_sent(pool: asyncpg.Pool, appointment_id: Any) -> bool:
    return ("confirmation", "sent") in await statuses(pool, appointment_id)


async def mail_events(pool: asyncpg.Pool, event_type: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT envelope FROM outbox WHERE type = $1 ORDER BY seq", event_type)
    return [r["envelope"] for r in rows]


@pytest.mark.req("R2")
async def test_a_sent_mail_is_recorded_published_without_personal_data_and_its_data_wiped(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    pool = clean_db["notifier"]
    snap = an_appointment()
    envelope = await publish(booked(snap))
    [mail] = await mails_to(sink, snap.customer.email)

    async def sent() -> bool:
        return ("confirmation", "sent") in await statuses(pool, snap.id)

    await wait_for(sent, what="the confirmation recorded as sent")
    [row] = [r for r in await mail_rows(pool, snap.id) if r["kind"] == "confirmation"]
    assert row["attempts"] == 1 and row["sent_at"] is not None
    assert row["recipient"] is None and row["payload"] is None  # R34: nothing kept after sending
    assert mail.parsed["Message-ID"] == f"<{row['id']}@otv.jobcenter-bremen>"

    [event] = await wait_for(lambda: mail_events(pool, "mail.sent"), what="mail.sent")
    assert event["correlation_id"] == envelope.correlation_id
    assert event["data"] == {
        "mail_id": str(row["id"]),
        "appointment_id": str(snap.id),
        "kind": "confirmation",
        "revision": 1,
        "attempts": 1,
    }
    published = await wait_for(
        lambda: pool.fetchval("SELECT bool_and(published_at IS NOT NULL) FROM outbox"),
        what="the relay to publish mail.sent",
    )
    assert published


async def test_mail_goes_out_when_the_smtp_server_is_back(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    pool = clean_db["notifier"]
    port = sink.smtp_port
    await sink.stop()  # connection refused from now on
    snap = an_appointment()
    await publish(booked(snap))

    async def tried_twice() -> bool:
        rows = await mail_rows(pool, snap.id)
        return any(r["kind"] == "confirmation" and r["attempts"] >= 2 for r in rows)

    await wait_for(tried_twice, what="two failed attempts")
    [row] = [r for r in await mail_rows(pool, snap.id) if r["kind"] == "confirmation"]
    assert row["status"] == "pending" and row["last_error"] == "connect_failed"

    async with MailSink(smtp_port=port, http_port=0) as back:
        [mail] = await mails_to(back, snap.customer.email)
        await asyncio.sleep(1.5)  # longer than the back-off: a wrong second delivery would show
        assert len(received(back, snap.customer.email)) == 1
    assert mail.subject.startswith("Terminbestätigung")
    assert ("confirmation", "sent") in await statuses(pool, snap.id)


async def test_temporary_refusals_are_retried_and_the_mail_is_sent_once(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    sink.temporary_failures = 2
    snap = an_appointment()
    await publish(booked(snap))
    await mails_to(sink, snap.customer.email)
    await asyncio.sleep(1.0)
    assert len(received(sink, snap.customer.email)) == 1
    [row] = [r for r in await mail_rows(clean_db["notifier"], snap.id) if r["kind"] == "confirmation"]
    assert row["status"] == "sent" and row["attempts"] == 3


async def test_a_550_address_is_not_retried_shows_as_failed_and_later_mail_to_it_is_suppressed(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    notifier = await start_notifier()
    pool = clean_db["notifier"]
    snap = an_appointment()
    address = snap.customer.email
    sink.reject_permanent = {address}
    await publish(booked(snap))

    async def failed() -> bool:
        return ("confirmation", "failed") in await statuses(pool, snap.id)

    await wait_for(failed, what="the confirmation to fail")
    await asyncio.sleep(1.0)  # longer than the back-off: a retry would show in the attempts
    [row] = [r for r in await mail_rows(pool, snap.id) if r["kind"] == "confirmation"]
    assert row["attempts"] == 1 and row["last_error"] == "smtp_550_rcpt"
    assert row["recipient"] is None
    [event] = await mail_events(pool, "mail.failed")
    assert event["data"]["reason"] == "rejected" and event["data"]["attempts"] == 1
    [suppression] = await pool.fetch("SELECT * FROM suppressions")
    assert suppression["recipient_hash"] == address_hash(address, notifier.settings.mail_hash_key)
    assert address not in str(dict(suppression))

    # The server would take it now, but the address stays suppressed (in any spelling).
    sink.reject_permanent = set()
    again = an_appointment(customer={"email": address.upper()})
    await publish(booked(again))

    async def suppressed() -> bool:
        return ("confirmation", "suppressed") in await statuses(pool, again.id)

    await wait_for(suppressed, what="the second mail to be suppressed")
    assert received(sink, address) == []
    reasons = [e["data"]["reason"] for e in await mail_events(pool, "mail.failed")]
    assert reasons == ["rejected", "suppressed"]


@pytest.mark.req("R34")
async def test_a_suppression_is_lifted_after_the_retention_period_and_mail_to_the_address_flows_again(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """A mailbox that was full or gone may come back; the address's hash is personal data as well. The
    retention run lifts a suppression after the retention period, and the next mail is tried again."""
    clock = ManualClock(datetime(2037, 1, 5, 9, 0, tzinfo=UTC))
    notifier = await start_notifier(clock=clock)
    pool = clean_db["notifier"]
    first = an_appointment(datetime(2037, 1, 20, 9, 0, tzinfo=UTC))
    address = first.customer.email
    sink.reject_permanent = {address}
    await publish(booked(first))

    async def suppression() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM suppressions"))

    await wait_for(suppression, what="the refusal to suppress the address")
    sink.reject_permanent = set()
    clock.advance(timedelta(days=notifier.settings.retention_days - 1))
    assert (await run_retention(pool, notifier.settings, clock, force=True) or {})["suppressions_lifted"] == 0
    clock.advance(timedelta(days=2))
    assert (await run_retention(pool, notifier.settings, clock, force=True) or {})["suppressions_lifted"] == 1

    later = an_appointment(datetime(2037, 3, 1, 9, 0, tzinfo=UTC), customer={"email": address})
    await publish(booked(later))
    [mail] = await mails_to(sink, address)
    assert mail.subject.startswith("Terminbestätigung")


@pytest.mark.req("R43")
async def test_customer_text_with_markup_umlauts_and_right_to_left_names_is_escaped_and_encoded(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    first = '<script>alert("x")</script> Jürgen'
    last = "Größe-مريم-שרה"
    snap = an_appointment(customer={"first_name": first, "last_name": last}, language="en")
    await publish(booked(snap))
    [mail] = await mails_to(sink, snap.customer.email)

    html = body_of(mail, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Jürgen Größe-مريم-שרה" in html
    assert '<html lang="en">' in html and "<bdi>" in html
    text = body_of(mail, "plain")
    assert f"Dear {first} {last}," in text  # plain text shows the name as typed
    assert mail.parsed["To"].addresses[0].display_name == f"{first} {last}"
    assert first not in mail.subject and "Größe" not in mail.subject
    # 7-bit on the wire: UTF-8 travels encoded (RFC 2047 headers, quoted-printable bodies).
    assert all(byte < 128 for byte in mail.raw)
    for part in mail.leaf_parts():
        assert part.get_content_charset() == "utf-8"


@pytest.mark.req("R52")
async def test_a_sensitive_concern_is_in_the_body_but_never_in_the_subject_the_calendar_or_the_logs(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    concern = "Schwangerschaft und Geburt: Erstausstattung"
    snap = an_appointment(concern_name=concern, sensitive=True, customer={"first_name": "Ayşe"})
    with structlog.testing.capture_logs() as logs:
        await publish(booked(snap))
        [confirmation] = await mails_to(sink, snap.customer.email)
        await publish(cancelled(snap))
        _, cancellation = await mails_to(sink, snap.customer.email, 2)
        await asyncio.sleep(0.3)

    for mail in (confirmation, cancellation):
        assert "Schwangerschaft" not in mail.subject
        calendar, _ = calendar_of(mail)
        assert "Schwangerschaft" not in calendar.to_ical().decode()
        [event] = calendar.walk("VEVENT")
        assert str(event["SUMMARY"]) == "Termin im Jobcenter Bremen"
    assert concern in body_of(confirmation, "plain")

    logged = repr(logs)
    assert logs, "the flow logs something"
    for secret in (concern, "Ayşe", "Mustermann", snap.customer.email, "0421 555 0101", "secret-token"):
        assert secret not in logged, secret


async def _confirmed(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, pool: asyncpg.Pool
) -> AppointmentSnapshot:
    """A booked appointment whose confirmation the notifier has sent and recorded."""
    await start_notifier()
    snap = an_appointment()
    await publish(booked(snap))
    await mails_to(sink, snap.customer.email)
    # The sink has the mail a moment before the notifier has recorded it: wait for the record (an erasure
    # years after the appointment never meets a mail on its way).
    await wait_for(lambda: _confirmation_sent(pool, snap.id), what="the confirmation recorded as sent")
    return snap


async def _wiped(pool: asyncpg.Pool, appointment_id: Any) -> bool:
    """Nothing of the customer on the appointment's mails: no address, no content, and not the keyed hash of
    the address either (with the hash key it confirms that an address had this appointment)."""
    rows = await mail_rows(pool, appointment_id)
    return all((r["recipient"], r["payload"], r["recipient_hash"]) == (None, None, "") for r in rows)


async def test_erasing_an_appointments_personal_data_cancels_its_pending_mail_and_wipes_it(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    pool = clean_db["notifier"]
    snap = await _confirmed(start_notifier, publish, sink, pool)
    await publish(AppointmentPersonalDataErasedV1(appointment_id=snap.id, erased_at=SystemClock().now()))
    await wait_for(functools.partial(_wiped, pool, snap.id), what="the erasure")
    assert dict(await statuses(pool, snap.id)) == {"confirmation": "sent", "reminder": "cancelled"}


@pytest.mark.req("R34")
async def test_an_erasure_lifts_the_suppression_a_refusal_of_the_appointments_mail_left(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """The suppression keeps the keyed hash of the address beside the mail that was refused: it ties the
    address to the appointment, and goes with the appointment's other data at an erasure on request."""
    await start_notifier()
    pool = clean_db["notifier"]
    snap, other = an_appointment(), an_appointment()
    sink.reject_permanent = {snap.customer.email, other.customer.email}
    await publish(booked(snap))
    await publish(booked(other))

    async def suppressed() -> bool:
        return bool(await pool.fetchval("SELECT count(*) = 2 FROM suppressions"))

    await wait_for(suppressed, what="both refusals suppressing their addresses")
    await publish(AppointmentPersonalDataErasedV1(appointment_id=snap.id, erased_at=SystemClock().now()))
    await wait_for(functools.partial(_wiped, pool, snap.id), what="the erasure")
    kept = await pool.fetch("SELECT m.appointment_id FROM suppressions s JOIN mails m ON m.id = s.mail_id")
    assert [r["appointment_id"] for r in kept] == [other.id]
    assert await pool.fetchval("SELECT count(*) FROM suppressions") == 1


@pytest.mark.req("R34")
@pytest.mark.req("R9")
async def test_a_cancellation_due_when_the_data_are_erased_still_goes_out_and_is_wiped_after(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """Staff cancel an appointment and, on the customer's request, erase its data right away (Art. 17
    GDPR): the cancellation, due already, still reaches the customer; the reminder planned for later
    does not; nothing of the customer stays once the cancellation is sent."""
    pool = clean_db["notifier"]
    snap = await _confirmed(start_notifier, publish, sink, pool)
    port = sink.smtp_port
    await sink.stop()  # the cancellation cannot go out yet
    await publish(cancelled(snap))

    async def cancellation_tried() -> bool:
        rows = await mail_rows(pool, snap.id)
        return any(r["kind"] == "cancellation" and r["attempts"] >= 1 for r in rows)

    await wait_for(cancellation_tried, what="a failed attempt of the cancellation")
    await publish(AppointmentPersonalDataErasedV1(appointment_id=snap.id, erased_at=SystemClock().now()))

    async def reminder_gone() -> bool:
        return ("reminder", "cancelled") in await statuses(pool, snap.id)

    await wait_for(reminder_gone, what="the erasure")
    async with MailSink(smtp_port=port, http_port=0) as back:
        [mail] = await mails_to(back, snap.customer.email)
    assert mail.subject.startswith("Absage")

    await wait_for(functools.partial(_wiped, pool, snap.id), what="the sent cancellation wiped")
    assert dict(await statuses(pool, snap.id)) == {
        "confirmation": "sent",
        "reminder": "cancelled",
        "cancellation": "sent",
    }


@pytest.mark.req("R34")
async def test_an_erasure_leaves_a_mail_in_a_senders_hands_to_that_sender(
    clean_db: dict[str, asyncpg.Pool],
) -> None:
    """A sender is delivering a mail when the erasure comes: the mail is recorded as sent (not as
    cancelled, which it was not), and its end wipes it; a mail nobody holds is cancelled and wiped."""
    pool = clean_db["notifier"]
    snap = an_appointment()
    now = SystemClock().now()

    async def plan(conn: asyncpg.Connection, kind: str, due: timedelta) -> None:
        await db.insert_mails(
            conn,
            appointment_id=snap.id,
            planned=[(kind, now + due, now + due + timedelta(hours=48))],
            revision=1,
            language="de",
            recipient=snap.customer.email,
            recipient_hash="h",
            payload={"appointment": snap.model_dump(mode="json")},
            correlation_id="c",
            now=now,
        )

    async with pool.acquire() as conn:
        await plan(conn, "manage_link", timedelta(0))
        token = uuid.uuid4()
        [claimed] = await db.claim_due(
            conn, now=now, lease_until=now + timedelta(minutes=1), token=token, limit=5, exclude=[]
        )
        await plan(conn, "reminder", timedelta(days=3))
        assert await db.erase_personal_data(conn, snap.id, now) == 1  # the reminder
        assert await db.finish(conn, claimed["id"], token, status=MailStatus.SENT, now=now)
    assert dict(await statuses(pool, snap.id)) == {"manage_link": "sent", "reminder": "cancelled"}
    assert await _wiped(pool, snap.id)


@pytest.mark.req("R34")
async def test_no_event_that_arrives_after_the_erasure_mails_the_customer_or_stores_their_data(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """Booking erased the data of two appointments on the customers' request (Art. 17 GDPR). The events
    of one reach the notifier only after the erasure (a backlog drained out of order); a staff move of the
    other, dead-lettered before the erasure, is replayed days later behind a newer link renewal. Neither
    customer gets a mail, and no mail row holds their name or address again."""
    pool = clean_db["notifier"]
    known = await _confirmed(start_notifier, publish, sink, pool)  # its confirmation sent before
    unknown = an_appointment()
    for appointment_id in (unknown.id, known.id):
        await publish(
            AppointmentPersonalDataErasedV1(appointment_id=appointment_id, erased_at=SystemClock().now())
        )

    async def applied() -> bool:
        handled = await pool.fetchval(
            "SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", [e.id for e in publish.sent]
        )
        return bool(handled == len(publish.sent))

    await wait_for(applied, what="the erasures applied")
    later = unknown.start + timedelta(days=1)
    await publish(booked(unknown))
    await publish(rescheduled(unknown, moved(unknown, start=later, end=later + timedelta(minutes=30))))
    staff_move = moved(known, start=later, end=later + timedelta(minutes=30))  # revision 2
    renewed = moved(staff_move, manage_url=f"https://termine.example/manage/{known.id}?token=renewed")
    await publish(AppointmentLinkRenewedV1(appointment=renewed))  # revision 3, applied first
    await wait_for(applied, what="the late events applied")
    await publish(rescheduled(known, staff_move))  # the dead letter replayed: overtaken by revision 3
    await wait_for(applied, what="the replayed dead letter applied")

    await asyncio.sleep(1.0)  # several rounds of the senders (mail_poll_seconds 0.2)
    assert received(sink, unknown.customer.email) == []
    [confirmation] = received(sink, known.customer.email)
    assert confirmation.subject.startswith("Terminbestätigung")
    assert await mail_rows(pool, unknown.id) == []
    rows = await mail_rows(pool, known.id)
    assert {r["kind"] for r in rows} <= {"confirmation", "reminder"}
    assert all(r["recipient"] is None and r["payload"] is None for r in rows)
    copies = await pool.fetch("SELECT manage_url, erased_at FROM appointments")
    assert [(c["manage_url"], c["erased_at"] is not None) for c in copies] == [(None, True)] * 2


async def test_two_notifiers_share_the_work_and_send_every_mail_once(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    await start_notifier()
    snaps = [an_appointment() for _ in range(30)]
    await asyncio.gather(*(publish(booked(s)) for s in snaps))
    async with asyncio.timeout(20):
        await sink.wait_for_messages(30)
    await asyncio.sleep(1.0)
    addresses = [rcpt for m in sink.messages for rcpt in m.envelope_to]
    assert sorted(addresses) == sorted(s.customer.email for s in snaps)
    ids = [m.parsed["Message-ID"] for m in sink.messages]
    assert len(set(ids)) == 30


@pytest.mark.req("R2")
async def test_the_confirmation_arrives_within_two_seconds_of_the_booking_event(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier(mail_poll_seconds=5.0)  # the wake-up, not the poll, must carry it
    delays: list[float] = []
    for _ in range(20):
        snap = an_appointment()
        started = time.perf_counter()
        await publish(booked(snap))
        await mails_to(sink, snap.customer.email)
        delays.append(time.perf_counter() - started)
    p95 = statistics.quantiles(delays, n=20)[-1]
    assert p95 <= 2.0, delays


async def booked_while_the_mail_server_is_down(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, pool: asyncpg.Pool
) -> tuple[AppointmentSnapshot, int]:
    """A booking whose confirmation failed once because the mail server is down; and the server's port,
    to start it again there."""
    await start_notifier()
    port = sink.smtp_port
    await sink.stop()
    snap = an_appointment()
    await publish(booked(snap))

    async def tried() -> bool:
        return any(r["kind"] == "confirmation" and r["attempts"] >= 1 for r in await mail_rows(pool, snap.id))

    await wait_for(tried, what="a failed attempt of the confirmation")
    return snap, port


@pytest.mark.req("R9")
async def test_a_confirmation_still_waiting_for_the_mail_server_is_not_sent_after_the_cancellation(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """Booked and cancelled while the mail server refused: once it is back, the customer gets the
    cancellation only, never a confirmation of the cancelled time after it (each mail backs off on its
    own, so the older one would otherwise come last)."""
    pool = clean_db["notifier"]
    snap, port = await booked_while_the_mail_server_is_down(start_notifier, publish, sink, pool)
    await publish(cancelled(snap))

    async def cancellation_planned() -> bool:
        return any(kind == "cancellation" for kind, _status in await statuses(pool, snap.id))

    await wait_for(cancellation_planned, what="the cancellation planned")
    async with MailSink(smtp_port=port, http_port=0) as back:
        await mails_to(back, snap.customer.email)
        await asyncio.sleep(1.5)  # longer than the back-off: a late confirmation would show
        assert [m.subject.split(":")[0] for m in received(back, snap.customer.email)] == ["Absage"]
    assert ("confirmation", "cancelled") in await statuses(pool, snap.id)


@pytest.mark.req("R41")
async def test_a_mail_that_waited_for_the_mail_server_carries_the_link_renewed_meanwhile(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """The confirmation waits for the mail server; the customer asks for a new link meanwhile (the old
    one no longer opens the appointment). Both mails arrive with the new link, none with the void one."""
    pool = clean_db["notifier"]
    snap, port = await booked_while_the_mail_server_is_down(start_notifier, publish, sink, pool)
    renewed = snap.model_copy(
        update={"revision": 2, "manage_url": f"https://termine.example/manage/{snap.id}?token=renewed-token"}
    )
    await publish(AppointmentLinkRenewedV1(appointment=renewed))

    async def link_mail_planned() -> bool:
        return any(kind == "manage_link" for kind, _status in await statuses(pool, snap.id))

    await wait_for(link_mail_planned, what="the new link's mail planned")
    async with MailSink(smtp_port=port, http_port=0) as back:
        mails = await mails_to(back, snap.customer.email, 2)
    old_token = snap.manage_url.split("token=")[1]
    for mail in mails:
        text = body_of(mail, "plain")
        assert "renewed-token" in text and old_token not in text, mail.subject
