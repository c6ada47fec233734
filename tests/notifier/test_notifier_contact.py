"""Staff corrected the customer's contact data (`appointment.contact_changed`): a corrected e-mail address
gets the confirmation anew, with the new manage link and the calendar invitation, in the booked language
(R7, R40, R41, R43), and nothing more goes to the old address; a corrected name or phone number sends no
mail, but the mails still to come tell it. Repeated or late events are applied once (I3)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
import pytest

from services.notifier import planning
from services.notifier.config import Settings
from shared.clock import ManualClock
from shared.events import EventData, make_envelope
from shared.events.appointment import AppointmentContactChangedV1, AppointmentSnapshot
from shared.events.retention import AppointmentPersonalDataErasedV1
from tests.conftest import wait_for
from tests.notifier.conftest import (
    Notifier,
    Publisher,
    an_appointment,
    body_of,
    booked,
    calendar_of,
    confirmed,
    mail_rows,
    mails_to,
    moved,
    notifier_settings,
    received,
    rescheduled,
)
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]


def corrected(
    snap: AppointmentSnapshot, email: str | None = None, **customer: str | None
) -> AppointmentContactChangedV1:
    """The event of a contact change: a new address comes with a new manage link, else the bare page."""
    changes = {**customer, **({"email": email} if email else {})}
    after = snap.customer.model_copy(update=changes)
    if email:
        link = f"https://termine.example/manage/{snap.id}?token=new-token-{uuid.uuid4().hex}"
    else:
        link = f"https://termine.example/manage/{snap.id}"
    return AppointmentContactChangedV1(
        appointment=moved(snap, customer=after, manage_url=link), email_changed=email is not None
    )


def new_address() -> str:
    return f"neu-{uuid.uuid4().hex[:10]}@example.org"


@pytest.mark.req("R41")
@pytest.mark.req("R40")
@pytest.mark.req("R7")
async def test_a_corrected_address_gets_the_confirmation_with_the_new_link_and_the_old_one_nothing_more(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    snap = await confirmed(publish, sink)
    address = new_address()
    event = corrected(snap, address, last_name="Musterfrau")
    envelope = await publish(event)
    await publish.publish_envelope(envelope)  # delivered twice: still one mail

    [mail] = await mails_to(sink, address)
    assert mail.subject.startswith("Terminbestätigung: Ihr Termin im Jobcenter Bremen")
    text = body_of(mail, "plain")
    link = event.appointment.manage_url
    assert link in text and snap.manage_url not in text
    assert "Musterfrau" in text and "Geschäftsstelle Mitte" in text and "Personalausweis" in text
    calendar, method = calendar_of(mail)
    [vevent] = calendar.walk("VEVENT")
    assert method == "REQUEST" and vevent.decoded("SEQUENCE") == 2 and str(vevent["URL"]) == f"{link}&lang=de"
    await asyncio.sleep(0.5)
    assert len(received(sink, address)) == 1
    assert len(received(sink, snap.customer.email)) == 1  # the first confirmation only

    # The reminder still to come goes to the new address, with the new name and link.
    rows = await mail_rows(clean_db["notifier"], snap.id)
    reminders = {r["revision"]: r for r in rows if r["kind"] == "reminder"}
    assert {revision: r["status"] for revision, r in reminders.items()} == {1: "cancelled", 2: "pending"}
    assert reminders[2]["recipient"] == address
    assert reminders[2]["payload"]["appointment"]["customer"]["last_name"] == "Musterfrau"
    assert reminders[2]["payload"]["appointment"]["manage_url"] == link


@pytest.mark.req("R43")
async def test_the_confirmation_to_a_corrected_address_comes_in_the_booked_language(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    snap = await confirmed(publish, sink, language="en")
    address = new_address()
    await publish(corrected(snap, address))
    [mail] = await mails_to(sink, address)
    assert mail.subject.startswith("Confirmation: your appointment at Jobcenter Bremen")


async def test_a_corrected_phone_number_or_name_sends_no_mail_and_the_reminder_tells_the_new_name(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    snap = await confirmed(publish, sink)
    await publish(corrected(snap, phone="0421 999 000", first_name="Erica"))

    async def replanned() -> bool:
        rows = await mail_rows(clean_db["notifier"], snap.id)
        return any(r["kind"] == "reminder" and r["revision"] == 2 for r in rows)

    await wait_for(replanned, what="the reminder planned anew")
    await asyncio.sleep(0.5)
    assert len(received(sink, snap.customer.email)) == 1  # the confirmation of the booking only
    rows = await mail_rows(clean_db["notifier"], snap.id)
    [reminder] = [r for r in rows if r["kind"] == "reminder" and r["status"] == "pending"]
    assert reminder["recipient"] == snap.customer.email
    assert reminder["payload"]["appointment"]["customer"]["first_name"] == "Erica"
    # The customer's link with its token stays (the event carries only the bare page).
    assert reminder["payload"]["appointment"]["manage_url"] == snap.manage_url


# --- the planning alone, without a sender: what waits for which address ---------------------------------


async def _apply(pool: asyncpg.Pool, data: EventData, *, clock: ManualClock, settings: Settings) -> list[str]:
    envelope = make_envelope(data, producer="booking", clock=clock, correlation_id="cid-contact")
    async with pool.acquire() as conn, conn.transaction():
        kinds = await planning.apply_appointment_event(conn, envelope, data, clock=clock, settings=settings)
    return [k.value for k in kinds]


@pytest.fixture
def planning_clock() -> ManualClock:
    return ManualClock(an_appointment().start - timedelta(days=3))


@pytest.mark.req("R9")
async def test_mails_still_waiting_for_the_old_address_are_taken_back_and_the_new_one_gets_the_state(
    clean_db: dict[str, asyncpg.Pool], planning_clock: ManualClock
) -> None:
    """A move's mail still waits for the mail server when the address is corrected: it is not sent to
    the old address; the confirmation to the new one tells the moved time."""
    pool, settings = clean_db["notifier"], notifier_settings(1)
    snap = an_appointment()
    await _apply(pool, booked(snap), clock=planning_clock, settings=settings)
    later = moved(snap, start=snap.start + timedelta(hours=2), end=snap.end + timedelta(hours=2))
    await _apply(pool, rescheduled(snap, later), clock=planning_clock, settings=settings)
    address = new_address()
    assert await _apply(pool, corrected(later, address), clock=planning_clock, settings=settings) == [
        "confirmation",
        "reminder",
    ]
    rows = await mail_rows(pool, snap.id)
    waiting = [(r["kind"], r["revision"], r["recipient"]) for r in rows if r["status"] == "pending"]
    assert sorted(waiting) == [("confirmation", 3, address), ("reminder", 3, address)]
    [confirmation] = [r for r in rows if r["kind"] == "confirmation" and r["revision"] == 3]
    assert datetime.fromisoformat(confirmation["payload"]["appointment"]["start"]) == later.start


async def test_a_corrected_name_reaches_the_mails_still_waiting(
    clean_db: dict[str, asyncpg.Pool], planning_clock: ManualClock
) -> None:
    pool, settings = clean_db["notifier"], notifier_settings(1)
    snap = an_appointment()
    await _apply(pool, booked(snap), clock=planning_clock, settings=settings)
    assert await _apply(
        pool, corrected(snap, last_name="Musterfrau"), clock=planning_clock, settings=settings
    ) == ["reminder"]
    rows = await mail_rows(pool, snap.id)
    waiting = {(r["kind"], r["revision"]): r for r in rows if r["status"] == "pending"}
    assert set(waiting) == {("confirmation", 1), ("reminder", 2)}
    for row in waiting.values():
        assert row["recipient"] == snap.customer.email
        assert row["payload"]["appointment"]["customer"]["last_name"] == "Musterfrau"


async def test_a_late_correction_overtaken_by_a_newer_one_sends_nothing_to_its_address(
    clean_db: dict[str, asyncpg.Pool], planning_clock: ManualClock
) -> None:
    pool, settings = clean_db["notifier"], notifier_settings(1)
    snap = an_appointment()
    await _apply(pool, booked(snap), clock=planning_clock, settings=settings)
    first, second = new_address(), new_address()
    older = corrected(snap, first)
    newer = corrected(older.appointment, second)
    assert await _apply(pool, newer, clock=planning_clock, settings=settings) == ["confirmation", "reminder"]
    assert await _apply(pool, older, clock=planning_clock, settings=settings) == []
    assert await _apply(pool, newer, clock=planning_clock, settings=settings) == []  # repeated: once
    rows = await mail_rows(pool, snap.id)
    assert {r["recipient"] for r in rows if r["status"] == "pending"} == {second}


async def _copy_link(pool: asyncpg.Pool, appointment_id: uuid.UUID) -> str | None:
    link: str | None = await pool.fetchval(
        "SELECT manage_url FROM appointments WHERE id = $1", appointment_id
    )
    return link


@pytest.mark.req("R41")
async def test_a_corrected_addresss_link_overtaken_by_a_staff_move_is_still_the_one_the_mails_carry(
    clean_db: dict[str, asyncpg.Pool], planning_clock: ManualClock
) -> None:
    """Staff correct the address (revision 2, a new link) and then move the appointment (revision 3,
    no link). When the move arrives first, the correction's link must still replace the old address's
    link, which no longer opens the appointment: the move's mail and the reminder are sent with the link
    in force."""
    pool, settings = clean_db["notifier"], notifier_settings(1)
    snap = an_appointment()
    await _apply(pool, booked(snap), clock=planning_clock, settings=settings)
    correction = corrected(snap, new_address())
    later = moved(
        correction.appointment,
        start=snap.start + timedelta(hours=2),
        end=snap.end + timedelta(hours=2),
        manage_url=f"https://termine.example/manage/{snap.id}",
    )
    assert await _apply(
        pool, rescheduled(correction.appointment, later), clock=planning_clock, settings=settings
    )
    assert await _copy_link(pool, snap.id) == snap.manage_url  # the old address's link, for now
    await _apply(pool, correction, clock=planning_clock, settings=settings)
    assert await _copy_link(pool, snap.id) == correction.appointment.manage_url
    # An older link arriving later still does not replace it.
    await _apply(pool, booked(snap), clock=planning_clock, settings=settings)
    assert await _copy_link(pool, snap.id) == correction.appointment.manage_url


async def test_no_late_event_brings_an_erased_appointments_link_back(
    clean_db: dict[str, asyncpg.Pool], planning_clock: ManualClock
) -> None:
    pool, settings = clean_db["notifier"], notifier_settings(1)
    snap = an_appointment()
    await _apply(pool, booked(snap), clock=planning_clock, settings=settings)
    correction = corrected(snap, new_address())  # revision 2, with a new link
    bare = moved(correction.appointment, manage_url=f"https://termine.example/manage/{snap.id}")
    await _apply(pool, corrected(bare, phone="0421 1"), clock=planning_clock, settings=settings)
    erased = AppointmentPersonalDataErasedV1(appointment_id=snap.id, erased_at=planning_clock.now())
    async with pool.acquire() as conn, conn.transaction():
        envelope = make_envelope(erased, producer="booking", clock=planning_clock)
        await planning.erase_personal_data(conn, envelope, erased, clock=planning_clock)
    assert await _copy_link(pool, snap.id) is None
    await _apply(pool, correction, clock=planning_clock, settings=settings)  # late, with its link
    assert await _copy_link(pool, snap.id) is None
    newer = corrected(moved(bare), new_address())  # and a newer one
    await _apply(pool, newer, clock=planning_clock, settings=settings)
    assert await _copy_link(pool, snap.id) is None
