"""The waiting list's figures (R45): every `waiting.*` event counted per day (Berlin), location, concern
and kind; nothing else of the event is kept (no name, no address, no wish id: R34).

`HANDLERS` plugs into the consumer's handler table (`services/reporting/consumer.py`); the routing key
`waiting.*` is bound in `shared/topology.py`.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.clock import BERLIN
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.waiting_list import WISH_EVENTS


async def count_waiting_event(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
    wish = data.wish
    await conn.execute(
        "INSERT INTO waiting_counts (day, location_id, concern_id, event, count) VALUES ($1, $2, $3, $4, 1)"
        " ON CONFLICT (day, location_id, concern_id, event) DO UPDATE SET count = waiting_counts.count + 1",
        envelope.occurred_at.astimezone(BERLIN).date(),
        wish.location_id,
        wish.concern_id,
        envelope.type.removeprefix("waiting."),
    )


HANDLERS: dict[str, Handler] = {model.event_type: count_waiting_event for model in WISH_EVENTS}
