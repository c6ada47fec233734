"""The local mail sink keeps what it receives, shows it safely, and misbehaves on request."""

from __future__ import annotations

import asyncio
import email.policy
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.parser import BytesParser

import aiohttp
import aiosmtplib
import pytest

from tools.mailsink import MailSink

PDF_BYTES = b"%PDF-1.4\n" + bytes(range(256)) * 4
UTF8_SUBJECT = "Ihr Termin im Jobcenter Bremen-Mitte: Bestätigung für Jürgen Größe"


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    # Port 0: the operating system picks free ports, so tests never collide with a running `make run`.
    async with MailSink(smtp_port=0, http_port=0) as running:
        yield running


@pytest.fixture
async def http(sink: MailSink) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sink.http_url) as session:
        yield session


def confirmation(to: str = "kunde@example.org", subject: str = UTF8_SUBJECT) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Jobcenter Bremen <termine@jobcenter-bremen.example>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Mon, 02 Mar 2026 09:30:00 +0100"
    message.set_content("Guten Tag,\nIhr Termin ist am 3. März um 10:00 Uhr.\n")
    message.add_alternative("<p>Guten Tag,</p><p>Ihr Termin ist am <b>3. März</b>.</p>", subtype="html")
    message.add_attachment(
        PDF_BYTES, maintype="application", subtype="pdf", filename="Unterlagen für Termin.pdf"
    )
    return message


async def send(sink: MailSink, message: EmailMessage, recipients: list[str] | None = None) -> None:
    await aiosmtplib.send(message, hostname=sink.smtp_host, port=sink.smtp_port, recipients=recipients)


async def test_a_sent_mail_appears_in_the_json_api_with_its_decoded_subject_and_raw_source(
    sink: MailSink, http: aiohttp.ClientSession
) -> None:
    await send(sink, confirmation())

    async with http.get("/api/messages") as response:
        assert response.status == 200
        body = await response.json()

    assert len(body) == 1
    [item] = body
    assert item["subject"] == UTF8_SUBJECT
    assert item["to"] == ["kunde@example.org"]
    assert item["from"] == "Jobcenter Bremen <termine@jobcenter-bremen.example>"
    assert item["date"] == "2026-03-02T09:30:00+01:00"
    assert isinstance(item["id"], int)
    # The raw source is the whole RFC 5322 message as sent: headers, MIME parts, the attachment.
    raw = BytesParser(policy=email.policy.default).parsebytes(item["raw"].encode())
    assert raw["Subject"] == UTF8_SUBJECT
    assert raw.get_content_type() == "multipart/mixed"
    assert [part.get_filename() for part in raw.iter_attachments()] == ["Unterlagen für Termin.pdf"]
    assert sink.messages[0].subject == UTF8_SUBJECT


async def test_the_json_api_lists_newest_first_and_filters_by_recipient(
    sink: MailSink, http: aiohttp.ClientSession
) -> None:
    await send(sink, confirmation(to="erste@example.org", subject="eins"))
    await send(sink, confirmation(to="zweite@example.org", subject="zwei"))

    async with http.get("/api/messages") as response:
        assert [m["subject"] for m in await response.json()] == ["zwei", "eins"]
    async with http.get("/api/messages", params={"to": "ERSTE@example.org"}) as response:
        assert [m["subject"] for m in await response.json()] == ["eins"]


async def test_the_inbox_lists_messages_newest_first_and_escapes_everything(
    sink: MailSink, http: aiohttp.ClientSession
) -> None:
    await send(sink, confirmation(subject="Erste Nachricht"))
    await send(sink, confirmation(subject='<script>alert("x")</script> & Größe'))

    async with http.get("/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        page = await response.text()

    assert '<html lang="de">' in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Größe" in page
    assert page.index("Größe") < page.index("Erste Nachricht")


async def test_the_message_page_shows_the_text_the_html_as_source_and_the_attachments(
    sink: MailSink, http: aiohttp.ClientSession
) -> None:
    await send(sink, confirmation())
    [stored] = sink.messages

    async with http.get(f"/messages/{stored.id}") as response:
        assert response.status == 200
        page = await response.text()

    assert "Ihr Termin ist am 3. März um 10:00 Uhr." in page
    assert "&lt;b&gt;3. März&lt;/b&gt;" in page  # the HTML part as escaped source, never rendered
    assert "<b>" not in page
    assert "Unterlagen für Termin.pdf" in page
    assert "application/pdf" in page
    assert f"{len(PDF_BYTES)} Byte" in page


async def test_an_attachment_downloads_with_its_bytes_type_and_name(
    sink: MailSink, http: aiohttp.ClientSession
) -> None:
    await send(sink, confirmation())
    [stored] = sink.messages
    attachment_number = next(
        n for n, part in enumerate(stored.leaf_parts()) if part.get_filename() == "Unterlagen für Termin.pdf"
    )

    async with http.get(f"/messages/{stored.id}/parts/{attachment_number}") as response:
        assert response.status == 200
        assert response.content_type == "application/pdf"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "Unterlagen%20f%C3%BCr%20Termin.pdf" in response.headers["Content-Disposition"]
        assert await response.read() == PDF_BYTES


async def test_unknown_messages_and_parts_are_404(sink: MailSink, http: aiohttp.ClientSession) -> None:
    await send(sink, confirmation())
    [stored] = sink.messages

    async with http.get("/messages/999999") as response:
        assert response.status == 404
    async with http.get(f"/messages/{stored.id}/parts/99") as response:
        assert response.status == 404


async def test_delete_empties_the_inbox(sink: MailSink, http: aiohttp.ClientSession) -> None:
    await send(sink, confirmation())

    async with http.delete("/api/messages") as response:
        assert response.status == 204
    async with http.get("/api/messages") as response:
        assert await response.json() == []
    assert sink.messages == []


async def test_healthz_answers_200(http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz") as response:
        assert response.status == 200


async def test_a_rejected_recipient_gets_a_permanent_550_and_the_others_still_get_the_mail(
    sink: MailSink,
) -> None:
    sink.reject_permanent = {"Bounce@Example.org"}

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(sink, confirmation(to="bounce@example.org"))
    assert [r.code for r in refused.value.recipients] == [550]

    errors, _ = await aiosmtplib.send(
        confirmation(),
        hostname=sink.smtp_host,
        port=sink.smtp_port,
        recipients=["bounce@example.org", "kunde@example.org"],
    )
    assert errors["bounce@example.org"].code == 550
    assert [m.envelope_to for m in sink.messages] == [("kunde@example.org",)]


async def test_a_temporary_failure_answers_451_until_it_is_switched_off(sink: MailSink) -> None:
    sink.fail_temporarily = True
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(sink, confirmation())
    assert [r.code for r in refused.value.recipients] == [451]
    assert sink.messages == []

    sink.fail_temporarily = False
    await send(sink, confirmation())
    assert len(sink.messages) == 1


async def test_a_counted_temporary_failure_passes_after_that_many_attempts(sink: MailSink) -> None:
    sink.temporary_failures = 2
    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await send(sink, confirmation())

    await send(sink, confirmation())
    assert len(sink.messages) == 1


async def test_the_sink_keeps_only_the_newest_messages_when_full() -> None:
    async with MailSink(smtp_port=0, http_port=0, max_messages=2) as small:
        for subject in ("eins", "zwei", "drei"):
            await send(small, confirmation(subject=subject))
        assert [m.subject for m in small.messages] == ["zwei", "drei"]


async def test_wait_for_messages_returns_when_the_mail_arrives(sink: MailSink) -> None:
    waiting = asyncio.create_task(sink.wait_for_messages(1, to="kunde@example.org"))
    await asyncio.sleep(0)
    assert not waiting.done()

    await send(sink, confirmation())
    async with asyncio.timeout(5):
        [arrived] = await waiting
    assert arrived.subject == UTF8_SUBJECT


async def test_stopping_the_sink_ends_the_open_smtp_conversations_as_a_stopped_server_would() -> None:
    async with MailSink(smtp_port=0, http_port=0) as stopping:
        client = aiosmtplib.SMTP(hostname=stopping.smtp_host, port=stopping.smtp_port)
        await client.connect()
        await client.sendmail(
            "termine@jobcenter-bremen.example", ["kunde@example.org"], b"Subject: eins\r\n\r\n.\r\n"
        )
        assert stopping.connections == 1

        await stopping.stop()
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await client.noop()
    client.close()


async def test_a_sink_with_a_login_refuses_a_wrong_password_with_535_and_mail_without_a_login_with_530(
    sink: MailSink,
) -> None:
    sink.credentials = ("otv", "richtig")
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as wrong:
        await aiosmtplib.send(
            confirmation(), hostname=sink.smtp_host, port=sink.smtp_port, username="otv", password="falsch"
        )
    assert wrong.value.code == 535
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as anonymous:
        await send(sink, confirmation())
    assert anonymous.value.code == 530

    await aiosmtplib.send(
        confirmation(), hostname=sink.smtp_host, port=sink.smtp_port, username="otv", password="richtig"
    )
    assert len(sink.messages) == 1


async def test_a_sink_refusing_the_sender_or_relaying_answers_553_and_554_5_7_1(sink: MailSink) -> None:
    sink.refuse_sender = True
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as sender:
        await send(sink, confirmation())
    assert sender.value.code == 553 and sender.value.message.startswith("5.7.1")

    sink.refuse_sender, sink.refuse_relay = False, True
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as relay:
        await send(sink, confirmation())
    [refused] = relay.value.recipients
    assert refused.code == 554 and "5.7.1" in refused.message and "Relay access denied" in refused.message
    assert sink.messages == []
