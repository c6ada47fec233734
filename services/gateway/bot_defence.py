"""Bot and abuse defence (R39): per-client rate limits and a proof-of-work challenge.

Each client (its IP address as the gateway sees it; of an IPv6 address its /64, `proxy.client_network`)
has one token bucket per kind of traffic (`availability`, `booking`). A request takes a token; the bucket
refills at a steady rate. A client in a known network (OTV_BOT_TRUSTED_NETWORKS: a jobcenter office whose
customers share one NAT address) has buckets `trusted_factor` times as large and fast. Two thresholds:

- beyond the *soft* threshold (the client used more than `soft` tokens recently) its traffic looks
  abnormal: it must solve a proof-of-work challenge (ALTCHA, no third party, no tracking). A solved
  challenge gives the client a pass for a while, during which the soft threshold does not apply;
- an empty bucket is the *hard* limit: 429 `rate_limited` with `Retry-After`, challenge or not.

The JSON API answers 428 `challenge_required` with a fresh challenge in `error.details`; the client
solves it and repeats the request with the solution in the `X-Altcha` header. The web pages show the
ALTCHA widget in their form instead (`services/gateway/web`).

The buckets are the gateway's token buckets (`rate_limit.py`), in memory per gateway replica: with N
replicas behind a round-robin balancer a client gets about N times the configured rate. That is
deliberate: no database round trip on the hot path, and a restart forgets nothing that matters. The
buckets of idle clients are swept, so memory stays bounded.

`OTV_BOT_DEFENCE=off` switches rate limits and challenges off (tests and load tests only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import altcha
import structlog
from aiohttp import web

from services.gateway.config import Settings
from services.gateway.proxy import client_ip, client_network
from services.gateway.rate_limit import TokenBucket
from shared.networks import parse_networks, within
from shared.web import SETTINGS, error_response

log = structlog.get_logger(__name__)

ALTCHA_HEADER = "X-Altcha"
CHALLENGE_PATH = "/api/v1/challenge"
ALGORITHM = "PBKDF2/SHA-256"
_MAX_CLIENTS = 100_000  # beyond this many tracked clients, idle ones are swept at once


class Bucket(StrEnum):
    AVAILABILITY = "availability"
    BOOKING = "booking"


# The JSON API routes the gateway proxies, by method and route pattern (services/gateway/routes.py).
API_PROTECTED: dict[tuple[str, str], Bucket] = {
    ("GET", "/api/v1/locations/{location_id}/availability"): Bucket.AVAILABILITY,
    # Eight weeks of the slot grid, like availability: a script must not spin it for free.
    ("GET", "/api/v1/locations/{location_id}/waiting-list/weekdays"): Bucket.AVAILABILITY,
    ("POST", "/api/v1/locations/{location_id}/holds"): Bucket.BOOKING,
    ("POST", "/api/v1/appointments"): Bucket.BOOKING,
    ("POST", "/api/v1/appointments/{appointment_id}/reschedule"): Bucket.BOOKING,
    ("POST", "/api/v1/manage-links"): Bucket.BOOKING,  # sends mail: limited like booking
    ("POST", "/api/v1/waiting-list"): Bucket.BOOKING,  # R45: joining is rate-limited like booking
    ("POST", "/api/v1/waiting-list/{wish_id}/offer/accept"): Bucket.BOOKING,
}


class Verdict(StrEnum):
    ALLOW = "allow"
    RATE_LIMITED = "rate_limited"
    CHALLENGE_REQUIRED = "challenge_required"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


@dataclass(frozen=True)
class Limits:
    rate: float  # tokens per second
    burst: int  # bucket size: the hard limit
    soft: int  # tokens used recently beyond which a challenge is needed

    def times(self, factor: float) -> Limits:
        """The limits of a known network (`trusted_factor`)."""
        return Limits(self.rate * factor, math.ceil(self.burst * factor), math.ceil(self.soft * factor))


@dataclass
class _Client:
    limits: dict[Bucket, Limits]
    buckets: dict[Bucket, TokenBucket] = field(default_factory=dict)
    pass_until: float = 0.0


class BotDefence:
    """Decides per request; `now` is a monotonic clock in seconds (injectable for tests)."""

    def __init__(
        self,
        *,
        enabled: bool,
        limits: dict[Bucket, Limits],
        secret: str,
        challenge_cost: int = 5000,
        challenge_ttl: int = 600,
        pass_seconds: int = 900,
        trusted_networks: str = "",
        trusted_factor: float = 1.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.limits = limits
        self._trusted_networks = parse_networks(trusted_networks)
        self._trusted_limits = {bucket: each.times(trusted_factor) for bucket, each in limits.items()}
        self._secret = hmac.new(secret.encode(), b"otv-altcha", hashlib.sha256).hexdigest()
        self._cost = challenge_cost
        self._ttl = challenge_ttl
        self._pass_seconds = pass_seconds
        self._now = now
        self._clients: dict[str, _Client] = {}
        self._used: dict[str, float] = {}  # signatures of solved challenges -> until when kept

    @classmethod
    def from_settings(cls, settings: Settings, now: Callable[[], float] = time.monotonic) -> BotDefence:
        return cls(
            enabled=settings.bot_defence,
            limits={
                Bucket.AVAILABILITY: Limits(
                    settings.bot_availability_rate,
                    settings.bot_availability_burst,
                    settings.bot_availability_soft,
                ),
                Bucket.BOOKING: Limits(
                    settings.bot_booking_rate, settings.bot_booking_burst, settings.bot_booking_soft
                ),
            },
            secret=settings.web_secret,
            challenge_cost=settings.bot_challenge_cost,
            challenge_ttl=settings.bot_challenge_ttl_seconds,
            pass_seconds=settings.bot_pass_seconds,
            trusted_networks=settings.bot_trusted_networks,
            trusted_factor=settings.bot_trusted_factor,
            now=now,
        )

    # -- rate limits -------------------------------------------------------------------------------

    def _state(self, client: _Client, bucket: Bucket, now: float) -> TokenBucket:
        limits = client.limits[bucket]
        state = client.buckets.get(bucket)
        if state is None:
            state = client.buckets[bucket] = TokenBucket.full(limits.burst, now)
        else:
            state.refill(limits.rate, limits.burst, now)
        return state

    def _client(self, address: str) -> _Client:
        key = client_network(address)
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= _MAX_CLIENTS:
                self._sweep()
            trusted = within(address, self._trusted_networks)
            client = self._clients[key] = _Client(self._trusted_limits if trusted else self.limits)
        return client

    def needs_challenge(self, key: str, bucket: Bucket) -> bool:
        """Whether the next request of this client in this bucket would need a solved challenge."""
        if not self.enabled:
            return False
        now = self._now()
        client = self._client(key)
        if client.pass_until > now:
            return False
        limits = client.limits[bucket]
        return self._state(client, bucket, now).level - 1 < limits.burst - limits.soft

    def check(self, key: str, bucket: Bucket, solution: str | None = None) -> Decision:
        """Take a token for this request, or say why not. A valid `solution` grants a pass."""
        if not self.enabled:
            return Decision(Verdict.ALLOW)
        now = self._now()
        client = self._client(key)
        limits = client.limits[bucket]
        state = self._state(client, bucket, now)
        if state.level < 1:
            log.info("rate_limited", bucket=bucket.value)
            return Decision(Verdict.RATE_LIMITED, retry_after=state.retry_after(limits.rate))
        if client.pass_until <= now and state.level - 1 < limits.burst - limits.soft:
            if not (solution and self.verify(solution)):
                log.info("challenge_required", bucket=bucket.value)
                return Decision(Verdict.CHALLENGE_REQUIRED)
            client.pass_until = now + self._pass_seconds
        state.level -= 1
        return Decision(Verdict.ALLOW)

    def solve(self, key: str, solution: str | None) -> bool:
        """A solved challenge outside a request of a bucket (the pages' check page): grants the pass."""
        if not self.enabled:
            return True
        if not (solution and self.verify(solution)):
            return False
        self._client(key).pass_until = self._now() + self._pass_seconds
        return True

    def _sweep(self) -> None:
        now = self._now()
        idle = [
            key
            for key, client in self._clients.items()
            if client.pass_until <= now
            and all(
                s.level_at(client.limits[b].rate, client.limits[b].burst, now) >= client.limits[b].burst
                for b, s in client.buckets.items()
            )
        ]
        for key in idle:
            del self._clients[key]
        self._used = {sig: until for sig, until in self._used.items() if until > time.time()}

    # -- proof of work -----------------------------------------------------------------------------

    def challenge(self) -> dict[str, Any]:
        """A fresh signed challenge, as the ALTCHA widget (v3) and `altcha.solve_challenge` expect it."""
        # ALTCHA checks expiry against wall-clock time, so the expiry is wall-clock time too.
        expires = int(time.time()) + self._ttl
        created = altcha.create_challenge(ALGORITHM, self._cost, expires_at=expires, hmac_secret=self._secret)
        result: dict[str, Any] = created.to_dict()
        return result

    def verify(self, solution: str) -> bool:
        """A correct, unexpired, signed solution that was not used before."""
        try:
            payload = json.loads(base64.b64decode(solution, validate=True))
            signature = str(payload["challenge"]["signature"])
        except (ValueError, KeyError, TypeError, RecursionError):  # nested too deep: no solution either
            return False
        if signature in self._used:
            return False
        result = altcha.verify_solution(solution, self._secret)
        if not result.verified:
            return False
        self._used[signature] = time.time() + self._ttl
        if len(self._used) > _MAX_CLIENTS:
            self._sweep()
        return True


BOT_DEFENCE = web.AppKey("bot_defence", BotDefence)


def challenge_response(defence: BotDefence) -> web.Response:
    response = error_response(
        428,
        "challenge_required",
        f"Too many requests from this network: solve the proof-of-work challenge and repeat the "
        f"request with the solution in the {ALTCHA_HEADER} header.",
        [{"header": ALTCHA_HEADER, "challenge": defence.challenge()}],
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def rate_limited_response(retry_after: int) -> web.Response:
    response = error_response(
        429, "rate_limited", f"Too many requests. Please try again in {retry_after} seconds."
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


@web.middleware
async def bot_defence_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    resource = request.match_info.route.resource
    bucket = API_PROTECTED.get((request.method, resource.canonical)) if resource is not None else None
    if bucket is None:
        return await handler(request)
    defence = request.app[BOT_DEFENCE]
    decision = defence.check(client_ip(request), bucket, request.headers.get(ALTCHA_HEADER))
    if decision.verdict is Verdict.RATE_LIMITED:
        return rate_limited_response(decision.retry_after)
    if decision.verdict is Verdict.CHALLENGE_REQUIRED:
        return challenge_response(defence)
    return await handler(request)


async def get_challenge(request: web.Request) -> web.Response:
    response = web.json_response(request.app[BOT_DEFENCE].challenge())
    response.headers["Cache-Control"] = "no-store"
    return response


def setup_bot_defence(app: web.Application) -> None:
    """Register the defence on the gateway: its state, the middleware, and the challenge endpoint."""
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the gateway's own settings, for mypy
    app[BOT_DEFENCE] = BotDefence.from_settings(settings)
    app.middlewares.append(bot_defence_middleware)
    app.router.add_get(CHALLENGE_PATH, get_challenge)
