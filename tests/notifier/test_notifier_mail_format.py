"""Every kind of customer mail as a mail client and a calendar read it, in German, Leichte Sprache and
English (R7, R40, R43, R51, R52): the headers, the plain-text and HTML parts that say the same, HTML a
screen reader can follow, and invitations that pass a strict RFC 5545 reader, one event through a
whole life (booked, moved across the change to summer time, new link, transferred, reminded, cancelled).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

import asyncpg
import pytest

from services.notifier import texts, waiting_mail
from services.notifier.sender import MailSender
from services.notifier.service import ClaimedMail
from shared.clock import ManualClock, SystemClock
from shared.events.appointment import AppointmentSnapshot, CancelledBy
from shared.events.mail import MailKind
from shared.invitation import TITLES
from tests.conftest import transferred
from tests.notifier import strict_ics
from tests.notifier.conftest import (
    Notifier,
    Publisher,
    an_appointment,
    booked,
    cancelled,
    mails_to,
    moved,
    notifier_settings,
    rescheduled,
)
from tests.notifier.test_notifier_manage_link import renewed
from tests.notifier.test_notifier_reminder import move_clock
from tools.mailsink import MailSink, StoredMessage

StartNotifier = Callable[..., Awaitable[Notifier]]
LANGUAGES = ("de", "de-x-ls", "en")
_URL = re.compile(r"https?://[^\s<>\"]+")


class _Html(HTMLParser):
    """The parts of an HTML mail that accessibility depends on."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = ""
        self.links: list[str] = []
        self.tables: list[dict[str, str | None]] = []
        self.images: list[dict[str, str | None]] = []
        self.landmarks: set[str] = set()
        self.footer: list[str] = []
        self.title = ""
        self._in_footer = False
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag == "html":
            self.lang = given.get("lang") or ""
        elif tag == "a" and (given.get("href") or "").startswith("http"):
            self.links.append(given["href"] or "")
        elif tag == "table":
            self.tables.append(given)
        elif tag == "img":
            self.images.append(given)
        elif tag == "title":
            self._in_title = True
        elif tag in ("main", "footer"):
            self.landmarks.add(tag)
            self._in_footer = tag == "footer"

    def handle_endtag(self, tag: str) -> None:
        if tag == "footer":
            self._in_footer = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._in_footer and data.strip():
            self.footer.append(" ".join(data.split()))


def part(message: StoredMessage, subtype: str) -> str:
    body = message.parsed.get_body(preferencelist=(subtype,))
    assert body is not None, f"no text/{subtype} part"
    return str(body.get_content())


def check_mail(
    message: StoredMessage, *, language: str, personal: list[str], correlation_id: str | None = None
) -> None:
    """What every customer mail must get right, whatever its kind."""
    headers = message.parsed
    assert headers["Auto-Submitted"] == "auto-generated"  # RFC 3834: no out-of-office replies
    assert headers["X-Auto-Response-Suppress"] == "All"  # the same for Exchange, which ignores RFC 3834
    assert headers["List-Unsubscribe"] is None  # a mail about one's own appointment is no list
    assert headers["Content-Language"] == language
    assert re.fullmatch(r"<[0-9a-f-]{36}@[^<>@\s]+>", str(headers["Message-ID"]))
    assert parsedate_to_datetime(str(headers["Date"])).tzinfo is not None
    if correlation_id is not None:
        assert headers["X-Correlation-ID"] == correlation_id  # R51
    subject = message.subject
    assert subject.strip() and len(subject) <= 200
    for value in personal:  # R52: no name, address, number or concern in the subject
        assert value.lower() not in subject.lower(), (value, subject)

    text, html = part(message, "plain"), part(message, "html")
    page = _Html()
    page.feed(html)
    # A screen reader reads the mail in its language (Leichte Sprache is German to a speech synthesis).
    assert page.lang.split("-")[0] == language.split("-")[0], page.lang
    assert {"main", "footer"} <= page.landmarks
    assert all(table.get("role") == "presentation" for table in page.tables), page.tables
    assert all(image.get("alt") is not None for image in page.images)
    # The two parts link the same pages, absolute, and the HTML one no page the text does not name.
    assert set(page.links) == set(_URL.findall(text)), (page.links, _URL.findall(text))
    # A reader of the plain text learns what the HTML footer says (automatic mail, hotline, privacy).
    flat = " ".join(text.split())
    missing = [line for line in page.footer if line not in flat]
    assert not missing, f"{message.subject}: the plain text lacks {missing}"


def invitation_of(message: StoredMessage) -> tuple[strict_ics.Component, str]:
    """The invitation, read strictly, and the method of its inline part (the same as the attachment's)."""
    parts = [p for p in message.leaf_parts() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 2, "the invitation inline and as a file"
    inline, attachment = parts
    assert attachment.get_content_disposition() == "attachment"
    assert (attachment.get_filename() or "").endswith(".ics")
    data = inline.get_payload(decode=True)
    assert isinstance(data, bytes) and attachment.get_payload(decode=True) == data
    calendar = strict_ics.parse(data)
    method = calendar.one("METHOD").value
    assert str(inline.get_param("method")) == method == str(attachment.get_param("method"))
    return calendar, method


def personal_data(snap: AppointmentSnapshot) -> list[str]:
    customer = snap.customer
    found = [customer.first_name, customer.last_name, customer.email, snap.concern_name]
    return found + [v for v in (customer.phone, customer.customer_number) if v]


@pytest.mark.req("R40")
@pytest.mark.req("R43")
@pytest.mark.req("R51")
@pytest.mark.req("R52")
@pytest.mark.parametrize("language", LANGUAGES)
async def test_one_appointment_s_mails_from_booking_to_cancellation_read_right_in_mail_and_calendar(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, language: str
) -> None:
    # Friday 27 March 2037, 09:00 CET; summer time starts on Sunday 29 March.
    start = datetime(2037, 3, 27, 8, 0, tzinfo=UTC)
    notifier = await start_notifier(ManualClock(start - timedelta(days=3)))
    first = an_appointment(
        start,
        language=language,
        location_name="Geschäftsstelle Mitte, Haus A; 2. Stock",
        customer={"first_name": "Zoë", "last_name": "Ünal-Smith"},
    )
    address = first.customer.email
    # Monday 30 March 2037, 09:00 CEST.
    later = moved(
        first, start=datetime(2037, 3, 30, 7, 0, tzinfo=UTC), end=datetime(2037, 3, 30, 7, 30, tzinfo=UTC)
    )
    relinked, _ = renewed(later)
    elsewhere = moved(relinked.appointment, location_id="sued", location_name="Geschäftsstelle Süd")
    # Confirmation, reschedule, manage link and transfer: each one invitation of the same event.
    steps: list[Any] = [
        booked(first),
        rescheduled(first, later),
        relinked,
        transferred(relinked.appointment, elsewhere),
    ]
    mails: list[tuple[StoredMessage, str]] = []
    for change in steps:
        envelope = await publish(change, occurred_at=notifier.clock.now())
        mails.append(((await mails_to(sink, address, len(mails) + 1))[-1], envelope.correlation_id))
    await move_clock(notifier, datetime(2037, 3, 29, 7, 0, tzinfo=UTC))  # 24 hours before
    reminder = (await mails_to(sink, address, len(mails) + 1))[-1]
    envelope = await publish(
        cancelled(elsewhere, CancelledBy.STAFF, "Der Standort ist geschlossen."),
        occurred_at=notifier.clock.now(),
    )
    mails.append(((await mails_to(sink, address, len(mails) + 2))[-1], envelope.correlation_id))

    check_mail(reminder, language=language, personal=personal_data(first))
    assert reminder.parsed.get_body(preferencelist=("calendar",)) is None
    sequences = []
    for message, correlation_id in mails:
        check_mail(message, language=language, personal=personal_data(first), correlation_id=correlation_id)
        calendar, method = invitation_of(message)
        [event] = calendar.walk("VEVENT")
        # One event in the customer's calendar, updated in place (R40).
        assert event.one("UID").value == f"{first.id}@{notifier.settings.mail_domain}"
        sequences.append(int(event.one("SEQUENCE").value))
        assert method == ("CANCEL" if message is mails[-1][0] else "REQUEST")
        assert strict_ics.unescape(event.one("SUMMARY").value) in TITLES.values()
        for value in personal_data(first):
            assert value.lower() not in strict_ics.unescape(event.one("SUMMARY").value).lower()
    assert sequences == sorted(set(sequences)) and len(sequences) == 5  # raised with every change

    confirmation, moved_mail = mails[0][0], mails[1][0]
    [event] = invitation_of(confirmation)[0].walk("VEVENT")
    assert (event.one("DTSTART").params, event.one("DTSTART").value) == (
        {"TZID": "Europe/Berlin"},
        "20370327T090000",
    )
    assert strict_ics.unescape(event.one("LOCATION").value).startswith(
        "Geschäftsstelle Mitte, Haus A; 2. Stock"
    )
    [event] = invitation_of(moved_mail)[0].walk("VEVENT")
    assert event.one("DTSTART").value == "20370330T090000"  # 09:00 in summer time, not 10:00
    assert event.one("DTEND").value == "20370330T093000"
    for text in (part(moved_mail, "plain"), part(moved_mail, "html")):
        assert "09:00" in text and "10:00" not in text and "08:00" not in text


def claimed_mail(
    kind: str,
    language: str,
    payload: dict[str, Any],
    templates: texts.TemplateSet | None = None,
    correlation_id: str = "cid-format",
) -> ClaimedMail:
    """A mail as the sender claims it, to be built without a queue: the default texts unless given."""
    return ClaimedMail(
        id=uuid.uuid4(),
        appointment_id=uuid.uuid4(),
        kind=MailKind(kind),
        revision=1,
        language=language,
        attempts=0,
        deadline=datetime(2099, 1, 1, tzinfo=UTC),
        recipient="erika@example.org",
        recipient_hash="",
        payload=payload,
        correlation_id=correlation_id,
        templates=templates or texts.default_templates(kind, language),
    )


@pytest.mark.req("R43")
@pytest.mark.req("R45")
@pytest.mark.req("R52")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", [kind.value for kind in MailKind])
async def test_every_kind_of_mail_reads_right_in_every_language(
    pools: dict[str, asyncpg.Pool], kind: str, language: str
) -> None:
    """The sender's own build of each kind with the shipped texts (the waiting list's mails included)."""
    sender = MailSender(pools["notifier"], notifier_settings(25), SystemClock())
    if kind in waiting_mail.KINDS:
        payload = waiting_mail.sample_payload(language)
        wish = payload["wish"]
        personal = [wish["customer"]["last_name"], wish["customer"]["email"], wish["concern_name"]]
    else:
        snap = an_appointment(language=language, mode="phone", interpreter_language="Arabisch", evening=True)
        payload = {"appointment": snap.model_dump(mode="json"), "cancelled_by": "staff", "reason": "Krank"}
        payload["previous_start"] = (snap.start - timedelta(days=1)).isoformat()
        personal = personal_data(snap)
    wire = await sender.build_message(claimed_mail(kind, language, payload))
    message = StoredMessage(1, datetime.now(UTC), "", ("erika@example.org",), wire)
    check_mail(message, language=language, personal=personal, correlation_id="cid-format")
    # The HTML document's title (WCAG 2.4.2) says what the mail is about: a wish is no appointment yet.
    page = _Html()
    page.feed(part(message, "html"))
    about = (
        ("Warteliste", "Warte·liste", "waiting list")
        if kind in waiting_mail.KINDS
        else ("Termin", "appointment")
    )
    assert any(word in page.title for word in about), page.title
