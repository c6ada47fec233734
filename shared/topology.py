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

from shared.config import CommonSettings
from shared.consumer import Consumer

# consumer name -> routing keys it binds (patterns of event types)
CONSUMERS: dict[str, tuple[str, ...]] = {
    "booking.catalog": ("catalog.*",),
    "notifier.appointments": ("appointment.*", "waiting.*"),
    "reporting.events": ("appointment.*", "callback.*", "catalog.*", "mail.*", "retention.*", "waiting.*"),
    "gateway.integrations": ("appointment.*", "callback.*"),
}


def bindings_of(consumer: str) -> tuple[str, ...]:
    return CONSUMERS[consumer]


async def declare_all(settings: CommonSettings) -> None:
    connection = await aio_pika.connect_robust(settings.broker_url)
    try:
        channel = await connection.channel()
        for name, bindings in CONSUMERS.items():
            spec = Consumer(
                name, pool=None, connection=connection, settings=settings, handlers={}, bindings=bindings
            )
            await spec.declare(channel)
        await channel.close()
    finally:
        await connection.close()


class TopologySettings(CommonSettings):
    """The set-up's settings: it talks to the broker only (no database, no internal secret)."""

    secrets_used: ClassVar[frozenset[str] | None] = frozenset({"broker_url"})


if __name__ == "__main__":
    sys.exit(asyncio.run(declare_all(TopologySettings())))
