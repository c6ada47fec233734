"""Which consumer listens to which events: the whole message topology of OTV in one place.

Each consumer declares its own queues when it starts; `python -m shared.topology` declares them all
up front (the set-up does this before the demo data is loaded), so that no event published before a
consumer's first start is routed nowhere.
"""

from __future__ import annotations

import asyncio
import sys
from typing import ClassVar

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection

from shared.config import CommonSettings
from shared.consumer import Consumer

# consumer name -> routing keys it binds (patterns of event types)
CONSUMERS: dict[str, tuple[str, ...]] = {
    "booking.catalog": ("catalog.*",),
    "booking.mail": ("mail.offer_delivery",),  # R45: was a waiting-list offer's mail delivered?
    "notifier.appointments": ("appointment.*", "waiting.*"),
    "reporting.events": ("appointment.*", "callback.*", "catalog.*", "mail.*", "retention.*", "waiting.*"),
    "gateway.integrations": ("appointment.*", "callback.*"),
}


# Consumers that run only where a setting switches them on; off, nothing may collect events for them.
INTEGRATIONS = "gateway.integrations"  # the gateway's webhooks and event feed (OTV_INTEGRATIONS)

log = structlog.get_logger(__name__)


def bindings_of(consumer: str) -> tuple[str, ...]:
    return CONSUMERS[consumer]


def queues_of(consumer: str, settings: CommonSettings) -> tuple[str, str, str]:
    """The work, retry and dead-letter queues of a consumer (shared/consumer.py)."""
    name = f"{settings.queue_prefix}.{consumer}"
    return name, f"{name}.retry", f"{name}.dead"


async def remove_queues(connection: AbstractConnection, consumer: str, settings: CommonSettings) -> int:
    """Delete a consumer's queues with what they hold (nothing where they do not exist); how many messages
    went. For a consumer switched off: its queue would collect every event for ever (whole appointments,
    R34), and a consumer switched on again later would act on months-old events."""
    dropped = 0
    channel = await connection.channel()
    try:
        for queue in queues_of(consumer, settings):
            result = await channel.queue_delete(queue)
            dropped += getattr(result, "message_count", 0) or 0
    finally:
        await channel.close()
    if dropped:
        log.warning("queues_removed", consumer=consumer, messages_dropped=dropped)
    return dropped


async def declare_all(settings: TopologySettings) -> None:
    connection = await aio_pika.connect_robust(settings.broker_url)
    try:
        channel = await connection.channel()
        for name, bindings in CONSUMERS.items():
            if name == INTEGRATIONS and not settings.integrations:
                continue
            spec = Consumer(
                name, pool=None, connection=connection, settings=settings, handlers={}, bindings=bindings
            )
            await spec.declare(channel)
        await channel.close()
        if not settings.integrations:
            await remove_queues(connection, INTEGRATIONS, settings)
    finally:
        await connection.close()


class TopologySettings(CommonSettings):
    """The set-up's settings: it talks to the broker only (no database, no internal secret)."""

    secrets_used: ClassVar[frozenset[str] | None] = frozenset({"broker_url"})
    # The gateway's OTV_INTEGRATIONS (services/gateway/config.py): off, its queues are not declared, and
    # removed where they exist.
    integrations: bool = True


if __name__ == "__main__":
    sys.exit(asyncio.run(declare_all(TopologySettings())))
