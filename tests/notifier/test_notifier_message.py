"""The mail as `compose` writes it reads, with Python's `email` package, exactly as the same mail built
with that package's EmailMessage (the way it was composed before, at thirty times the CPU): the same
headers, parts, parameters and decoded contents, and it is 7-bit with CRLF line ends."""

from __future__ import annotations

import email.policy
import email.utils
import io
import uuid
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from services.notifier import message
from services.notifier.texts import RenderedMail

CALENDAR = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nSUMMARY:Termin\r\nEND:VCALENDAR\r\n"
TEXT = "Guten Tag Jürgen Größe,\n\nIhr Termin ist am 3. März um 10:00 Uhr.\nhttps://termine.example/m?token=abc\n"
HTML = '<!DOCTYPE html>\n<html lang="de"><body><p>Guten Tag <bdi>Jürgen</bdi>,</p></body></html>\n'
MAIL: dict[str, Any] = {
    "rendered": RenderedMail(subject="Terminbestätigung: Ihr Termin am 3. März 2026", text=TEXT, html=HTML),
    "mail_from": "Jobcenter Bremen <termine@jobcenter-bremen.example>",
    "reply_to": None,
    "recipient_name": "Erika Mustermann",
    "recipient_address": "erika@example.org",
    "language": "de",
    "correlation_id": "cid-0123456789ab",
    "domain": "otv.jobcenter-bremen",
    "date": datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
    "calendar": CALENDAR,
    "calendar_method": "REQUEST",
}


def with_email_package(**mail: Any) -> bytes:
    """The reference: the mail built with EmailMessage and written with the SMTP policy."""
    msg = EmailMessage()
    msg["From"] = mail["mail_from"]
    msg["To"] = Address(
        display_name=" ".join(mail["recipient_name"].split()), addr_spec=mail["recipient_address"]
    )
    if mail["reply_to"]:
        msg["Reply-To"] = mail["reply_to"]
    msg["Subject"] = mail["rendered"].subject
    msg["Date"] = email.utils.format_datetime(mail["date"])
    msg["Message-ID"] = message.message_id(mail["mail_id"], mail["domain"])
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Correlation-ID"] = mail["correlation_id"]
    msg.set_content(mail["rendered"].text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(mail["rendered"].html, subtype="html", charset="utf-8", cte="quoted-printable")
    if mail["calendar"] is not None:
        params = {"method": mail["calendar_method"], "charset": "utf-8"}
        msg.add_alternative(
            mail["calendar"], maintype="text", subtype="calendar", cte="base64", params=params
        )
        filename = message.ICS_FILENAME.get(mail["language"], "termin.ics")
        msg.add_attachment(
            mail["calendar"],
            maintype="text",
            subtype="calendar",
            cte="base64",
            params=params,
            filename=filename,
        )
    msg["Content-Language"] = mail["language"]
    with io.BytesIO() as out:
        BytesGenerator(out, policy=email.policy.SMTP.clone(max_line_length=998)).flatten(msg)
        return out.getvalue()


def as_read(raw: bytes) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """What a reader sees: the decoded headers, and every part's type, parameters (without the boundary),
    disposition, file name and decoded content."""
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    names = (
        "From",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "X-Auto-Response-Suppress",
        "X-Correlation-ID",
    )
    headers: dict[str, Any] = {name: parsed.get(name) and str(parsed[name]) for name in names}
    headers["To"] = [(a.display_name, a.addr_spec) for a in parsed["To"].addresses]
    headers["Content-Language"] = str(parsed["Content-Language"])
    parts: list[tuple[Any, ...]] = []
    for part in parsed.walk():
        params = {k: v for k, v in part.get_params() or [] if k != "boundary"}
        content = None
        if not part.is_multipart():
            content = part.get_payload(decode=True)
            if part.get_content_type() in ("text/plain", "text/html"):
                content = part.get_content()
        parts.append(
            (part.get_content_type(), params, part.get_content_disposition(), part.get_filename(), content)
        )
    return headers, parts


CASES = {
    "a confirmation": {},
    "a mail without invitation": {"calendar": None},
    "a cancellation in English": {"calendar_method": "CANCEL", "language": "en"},
    "a reply-to with umlauts": {"reply_to": "Team Größe <team@jobcenter-bremen.example>"},
    "a sender with a dash": {
        "mail_from": "Jobcenter Bremen \N{EN DASH} Termine <termine@jobcenter-bremen.example>"
    },
    "a bare sender address": {"mail_from": "termine@jobcenter-bremen.example"},
    "markup and right-to-left scripts in the name": {
        "recipient_name": '<script>alert("x")</script> Jürgen Größe-مريم-שרה'
    },
    "quotes, commas and a backslash in the name": {"recipient_name": 'Max "Mäxchen" O\'Brien, Jr. \\ (II)'},
    "white space in the name": {"recipient_name": "  Anna \t Maria\n Schmidt  "},
    "no name": {"recipient_name": ""},
    "a long name": {"recipient_name": "Ünal " + "Äbcdefghij " * 18},
    "a long subject": {"rendered": RenderedMail(subject="Ärger über Größe " * 11, text=TEXT, html=HTML)},
    "text with CR, CRLF, dots, trailing blanks, tabs and long lines": {
        "rendered": RenderedMail(
            subject="Terminbestätigung",
            text="a\r\nb\rc\n\n.\nFrom me\ntrailing   \n\ttab\t\n" + "x" * 300 + "\n" + "ä" * 200,
            html="<p>=3D == ===============</p>" + "ß" * 500,
        )
    },
    "empty bodies": {"rendered": RenderedMail(subject="Termin", text="", html="")},
    "a non-ASCII correlation id": {"correlation_id": "cid-ü"},
}


@pytest.mark.parametrize("changes", CASES.values(), ids=CASES.keys())
def test_the_composed_mail_reads_like_the_one_the_email_package_builds(changes: dict[str, Any]) -> None:
    mail = {**MAIL, "mail_id": uuid.uuid4(), **changes}
    raw = message.compose(**mail)

    assert as_read(raw) == as_read(with_email_package(**mail))
    assert all(byte < 128 for byte in raw)
    lines = raw.split(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 998
    for part in BytesParser(policy=email.policy.default).parsebytes(raw).walk():
        if not part.is_multipart():  # quoted-printable and base64 lines of at most 76 characters
            assert max(len(line) for line in str(part.get_payload()).splitlines()) <= 76


def test_a_line_break_in_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        message.compose(
            **{**MAIL, "mail_id": uuid.uuid4(), "recipient_address": "a@example.org\r\nBcc: x@y.z"}
        )


def test_an_encoded_word_typed_as_a_name_stays_text() -> None:
    mail = {**MAIL, "mail_id": uuid.uuid4(), "recipient_name": "=?utf-8?q?Chef?= Bremen"}
    headers, _ = as_read(message.compose(**mail))
    assert headers["To"] == [("=?utf-8?q?Chef?= Bremen", "erika@example.org")]
