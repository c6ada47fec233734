"""RabbitMQ basics: one durable topic exchange; the routing key is the event type."""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from yarl import URL

from shared.config import CommonSettings


def connection_in_background(settings: CommonSettings) -> tuple[AbstractRobustConnection, asyncio.Task[None]]:
    """A robust connection (aio-pika restores channels and consumers after a broker restart) that keeps
    trying until the broker answers at all: a service starts and serves what needs no broker while
    RabbitMQ is down (the outbox keeps the events). The task ends once connected; `connection.ready()`
    waits for that."""
    url = URL(settings.broker_url).update_query(fail_fast="0", reconnect_interval="2")
    connection = aio_pika.RobustConnection(
        url, client_properties={"connection_name": f"otv-{settings.service_name}"}
    )
    return connection, asyncio.create_task(connection.connect(), name="broker-connect")


async def declare_events_exchange(channel: AbstractChannel, settings: CommonSettings) -> AbstractExchange:
    return await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)


def broker_ready(connection: AbstractRobustConnection | None) -> bool:
    return connection is not None and connection.connected.is_set() and not connection.is_closed
