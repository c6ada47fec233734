"""The consumer base (I3, I4): a durable quorum queue per consumer, an inbox row in the same transaction
as the effect, ack after commit, bounded retries with back-off, then the dead letters.

Queues of a consumer named `notifier.appointments` (with the default prefix `otv`):
- `otv.notifier.appointments`        the work queue, bound to the events exchange by routing keys;
- `otv.notifier.appointments.retry`  no consumer: a failed message waits here for its back-off, then
                                     expires back into the work queue;
- `otv.notifier.appointments.dead`   dead letters, collected into the service's `dead_letters` table
                                     where staff can see and replay them.

Messages that arrive together are applied together: while one transaction commits, the next deliveries
gather, and the consumer applies them (up to MAX_BATCH) in one transaction with one inbox statement
(issue 10: a transaction per event cost the database a commit and the service a round trip or two per
event, several times per booking). One message alone is applied alone, without waiting for company. If
a batch fails, each of its messages is applied alone once more, so that only the failing one is retried
or dead-lettered and the others are not held back by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import pydantic
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

import shared.events.all  # noqa: F401 -- every consumer knows every event model, whatever its service imports
from shared.broker import declare_events_exchange
from shared.config import CommonSettings
from shared.erasure import dead_letter_body
from shared.events import Envelope, EventData, known_versions, model_for
from shared.logging import correlation_id_var
from shared.metrics import CONSUMED, CONSUMED_OUTCOMES, QUEUE_CHECK_ERRORS, QUEUE_MESSAGES, count_from_zero

log = structlog.get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope, Any], Awaitable[None]]

ATTEMPT_HEADER = "x-otv-attempt"
ERROR_HEADER = "x-otv-error"
# A message that kills the process before it can be acked is redelivered; the broker dead-letters it
# after this many deliveries, so a poison message never blocks the queue (I4).
DELIVERY_LIMIT = 20


# An outage of the service's own database says nothing about the event: such a failure does not use up
# the event's attempts (I4 is about events that cannot be applied). The event waits, ever longer up to
# OUTAGE_MAX_DELAY seconds, until the database is back, so that a restart or fail-over of PostgreSQL
# loses no confirmation to the dead letters (I3). A timeout still counts as an attempt, except a wait on
# a row another transaction holds (is_busy below).
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
OUTAGE_HEADER = "x-otv-outages"
# How often an event of an unknown type or version was put back (consumer_unknown_max_tries).
UNKNOWN_HEADER = "x-otv-unknown-tries"
OUTAGE_MAX_DELAY = 5.0

# At most this many messages in one transaction; the prefetch lets enough arrive to fill a batch while
# the previous one commits.
MAX_BATCH = 50
PREFETCH = 100


def is_outage(exc: Exception) -> bool:
    return isinstance(exc, OUTAGE_ERRORS) and not isinstance(exc, TimeoutError)


class InboxBusy(Exception):
    """The inbox row of an event is held by another transaction that has not ended: the transaction of
    a replica that died before its commit (its backend lives until idle_in_transaction_session_timeout
    ends it), or of a replica that applies the same event just now. Nothing is wrong with the event."""


def is_busy(exc: Exception) -> bool:
    """A wait on a row another transaction holds: the event is tried again later, without using up an
    attempt (I4 is about events that cannot be applied), so that a redelivered duplicate waiting on its own
    dead first delivery never ends in the dead letters."""
    return isinstance(exc, InboxBusy | asyncpg.LockNotAvailableError)


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help: the message goes to the dead letters at once."""


@dataclass
class _Delivery:
    """A message whose event is valid and has a handler, waiting for its batch; `outcome` is True when it
    was applied, False when it was a duplicate, or the exception that kept it from being applied."""

    envelope: Envelope
    data: EventData
    handler: Handler
    outcome: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def dead_letter_exchange(settings: CommonSettings) -> str:
    return f"{settings.exchange}.dlx"


class Consumer:
    def __init__(
        self,
        name: str,
        *,
        pool: asyncpg.Pool | None,
        connection: AbstractRobustConnection,
        settings: CommonSettings,
        handlers: dict[str, Handler],
        bindings: Iterable[str] | None = None,
        prefetch: int = PREFETCH,
    ) -> None:
        self.name = name
        self.queue_name = f"{settings.queue_prefix}.{name}"
        self.retry_queue_name = f"{self.queue_name}.retry"
        self.dead_queue_name = f"{self.queue_name}.dead"
        self._pool: asyncpg.Pool = pool  # None only for a consumer used to declare its queues
        self._connection = connection
        self._settings = settings
        self._handlers = handlers
        self._bindings = list(bindings) if bindings is not None else list(handlers)
        self._prefetch = prefetch
        # At 0 from the start, so that the first dead letter after a pod's start counts (OTVDeadLetters).
        count_from_zero(CONSUMED, [name], CONSUMED_OUTCOMES)
        count_from_zero(QUEUE_CHECK_ERRORS, [name])
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._dead_queue: AbstractQueue | None = None
        self._tags: list[tuple[AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._waiting: list[_Delivery] = []
        self._applier: asyncio.Task[None] | None = None
        self._depth_task: asyncio.Task[None] | None = None
        self._depth_stop = asyncio.Event()

    async def declare(self, channel: AbstractChannel) -> AbstractQueue:
        exchange = await declare_events_exchange(channel, self._settings)
        dlx = await channel.declare_exchange(
            dead_letter_exchange(self._settings), aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await channel.declare_queue(
            self.queue_name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": dlx.name,
                "x-dead-letter-routing-key": self.dead_queue_name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
                "x-delivery-limit": DELIVERY_LIMIT,
            },
        )
        for key in self._bindings:
            await queue.bind(exchange, routing_key=key)
        await channel.declare_queue(
            self.retry_queue_name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue_name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        dead = await channel.declare_queue(
            self.dead_queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead.bind(dlx, routing_key=self.dead_queue_name)
        self._dead_queue = dead
        return queue

    async def start(self) -> None:
        self._channel = await self._connection.channel(publisher_confirms=True)
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._queue = await self.declare(self._channel)
        assert self._dead_queue is not None  # noqa: S101 -- set by declare()
        self._tags = [
            (self._queue, await self._queue.consume(self._spawn)),
            (self._dead_queue, await self._dead_queue.consume(self._spawn_dead)),
        ]
        self._depth_task = asyncio.create_task(self._watch_depth(), name=f"queue-depth-{self.name}")

    async def _watch_depth(self) -> None:
        """Keep the otv_queue_messages gauge of this consumer's queues, from passive declares on a channel
        of its own (a failed passive declare closes its channel; the consuming one is never touched)."""
        channel: AbstractRobustChannel | None = None
        queues = {"work": self.queue_name, "retry": self.retry_queue_name, "dead": self.dead_queue_name}
        while not self._depth_stop.is_set():
            try:
                if channel is None or channel.is_closed:
                    channel = await self._connection.channel()
                for kind, name in queues.items():
                    queue = await channel.declare_queue(name, passive=True, robust=False, timeout=10)
                    QUEUE_MESSAGES.labels(self.name, kind).set(queue.declaration_result.message_count or 0)
            except Exception as exc:  # noqa: BLE001 -- a broker outage: the gauge waits, the consumer goes on
                QUEUE_CHECK_ERRORS.labels(self.name).inc()
                log.debug("queue_depth_unknown", consumer=self.name, error=type(exc).__name__)
                channel = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._depth_stop.wait(), timeout=self._settings.queue_depth_seconds)
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(channel.close(), timeout=2)

    async def stop(self) -> None:
        """Stop taking messages, let those in hand finish, close the channel (graceful shutdown)."""
        if self._depth_task is not None:
            self._depth_stop.set()
            # A look in progress ends within its timeout; cancelled only if the broker hangs it longer.
            _done, pending = await asyncio.wait({self._depth_task}, timeout=3)
            for task in pending:
                task.cancel()
            self._depth_task = None
        for queue, tag in self._tags:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._tags = []
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self._settings.shutdown_timeout)
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()

    def _spawn(self, message: AbstractIncomingMessage) -> Awaitable[None]:
        return self._track(self.handle(message))

    def _spawn_dead(self, message: AbstractIncomingMessage) -> Awaitable[None]:
        return self._track(self._collect_dead(message))

    async def _track(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._in_flight.add(task)
        try:
            await task
        finally:
            self._in_flight.discard(task)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        attempt = int(message.headers.get(ATTEMPT_HEADER) or 1)  # type: ignore[arg-type]
        try:
            envelope = Envelope.model_validate_json(message.body)
        except pydantic.ValidationError:
            await self._dead(message, "invalid envelope", attempt)
            return
        handler = self._handlers.get(envelope.type)
        known = known_versions(envelope.type)
        if handler is None and known:
            # A type of this release that this consumer does not handle (bound by a pattern): ignored.
            CONSUMED.labels(self.name, "ignored").inc()
            await message.ack()
            return
        model = model_for(envelope.type, envelope.version)
        if handler is None or model is None:
            # A type or version of a newer release (every release knows every event model of its own,
            # shared.events.all): during a rolling update, old and new replicas share the queue, and an
            # old one must not drop what a new one would apply (I3).
            await self._put_back_unknown(message, envelope, known, attempt)
            return
        try:
            data = model.model_validate(envelope.data)
        except pydantic.ValidationError:
            await self._dead(message, f"invalid data for {envelope.type} v{envelope.version}", attempt)
            return
        delivery = _Delivery(envelope, data, handler)
        self._waiting.append(delivery)
        if self._applier is None or self._applier.done():
            self._applier = asyncio.create_task(self._apply_waiting(), name=f"consumer-{self.name}")
        token = correlation_id_var.set(envelope.correlation_id)
        try:
            applied = await delivery.outcome
        except PermanentError as exc:
            await self._dead(message, f"permanent: {type(exc).__name__}: {exc}", attempt)
            return
        except Exception as exc:  # noqa: BLE001 -- any failure of the effect is retried, then dead-lettered
            if is_outage(exc) or is_busy(exc):
                await self._wait_out(message, exc)
            else:
                await self._retry_or_dead(message, exc, attempt)
            return
        finally:
            correlation_id_var.reset(token)
        CONSUMED.labels(self.name, "applied" if applied else "duplicate").inc()
        await message.ack()

    async def _apply_waiting(self) -> None:
        """Apply what has gathered, batch after batch, until nothing waits. It starts after the deliveries
        that arrived with the first one have queued (a task starts after the callbacks already due)."""
        batch: list[_Delivery] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._apply_batch(batch)
        finally:
            # Stopped in the middle (cancelled): those messages stay unacknowledged and come again.
            for delivery in [*batch, *self._waiting]:
                delivery.outcome.cancel()
            self._waiting = []

    async def _apply_batch(self, batch: list[_Delivery]) -> None:
        try:
            outcomes = await self._apply(batch)
        except Exception as exc:  # noqa: BLE001 -- the messages' own handling decides what follows
            if len(batch) == 1 or is_outage(exc):
                for delivery in batch:
                    _settle(delivery, exc)
                return
            # One of them failed, and the whole batch rolled back: each alone, so that the failure
            # stays with the message that causes it.
            for delivery in batch:
                try:
                    (applied,) = await self._apply([delivery])
                except Exception as single:  # noqa: BLE001 -- handed to that message's handling
                    _settle(delivery, single)
                else:
                    _settle(delivery, applied)
            return
        for delivery, applied in zip(batch, outcomes, strict=True):
            _settle(delivery, applied)

    async def _apply(self, batch: list[_Delivery]) -> list[bool]:
        """The batch's effects and inbox rows in one transaction; for each delivery whether it was applied
        (False: the event was applied before, or earlier in this batch)."""
        outcomes: list[bool] = []
        async with self._pool.acquire() as conn, conn.transaction():
            # The transaction's lock_timeout is set by the inbox statement itself (no round trip of its
            # own), before its first row waits; it holds for the handlers' statements too.
            try:
                inserted = await conn.fetch(
                    "INSERT INTO inbox (consumer, event_id)"
                    " SELECT $1, event_id FROM unnest($2::uuid[]) AS event_id,"
                    " set_config('lock_timeout', $3, true)"
                    " ON CONFLICT DO NOTHING RETURNING event_id",
                    self.name,
                    list(dict.fromkeys(d.envelope.id for d in batch)),
                    f"{self._settings.consumer_lock_timeout_ms}ms",
                )
            except (TimeoutError, asyncpg.LockNotAvailableError) as exc:
                # Nothing but another transaction's inbox row makes this statement wait (a command
                # timeout shorter than the lock timeout ends the same wait).
                raise InboxBusy("the inbox row is held by another transaction") from exc
            fresh = {row["event_id"] for row in inserted}
            for delivery in batch:
                envelope = delivery.envelope
                if envelope.id not in fresh:
                    outcomes.append(False)
                    continue
                fresh.discard(envelope.id)
                token = correlation_id_var.set(envelope.correlation_id)
                try:
                    await delivery.handler(conn, envelope, delivery.data)
                finally:
                    correlation_id_var.reset(token)
                outcomes.append(True)
        for delivery, applied in zip(batch, outcomes, strict=True):
            if applied:
                # R51: one line per applied event, with the correlation id of the request that caused it.
                log.info(
                    "event_applied",
                    consumer=self.name,
                    event_type=delivery.envelope.type,
                    event_id=str(delivery.envelope.id),
                    correlation_id=delivery.envelope.correlation_id,
                )
        return outcomes

    async def _retry_or_dead(self, message: AbstractIncomingMessage, exc: Exception, attempt: int) -> None:
        reason = f"{type(exc).__name__}"
        if attempt >= self._settings.consumer_max_attempts:
            await self._dead(message, f"failed {attempt} times, last: {reason}", attempt)
            return
        delay = self._settings.consumer_retry_base_ms * (2 ** (attempt - 1)) / 1000
        log.warning("event_retry", consumer=self.name, attempt=attempt, retry_in=delay, error=reason)
        CONSUMED.labels(self.name, "retried").inc()
        try:
            assert self._channel is not None  # noqa: S101 -- started before messages arrive
            await self._channel.default_exchange.publish(
                self._copy(message, {ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: reason}, expiration=delay),
                routing_key=self.retry_queue_name,
            )
        except Exception:  # noqa: BLE001 -- broker trouble: let the broker redeliver the original
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _wait_out(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        """The database is away, or a row the event needs is held by a transaction that has not ended: try
        the event again later, without counting an attempt."""
        outages = int(message.headers.get(OUTAGE_HEADER) or 0) + 1  # type: ignore[arg-type]
        base = self._settings.consumer_retry_base_ms / 1000
        delay = min(OUTAGE_MAX_DELAY, base * 2 ** min(outages - 1, 10))
        log.warning(
            "event_waits_for_lock" if is_busy(exc) else "event_waits_for_database",
            consumer=self.name,
            outages=outages,
            retry_in=delay,
            error=type(exc).__name__,
        )
        CONSUMED.labels(self.name, "deferred").inc()
        try:
            assert self._channel is not None  # noqa: S101 -- started before messages arrive
            await self._channel.default_exchange.publish(
                self._copy(message, {OUTAGE_HEADER: outages}, expiration=delay),
                routing_key=self.retry_queue_name,
            )
        except Exception:  # noqa: BLE001 -- broker trouble too: let the broker redeliver the original
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _put_back_unknown(
        self, message: AbstractIncomingMessage, envelope: Envelope, known: list[int], attempt: int
    ) -> None:
        """Put an event of an unknown type or version back for a replica of a newer release; after
        `consumer_unknown_max_tries` into the dead letters, where staff see it (never dropped silently)."""
        tries = int(message.headers.get(UNKNOWN_HEADER) or 0) + 1  # type: ignore[arg-type]
        log.warning(
            "event_version_unknown",
            consumer=self.name,
            event_type=envelope.type,
            version=envelope.version,
            known=known,
            tries=tries,
        )
        if tries >= self._settings.consumer_unknown_max_tries:
            await self._dead(
                message,
                f"unknown event: {envelope.type} v{envelope.version} (this release knows {known or 'none'})",
                attempt,
            )
            return
        CONSUMED.labels(self.name, "deferred").inc()
        try:
            assert self._channel is not None  # noqa: S101 -- started before messages arrive
            await self._channel.default_exchange.publish(
                self._copy(
                    message, {UNKNOWN_HEADER: tries}, expiration=self._settings.consumer_unknown_retry_seconds
                ),
                routing_key=self.retry_queue_name,
            )
        except Exception:  # noqa: BLE001 -- broker trouble: let the broker redeliver the original
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _dead(self, message: AbstractIncomingMessage, reason: str, attempt: int) -> None:
        log.error("event_dead_lettered", consumer=self.name, reason=reason, message_id=message.message_id)
        CONSUMED.labels(self.name, "dead").inc()
        try:
            assert self._channel is not None  # noqa: S101 -- started before messages arrive
            await self._channel.default_exchange.publish(
                self._copy(message, {ATTEMPT_HEADER: attempt, ERROR_HEADER: reason[:500]}),
                routing_key=self.dead_queue_name,
            )
        except Exception:  # noqa: BLE001 -- fall back to the broker's own dead-lettering (at least once)
            await message.reject(requeue=False)
            return
        await message.ack()

    @staticmethod
    def _copy(
        message: AbstractIncomingMessage, headers: dict[str, Any], expiration: float | None = None
    ) -> aio_pika.Message:
        kept = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-death")}
        return aio_pika.Message(
            message.body,
            headers={**kept, **headers},
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
            correlation_id=message.correlation_id,
            expiration=expiration,
        )

    async def _collect_dead(self, message: AbstractIncomingMessage) -> None:
        headers = {k: str(v) for k, v in (message.headers or {}).items()}
        reason = headers.get(ERROR_HEADER) or _death_reason(message) or "dead-lettered by the broker"
        attempt = int(headers.get(ATTEMPT_HEADER) or 0)
        event_id, event_type = _peek_ids(message.body)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO dead_letters (consumer, queue, event_id, event_type, reason, attempts, body,"
                    " headers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
                    self.name,
                    self.queue_name,
                    event_id,
                    event_type,
                    reason,
                    attempt,
                    # Without the person's data when the appointment or wish was erased already (R34).
                    await dead_letter_body(conn, message.body),
                    headers,
                )
        except Exception as exc:  # noqa: BLE001 -- never left unacknowledged: back to the queue, tried again
            log.warning("dead_letter_not_collected", consumer=self.name, error=type(exc).__name__)
            await asyncio.sleep(1.0)
            await message.nack(requeue=True)
            return
        await message.ack()


def _settle(delivery: _Delivery, outcome: bool | Exception) -> None:
    """Hand the outcome to the message's task; a task stopped meanwhile has cancelled its future."""
    if delivery.outcome.done():
        return
    if isinstance(outcome, Exception):
        delivery.outcome.set_exception(outcome)
    else:
        delivery.outcome.set_result(outcome)


def _death_reason(message: AbstractIncomingMessage) -> str | None:
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return f"broker: {deaths[0].get('reason')!s}"
    return None


def _peek_ids(body: bytes) -> tuple[str | None, str | None]:
    try:
        raw = pydantic.TypeAdapter(dict[str, Any]).validate_json(body)
    except pydantic.ValidationError:
        return None, None
    event_id, event_type = raw.get("id"), raw.get("type")
    return (
        str(event_id) if event_id is not None else None,
        str(event_type) if event_type is not None else None,
    )


async def list_dead_letters(pool: asyncpg.Pool, *, include_replayed: bool = False) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, consumer, queue, event_id, event_type, reason, attempts, dead_at, replayed_at"
        " FROM dead_letters WHERE $1 OR replayed_at IS NULL ORDER BY id",
        include_replayed,
    )
    return [dict(r) for r in rows]


async def replay_dead_letter(
    pool: asyncpg.Pool, connection: AbstractRobustConnection, dead_letter_id: int
) -> bool:
    """Send a dead letter back to its consumer's queue with a fresh retry budget."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT queue, body, event_id FROM dead_letters WHERE id = $1 AND replayed_at IS NULL FOR UPDATE",
            dead_letter_id,
        )
        if row is None:
            return False
        channel = await connection.channel(publisher_confirms=True)
        try:
            await channel.default_exchange.publish(
                aio_pika.Message(
                    row["body"],
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=row["event_id"] or str(uuid.uuid4()),
                    headers={ATTEMPT_HEADER: 1},
                ),
                routing_key=row["queue"],
            )
        finally:
            await channel.close()
        await conn.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = $1", dead_letter_id)
    return True
