"""Administrators change the mail texts (R10): the change applies to the next mail, a broken text is
refused with 422, and only a verified administrator reaches the endpoints (I5)."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from services.notifier import waiting_mail
from services.notifier.texts import (
    KINDS,
    default_templates,
    languages,
    mail_context,
    render,
    sample_payload,
    validate,
)
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from tests.conftest import wait_for
from tests.notifier.conftest import Notifier, Publisher, an_appointment, body_of, booked, mails_to
from tools.mailsink import MailSink

StartNotifier = Callable[..., Awaitable[Notifier]]
LANGUAGES = languages()  # the folders of mail texts
PATH = "/api/v1/admin/mail-templates"


def as_role(notifier: Notifier, role: Role) -> dict[str, str]:
    identity = StaffIdentity(
        subject="demo-admin",
        kind=IdentityKind.USER,
        grants=(Grant(role=role, locations=("*",)),),
        issued_at=notifier.clock.now(),
    )
    return {HEADER: sign(identity, notifier.settings.internal_secret)}


def admin(notifier: Notifier) -> dict[str, str]:
    return as_role(notifier, Role.ADMIN)


@pytest.mark.req("R10")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_shipped_text_passes_the_checks_an_administrators_text_must_pass(
    kind: str, language: str
) -> None:
    assert validate(kind, language, default_templates(kind, language)) == []


async def test_the_mail_table_accepts_every_kind_of_mail_the_notifier_plans(
    pools: dict[str, asyncpg.Pool],
) -> None:
    # A kind missing from the table's check made every mail of it fail, and its event a dead letter.
    definition = await pools["notifier"].fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conname = 'mails_kind_check' AND connamespace = 'notifier'::regnamespace"
    )
    missing = [kind for kind in KINDS if f"'{kind}'::text" not in definition]
    assert missing == []


@pytest.mark.req("R10")
async def test_a_changed_text_applies_to_the_next_mail(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink
) -> None:
    notifier = await start_notifier()
    client = notifier.client
    response = await client.get(f"{PATH}/confirmation/de", headers=admin(notifier))
    assert response.status == 200
    current = await response.json()
    assert current["customised"] is False
    assert "{{ manage_url }}" in current["text"]

    changed = {
        "subject": "Bestätigt: Ihr Termin im Jobcenter Bremen am {{ date }}",
        "text": "Hallo {{ name }}!\nNeu: Bitte 10 Minuten früher kommen.\n{{ manage_url }}\n",
        "html": "<p>Hallo {{ name }}!</p><p>Neu: Bitte 10 Minuten früher kommen.</p>"
        '<p><a href="{{ manage_url }}">Termin verwalten</a></p>',
    }
    response = await client.put(f"{PATH}/confirmation/de", json=changed, headers=admin(notifier))
    assert response.status == 200, await response.text()
    assert (await response.json())["customised"] is True

    snap = an_appointment(customer={"first_name": "<i>Jörg</i>"})
    await publish(booked(snap))
    [mail] = await mails_to(sink, snap.customer.email)
    assert mail.subject.startswith("Bestätigt: Ihr Termin im Jobcenter Bremen am Dienstag")
    assert "Neu: Bitte 10 Minuten früher kommen." in body_of(mail, "plain")
    assert "&lt;i&gt;Jörg&lt;/i&gt;" in body_of(mail, "html")  # an administrator's HTML is escaped too

    response = await client.delete(f"{PATH}/confirmation/de", headers=admin(notifier))
    assert (await response.json())["customised"] is False
    again = an_appointment()
    await publish(booked(again))
    [mail] = await mails_to(sink, again.customer.email)
    assert mail.subject.startswith("Terminbestätigung")


@pytest.mark.req("R10")
@pytest.mark.req("R52")
@pytest.mark.parametrize(
    ("field", "source", "says"),
    [
        ("text", "Hallo {{ name }\n{{ manage_url }}", "syntax error"),
        ("subject", "Ihr Termin: {{ concern }}", "unknown value"),
        ("subject", "Termin für {{ name }}", "unknown value"),
        ("html", "<p>{{ customer.email }}</p>{{ manage_url }}", "unknown value"),
        ("text", "{{ manage_url.__class__.__mro__ }}", "not allowed"),
        ("text", "Hallo {{ name }}, bis bald.", "manage link"),
        (
            "html",
            '<p><a href="{{ manage_url }}">Termin</a></p><script>alert(1)</script>',
            "unsafe HTML: <script>",
        ),
        ("html", '<p onclick="x()"><a href="{{ manage_url }}">Termin</a></p>', "unsafe HTML: onclick="),
        ("html", '<a href="{{ manage_url }}">Termin</a><a href=" JavaScript:x()">x</a>', "href=javascript:"),
        (
            "html",
            '<a href="{{ manage_url }}">Termin</a><iframe src="https://x.example"></iframe>',
            "<iframe>",
        ),
    ],
    ids=[
        "syntax",
        "concern-in-subject",
        "name-in-subject",
        "unknown-field",
        "sandbox",
        "no-manage-link",
        "script",
        "event-handler",
        "javascript-link",
        "frame",
    ],
)
async def test_a_broken_text_is_refused_with_422_and_the_old_one_stays(
    start_notifier: StartNotifier, field: str, source: str, says: str
) -> None:
    notifier = await start_notifier()
    defaults = default_templates("reminder", "en")
    body: dict[str, Any] = {"subject": defaults.subject, "text": defaults.text, "html": defaults.html}
    body[field] = source
    response = await notifier.client.put(f"{PATH}/reminder/en", json=body, headers=admin(notifier))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_error"
    assert any(d["field"] == field and says in d["message"] for d in error["details"]), error
    current = await (await notifier.client.get(f"{PATH}/reminder/en", headers=admin(notifier))).json()
    assert current["customised"] is False


async def test_a_text_body_without_a_field_is_refused_naming_the_field(start_notifier: StartNotifier) -> None:
    notifier = await start_notifier()
    response = await notifier.client.put(
        f"{PATH}/reminder/en", json={"subject": "x", "text": "y"}, headers=admin(notifier)
    )
    assert response.status == 422
    assert [d["field"] for d in (await response.json())["error"]["details"]] == ["html"]


async def test_an_unknown_kind_or_language_is_404(start_notifier: StartNotifier) -> None:
    notifier = await start_notifier()
    for path in (f"{PATH}/newsletter/de", f"{PATH}/confirmation/fr"):
        response = await notifier.client.get(path, headers=admin(notifier))
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"


async def test_the_texts_need_a_verified_administrator(start_notifier: StartNotifier) -> None:
    notifier = await start_notifier()
    client = notifier.client
    anonymous = await client.get(f"{PATH}/confirmation/de")
    assert anonymous.status == 401
    assert (await anonymous.json())["error"]["code"] == "unauthenticated"
    forged = await client.get(f"{PATH}/confirmation/de", headers={HEADER: "e30.forged"})
    assert forged.status == 401
    manager = await client.get(f"{PATH}/confirmation/de", headers=as_role(notifier, Role.LOCATION_ADMIN))
    assert manager.status == 403
    listing = await client.get(PATH, headers=admin(notifier))
    assert listing.status == 200
    assert len(await listing.json()) == len(KINDS) * len(LANGUAGES)


async def test_an_administrator_lifts_a_suppression_and_mail_flows_again(
    start_notifier: StartNotifier, publish: Publisher, sink: MailSink, clean_db: dict[str, asyncpg.Pool]
) -> None:
    notifier = await start_notifier()
    snap = an_appointment()
    sink.reject_permanent = {snap.customer.email}
    await publish(booked(snap))
    await wait_for(
        lambda: clean_db["notifier"].fetchval("SELECT count(*) FROM suppressions"), what="the suppression"
    )
    sink.reject_permanent = set()

    response = await notifier.client.post(
        "/api/v1/admin/mail-suppressions/lift", json={"email": snap.customer.email}, headers=admin(notifier)
    )
    assert (await response.json()) == {"lifted": True}
    later = an_appointment(customer={"email": snap.customer.email})
    await publish(booked(later))
    [mail] = await mails_to(sink, snap.customer.email)
    assert mail.subject.startswith("Terminbestätigung")


async def test_administrators_see_the_notifiers_dead_letters(start_notifier: StartNotifier) -> None:
    notifier = await start_notifier()
    assert (await notifier.client.get("/api/v1/admin/dead-letters")).status == 401
    response = await notifier.client.get("/api/v1/admin/dead-letters", headers=admin(notifier))
    assert response.status == 200
    assert await response.json() == []


async def test_the_dead_letter_list_refuses_a_flag_it_cannot_read(start_notifier: StartNotifier) -> None:
    """`include_replayed` is a boolean (the document says so): a value that is none is a 422 naming it,
    not quietly "false" (schemathesis sent `-4719` and got the list without the replayed ones)."""
    notifier = await start_notifier()
    for flag in ("true", "1", "false"):
        response = await notifier.client.get(
            "/api/v1/admin/dead-letters", params={"include_replayed": flag}, headers=admin(notifier)
        )
        assert response.status == 200, flag
    response = await notifier.client.get(
        "/api/v1/admin/dead-letters", params={"include_replayed": "-4719"}, headers=admin(notifier)
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"][0]["field"] == "include_replayed"


@pytest.mark.req("R45")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["waiting_opt_in", "waiting_confirmed"])
def test_the_wish_in_a_waiting_list_mail_is_a_paragraph_of_its_own(kind: str, language: str) -> None:
    context = waiting_mail.mail_context(
        kind, waiting_mail.sample_payload(language), public_base_url="https://termine.example"
    )
    text = render(default_templates(kind, language), context).text
    reference = context["reference"]
    after = text.split(reference, 1)[1]
    assert after.startswith("\n\n"), after[:40]  # a blank line between the wish and what follows


@pytest.mark.req("R26")
@pytest.mark.req("R43")
@pytest.mark.parametrize("kind", ["confirmation", "reminder", "reschedule", "transferred", "manage_link"])
def test_the_leichte_sprache_mail_names_the_interpreter_in_a_paragraph_of_its_own(kind: str) -> None:
    """As its HTML part does: run on after the booking number, the interpreter read as part of it."""
    context = mail_context(kind, sample_payload("de-x-ls"), public_base_url="https://termine.example")
    rendered = render(default_templates(kind, "de-x-ls"), context)
    assert "\n\nEine Person übersetzt für Sie.\nDie Sprache ist: Arabisch\n" in rendered.text
    assert "<p>Eine Person übersetzt für Sie.<br>\nDie Sprache ist: Arabisch</p>" in rendered.html


@pytest.mark.req("R45")
@pytest.mark.parametrize(
    ("language", "next_line"), [("de", "Bitte"), ("en", "Please"), ("de-x-ls", "Wollen")]
)
def test_the_offer_mail_asks_for_the_confirmation_in_a_paragraph_of_its_own(
    language: str, next_line: str
) -> None:
    context = waiting_mail.mail_context(
        "waiting_offer", waiting_mail.sample_payload(language), public_base_url="https://termine.example"
    )
    text = render(default_templates("waiting_offer", language), context).text
    assert f"\n\n{next_line}" in text and f"\n{next_line}" not in text.replace(f"\n\n{next_line}", "")


@pytest.mark.req("R25")
@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("mode", "news"),
    [("phone", "Der neue Termin ist am Telefon."), ("in_person", "Bitte kommen Sie zu dem neuen Ort.")],
)
def test_the_leichte_sprache_transfer_mail_tells_the_news_in_a_paragraph_of_its_own(
    mode: str, news: str
) -> None:
    """As its HTML part does: where the concern went, then, after a blank line, what that means for the
    customer, and that the old appointment is gone."""
    payload = sample_payload("de-x-ls")
    payload["appointment"]["mode"] = mode
    context = mail_context("transferred", payload, public_base_url="https://termine.example")
    text = render(default_templates("transferred", "de-x-ls"), context).text
    assert "zuständig.\n\n" in text, text
    paragraph = text.split("zuständig.\n\n", 1)[1].split("\n\n", 1)[0]
    assert paragraph.startswith(news) and paragraph.endswith("\nDer alte Termin gilt nicht mehr."), paragraph


@pytest.mark.req("R45")
@pytest.mark.parametrize("reason", ["latest_date", "offers_missed"])
@pytest.mark.parametrize(
    ("language", "way_back"),
    [("de", "Sie können jederzeit"), ("en", "You can book"), ("de-x-ls", "Sie können einen Termin buchen.")],
)
def test_the_mail_of_an_ended_wish_gives_the_way_back_in_a_paragraph_of_its_own(
    language: str, way_back: str, reason: str
) -> None:
    """As the HTML part does: why the wish ended, then, after a blank line, how to book again."""
    payload = waiting_mail.sample_payload(language)
    payload["reason"] = reason
    context = waiting_mail.mail_context("waiting_expired", payload, public_base_url="https://termine.example")
    text = render(default_templates("waiting_expired", language), context).text
    assert f"\n\n{way_back}" in text, text


@pytest.mark.req("R45")
@pytest.mark.req("R12")
@pytest.mark.parametrize(
    ("language", "note"),
    [
        ("de", "Hinweis: Abendtermine"),
        ("en", "Note: evening appointments"),
        ("de-x-ls", "Der Termin ist am Abend."),
    ],
)
def test_the_offer_of_an_evening_appointment_says_what_evenings_are_for_in_a_paragraph_of_its_own(
    language: str, note: str
) -> None:
    """As the HTML part does: not run on after the kind of appointment, as if it were part of the offer."""
    payload = waiting_mail.sample_payload(language)
    payload["offer"]["evening"] = True
    context = waiting_mail.mail_context("waiting_offer", payload, public_base_url="https://termine.example")
    text = render(default_templates("waiting_offer", language), context).text
    paragraph = text.split(f"\n\n{note}", 1)
    assert len(paragraph) == 2, text
    assert "\n\n" in paragraph[1], text  # and what follows is a paragraph of its own again


@pytest.mark.req("R45")
@pytest.mark.req("R42")
@pytest.mark.parametrize("language", ["de", "en"])
def test_the_html_offer_mail_labels_what_is_offered_as_the_plain_text_does(language: str) -> None:
    """A screen reader of the HTML part hears "Anliegen: ..." as the plain text says it, not the concern,
    the place and the kind of appointment as bare lines after the time."""
    context = waiting_mail.mail_context(
        "waiting_offer", waiting_mail.sample_payload(language), public_base_url="https://termine.example"
    )
    mail = render(default_templates("waiting_offer", language), context)
    labelled = re.findall(r"^(\w+): {2,}(.+)$", mail.text, re.MULTILINE)
    assert len(labelled) == 4, labelled
    for label, value in labelled:
        value_html = re.escape(html.escape(value, quote=False))
        row = rf'<th scope="row"[^>]*>{label}</th><td>(<strong>)?{value_html}(</strong>)?</td>'
        assert re.search(row, mail.html), (label, value, mail.html)


@pytest.mark.req("R45")
@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("language", "by_phone", "in_person"),
    [
        ("de", "Telefontermin", "Termin vor Ort"),
        ("en", "by phone", "in person"),
        ("de-x-ls", "Der Termin ist am Telefon.", "Der Termin ist im Jobcenter."),
    ],
)
def test_the_offer_mail_says_whether_the_appointment_is_by_phone_or_in_person(
    language: str, by_phone: str, in_person: str
) -> None:
    for mode, wanted, other in (("phone", by_phone, in_person), ("in_person", in_person, by_phone)):
        payload = waiting_mail.sample_payload(language)
        payload["wish"]["mode"] = mode
        context = waiting_mail.mail_context(
            "waiting_offer", payload, public_base_url="https://termine.example"
        )
        mail = render(default_templates("waiting_offer", language), context)
        for part in (mail.text, mail.html):
            assert wanted in part and other not in part, (mode, part)


@pytest.mark.req("R43")
@pytest.mark.req("R12")
def test_the_leichte_sprache_offer_of_an_evening_appointment_explains_what_a_massnahme_is() -> None:
    payload = waiting_mail.sample_payload("de-x-ls")
    payload["offer"]["evening"] = True
    context = waiting_mail.mail_context("waiting_offer", payload, public_base_url="https://termine.example")
    mail = render(default_templates("waiting_offer", "de-x-ls"), context)
    for part in (mail.text, mail.html):
        assert "Eine Maßnahme ist zum Beispiel ein Kurs vom Jobcenter." in part, part


@pytest.mark.req("R25")
@pytest.mark.parametrize(
    ("language", "come"),
    [("de", "Bitte kommen Sie zum neuen Standort"), ("en", "Please come"), ("de-x-ls", "Bitte kommen Sie")],
)
def test_the_transfer_mail_asks_to_come_only_to_an_appointment_in_person(language: str, come: str) -> None:
    payload = mail_sample(language)
    by_phone = render(default_templates("transferred", language), payload("phone"))
    in_person = render(default_templates("transferred", language), payload("in_person"))
    for part in (by_phone.text, by_phone.html):
        assert come not in part
    for part in (in_person.text, in_person.html):
        assert come in part


@pytest.mark.req("R4")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", [k for k in KINDS if not k.startswith("waiting_")])
def test_no_mail_of_a_phone_appointment_speaks_of_coming(kind: str, language: str) -> None:
    """Nobody comes to a phone appointment: "if you cannot come" reads as if the call were a visit."""
    by_phone = render(default_templates(kind, language), mail_sample(language, kind)("phone"))
    for part in (by_phone.text, by_phone.html):
        assert not re.search(r"\b(come|kommen)\b", part, re.IGNORECASE), part


@pytest.mark.req("R9")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_cancellation_of_an_appointment_in_person_does_not_ask_to_come(language: str) -> None:
    """A cancelled appointment is off: its mail names where it was, never "please come here"."""
    cancelled = render(
        default_templates("cancellation", language), mail_sample(language, "cancellation")("in_person")
    )
    for part in (cancelled.text, cancelled.html):
        assert not re.search(r"\b(please come|bitte kommen)\b", part, re.IGNORECASE), part


@pytest.mark.req("R10")
@pytest.mark.parametrize(
    ("language", "document"),
    [("de", "Personalausweis oder Reisepass"), ("en", "Identity card or passport"), ("de-x-ls", "Ausweis")],
)
def test_a_concern_without_documents_asks_for_the_id_in_the_mail_as_the_page_does(
    language: str, document: str
) -> None:
    payload = sample_payload(language)
    payload["appointment"]["documents"] = []
    mail = render(
        default_templates("confirmation", language),
        mail_context("confirmation", payload, public_base_url="https://termine.example"),
    )
    for part in (mail.text, mail.html):
        assert document in part, part


@pytest.mark.req("R44")
@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("language", "moved", "cancelled", "handed"),
    [
        (
            "de",
            "zur bisherigen Zeit leider nicht",
            "kein gleichwertiger Termin frei",
            "an Bremen-Nord übergeben",
        ),
        (
            "en",
            "cannot offer your appointment at the original time",
            "no equivalent",
            "handed over to Bremen-Nord",
        ),
        ("de-x-ls", "zu der alten Zeit leider keinen Termin", "keinen anderen passenden", "Standort kümmert"),
    ],
)
def test_what_the_jobcenter_changed_on_its_own_is_explained_in_the_customer_s_language(
    language: str, moved: str, cancelled: str, handed: str
) -> None:
    """The system's reasons travel as codes: an English or Leichte Sprache reader is not given the German
    text staff read in the file."""
    german = "Der Standort kann Ihren Termin an diesem Tag leider nicht anbieten"

    def text_of(kind: str, **extra: str) -> str:
        payload = {**sample_payload(language), **extra}
        return render(
            default_templates(kind, language),
            mail_context(kind, payload, public_base_url="https://t.example"),
        ).text

    assert moved in text_of("reschedule", reason_code="mass_change")
    assert moved not in text_of("reschedule")  # a move the customer asked for needs no excuse
    mass = text_of("cancellation", reason_code="mass_change", cancelled_by="staff", reason=german + ".")
    assert cancelled in mass and (language == "de" or german not in mass)
    handed_over = text_of(
        "cancellation", reason_code="handed_over", handed_to="Bremen-Nord", cancelled_by="staff", reason="x"
    )
    assert handed in handed_over and "Bremen-Nord" in handed_over


def mail_sample(language: str, kind: str = "transferred") -> Any:
    def context(mode: str) -> dict[str, Any]:
        payload = sample_payload(language)
        payload["appointment"]["mode"] = mode
        return mail_context(kind, payload, public_base_url="https://termine.example")

    return context


@pytest.mark.req("R34")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_mail_links_the_privacy_notice_and_gives_the_hotline(kind: str, language: str) -> None:
    """A customer booked by phone never saw the form that links the privacy notice (Art. 13 GDPR)."""
    if kind.startswith("waiting_"):
        payload = waiting_mail.sample_payload(language)
        context = waiting_mail.mail_context(kind, payload, public_base_url="https://termine.example")
    else:
        context = mail_context(kind, sample_payload(language), public_base_url="https://termine.example")
    rendered = render(default_templates(kind, language), context)
    link = f"https://termine.example/privacy?lang={language}"
    assert f": {link}\n" in rendered.text
    assert f'<a href="{link}">' in rendered.html
    # ... and gives the number to call with questions: the mails ask not to reply.
    assert "0421 566-0" in rendered.text and ">0421 566-0</a>" in rendered.html


@pytest.mark.req("R45")
@pytest.mark.parametrize(
    ("language", "subject", "said"),
    [
        (
            "de",
            "Das Angebot für den Termin am {date} im Jobcenter Bremen ist abgelaufen",
            "Sie haben den angebotenen Termin am {date} um",
        ),
        (
            "en",
            "The offer of the appointment on {date} at Jobcenter Bremen has expired",
            "We offered you the appointment on {date} at",
        ),
    ],
)
def test_the_expired_offer_mail_names_the_day_of_the_appointment_not_of_the_offer(
    language: str, subject: str, said: str
) -> None:
    context = waiting_mail.mail_context(
        "waiting_offer_expired",
        waiting_mail.sample_payload(language),
        public_base_url="https://termine.example",
    )
    mail = render(default_templates("waiting_offer_expired", language), context)
    assert mail.subject == subject.format(date=context["date"])
    for part in (mail.text, mail.html):
        assert said.format(date=context["date"]) in part
        assert "Terminangebot vom" not in part and "offered on" not in part


@pytest.mark.req("R43")
@pytest.mark.parametrize("kind", ["confirmation", "waiting_confirmed", "waiting_offer"])
def test_leichte_sprache_mails_use_the_words_of_the_pages(kind: str) -> None:
    """The pages say Buchungs·nummer, Anliegen and Standort; the service centre asks for these words."""
    if kind.startswith("waiting_"):
        payload = waiting_mail.sample_payload("de-x-ls")
        context = waiting_mail.mail_context(kind, payload, public_base_url="https://termine.example")
        wanted = [f"Anliegen: {context['concern']}", f"Standort: {context['location_name']}"]
    else:
        context = mail_context(kind, sample_payload("de-x-ls"), public_base_url="https://termine.example")
        wanted = [f"Die Buchungs·nummer ist: {context['reference']}"]
    mail = render(default_templates(kind, "de-x-ls"), context)
    for part in (mail.text, mail.html):
        assert all(words in part for words in wanted), (wanted, part)
        assert not re.search(r"Termin-Nummer|\bThema:|(?<!Stand)\bOrt:", part)


@pytest.mark.req("R43")
@pytest.mark.parametrize("kind", KINDS)
def test_an_english_mail_starts_its_first_sentence_with_a_capital_and_says_what_evenings_are_for(
    kind: str,
) -> None:
    """After "Dear X," English goes on with a capital letter (the German rule is lower case)."""
    if kind.startswith("waiting_"):
        payload = waiting_mail.sample_payload("en")
        context = waiting_mail.mail_context(kind, payload, public_base_url="https://termine.example")
    else:
        context = mail_context(kind, sample_payload("en"), public_base_url="https://termine.example")
    context["evening"] = True
    mail = render(default_templates(kind, "en"), context)
    first = re.search(r"Dear [^\n]*,\n\n(.)", mail.text)
    assert first and first.group(1).isupper(), mail.text[:120]
    assert not re.search(r"<p>[a-z]", mail.html), mail.html
    for part in (mail.text, mail.html):
        assert "measure" not in part and "6 pm" not in part


@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_no_mail_calls_the_location_an_office(kind: str, language: str) -> None:
    """The pages say Standort / Location (in Leichte Sprache too); the mails use the same word."""
    if kind.startswith("waiting_"):
        payload = waiting_mail.sample_payload(language)
        payload["wish"]["location_name"] = "Mitte"  # a location's own name may say Geschäftsstelle
        context = waiting_mail.mail_context(kind, payload, public_base_url="https://termine.example")
    else:
        payload = sample_payload(language)
        payload["appointment"]["location_name"] = "Mitte"
        context = mail_context(kind, payload, public_base_url="https://termine.example")
    mail = render(default_templates(kind, language), context)
    for part in (mail.subject, mail.text, mail.html):
        assert "Geschäftsstelle" not in part
        assert not re.search(r"\boffice\b", part, re.IGNORECASE), part


@pytest.mark.req("R45")
@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("language", "label"), [("de", "Standort"), ("en", "Location"), ("de-x-ls", "Standort")]
)
@pytest.mark.parametrize("kind", ["waiting_opt_in", "waiting_offer"])
def test_the_waiting_list_mails_name_the_place_as_the_pages_do(kind: str, language: str, label: str) -> None:
    payload = waiting_mail.sample_payload(language)
    payload["wish"]["location_name"] = "Mitte"
    context = waiting_mail.mail_context(kind, payload, public_base_url="https://termine.example")
    mail = render(default_templates(kind, language), context)
    assert re.search(rf"{label}:\s+Mitte", mail.text), mail.text
    if kind != "waiting_offer":  # whose HTML shows the place without a label, below the time
        assert re.search(rf"{label}(</th><td>|: )Mitte", mail.html), mail.html


@pytest.mark.req("R43")
@pytest.mark.req("R52")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_subject_names_the_jobcenter_and_nothing_personal(kind: str, language: str) -> None:
    """In an inbox full of mail the sender's name alone may not say who writes about what: every subject
    names the jobcenter, the waiting list's as the appointments' (in Leichte Sprache too), never the
    customer or the concern (R52)."""
    if kind.startswith("waiting_"):
        payload = waiting_mail.sample_payload(language)
        context = waiting_mail.mail_context(kind, payload, public_base_url="https://termine.example")
        customer = payload["wish"]["customer"]
    else:
        payload = sample_payload(language)
        context = mail_context(kind, payload, public_base_url="https://termine.example")
        customer = payload["appointment"]["customer"]
    subject = render(default_templates(kind, language), context).subject
    assert re.search(r"\bJobcenters? Bremen\b", subject), subject  # (German "des Jobcenters")
    personal = [customer["last_name"], customer["email"], context["concern"], context["location_address"]]
    assert not [value for value in personal if value and value.lower() in subject.lower()], subject


@pytest.mark.req("R43")
@pytest.mark.req("R52")
@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("confirmation", "Ihr Termin im Jobcenter Bremen ist gebucht: am {date} um {start_time} Uhr"),
        ("reminder", "Erinnerung: Ihr Termin im Jobcenter Bremen ist am {date} um {start_time} Uhr"),
        ("reschedule", "Ihr Termin im Jobcenter Bremen ist jetzt am {date} um {start_time} Uhr"),
        ("cancellation", "Ihr Termin im Jobcenter Bremen am {date} ist abgesagt"),
        (
            "transferred",
            "Ihr Termin im Jobcenter Bremen am {date} um {start_time} Uhr ist jetzt an einem anderen Ort",
        ),
        ("manage_link", "Ihr neuer Link für Ihren Termin im Jobcenter Bremen am {date}"),
        ("waiting_opt_in", "Die Warte·liste im Jobcenter Bremen: Bitte bestätigen Sie Ihre Anmeldung"),
        (
            "waiting_offer_expired",
            "Die Warte·liste im Jobcenter Bremen: Das Angebot für den Termin am {date} ist vorbei",
        ),
    ],
)
def test_leichte_sprache_subjects_say_in_one_plain_sentence_what_happened_to_which_appointment(
    kind: str, subject: str
) -> None:
    """A customer with two appointments tells the mails apart by the day in the subject (the cancellation's
    too), and Leichte Sprache says it as a plain statement: not "Bestätigung für den Dienstag, ...", not a
    fragment like "an einem anderen Ort" or "Bitte bestätigen Sie" without what to confirm. The day and
    time are no personal data; the name, address and concern stay out (R52)."""
    if kind.startswith("waiting_"):
        payload = waiting_mail.sample_payload("de-x-ls")
        context = waiting_mail.mail_context(kind, payload, public_base_url="https://termine.example")
    else:
        context = mail_context(kind, sample_payload("de-x-ls"), public_base_url="https://termine.example")
    mail = render(default_templates(kind, "de-x-ls"), context)
    assert mail.subject == subject.format(date=context["date"], start_time=context["start_time"])
    assert not re.search(
        r"\b(?:für|an) den (?:Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|Sonntag)", mail.subject
    )
