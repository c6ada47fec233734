"""A mail the server has taken while the notifier's database is away (a restart, a fail-over) is recorded
as sent once the database is back, however long it was away, and is never sent a second time when its
lease runs out meanwhile (R2, invariant I3; the PostgreSQL restart of tests/faults found it under load)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from tests.conftest import wait_for
from tests.notifier.conftest import Notifier, Publisher, an_appointment, booked, mail_rows, received
from tests.notifier.smtp_gate import SmtpGate
from tests.tcp_proxy import TcpProxy
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]

# The shortest lease the settings allow for these SMTP timeouts (2 + 3 + 5 s to record the outcome).
LEASE = 10.0


@pytest.mark.req("R2")
# One replica: with two, the other one may take the mail over when the lease ends (that is what a lease
# is for) and send it again; the default lease (600 s) makes that a matter of a ten-minute outage.
@pytest.mark.parametrize("start_notifier", [1], indirect=True, ids=["one-replica"])
async def test_a_mail_sent_while_the_database_is_away_longer_than_the_lease_goes_out_once(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    pool = clean_db["notifier"]
    gate = SmtpGate(sink.smtp_port)
    await gate.start()
    proxy = TcpProxy("127.0.0.1", 5432)
    try:
        await start_notifier(
            smtp_port=gate.port,
            db_port=await proxy.start(),
            smtp_timeout=2.0,
            smtp_data_timeout_seconds=3.0,
            mail_lease_seconds=LEASE,
        )
        gate.data_reply_delay = 1.0  # the server has the whole mail and answers a second later
        snap = an_appointment()
        await publish(booked(snap))
        await wait_for(lambda: gate.data_replies_held >= 1, timeout=20, what="the mail's end of data")
        await proxy.cut()  # the database goes away before the server's 250 comes
        gate.data_reply_delay = 0.0
        await asyncio.sleep(LEASE + 2)  # longer than the lease the mail was claimed with
        await proxy.start()

        async def recorded() -> bool:
            rows = await mail_rows(pool, snap.id)
            return [r["status"] for r in rows if r["kind"] == "confirmation"] == ["sent"]

        await wait_for(recorded, timeout=15, interval=0.2, what="the confirmation recorded as sent")
        await asyncio.sleep(2.0)  # a second delivery would come within a poll now that the lease is over
        assert len(received(sink, snap.customer.email)) == 1
    finally:
        await proxy.cut()
        await gate.stop()
