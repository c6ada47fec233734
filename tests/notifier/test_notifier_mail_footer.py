"""The foot of every customer mail (R10, R34, R43): whether a reply reaches anybody, as the operator set
it up (OTV_MAIL_REPLY_TO), said alike in the plain text and the HTML of every kind and language, also by an
administrator's text kept from an earlier release; the hotline as a link a phone can dial."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.notifier import texts, waiting_mail
from services.notifier.sender import MailSender
from services.notifier.service import current_templates
from shared.clock import SystemClock
from shared.events.mail import MailKind
from shared.phone import tel_uri
from tests.notifier.conftest import an_appointment, notifier_settings
from tests.notifier.test_notifier_mail_format import _Html, check_mail, claimed_mail, part, personal_data
from tools.mailsink import StoredMessage

LANGUAGES = ("de", "de-x-ls", "en")
KINDS = [kind.value for kind in MailKind]
READ = "termine@jobcenter.example"
# What the foot says, per language: the mail asks for no reply, or tells that a reply reaches the jobcenter.
NO_REPLY = {
    "de": "Bitte antworten Sie nicht auf diese E-Mail.",
    "de-x-ls": "Bitte antworten Sie nicht auf diese E-Mail.",
    "en": "Please do not reply to it.",
}
REPLY_READ = {
    "de": "Ihre Antwort auf diese E-Mail erreicht das Jobcenter Bremen.",
    "de-x-ls": "Sie können auf diese E-Mail antworten. Dann bekommt das Jobcenter Bremen Ihre Antwort.",
    "en": "Your reply to it reaches Jobcenter Bremen.",
}
MIGRATION = Path(texts.__file__).parent / "migrations" / "012_shared_mail_footer.sql"


def _payload(kind: str, language: str) -> tuple[dict[str, Any], list[str]]:
    if kind in waiting_mail.KINDS:
        payload = waiting_mail.sample_payload(language)
        wish = payload["wish"]
        return payload, [wish["customer"]["last_name"], wish["customer"]["email"], wish["concern_name"]]
    snap = an_appointment(language=language, mode="phone")
    payload = {"appointment": snap.model_dump(mode="json"), "cancelled_by": "staff", "reason": "Krank"}
    payload["previous_start"] = (snap.start - timedelta(days=1)).isoformat()
    return payload, personal_data(snap)


async def _mail(
    pool: asyncpg.Pool,
    kind: str,
    language: str,
    *,
    reply_to: str | None,
    templates: texts.TemplateSet | None = None,
) -> tuple[StoredMessage, list[str]]:
    settings = notifier_settings(25, mail_reply_to=reply_to)
    payload, personal = _payload(kind, language)
    chosen = templates or texts.default_templates(kind, language)
    wire = await MailSender(pool, settings, SystemClock()).build_message(
        claimed_mail(kind, language, payload, chosen, correlation_id="cid-footer")
    )
    return StoredMessage(1, datetime.now(UTC), "", ("erika@example.org",), wire), personal


def _foot(message: StoredMessage) -> tuple[str, str]:
    page = _Html()
    page.feed(part(message, "html"))
    return " ".join(part(message, "plain").split()), " ".join(page.footer)


@pytest.mark.req("R10")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reply_to", [None, READ], ids=["no-reply-to", "reply-to-read"])
async def test_the_foot_of_every_mail_says_whether_a_reply_reaches_the_jobcenter(
    pools: dict[str, asyncpg.Pool], kind: str, language: str, reply_to: str | None
) -> None:
    message, personal = await _mail(pools["notifier"], kind, language, reply_to=reply_to)
    check_mail(message, language=language, personal=personal, correlation_id="cid-footer")
    assert message.parsed["Reply-To"] == reply_to
    said, other = (REPLY_READ, NO_REPLY) if reply_to else (NO_REPLY, REPLY_READ)
    for where, foot in zip(("text", "html"), _foot(message), strict=True):
        assert said[language] in foot, (where, foot)
        assert other[language] not in foot, (where, foot)


def _as_shipped_before(language: str, text: str) -> str:
    """A plain text as the shipped one read before the foot was shared: the foot written out in it."""
    foot = (texts.TEMPLATE_DIR / language / "_footer.txt.j2").read_text(encoding="utf-8")
    first = {
        "de": "Diese E-Mail wurde automatisch erstellt. ",
        "de-x-ls": "Ein Computer hat diese E-Mail geschrieben.\n",
        "en": "This e-mail was sent automatically. ",
    }[language]
    words = first + NO_REPLY[language] + "\n"
    last_lines = "".join(foot.splitlines(keepends=True)[-2:])  # the hotline and the privacy notice
    include = f'{{% include "{language}/_footer.txt.j2" %}}\n'
    assert text.endswith(include)
    return text[: -len(include)] + words + last_lines


@pytest.mark.req("R10")
@pytest.mark.parametrize("language", LANGUAGES)
async def test_an_administrators_text_that_kept_the_old_foot_follows_the_reply_setting_after_the_upgrade(
    pools: dict[str, asyncpg.Pool], language: str
) -> None:
    """Stored texts are whole templates: one saved from the old shipped text wrote the foot out. The
    migration lets it include the shared foot; what the administrator changed stays."""
    pool = pools["notifier"]
    shipped = texts.default_templates("confirmation", language)
    old_text = "Neu: Bitte 10 Minuten früher kommen.\n" + _as_shipped_before(language, shipped.text)
    changed_foot = old_text.replace("{{ hotline }}", "{{ hotline }} (Mo-Fr)")
    async with pool.acquire() as conn:
        in_test = conn.transaction()  # rolled back: the stored texts stay as they were
        await in_test.start()
        try:
            await conn.execute("DELETE FROM mail_templates WHERE language = $1", language)
            for kind, text in (("confirmation", old_text), ("reminder", changed_foot)):
                await conn.execute(
                    "INSERT INTO mail_templates (kind, language, subject, body_text, body_html)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    kind,
                    language,
                    shipped.subject,
                    text,
                    shipped.html,
                )
            await conn.execute(MIGRATION.read_text(encoding="utf-8"))
            stored = await current_templates(conn, "confirmation", language)
            kept = await current_templates(conn, "reminder", language)
        finally:
            await in_test.rollback()
    assert stored.text.startswith("Neu: Bitte 10 Minuten früher kommen.\n")
    assert stored.text.endswith(f'{{% include "{language}/_footer.txt.j2" %}}\n')
    assert kept.text == changed_foot  # a foot the administrator changed is theirs
    message, _ = await _mail(pool, "confirmation", language, reply_to=READ, templates=stored)
    text, html = _foot(message)
    assert REPLY_READ[language] in text and NO_REPLY[language] not in text
    assert REPLY_READ[language] in html
    # Without a read mailbox the migrated text reads exactly as the stored one did before the upgrade.
    context = texts.mail_context(
        "confirmation", texts.sample_payload(language), public_base_url="https://termine.example"
    )
    before = texts.TemplateSet(shipped.subject, old_text, shipped.html)
    assert texts.render(stored, context) == texts.render(before, context)


@pytest.mark.req("R34")
@pytest.mark.parametrize(
    ("number", "uri"),
    [
        ("0421 566-0", "tel:+494215660"),
        ("0421/361-0", "tel:+494213610"),
        ("(0421) 566 0", "tel:+494215660"),
        ("+49 421 566-0", "tel:+494215660"),
        ("+49 (0)421 566-0", "tel:+494215660"),
        ("0049 421 5660", "tel:+494215660"),
        ("+43 1 711 00", "tel:+43171100"),
        ("115", None),  # a short number: no global form
        ("566-0", None),  # no area code
        ("0800 ANRUFEN", None),
        ("", None),
    ],
)
def test_a_configured_number_becomes_a_global_tel_uri_or_none(number: str, uri: str | None) -> None:
    assert tel_uri(number) == uri


@pytest.mark.req("R34")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("hotline", "href"),
    [("0421 566-0", "tel:+494215660"), ("+49 (0)421 361-0", "tel:+494213610"), ("115", None)],
)
def test_the_hotline_in_the_mail_dials_as_a_global_number_or_is_plain_text(
    language: str, hotline: str, href: str | None
) -> None:
    for kind in ("confirmation", "waiting_offer"):
        if kind in waiting_mail.KINDS:
            payload = waiting_mail.sample_payload(language)
            context = waiting_mail.mail_context(
                kind, payload, public_base_url="https://termine.example", hotline=hotline
            )
        else:
            payload = texts.sample_payload(language)
            context = texts.mail_context(
                kind, payload, public_base_url="https://termine.example", hotline=hotline
            )
        html = texts.render(texts.default_templates(kind, language), context).html
        links = [h for h in html.split('href="')[1:] if h.startswith("tel:")]
        if href is None:
            assert not links and hotline in html
        else:
            assert [h.split('"', 1)[0] for h in links] == [href]
            assert f'<a href="{href}">{hotline}</a>' in html
