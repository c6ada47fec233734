"""The waiting list's figures (R45): every `waiting.*` event counted per day (Berlin), location, concern
and kind; nothing else of the event is kept (no name, no address, no wish id: R34).

The kind is the event's type, made finer where a type mixes different things (review "stats" 4): a booking
through an offer or on the customer's own, an unconfirmed wish replaced by a new registration of the same
customer (and that registration), an opt-in never used, and an offer that ran out while its mail had
never reached the customer (`missed` false: not delivered, not missed) are counted under their own keys.

`HANDLERS` plugs into the consumer's handler table (`services/reporting/consumer.py`); the routing key
`waiting.*` is bound in `shared/topology.py`.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.clock import BERLIN
from shared.consumer import Handler
from shared.erasure import erase_dead_letters
from shared.events import Envelope
from shared.events.waiting_list import WISH_EVENTS, EndReason, WaitingPersonalDataErasedV1


def counted_as(event_type: str, data: Any) -> tuple[str, ...]:
    """The keys of `waiting_counts` (and of `WAITING_LABELS`) one event adds 1 to."""
    kind = event_type.removeprefix("waiting.")
    reason = getattr(data, "reason", None)
    if kind == "registered" and getattr(data, "replaces_unconfirmed", False):
        return ("re_registered",)  # the customer's wish is counted once, under `registered`
    if kind == "withdrawn" and reason == EndReason.REPLACED:
        return ("replaced",)  # the customer did not withdraw; they registered again
    if kind == "offer_expired" and not getattr(data, "missed", True):
        return ("offer_not_delivered",)  # its mail never reached the customer: not missed (R45)
    if kind == "expired" and reason == EndReason.NOT_CONFIRMED:
        return ("not_confirmed",)  # never on the list: the opt-in link was not used
    if kind == "fulfilled":
        return (
            "fulfilled",
            "fulfilled_via_offer" if getattr(data, "via_offer", False) else "fulfilled_on_own",
        )
    return (kind,)


async def count_waiting_event(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
    wish = data.wish
    for key in counted_as(envelope.type, data):
        await conn.execute(
            "INSERT INTO waiting_counts (day, location_id, concern_id, event, count)"
            " VALUES ($1, $2, $3, $4, 1) ON CONFLICT (day, location_id, concern_id, event)"
            " DO UPDATE SET count = waiting_counts.count + 1",
            envelope.occurred_at.astimezone(BERLIN).date(),
            wish.location_id,
            wish.concern_id,
            key,
        )


async def erase_wish(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
    """Booking erased a wish's personal data (R34, Art. 17 GDPR). The figures hold none; the wish's events
    among the dead letters (whole events: name, address, the page link's token) do, and lose them."""
    assert isinstance(data, WaitingPersonalDataErasedV1)  # noqa: S101 -- the registry's model
    await erase_dead_letters(conn, data.wish_id, envelope.occurred_at)


HANDLERS: dict[str, Handler] = {
    **{model.event_type: count_waiting_event for model in WISH_EVENTS},
    WaitingPersonalDataErasedV1.event_type: erase_wish,
}
