"""R45: an offer whose mail never reached the customer (the relay refused it until the offer ran out) is
no offer they let run out. When it expires they get no "your offer has expired" mail about an offer they
never saw, it does not count against their wish (`OTV_WAITING_MAX_MISSED_OFFERS`), and they keep their
place. The notifier gives the mail up only at the offer's end, so its report reaches booking after
the expiry: the order the outage brings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from tests.conftest import wait_for
from tests.waiting_list.conftest import (
    NARROW,
    TUESDAY_EIGHT,
    Waiting,
    kind_of,
    start_waiting,
    unique_email,
)
from tools.mailsink import MailSink


@pytest.fixture(params=[1, 2], ids=["one_miss_ends_a_wish", "two_misses_end_a_wish"])
async def waiting_strict(
    request: pytest.FixtureRequest, pools: dict[str, asyncpg.Pool], amqp: Any, sink: MailSink
) -> AsyncIterator[Waiting]:
    async for found in start_waiting(pools, sink, waiting_max_missed_offers=request.param):
        yield found


async def _offer_mail(notifier: asyncpg.Pool, wish_id: uuid.UUID) -> asyncpg.Record | None:
    return await notifier.fetchrow(
        "SELECT status, last_error FROM mails WHERE appointment_id = $1 AND kind = 'waiting_offer'",
        wish_id,
    )


@pytest.mark.req("R45")
async def test_an_offer_whose_mail_was_never_delivered_expires_without_a_mail_and_keeps_the_wish_waiting(
    waiting_strict: Waiting, pools: dict[str, asyncpg.Pool]
) -> None:
    waiting, notifier = waiting_strict, pools["notifier"]
    booked = await waiting.fill(TUESDAY_EIGHT)
    email = unique_email("unreached")
    wish, token = await waiting.joined_and_confirmed(email, **NARROW)
    wish_id = uuid.UUID(wish)
    await waiting.mails_to(email, 2)  # the opt-in and the confirmation

    # The mail relay has an outage: every recipient is answered 451 while the slot is offered.
    waiting.sink.fail_temporarily = True
    try:
        await waiting.cancel(booked[0])
        waiting.clock.advance(timedelta(minutes=11))  # the cool-down after a cancellation (R39)
        assert (await waiting.match())["offers_made"] == 1

        async def refused() -> bool:
            row = await _offer_mail(notifier, wish_id)
            # The refusal recorded, not only the attempt begun (that could still reach a relay back up).
            return row is not None and row["last_error"] == "smtp_451_rcpt"

        await wait_for(refused, timeout=15, what="the offer mail refused by the relay")
    finally:
        waiting.sink.fail_temporarily = False  # the relay answers again, but the offer has run out

    waiting.clock.advance(timedelta(hours=2, minutes=1))
    assert (await waiting.match())["offers_expired"] == 1

    async def given_up() -> bool:
        row = await _offer_mail(notifier, wish_id)
        return row is not None and row["status"] != "pending"

    await wait_for(given_up, timeout=15, what="the offer mail given up (or cancelled) at the offer's end")
    revision = (await waiting.wish_row(wish)).get("revision")

    async def expiry_seen() -> bool:
        seen = await notifier.fetchval("SELECT revision FROM waiting_wishes WHERE id = $1", wish_id)
        return seen is not None and seen >= revision

    await wait_for(expiry_seen, timeout=15, what="the notifier to apply the offer's expiry")
    await waiting.match()  # whatever booking does once it hears of the failed mail

    # The customer got no mail about the offer they never saw, nor about the end of their wish.
    mails = await waiting.mails_to(email, 2)
    assert sorted(kind_of(m) for m in mails) == ["waiting_confirmed", "waiting_opt_in"]
    row = await waiting.wish_row(wish)
    assert row["status"] == "waiting" and row["missed_offers"] == 0
    view = await waiting.client.get(f"/api/v1/waiting-list/{wish}", params={"token": token})
    answer = await view.json()
    assert answer["status"] == "waiting" and answer["waiting_before"] == 0


@pytest.mark.req("R45")
async def test_an_offer_whose_mail_was_refused_for_good_before_it_ran_out_is_not_missed_either(
    waiting_strict: Waiting, pools: dict[str, asyncpg.Pool]
) -> None:
    """The other order: the relay refuses the address at once (550), booking hears of the failed mail
    while the offer still runs, and when it runs out the wish waits on."""
    waiting = waiting_strict
    booked = await waiting.fill(TUESDAY_EIGHT)
    email = unique_email("mailbox-gone")
    wish, _ = await waiting.joined_and_confirmed(email, **NARROW)
    await waiting.mails_to(email, 2)
    waiting.sink.reject_permanent.add(email)
    try:
        await waiting.cancel(booked[0])
        waiting.clock.advance(timedelta(minutes=11))
        assert (await waiting.match())["offers_made"] == 1

        async def failed_reported() -> bool:
            outcome = await waiting.pool.fetchval(
                "SELECT mail_outcome FROM waiting_offers WHERE wish_id = $1", uuid.UUID(wish)
            )
            return bool(outcome == "failed")

        await wait_for(failed_reported, timeout=15, what="booking to hear that the offer mail failed")
        waiting.clock.advance(timedelta(hours=2, minutes=1))
        assert (await waiting.match())["offers_expired"] == 1
    finally:
        waiting.sink.reject_permanent.discard(email)

    row = await waiting.wish_row(wish)
    assert row["status"] == "waiting" and row["missed_offers"] == 0
    # What reporting and the notifier are told: an offer that ran out, not one the customer missed.
    expired = await waiting.pool.fetchval(
        "SELECT envelope->'data'->>'missed' FROM outbox WHERE type = 'waiting.offer_expired'"
    )
    assert expired == "false"
