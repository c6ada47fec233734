"""R34, R50: a jobcenter without webhooks or feed switches integrations off (`OTV_INTEGRATIONS=false`).
Then no queue collects the appointment events (whole appointments: names, addresses, the manage link) for a
consumer that never runs: the set-up's topology does not declare the gateway's queues and removes them
where an earlier release declared them, and so does a gateway started with integrations off."""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika
import pytest

from shared.clock import SystemClock
from shared.events import EventData, make_envelope
from shared.topology import TopologySettings, declare_all
from tests.conftest import TEST_OVERRIDES, delete_broker_objects, own_broker_names, svc_settings, wait_for
from tests.integrations.conftest import EnvFactory, booked

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

QUEUES = ("gateway.integrations", "gateway.integrations.retry", "gateway.integrations.dead")


async def _depth(amqp: aio_pika.abc.AbstractRobustConnection, name: str) -> int | None:
    """Messages in the queue; None when there is no such queue."""
    channel = await amqp.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return None
    count = queue.declaration_result.message_count or 0
    await channel.close()
    return count


async def _publish(amqp: aio_pika.abc.AbstractRobustConnection, exchange: str, data: EventData) -> None:
    envelope = make_envelope(data, producer="booking", clock=SystemClock())
    channel = await amqp.channel(publisher_confirms=True)
    try:
        declared = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await declared.publish(
            aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.id)),
            routing_key=envelope.type,
        )
    finally:
        await channel.close()


def _topology(prefix: str, **overrides: Any) -> TopologySettings:
    settings = svc_settings(TopologySettings, queue_prefix=prefix, **overrides)
    assert isinstance(settings, TopologySettings)
    return settings


@pytest.mark.req("R34")
@pytest.mark.req("R50")
async def test_with_integrations_off_the_set_up_leaves_no_queue_that_collects_appointment_events(
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    prefix = own_broker_names()["queue_prefix"]
    try:
        # An earlier release (or the default) declared the queues, and an event went in.
        await declare_all(_topology(prefix))
        await _publish(amqp, TEST_OVERRIDES["exchange"], booked(uuid.uuid4()))
        assert await _depth(amqp, f"{prefix}.gateway.integrations") == 1

        await declare_all(_topology(prefix, integrations=False))
        for name in QUEUES:
            assert await _depth(amqp, f"{prefix}.{name}") is None, name
        # The other consumers' queues are there as before.
        assert await _depth(amqp, f"{prefix}.notifier.appointments") == 1
        await _publish(amqp, TEST_OVERRIDES["exchange"], booked(uuid.uuid4()))
        assert await _depth(amqp, f"{prefix}.gateway.integrations") is None
    finally:
        await delete_broker_objects(amqp, queue_prefix=prefix)


@pytest.mark.req("R34")
@pytest.mark.req("R50")
async def test_a_gateway_started_with_integrations_off_removes_the_queue_an_earlier_start_left(
    make_env: EnvFactory, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    """Wherever the operator sets `OTV_INTEGRATIONS=false` (the gateway's environment alone, say), the
    queue goes: the gateway removes it at its start, with what it held."""
    broker = own_broker_names()
    on = await make_env(**broker)
    await on.client.close()  # the release with integrations on stops; its queue stays
    await _publish(amqp, broker["exchange"], booked(uuid.uuid4()))
    queue = f"{broker['queue_prefix']}.gateway.integrations"
    assert await wait_for(lambda: _depth(amqp, queue), what="the event in the queue") == 1

    await make_env(integrations=False, **broker)

    async def removed() -> bool:
        return all([await _depth(amqp, f"{broker['queue_prefix']}.{name}") is None for name in QUEUES])

    await wait_for(removed, timeout=15, what="the gateway's queues removed")
