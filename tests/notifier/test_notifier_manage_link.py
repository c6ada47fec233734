"""The manage link again (R41): `appointment.link_renewed` sends the customer one mail with the new
link, in the booked language, with the calendar entry updated to the new link; the reminder that was
still to come carries the new link too, and no mail carries the old one afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from shared.events.appointment import AppointmentLinkRenewedV1, AppointmentSnapshot
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
    received,
)
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]


def renewed(snap: AppointmentSnapshot) -> tuple[AppointmentLinkRenewedV1, str]:
    link = f"https://termine.example/manage/{snap.id}?token=new-token-{uuid.uuid4().hex}"
    return AppointmentLinkRenewedV1(appointment=moved(snap, manage_url=link)), link


@pytest.mark.req("R41")
@pytest.mark.req("R40")
async def test_a_renewed_link_is_mailed_once_and_replaces_the_old_one_everywhere(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    await start_notifier()
    snap = await confirmed(publish, sink)
    event, link = renewed(snap)
    envelope = await publish(event)
    await publish.publish_envelope(envelope)  # delivered twice: still one mail

    _, mail = await mails_to(sink, snap.customer.email, 2)
    assert mail.subject == (
        "Ihr neuer Link zum Termin im Jobcenter Bremen am Dienstag, 8. Dezember 2037 um 10:00 Uhr"
    )
    text = body_of(mail, "plain")
    assert link in text and snap.manage_url not in text
    assert "Links aus früheren E-Mails zu diesem Termin gelten nicht mehr." in text
    assert "Geschäftsstelle Mitte" in text and "Personalausweis" in text
    assert link.replace("&", "&amp;") in body_of(mail, "html")
    calendar, method = calendar_of(mail)
    [vevent] = calendar.walk("VEVENT")
    assert method == "REQUEST" and vevent.decoded("SEQUENCE") == 2  # the calendar entry is updated
    assert str(vevent["URL"]) == f"{link}&lang=de"
    await asyncio.sleep(0.5)
    assert len(received(sink, snap.customer.email)) == 2

    # The reminder still to come was planned again for the new revision, with the new link.
    rows = await mail_rows(clean_db["notifier"], snap.id)
    reminders = {r["revision"]: r["status"] for r in rows if r["kind"] == "reminder"}
    assert reminders == {1: "cancelled", 2: "pending"}
    [pending] = [r for r in rows if r["kind"] == "reminder" and r["status"] == "pending"]
    assert pending["payload"]["appointment"]["manage_url"] == link
    stored = await clean_db["notifier"].fetchval("SELECT manage_url FROM appointments WHERE id = $1", snap.id)
    assert stored == link  # a later change by staff carries the bare page: this link goes into its mail


@pytest.mark.req("R41")
@pytest.mark.req("R43")
async def test_the_new_link_comes_in_the_language_the_customer_booked_in(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    await start_notifier()
    english = an_appointment(language="en")
    easy = an_appointment(language="de-x-ls")
    for snap in (english, easy):
        await publish(booked(snap))
        await mails_to(sink, snap.customer.email)
        await publish(renewed(snap)[0])
    _, in_english = await mails_to(sink, english.customer.email, 2)
    assert in_english.subject.startswith(
        "Your new link: appointment at Jobcenter Bremen on Tuesday, 8 December"
    )
    assert "Links from earlier e-mails about this appointment no longer work." in body_of(in_english, "plain")
    assert "&lang=en" in body_of(in_english, "plain")
    _, in_easy = await mails_to(sink, easy.customer.email, 2)
    assert (
        in_easy.subject == "Ihr neuer Link für Ihren Termin im Jobcenter Bremen am Dienstag, 8. Dezember 2037"
    )
    assert "Die alten Links zu diesem Termin gehen nicht mehr." in body_of(in_easy, "plain")
