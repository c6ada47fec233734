"""The reply to the end of a mail's data (I3, RFC 5321 4.5.3.2.6): the relay has the whole mail then and
may take long to say so (it scans the content). A relay slower than a step's timeout still gets the
confirmation once; a missing reply is an unknown outcome that the operator sees and that is not sent again
soon; a notifier stopped while it waits for the reply does not leave the mail to be sent again by the
next sender at the end of the lease."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.notifier.config import Settings
from shared.clock import ManualClock, SystemClock
from tests.conftest import free_port, wait_for
from tests.notifier.conftest import Notifier, Publisher, an_appointment, booked, mail_rows, received
from tests.notifier.smtp_gate import SmtpGate
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
async def gate(sink: MailSink) -> AsyncIterator[SmtpGate]:
    running = SmtpGate(sink.smtp_port)
    await running.start()
    yield running
    await running.stop()


def unknown_outcomes() -> float:
    return REGISTRY.get_sample_value("otv_mails_total", {"kind": "confirmation", "outcome": "unknown"}) or 0.0


def given_up() -> float:
    return REGISTRY.get_sample_value("otv_mails_total", {"kind": "confirmation", "outcome": "expired"}) or 0.0


async def the_confirmation(pool: asyncpg.Pool, appointment_id: uuid.UUID) -> asyncpg.Record:
    [row] = [r for r in await mail_rows(pool, appointment_id) if r["kind"] == "confirmation"]
    return row


async def confirmation_has(pool: asyncpg.Pool, appointment_id: uuid.UUID, column: str, value: str) -> bool:
    """For wait_for: the confirmation is planned and its `column` holds `value`."""
    rows = [r for r in await mail_rows(pool, appointment_id) if r["kind"] == "confirmation"]
    return bool(rows and rows[0][column] == value)


@pytest.mark.req("R2")
async def test_a_relay_slower_to_confirm_the_data_than_a_step_may_take_gets_the_confirmation_once(
    start_notifier: StartNotifier,
    publish: Publisher,
    sink: MailSink,
    gate: SmtpGate,
    clean_db: dict[str, asyncpg.Pool],
) -> None:
    pool = clean_db["notifier"]
    # A step may take 2 s; the relay has the mail at once but answers its end after 6 s.
    await start_notifier(smtp_port=gate.port, smtp_timeout=2.0, smtp_data_timeout_seconds=30.0)
    gate.data_reply_delay = 6.0
    snap = an_appointment()
    await publish(booked(snap))

    await wait_for(
        lambda: confirmation_has(pool, snap.id, "status", "sent"),
        timeout=30,
        what="the confirmation recorded as sent",
    )
    await asyncio.sleep(1.0)  # longer than the back-off (0.2 s): a second copy would be on its way
    assert len(received(sink, snap.customer.email)) == 1
    row = await the_confirmation(pool, snap.id)
    assert row["attempts"] == 1 and row["last_error"] is None
    assert gate.data_replies_held == 1


@pytest.mark.req("R2")
async def test_a_mail_whose_end_of_data_gets_no_reply_goes_again_only_after_the_long_delay_then_is_given_up(
    start_notifier: StartNotifier,
    publish: Publisher,
    sink: MailSink,
    gate: SmtpGate,
    clean_db: dict[str, asyncpg.Pool],
) -> None:
    """The relay may have taken it: not a temporary failure retried within seconds, but one more try an
    hour later (the same Message-ID), and after a second such attempt the mail is given up. The operator
    sees each in the metrics (OTVMailOutcomeUnknown)."""
    pool = clean_db["notifier"]
    notifier = await start_notifier(smtp_port=gate.port, smtp_data_timeout_seconds=2.0)
    gate.data_reply_delay = math.inf
    before, given_up_before = unknown_outcomes(), given_up()
    snap = an_appointment()
    await publish(booked(snap))

    await wait_for(
        lambda: confirmation_has(pool, snap.id, "last_error", "unknown_after_data"),
        timeout=20,
        what="the outcome recorded as unknown",
    )
    row = await the_confirmation(pool, snap.id)
    assert row["status"] == "pending" and row["claim_token"] is None
    retry_in = row["due_at"] - SystemClock().now()
    assert retry_in > timedelta(seconds=notifier.settings.mail_unknown_retry_seconds - 60)
    assert unknown_outcomes() == before + 1 and given_up() == given_up_before
    await asyncio.sleep(1.5)  # the back-off of a temporary failure is 0.2 s: a quick retry would show
    assert len(received(sink, snap.customer.email)) == 1
    assert (await the_confirmation(pool, snap.id))["attempts"] == 1

    # The hour has passed: one more try, again without a reply; then the mail is given up. A temporary
    # failure in between (a 421, a restart) leaves its own error behind and earns no further late retry.
    await pool.execute(
        "UPDATE mails SET due_at = now(), last_error = '421 try again later'"
        " WHERE appointment_id = $1 AND kind = 'confirmation'",
        snap.id,
    )

    await wait_for(
        lambda: confirmation_has(pool, snap.id, "status", "failed"),
        timeout=20,
        what="the mail given up after its second unknown outcome",
    )
    row = await the_confirmation(pool, snap.id)
    assert row["attempts"] == 2 and row["last_error"] == "unknown_after_data"
    assert len(received(sink, snap.customer.email)) == 2  # the same mail, the one duplicate allowed
    assert len({m.parsed["Message-ID"] for m in received(sink, snap.customer.email)}) == 1
    assert unknown_outcomes() == before + 2
    [failed] = await pool.fetch("SELECT envelope FROM outbox WHERE type = 'mail.failed'")
    assert failed["envelope"]["data"]["reason"] == "expired"
    assert given_up() == given_up_before + 1  # OTVMailsGivenUp: this customer got no confirmation


async def test_a_notifier_stopped_before_the_relay_confirmed_the_data_leaves_no_mail_to_be_sent_again(
    start_notifier: StartNotifier,
    publish: Publisher,
    sink: MailSink,
    gate: SmtpGate,
    clean_db: dict[str, asyncpg.Pool],
) -> None:
    """A rolling update stops the replica while the relay has the mail and has not answered yet. Before,
    the delivery was cancelled and the next sender sent the mail again once the lease had run out."""
    pool = clean_db["notifier"]
    clock = ManualClock(SystemClock().now())
    # A step may take as long as in production (20 s, more than the stop waits).
    notifier = await start_notifier(clock=clock, smtp_port=gate.port, smtp_timeout=20.0)
    gate.data_reply_delay = math.inf  # longer than the stop waits (OTV_SHUTDOWN_TIMEOUT)
    snap = an_appointment()
    await publish(booked(snap))
    await wait_for(lambda: gate.data_replies_held == 1, timeout=15, what="the mail at the relay, unanswered")
    assert len(received(sink, snap.customer.email)) == 1

    clients = [notifier.client, *notifier.peers]
    [holder] = [client for client, sender in zip(clients, notifier.senders, strict=True) if sender.busy]
    await holder.close()  # SIGTERM: the sender waits for the reply, then records what it knows

    # The relay answers again; another replica runs, and the lease of the stopped one has long run out.
    gate.data_reply_delay = 0.0
    settings: Settings = notifier.settings
    await start_notifier(clock=clock, smtp_port=gate.port)
    clock.advance(timedelta(seconds=settings.mail_lease_seconds + 1))
    await asyncio.sleep(2.0)  # ten polls of the senders
    assert len(received(sink, snap.customer.email)) == 1
    row = await the_confirmation(pool, snap.id)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert (
        row["last_error"] == "unknown_after_data"
    )  # tried again in an hour (OTV_MAIL_UNKNOWN_RETRY_SECONDS)


def test_the_notifier_refuses_to_start_with_a_lease_that_does_not_cover_one_conversation() -> None:
    """The lease of before (120 s) with the data timeout of now: a second sender could send a mail whose
    reply the first still waits for. The operator is told which settings and why, and nothing starts."""
    env = {
        **os.environ,
        "OTV_PORT": str(free_port()),
        "OTV_MAIL_LEASE_SECONDS": "120",
        "OTV_SMTP_TIMEOUT": "20",
        "OTV_SMTP_DATA_TIMEOUT_SECONDS": "300",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.notifier"], cwd=ROOT, env=env, capture_output=True, timeout=30
    )
    assert done.returncode != 0
    assert (
        "OTV_MAIL_LEASE_SECONDS (120) must cover one SMTP conversation: at least OTV_SMTP_TIMEOUT (20)"
        " + OTV_SMTP_DATA_TIMEOUT_SECONDS (300) + 5 s to record it = 325"
    ) in done.stderr.decode()
