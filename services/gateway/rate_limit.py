"""The gateway's token buckets: `burst` requests at once, then `rate` a second. The bot defence keeps one
per client and kind of traffic (`bot_defence.py`, R39), the staff access one per API key (`staff/authz.py`,
R50; a key may have a rate and burst of its own). In memory, per gateway replica: with N replicas behind a
round-robin balancer a client gets about N times the configured rate (no database round trip on the hot
path; a restart forgets nothing that matters).
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


@dataclass
class _KeyBucket(TokenBucket):
    """A key's bucket with the rate and size it was last used with (the sweep needs them)."""

    rate: float = 0.0
    burst: int = 1


class RateLimiter:
    """One token bucket per key, by default all with the same `rate` (tokens a second) and `burst` (the
    bucket's size); a call may give a key's own. Off (`enabled=False`) it lets everything through."""

    def __init__(self, *, rate: float, burst: int, enabled: bool = True) -> None:
        self.rate = rate
        self.burst = burst
        self.enabled = enabled
        self._buckets: dict[str, _KeyBucket] = {}

    def take(self, key: str, now: float, *, rate: float | None = None, burst: int | None = None) -> int:
        """Take a token for a request of `key` at `now` (seconds): 0 when it may go ahead, else the seconds
        to wait before the next try. `rate` and `burst` are the key's own (default: the limiter's), as they
        hold now: when they change, the bucket keeps its tokens, at most the new `burst`, and the time since
        its last request refills it at the new `rate` (a raised limit helps at once)."""
        if not self.enabled:
            return 0
        rate = self.rate if rate is None else rate
        burst = self.burst if burst is None else burst
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_KEYS:
                self._sweep(now)
            bucket = self._buckets[key] = _KeyBucket(float(burst), now, rate, burst)
        else:
            bucket.refill(rate, burst, now)
            bucket.rate, bucket.burst = rate, burst
        if bucket.level < 1:
            return bucket.retry_after(rate)
        bucket.level -= 1
        return 0

    def _sweep(self, now: float) -> None:
        """Forget the keys whose buckets are full again: a new bucket starts full as well."""
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.level_at(bucket.rate, bucket.burst, now) >= bucket.burst
        ]
        for key in full:
            del self._buckets[key]
