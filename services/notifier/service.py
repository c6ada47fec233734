"""Use cases of the notifier's sender and API, one transaction each: claim due mails, record how a
delivery ended (with its `mail.*` event through the outbox), edit the texts, lift a suppression. The
mails are planned by the consumer (`planning`, `waiting_mail`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.notifier import db
from services.notifier.config import Settings
from services.notifier.domain import (
    FAILURE_OF_OUTCOME,
    RETRIED,
    UNKNOWN_AFTER_DATA,
    MailStatus,
    Outcome,
    address_hash,
    has_token,
    retry_delay,
)
from services.notifier.texts import (
    KINDS,
    RenderedMail,
    TemplateSet,
    default_templates,
    language_of,
    languages,
    validate,
)
from services.notifier.texts import preview as texts_preview
from shared import errors
from shared.clock import Clock
from shared.events.mail import FailureReason, MailFailedV1, MailKind, MailSentV1, OfferMailDeliveryV1
from shared.logging import correlation_id_var
from shared.outbox import add_event, add_event_where
from shared.versions import check_version, version_of

log = structlog.get_logger(__name__)

PRODUCER = "notifier"


# -- sending ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedMail:
    id: uuid.UUID
    appointment_id: uuid.UUID
    kind: MailKind
    revision: int
    language: str
    attempts: int
    deadline: datetime
    recipient: str
    recipient_hash: str
    payload: dict[str, Any]
    correlation_id: str
    # Read with the claim, so that a delivery needs no query of its own before the SMTP conversation:
    # whether the address was on the suppression list, and the texts in force (R10) for its kind and
    # language (None: read them when building).
    suppressed: bool = False
    templates: TemplateSet | None = None
    # A newer revision superseded it while another sender held it (that sender's lease ran out).
    superseded: bool = False
    # Its last attempt got no reply to the end of its data (Outcome.UNKNOWN): this is the last one.
    unknown_before: bool = False

    @classmethod
    def from_row(cls, row: asyncpg.Record, templates: dict[tuple[str, str], TemplateSet]) -> ClaimedMail:
        return cls(
            id=row["id"],
            appointment_id=row["appointment_id"],
            kind=MailKind(row["kind"]),
            revision=row["revision"],
            language=row["language"],
            attempts=row["attempts"],
            deadline=row["deadline"],
            recipient=row["recipient"] or "",
            recipient_hash=row["recipient_hash"],
            payload=_with_current_link(row["payload"] or {}, row["current_manage_url"]),
            correlation_id=row["correlation_id"],
            suppressed=row["suppressed"],
            superseded=row["superseded"],
            unknown_before=row["unknown_before"],
            templates=templates.get((row["kind"], language_of(row["language"]))),
        )


def _with_current_link(payload: dict[str, Any], current: str | None) -> dict[str, Any]:
    """The mail's appointment with the manage link in force when it is sent: the customer may have asked
    for a new link (the old one no longer opens the appointment) while the mail waited for the server."""
    appointment = payload.get("appointment")
    if current and isinstance(appointment, dict) and has_token(current):
        return {**payload, "appointment": {**appointment, "manage_url": current}}
    return payload


async def claim_due_mails(
    pool: asyncpg.Pool,
    *,
    clock: Clock,
    settings: Settings,
    token: uuid.UUID,
    limit: int,
    exclude: list[uuid.UUID] | None = None,
) -> list[ClaimedMail]:
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        rows = await db.claim_due(
            conn,
            now=now,
            lease_until=now + timedelta(seconds=settings.mail_lease_seconds),
            token=token,
            limit=limit,
            exclude=exclude or [],
        )
        templates = await _templates_in_force(conn, {(r["kind"], language_of(r["language"])) for r in rows})
    return [ClaimedMail.from_row(r, templates) for r in rows]


async def seconds_until_next_due(pool: asyncpg.Pool, clock: Clock) -> float | None:
    async with pool.acquire() as conn:
        due = await db.next_due(conn)
    return None if due is None else (due - clock.now()).total_seconds()


async def record_outcome(
    pool: asyncpg.Pool,
    mail: ClaimedMail,
    token: uuid.UUID,
    outcome: Outcome,
    *,
    error: str | None,
    clock: Clock,
    settings: Settings,
) -> MailStatus | None:
    """Record the attempt and publish `mail.sent` / `mail.failed` with it (I3). Returns the mail's new
    status, None when it stays pending, or when another sender took it over (our lease had expired)."""
    now = clock.now()
    token_cid = correlation_id_var.set(mail.correlation_id)
    try:
        if outcome is Outcome.SENT and mail.kind is MailKind.WAITING_OFFER:
            async with pool.acquire() as conn, conn.transaction():
                if not await db.finish(conn, mail.id, token, status=MailStatus.SENT, now=now):
                    _lost(mail)
                    return None
                await add_event(conn, _sent_event(mail), producer=PRODUCER, clock=clock)
                await _report_offer_mail(conn, mail, delivered=True, clock=clock)
            return MailStatus.SENT
        if outcome is Outcome.SENT:  # the common case: the mail's end and mail.sent in one statement
            sent = await add_event_where(
                pool,
                db.FINISH,
                db.finish_args(mail.id, token, status=MailStatus.SENT, now=now),
                _sent_event(mail),
                producer=PRODUCER,
                clock=clock,
            )
            if sent is None:
                _lost(mail)
                return None
            return MailStatus.SENT
        async with pool.acquire() as conn, conn.transaction():
            if outcome in RETRIED:
                # Locked before the decision: a change that comes at this moment waits for it, and
                # then finds the mail unclaimed and cancels it itself.
                superseded = await db.lock_claim(conn, mail.id, token)
                if superseded is None:
                    _lost(mail)
                    return None
                if superseded:
                    # A newer mail of the appointment is on its way: a retry would arrive after it.
                    return await _cancel_superseded(conn, mail, token, error, now=now)
                if outcome is Outcome.UNKNOWN:
                    return await _unknown(conn, mail, token, clock=clock, settings=settings, now=now)
                due = now + retry_delay(
                    mail.attempts,
                    base=settings.mail_retry_base_seconds,
                    maximum=settings.mail_retry_max_seconds,
                )
                if due < mail.deadline:
                    if not await db.retry_later(conn, mail.id, token, due_at=due, error=error or "temporary"):
                        _lost(mail)
                        return None
                    log.warning(
                        "mail_retry_scheduled",
                        mail_id=str(mail.id),
                        kind=mail.kind.value,
                        attempts=mail.attempts,
                        error=error,
                        retry_at=due.isoformat(),
                    )
                    return None
                return await _fail(conn, mail, token, FailureReason.EXPIRED, error, clock=clock, now=now)
            reason = FAILURE_OF_OUTCOME[outcome]
            status = await _fail(conn, mail, token, reason, error, clock=clock, now=now)
            if status is not None and outcome is Outcome.REJECTED:
                await db.add_suppression(conn, mail.recipient_hash, error or "rejected", mail.id, now)
            return status
    finally:
        correlation_id_var.reset(token_cid)


async def _unknown(
    conn: asyncpg.Connection,
    mail: ClaimedMail,
    token: uuid.UUID,
    *,
    clock: Clock,
    settings: Settings,
    now: datetime,
) -> MailStatus | None:
    """The server got the whole mail but no reply came: it may have taken it. Sending it again at once
    would give the customer a second copy whenever it did (RFC 1047), and a relay that is slow to answer
    would get every retry as well; not sending it again would leave a customer without the confirmation or
    cancellation that no one can resend (R2, R9). So it waits OTV_MAIL_UNKNOWN_RETRY_SECONDS and goes once
    more, with the same Message-ID and calendar UID (a mailbox may drop the copy, a calendar keeps one
    entry); a second unknown outcome, or one too late for that, gives it up."""
    due = now + timedelta(seconds=settings.mail_unknown_retry_seconds)
    if mail.unknown_before or due >= mail.deadline:
        return await _fail(conn, mail, token, FailureReason.EXPIRED, UNKNOWN_AFTER_DATA, clock=clock, now=now)
    if not await db.retry_later(conn, mail.id, token, due_at=due, error=UNKNOWN_AFTER_DATA, unknown=True):
        _lost(mail)
        return None
    log.warning(
        "mail_outcome_unknown",
        mail_id=str(mail.id),
        kind=mail.kind.value,
        attempts=mail.attempts,
        retry_at=due.isoformat(),
    )
    return None


async def record_not_tried(
    pool: asyncpg.Pool, mail: ClaimedMail, token: uuid.UUID, reason: FailureReason, *, clock: Clock
) -> MailStatus | None:
    """A mail given up before a try: past its deadline, or to a suppressed address."""
    token_cid = correlation_id_var.set(mail.correlation_id)
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await _fail(conn, mail, token, reason, reason.value, clock=clock, now=clock.now())
    finally:
        correlation_id_var.reset(token_cid)


async def record_superseded(
    pool: asyncpg.Pool, mail: ClaimedMail, token: uuid.UUID, *, clock: Clock
) -> MailStatus | None:
    """A mail taken over from a sender whose lease ran out, superseded while that sender held it: it is
    not tried again (the newer mail is on its way, or out)."""
    token_cid = correlation_id_var.set(mail.correlation_id)
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await _cancel_superseded(conn, mail, token, None, now=clock.now())
    finally:
        correlation_id_var.reset(token_cid)


async def _cancel_superseded(
    conn: asyncpg.Connection, mail: ClaimedMail, token: uuid.UUID, error: str | None, *, now: datetime
) -> MailStatus | None:
    if not await db.cancel_superseded(conn, mail.id, token, now=now, error=error):
        _lost(mail)
        return None
    log.info(
        "mail_superseded_in_delivery",
        mail_id=str(mail.id),
        kind=mail.kind.value,
        attempts=mail.attempts,
        error=error,
    )
    return MailStatus.CANCELLED


async def _fail(
    conn: asyncpg.Connection,
    mail: ClaimedMail,
    token: uuid.UUID,
    reason: FailureReason,
    error: str | None,
    *,
    clock: Clock,
    now: datetime,
) -> MailStatus | None:
    status = MailStatus.SUPPRESSED if reason is FailureReason.SUPPRESSED else MailStatus.FAILED
    if not await db.finish(conn, mail.id, token, status=status, now=now, error=error or reason.value):
        _lost(mail)
        return None
    await add_event(
        conn,
        MailFailedV1(
            mail_id=mail.id,
            appointment_id=mail.appointment_id,
            kind=mail.kind,
            revision=mail.revision,
            attempts=mail.attempts,
            reason=reason,
        ),
        producer=PRODUCER,
        clock=clock,
    )
    await _report_offer_mail(conn, mail, delivered=False, clock=clock)
    log.warning(
        "mail_failed",
        mail_id=str(mail.id),
        kind=mail.kind.value,
        attempts=mail.attempts,
        reason=reason.value,
        error=error,
    )
    return status


async def _report_offer_mail(
    conn: asyncpg.Connection, mail: ClaimedMail, *, delivered: bool, clock: Clock
) -> None:
    """For booking, whether a waiting-list offer reached the customer (`mail.offer_delivery`, R45)."""
    if mail.kind is MailKind.WAITING_OFFER:
        report = OfferMailDeliveryV1(wish_id=mail.appointment_id, revision=mail.revision, delivered=delivered)
        await add_event(conn, report, producer=PRODUCER, clock=clock)


def _sent_event(mail: ClaimedMail) -> MailSentV1:
    return MailSentV1(
        mail_id=mail.id,
        appointment_id=mail.appointment_id,
        kind=mail.kind,
        revision=mail.revision,
        attempts=mail.attempts,
    )


def _lost(mail: ClaimedMail) -> None:
    log.warning("mail_claim_lost", mail_id=str(mail.id), kind=mail.kind.value)


# -- texts (R10) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailTexts:
    kind: str
    language: str
    templates: TemplateSet
    customised: bool
    updated_at: datetime | None

    @property
    def version(self) -> str:
        """What an administrator's form was loaded with (shared.versions): a save made since refuses it."""
        t = self.templates
        return version_of(
            {"customised": self.customised, "subject": t.subject, "text": t.text, "html": t.html}
        )


def _check_names(kind: str, language: str) -> None:
    if kind not in KINDS or language not in languages():
        raise errors.NotFoundError(
            "There is no such mail text.",
            details=[{"kinds": list(KINDS), "languages": list(languages())}],
        )


async def current_templates(conn: asyncpg.Connection | asyncpg.Pool, kind: str, language: str) -> TemplateSet:
    row = await db.find_template(conn, kind, language)
    if row is None:
        return default_templates(kind, language)
    return TemplateSet(subject=row["subject"], text=row["body_text"], html=row["body_html"])


async def _templates_in_force(
    conn: asyncpg.Connection, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], TemplateSet]:
    if not keys:
        return {}
    stored = {
        (row["kind"], row["language"]): TemplateSet(
            subject=row["subject"], text=row["body_text"], html=row["body_html"]
        )
        for row in await db.find_templates(conn, sorted(keys))
    }
    return {key: stored.get(key) or default_templates(*key) for key in keys}


async def get_mail_texts(conn: asyncpg.Connection | asyncpg.Pool, kind: str, language: str) -> MailTexts:
    _check_names(kind, language)
    row = await db.find_template(conn, kind, language)
    if row is None:
        return MailTexts(kind, language, default_templates(kind, language), False, None)
    return MailTexts(
        kind,
        language,
        TemplateSet(subject=row["subject"], text=row["body_text"], html=row["body_html"]),
        True,
        row["updated_at"],
    )


async def change_mail_texts(
    pool: asyncpg.Pool,
    kind: str,
    language: str,
    templates: TemplateSet,
    *,
    clock: Clock,
    expected_version: str | None = None,
) -> MailTexts:
    """Store an administrator's version; it applies to the next mail rendered (R10). With
    `expected_version` (what the form was loaded with) a save made since refuses it (409 `stale`): two
    administrators editing one text do not drop each other's wording unseen."""
    _check_names(kind, language)
    problems = validate(kind, language, templates)
    if problems:
        raise errors.ValidationError("The text cannot be used.", details=problems)
    async with pool.acquire() as conn, conn.transaction():
        await db.lock_template(conn, kind, language)
        current = await get_mail_texts(conn, kind, language)
        check_version(expected_version, current.version, "mail text")
        await db.save_template(
            conn,
            kind,
            language,
            subject=templates.subject,
            text=templates.text,
            html=templates.html,
            now=clock.now(),
        )
    log.info("mail_texts_changed", kind=kind, language=language)
    return await get_mail_texts(pool, kind, language)


def preview_mail_texts(kind: str, language: str, templates: TemplateSet) -> RenderedMail:
    """The sample mail of texts not saved yet, checked as a save is (422 with the same details)."""
    _check_names(kind, language)
    problems = validate(kind, language, templates)
    if problems:
        raise errors.ValidationError("The text cannot be used.", details=problems)
    return texts_preview(kind, language, templates)


async def reset_mail_texts(
    pool: asyncpg.Pool, kind: str, language: str, *, expected_version: str | None = None
) -> MailTexts:
    """Back to the shipped default; with `expected_version` a save made since refuses it (409 `stale`):
    a colleague's new wording is not thrown away unseen."""
    _check_names(kind, language)
    async with pool.acquire() as conn, conn.transaction():
        await db.lock_template(conn, kind, language)  # not between a checked save's read and its write
        current = await get_mail_texts(conn, kind, language)
        check_version(expected_version, current.version, "mail text")
        deleted = await db.delete_template(conn, kind, language)
    if deleted:
        log.info("mail_texts_reset", kind=kind, language=language)
    return await get_mail_texts(pool, kind, language)


async def lift_suppression(pool: asyncpg.Pool, address: str, *, settings: Settings) -> bool:
    async with pool.acquire() as conn:
        lifted = await db.remove_suppression(conn, address_hash(address, settings.mail_hash_key))
    if lifted:
        log.info("mail_suppression_lifted")
    return lifted
