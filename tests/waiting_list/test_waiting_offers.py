"""R45: a freed slot goes to the next wish in order of registration, held for a set time; an offer not
confirmed in time goes to the next wish; an accepted offer is a normal booking with all its mails."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.booking import factory
from tests.waiting_list.conftest import (
    NARROW,
    TUESDAY_EIGHT,
    Waiting,
    kind_of,
    link_of,
    text_of,
    unique_email,
)


@pytest.mark.req("R45")
@pytest.mark.req("R39")
async def test_two_wishes_one_freed_slot_the_first_lets_the_offer_expire_and_the_second_books(
    waiting: Waiting,
) -> None:
    # The slot is fully booked: three customers on its three service points.
    bookers = [unique_email("booker") for _ in range(3)]
    booked = [await waiting.book(TUESDAY_EIGHT, email) for email in bookers]
    first, second = unique_email("first"), unique_email("second")
    for email in (first, second):
        await waiting.join(email, **NARROW)
        waiting.clock.advance(timedelta(minutes=1))
    # The double opt-in, from the link in each mail.
    for email in (first, second):
        (opt_in,) = await waiting.mails_to(email, 1)
        assert "Warteliste" in opt_in.subject
        wish_id, token = link_of(opt_in)
        await waiting.confirm(str(wish_id), token)
    await waiting.mails_to(first, 2)
    await waiting.mails_to(second, 2)

    # A cancellation frees the slot, but only after the anti-slot-trading delay (R39).
    await waiting.cancel(booked[0])
    assert (await waiting.match())["offers_made"] == 0
    waiting.clock.advance(timedelta(minutes=11))
    assert (await waiting.match())["offers_made"] == 1

    # The first wish in order of registration is offered it, held until two hours from now.
    first_mails = await waiting.mails_to(first, 3)
    offer_mail = first_mails[-1]
    assert "frei" in offer_mail.subject and "Veränderung" not in offer_mail.subject  # R52
    first_id, first_token = link_of(offer_mail)
    view = await (
        await waiting.client.get(f"/api/v1/waiting-list/{first_id}", params={"token": first_token})
    ).json()
    assert view["status"] == "offered"
    assert view["offer"]["start"] == TUESDAY_EIGHT
    # The offered slot is not free for anybody else meanwhile.
    availability = await waiting.client.get(
        f"/api/v1/locations/{factory.LOCATION}/availability",
        params={"concern": "veraenderung", "from": "2026-03-03", "to": "2026-03-03"},
    )
    assert TUESDAY_EIGHT not in [s["start"] for s in (await availability.json())["slots"]]

    # Not confirmed in time (the mail had reached them): the next wish gets it.
    await waiting.offer_delivered(first_id)
    waiting.clock.advance(timedelta(hours=2, minutes=1))
    counts = await waiting.match()
    assert counts["offers_expired"] == 1 and counts["offers_made"] == 1
    await waiting.mails_to(first, 4)  # ... and the first is told its offer expired
    second_mails = await waiting.mails_to(second, 3)
    second_id, second_token = link_of(second_mails[-1])
    accepted = await waiting.client.post(
        f"/api/v1/waiting-list/{second_id}/offer/accept", params={"token": second_token}
    )
    appointment = await accepted.json()
    assert accepted.status == 201, appointment
    assert appointment["start"] == TUESDAY_EIGHT and appointment["status"] == "booked"
    # A double click books once and answers the same.
    again = await waiting.client.post(
        f"/api/v1/waiting-list/{second_id}/offer/accept", params={"token": second_token}
    )
    assert again.status == 201 and (await again.json())["id"] == appointment["id"]

    # The booking's own confirmation mail with its manage link.
    second_mails = await waiting.mails_to(second, 4)
    assert f"/manage/{appointment['id']}?token=" in text_of(second_mails[-1])
    # Each got exactly the mails expected, in this order.
    assert [kind_of(m) for m in await waiting.mails_to(first, 4)] == [
        "waiting_opt_in",
        "waiting_confirmed",
        "waiting_offer",
        "waiting_offer_expired",
    ]
    assert [kind_of(m) for m in second_mails] == [
        "waiting_opt_in",
        "waiting_confirmed",
        "waiting_offer",
        "confirmation",
    ]
    await waiting.mails_to(bookers[0], 2)  # confirmation and cancellation
    await waiting.mails_to(bookers[1], 1)
    # The database: the wish is booked, the offer accepted, the first wish waits again.
    second_row = await waiting.wish_row(str(second_id))
    assert second_row["status"] == "booked"
    assert second_row["appointment_id"] == uuid.UUID(appointment["id"])
    first_row = await waiting.wish_row(str(first_id))
    assert first_row["status"] == "waiting" and first_row["missed_offers"] == 1
    offers = await waiting.pool.fetch("SELECT wish_id, status FROM waiting_offers ORDER BY offered_at")
    assert [(o["wish_id"], o["status"]) for o in offers] == [(first_id, "expired"), (second_id, "accepted")]
    fulfilled = await waiting.pool.fetchval("SELECT count(*) FROM outbox WHERE type = 'waiting.fulfilled'")
    assert fulfilled == 1
