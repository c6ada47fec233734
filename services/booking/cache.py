"""The availability cache of one replica (issue 10): availability is the hottest read, and most readers ask
the same few questions (a location, a concern, the next two weeks) while nothing changes in between.

An answer is kept per (location, concern, mode, first day, last day) together with the state it was
computed from: the location's catalog revision and its occupancy counter (`occupancy_changes`, bumped by
triggers in the same transaction as every booking, cancellation, move and hold). Every request first
reads that state (one primary-key read, shared by the requests of a location that arrive while it is
under way) and gets the kept answer only while the state is unchanged: a change committed by any replica
is seen by the next read. Availability also depends on "now" (lead time, the day's cutoff, expiring holds),
so an answer is kept for a few seconds of the injected clock at most; an expired hold may show its slot as
taken until then, never the other way round. The guarantees of a booking stay in the database (I1, I2):
a slot shown a moment too long as free is refused there with 409.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Generic, TypeVar

from prometheus_client import Counter

from services.booking.domain import LocationConfig, Slots

Key = tuple[str, str, str, date, date]  # location, concern, mode, first day, last day
State = tuple[int, int]  # catalog revision, occupancy counter
T = TypeVar("T")

LOOKUPS = Counter(
    "otv_booking_availability_cache_total", "Availability answers by cache outcome (hit, miss)", ["outcome"]
)


@dataclass(frozen=True)
class _Entry:
    state: State
    computed_at: datetime
    slots: Slots


class _SingleFlight(Generic[T]):
    """Concurrent callers with the same key share one run of the work (one query instead of fifty)."""

    def __init__(self) -> None:
        self._running: dict[object, asyncio.Future[T]] = {}

    async def run(self, key: object, work: Callable[[], Awaitable[T]]) -> T:
        future = self._running.get(key)
        if future is None:
            future = asyncio.ensure_future(work())
            self._running[key] = future
            future.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a caller that goes away (a closed connection) does not cancel the others' answer.
        return await asyncio.shield(future)

    def _finished(self, key: object, done: asyncio.Future[T]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so an error nobody waited for is not reported as lost


class AvailabilityCache:
    def __init__(self, seconds: float = 5.0, entries: int = 2000) -> None:
        self.seconds = seconds
        self._ttl = timedelta(seconds=seconds)
        self._max = entries
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._states: _SingleFlight[tuple[LocationConfig, int]] = _SingleFlight()
        self._answers: _SingleFlight[Slots] = _SingleFlight()

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    async def state(
        self, location_id: str, read: Callable[[], Awaitable[tuple[LocationConfig, int]]]
    ) -> tuple[LocationConfig, int]:
        """The location's configuration and occupancy counter, read once for all of the location's
        requests that arrive while a read is under way."""
        return await self._states.run(location_id, read)

    async def slots(
        self, key: Key, state: State, now: datetime, compute: Callable[[], Awaitable[Slots]]
    ) -> Slots:
        entry = self._entries.get(key)
        fresh = entry is not None and entry.computed_at <= now < entry.computed_at + self._ttl
        if entry is not None and fresh and entry.state == state:
            self._entries.move_to_end(key)
            LOOKUPS.labels("hit").inc()
            return entry.slots
        LOOKUPS.labels("miss").inc()

        async def computed() -> Slots:
            slots = await compute()
            self._entries[key] = _Entry(state, now, slots)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
            return slots

        return await self._answers.run((key, state), computed)
