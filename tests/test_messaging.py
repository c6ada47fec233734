"""The messaging core on the real PostgreSQL and RabbitMQ: outbox, relay, inbox, retries, dead letters
(I3, I4, I7)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest
import structlog

from shared.clock import SystemClock
from shared.config import CommonSettings
from shared.consumer import Consumer, list_dead_letters, replay_dead_letter
from shared.db import create_pool
from shared.events import Envelope, EventData, event, make_envelope
from shared.outbox import OutboxRelay, add_event, add_event_where
from tests.conftest import broker_stopped, db_settings, delete_broker_objects, wait_for

SERVICE = "catalog"  # any service's schema has the messaging tables; the probe table lives beside them


@event("test.probe_happened", 1)
class ProbeHappenedV1(EventData):
    probe: int


@event("test.probe_happened", 2)
class ProbeHappenedV2(EventData):
    probe: str


class ProbeHappenedV3(EventData):
    """Version 3, which only a newer release knows: registered in the test that needs it."""

    probe: int


@event("test.other_happened", 1)
class OtherHappenedV1(EventData):
    probe: int


@pytest.fixture
async def pool(clean_db: dict[str, asyncpg.Pool]) -> asyncpg.Pool:
    pool = clean_db[SERVICE]
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS messaging_probe (probe integer NOT NULL, event_id uuid NOT NULL)"
    )
    await pool.execute("TRUNCATE messaging_probe")
    return pool


@pytest.fixture
async def harness(pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection) -> AsyncIterator[Harness]:
    h = Harness(pool, amqp)
    yield h
    await h.stop()


class Harness:
    """Relays and consumers of one test, each stopped at the end."""

    def __init__(self, pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection) -> None:
        self.pool = pool
        self.amqp = amqp
        self.settings = db_settings(SERVICE, consumer_max_attempts=3)
        self.name = f"probe{uuid.uuid4().hex[:6]}"
        self.relays: list[OutboxRelay] = []
        self.consumers: list[Consumer] = []
        self.poison: set[int] = set()

    async def relay(self) -> OutboxRelay:
        relay = OutboxRelay(self.pool, self.amqp, self.settings)
        await relay.start()
        self.relays.append(relay)
        return relay

    async def consumer(
        self,
        *,
        pool: asyncpg.Pool | None = None,
        settings: CommonSettings | None = None,
        bindings: list[str] | None = None,
    ) -> Consumer:
        async def record(conn: asyncpg.Connection, envelope: object, data: ProbeHappenedV1) -> None:
            if data.probe in self.poison:
                raise RuntimeError("poison")
            await conn.execute(
                "INSERT INTO messaging_probe (probe, event_id) VALUES ($1, $2)",
                data.probe,
                envelope.id,  # type: ignore[attr-defined]
            )

        consumer = Consumer(
            self.name,
            pool=pool or self.pool,
            connection=self.amqp,
            settings=settings or self.settings,
            handlers={"test.probe_happened": record},
            bindings=bindings,
        )
        await consumer.start()
        self.consumers.append(consumer)
        return consumer

    async def stop(self) -> None:
        for relay in self.relays:
            await relay.stop()
        for consumer in self.consumers:
            await consumer.stop()
        prefixes = {consumer.queue_name.removesuffix(f".{self.name}") for consumer in self.consumers}
        for prefix in prefixes:
            await delete_broker_objects(self.amqp, queue_prefix=prefix, consumers=[self.name])

    async def effects(self) -> list[int]:
        return [r["probe"] for r in await self.pool.fetch("SELECT probe FROM messaging_probe ORDER BY probe")]

    async def unpublished(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def write_probe(pool: asyncpg.Pool, probe: int, *, commit: bool = True) -> None:
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await add_event(conn, ProbeHappenedV1(probe=probe), producer="test", clock=SystemClock())
        if commit:
            await tx.commit()
        else:
            await tx.rollback()


async def test_rolled_back_change_publishes_nothing_and_committed_one_arrives_once(harness: Harness) -> None:
    await harness.consumer()
    await harness.relay()
    await write_probe(harness.pool, 1, commit=False)
    await write_probe(harness.pool, 2)
    await wait_for(lambda: harness.effects(), what="the committed event")
    await asyncio.sleep(0.5)  # time for a wrong second delivery to show
    assert await harness.effects() == [2]
    assert await harness.unpublished() == 0


async def test_an_event_guarded_by_a_change_is_published_only_when_the_change_happened(
    harness: Harness,
) -> None:
    """The notifier's mail.sent goes out with the mail's end in one statement; a sender whose claim was
    taken over changes nothing and so publishes nothing."""
    await harness.consumer()
    await harness.relay()
    await harness.pool.execute("INSERT INTO messaging_probe (probe, event_id) VALUES (100, $1)", uuid.uuid4())
    claim = "UPDATE messaging_probe SET probe = probe + 1 WHERE probe = $1 RETURNING probe"
    clock = SystemClock()
    taken_over = await add_event_where(
        harness.pool, claim, (99,), ProbeHappenedV1(probe=1), producer="test", clock=clock
    )
    held = await add_event_where(
        harness.pool, claim, (100,), ProbeHappenedV1(probe=2), producer="test", clock=clock
    )
    assert taken_over is None
    assert held is not None
    await wait_for(
        lambda: harness.pool.fetchval("SELECT 1 FROM messaging_probe WHERE probe = 2"), what="the event"
    )
    await asyncio.sleep(0.5)  # time for a wrong second event to show
    assert await harness.effects() == [2, 101]
    assert await harness.unpublished() == 0


async def test_same_event_delivered_twice_has_one_effect(harness: Harness) -> None:
    await harness.consumer()
    envelope = make_envelope(ProbeHappenedV1(probe=7), producer="test", clock=SystemClock())
    channel = await harness.amqp.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(harness.settings.exchange)
    for _ in range(2):
        await exchange.publish(
            aio_pika.Message(envelope.model_dump_json().encode()), routing_key=envelope.type
        )
    await channel.close()
    await wait_for(lambda: harness.effects(), what="the effect")
    await asyncio.sleep(0.5)
    assert await harness.effects() == [7]


async def test_two_relays_publish_every_row_once_none_stuck(harness: Harness) -> None:
    await harness.consumer()
    for probe in range(300):
        await write_probe(harness.pool, probe)
    await harness.relay()
    await harness.relay()

    async def all_arrived() -> bool:
        return len(await harness.effects()) >= 300

    await wait_for(all_arrived, timeout=30, what="300 events through two relays")
    assert await harness.effects() == list(range(300))
    assert await harness.unpublished() == 0


async def test_poison_message_ends_in_dead_letters_and_the_rest_flows(harness: Harness) -> None:
    harness.poison = {13}
    await harness.consumer()
    await harness.relay()
    for probe in (12, 13, 14):
        await write_probe(harness.pool, probe)

    async def dead() -> list[dict[str, object]]:
        return await list_dead_letters(harness.pool)

    letters = await wait_for(dead, timeout=15, what="the dead letter")
    assert await harness.effects() == [12, 14]
    assert len(letters) == 1
    assert letters[0]["event_type"] == "test.probe_happened"
    assert letters[0]["attempts"] == 3  # the bounded retries of the settings
    assert "RuntimeError" in str(letters[0]["reason"])

    # Once the cause is mended, staff replay it and it takes effect once.
    harness.poison = set()
    assert await replay_dead_letter(harness.pool, harness.amqp, int(letters[0]["id"]))
    await wait_for(lambda: _has(harness, 13), what="the replayed event")
    assert await harness.effects() == [12, 13, 14]
    assert await list_dead_letters(harness.pool) == []


async def test_a_burst_is_applied_in_shared_transactions_and_a_poison_in_it_fails_alone(
    harness: Harness,
) -> None:
    harness.poison = {150}
    for probe in range(300):
        await write_probe(harness.pool, probe)
    await harness.consumer()
    await harness.relay()  # publishes the 300 at once: they reach the consumer together

    letters = await wait_for(lambda: list_dead_letters(harness.pool), timeout=30, what="the dead letter")
    await wait_for(lambda: _count_at_least(harness, 299), timeout=30, what="the 299 good events")
    await asyncio.sleep(0.5)  # time for a wrong second effect to show
    assert await harness.effects() == [p for p in range(300) if p != 150]
    assert len(letters) == 1 and letters[0]["attempts"] == 3
    # Each inbox row carries its transaction's start time: far fewer transactions than events (on a loaded
    # machine the messages trickle in and the batches are smaller).
    transactions = await harness.pool.fetchval(
        "SELECT count(DISTINCT processed_at) FROM inbox WHERE consumer = $1", harness.name
    )
    assert transactions < 150


async def _count_at_least(harness: Harness, count: int) -> bool:
    return len(await harness.effects()) >= count


async def _has(harness: Harness, probe: int) -> bool:
    return probe in await harness.effects()


async def test_invalid_message_goes_to_dead_letters_at_once(harness: Harness) -> None:
    await harness.consumer()
    channel = await harness.amqp.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(harness.settings.exchange)
    await exchange.publish(aio_pika.Message(b"{not json"), routing_key="test.probe_happened")
    await channel.close()
    letters = await wait_for(lambda: list_dead_letters(harness.pool), what="the dead letter")
    assert letters[0]["reason"] == "invalid envelope"
    assert letters[0]["attempts"] == 1


async def test_an_unknown_version_is_put_back_until_a_replica_that_knows_it_applies_it(
    harness: Harness,
) -> None:
    """A rolling update: new producers publish version 3 while this replica knows versions 1 and 2. It
    does not drop the event (nor hold back the others): it puts it back, and once a replica of the newer
    release (here: this process, once it knows version 3) takes it, it is applied."""
    settings = db_settings(SERVICE, consumer_unknown_retry_seconds=0.3, consumer_unknown_max_tries=100)
    await harness.consumer(settings=settings)
    clock = SystemClock()
    newer = make_envelope(ProbeHappenedV1(probe=3), producer="test", clock=clock)
    newer = newer.model_copy(update={"version": 3})
    await publish(harness, newer, make_envelope(ProbeHappenedV1(probe=1), producer="test", clock=clock))
    await wait_for(lambda: harness.effects(), what="the known event behind the unknown one")
    await asyncio.sleep(1.0)  # the unknown one goes round a few times
    assert await harness.effects() == [1]
    assert await list_dead_letters(harness.pool) == []

    event("test.probe_happened", 3)(ProbeHappenedV3)  # the newer release's model

    await wait_for(lambda: _has(harness, 3), what="the event, applied by a replica that knows its version")
    assert await harness.effects() == [1, 3]
    assert await list_dead_letters(harness.pool) == []


async def test_an_event_no_replica_knows_ends_in_the_dead_letters_and_a_type_not_handled_is_ignored(
    harness: Harness,
) -> None:
    settings = db_settings(SERVICE, consumer_unknown_retry_seconds=0.2, consumer_unknown_max_tries=3)
    await harness.consumer(settings=settings, bindings=["test.*"])
    clock = SystemClock()
    unknown = make_envelope(ProbeHappenedV1(probe=9), producer="test", clock=clock)
    unknown = unknown.model_copy(update={"version": 9})
    not_handled = make_envelope(OtherHappenedV1(probe=8), producer="test", clock=clock)
    await publish(
        harness, unknown, not_handled, make_envelope(ProbeHappenedV1(probe=2), producer="test", clock=clock)
    )

    letters = await wait_for(lambda: list_dead_letters(harness.pool), what="the dead letter")
    assert [letter["event_id"] for letter in letters] == [str(unknown.id)]
    assert str(letters[0]["reason"]).startswith(
        "unknown event: test.probe_happened v9 (this release knows [1, 2"
    )
    assert await harness.effects() == [2]


@pytest.mark.slow
async def test_events_waiting_while_broker_is_down_are_published_once_after_restart(harness: Harness) -> None:
    await harness.consumer()
    await harness.relay()
    await write_probe(harness.pool, 1)
    await wait_for(lambda: harness.effects(), what="the first event")

    async with broker_stopped():
        for probe in range(2, 12):
            await write_probe(harness.pool, probe)
        await asyncio.sleep(1.0)
        assert await harness.unpublished() == 10  # held in the outbox, not lost

    async def all_arrived() -> bool:
        return len(await harness.effects()) >= 11

    await wait_for(all_arrived, timeout=60, what="the events held while the broker was down")
    await asyncio.sleep(0.5)
    assert await harness.effects() == list(range(1, 12))
    assert await harness.unpublished() == 0


async def publish(harness: Harness, *envelopes: Envelope) -> None:
    channel = await harness.amqp.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(harness.settings.exchange)
    for envelope in envelopes:
        await exchange.publish(
            aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.id)),
            routing_key=envelope.type,
        )
    await channel.close()


@pytest.mark.parametrize(
    ("lock_timeout_ms", "command_timeout"),
    [(1000, 30.0), (5000, 1.0)],
    ids=["lock-timeout-ends-the-wait", "command-timeout-ends-the-wait"],
)
async def test_a_redelivered_event_whose_inbox_row_a_dead_replica_holds_waits_without_using_up_attempts(
    harness: Harness, lock_timeout_ms: int, command_timeout: float
) -> None:
    """A replica took the event, wrote its inbox row and died before COMMIT: its backend holds the row
    (until idle_in_transaction_session_timeout ends it), and the broker hands the event to another replica.
    That replica's wait is cut short, the event is tried again later without using up an attempt (so it never
    ends in the dead letters for this), and the events behind it are not held back."""
    settings = db_settings(SERVICE, consumer_max_attempts=2, consumer_lock_timeout_ms=lock_timeout_ms)
    pool = await create_pool(settings, command_timeout=command_timeout)
    clock = SystemClock()
    held = make_envelope(ProbeHappenedV1(probe=1), producer="test", clock=clock)
    fresh = make_envelope(ProbeHappenedV1(probe=2), producer="test", clock=clock)
    try:
        async with harness.pool.acquire() as zombie:
            dead_replica = zombie.transaction()
            await dead_replica.start()
            await zombie.execute(
                "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)", harness.name, held.id
            )
            await zombie.execute("INSERT INTO messaging_probe (probe, event_id) VALUES (1, $1)", held.id)
            await harness.consumer(pool=pool, settings=settings)
            await publish(harness, held, fresh)

            # The fresh event goes through at once; it does not wait for the held one.
            await wait_for(lambda: harness.effects(), timeout=15, what="the event behind the held one")
            # Long enough for both attempts (and more) to have been used up, were waits counted.
            await asyncio.sleep(8)
            assert await harness.effects() == [2]
            assert await list_dead_letters(harness.pool) == []
            await dead_replica.rollback()  # the database ends the dead replica's transaction

        await wait_for(lambda: _has(harness, 1), timeout=20, what="the held event, once the row is free")
        await asyncio.sleep(0.5)  # time for a wrong second effect to show
        assert await harness.effects() == [1, 2]
        assert await list_dead_letters(harness.pool) == []
    finally:
        await harness.stop()
        harness.consumers = []
        await pool.close()


async def test_a_database_error_of_the_relay_is_logged_without_the_row_it_quotes(harness: Harness) -> None:
    # A PostgreSQL error's DETAIL can quote a row, and an outbox row holds the person's data.
    await harness.pool.execute(
        """
        CREATE FUNCTION refuse_publishing() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'publishing refused' USING DETAIL = 'Failing row contains (anna@example.org)';
        END $$;
        CREATE TRIGGER refuse_publishing BEFORE UPDATE ON outbox
            FOR EACH ROW EXECUTE FUNCTION refuse_publishing();
        """
    )
    try:
        with structlog.testing.capture_logs() as logs:
            await write_probe(harness.pool, 1)
            await harness.relay()
            await wait_for(
                lambda: any(e["event"] == "outbox_relay_error" for e in logs), what="the relay's error"
            )
    finally:
        await harness.pool.execute(
            "DROP TRIGGER refuse_publishing ON outbox; DROP FUNCTION refuse_publishing()"
        )
    errors = [e for e in logs if e["event"] == "outbox_relay_error"]
    assert errors[0]["detail"] == "publishing refused"  # the operator still learns what failed
    assert "anna@example.org" not in repr(logs)

    async def all_published() -> bool:
        return await harness.unpublished() == 0

    await wait_for(all_published, what="publishing once the fault is gone")
