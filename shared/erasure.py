"""A consumer's part of an erasure (R34, Art. 17 GDPR, I6) in its messaging tables: the dead letters.

A dead letter is a whole event: the customer's name, address, numbers, the manage link's token, staff's
free text. When booking erases an appointment's or a wish's personal data, each consumer erases its copies
on the erasure event (`appointment.personal_data_erased`, `waiting.personal_data_erased`), in its own
schema and transaction; `erase_dead_letters` is the part every one of them shares. A dead letter about the
appointment or wish stays (administrators see it, and may replay it: the consumers apply an event of an
erased appointment without its data anyway), but it keeps the event without the person's data: the
same shape, so that it is still a valid event of its type. A dead letter that comes after the erasure (an
event that was still being retried) is stored so as well: `erased_subjects` keeps the erasure for it,
as long as dead letters of that age are kept (`shared.retention`).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

# Where an event names the appointment or wish it is about (the erasure reaches a dead letter by these).
_SUBJECT_PATHS = (("appointment", "id"), ("wish", "id"), ("appointment_id",), ("wish_id",))
# Free text staff or a customer typed, by event type: it may hold anything about the person.
_FREE_TEXT = {"appointment.cancelled": ("reason",), "appointment.outcome_recorded": ("note",)}
_ERASED_CUSTOMER = {
    "first_name": "",
    "last_name": "",
    "email": "",
    "phone": None,
    "customer_number": None,
    "household_number": None,
}


def subjects(envelope: dict[str, Any]) -> set[str]:
    """The ids of the appointments and wishes an event (as JSON) is about."""
    data = envelope.get("data")
    found: set[str] = set()
    if not isinstance(data, dict):
        return found
    for path in _SUBJECT_PATHS:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            found.add(value)
    return found


def _bare(url: Any) -> Any:
    """A page link without its token (`<base>/manage/{id}`), as the events without the token carry it."""
    return url.split("?", 1)[0] if isinstance(url, str) else url


def without_personal_data(envelope: dict[str, Any]) -> dict[str, Any]:
    """The event without the person's data, still valid for its model: the customer's fields empty (as in
    booking's events of an erased appointment), the page links without their tokens, the network, the
    interpreter's language and the reference gone, free text empty."""
    data = envelope.get("data")
    if not isinstance(data, dict):
        return envelope
    data = dict(data)
    appointment = data.get("appointment")
    if isinstance(appointment, dict):
        data["appointment"] = {
            **appointment,
            "customer": dict(_ERASED_CUSTOMER),
            "manage_url": _bare(appointment.get("manage_url")),
            "client_network": None,
            "interpreter_language": None,
            "reference": "",
        }
    wish = data.get("wish")
    if isinstance(wish, dict):
        data["wish"] = {
            **wish,
            "customer": {"first_name": "", "last_name": "", "email": ""},
            "page_url": _bare(wish.get("page_url")),
        }
    for field in _FREE_TEXT.get(str(envelope.get("type")), ()):
        if isinstance(data.get(field), str):
            data[field] = ""
    return {**envelope, "data": data}


def _read(body: bytes) -> dict[str, Any] | None:
    try:
        raw = json.loads(body)
    except ValueError:
        return None
    return raw if isinstance(raw, dict) else None


def _erased_body(body: bytes, ids: set[str]) -> bytes | None:
    """The body to keep instead, when it is about one of `ids`; None: it is not."""
    raw = _read(body)
    if raw is None:
        # Not an event at all (it went to the dead letters for that), but it names the id: nothing to keep
        # of it that could be replayed, and it may hold the person's data.
        return b""
    if not subjects(raw) & ids:
        return None
    return json.dumps(without_personal_data(raw)).encode()


def _uuids(values: set[str]) -> list[uuid.UUID]:
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            continue
    return sorted(found)


async def _serialise(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> None:
    """The erasure and the collection of a dead letter about the same id, one after the other (else a
    dead letter collected while the erasure commits would keep the data): transaction-scoped, in a fixed
    order."""
    for subject in ids:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"otv.erasure.{subject}")


async def erase_dead_letters(conn: asyncpg.Connection, subject: uuid.UUID, now: datetime) -> int:
    """The owner erased this appointment's or wish's personal data: so do this service's dead letters,
    now and (through the marker) when one comes later; in the caller's transaction. Returns how many
    dead letters changed."""
    await _serialise(conn, [subject])
    await conn.execute(
        "INSERT INTO erased_subjects (id, erased_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        subject,
        now,
    )
    # Found by the id's bytes anywhere in the body (a body need not be valid JSON, or UTF-8).
    rows = await conn.fetch(
        "SELECT id, body FROM dead_letters WHERE position(convert_to($1, 'UTF8') IN body) > 0 FOR UPDATE",
        str(subject),
    )
    changed = 0
    for row in rows:
        body = _erased_body(bytes(row["body"]), {str(subject)})
        if body is not None and body != bytes(row["body"]):
            await conn.execute("UPDATE dead_letters SET body = $2 WHERE id = $1", row["id"], body)
            changed += 1
    return changed


async def dead_letter_body(conn: asyncpg.Connection, body: bytes) -> bytes:
    """The body to store for a dead letter that comes now, in the caller's transaction: without the
    person's data when the appointment or wish it is about was erased before."""
    raw = _read(body)
    if raw is None:
        return body
    ids = _uuids(subjects(raw))
    if not ids:
        return body
    await _serialise(conn, ids)
    erased = await conn.fetch("SELECT id FROM erased_subjects WHERE id = ANY($1::uuid[])", ids)
    if not erased:
        return body
    return json.dumps(without_personal_data(raw)).encode()
