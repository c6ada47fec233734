"""Use cases of integrations (R50), one transaction each; every change by an administrator writes its
audit entry in the same transaction (invariant I5).

- `store_event`: the consumer's effect: the event into the feed and one delivery per matching
  subscription, in the transaction of the inbox row (I3).
- `send_due`: the sender: claims due deliveries with `FOR UPDATE SKIP LOCKED` (I7), POSTs them signed
  (Standard Webhooks), records the result, retries with back-off, pauses a subscription that keeps failing.
- `read_feed`: the pull alternative for API keys with `events:read`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from services.gateway.integrations import db
from services.gateway.integrations.domain import (
    ROTATION_OVERLAP,
    RetryPolicy,
    address_refusal,
    check_locations,
    check_patterns,
    check_url_shape,
    literal_address,
    location_in_scope,
    message_id,
    new_secret,
    place,
    reduce_envelope,
    sign,
    type_matches,
)
from services.gateway.integrations.net import Resolver, check_target
from services.gateway.staff.service import Actor, audit
from shared.clock import Clock
from shared.erasure import erase_dead_letters
from shared.errors import ConflictError, NotFoundError
from shared.events import Envelope
from shared.events.retention import AppointmentPersonalDataErasedV1
from shared.identity import IdentityKind, Role, StaffIdentity
from shared.metrics import RETENTION_LAST_RUN
from shared.retention import delete_messages_before

log = structlog.get_logger(__name__)

SUBSCRIPTIONS_PAUSED = Gauge(
    "otv_webhook_subscriptions_paused", "Webhook subscriptions paused after failing (waiting for a resume)"
)
DELIVERIES_DROPPED = Counter(
    "otv_webhook_deliveries_dropped_total",
    "Webhook deliveries never made, deleted with their events at the end of the feed's retention period",
)

DELIVERIES_FAILED = Counter(
    "otv_webhook_deliveries_failed_total",
    "Webhook deliveries given up after the retry window (status failed: an administrator can re-send them)",
)
DELIVERIES_SUPERSEDED = Counter(
    "otv_webhook_deliveries_superseded_total",
    "Webhook deliveries not sent because a newer revision of the appointment was stored for the"
    " subscription before them (events reaching the gateway out of order)",
)

SYSTEM = Actor("system:webhooks", "system")
PERSONAL_OPERATION = "events:personal"


@dataclass
class Integrations:
    pool: asyncpg.Pool
    clock: Clock
    resolver: Resolver
    policy: RetryPolicy
    allow_loopback: bool = False
    feed_retention: timedelta = timedelta(days=7)
    # R34: dead letters (whole events, customer data included) and inbox records, as in every service.
    message_retention: timedelta = timedelta(days=28)
    batch_size: int = 50


# --- the consumer's effect --------------------------------------------------------------------------
async def store_event(conn: asyncpg.Connection, envelope: Envelope, now: datetime) -> None:
    # Kept as consumed but for the manage link's token, which never leaves the gateway (`reduce_data`):
    # a copy of the feed must not open, cancel or move anybody's appointment (R34, R41).
    raw = reduce_envelope(envelope.model_dump(mode="json"), include_personal_data=True)
    placement = place(envelope.id, raw["data"])
    stored = await db.insert_feed_row(conn, raw, placement, now)
    if stored is None:
        return
    position, subscriptions = stored
    if envelope.type == AppointmentPersonalDataErasedV1.event_type:
        # Erased on request (Art. 17 GDPR) or by the retention run: the feed's earlier events of the
        # appointment keep no personal data either, for the rest of their time in the feed, and its later
        # ones (a replayed dead letter, a backlog out of order) are stored without them.
        await db.mark_erased(conn, placement.order_key, now)
        await db.strip_personal_data(conn, placement.order_key)
        # And the appointment's events among the consumer's dead letters (whole events, R34).
        await erase_dead_letters(conn, uuid.UUID(str(envelope.data["appointment_id"])), now)
    else:
        reduced = reduce_envelope(raw, include_personal_data=False)
        if reduced != raw:
            # The feed lock (taken by the insert) serialises this with the erasure's own transaction: an
            # erasure stored before is committed, and one stored after strips this row.
            await db.reduce_if_erased(conn, position, placement.order_key, reduced)
    if placement.order_seq is not None:
        # Reached the gateway after a newer revision of its appointment (a backlog drained in parallel, a
        # retry, a replayed dead letter): the feed does not hand it out, webhooks do not send it.
        newest = await db.mark_feed_revision(conn, position, placement.order_key, placement.order_seq, now)
        if newest is not None:
            log.info(
                "event_superseded",
                event_id=str(envelope.id),
                type=envelope.type,
                revision=placement.order_seq,
                newest_revision=newest,
            )
    superseded = 0
    for sub in subscriptions:
        if type_matches(envelope.type, list(sub["event_types"])) and location_in_scope(
            placement.location_id, list(sub["locations"])
        ):
            status = await db.insert_delivery(conn, sub["id"], position, raw, placement, now)
            superseded += status == "superseded"
    if superseded:
        DELIVERIES_SUPERSEDED.inc(superseded)


# --- subscriptions ----------------------------------------------------------------------------------
def subscription_json(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    out = {k: row[k] for k in db.SUBSCRIPTION_COLUMNS.replace(" ", "").split(",")}
    # Until when the secret before the last rotation still signs (None: it no longer does).
    until = out.pop("previous_secret_until")
    out["previous_secret_expires_at"] = until if until is not None and until > now else None
    out["id"] = str(out["id"])
    out["event_types"] = list(out["event_types"])
    out["locations"] = list(out["locations"])
    for key in (
        "paused_at",
        "failing_since",
        "last_success_at",
        "created_at",
        "updated_at",
        "previous_secret_expires_at",
    ):
        out[key] = out[key].isoformat() if out[key] is not None else None
    return out


async def create_subscription(
    it: Integrations,
    actor: Actor,
    *,
    name: str,
    url: str,
    event_types: list[str],
    locations: list[str],
    include_personal_data: bool,
) -> tuple[dict[str, Any], str]:
    patterns = check_patterns(event_types)
    scope = check_locations(locations)
    await check_target(it.resolver, url, allow_loopback=it.allow_loopback)
    secret = new_secret()
    now = it.clock.now()
    async with it.pool.acquire() as conn, conn.transaction():
        row = await db.insert_subscription(
            conn,
            name=name,
            url=url,
            event_types=patterns,
            locations=scope,
            include_personal_data=include_personal_data,
            secret=secret,
            now=now,
            created_by=actor.subject,
        )
        await audit(
            conn,
            actor,
            now,
            action="create",
            entity="webhook_subscription",
            entity_id=str(row["id"]),
            changes={
                "fields": ["name", "url", "event_types", "locations", "include_personal_data"],
                "event_types": patterns,
                "locations": scope,
                "include_personal_data": include_personal_data,
            },
        )
    return subscription_json(row, now), secret


async def list_subscriptions(it: Integrations) -> list[dict[str, Any]]:
    now = it.clock.now()
    async with it.pool.acquire() as conn:
        return [subscription_json(r, now) for r in await db.list_subscriptions(conn)]


async def get_subscription(it: Integrations, subscription_id: uuid.UUID) -> dict[str, Any]:
    async with it.pool.acquire() as conn:
        row = await db.find_subscription(conn, subscription_id)
    if row is None:
        raise NotFoundError("No such webhook subscription.")
    return subscription_json(row, it.clock.now())


async def change_subscription(
    it: Integrations,
    actor: Actor,
    subscription_id: uuid.UUID,
    changes: dict[str, Any],
    action: str = "update",
) -> dict[str, Any]:
    """Changes of the scope or target (checked like a new one), pausing and resuming."""
    changes = dict(changes)
    if "event_types" in changes:
        changes["event_types"] = check_patterns(changes["event_types"])
    if "locations" in changes:
        changes["locations"] = check_locations(changes["locations"])
    if "url" in changes:
        await check_target(it.resolver, changes["url"], allow_loopback=it.allow_loopback)
    now = it.clock.now()
    secret: str | None = None
    if action == "rotate_secret":
        secret = new_secret()
        changes["secret"] = secret
    if action == "pause":
        changes.update(status="paused", paused_reason=db.ADMIN_PAUSE, paused_at=now)
    if action == "resume":
        changes.update(
            status="active", paused_reason=None, paused_at=None, consecutive_failures=0, failing_since=None
        )
    changes["updated_at"] = now
    async with it.pool.acquire() as conn, conn.transaction():
        found = await db.find_subscription(conn, subscription_id, lock=True)
        if found is None:
            raise NotFoundError("No such webhook subscription.")
        if secret is not None:
            # The secret until now signs as well for a while (a second rotation meanwhile ends the first's).
            changes.update(previous_secret=found["secret"], previous_secret_until=now + ROTATION_OVERLAP)
        if action == "resume":
            # What waited while it was paused is due now (in order per appointment, as always).
            await conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = $2, retry_from = $2"
                " WHERE subscription_id = $1 AND status = 'pending'",
                subscription_id,
                now,
            )
        row = await db.update_subscription(conn, subscription_id, changes)
        await audit(
            conn,
            actor,
            now,
            action=action,
            entity="webhook_subscription",
            entity_id=str(subscription_id),
            changes={
                "fields": sorted(
                    k
                    for k in changes
                    if k not in {"updated_at", "secret", "previous_secret", "previous_secret_until"}
                )
            },
        )
    out = subscription_json(row, now)
    if secret is not None:
        out["secret"] = secret
    return out


async def delete_subscription(it: Integrations, actor: Actor, subscription_id: uuid.UUID) -> None:
    now = it.clock.now()
    async with it.pool.acquire() as conn, conn.transaction():
        if not await db.delete_subscription(conn, subscription_id):
            raise NotFoundError("No such webhook subscription.")
        await audit(
            conn, actor, now, action="delete", entity="webhook_subscription", entity_id=str(subscription_id)
        )


# --- deliveries -------------------------------------------------------------------------------------
def delivery_json(row: asyncpg.Record) -> dict[str, Any]:
    out = {k: row[k] for k in db.DELIVERY_COLUMNS.replace(" ", "").split(",")}
    out["subscription_id"] = str(out["subscription_id"])
    out["event_id"] = str(out["event_id"])
    out["webhook_id"] = message_id(row["subscription_id"], row["event_id"])
    for key in ("next_attempt_at", "last_attempt_at", "delivered_at", "created_at"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    return out


async def list_deliveries(it: Integrations, f: db.DeliveryFilter) -> list[dict[str, Any]]:
    async with it.pool.acquire() as conn:
        return [delivery_json(r) for r in await db.list_deliveries(conn, f)]


async def resend_delivery(it: Integrations, actor: Actor, delivery_id: int) -> dict[str, Any]:
    now = it.clock.now()
    async with it.pool.acquire() as conn, conn.transaction():
        # Two replicas (or two clicks) and the consumer storing a newer revision meet here: locked first,
        # then checked, so that the check and the change are one step (docs/webhooks.md, "Order and
        # revisions").
        if not await db.lock_for_resend(conn, delivery_id):
            raise NotFoundError("No such delivery.")
        outdated = await db.delivery_is_outdated(conn, delivery_id)
        if outdated is None:
            raise NotFoundError("No such delivery.")
        if outdated:
            # Sent now, it would take the receiver back to an older revision of the appointment.
            raise ConflictError(
                "A newer revision of the appointment was stored for this subscription: this older one"
                " is not sent."
            )
        row = await db.resend(conn, delivery_id, now)
        if row is None:
            raise NotFoundError("No such delivery.")
        await audit(
            conn,
            actor,
            now,
            action="resend",
            entity="webhook_delivery",
            entity_id=str(delivery_id),
            changes={"subscription_id": str(row["subscription_id"])},
        )
    return delivery_json(row)


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None


async def send_due(it: Integrations, session: aiohttp.ClientSession) -> int:
    """One round of the sender: returns how many deliveries were attempted."""
    now = it.clock.now()
    async with it.pool.acquire() as conn, conn.transaction():
        due = await db.claim_due(conn, now, it.batch_size)
        if not due:
            return 0
        outcomes = await asyncio.gather(*(_post(it, session, d, now) for d in due))
        for delivery, outcome in zip(due, outcomes, strict=True):
            await _record(it, conn, delivery, outcome, now)
    return len(due)


async def _post(it: Integrations, session: aiohttp.ClientSession, d: db.Due, now: datetime) -> Outcome:
    envelope = reduce_envelope(d.envelope, include_personal_data=d.include_personal_data)
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
    msg_id = message_id(d.subscription_id, d.event_id)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OTV-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(d.secrets, msg_id, timestamp, body),
    }
    try:
        _, host, _port = check_url_shape(d.url, allow_loopback=it.allow_loopback)
        # IP literals never pass aiohttp's resolver: checked here (names are checked by the resolver
        # at connection time, see net.py).
        literal = literal_address(host)
        refusal = address_refusal(str(literal), allow_loopback=it.allow_loopback) if literal else None
        if refusal is not None:
            return Outcome(None, f"address refused: {refusal}")
        async with session.post(d.url, data=body, headers=headers, allow_redirects=False) as response:
            await response.content.read(1024)
            if 200 <= response.status < 300:
                return Outcome(response.status, None)
            return Outcome(response.status, f"HTTP {response.status}")
    except aiohttp.ClientConnectorError as exc:
        # The checked resolver's refusal (net.py) says which kind of address it was.
        cause = str(exc.os_error)
        return Outcome(None, cause if cause.startswith("address refused") else type(exc).__name__)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return Outcome(None, type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 -- e.g. a URL that no longer validates: a failed attempt
        return Outcome(None, type(exc).__name__)


# 410 Gone: the receiver says the address is no more (Standard Webhooks: disable the endpoint). Paused at
# once rather than retried for a day; the event stays due, and a resume (a new address) sends it.
GONE = 410
GONE_REASON = "the receiver answered 410 Gone (the address is no longer in use)"


async def _record(
    it: Integrations, conn: asyncpg.Connection, d: db.Due, outcome: Outcome, now: datetime
) -> None:
    if outcome.error is None:
        await db.mark_delivered(conn, d.id, outcome.status or 200, now)
        await db.subscription_succeeded(conn, d.subscription_id, now)
        return
    attempts = d.attempts + 1
    give_up = it.policy.gives_up(d.created_at, now)
    await db.mark_failed_attempt(
        conn,
        d.id,
        now=now,
        status=outcome.status,
        error=outcome.error,
        next_attempt_at=it.policy.next_attempt(attempts, now),
        give_up=give_up,
    )
    log.info(
        "webhook_delivery_failed", delivery=d.id, attempts=attempts, status=outcome.status, gave_up=give_up
    )
    if give_up:
        # Also while the subscription works otherwise (a receiver refusing one event): for the alert.
        DELIVERIES_FAILED.inc()
        log.warning(
            "webhook_delivery_given_up",
            delivery=d.id,
            subscription=str(d.subscription_id),
            attempts=attempts,
            status=outcome.status,
        )
    state = await db.subscription_failed(conn, d.subscription_id, now)
    reason = (
        GONE_REASON
        if outcome.status == GONE
        else it.policy.pause_reason(state["consecutive_failures"], state["failing_since"], now)
    )
    if reason is not None and state["status"] == "active":
        text = f"{reason}; last error: {outcome.error}"
        await db.update_subscription(
            conn,
            d.subscription_id,
            {"status": "paused", "paused_reason": text, "paused_at": now, "updated_at": now},
        )
        await audit(
            conn,
            SYSTEM,
            now,
            action="pause",
            entity="webhook_subscription",
            entity_id=str(d.subscription_id),
            changes={"reason": text},
        )
        log.warning("webhook_subscription_paused", subscription=str(d.subscription_id))


# --- the feed ---------------------------------------------------------------------------------------
def feed_scope(identity: StaffIdentity) -> tuple[list[str] | None, bool]:
    """(locations the caller sees, None for all; whether personal data are included)."""
    if identity.kind is IdentityKind.API_KEY:
        locations = identity.locations_with(Role.SERVICE_CENTRE)
        personal = PERSONAL_OPERATION in identity.operations
    else:
        locations = identity.locations_with(Role.ADMIN)
        personal = False
    if locations is not None and "*" in locations:
        locations = None
    return (sorted(locations) if locations is not None else None), personal


async def read_feed(
    it: Integrations, identity: StaffIdentity, *, after: int, limit: int, types: list[str] | None
) -> dict[str, Any]:
    locations, personal = feed_scope(identity)
    async with it.pool.acquire() as conn:
        rows = await db.read_feed(conn, after=after, limit=limit, locations=locations, types=types)
        # Read after the page: a purge between the two is reported (perhaps needlessly), never missed.
        purged = await db.purged_up_to(conn)
    events = []
    for row in rows:
        envelope = json.loads(row["envelope"]) if isinstance(row["envelope"], str) else row["envelope"]
        events.append(
            {"cursor": row["position"], **reduce_envelope(envelope, include_personal_data=personal)}
        )
    next_cursor = rows[-1]["position"] if rows else after
    return {
        "events": events,
        "next_cursor": next_cursor,
        "has_more": len(rows) == limit,
        # Events after the cursor were deleted (retention) before the reader got them.
        "missed_events": 0 < after < purged,
    }


async def purge_feed(it: Integrations) -> int:
    """Retention: feed rows (and their deliveries) older than the period are deleted, and previous signing
    secrets whose day of overlap is over (a secret kept is a secret that can leak). Deliveries not yet
    made go with them (a subscription paused for longer than the period): they are counted and logged,
    never lost silently. The consumer's dead letters and inbox records go after the retention period
    of personal data (R34)."""
    now = it.clock.now()
    cutoff = now - it.feed_retention
    async with it.pool.acquire() as conn, conn.transaction():
        dropped = await db.count_undelivered_before(conn, cutoff)
        deleted = await db.delete_feed_before(conn, cutoff)
        messages = await delete_messages_before(conn, now - it.message_retention)
        # An erasure holds as long as a later event of the appointment can still come: a replayed dead
        # letter is kept for the messages' retention period, which may be longer than the feed's.
        await db.delete_erasure_marks_before(conn, now - max(it.feed_retention, it.message_retention))
        # The same for the newest revision of an appointment (counted from its last stored event).
        await db.delete_revision_marks_before(conn, now - max(it.feed_retention, it.message_retention))
        await db.forget_expired_secrets(conn, now)
    RETENTION_LAST_RUN.labels("gateway").set(it.clock.now().timestamp())  # the alert's clock
    if deleted or any(messages.values()):
        log.info("event_feed_purged", rows=deleted, **messages)
    if dropped:
        DELIVERIES_DROPPED.inc(dropped)
        log.warning("webhook_deliveries_dropped", deliveries=dropped, older_than=cutoff.isoformat())
    return deleted


async def report_state(it: Integrations) -> None:
    """The number of subscriptions paused for failing, for the alert (they wait for an administrator's
    resume); one an administrator paused on purpose is not counted."""
    async with it.pool.acquire() as conn:
        SUBSCRIPTIONS_PAUSED.set(await db.count_paused(conn))
