"""The local mail sink: an SMTP server that keeps every message in memory, and a web inbox to read them.

Run it with ``python -m tools.mailsink`` (``make run`` does, through the Procfile). The services send their
mail to it on OTV_SMTP_HOST:OTV_SMTP_PORT (default 127.0.0.1:1025); a developer reads it at
http://127.0.0.1:8025 and tests read it as JSON at ``/api/messages`` or in-process through ``MailSink``.

Nothing leaves the machine and nothing is written to disk: the messages hold personal data of test
customers, and a restart forgets them.

Tests can make the sink misbehave like a real mail server:
``reject_permanent`` (addresses answered with 550 at RCPT), ``fail_temporarily`` (every RCPT answered with
451) and ``temporary_failures`` (the next N RCPTs answered with 451, then normal service). Or like a relay
that refuses the sender itself, as after a configuration mistake: ``credentials`` (a login and password the
sink then requires: 535 for any other login, 530 for mail without one; offered without TLS, on loopback
only), ``refuse_sender`` (MAIL FROM answered 553 5.7.1) and ``refuse_relay`` (every RCPT answered
554 5.7.1 Relay access denied, as Postfix answers a client it does not relay for). ``connections`` counts
the SMTP connections accepted; stopping the sink ends the open ones, as a stopped server would.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import html
import itertools
import json
import os
import signal
import ssl
import urllib.parse
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property
from typing import Any, Final
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

log = structlog.get_logger(__name__)

BERLIN: Final = ZoneInfo("Europe/Berlin")
DEFAULT_MAX_MESSAGES: Final = 10_000
# The inbox shows untrusted mail content: nothing in it may run, load or frame anything.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class StoredMessage:
    """One message as the sink received it: the SMTP envelope and the raw RFC 5322 source.

    Parsed when first read, not when received: parsing took most of the sink's CPU per mail, on the same
    cores as the services under test (bench/README.md), and most messages are never opened.
    """

    id: int
    received_at: datetime
    envelope_from: str
    envelope_to: tuple[str, ...]
    raw: bytes

    @cached_property
    def parsed(self) -> EmailMessage:
        """The whole message as the `email` package reads it (policy.default)."""
        return _parse(self.raw, headers_only=False)

    @cached_property
    def _headers(self) -> EmailMessage:
        # The list and the JSON API need only these: the parts are not decoded for them.
        return self.parsed if "parsed" in self.__dict__ else _parse(self.raw, headers_only=True)

    @property
    def subject(self) -> str:
        return str(self._headers.get("Subject", ""))

    @property
    def header_from(self) -> str:
        return str(self._headers.get("From", self.envelope_from))

    @property
    def date(self) -> datetime | None:
        value = self._headers.get("Date")
        if value is None:
            return None
        try:
            return email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None

    @property
    def raw_text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    def leaf_parts(self) -> list[EmailMessage]:
        """The non-multipart parts in document order; their index is the part number of the web inbox."""
        return [part for part in self.parsed.walk() if not part.is_multipart()]

    def is_addressed_to(self, address: str) -> bool:
        wanted = address.strip().lower()
        return any(rcpt.lower() == wanted for rcpt in self.envelope_to)

    def as_json(self) -> dict[str, Any]:
        date = self.date
        return {
            "id": self.id,
            "from": self.header_from,
            # The envelope recipients: the addresses the message was actually delivered to.
            "to": list(self.envelope_to),
            "subject": self.subject,
            "date": date.isoformat() if date else None,
            "received_at": self.received_at.isoformat(),
            "raw": self.raw_text,
        }


class _Handler:
    """aiosmtpd hooks; aiosmtpd finds them by name."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self._sink.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self._sink.refuse_sender:
            return f"553 5.7.1 <{address}>: Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        sink = self._sink
        if sink.refuse_relay:
            return f"554 5.7.1 <{address}>: Relay access denied"
        if sink.fail_temporarily or sink.temporary_failures > 0:
            sink.temporary_failures = max(0, sink.temporary_failures - 1)
            return "451 4.3.0 Temporary failure (simulated by the OTV mail sink)"
        if address.strip().lower() in {a.strip().lower() for a in sink.reject_permanent}:
            return "550 5.1.1 Mailbox unavailable (simulated by the OTV mail sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = await self._sink._store(envelope.mail_from or "", envelope.rcpt_tos, raw)
        return f"250 Message accepted for delivery as {message.id}"


class MailSink:
    """SMTP server and web inbox on the running event loop.

    Pass port 0 to get free ports from the operating system; after ``start()`` the attributes
    ``smtp_port`` and ``http_port`` hold the ports actually bound.
    """

    def __init__(
        self,
        *,
        smtp_host: str = "127.0.0.1",
        smtp_port: int = 1025,
        http_host: str = "127.0.0.1",
        http_port: int = 8025,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.http_host = http_host
        self.http_port = http_port
        # With a context, the sink offers STARTTLS (as most relays do); the tests of the notifier's setting.
        self.tls_context = tls_context
        self.reject_permanent: set[str] = set()
        self.fail_temporarily = False
        self.temporary_failures = 0
        # A relay's refusals of the sender itself (see the module's description); each connection opened
        # after a change sees it.
        self.credentials: tuple[str, str] | None = None
        self.refuse_sender = False
        self.refuse_relay = False
        self.connections = 0
        self._messages: deque[StoredMessage] = deque(maxlen=max_messages)
        self._ids = itertools.count(1)
        self._arrived = asyncio.Condition()
        self._smtp_server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._runner: web.AppRunner | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def session() -> SMTP:
            # A fixed hostname: the default, socket.getfqdn(), may wait on DNS in a closed network.
            smtp = SMTP(
                handler,
                hostname="otv-mailsink",
                enable_SMTPUTF8=True,
                tls_context=self.tls_context,
                loop=loop,
                # AUTH only where a login is required (handle_MAIL answers 530 without one), and then
                # without TLS: the sink listens on loopback; a real relay offers AUTH after STARTTLS.
                authenticator=self._authenticate if self.credentials is not None else None,
                auth_require_tls=self.credentials is None,
            )
            self._sessions.add(smtp)
            self.connections += 1
            return smtp

        self._smtp_server = await loop.create_server(
            session,
            host=self.smtp_host,
            port=self.smtp_port,
        )
        self.smtp_port = self._smtp_server.sockets[0].getsockname()[1]
        self._runner = web.AppRunner(self.create_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.http_host, self.http_port).start()
        self.http_port = self._runner.addresses[0][1]
        log.info("mailsink_started", smtp_port=self.smtp_port, http_port=self.http_port)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        given = (
            (auth_data.login.decode(), auth_data.password.decode())
            if isinstance(auth_data, LoginPassword)
            else None
        )
        # Not `handled`: aiosmtpd then answers a refusal with 535 5.7.8 itself.
        return AuthResult(success=self.credentials is not None and given == self.credentials, handled=False)

    async def stop(self) -> None:
        if self._smtp_server is not None:
            self._smtp_server.close()
            # As a stopped mail server: open conversations end too (senders keep connections open).
            for smtp in list(self._sessions):
                if smtp.transport is not None:
                    smtp.transport.close()
            await self._smtp_server.wait_closed()
            self._smtp_server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> MailSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def http_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    # -- the store ------------------------------------------------------------------------------------
    @property
    def messages(self) -> list[StoredMessage]:
        """Every kept message, oldest first."""
        return list(self._messages)

    def clear(self) -> None:
        self._messages.clear()

    def find(self, message_id: int) -> StoredMessage | None:
        return next((m for m in self._messages if m.id == message_id), None)

    async def wait_for_messages(self, count: int = 1, *, to: str | None = None) -> list[StoredMessage]:
        """Wait until at least ``count`` messages (to ``to``, if given) are kept; return them, oldest first.

        It waits for ever: bound it with ``async with asyncio.timeout(...)``.
        """

        def matching() -> list[StoredMessage]:
            return [m for m in self._messages if to is None or m.is_addressed_to(to)]

        async with self._arrived:
            await self._arrived.wait_for(lambda: len(matching()) >= count)
        return matching()

    async def _store(self, envelope_from: str, envelope_to: Iterable[str], raw: bytes) -> StoredMessage:
        message = StoredMessage(
            id=next(self._ids),
            received_at=datetime.now(UTC),
            envelope_from=envelope_from,
            envelope_to=tuple(envelope_to),
            raw=raw,
        )
        self._messages.append(message)
        # Only the id and counts: the addresses and content are personal data.
        log.info("mail_received", message_id=message.id, recipients=len(message.envelope_to), size=len(raw))
        async with self._arrived:
            self._arrived.notify_all()
        return message

    # -- the web inbox --------------------------------------------------------------------------------
    def create_app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers])
        app.router.add_get("/", self._inbox)
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/messages/{id:\\d+}", self._message_page)
        app.router.add_get("/messages/{id:\\d+}/parts/{n:\\d+}", self._part_download)
        app.router.add_get("/api/messages", self._api_list)
        app.router.add_delete("/api/messages", self._api_clear)
        return app

    def _get(self, request: web.Request) -> StoredMessage:
        message = self.find(int(request.match_info["id"]))
        if message is None:
            raise web.HTTPNotFound(text="Nachricht nicht gefunden (gelöscht oder nie empfangen).")
        return message

    async def _inbox(self, request: web.Request) -> web.Response:
        rows = [
            "<tr>"
            f'<td><a href="/messages/{m.id}">{_e(m.subject) or "(ohne Betreff)"}</a></td>'
            f"<td>{_e(', '.join(m.envelope_to))}</td>"
            f"<td>{_e(m.header_from)}</td>"
            f'<td><time datetime="{_e(m.received_at.isoformat())}">{_e(_local(m.received_at))}</time></td>'
            "</tr>"
            for m in reversed(self._messages)
        ]
        if rows:
            body = (
                "<table><caption>Empfangene Nachrichten, neueste zuerst</caption><thead><tr>"
                '<th scope="col">Betreff</th><th scope="col">An</th><th scope="col">Von</th>'
                '<th scope="col">Empfangen</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"
            )
        else:
            body = "<p>Noch keine Nachrichten.</p>"
        count = len(self._messages)
        return _page("Posteingang", f"<h1>Posteingang</h1><p>{count} Nachricht(en)</p>{body}")

    async def _message_page(self, request: web.Request) -> web.Response:
        m = self._get(request)
        headers = "".join(
            f'<tr><th scope="row">{_e(name)}</th><td>{_e(str(value))}</td></tr>'
            for name, value in m.parsed.items()
        )
        parts: list[str] = []
        attachments: list[str] = []
        for n, part in enumerate(m.leaf_parts()):
            ctype = part.get_content_type()
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else 0
            link = f"/messages/{m.id}/parts/{n}"
            if part.get_content_disposition() != "attachment" and ctype in ("text/plain", "text/html"):
                label = "Textteil" if ctype == "text/plain" else "HTML-Teil (als Quelltext)"
                parts.append(
                    f"<section><h2>{label} ({_e(ctype)})</h2><pre>{_e(_text_of(part))}</pre>"
                    f'<p><a href="{link}">herunterladen</a></p></section>'
                )
            else:
                name = part.get_filename() or f"teil-{n}"
                attachments.append(f'<li><a href="{link}">{_e(name)}</a>, {_e(ctype)}, {size} Byte</li>')
        attachment_list = (
            f"<section><h2>Anhänge</h2><ul>{''.join(attachments)}</ul></section>" if attachments else ""
        )
        content = (
            f'<p><a href="/">Zurück zum Posteingang</a></p><h1>{_e(m.subject) or "(ohne Betreff)"}</h1>'
            f"<p>Umschlag: von {_e(m.envelope_from)} an {_e(', '.join(m.envelope_to))}, "
            f"empfangen {_e(_local(m.received_at))}</p>"
            f"<section><h2>Kopfzeilen</h2><table><tbody>{headers}</tbody></table></section>"
            + "".join(parts)
            + attachment_list
            + f"<section><h2>Quelltext</h2><pre>{_e(m.raw_text)}</pre></section>"
        )
        return _page(m.subject or "Nachricht", content)

    async def _part_download(self, request: web.Request) -> web.Response:
        m = self._get(request)
        parts = m.leaf_parts()
        n = int(request.match_info["n"])
        if n >= len(parts):
            raise web.HTTPNotFound(text="Teil nicht gefunden.")
        part = parts[n]
        payload = part.get_payload(decode=True)
        name = part.get_filename() or f"teil-{n}"
        return web.Response(
            body=payload if isinstance(payload, bytes) else b"",
            content_type=part.get_content_type(),
            # Always a download, never rendered: the content is untrusted.
            headers={"Content-Disposition": _content_disposition(name)},
        )

    async def _api_list(self, request: web.Request) -> web.Response:
        to = request.query.get("to")
        found = [m for m in reversed(self._messages) if to is None or m.is_addressed_to(to)]
        return web.json_response([m.as_json() for m in found], dumps=_dumps)

    async def _api_clear(self, request: web.Request) -> web.Response:
        self.clear()
        return web.Response(status=204)


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _local(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%d.%m.%Y %H:%M:%S")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _parse(raw: bytes, *, headers_only: bool) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw, headersonly=headers_only)
    if not isinstance(parsed, EmailMessage):  # policy.default always builds one; this narrows the type
        raise TypeError(f"unexpected message class {type(parsed).__name__}")
    return parsed


def _text_of(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeDecodeError):  # an unknown or wrong charset: show what we can
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""


def _content_disposition(filename: str) -> str:
    # RFC 6266 with an RFC 5987 UTF-8 variant, so that umlauts in names survive.
    ascii_name = filename.encode("ascii", errors="replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"


def _page(title: str, content: str) -> web.Response:
    document = (
        '<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} - OTV Mail-Sink</title>"
        "<style>body{font-family:sans-serif;margin:1rem;max-width:70rem}"
        "table{border-collapse:collapse}th,td{border:1px solid #767676;padding:.25rem .5rem;"
        "text-align:left;vertical-align:top}pre{white-space:pre-wrap;overflow-wrap:anywhere;"
        "background:#f4f4f4;padding:.5rem}a{color:#0645ad}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )
    return web.Response(text=document, content_type="text/html", charset="utf-8")


async def main() -> None:
    sink = MailSink(
        smtp_host=os.environ.get("OTV_SMTP_HOST", "127.0.0.1"),
        smtp_port=int(os.environ.get("OTV_SMTP_PORT", "1025")),
        http_host=os.environ.get("OTV_MAILSINK_HTTP_HOST", "127.0.0.1"),
        http_port=int(os.environ.get("OTV_MAILSINK_HTTP_PORT", "8025")),
        max_messages=int(os.environ.get("OTV_MAILSINK_MAX_MESSAGES", str(DEFAULT_MAX_MESSAGES))),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await sink.start()
    print(f"mail sink: SMTP {sink.smtp_host}:{sink.smtp_port}, inbox {sink.http_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await sink.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
