"""The transactional outbox (I3): events commit with the state change; a relay publishes them.

`add_event` is called inside the use case's transaction. `OutboxRelay` claims unpublished rows with
`FOR UPDATE SKIP LOCKED` (I7: several replicas share the work, none publishes a row another is
publishing), publishes each persistently with publisher confirms and marks it published in the same
transaction. A crash between confirm and commit publishes the row again: at least once, and the
consumers' inbox makes that harmless.

A published row is kept for `OTV_OUTBOX_KEEP_PUBLISHED_HOURS`, then the relay deletes it (R34): events
carry whole appointments, the manage link's token included, and nothing reads a published row but a
restore after a lost broker, which publishes again what left shortly before its restore point. The
retention runs' reports (`retention.run_completed`, counts only) stay: the next run is decided by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import aio_pika
import asyncpg
import structlog
from aio_pika.abc import AbstractRobustConnection

from shared.broker import declare_events_exchange
from shared.clock import Clock
from shared.config import CommonSettings
from shared.events import Envelope, EventData, make_envelope
from shared.metrics import OUTBOX_LAG, OUTBOX_PENDING, OUTBOX_PUBLISH_ERRORS, OUTBOX_PUBLISHED

log = structlog.get_logger(__name__)

BATCH_SIZE = 200
PRUNE_BATCH = 1000  # published rows deleted per statement
PRUNE_EVERY = 60.0  # seconds between two looks for published rows past their keep time (at most)


async def add_envelope(conn: asyncpg.Connection, envelope: Envelope) -> None:
    await conn.execute(
        "INSERT INTO outbox (id, type, envelope) VALUES ($1, $2, $3::jsonb)",
        envelope.id,
        envelope.type,
        envelope.model_dump(mode="json"),
    )


async def add_event(conn: asyncpg.Connection, data: EventData, *, producer: str, clock: Clock) -> Envelope:
    """Write one event into the outbox, in the caller's transaction."""
    envelope = make_envelope(data, producer=producer, clock=clock)
    await add_envelope(conn, envelope)
    return envelope


async def add_event_where(
    conn: asyncpg.Connection | asyncpg.Pool,
    guard: str,
    args: Sequence[Any],
    data: EventData,
    *,
    producer: str,
    clock: Clock,
) -> Envelope | None:
    """Run `guard` (one statement with RETURNING, its parameters `args`) and write the event into the
    outbox only when it returned a row. Both are one statement, so both happen or neither (I3) without a
    transaction around them: one round trip where BEGIN, two statements and COMMIT were four.
    Returns the event, or None when the guard changed nothing."""
    envelope = make_envelope(data, producer=producer, clock=clock)
    n = len(args)
    written = await conn.fetchval(
        f"WITH guard AS ({guard}) INSERT INTO outbox (id, type, envelope)"  # noqa: S608 -- the guard is our own SQL; values are parameters
        f" SELECT ${n + 1}::uuid, ${n + 2}::text, ${n + 3}::jsonb FROM (SELECT FROM guard LIMIT 1) AS once"
        " RETURNING true",
        *args,
        envelope.id,
        envelope.type,
        envelope.model_dump(mode="json"),
    )
    return envelope if written else None


async def delete_published_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    """Delete the events that were published and occurred before `cutoff`; returns how many. Unpublished
    events are never dropped: they have yet to reach their consumers."""
    status = await conn.execute(
        "DELETE FROM outbox WHERE published_at IS NOT NULL AND (envelope->>'occurred_at')::timestamptz < $1",
        cutoff,
    )
    return int(status.split()[-1])


async def delete_published_about(
    conn: asyncpg.Connection, aggregate: Literal["appointment", "wish"], ids: Sequence[uuid.UUID]
) -> int:
    """An erasure (R34, Art. 17 GDPR) in the producer's own transaction: delete the published events that
    carry one of these appointments (`data.appointment`) or wishes (`data.wish`), whenever they were
    written, also after the appointment's end; returns how many. An event not published yet stays: its
    consumers still need it (they apply the erasure event after it), and it goes with the keep time."""
    if not ids:
        return 0
    status = await conn.execute(
        "DELETE FROM outbox WHERE published_at IS NOT NULL AND envelope->'data'->$1->>'id' = ANY($2::text[])",
        aggregate,
        [str(i) for i in ids],
    )
    return int(status.split()[-1])


async def delete_published_kept_past(conn: asyncpg.Connection, keep: timedelta) -> int:
    """Delete one batch of the events published longer than `keep` ago (by the database's clock, which
    wrote `published_at`), but the retention runs' reports; returns how many. Rows another replica deletes
    at the same moment are skipped, not waited for."""
    status = await conn.execute(
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox"
        " WHERE published_at < now() - $1::interval AND type <> 'retention.run_completed'"
        " ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)",
        keep,
        PRUNE_BATCH,
    )
    return int(status.split()[-1])


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        connection: AbstractRobustConnection,
        settings: CommonSettings,
    ) -> None:
        self._pool = pool
        self._connection = connection
        self._settings = settings
        self._service = settings.service_name
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listen_conn: asyncpg.Connection | None = None
        self._keep = timedelta(hours=settings.outbox_keep_published_hours)
        self._next_prune = 0.0  # the event loop's time of the next look for rows past their keep time

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._service}")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=self._settings.shutdown_timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self._unlisten()

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        if self._listen_conn is not None and not self._listen_conn.is_closed():
            return
        try:
            self._listen_conn = await self._pool.acquire()
            await self._listen_conn.add_listener(f"{self._settings.db_schema}_outbox", self._on_notify)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox_listen_failed", error=type(exc).__name__)
            await self._unlisten()

    async def _unlisten(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.remove_listener(f"{self._settings.db_schema}_outbox", self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.2
        channel = None
        while not self._stopping:
            try:
                await self._listen()
                if channel is None or channel.is_closed:
                    channel = await self._connection.channel(publisher_confirms=True)
                    exchange = await declare_events_exchange(channel, self._settings)
                published = await self.drain_once(exchange)
                backoff = 0.2
                if published:
                    continue  # there may be more
                await self._prune_if_due()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._settings.outbox_poll_seconds)
                self._wake.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- the relay must survive any broker or database outage
                OUTBOX_PUBLISH_ERRORS.labels(self._service).inc()
                log.warning(
                    "outbox_relay_error", error=type(exc).__name__, detail=_without_row(exc), retry_in=backoff
                )
                channel = None
                await self._unlisten()
                await self._record_lag_after_failure()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):
                await channel.close()

    async def drain_once(self, exchange: aio_pika.abc.AbstractExchange) -> int:
        """Publish one batch of unpublished rows; returns how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT seq, id, type, envelope::text AS envelope FROM outbox"
                " WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                BATCH_SIZE,
            )
            if not rows:
                await self._record_lag(conn)
                return 0
            # Publish in order and wait for every confirm; a failure rolls back and nothing is marked.
            confirms = [
                exchange.publish(
                    aio_pika.Message(
                        row["envelope"].encode(),
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=str(row["id"]),
                        type=row["type"],
                        correlation_id=json.loads(row["envelope"]).get("correlation_id"),
                        app_id=f"otv-{self._service}",
                    ),
                    routing_key=row["type"],
                    timeout=10,
                )
                for row in rows
            ]
            await asyncio.gather(*confirms)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])",
                [row["seq"] for row in rows],
            )
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def _prune_if_due(self) -> None:
        """While idle, now and then: delete the rows published longer than the keep time ago."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_prune:
            return
        self._next_prune = loop.time() + min(PRUNE_EVERY, self._keep.total_seconds())
        deleted = 0
        try:
            async with self._pool.acquire() as conn:
                while (batch := await delete_published_kept_past(conn, self._keep)) and not self._stopping:
                    deleted += batch
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- publishing goes on; the rows go at the next look
            log.warning("outbox_prune_failed", error=type(exc).__name__)
        if deleted:
            log.info("outbox_pruned", events_deleted=deleted)

    async def _record_lag_after_failure(self) -> None:
        """While publishing fails (the broker is away) the lag grows: keep the gauge honest, so that the
        outbox-lag alert fires; best effort, the database may be away too."""
        try:
            async with asyncio.timeout(2), self._pool.acquire() as conn:
                await self._record_lag(conn)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 -- only a gauge: the relay's own retry goes on regardless
            log.debug("outbox_lag_unknown")

    async def _record_lag(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT count(*) AS pending,"
            " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS lag"
            " FROM outbox WHERE published_at IS NULL"
        )
        if row is not None:
            OUTBOX_PENDING.labels(self._service).set(row["pending"])
            OUTBOX_LAG.labels(self._service).set(float(row["lag"]))


def _without_row(exc: Exception) -> str:
    """What a failure says, for the log: a PostgreSQL error's first line only, since its DETAIL can quote
    the row (an event's payload holds the person's data)."""
    return str(exc).split("\n", 1)[0][:200]
