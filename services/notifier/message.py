"""Composing the MIME message of a mail: plain text and HTML alternatives in UTF-8, the calendar
invitation as a `text/calendar; method=...` alternative and as an `.ics` attachment (R40), a stable
Message-ID and the correlation id (R51).

The message is written directly in its wire form (CRLF line ends, 7-bit: RFC 2047 encoded words in
headers, quoted-printable and base64 bodies) from a fixed MIME structure. Python's `email` package built
the same structure through its header registry and generator at about 3.5 ms of CPU per mail, the largest
cost of a mail in the Monday rush (bench/README.md, run d1a77ccc); this costs a tenth of that.
tests/notifier/test_notifier_message.py reads both back with the `email` package and compares them.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import uuid
from datetime import datetime
from email.charset import Charset
from functools import lru_cache

from services.notifier.texts import RenderedMail

ICS_FILENAME = {"de": "termin.ics", "de-x-ls": "termin.ics", "en": "appointment.ics"}

_CRLF = b"\r\n"
_UTF8 = Charset("utf-8")
# RFC 2047: an encoded word has at most 75 characters; 45 bytes are 60 in base64, which UTF-8 chooses
# when it is the shorter of the two encodings.
_WORD_BYTES = 45
# A display name is one encoded word, as the `email` package wrote it (its reader puts a space between
# two encoded words of a name); only a word too long for a line of 998 is split (not a real name's).
_LONGEST_NAME_WORD = 900
_NAME_CHUNK = 150
# RFC 5322 specials: a plain display name that contains one is quoted.
_SPECIALS = frozenset('()<>[]:;@\\,."')
_METHODS = frozenset({"REQUEST", "CANCEL"})


def message_id(mail_id: uuid.UUID, domain: str) -> str:
    """Derived from the mail's id: a retry or a repeat after a crash carries the same id, so receiving
    systems can recognise it."""
    return f"<{mail_id}@{domain}>"


def sender_parts(mail_from: str) -> tuple[str, str]:
    name, address = email.utils.parseaddr(mail_from)
    return name, address


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
) -> bytes:
    """The message as sent: CRLF line ends, 7-bit (non-ASCII headers as RFC 2047 encoded words)."""
    # Boundaries with "=_" never occur in quoted-printable or base64 text, so no body can end a part.
    alternative = f"=_otv_alt_{mail_id.hex}"
    headers = [
        _header("From", _configured_mailbox(mail_from)),
        # Names are typed by customers: whitespace is collapsed (no header can be broken into two).
        _header("To", _mailbox(" ".join(recipient_name.split()), recipient_address)),
    ]
    if reply_to:
        headers.append(_header("Reply-To", _configured_mailbox(reply_to)))
    headers += [
        _header("Subject", _unstructured(rendered.subject)),
        _header("Date", email.utils.format_datetime(date)),
        _header("Message-ID", message_id(mail_id, domain)),
        # RFC 3834: no out-of-office replies to an automatic mail.
        b"Auto-Submitted: auto-generated",
        # Exchange and Outlook ignore RFC 3834: this asks them for no automatic replies either.
        b"X-Auto-Response-Suppress: All",
        _header("X-Correlation-ID", _unstructured(correlation_id)),
        b"MIME-Version: 1.0",
    ]
    parts = [_text_part("plain", rendered.text), _text_part("html", rendered.html)]
    if calendar is None:
        headers += [_multipart_header("alternative", alternative), _content_language(language)]
        return _part(headers, _multipart_body(alternative, parts))

    if calendar_method not in _METHODS:
        raise ValueError(f"unknown calendar method {calendar_method!r}")
    mixed = f"=_otv_mixed_{mail_id.hex}"
    # As bytes: iCalendar lines end in CRLF, which a text part would turn into bare newlines.
    ics = _base64_lines(calendar)
    calendar_headers = [
        f'Content-Type: text/calendar; method="{calendar_method}"; charset="utf-8"'.encode(),
        b"Content-Transfer-Encoding: base64",
    ]
    parts.append(_part(calendar_headers, ics))
    # The same invitation as a file, for mail programs that do not read the alternative part.
    filename = ICS_FILENAME.get(language, "termin.ics")
    disposition = f'Content-Disposition: attachment; filename="{filename}"'.encode()
    attachment = _part([*calendar_headers, disposition], ics)
    inner = _part([_multipart_header("alternative", alternative)], _multipart_body(alternative, parts))
    headers += [_multipart_header("mixed", mixed), _content_language(language)]
    return _part(headers, _multipart_body(mixed, [inner, attachment]))


def _part(headers: list[bytes], body: bytes) -> bytes:
    return _CRLF.join(headers) + _CRLF + _CRLF + body


def _content_language(language: str) -> bytes:
    # After the Content-Type, where the `email` package put it.
    return _header("Content-Language", _unstructured(language))


def _header(name: str, value: str) -> bytes:
    # As the `email` package did: a line break other than our folding would start a header of someone
    # else's choosing (text is encoded before it gets here; this guards addresses and settings).
    unfolded = value.replace("\r\n ", "")
    if "\r" in unfolded or "\n" in unfolded:
        raise ValueError(f"the {name} header contains a line break")
    return f"{name}: {value}".encode("ascii")


def _multipart_header(subtype: str, boundary: str) -> bytes:
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"'.encode()


def _multipart_body(boundary: str, parts: list[bytes]) -> bytes:
    """Each part after its delimiter line; a part's own last line end belongs to its content."""
    delimiter = b"--" + boundary.encode()
    out = [delimiter + _CRLF + parts[0]]
    out += [_CRLF + delimiter + _CRLF + part for part in parts[1:]]
    out.append(_CRLF + delimiter + b"--" + _CRLF)
    return b"".join(out)


def _text_part(subtype: str, text: str) -> bytes:
    # Line ends normalised as the `email` package does (CR, LF and CRLF each end a line), then
    # quoted-printable with lines of at most 76 characters, trailing white space encoded.
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    encoded = binascii.b2a_qp(body, istext=True).replace(b"\n", _CRLF)
    content_type = f'Content-Type: text/{subtype}; charset="utf-8"'.encode()
    return _part([content_type, b"Content-Transfer-Encoding: quoted-printable"], encoded)


def _base64_lines(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", _CRLF)


def _unstructured(value: str) -> str:
    """Printable ASCII as it is; anything else as UTF-8 encoded words of at most 75 characters, one per
    folded line (a reader joins adjacent encoded words without the white space between them)."""
    if value.isascii() and value.isprintable() and "=?" not in value:
        return value
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in value:
        length = len(char.encode("utf-8"))
        if chunk and size + length > _WORD_BYTES:
            words.append(_UTF8.header_encode("".join(chunk)))
            chunk, size = [], 0
        chunk.append(char)
        size += length
    if chunk:
        words.append(_UTF8.header_encode("".join(chunk)))
    return "\r\n ".join(words)


def _mailbox(name: str, address: str) -> str:
    if not name:
        return address
    if not (name.isascii() and name.isprintable()) or "=?" in name:
        word = _UTF8.header_encode(name)
        if len(word) > _LONGEST_NAME_WORD:
            chunks = (name[i : i + _NAME_CHUNK] for i in range(0, len(name), _NAME_CHUNK))
            word = "\r\n ".join(_UTF8.header_encode(chunk) for chunk in chunks)
        return f"{word} <{address}>"
    if _SPECIALS.isdisjoint(name):
        return f"{name} <{address}>"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


@lru_cache(maxsize=8)
def _configured_mailbox(value: str) -> str:
    """From and Reply-To come from the settings: written the same way as every recipient."""
    name, address = email.utils.parseaddr(value)
    return _mailbox(name, address) if address else value
