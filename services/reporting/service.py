"""Use cases of the reporting service: applying events to the read model, the day lists, the scheduled
deletion. One transaction each (event handlers run in the consumer's transaction, with its inbox row).
Statistics and the pattern report are in `statistics.py`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import asyncpg
import structlog

from services.reporting import db
from services.reporting.config import Settings
from services.reporting.domain import (
    DayListRow,
    GoneError,
    anonymise_values,
    berlin_day,
    concern_names,
    customer_key,
    day_list_filename,
    email_domain,
    group_names,
    keyed_hash,
    list_delete_after,
    list_due_at,
    moved_label,
    network_prefix,
    normalise_email,
    offered_minutes,
)
from services.reporting.models import DayListInfo
from services.reporting.workbooks import build_day_list
from shared.calendar import DAY_LIST_HORIZON
from shared.clock import Clock
from shared.erasure import erase_dead_letters
from shared.errors import NotFoundError, ValidationError
from shared.events import Envelope, EventData
from shared.events.appointment import AppointmentSnapshot
from shared.events.catalog import AllowListChangedV1, LocationConfiguredV1, Mode
from shared.events.retention import AppointmentPersonalDataErasedV1, RetentionRunCompletedV1
from shared.metrics import RETENTION_LAST_RUN
from shared.retention import delete_messages_before

log = structlog.get_logger(__name__)

Claim = Callable[[asyncpg.Connection], Awaitable[Any]]  # returns the claimed list's row, or None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value.value if isinstance(value, Enum) else value)


# --- applying events ------------------------------------------------------------------------------------


def _snapshot_values(snapshot: AppointmentSnapshot, secret: str) -> dict[str, Any]:
    customer = snapshot.customer
    return {
        "revision": snapshot.revision,
        "status": snapshot.status.value,
        "location_id": snapshot.location_id,
        "location_name": snapshot.location_name,
        "group_id": snapshot.group_id,
        "service_point": snapshot.service_point,
        "concern_id": snapshot.concern_id,
        "concern_name": snapshot.concern_name,
        "sensitive": snapshot.sensitive,
        "emergency": snapshot.emergency,
        "start_at": snapshot.start,
        "end_at": snapshot.end,
        "day": berlin_day(snapshot.start),
        "mode": snapshot.mode.value,
        "channel": snapshot.channel.value,
        "language": snapshot.customer_language,
        "evening": snapshot.evening,
        "interpreter_language": snapshot.interpreter_language or None,
        "booked_at": snapshot.booked_at,
        # personal data (R34): only what the day list shows and the pattern report needs. Not the e-mail
        # address (its keyed hash and domain are enough), nor the manage link (its token opens the
        # appointment), nor a phone number an appointment in person has no use for (R4).
        "reference": snapshot.reference,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "phone": customer.phone if snapshot.mode is Mode.PHONE else None,
        "customer_number": customer.customer_number,
        "household_number": customer.household_number,
        "customer_key": customer_key(secret, customer.email),
        "email_domain": email_domain(customer.email),
        "client_network": network_prefix(snapshot.client_network),
    }


def _customer_hash(snapshot: AppointmentSnapshot, secret: str) -> str:
    c = snapshot.customer
    return keyed_hash(
        secret,
        "data",
        c.first_name.strip().lower(),
        c.last_name.strip().lower(),
        normalise_email(c.email),
        c.phone,
        c.customer_number,
        c.household_number,
    )


async def apply_appointment_event(
    conn: asyncpg.Connection, envelope: Envelope, data: EventData, *, settings: Settings, clock: Clock
) -> None:
    """Apply any `appointment.*` event that carries the appointment's snapshot: the newest revision wins
    (a late `booked` after `cancelled` changes nothing), the facts of the event are kept in any order,
    and an appointment past the retention period is stored without personal data (R34)."""
    snapshot = getattr(data, "appointment", None)
    if not isinstance(snapshot, AppointmentSnapshot):
        log.warning("appointment_event_without_snapshot", event_type=envelope.type)
        return
    now = clock.now()
    expired = snapshot.end < now - timedelta(days=settings.retention_days)
    values = _snapshot_values(snapshot, settings.pseudonym_secret)
    if expired:
        anonymise_values(values)
    touched = {(values["location_id"], values["day"])}

    newest = await db.insert_appointment(
        conn, snapshot.id, {**values, "anonymised_at": now if expired else None}, now
    )
    anonymised = expired
    if newest and not expired:
        # The first row of this appointment: its data may have been erased before it came (I6).
        await db.serialise_erasure(conn, snapshot.id)
        erased = await db.erased_at(conn, snapshot.id)
        if erased is not None:
            await db.anonymise_appointment(conn, snapshot.id, erased)
            anonymised = True
    # The list the appointment left (another day or location), where it stays struck through (R22).
    moved_from: dict[str, Any] | None = None if anonymised or not newest else _moved_from(data, snapshot)
    if not newest:
        existing = await db.lock_appointment(conn, snapshot.id)
        assert existing is not None  # noqa: S101 -- the insert found it
        anonymised = expired or existing["anonymised_at"] is not None
        if snapshot.revision > existing["revision"]:
            newest = True
            if anonymised:
                anonymise_values(values)
            await db.update_appointment(conn, snapshot.id, values, now)
            touched.add((existing["location_id"], existing["day"]))
            if expired and existing["anonymised_at"] is None:
                await db.anonymise_appointment(conn, snapshot.id, now)
            if not anonymised:
                moved_from = dict(existing)
    if moved_from is not None and (moved_from["location_id"], moved_from["day"]) != (
        values["location_id"],
        values["day"],
    ):
        await db.record_moved_away(conn, snapshot.id, moved_from, snapshot.revision, envelope.occurred_at)
    if newest and not anonymised:
        # Lists it moved away from before show where it is now (and its data as they are now).
        touched.update(await db.moved_away_lists(conn, snapshot.id))

    await db.record_revision(
        conn,
        snapshot.id,
        snapshot.revision,
        envelope.type,
        envelope.occurred_at,
        _customer_hash(snapshot, settings.pseudonym_secret),
        anonymised,
    )
    # Who cancelled and the outcome count; the reason's and the note's free text are for staff and the
    # file in booking, never read here, and not kept.
    if envelope.type == "appointment.cancelled":
        await db.record_cancellation(
            conn,
            snapshot.id,
            envelope.occurred_at,
            _text(getattr(data, "cancelled_by", None)),
            code=_text(getattr(data, "reason_code", None)),
            handed_to=_text(getattr(data, "handed_to", None)),
        )
    outcome = _text(getattr(data, "outcome", None))
    if outcome:
        await db.record_outcome(conn, snapshot.id, outcome, envelope.occurred_at, newest=newest)
    if envelope.type == "appointment.transferred":
        previous = next(
            (
                _text(getattr(data, name, None))
                for name in ("from_location_id", "previous_location_id", "from_location")
                if getattr(data, name, None)
            ),
            None,
        )
        if previous:
            await db.record_transfer(conn, snapshot.id, previous)
            touched.update((previous, day) for _, day in list(touched))
    if newest:
        # A list already generated for that day is built again with the change (R22).
        await db.mark_lists_stale(conn, touched)


def _moved_from(data: EventData, snapshot: AppointmentSnapshot) -> dict[str, Any] | None:
    """The old slot a move event names, for an appointment seen first with it (its booking arrives late,
    or was before reporting kept lists): `previous_start` and, for a transfer, `from_location_id`."""
    previous: datetime | None = getattr(data, "previous_start", None)
    if previous is None:
        return None
    return {
        "location_id": getattr(data, "from_location_id", None) or snapshot.location_id,
        "day": berlin_day(previous),
        "group_id": getattr(data, "from_group_id", None) or snapshot.group_id,
        "service_point": snapshot.service_point,
        "start_at": previous,
        "end_at": getattr(data, "previous_end", None) or previous,
    }


async def apply_personal_data_erased(
    conn: asyncpg.Connection,
    _envelope: Envelope,
    data: AppointmentPersonalDataErasedV1,
    *,
    clock: Clock,
) -> None:
    """The owner of the appointment erased its data: erase this copy now, whatever our own schedule says,
    and build a stored day list that names the customer again (an erasure on request of a cancelled
    appointment whose day is still ahead: cancelled rows stay in the list, struck through). Without a copy
    yet (its events come later, or out of order), a marker keeps the erasure for the events to come."""
    await db.serialise_erasure(conn, data.appointment_id)
    await erase_dead_letters(conn, data.appointment_id, clock.now())  # they hold whole events
    day = await db.appointment_day(conn, data.appointment_id)
    await db.anonymise_appointment(conn, data.appointment_id, clock.now())
    if day is not None:
        await db.mark_lists_stale(conn, [day, *await db.moved_away_lists(conn, data.appointment_id)])
    else:
        await db.mark_erased(conn, data.appointment_id, clock.now())


def capacity_rows(
    snapshot: LocationConfiguredV1, first: date, last: date
) -> list[tuple[str, date, int, int]]:
    """Per group and day: the minutes offered, and the part of them in evening windows (R12)."""
    rows: list[tuple[str, date, int, int]] = []
    day = first
    while day <= last:
        evening = offered_minutes(snapshot, day, evening_only=True)
        rows.extend(
            (group_id, day, minutes, evening.get(group_id, 0))
            for group_id, minutes in offered_minutes(snapshot, day).items()
        )
        day += timedelta(days=1)
    return rows


async def apply_location_configured(
    conn: asyncpg.Connection,
    envelope: Envelope,
    data: LocationConfiguredV1,
    *,
    settings: Settings,
    clock: Clock,
) -> None:
    """Keep the newest snapshot of a location and write the capacity it offers from the day it changed;
    days before keep the capacity that was offered then. The German names of its concerns are kept from
    any snapshot, also an older one, for the concerns that are no longer offered."""
    snapshot = data.model_dump(mode="json")
    await db.remember_concern_names(conn, concern_names(snapshot), envelope.occurred_at)
    current = await db.location_revision(conn, data.location_id)
    if current is not None and current >= data.revision:
        return
    now = clock.now()
    newest = await db.upsert_location(
        conn,
        data.location_id,
        data.revision,
        data.name,
        data.active,
        snapshot,
        envelope.occurred_at,
        now,
    )
    if not newest:
        # A new location's newer snapshot was inserted by another replica after the read above found no
        # row to lock (the insert waited for it): its capacity stays.
        return
    first = min(berlin_day(envelope.occurred_at), berlin_day(now))
    last = berlin_day(now) + timedelta(days=settings.capacity_horizon_days)
    await db.replace_capacity(conn, data.location_id, data.revision, first, capacity_rows(data, first, last))


async def apply_allow_list(conn: asyncpg.Connection, _envelope: Envelope, data: AllowListChangedV1) -> None:
    await db.set_allow_list(conn, data.revision, [e.strip().lower() for e in data.entries])


def _field(payload: dict[str, Any], *names: str) -> Any:
    for name in names:
        if payload.get(name) is not None:
            return payload[name]
    return None


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


async def apply_callback_event(
    conn: asyncpg.Connection, envelope: Envelope, data: EventData, *, clock: Clock
) -> None:
    """`callback.created` / `callback.closed`: only ids, team, times and how it ended are kept (no note, no
    result, no number).
    Reads the ticket flat or under `callback`, so that the staff-work models fit as they come."""
    raw = data.model_dump(mode="json")
    payload: dict[str, Any] = raw.get("callback") if isinstance(raw.get("callback"), dict) else raw  # type: ignore[assignment]  # checked by isinstance
    ticket_id = _field(payload, "id", "callback_id", "ticket_id")
    if ticket_id is None:
        log.warning("callback_event_without_id", event_type=envelope.type)
        return
    created = _instant(_field(payload, "created_at", "opened_at")) or envelope.occurred_at
    closed = _instant(_field(payload, "closed_at"))
    if envelope.type == "callback.closed" and closed is None:
        closed = envelope.occurred_at
    appointment = _field(payload, "appointment_id") or _field(raw, "appointment_id")
    await db.upsert_callback(
        conn,
        {
            "id": str(ticket_id),
            "appointment_id": appointment,
            "location_id": _text(_field(payload, "location_id", "location")),
            "group_id": _text(_field(payload, "group_id", "team_id", "team")),
            "created_at": created,
            "due_at": _instant(_field(payload, "due_at")) or created + timedelta(hours=48),
            "closed_at": closed,
            "status": _text(_field(payload, "status")) or ("closed" if closed else "open"),
            # "withdrawn": the outcome was corrected away from callback; not a kept promise (DA 2.3).
            "closed_as": _text(_field(payload, "closed_as")) if closed else None,
            "revision": int(_field(payload, "revision") or 0),
        },
        clock.now(),
    )


async def apply_mail_event(conn: asyncpg.Connection, envelope: Envelope, data: EventData) -> None:
    await db.upsert_mail(
        conn,
        {
            "mail_id": getattr(data, "mail_id"),  # noqa: B009 -- mail.sent and mail.failed both have it
            "appointment_id": getattr(data, "appointment_id"),  # noqa: B009 -- as above
            "kind": _text(getattr(data, "kind", None)) or "unknown",
            "outcome": "sent" if envelope.type == "mail.sent" else "failed",
            "reason": _text(getattr(data, "reason", None)),
            "revision": int(getattr(data, "revision", 0)),
            "attempts": int(getattr(data, "attempts", 0)),
            "occurred_at": envelope.occurred_at,
        },
    )


async def apply_retention_run(
    conn: asyncpg.Connection, envelope: Envelope, data: RetentionRunCompletedV1
) -> None:
    await db.insert_retention_run(
        conn,
        service=data.service,
        job=data.job,
        started_at=data.started_at,
        finished_at=data.finished_at,
        retention_days=data.retention_days,
        cutoff=data.cutoff,
        counts={k: int(v) for k, v in data.counts.items()},
        event_id=envelope.id,
    )


# --- the day lists (R22, R33, I7) -----------------------------------------------------------------------


async def _build_list(
    conn: asyncpg.Connection, location_id: str, day: date, now: datetime
) -> tuple[bytes, int]:
    location = await db.location(conn, location_id)
    records = await db.day_list_appointments(conn, location_id, day)
    if location is None and not records:
        raise NotFoundError("No such location.")
    snapshot = location["snapshot"] if location is not None else None
    groups = group_names(snapshot)
    # Staff read the catalogue's German name, whatever language the customer booked in: the location's
    # offer, else the name a snapshot gave a concern no longer offered, else the booking's own wording.
    concerns = {**await db.known_concern_names(conn), **concern_names(snapshot)}
    rows = [
        DayListRow(
            group_id=r["group_id"],
            group_name=groups.get(r["group_id"], r["group_id"]),
            start=r["start_at"],
            end=r["end_at"],
            service_point=r["service_point"],
            last_name=r["last_name"] or "",
            first_name=r["first_name"] or "",
            customer_number=r["customer_number"],
            household_number=r["household_number"],
            concern=concerns.get(r["concern_id"], r["concern_name"]),
            mode=r["mode"],
            phone=r["phone"],
            interpreter_language=r["interpreter_language"],
            status=r["status"],
            outcome=r["outcome"],
            reference=r["reference"] or "",
            emergency=r["emergency"],
            language=r["language"],
            moved_to=""
            if r["moved_to_location"] is None
            else moved_label(location_id, r["moved_to_location"], r["moved_to_name"], r["moved_to_start"]),
            handed_to=(r["handed_to"] or "") if r["cancel_code"] == "handed_over" else "",
        )
        for r in records
    ]
    location_name = location["name"] if location is not None else location_id
    content = await asyncio.to_thread(
        build_day_list,
        location_id=location_id,
        location_name=location_name,
        day=day,
        groups=list(groups.items()),
        rows=rows,
        generated_at=now,
    )
    return content, len(rows)


async def generate_due_lists(pool: asyncpg.Pool, settings: Settings, clock: Clock) -> int:
    """From 06:00 (Berlin) on, create today's list of every location with a booking day, each exactly once
    across replicas: the row is claimed with SKIP LOCKED and marked generated in the same transaction."""
    now = clock.now()
    today = berlin_day(now)
    if now < list_due_at(today, settings.day_list_hour):
        return 0
    async with pool.acquire() as conn:
        locations = await db.booking_day_locations(conn, today)
        await db.ensure_day_lists(
            conn, today, locations, now, list_delete_after(today, settings.day_list_keep_hours)
        )
    return await _drain(pool, clock, lambda conn: db.claim_due_list(conn, today), "schedule")


async def regenerate_stale_lists(pool: asyncpg.Pool, clock: Clock) -> int:
    """Build again the lists whose appointments changed, while their day is not over."""
    today = berlin_day(clock.now())
    return await _drain(pool, clock, lambda conn: db.claim_stale_list(conn, today), "change")


async def _drain(pool: asyncpg.Pool, clock: Clock, claim: Claim, trigger: str) -> int:
    done = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            row = await claim(conn)
            if row is None:
                return done
            now = clock.now()
            content, count = await _build_list(conn, row["location_id"], row["day"], now)
            generation = await db.store_day_list(
                conn, row["location_id"], row["day"], content, count, now, trigger
            )
        log.info(
            "day_list_generated",
            location=row["location_id"],
            day=row["day"].isoformat(),
            appointments=count,
            generation=generation,
            trigger=trigger,
        )
        done += 1


async def get_day_list(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, location_id: str, day: date
) -> tuple[str, bytes]:
    """The list of a location and day: the stored file while it is current, else built now (and kept until
    the day is over). A past day's list is not built again, and a later day's list is built for this
    download only and not kept (R33: its purpose ends when it is sent; the day's own list comes at 06:00)."""
    now = clock.now()
    today = berlin_day(now)
    delete_after = list_delete_after(day, settings.day_list_keep_hours)
    if now >= delete_after:
        raise GoneError("The list of a past day is deleted and not created again (data protection).")
    if day > today + DAY_LIST_HORIZON:
        raise ValidationError(
            "That day is too far ahead.", details=[{"field": "date", "message": "at most 90 days ahead"}]
        )
    async with pool.acquire() as conn:
        if not await db.day_list_location_known(conn, location_id, day):
            raise NotFoundError("No such location.")
        if day > today:
            # One snapshot of the read model for both of the build's reads.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                content, count = await _build_list(conn, location_id, day, now)
            log.info(
                "day_list_generated",
                location=location_id,
                day=day.isoformat(),
                appointments=count,
                generation=0,
                trigger="preview",
            )
            return day_list_filename(location_id, day), content
        # Committed before the build locks it: a change arriving during the build then waits for the
        # build and marks the new file stale, instead of missing a row it cannot see (R22).
        await db.ensure_day_lists(conn, day, [location_id], now, delete_after)
        async with conn.transaction():
            row = await db.lock_day_list(conn, location_id, day)
            if row["content"] is not None and not row["stale"]:
                return day_list_filename(location_id, day), bytes(row["content"])
            content, count = await _build_list(conn, location_id, day, now)
            generation = await db.store_day_list(conn, location_id, day, content, count, now, "demand")
    log.info(
        "day_list_generated",
        location=location_id,
        day=day.isoformat(),
        appointments=count,
        generation=generation,
        trigger="demand",
    )
    return day_list_filename(location_id, day), content


async def day_list_infos(pool: asyncpg.Pool, location_id: str, first: date, last: date) -> list[DayListInfo]:
    """Which lists of a location exist in a period, and whether their file is still there (no data)."""
    return [DayListInfo(**dict(r)) for r in await db.day_lists_of(pool, location_id, first, last)]


# --- scheduled work -------------------------------------------------------------------------------------


async def delete_expired_lists(pool: asyncpg.Pool, settings: Settings, clock: Clock) -> int:
    """R33: a list's file is deleted when its day is over (plus the configured hours)."""
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        deleted = await db.delete_expired_lists(conn, now, berlin_day(now))
        if deleted:
            await db.insert_retention_run(
                conn,
                service=settings.service_name,
                job="day_list_files",
                started_at=now,
                finished_at=clock.now(),
                retention_days=settings.retention_days,
                cutoff=None,
                counts={"day_list_files_deleted": deleted},
            )
    if deleted:
        log.info("day_list_files_deleted", count=deleted)
    return deleted


async def run_retention(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, *, force: bool = False
) -> dict[str, int] | None:
    """R34: erase the personal data of appointments that ended more than the retention period ago, the
    dead letters of that age, and expired list files; record the counts. Once per interval across
    replicas (I7); `force` runs it now (operators, tests)."""
    started = clock.now()
    cutoff = started - timedelta(days=settings.retention_days)
    interval = 0.0 if force else settings.retention_interval_seconds
    async with pool.acquire() as conn, conn.transaction():
        if not await db.claim_job(conn, "retention", started, interval):
            last = await db.last_job_run(conn, "retention")  # another replica's run
            if last is not None:
                RETENTION_LAST_RUN.labels(settings.service_name).set(last.timestamp())
            return None
        counts = {
            "appointments_anonymised": await db.anonymise_ended_before(conn, cutoff, started),
            "revision_rows_deleted": await db.delete_revisions_of_anonymised(conn),
            "moved_away_rows_deleted": await db.delete_moved_away(conn, berlin_day(cutoff)),
            **await delete_messages_before(conn, cutoff),
            "day_list_files_deleted": await db.delete_expired_lists(conn, started, berlin_day(started)),
        }
        await db.delete_erasure_marks_before(conn, cutoff)
        # The deletion report itself holds no personal data; a year of it is enough to show the jobs ran.
        await db.delete_retention_runs_before(conn, started - timedelta(days=400))
        await db.insert_retention_run(
            conn,
            service=settings.service_name,
            job="personal_data",
            started_at=started,
            finished_at=clock.now(),
            retention_days=settings.retention_days,
            cutoff=cutoff,
            counts=counts,
        )
    RETENTION_LAST_RUN.labels(settings.service_name).set(clock.now().timestamp())  # the alert's clock
    log.info("retention_run", **counts)
    return counts


# The capacity of the coming days is written once an hour across replicas.
CAPACITY_INTERVAL_SECONDS = 3600.0


async def ensure_capacity(pool: asyncpg.Pool, settings: Settings, clock: Clock) -> int:
    """Write the offered capacity of the coming days from each location's newest snapshot (once an hour
    across replicas), so that utilisation has a denominator for every day.

    Days ahead written without their evening part (by the previous release's pods during the rolling
    update: after migration 008, or for a snapshot they applied) are written again from tomorrow, so that
    the evening utilisation (R12) is not hidden for every period that touches them. Today's row stays as
    it is (the day list finds its locations by it; its evening part stays unknown)."""
    now = clock.now()
    today = berlin_day(now)
    last = today + timedelta(days=settings.capacity_horizon_days)
    written = 0
    async with pool.acquire() as conn, conn.transaction():
        if not await db.claim_job(conn, "capacity", now, CAPACITY_INTERVAL_SECONDS):
            return 0
        for reach in await db.capacity_reach(conn, today):
            snapshot = LocationConfiguredV1.model_validate(reach["snapshot"])
            if reach["evening_unknown"]:
                # From today: a missing row of today is added, an existing one kept (ON CONFLICT).
                rows = capacity_rows(snapshot, today, last)
                tomorrow = today + timedelta(days=1)
                await db.replace_capacity(conn, reach["location_id"], reach["revision"], tomorrow, rows)
                log.info("capacity_evening_written_again", location=reach["location_id"])
                written += len(rows)
                continue
            first = today if reach["last_day"] is None else max(today, reach["last_day"] + timedelta(days=1))
            if first > last:
                continue
            rows = capacity_rows(snapshot, first, last)
            await db.add_capacity(conn, reach["location_id"], reach["revision"], rows)
            written += len(rows)
    return written


def _job_due(last_run: datetime | None, now: datetime, interval_seconds: float) -> bool:
    """As `db.claim_job` judges it (which still decides, under its row lock)."""
    return last_run is None or last_run <= now - timedelta(seconds=interval_seconds)


async def run_schedule(pool: asyncpg.Pool, settings: Settings, clock: Clock) -> None:
    """One tick of the scheduler (every 30 s in every replica): one read of what is due, then only the
    steps that have work. Every step claims its own work, so any number of replicas may tick; a tick
    with nothing due (nearly all of them) writes nothing and locks nothing."""
    now = clock.now()
    today = berlin_day(now)
    async with pool.acquire() as conn:
        due = await db.scheduled_work(conn, now, today, now >= list_due_at(today, settings.day_list_hour))
    capacity_written = 0
    if _job_due(due["capacity_run"], now, CAPACITY_INTERVAL_SECONDS):
        capacity_written = await ensure_capacity(pool, settings, clock)
    if due["expired_lists"]:
        await delete_expired_lists(pool, settings, clock)
    if due["due_lists"] or capacity_written:  # new capacity of today: a location with a booking day
        await generate_due_lists(pool, settings, clock)
    if due["stale_lists"]:
        await regenerate_stale_lists(pool, clock)
    if _job_due(due["retention_run"], now, settings.retention_interval_seconds):
        await run_retention(pool, settings, clock)
    elif due["retention_run"] is not None:
        # Another replica's (or an earlier) run: the alert's clock, as `run_retention` sets it then.
        RETENTION_LAST_RUN.labels(settings.service_name).set(due["retention_run"].timestamp())
