"""What the mails say about a phone appointment (R4, R7, R40, R43): the jobcenter calls, the location is
named (which jobcenter), and no street address reads like a place to go to, in the body, in the calendar
invitation's LOCATION, in any language: the mails of an appointment give the responsible location's
address (R7) only with the words that nobody needs to go there; the number called stays in the body, as
it was, never in the subject. An appointment in person keeps its address. The evening note opens alike
in every language (R12), and the customer's German says "absagen", as the pages' buttons do."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from services.notifier import waiting_mail
from services.notifier.texts import KINDS, TEMPLATE_DIR, default_templates, languages, mail_context, render
from services.notifier.texts import sample_payload as appointment_sample
from tests.notifier.conftest import (
    Notifier,
    Publisher,
    an_appointment,
    body_of,
    booked,
    calendar_of,
    mails_to,
)
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]
LANGUAGES = languages()
STREET = "Doventorsteinweg"  # the street of the sample location and of an_appointment()
NAME = "Geschäftsstelle Mitte"
APPOINTMENT_KINDS = [k for k in KINDS if not k.startswith("waiting_")]
# The waiting list's mails that name the wish or the offered appointment's place.
WAITING_KINDS = [k for k in KINDS if k.startswith("waiting_")]
CALLS = {"de": "Wir rufen Sie", "en": "We will call you", "de-x-ls": "Wir rufen Sie an."}
NO_VISIT = {
    "de": "Ein Besuch ist nicht nötig",
    "en": "No visit needed",
    "de-x-ls": "Sie müssen nicht dorthin gehen.",
}


def rendered(kind: str, language: str, mode: str, **changes: Any) -> Any:
    if kind.startswith("waiting_"):
        payload = waiting_mail.sample_payload(language)
        payload["wish"]["mode"] = mode
        context = waiting_mail.mail_context(kind, payload, public_base_url="https://termine.example")
    else:
        payload = appointment_sample(language)
        payload["appointment"]["mode"] = mode
        context = mail_context(kind, payload, public_base_url="https://termine.example")
    context.update(changes)
    return render(default_templates(kind, language), context)


@pytest.mark.req("R4")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", APPOINTMENT_KINDS + WAITING_KINDS)
def test_no_mail_about_a_phone_appointment_gives_a_street_address_as_a_place_to_go(
    kind: str, language: str
) -> None:
    mail = rendered(kind, language, "phone")
    assert STREET not in mail.subject
    for part in (mail.text, mail.html):
        if kind in WAITING_KINDS:
            assert STREET not in part, part
        elif STREET in part:  # the responsible location's address (R7), never as a place to go to
            assert NO_VISIT[language] in part, part


@pytest.mark.req("R7")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["confirmation", "reminder", "reschedule", "transferred", "manage_link"])
def test_a_mail_about_an_appointment_by_phone_says_we_call_and_one_in_person_where_to_come(
    kind: str, language: str
) -> None:
    by_phone = rendered(kind, language, "phone")
    in_person = rendered(kind, language, "in_person")
    for part in (by_phone.text, by_phone.html):
        assert NAME in part and CALLS[language] in part, part
        assert STREET in part and NO_VISIT[language] in part, part  # R7: the address, and no visit
    for part in (in_person.text, in_person.html):
        assert NAME in part and STREET in part, part


@pytest.mark.req("R7")
@pytest.mark.req("R40")
@pytest.mark.req("R52")
@pytest.mark.parametrize(
    ("language", "location"),
    [
        ("de", f"Telefontermin \u2013 {NAME}"),
        ("de-x-ls", f"Termin am Telefon \u2013 {NAME}"),
        ("en", f"Phone appointment \u2013 {NAME}"),
    ],
)
async def test_the_confirmation_of_a_phone_appointment_sends_nobody_to_the_address(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, language: str, location: str
) -> None:
    await start_notifier()
    snap = an_appointment(mode="phone", language=language)
    await publish(booked(snap))
    [mail] = await mails_to(sink, snap.customer.email)
    assert "0421" not in mail.subject and STREET not in mail.subject
    for subtype in ("plain", "html"):
        body = body_of(mail, subtype)
        assert NAME in body and CALLS[language] in body, body
        assert "0421 555 0101" in body  # the number called, in the body only, as before
        assert STREET in body and NO_VISIT[language] in body, body  # R7's address, and no visit
    calendar, _ = calendar_of(mail)
    [event] = calendar.walk("VEVENT")
    assert str(event["LOCATION"]) == location
    assert STREET not in calendar.to_ical().decode()

    in_person = an_appointment(language=language)
    await publish(booked(in_person))
    [mail] = await mails_to(sink, in_person.customer.email)
    assert STREET in body_of(mail, "plain") and STREET in body_of(mail, "html")
    [event] = calendar_of(mail)[0].walk("VEVENT")
    assert str(event["LOCATION"]) == f"{NAME}, Doventorsteinweg 48-52, 28195 Bremen"


EVENING_LEAD = {
    "de": "Hinweis zum Abendtermin:",
    "en": "Note on the evening appointment:",
    "de-x-ls": "Ihr Termin ist am Abend.",
}


@pytest.mark.req("R12")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["confirmation", "reminder", "reschedule", "transferred", "manage_link"])
def test_the_evening_note_opens_with_the_same_lead_in_the_text_and_the_html_of_every_language(
    kind: str, language: str
) -> None:
    """German says "Hinweis zum Abendtermin:" before the note, Leichte Sprache "Ihr Termin ist am Abend.";
    English said nothing before it in the plain text and "Evening appointment:" in the HTML."""
    mail = rendered(kind, language, "in_person", evening=True)
    lead = EVENING_LEAD[language]
    assert f"\n\n{lead}" in mail.text, mail.text  # a paragraph of its own, opened by the lead
    assert f"<p>{lead}" in mail.html or f"<p><strong>{lead}</strong> " in mail.html, mail.html
    without = rendered(kind, language, "in_person", evening=False)
    assert lead not in without.text and lead not in without.html


ROOT = Path(__file__).resolve().parents[2]
# What a customer reads in German: the mails, the pages' and the waiting list pages' catalogues, the
# reasons the system gives in mails, the calendar entry.
CUSTOMER_TEXTS = [
    *sorted((TEMPLATE_DIR / "de").glob("*.j2")),
    *sorted((TEMPLATE_DIR / "de-x-ls").glob("*.j2")),
    *[
        ROOT / "services" / "gateway" / folder / "translations" / lang / "LC_MESSAGES" / catalogue
        for folder, catalogue in (("web", "messages.po"), ("web_waiting", "waiting.po"))
        for lang in ("de", "de-x-ls")
    ],
    ROOT / "shared" / "reasons.py",
    ROOT / "shared" / "invitation.py",
]


@pytest.mark.req("R43")
def test_the_customers_german_says_absagen_never_stornieren() -> None:
    """The pages' buttons say "Termin absagen", the mails "abgesagt"; a text saying "Stornierung" for the
    same thing makes a customer wonder whether it is something else (the staff's statistics may say it)."""
    found = [
        f"{path.name}: {line.strip()}"
        for path in CUSTOMER_TEXTS
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.search(r"storn", line, re.IGNORECASE) and not line.startswith(("msgid", "#"))
    ]
    assert found == []
    assert len(CUSTOMER_TEXTS) > 40 and all(path.is_file() for path in CUSTOMER_TEXTS)
