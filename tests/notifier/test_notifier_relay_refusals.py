"""A relay that refuses the notifier itself, not the customer's address: a wrong or rotated password (535),
a login it requires and did not get (530), a sender address it does not allow (553 5.7.1), relaying
denied at RCPT (554 5.7.1, which Postfix answers a client without a login). These are faults of the
configuration on one side or the other: the mail waits and is retried until its deadline (and goes out
once the fault is mended), the address is never put on the suppression list, and the operator is alerted
(otv_mails_total{outcome="relay_config"}, OTVMailRelayRefusesNotifier). Only a reply about the address
itself (550 5.1.1, tests/notifier/test_notifier_delivery.py) condemns it.

The relay is the real local mail sink, told to answer as such a relay does (tools/mailsink.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from prometheus_client import REGISTRY

from tests.conftest import wait_for
from tests.notifier.conftest import Notifier, Publisher, an_appointment, booked, mail_rows, mails_to, received
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]


def relay_refusals() -> float:
    labels = {"kind": "confirmation", "outcome": "relay_config"}
    return REGISTRY.get_sample_value("otv_mails_total", labels) or 0.0


async def the_confirmation(pool: asyncpg.Pool, snap_id: uuid.UUID) -> asyncpg.Record | None:
    rows = [r for r in await mail_rows(pool, snap_id) if r["kind"] == "confirmation"]
    return rows[0] if rows else None


async def tried_twice(pool: asyncpg.Pool, snap_id: uuid.UUID) -> bool:
    row = await the_confirmation(pool, snap_id)
    return row is not None and row["attempts"] >= 2


async def nothing_failed_or_suppressed(pool: asyncpg.Pool) -> None:
    assert await pool.fetch("SELECT 1 FROM outbox WHERE type = 'mail.failed'") == []
    assert await pool.fetch("SELECT 1 FROM suppressions") == []


@pytest.mark.req("R2")
async def test_a_relay_refusing_the_notifiers_password_keeps_the_mail_and_it_goes_out_once_the_login_works(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    pool = clean_db["notifier"]
    # The mail team changed the relay's password; the notifier's Secret still has the old one.
    sink.credentials = ("otv-notifier", "neues Passwort")
    await start_notifier(smtp_username="otv-notifier", smtp_password="altes Passwort")
    before = relay_refusals()
    snap = an_appointment()
    await publish(booked(snap))

    await wait_for(lambda: tried_twice(pool, snap.id), timeout=15, what="two refused logins")
    row = await the_confirmation(pool, snap.id)
    assert row is not None
    assert row["status"] == "pending" and row["last_error"] == "smtp_535"
    assert row["recipient"] == snap.customer.email  # kept for the next try
    await nothing_failed_or_suppressed(pool)
    assert relay_refusals() >= before + 2

    # Mended (the relay takes the password the notifier has): the mail goes out, once.
    sink.credentials = ("otv-notifier", "altes Passwort")
    await mails_to(sink, snap.customer.email, wait=15)
    await wait_for(
        lambda: _status_is(pool, snap.id, "sent"), timeout=10, what="the confirmation recorded as sent"
    )
    assert len(received(sink, snap.customer.email)) == 1
    await nothing_failed_or_suppressed(pool)


async def _status_is(pool: asyncpg.Pool, snap_id: uuid.UUID, status: str) -> bool:
    row = await the_confirmation(pool, snap_id)
    return row is not None and row["status"] == status


@pytest.mark.req("R2")
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("refuse_relay", "smtp_554_rcpt"),  # relaying denied for a client without a login, per recipient
        ("refuse_sender", "smtp_553"),  # a sender address the login may not use
        ("credentials", "smtp_530"),  # a login the relay requires, not configured (OTV_SMTP_USER mistyped)
    ],
)
async def test_a_relay_refusing_the_sender_or_relaying_suppresses_no_address_and_the_mail_goes_out_later(
    start_notifier: StartNotifier,
    publish: Publisher,
    sink: MailSink,
    clean_db: dict[str, asyncpg.Pool],
    fault: str,
    error: str,
) -> None:
    pool = clean_db["notifier"]
    await start_notifier()  # without a login
    setattr(sink, fault, ("otv-notifier", "geheim") if fault == "credentials" else True)
    before = relay_refusals()
    snap = an_appointment()
    await publish(booked(snap))

    await wait_for(lambda: tried_twice(pool, snap.id), timeout=15, what="two refused attempts")
    row = await the_confirmation(pool, snap.id)
    assert row is not None
    assert row["status"] == "pending" and row["last_error"] == error
    await nothing_failed_or_suppressed(pool)
    assert relay_refusals() >= before + 2

    setattr(sink, fault, None if fault == "credentials" else False)
    await mails_to(sink, snap.customer.email, wait=15)
    await wait_for(
        lambda: _status_is(pool, snap.id, "sent"), timeout=10, what="the confirmation recorded as sent"
    )
    # Later mail to the same address goes out as well: it was never put on the suppression list.
    again = an_appointment(customer={"email": snap.customer.email})
    await publish(booked(again))
    await mails_to(sink, snap.customer.email, count=2, wait=15)
    await nothing_failed_or_suppressed(pool)
