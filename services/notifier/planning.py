"""The consumer's effects on appointments, inside its inbox transaction (I3): keep the newest revision of
the appointment and plan the mails of each change (`apply_appointment_event`), erase its personal data on
request (`erase_personal_data`). The waiting list's mails are planned in `waiting_mail`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.notifier import db
from services.notifier.config import Settings
from services.notifier.domain import (
    CONTACT_CHANGED,
    PlannedMail,
    address_hash,
    changes_state,
    has_token,
    overtaken_mail,
    plan_mails,
    rule_of,
    superseded_kinds,
    supersedes_mails_in_delivery,
)
from shared.clock import Clock
from shared.erasure import erase_dead_letters
from shared.events import Envelope
from shared.events.appointment import (
    AppointmentCancelledV1,
    AppointmentRescheduledV1,
    AppointmentSnapshot,
)
from shared.events.mail import MailKind
from shared.events.retention import AppointmentPersonalDataErasedV1

log = structlog.get_logger(__name__)


async def apply_appointment_event(
    conn: asyncpg.Connection, envelope: Envelope, data: Any, *, clock: Clock, settings: Settings
) -> list[MailKind]:
    """Keep the newest revision of the appointment and plan the mails of this change. A stale event
    (revision not newer than the copy) changes the copy not: it can neither resurrect a reminder of a
    cancelled or moved appointment nor confirm a state that no longer holds; only its own mail may
    still go out (`_apply_overtaken`). After an erasure of the appointment's data no event plans a mail
    or stores them again, whenever it comes (I6, R34); a mail planned before and in a sender's hands at
    the erasure may still go out (`db.erase_personal_data`)."""
    snap: AppointmentSnapshot = data.appointment
    now = clock.now()
    rule = rule_of(envelope.type, email_changed=bool(getattr(data, "email_changed", False)))
    state = changes_state(rule)
    link = snap.manage_url if has_token(snap.manage_url) else None
    stored = await db.apply_snapshot(conn, snap, now, link, changes_state=state)
    if stored is None:
        if link is not None and await db.take_late_link(conn, snap, link):
            log.info("manage_link_taken_late", appointment_id=str(snap.id), revision=snap.revision)
        return await _apply_overtaken(conn, envelope, data, rule, now=now, settings=settings)
    erased = bool(stored["erased"])
    if stored["new"]:
        # The first copy: the data may have been erased before any event of the appointment came.
        await db.serialise_erasure(conn, snap.id)
        erased = await db.take_erasure_mark(conn, snap.id)
    if erased:
        # What still waits for an earlier revision goes as the change says; nothing new is planned.
        superseded = [] if stored["new"] else await _cancel_superseded_mails(conn, rule, snap, now)
        log.info(
            "mails_not_planned_after_erasure",
            event_type=envelope.type,
            appointment_id=str(snap.id),
            revision=snap.revision,
            superseded=[row["kind"] for row in superseded],
        )
        return []
    # A new appointment has no mails yet; a known one loses the reminder of its earlier revision, and
    # after a change of its state the mails still waiting that tell the earlier one.
    superseded = [] if stored["new"] else await _cancel_superseded_mails(conn, rule, snap, now)
    if envelope.type == CONTACT_CHANGED and not stored["new"]:
        # The mails still waiting (not superseded above) tell the customer's corrected name.
        customer = snap.customer.model_dump(mode="json")
        await db.correct_pending_mails(conn, snap.id, snap.revision, customer, now)
    # A mail in a sender's hands is only marked: it may be delivered this moment, so it is not owed.
    dropped = [row for row in superseded if not row["held"]]
    planned = plan_mails(
        event_type=rule,
        status=snap.status,
        start=snap.start,
        occurred_at=envelope.occurred_at,
        now=now,
        reminder_hours=settings.reminder_hours,
        give_up_after=timedelta(hours=settings.mail_give_up_hours),
        reminder_owed=any(
            row["kind"] == MailKind.REMINDER and row["came"] and _same_start(row["start"], snap.start)
            for row in dropped
        ),
    )
    kinds = await _insert_mails(
        conn, envelope, data, planned, stored_manage_url=stored["manage_url"], settings=settings, now=now
    )
    log.info(
        "mails_planned",
        event_type=envelope.type,
        appointment_id=str(snap.id),
        revision=snap.revision,
        kinds=[k.value for k in kinds],
        superseded=[row["kind"] for row in dropped],
        superseded_in_delivery=[row["kind"] for row in superseded if row["held"]],
    )
    return kinds


async def _apply_overtaken(
    conn: asyncpg.Connection, envelope: Envelope, data: Any, rule: str, *, now: datetime, settings: Settings
) -> list[MailKind]:
    """An event a newer revision overtook (two replicas, a retry): its own mail still goes out when
    nothing newer tells what it tells, e.g. a staff move overtaken by a link renewal; never when a
    newer change of state made it wrong (`db.take_overtaken_event`). It plans no reminder: the newer
    revision did. The mail shows the manage link in force when it is sent (`_with_current_link`)."""
    snap: AppointmentSnapshot = data.appointment
    mail = overtaken_mail(
        rule, start=snap.start, now=now, give_up_after=timedelta(hours=settings.mail_give_up_hours)
    )
    if mail is None or not await db.take_overtaken_event(conn, snap, changes_state=changes_state(rule)):
        log.info(
            "appointment_event_stale",
            event_type=envelope.type,
            appointment_id=str(snap.id),
            revision=snap.revision,
        )
        return []
    superseded = await _cancel_superseded_mails(conn, rule, snap, now)
    kinds = await _insert_mails(
        conn, envelope, data, [mail], stored_manage_url=None, settings=settings, now=now
    )
    log.info(
        "mails_planned_for_overtaken_event",
        event_type=envelope.type,
        appointment_id=str(snap.id),
        revision=snap.revision,
        kinds=[k.value for k in kinds],
        superseded=[row["kind"] for row in superseded],
    )
    return kinds


async def _cancel_superseded_mails(
    conn: asyncpg.Connection, event_type: str, snap: AppointmentSnapshot, now: datetime
) -> list[asyncpg.Record]:
    """`event_type`: the event's rule key (`domain.rule_of`)."""
    return await db.cancel_superseded_mails(
        conn,
        snap.id,
        now,
        superseded_kinds(event_type),
        revision=snap.revision,
        mark_in_delivery=supersedes_mails_in_delivery(event_type),
    )


async def _insert_mails(
    conn: asyncpg.Connection,
    envelope: Envelope,
    data: Any,
    planned: list[PlannedMail],
    *,
    stored_manage_url: str | None,
    settings: Settings,
    now: datetime,
) -> list[MailKind]:
    snap: AppointmentSnapshot = data.appointment
    recipient = snap.customer.email.strip()
    if not recipient:
        log.warning("appointment_without_address", appointment_id=str(snap.id), revision=snap.revision)
        return []
    payload: dict[str, Any] = {"appointment": snap.model_dump(mode="json")}
    if stored_manage_url and not has_token(snap.manage_url):
        # A change by staff carries the bare manage page; the customer's link with its token still works.
        payload["appointment"]["manage_url"] = stored_manage_url
    if isinstance(data, AppointmentRescheduledV1):
        payload["previous_start"] = data.previous_start.isoformat()
        payload["previous_end"] = data.previous_end.isoformat()
        payload["reason_code"] = data.reason_code
    if isinstance(data, AppointmentCancelledV1):
        payload["cancelled_by"] = data.cancelled_by.value
        payload["reason"] = data.reason
        payload["reason_code"] = data.reason_code
        payload["handed_to"] = data.handed_to
    return [
        MailKind(kind)
        for kind in await db.insert_mails(
            conn,
            appointment_id=snap.id,
            planned=[(mail.kind.value, mail.due_at, mail.deadline) for mail in planned],
            revision=snap.revision,
            language=snap.customer_language,  # the mail's texts: texts.language_of, when it is sent
            recipient=recipient,
            recipient_hash=address_hash(recipient, settings.mail_hash_key),
            payload=payload,
            correlation_id=envelope.correlation_id,
            now=now,
        )
    ]


def _same_start(stored: str | None, start: datetime) -> bool:
    return stored is not None and datetime.fromisoformat(stored) == start


async def erase_personal_data(
    conn: asyncpg.Connection, envelope: Envelope, data: AppointmentPersonalDataErasedV1, *, clock: Clock
) -> None:
    erased = await db.erase_personal_data(conn, data.appointment_id, clock.now())
    # The appointment's events among the dead letters keep no personal data either (R34).
    dead_letters = await erase_dead_letters(conn, data.appointment_id, clock.now())
    log.info(
        "mail_personal_data_erased",
        appointment_id=str(data.appointment_id),
        mails=erased,
        dead_letters=dead_letters,
    )
