"""The reminder 24 elapsed hours before the start, with the clock moved by hand (R8): across both DST
changes of 2026, none for a cancelled appointment, exactly one for a moved one, none that a stale event
brings back, and none that can no longer arrive before the start."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.clock import ManualClock
from shared.events.appointment import AppointmentLinkRenewedV1, AppointmentSnapshot
from tests.conftest import wait_for
from tests.notifier.conftest import (
    Notifier,
    Publisher,
    an_appointment,
    berlin,
    body_of,
    booked,
    cancelled,
    mail_rows,
    mails_to,
    moved,
    received,
    rescheduled,
)
from tools.mailsink import MailSink, StoredMessage

StartNotifier = Callable[..., Awaitable[Notifier]]


async def move_clock(notifier: Notifier, when: datetime) -> None:
    assert isinstance(notifier.clock, ManualClock)
    senders = notifier.senders
    # Time jumps only between deliveries (of every replica): a jump in the middle would expire the lease
    # of one in hand.
    await wait_for(lambda: all(s.busy == 0 for s in senders), what="the deliveries in hand")
    notifier.clock.set(when)
    for sender in senders:
        sender.wake()
    await asyncio.sleep(0.4)  # time for a due mail to be claimed and sent


def subjects(sink: MailSink, snap: AppointmentSnapshot) -> list[str]:
    return [m.subject.split(":")[0] for m in received(sink, snap.customer.email)]


async def booked_three_days_ahead(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> tuple[Notifier, AppointmentSnapshot]:
    """A notifier on a clock three days before the appointment's start, the booking confirmed by mail."""
    start = datetime(2037, 12, 8, 9, 0, tzinfo=UTC)
    notifier = await start_notifier(ManualClock(start - timedelta(days=3)))
    snap = an_appointment(start)
    await publish(booked(snap), occurred_at=notifier.clock.now())
    await mails_to(sink, snap.customer.email)
    return notifier, snap


@pytest.mark.req("R8")
@pytest.mark.parametrize(
    ("start", "reminder_utc", "wall_clock"),
    [
        # 25 Oct 2026: clocks go back at 03:00 CEST. 24 h before 10:00 CET is 11:00 CEST the day before.
        (berlin(2026, 10, 25, 10, 0), datetime(2026, 10, 24, 9, 0, tzinfo=UTC), "11:00"),
        # 29 Mar 2026: clocks go forward at 02:00 CET. 24 h before 10:00 CEST is 09:00 CET the day before.
        (berlin(2026, 3, 29, 10, 0), datetime(2026, 3, 28, 8, 0, tzinfo=UTC), "09:00"),
    ],
    ids=["october", "march"],
)
async def test_the_reminder_arrives_24_elapsed_hours_before_the_start_across_a_dst_change(
    start_notifier: StartNotifier,
    publish: Publisher,
    sink: MailSink,
    start: datetime,
    reminder_utc: datetime,
    wall_clock: str,
) -> None:
    clock = ManualClock(start - timedelta(days=5))
    notifier = await start_notifier(clock)
    snap = an_appointment(start.astimezone(UTC))
    await publish(booked(snap), occurred_at=clock.now())
    await mails_to(sink, snap.customer.email)

    await move_clock(notifier, reminder_utc - timedelta(seconds=1))
    assert subjects(sink, snap) == ["Terminbestätigung"]

    await move_clock(notifier, reminder_utc)
    _, reminder = await mails_to(sink, snap.customer.email, 2)
    assert reminder.subject.startswith("Erinnerung: Ihr Termin im Jobcenter Bremen")
    assert reminder.date == reminder_utc
    assert reminder.date is not None
    assert reminder.date.astimezone(start.tzinfo).strftime("%H:%M") == wall_clock
    assert (start - reminder.date) == timedelta(hours=24)
    assert "10:00 bis 10:30 Uhr" in body_of(reminder, "plain")
    assert snap.manage_url in body_of(reminder, "plain")

    await move_clock(notifier, start + timedelta(hours=1))
    assert subjects(sink, snap) == ["Terminbestätigung", "Erinnerung"]


@pytest.mark.req("R8")
async def test_a_cancelled_appointment_gets_no_reminder(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    notifier, snap = await booked_three_days_ahead(start_notifier, publish, sink)
    start, clock = snap.start, notifier.clock
    await publish(cancelled(snap), occurred_at=clock.now())
    await mails_to(sink, snap.customer.email, 2)

    await move_clock(notifier, start - timedelta(hours=24))
    await move_clock(notifier, start + timedelta(minutes=1))
    assert subjects(sink, snap) == ["Terminbestätigung", "Absage"]
    reminder = [r for r in await mail_rows(clean_db["notifier"], snap.id) if r["kind"] == "reminder"]
    assert [r["status"] for r in reminder] == ["cancelled"]
    assert reminder[0]["recipient"] is None and reminder[0]["payload"] is None


@pytest.mark.req("R8")
async def test_a_moved_appointment_gets_exactly_one_reminder_at_the_new_time(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    first = datetime(2037, 12, 8, 9, 0, tzinfo=UTC)
    clock = ManualClock(first - timedelta(days=4))
    notifier = await start_notifier(clock)
    snap = an_appointment(first)
    await publish(booked(snap), occurred_at=clock.now())
    await mails_to(sink, snap.customer.email)
    later = moved(snap, start=first + timedelta(days=2, hours=3), end=snap.end + timedelta(days=2, hours=3))
    await publish(rescheduled(snap, later), occurred_at=clock.now())
    await mails_to(sink, snap.customer.email, 2)

    await move_clock(notifier, first - timedelta(hours=24))  # the old reminder time: nothing
    await move_clock(notifier, first + timedelta(hours=1))
    assert subjects(sink, snap) == ["Terminbestätigung", "Neue Zeit"]

    await move_clock(notifier, later.start - timedelta(hours=24))
    _, _, reminder = await mails_to(sink, snap.customer.email, 3)
    assert reminder.subject.startswith("Erinnerung")
    assert "Donnerstag, 10. Dezember 2037" in body_of(reminder, "plain")
    assert "13:00 bis 13:30 Uhr" in body_of(reminder, "plain")

    await move_clock(notifier, later.start + timedelta(minutes=5))
    assert subjects(sink, snap) == ["Terminbestätigung", "Neue Zeit", "Erinnerung"]


@pytest.mark.req("R8")
async def test_an_appointment_booked_three_hours_ahead_gets_no_reminder(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    now = datetime(2037, 12, 8, 7, 0, tzinfo=UTC)
    clock = ManualClock(now)
    notifier = await start_notifier(clock)
    snap = an_appointment(now + timedelta(hours=3))
    await publish(booked(snap), occurred_at=now)
    await mails_to(sink, snap.customer.email)
    await move_clock(notifier, now + timedelta(hours=2, minutes=59))
    assert subjects(sink, snap) == ["Terminbestätigung"]
    assert [r["kind"] for r in await mail_rows(clean_db["notifier"], snap.id)] == ["confirmation"]


@pytest.mark.req("R8")
async def test_a_late_stale_event_does_not_bring_back_the_reminder_of_a_cancelled_appointment(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    start = datetime(2037, 12, 8, 9, 0, tzinfo=UTC)
    clock = ManualClock(start - timedelta(days=3))
    notifier = await start_notifier(clock)
    snap = an_appointment(start)
    # The cancellation (revision 2) overtakes the booking (revision 1), e.g. after a retry.
    await publish(cancelled(snap), occurred_at=clock.now())
    await mails_to(sink, snap.customer.email)
    await publish(booked(snap), occurred_at=clock.now() - timedelta(seconds=1))

    async def handled() -> bool:
        return int(await clean_db["notifier"].fetchval("SELECT count(*) FROM inbox")) >= 2

    await wait_for(handled, what="the late booking event")
    await move_clock(notifier, start - timedelta(hours=24))
    await move_clock(notifier, start - timedelta(hours=1))
    assert subjects(sink, snap) == ["Absage"]
    assert [r["kind"] for r in await mail_rows(clean_db["notifier"], snap.id)] == ["cancellation"]


@pytest.mark.req("R8")
async def test_a_reminder_that_cannot_go_out_before_the_start_is_given_up(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    notifier, snap = await booked_three_days_ahead(start_notifier, publish, sink)
    start = snap.start

    sink.fail_temporarily = True
    await move_clock(notifier, start - timedelta(hours=24))
    await move_clock(notifier, start - timedelta(hours=2))
    pool = clean_db["notifier"]
    [row] = [r for r in await mail_rows(pool, snap.id) if r["kind"] == "reminder"]
    assert row["status"] == "pending" and row["attempts"] == 2 and row["last_error"] == "smtp_451_rcpt"

    await move_clock(notifier, start)
    [row] = [r for r in await mail_rows(pool, snap.id) if r["kind"] == "reminder"]
    assert row["status"] == "failed" and row["last_error"] == "expired"
    assert row["recipient"] is None and row["payload"] is None
    failed = await pool.fetch("SELECT envelope FROM outbox WHERE type = 'mail.failed'")
    assert [e["envelope"]["data"]["reason"] for e in failed] == ["expired"]
    assert failed[0]["envelope"]["data"]["kind"] == "reminder"
    sink.fail_temporarily = False
    await move_clock(notifier, start + timedelta(minutes=1))
    assert [m.subject.split(":")[0] for m in received(sink, snap.customer.email)] == ["Terminbestätigung"]


def _kinds(messages: list[StoredMessage]) -> list[str]:
    return [m.subject.split(":")[0] for m in messages]


@pytest.mark.req("R8")
async def test_a_reminder_waiting_for_the_mail_server_survives_a_change_that_keeps_the_time(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    """The reminder fell due while the mail server answered 451; before its next try the customer asked
    for a new link (a newer revision, same time). The reminder is still sent, once, with the new link."""
    notifier, snap = await booked_three_days_ahead(start_notifier, publish, sink)
    start, clock = snap.start, notifier.clock

    sink.fail_temporarily = True
    await move_clock(notifier, start - timedelta(hours=24))
    pool = clean_db["notifier"]
    [row] = [r for r in await mail_rows(pool, snap.id) if r["kind"] == "reminder"]
    assert row["status"] == "pending" and row["attempts"] == 1

    sink.fail_temporarily = False  # the server is back; the reminder's next try is 30 seconds away
    renewed = moved(snap, manage_url=f"https://termine.example/manage/{snap.id}?token=renewed-token")
    await publish(AppointmentLinkRenewedV1(appointment=renewed), occurred_at=clock.now())
    await mails_to(sink, snap.customer.email, 3)
    await move_clock(notifier, start - timedelta(hours=20))
    sent = subjects(sink, snap)
    assert len(sent) == 3 and sent[0] == "Terminbestätigung"
    assert sorted(subject.split()[0] for subject in sent[1:]) == ["Erinnerung", "Ihr"]  # and the new link
    [reminder] = [m for m in received(sink, snap.customer.email) if m.subject.startswith("Erinnerung")]
    assert "renewed-token" in body_of(reminder, "plain")
