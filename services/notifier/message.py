"""Composing the MIME message of a mail: plain text and HTML alternatives in UTF-8, the calendar
invitation as a `text/calendar; method=...` alternative and as an `.ics` attachment (R40), a stable
Message-ID and the correlation id (R51)."""

from __future__ import annotations

import email.policy
import email.utils
import io
import uuid
from datetime import datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage

from services.notifier.texts import RenderedMail

# The bodies are encoded when composed (quoted-printable and base64 lines of 76 characters); at sending
# only headers are folded, and folding an ASCII subject at 78 puts it on a line of its own, which some
# readers show with a leading blank. RFC 5322 allows 998.
_WIRE_POLICY = email.policy.SMTP.clone(max_line_length=998)

ICS_FILENAME = {"de": "termin.ics", "de-x-ls": "termin.ics", "en": "appointment.ics"}


def message_id(mail_id: uuid.UUID, domain: str) -> str:
    """Derived from the mail's id: a retry or a repeat after a crash carries the same id, so receiving
    systems can recognise it."""
    return f"<{mail_id}@{domain}>"


def sender_parts(mail_from: str) -> tuple[str, str]:
    name, address = email.utils.parseaddr(mail_from)
    return name, address


def _recipient(name: str, address: str) -> Address | str:
    # Names are typed by customers: whitespace is collapsed (no header can be broken into two); an
    # address the header model cannot express goes out bare.
    clean = " ".join(name.split())
    try:
        return Address(display_name=clean, addr_spec=address)
    except (ValueError, IndexError):
        return address


def compose(
    *,
    mail_id: uuid.UUID,
    rendered: RenderedMail,
    mail_from: str,
    reply_to: str | None,
    recipient_name: str,
    recipient_address: str,
    language: str,
    correlation_id: str,
    domain: str,
    date: datetime,
    calendar: bytes | None = None,
    calendar_method: str = "REQUEST",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = _recipient(recipient_name, recipient_address)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = rendered.subject
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = message_id(mail_id, domain)
    # RFC 3834: no out-of-office replies to an automatic mail.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Correlation-ID"] = correlation_id

    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    if calendar is not None:
        # As bytes: iCalendar lines end in CRLF, which a text part would turn into bare newlines.
        params = {"method": calendar_method, "charset": "utf-8"}
        msg.add_alternative(calendar, maintype="text", subtype="calendar", cte="base64", params=params)
        # The same invitation as a file, for mail programs that do not read the alternative part.
        msg.add_attachment(
            calendar,
            maintype="text",
            subtype="calendar",
            cte="base64",
            params=params,
            filename=ICS_FILENAME.get(language, "termin.ics"),
        )
    # After the parts: setting the content clears every Content-* header of the message.
    msg["Content-Language"] = language
    return msg


def to_wire(msg: EmailMessage) -> bytes:
    """The message as sent: CRLF line ends, 7-bit (non-ASCII headers as RFC 2047 encoded words)."""
    with io.BytesIO() as out:
        BytesGenerator(out, policy=_WIRE_POLICY).flatten(msg)
        return out.getvalue()
