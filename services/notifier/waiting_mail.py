"""The waiting list's mails (R45, issue 11): planned from `waiting.*` events with the consumer's inbox
(I3), rendered from the notifier's templates (`templates/<language>/waiting_*.j2`, editable by
administrators like every text, R10), sent by the existing sender.

| event                 | mail                    |
|-----------------------|-------------------------|
| waiting.registered    | waiting_opt_in (the double opt-in link) |
| waiting.confirmed     | waiting_confirmed       |
| waiting.offered       | waiting_offer (given up when the offer runs out) |
| waiting.offer_expired | waiting_offer_expired (only when the offer's own mail was sent) |
| waiting.expired       | waiting_expired (not for a wish whose address was never confirmed) |
| waiting.withdrawn     | waiting_withdrawn (not when a new registration replaced it) |
| waiting.fulfilled     | none: the booking's confirmation says it all |

Every mail but the last ones carries the withdraw link. The link's token comes only with
`waiting.registered`; it is kept in `waiting_wishes` until the wish ends. Subjects never name the concern
(R52): they get the same reduced context as the appointment mails.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import jinja2
import structlog
from aiohttp import web
from babel.dates import format_date

from services.notifier import db, message, texts
from services.notifier.config import Settings
from services.notifier.domain import address_hash
from shared.clock import Clock
from shared.consumer import Handler
from shared.erasure import erase_dead_letters
from shared.events import Envelope
from shared.events.mail import MailKind
from shared.events.waiting_list import (
    EndReason,
    OfferSnapshot,
    WaitingExpiredV1,
    WaitingOfferedV1,
    WaitingOfferExpiredV1,
    WaitingPersonalDataErasedV1,
    WaitingWithdrawnV1,
    WishSnapshot,
    WishStatus,
)
from shared.languages import babel_locale, nearest_built_in
from shared.links import in_language
from shared.web import CLOCK, SETTINGS

log = structlog.get_logger(__name__)

KINDS: frozenset[str] = frozenset(kind.value for kind in MailKind if kind.value.startswith("waiting_"))

_MAIL_OF_EVENT = {
    "waiting.registered": MailKind.WAITING_OPT_IN,
    "waiting.confirmed": MailKind.WAITING_CONFIRMED,
    "waiting.offered": MailKind.WAITING_OFFER,
    "waiting.offer_expired": MailKind.WAITING_OFFER_EXPIRED,
    "waiting.expired": MailKind.WAITING_EXPIRED,
    "waiting.withdrawn": MailKind.WAITING_WITHDRAWN,
}
_ENDED = (WishStatus.BOOKED, WishStatus.WITHDRAWN, WishStatus.EXPIRED)
_SILENT_REASONS = (EndReason.REPLACED, EndReason.NOT_CONFIRMED)


class RegistrationNotYetApplied(Exception):
    """A later event of a wish overtook its `waiting.registered`: retried after a back-off."""


# -- planning ------------------------------------------------------------------------------------------


def handlers(app: web.Application) -> dict[str, Handler]:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the notifier's own settings

    async def on_wish(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        await apply_waiting_event(conn, envelope, data, clock=app[CLOCK], settings=settings)

    async def on_erased(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        assert isinstance(data, WaitingPersonalDataErasedV1)  # noqa: S101 -- the registry's model
        await erase_wish(conn, data.wish_id, app[CLOCK].now())

    found: dict[str, Handler] = dict.fromkeys(
        (*_MAIL_OF_EVENT, "waiting.fulfilled"),
        on_wish,
    )
    found["waiting.personal_data_erased"] = on_erased
    return found


def _mail_kind(event_type: str, data: Any) -> MailKind | None:
    kind = _MAIL_OF_EVENT.get(event_type)
    if isinstance(data, WaitingWithdrawnV1 | WaitingExpiredV1) and data.reason in _SILENT_REASONS:
        return None
    return kind


async def apply_waiting_event(
    conn: asyncpg.Connection, envelope: Envelope, data: Any, *, clock: Clock, settings: Settings
) -> MailKind | None:
    """Keep the newest revision of the wish and plan the mail of this change; a stale event (overtaken
    by a newer one: an offer after the withdrawal) plans nothing."""
    wish: WishSnapshot = data.wish
    now = clock.now()
    row = await conn.fetchrow(
        "SELECT revision, page_url, erased_at FROM waiting_wishes WHERE id = $1 FOR UPDATE", wish.id
    )
    if row is not None and row["erased_at"] is not None:
        # Erased (Art. 17 GDPR, R34): a late or repeated event brings nothing back and sends nothing.
        log.info("wish_event_after_erasure", event_type=envelope.type, wish_id=str(wish.id))
        return None
    if envelope.type == "waiting.registered":
        if row is not None:
            return None
        link: str | None = wish.page_url
        await conn.execute(
            "INSERT INTO waiting_wishes (id, revision, page_url, updated_at) VALUES ($1, $2, $3, $4)",
            wish.id,
            wish.revision,
            link,
            now,
        )
    else:
        if row is None:
            raise RegistrationNotYetApplied(str(wish.id))
        if wish.revision <= row["revision"]:
            log.info(
                "wish_event_stale", event_type=envelope.type, wish_id=str(wish.id), revision=wish.revision
            )
            return None
        link = row["page_url"]
        ended = wish.status in _ENDED
        await conn.execute(
            "UPDATE waiting_wishes SET revision = $2, updated_at = $3,"
            " page_url = CASE WHEN $4 THEN NULL ELSE page_url END WHERE id = $1",
            wish.id,
            wish.revision,
            now,
            ended,
        )
        if ended:
            await _end_mails(conn, envelope.type, wish, now)
    kind = _mail_kind(envelope.type, data)
    if isinstance(data, WaitingOfferExpiredV1) and not await _offer_mail_sent(conn, wish, data.offer):
        # R45: no "your offer has expired" about an offer the customer never saw (the relay refused its
        # mail until the offer's end, the address is suppressed, it was never sent).
        log.info("wish_offer_expired_without_mail", wish_id=str(wish.id), revision=wish.revision)
        kind = None
    recipient = wish.customer.email.strip()
    if kind is None or not recipient or link is None:
        return None
    payload: dict[str, Any] = {"wish": {**wish.model_dump(mode="json"), "page_url": link}}
    deadline = now + timedelta(hours=settings.mail_give_up_hours)
    if isinstance(data, WaitingOfferedV1 | WaitingOfferExpiredV1):
        payload["offer"] = data.offer.model_dump(mode="json")
        if isinstance(data, WaitingOfferedV1):
            deadline = min(deadline, data.offer.expires_at)  # an offer mail after its offer is useless
    if isinstance(data, WaitingExpiredV1 | WaitingWithdrawnV1):
        payload["reason"] = data.reason.value
    inserted = await db.insert_mails(
        conn,
        appointment_id=wish.id,
        planned=[(kind.value, now, deadline)],
        revision=wish.revision,
        language=wish.customer_language,
        recipient=recipient,
        recipient_hash=address_hash(recipient, settings.mail_hash_key),
        payload=payload,
        correlation_id=envelope.correlation_id,
        now=now,
    )
    log.info("wish_mail_planned", wish_id=str(wish.id), revision=wish.revision, kind=kind.value)
    return kind if inserted else None


async def _offer_mail_sent(conn: asyncpg.Connection, wish: WishSnapshot, offer: OfferSnapshot) -> bool:
    """Whether the mail of this offer went out. It is the wish's offer mail of the offer's revision (of
    events before booking sent it: the newest offer mail before the expiry, one open offer at a time).
    One a sender is delivering at this moment, or one past its deadline not yet given up, has not."""
    if offer.offered_revision is not None:
        status = await conn.fetchval(
            "SELECT status FROM mails WHERE appointment_id = $1 AND kind = $2 AND revision = $3",
            wish.id,
            MailKind.WAITING_OFFER.value,
            offer.offered_revision,
        )
    else:
        status = await conn.fetchval(
            "SELECT status FROM mails WHERE appointment_id = $1 AND kind = $2 AND revision < $3"
            " ORDER BY revision DESC LIMIT 1",
            wish.id,
            MailKind.WAITING_OFFER.value,
            wish.revision,
        )
    return bool(status == "sent")


async def _end_mails(conn: asyncpg.Connection, event_type: str, wish: WishSnapshot, now: datetime) -> None:
    """Nothing still to go out about an ended wish may arrive after its end (an offer after the
    withdrawal): the mails waiting are cancelled; one a sender is delivering this moment stays with it,
    marked as superseded, so that a failed attempt cancels it instead of trying again, and so does a
    sender taking it over once the lease has run out (as for appointments: `db.cancel_superseded_mails`)."""
    ended = await db.cancel_superseded_mails(
        conn, wish.id, now, sorted(KINDS), revision=wish.revision, mark_in_delivery=True
    )
    if ended:
        log.info(
            "wish_mails_superseded",
            event_type=event_type,
            wish_id=str(wish.id),
            revision=wish.revision,
            cancelled=[row["kind"] for row in ended if not row["held"]],
            in_delivery=[row["kind"] for row in ended if row["held"]],
        )


async def erase_wish(conn: asyncpg.Connection, wish_id: uuid.UUID, now: datetime) -> None:
    """Booking erased the wish's personal data (R34, or a request under Art. 17 GDPR): so do we, with the
    keyed hash of the address, and every mail still to go is not sent. The wish's row stays without its
    link, marked erased, so that an event of the wish arriving later (in any order, or twice) is ignored
    instead of planning a mail again; the retention job deletes such rows.

    A mail a sender is delivering at this moment stays with that sender (as in the appointment's
    erasure): taking it away would record a delivered mail as cancelled and never publish `mail.sent`.
    Its data are wiped all the same (the sender has its copy), and it is marked superseded, so that a
    failed attempt cancels it instead of trying again, and a sender taking it over sends nothing. The
    wish's events among the dead letters keep no personal data either."""
    await conn.execute(
        "INSERT INTO waiting_wishes (id, revision, page_url, updated_at, erased_at)"
        " VALUES ($1, 0, NULL, $2, $2)"
        " ON CONFLICT (id) DO UPDATE SET page_url = NULL, updated_at = $2,"
        " erased_at = coalesce(waiting_wishes.erased_at, $2)",
        wish_id,
        now,
    )
    await conn.execute(
        "UPDATE mails m SET recipient = NULL, payload = NULL, recipient_hash = '',"
        " status = CASE WHEN old.held THEN m.status WHEN m.status = 'pending' THEN 'cancelled'"
        "   ELSE m.status END,"
        " finished_at = CASE WHEN old.held THEN m.finished_at ELSE coalesce(m.finished_at, $2) END,"
        " superseded_by = CASE WHEN old.held THEN coalesce(m.superseded_by, m.revision + 1)"
        "   ELSE m.superseded_by END,"
        " claim_token = CASE WHEN old.held THEN m.claim_token END,"
        " claimed_until = CASE WHEN old.held THEN m.claimed_until END"
        " FROM (SELECT id, status = 'pending' AND coalesce(claimed_until > $2, false) AS held FROM mails"
        "   WHERE appointment_id = $1 FOR UPDATE) old"
        " WHERE m.id = old.id",
        wish_id,
        now,
    )
    await db.delete_suppressions_of(conn, wish_id)
    await erase_dead_letters(conn, wish_id, now)


# -- rendering -----------------------------------------------------------------------------------------


def _link(page_url: str, action: str, language: str) -> str:
    """`<base>/waiting-list/{id}/<action>?token=...` (and the language for the page, R43)."""
    page, _, query = page_url.partition("?")
    target = f"{page}/{action}" if action else page
    return in_language(f"{target}?{query}" if query else target, language)


def _weekdays(days: list[int], language: str) -> str:
    locale = babel_locale(language)
    monday = date(2024, 1, 1)
    return ", ".join(format_date(monday + timedelta(days=d), format="EEEE", locale=locale) for d in days)


def mail_context(
    kind: str,
    payload: dict[str, Any],
    *,
    public_base_url: str,
    hotline: str = texts.SAMPLE_HOTLINE,
    replies_read: bool = False,
) -> dict[str, Any]:
    wish = WishSnapshot.model_validate(payload["wish"])
    # As an appointment's mails (texts.mail_context): the texts in the notifier's nearest language, the
    # links in the customer's own.
    language = texts.language_of(wish.customer_language)
    pages_language = wish.customer_language
    offer = OfferSnapshot.model_validate(payload["offer"]) if payload.get("offer") else None
    base = (
        wish.page_url.split("/waiting-list/", 1)[0] if "/waiting-list/" in wish.page_url else public_base_url
    )
    start = offer.start if offer is not None else None
    confirm_by = wish.confirm_by
    context: dict[str, Any] = {
        "kind": kind,
        "language": language,
        "reference": wish.reference,
        "date": texts._date(start, language) if start else "",
        "start_time": texts._time(start, language) if start else "",
        "end_time": texts._time(offer.end, language) if offer else "",
        "expires_date": texts._date(offer.expires_at, language) if offer else "",
        "expires_time": texts._time(offer.expires_at, language) if offer else "",
        "evening": bool(offer and offer.evening),
        # Until when the opt-in link works (R45): empty in a mail of an event that did not say it.
        "confirm_date": texts._date(confirm_by, language) if confirm_by else "",
        "confirm_time": texts._time(confirm_by, language) if confirm_by else "",
        "first_name": wish.customer.first_name,
        "last_name": wish.customer.last_name,
        "name": f"{wish.customer.first_name} {wish.customer.last_name}".strip(),
        "location_name": wish.location_name,
        "location_address": wish.location_address,
        "concern": wish.concern_name,
        "mode": wish.mode.value,
        "is_phone": wish.mode.value == "phone",
        "weekdays": _weekdays(wish.weekdays, language),
        # A wish for mornings starts at no particular time: "from 00:00" would only confuse.
        "earliest": wish.earliest.strftime("%H:%M") if wish.earliest and wish.earliest != time.min else "",
        "latest": wish.latest.strftime("%H:%M") if wish.latest else "",
        "latest_date": format_date(wish.latest_date, format="full", locale=babel_locale(language)),
        "page_url": _link(wish.page_url, "", pages_language),
        "confirm_url": _link(wish.page_url, "confirm", pages_language),
        "withdraw_url": _link(wish.page_url, "withdraw", pages_language),
        "offer_url": _link(wish.page_url, "offer", pages_language),
        "book_again_url": texts.book_again_url(base, pages_language),
        "privacy_url": texts.privacy_url(base, pages_language),
        **texts.footer_context(hotline, replies_read=replies_read),
        "reason": str(payload.get("reason") or ""),
    }
    return context


async def build_message(pool: asyncpg.Pool, settings: Settings, clock: Clock, mail: Any) -> bytes:
    """The MIME message (as sent) of a waiting-list mail (the sender's `build_message` hands these here)."""
    from services.notifier import service

    language = texts.language_of(mail.language)
    context = mail_context(
        mail.kind.value,
        mail.payload,
        public_base_url=settings.public_base_url,
        hotline=settings.hotline,
        replies_read=bool(settings.mail_reply_to),
    )
    current = mail.templates or await service.current_templates(pool, mail.kind.value, language)
    try:
        rendered = texts.render(current, context)
    except texts.TemplateProblem as exc:
        log.error("mail_template_fallback", kind=mail.kind.value, language=language, field=exc.field)
        rendered = texts.render(texts.default_templates(mail.kind.value, language), context)
    return message.compose(
        mail_id=mail.id,
        rendered=rendered,
        mail_from=settings.mail_from,
        reply_to=settings.mail_reply_to,
        recipient_name=context["name"],
        recipient_address=mail.recipient,
        language=language,
        correlation_id=mail.correlation_id,
        domain=settings.mail_domain,
        date=clock.now(),
    )


# -- validation of an administrator's text (R10) --------------------------------------------------------

_REQUIRED_LINK = {
    MailKind.WAITING_OPT_IN.value: "confirm_url",
    MailKind.WAITING_CONFIRMED.value: "withdraw_url",
    MailKind.WAITING_OFFER.value: "offer_url",
    MailKind.WAITING_OFFER_EXPIRED.value: "withdraw_url",
    MailKind.WAITING_EXPIRED.value: "book_again_url",
    MailKind.WAITING_WITHDRAWN.value: "book_again_url",
}


def sample_payload(language: str) -> dict[str, Any]:
    start = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    return {
        "wish": {
            "id": str(uuid.UUID(int=2)),
            "reference": "OTV-SAMPLE",
            "revision": 3,
            "status": "offered",
            "location_id": "mitte",
            "location_name": "Geschäftsstelle Mitte",
            "location_address": "Doventorsteinweg 48-52, 28195 Bremen",
            "concern_id": "sample",
            "concern_name": texts.SAMPLE_CONCERN,
            "sensitive": True,
            "mode": "phone",
            "weekdays": [0, 2],
            "earliest": "08:00:00",
            "latest": "12:00:00",
            "latest_date": "2026-03-31",
            "language": nearest_built_in(language).value,
            "language_tag": language,
            "customer": {"first_name": "<b>Erika</b>", "last_name": "Müller", "email": "erika@example.org"},
            "page_url": "https://termine.example/waiting-list/sample?token=sample-token",
            "registered_at": (start - timedelta(days=3)).isoformat(),
            "confirm_by": (start - timedelta(days=1)).isoformat(),
        },
        "offer": {
            "id": str(uuid.UUID(int=3)),
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "expires_at": (start - timedelta(hours=20)).isoformat(),
            "evening": False,
        },
        "reason": "latest_date",
    }


def validate(kind: str, language: str, templates: texts.TemplateSet) -> list[dict[str, str]]:
    """The checks of `texts.validate` for the waiting list's kinds: compiles and renders in the sandbox,
    the subject does not name the concern (R52), the body carries the link the mail is for."""
    problems: list[dict[str, str]] = []
    for field in texts.PARTS:
        try:
            texts._compile(getattr(templates, field), field == "html")
        except jinja2.TemplateSyntaxError as exc:
            problems.append({"field": field, "message": f"syntax error in line {exc.lineno}: {exc.message}"})
    if problems:
        return problems
    context = mail_context(kind, sample_payload(language), public_base_url="https://termine.example")
    try:
        rendered = texts.render(templates, context)
    except texts.TemplateProblem as exc:
        return [{"field": exc.field, "message": exc.message}]
    if texts.SAMPLE_CONCERN.lower() in rendered.subject.lower():
        problems.append({"field": "subject", "message": "the subject must not name the concern"})
    unsafe = texts.unsafe_html_problem(rendered.html)
    if unsafe:
        problems.append(unsafe)
    link = context[_REQUIRED_LINK[kind]]
    for field in ("text", "html"):
        body = getattr(rendered, field)
        if link not in body and link.replace("&", "&amp;") not in body:
            problems.append(
                {"field": field, "message": f"the text must contain the link {_REQUIRED_LINK[kind]}"}
            )
    return problems
