"""The SMTP transport keeps its connections open between mails: refusals on a reused connection are
classified as on a fresh one and cost no later mail, a connection the server dropped is replaced
without losing the mail, and a burst of confirmations goes out over a few connections."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.notifier import message
from services.notifier.domain import Outcome
from services.notifier.sender import SmtpTransport
from services.notifier.texts import RenderedMail
from tests.notifier.conftest import Notifier, Publisher, an_appointment, booked, notifier_settings
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]
SENDER = "termine@jobcenter-bremen.example"


def wire(to: str) -> bytes:
    return message.compose(
        mail_id=uuid.uuid4(),
        rendered=RenderedMail(subject="Terminbestätigung", text="Guten Tag,\n", html="<p>Guten Tag,</p>\n"),
        mail_from=f"Jobcenter Bremen <{SENDER}>",
        reply_to=None,
        recipient_name="Erika Mustermann",
        recipient_address=to,
        language="de",
        correlation_id="cid-smtp",
        domain="otv.jobcenter-bremen",
        date=datetime.now(UTC),
    )


@pytest.fixture
async def transport(sink: MailSink) -> AsyncIterator[Callable[..., SmtpTransport]]:
    made: list[SmtpTransport] = []

    def make(port: int | None = None, **overrides: Any) -> SmtpTransport:
        made.append(SmtpTransport(notifier_settings(port or sink.smtp_port, **overrides)))
        return made[-1]

    yield make
    for each in made:
        await each.close()


async def send(transport: SmtpTransport, to: str) -> tuple[Outcome, str | None]:
    return await transport(wire(to), SENDER, to)


async def test_mails_one_after_another_go_out_over_one_connection(
    sink: MailSink, transport: Callable[..., SmtpTransport]
) -> None:
    smtp = transport()
    for n in range(5):
        assert await send(smtp, f"kunde-{n}@example.org") == (Outcome.SENT, None)
    assert len(sink.messages) == 5
    assert sink.connections == 1


async def test_a_550_on_a_reused_connection_is_a_rejection_and_the_next_mail_still_goes_out(
    sink: MailSink, transport: Callable[..., SmtpTransport]
) -> None:
    smtp = transport()
    assert await send(smtp, "erste@example.org") == (Outcome.SENT, None)
    sink.reject_permanent = {"bounce@example.org"}

    assert await send(smtp, "bounce@example.org") == (Outcome.REJECTED, "smtp_550_rcpt")
    assert await send(smtp, "zweite@example.org") == (Outcome.SENT, None)
    assert [m.envelope_to for m in sink.messages] == [("erste@example.org",), ("zweite@example.org",)]
    assert sink.connections == 2  # the connection of the refusal was not used again


async def test_a_451_on_a_reused_connection_is_temporary(
    sink: MailSink, transport: Callable[..., SmtpTransport]
) -> None:
    smtp = transport()
    assert await send(smtp, "erste@example.org") == (Outcome.SENT, None)
    sink.temporary_failures = 1

    assert await send(smtp, "zweite@example.org") == (Outcome.TEMPORARY, "smtp_451_rcpt")
    assert await send(smtp, "zweite@example.org") == (Outcome.SENT, None)


async def test_a_connection_the_server_dropped_is_replaced_and_a_server_that_is_gone_is_connect_failed(
    sink: MailSink, transport: Callable[..., SmtpTransport]
) -> None:
    smtp = transport()
    assert await send(smtp, "erste@example.org") == (Outcome.SENT, None)
    port = sink.smtp_port
    await sink.stop()  # ends the open connection too

    async with MailSink(smtp_port=port, http_port=0) as restarted:
        assert await send(smtp, "zweite@example.org") == (Outcome.SENT, None)
        assert [m.envelope_to for m in restarted.messages] == [("zweite@example.org",)]
    assert await send(smtp, "dritte@example.org") == (Outcome.TEMPORARY, "connect_failed")


async def test_a_connection_is_renewed_after_its_number_of_mails_and_after_waiting_too_long(
    sink: MailSink, transport: Callable[..., SmtpTransport]
) -> None:
    smtp = transport(smtp_mails_per_connection=2)
    for n in range(5):
        assert await send(smtp, f"kunde-{n}@example.org") == (Outcome.SENT, None)
    assert sink.connections == 3

    waiting = transport(smtp_idle_seconds=0.2)
    await send(waiting, "erste@example.org")
    await asyncio.sleep(0.3)
    await send(waiting, "zweite@example.org")
    assert sink.connections == 5
    assert len(sink.messages) == 7


async def test_closing_the_transport_ends_its_connections(
    sink: MailSink, transport: Callable[..., SmtpTransport]
) -> None:
    smtp = transport()
    await asyncio.gather(*(send(smtp, f"kunde-{n}@example.org") for n in range(3)))
    assert smtp.idle == 3

    await smtp.close()
    assert smtp.idle == 0
    assert await send(smtp, "danach@example.org") == (Outcome.SENT, None)
    assert smtp.idle == 0  # after closing, a connection is not kept


async def test_a_burst_of_confirmations_goes_out_over_at_most_a_batch_of_connections_per_replica(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    notifier = await start_notifier(mail_batch_size=5)
    snaps = [an_appointment() for _ in range(40)]
    await asyncio.gather(*(publish(booked(s)) for s in snaps))
    async with asyncio.timeout(20):
        await sink.wait_for_messages(40)
    assert sorted(rcpt for m in sink.messages for rcpt in m.envelope_to) == sorted(
        s.customer.email for s in snaps
    )
    assert sink.connections <= notifier.settings.mail_batch_size * (1 + len(notifier.peers))


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A relay's certificate that the notifier cannot verify (self-signed)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    request = ("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=otv-mailsink")
    subprocess.run(
        ["/usr/bin/openssl", *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_starttls_false_sends_in_plain_where_the_relay_offers_starttls_and_unset_upgrades(
    self_signed: ssl.SSLContext, transport: Callable[..., SmtpTransport]
) -> None:
    """`OTV_SMTP_STARTTLS=false` is for a relay on the same host or behind its own tunnel: the notifier
    must not upgrade even where the relay offers it (it once did, treating false as unset). Unset upgrades
    where offered: here the relay's certificate is not trusted, so the mail waits (temporary)."""
    async with MailSink(smtp_port=0, http_port=0, tls_context=self_signed) as relay:
        never = transport(relay.smtp_port, smtp_starttls=False)
        assert (await send(never, "klar@example.org"))[0] is Outcome.SENT
        assert [m.envelope_to for m in relay.messages] == [("klar@example.org",)]
        where_offered = transport(relay.smtp_port)
        assert (await send(where_offered, "tls@example.org"))[0] is Outcome.TEMPORARY
        assert len(relay.messages) == 1
