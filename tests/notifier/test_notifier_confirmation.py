"""Booking, cancelling and rescheduling through the real exchange: one mail each in the sink, with a
calendar invitation that the customer's calendar can follow (R2, R7, R9, R40)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.events.appointment import CancelledBy
from tests.conftest import transferred
from tests.notifier.conftest import (
    Notifier,
    Publisher,
    an_appointment,
    body_of,
    booked,
    calendar_of,
    cancelled,
    confirmed,
    mail_rows,
    mails_to,
    moved,
    received,
    rescheduled,
)
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]


@pytest.mark.req("R2")
@pytest.mark.req("R7")
@pytest.mark.req("R40")
async def test_a_booking_gets_one_confirmation_with_a_valid_invitation(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier(hotline="0421 361-7777")
    snap = an_appointment(datetime(2037, 12, 8, 9, 0, tzinfo=UTC))
    envelope = await publish(booked(snap))

    [mail] = await mails_to(sink, snap.customer.email)
    assert mail.subject.startswith("Terminbestätigung: Ihr Termin im Jobcenter Bremen")
    assert mail.parsed["Message-ID"] and mail.parsed["X-Correlation-ID"] == envelope.correlation_id
    assert mail.header_from == "Jobcenter Bremen <termine@jobcenter-bremen.example>"

    text = body_of(mail, "plain")
    for expected in (
        "Dienstag, 8. Dezember 2037",
        "10:00 bis 10:30 Uhr",  # 09:00 UTC is 10:00 in Bremen in winter
        "Termin vor Ort",
        "Neuantrag stellen",
        "Geschäftsstelle Mitte",
        "Doventorsteinweg 48-52, 28195 Bremen",
        "Personalausweis",
        "Mietvertrag",
        snap.manage_url,
        "Fragen? Rufen Sie uns an: 0421 361-7777",  # the configured hotline (OTV_HOTLINE)
        f"Buchungsnummer: {snap.reference}",  # the name the pages and the day's Excel list use
    ):
        assert expected in text, expected
    # A global number a phone dials (RFC 3966), the configured one as the link's text.
    assert '<a href="tel:+494213617777">0421 361-7777</a>' in body_of(mail, "html")
    assert "Abendtermin" not in text
    assert "verschieben oder absagen" in text

    calendar, method = calendar_of(mail)
    assert method == "REQUEST"
    assert calendar["METHOD"] == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{snap.id}@otv.jobcenter-bremen"
    assert event.decoded("SEQUENCE") == 1
    assert event.decoded("DTSTART") == snap.start
    assert event.decoded("DTEND") == snap.end
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert calendar.walk("VTIMEZONE")
    assert str(event["SUMMARY"]) == "Termin im Jobcenter Bremen"
    assert str(event["STATUS"]) == "CONFIRMED"

    await asyncio.sleep(0.5)
    assert len(received(sink, snap.customer.email)) == 1


@pytest.mark.req("R9")
@pytest.mark.req("R40")
async def test_cancelling_sends_one_cancellation_with_the_same_uid_and_a_higher_sequence(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    snap = an_appointment()
    await publish(booked(snap))
    [confirmation] = await mails_to(sink, snap.customer.email)
    await publish(cancelled(snap, CancelledBy.CUSTOMER))

    _, cancellation = await mails_to(sink, snap.customer.email, 2)
    assert cancellation.subject.startswith("Absage: Ihr Termin im Jobcenter Bremen")
    text = body_of(cancellation, "plain")
    assert "Sie haben Ihren Termin im Jobcenter Bremen abgesagt" in text
    assert "https://termine.example/" in text  # the link to book again
    first, _ = calendar_of(confirmation)
    second, method = calendar_of(cancellation)
    assert method == "CANCEL" and second["METHOD"] == "CANCEL"
    [before], [after] = first.walk("VEVENT"), second.walk("VEVENT")
    assert after["UID"] == before["UID"]
    assert after.decoded("SEQUENCE") > before.decoded("SEQUENCE")
    assert str(after["STATUS"]) == "CANCELLED"
    assert cancellation.parsed["Message-ID"] != confirmation.parsed["Message-ID"]
    await asyncio.sleep(0.5)
    assert len(received(sink, snap.customer.email)) == 2


@pytest.mark.req("R9")
async def test_a_cancellation_by_staff_says_so_and_gives_the_reason(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    snap = an_appointment(language="en")
    await publish(cancelled(snap, CancelledBy.STAFF, "The office is closed because of a water leak."))
    [mail] = await mails_to(sink, snap.customer.email)
    assert mail.subject.startswith("Cancelled: your appointment at Jobcenter Bremen")
    text = body_of(mail, "plain")
    assert "Jobcenter Bremen has cancelled your appointment" in text
    assert "water leak" in text
    assert "https://termine.example/?lang=en" in text  # booking again starts in English (R43)


@pytest.mark.req("R40")
async def test_a_reschedule_sends_a_request_with_a_higher_sequence_and_both_times(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    snap = await confirmed(publish, sink)
    later = moved(snap, start=snap.start + timedelta(days=2), end=snap.end + timedelta(days=2))
    await publish(rescheduled(snap, later))

    _, mail = await mails_to(sink, snap.customer.email, 2)
    assert mail.subject.startswith("Neue Zeit: Ihr Termin im Jobcenter Bremen")
    text = body_of(mail, "plain")
    assert "Bisher: Dienstag, 8. Dezember 2037, 10:00 Uhr" in text
    assert "Donnerstag, 10. Dezember 2037" in text
    calendar, method = calendar_of(mail)
    [event] = calendar.walk("VEVENT")
    assert method == "REQUEST"
    assert event.decoded("SEQUENCE") == 2
    assert event.decoded("DTSTART") == later.start


@pytest.mark.req("R7")
@pytest.mark.req("R43")
async def test_a_phone_appointment_in_leichte_sprache_names_the_number_in_the_body_only(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    snap = an_appointment(mode="phone", language="de-x-ls", evening=True)
    await publish(booked(snap))
    [mail] = await mails_to(sink, snap.customer.email)
    assert mail.subject.startswith("Ihr Termin im Jobcenter Bremen")
    assert "0421" not in mail.subject
    text = body_of(mail, "plain")
    assert "Wir rufen diese Nummer an: 0421 555 0101" in text
    assert "Der Termin ist am Telefon." in text
    assert "Ihr Termin ist am Abend." in text  # the evening notice (R12)
    assert "Eine Maßnahme ist zum Beispiel" in text  # a word explained
    assert mail.parsed["Content-Language"] == "de-x-ls"
    calendar, _ = calendar_of(mail)
    [event] = calendar.walk("VEVENT")
    assert str(event["LOCATION"]) == "Termin am Telefon \u2013 Geschäftsstelle Mitte"
    # The links open the manage page in Leichte Sprache, wherever the mail is read (R43).
    assert f"{snap.manage_url}&lang=de-x-ls" in text
    assert str(event["URL"]) == f"{snap.manage_url}&lang=de-x-ls"


async def test_the_same_event_delivered_twice_sends_one_mail(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    snap = an_appointment()
    envelope = await publish(booked(snap))
    await publish.publish_envelope(envelope)
    # A producer that repeats the change under a new event id is caught by the mail's own key.
    await publish(booked(snap))
    await mails_to(sink, snap.customer.email)
    await asyncio.sleep(1.0)
    assert len(received(sink, snap.customer.email)) == 1
    kinds = [r["kind"] for r in await mail_rows(clean_db["notifier"], snap.id)]
    assert kinds.count("confirmation") == 1


@pytest.mark.req("R7")
async def test_a_move_by_staff_keeps_the_customers_working_manage_link_in_the_mail(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    snap = an_appointment()
    await publish(booked(snap))
    await mails_to(sink, snap.customer.email)
    # Staff do not have the customer's token: the event carries the bare manage page.
    bare = f"https://termine.example/manage/{snap.id}"
    later = moved(
        snap, start=snap.start + timedelta(days=1), end=snap.end + timedelta(days=1), manage_url=bare
    )
    await publish(rescheduled(snap, later))
    _, mail = await mails_to(sink, snap.customer.email, 2)
    assert snap.manage_url in body_of(mail, "plain")
    assert snap.manage_url.replace("&", "&amp;") in body_of(mail, "html")

    await publish(cancelled(later, CancelledBy.STAFF))
    await mails_to(sink, snap.customer.email, 3)
    stored = await clean_db["notifier"].fetchval("SELECT manage_url FROM appointments WHERE id = $1", snap.id)
    assert stored is None  # the secret link is not kept once the appointment is over


@pytest.mark.req("R25")
async def test_a_transfer_to_the_responsible_location_sends_the_new_place_and_time(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    snap = await confirmed(publish, sink)
    there = moved(
        snap,
        location_id="nord",
        location_name="Geschäftsstelle Nord",
        location_address="Am Sedanplatz 7, 28757 Bremen",
        start=snap.start + timedelta(days=1),
        end=snap.end + timedelta(days=1),
    )
    await publish(transferred(snap, there))
    _, mail = await mails_to(sink, snap.customer.email, 2)
    text = body_of(mail, "plain")
    assert "Geschäftsstelle Nord" in text and "Am Sedanplatz 7" in text
    assert "Mittwoch, 9. Dezember 2037" in text
    calendar, method = calendar_of(mail)
    [event] = calendar.walk("VEVENT")
    assert method == "REQUEST" and event.decoded("SEQUENCE") == 2


@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("language", "label"),
    [("de", "Standort"), ("en", "Location"), ("de-x-ls", "Bitte kommen Sie hierhin:")],
)
async def test_the_confirmation_names_the_place_with_the_word_of_the_pages(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, language: str, label: str
) -> None:
    """The pages say Standort / Location; a mail that says Geschäftsstelle / Office makes the customer
    wonder whether it is another place."""
    await start_notifier()
    snap = an_appointment(language=language, location_name="Mitte")
    await publish(booked(snap))
    [mail] = await mails_to(sink, snap.customer.email)
    text, html = body_of(mail, "plain"), body_of(mail, "html")
    assert re.search(rf"{label}:?\s+Mitte", text), text
    assert label in html
    for part in (text, html):
        assert "Geschäftsstelle" not in part
        assert not re.search(r"\boffice\b", part, re.IGNORECASE)


@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("tag", "built_in", "greeting", "date", "content_language"),
    [
        ("tr", "de", "vielen Dank für Ihre Buchung", "Dienstag, 8. Dezember 2037", "de"),
        ("en-GB", "en", "Thank you for your booking", "Tuesday, 8 December 2037", "en"),
    ],
)
async def test_a_booking_in_a_language_without_mail_texts_gets_the_nearest_texts_and_links_in_its_own(
    start_notifier: StartNotifier,
    publish: Publisher,
    sink: MailSink,
    clean_db: dict[str, asyncpg.Pool],
    tag: str,
    built_in: str,
    greeting: str,
    date: str,
    content_language: str,
) -> None:
    """Further languages are content (R43): a customer booked on pages added in Turkish. The notifier has no
    Turkish texts: the confirmation comes in German (a regional English in English), whole, not half in one
    language; the manage link opens the pages in Turkish again. The calendar entry is German too."""
    await start_notifier()
    snap = an_appointment(language=built_in, language_tag=tag)
    await publish(booked(snap))
    [mail] = await mails_to(sink, snap.customer.email)
    text = body_of(mail, "plain")
    assert greeting in text and date in text
    assert mail.parsed["Content-Language"] == content_language
    assert f"{snap.manage_url}&lang={tag}" in text
    calendar, _ = calendar_of(mail)
    [event] = calendar.walk("VEVENT")
    assert str(event["URL"]) == f"{snap.manage_url}&lang={tag}"
    expected_title = "Appointment at Jobcenter Bremen" if built_in == "en" else "Termin im Jobcenter Bremen"
    assert str(event["SUMMARY"]) == expected_title
    # Kept with each mail, so that a reminder written later finds texts added meanwhile.
    assert {r["language"] for r in await mail_rows(clean_db["notifier"], snap.id)} == {tag}
