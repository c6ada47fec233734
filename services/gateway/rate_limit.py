"""The gateway's token buckets: `burst` requests at once, then `rate` a second. The bot defence keeps one
per client and kind of traffic (`bot_defence.py`, R39), the staff access one per API key (`staff/authz.py`,
R50). In memory, per gateway replica: with N replicas behind a round-robin balancer a client gets about N
times the configured rate (no database round trip on the hot path; a restart forgets nothing that matters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_MAX_KEYS = 100_000  # beyond this many tracked keys, the idle ones are swept at once


@dataclass
class TokenBucket:
    """`level` tokens at the time `updated` (seconds of the caller's clock); a request takes one."""

    level: float
    updated: float

    @classmethod
    def full(cls, burst: int, now: float) -> TokenBucket:
        return cls(float(burst), now)

    def level_at(self, rate: float, burst: int, now: float) -> float:
        # A clock that went back (a wall clock stepped by NTP) refills nothing, and takes nothing either.
        return min(float(burst), self.level + max(0.0, now - self.updated) * rate)

    def refill(self, rate: float, burst: int, now: float) -> None:
        self.level = self.level_at(rate, burst, now)
        self.updated = now

    def retry_after(self, rate: float) -> int:
        """Whole seconds until the bucket holds a token again, at least 1 (for `Retry-After`)."""
        wait = (1 - self.level) / rate if rate > 0 else 3600
        return max(1, math.ceil(wait))


class RateLimiter:
    """One token bucket per key, all with the same `rate` (tokens a second) and `burst` (the bucket's size).
    Off (`enabled=False`) it lets everything through."""

    def __init__(self, *, rate: float, burst: int, enabled: bool = True) -> None:
        self.rate = rate
        self.burst = burst
        self.enabled = enabled
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float) -> int:
        """Take a token for a request of `key` at `now` (seconds): 0 when it may go ahead, else the seconds
        to wait before the next try."""
        if not self.enabled:
            return 0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_KEYS:
                self._sweep(now)
            bucket = self._buckets[key] = TokenBucket.full(self.burst, now)
        else:
            bucket.refill(self.rate, self.burst, now)
        if bucket.level < 1:
            return bucket.retry_after(self.rate)
        bucket.level -= 1
        return 0

    def _sweep(self, now: float) -> None:
        """Forget the keys whose buckets are full again: a new bucket starts full as well."""
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.level_at(self.rate, self.burst, now) >= self.burst
        ]
        for key in full:
            del self._buckets[key]
