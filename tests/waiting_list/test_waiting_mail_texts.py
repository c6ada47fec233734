"""What the waiting list's mails tell the customer, read from the local mail sink: until when the opt-in
link works (R45), in German, Leichte Sprache and English (R43)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from shared.clock import BERLIN
from tests.waiting_list.conftest import (
    DEFAULT_START,
    NARROW,
    TUESDAY_EIGHT,
    Waiting,
    kind_of,
    link_of,
    text_of,
    unique_email,
)

# The clock stands on Monday 2 March 2026, 10:00 in Bremen; the opt-in link works 48 hours.
DEADLINE = datetime(2026, 3, 4, 10, 0, tzinfo=BERLIN)
NAMED = {
    "de": "Bitte bestätigen Sie das bis Mittwoch, 4. März 2026, 10:00 Uhr mit diesem Link.",
    "de-x-ls": "Sie haben dafür Zeit bis: Mittwoch, 4. März 2026, 10:00 Uhr.",
    "en": "Please confirm with this link by Wednesday, 4 March 2026, 10:00;",
}


@pytest.mark.req("R45")
@pytest.mark.req("R43")
async def test_the_opt_in_mail_names_the_time_until_which_its_link_works_in_every_language(
    waiting: Waiting,
) -> None:
    wishes = {}
    for language, sentence in NAMED.items():
        email = unique_email(f"deadline-{language}")
        wish = await waiting.join(email, language=language)
        (mail,) = await waiting.mails_to(email, 1)
        assert mail.parsed["Content-Language"] == language
        text = text_of(mail)
        assert text.count(sentence) == 2, text  # the plain-text part and the HTML part
        wishes[language] = wish["id"], await waiting.registered_token(wish["id"])
        # The customer's page (through the gateway) says the same: booking names the time.
        view = await waiting.client.get(
            f"/api/v1/waiting-list/{wish['id']}", params={"token": wishes[language][1]}
        )
        assert datetime.fromisoformat((await view.json())["confirm_by"]) == DEADLINE
    # The time named is the time the link stops working: a minute before it confirms, at it no more.
    waiting.clock.set(DEADLINE - timedelta(minutes=1))
    await waiting.confirm(*wishes["de"])
    waiting.clock.set(DEADLINE)
    expired = await waiting.confirm(*wishes["en"], status=410)
    assert expired["error"]["code"] == "link_expired"


TIME_OF_DAY = {
    "de": "Uhrzeit:        bis 08:15 Uhr",
    "de-x-ls": "Uhr·zeit: bis 08:15 Uhr",
    "en": "Time of day:   until 08:15",
}


@pytest.mark.req("R45")
@pytest.mark.req("R43")
async def test_a_wish_from_midnight_reads_as_until_its_latest_time_in_every_language(
    waiting: Waiting,
) -> None:
    """A wish for the mornings has no earliest time; one that says 00:00 (as the join page sent it before)
    does not read "from 00:00" in any mail."""
    await waiting.fill(DEFAULT_START)  # Wednesday 08:00 to 08:15, the wish's only time, is taken
    for language, line in TIME_OF_DAY.items():
        email = unique_email(f"morning-{language}")
        await waiting.join(email, language=language, earliest="00:00")
        (mail,) = await waiting.mails_to(email, 1)
        text = text_of(mail)
        assert line in text, text
        assert "00:00" not in text


@pytest.mark.req("R45")
@pytest.mark.req("R43")
async def test_a_wish_in_a_language_added_as_content_gets_german_mails_and_books_in_its_language(
    waiting: Waiting,
) -> None:
    """A customer on pages added in Turkish (R43: content) joins the list: the wish keeps Turkish, the mails
    come in German (the notifier has no Turkish texts) with links that open the pages in Turkish, and the
    offer, once accepted, is an appointment booked in Turkish."""
    bookers = [await waiting.book(TUESDAY_EIGHT, unique_email("booker")) for _ in range(3)]
    email = unique_email("turkish")
    wish = await waiting.join(email, language="tr", **NARROW)
    assert wish["language"] == "tr"
    (opt_in,) = await waiting.mails_to(email, 1)
    assert kind_of(opt_in) == "waiting_opt_in" and opt_in.parsed["Content-Language"] == "de"
    assert "Bitte bestätigen Sie das bis" in text_of(opt_in)
    assert re.search(r"/waiting-list/[0-9a-f-]{36}/confirm\?token=[A-Za-z0-9_\-]+&lang=tr\b", text_of(opt_in))
    wish_id, token = link_of(opt_in)
    await waiting.confirm(str(wish_id), token)

    await waiting.cancel(bookers[0])
    waiting.clock.advance(timedelta(minutes=11))  # past the anti-slot-trading delay (R39)
    assert (await waiting.match())["offers_made"] == 1
    offer_mail = (await waiting.mails_to(email, 3))[-1]
    assert kind_of(offer_mail) == "waiting_offer" and offer_mail.parsed["Content-Language"] == "de"
    accepted = await waiting.client.post(
        f"/api/v1/waiting-list/{wish_id}/offer/accept", params={"token": token}
    )
    appointment = await accepted.json()
    assert accepted.status == 201, appointment
    assert appointment["language"] == "tr"
    confirmation = (await waiting.mails_to(email, 4))[-1]
    assert kind_of(confirmation) == "confirmation" and confirmation.parsed["Content-Language"] == "de"
    assert re.search(r"/manage/[0-9a-f-]{36}\?token=[A-Za-z0-9_\-]+&lang=tr\b", text_of(confirmation))
