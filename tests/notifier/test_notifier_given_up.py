"""A mail given up because its time ran out is counted as such (otv_mails_total{outcome="expired"}), however
it got there: past its deadline when claimed, retried after temporary failures until the next retry would
come too late, or after a second unknown outcome (tests/notifier/test_notifier_slow_relay.py). The ticket
OTVMailsGivenUp ("these customers got no mail") watches that count; before, the usual way, the last of the
retries, showed only as one more temporary failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from prometheus_client import REGISTRY

from tests.conftest import wait_for
from tests.notifier.conftest import Notifier, Publisher, an_appointment, booked, mail_rows, received
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]


def mails_counted(outcome: str, kind: str = "confirmation") -> float:
    return REGISTRY.get_sample_value("otv_mails_total", {"kind": kind, "outcome": outcome}) or 0.0


@pytest.mark.req("R51")
async def test_a_mail_retried_until_its_deadline_is_given_up_and_counted_as_expired_once(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    pool = clean_db["notifier"]
    # Given up 2 s after it was planned; retried after 0.2, 0.4, 0.8 s (then 1 s: too late).
    await start_notifier(mail_give_up_hours=2 / 3600)
    sink.fail_temporarily = True  # the relay answers 451 to every recipient
    expired_before, temporary_before = mails_counted("expired"), mails_counted("temporary")
    snap = an_appointment()
    await publish(booked(snap))

    async def given_up() -> bool:
        rows = await mail_rows(pool, snap.id)
        return any(r["kind"] == "confirmation" and r["status"] == "failed" for r in rows)

    await wait_for(given_up, timeout=15, what="the confirmation given up at its deadline")
    [row] = [r for r in await mail_rows(pool, snap.id) if r["kind"] == "confirmation"]
    assert row["attempts"] >= 2 and row["last_error"] == "smtp_451_rcpt"
    [failed] = await pool.fetch("SELECT envelope FROM outbox WHERE type = 'mail.failed'")
    assert failed["envelope"]["data"]["reason"] == "expired"
    await asyncio.sleep(0.5)  # a second count would show by now
    assert mails_counted("expired") == expired_before + 1
    # Every attempt still counts as what the relay answered (the failure rate of OTVMailFailures).
    assert mails_counted("temporary") == temporary_before + row["attempts"]
    assert received(sink, snap.customer.email) == []
