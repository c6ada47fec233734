"""RabbitMQ basics: one durable topic exchange; the routing key is the event type."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from shared.config import CommonSettings


async def connect(settings: CommonSettings) -> AbstractRobustConnection:
    # connect_robust reconnects by itself after a broker restart; channels and consumers are restored.
    return await aio_pika.connect_robust(
        settings.broker_url,
        client_properties={"connection_name": f"otv-{settings.service_name}"},
    )


async def declare_events_exchange(channel: AbstractChannel, settings: CommonSettings) -> AbstractExchange:
    return await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)


def broker_ready(connection: AbstractRobustConnection | None) -> bool:
    return connection is not None and connection.connected.is_set() and not connection.is_closed
