"""The request limit of a valid API key (R50): a runaway integration with a good key gets 429 with
`Retry-After` beyond its allowance (OTV_API_KEY_BURST at once, OTV_API_KEY_REQUESTS_PER_MINUTE after), so
that it cannot starve the service centre's agents and the booking service. Each key has its own
allowance, staff signed in through the browser have none; the clock is the test's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from services.gateway import rate_limit
from services.gateway.openapi import VERSION, document
from services.gateway.rate_limit import RateLimiter
from services.gateway.staff.rules import rule_table
from shared.identity import Role
from tests.staff.conftest import GatewayFactory, StaffClient

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

BOOKING = {
    "location_id": "mitte",
    "concern_id": "neuantrag",
    "start": "2026-03-03T10:00:00+01:00",
    "mode": "in_person",
    "customer": {"first_name": "Erika", "last_name": "Mustermann", "email": "kundin@example.org"},
}
BOOK = "/api/v1/staff/appointments"
METRIC = "otv_api_key_requests_total"


async def _key(admin: StaffClient, name: str) -> tuple[str, dict[str, str]]:
    body = {"name": name, "locations": ["mitte"], "operations": ["appointments:write"]}
    response = await admin.post("/api/v1/admin/api-keys", json=body)
    assert response.status == 201, await response.text()
    created = await response.json()
    return str(created["id"]), {"Authorization": f"Bearer {created['key']}"}


def _counted(key_id: str, outcome: str) -> float:
    return REGISTRY.get_sample_value(METRIC, {"key_id": key_id, "outcome": outcome}) or 0.0


@pytest.mark.req("R50")
async def test_a_key_beyond_its_burst_gets_429_with_retry_after_until_its_allowance_refills(
    make_gateway: GatewayFactory,
) -> None:
    # 60 a minute: one token a second after a burst of three.
    gateway = await make_gateway(bot_defence=True, api_key_requests_per_minute=60, api_key_burst=3)
    admin = await gateway.signed_in("limit-admin", (Role.ADMIN, "*"))
    key_id, key = await _key(admin, "Service-Center Bremen")
    booking = gateway.upstreams["booking"]

    answers = [await gateway.client.post(BOOK, json=BOOKING, headers=key) for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert (await limited.json())["error"]["code"] == "rate_limited"
    assert set(await limited.json()) == {"error"}
    assert limited.headers["Retry-After"] == "1"
    assert len(booking.calls) == 3  # the fourth never reached the booking service
    assert _counted(key_id, "limited") == 1 and _counted(key_id, "allowed") == 3

    # Another key of the same client has an allowance of its own.
    other_id, other = await _key(admin, "Terminvergabe-Schnittstelle")
    assert (await gateway.client.post(BOOK, json=BOOKING, headers=other)).status == 200

    # A second later the key has a token again, and only one.
    gateway.clock.advance(timedelta(seconds=1))
    assert (await gateway.client.post(BOOK, json=BOOKING, headers=key)).status == 200
    again = await gateway.client.post(BOOK, json=BOOKING, headers=key)
    assert again.status == 429 and again.headers["Retry-After"] == "1"
    # Waiting out the whole burst refills it, never beyond it.
    gateway.clock.advance(timedelta(minutes=5))
    statuses = [(await gateway.client.post(BOOK, json=BOOKING, headers=key)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert len(booking.calls) == 3 + 1 + 1 + 3
    assert _counted(key_id, "limited") == 3 and _counted(other_id, "limited") == 0

    # Staff signed in through the browser have no such limit (their requests are their own clicks).
    manager = await gateway.signed_in("limit-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
    assert [(await manager.post(BOOK, json=BOOKING)).status for _ in range(10)] == [200] * 10
    assert (await gateway.client.post(BOOK, json=BOOKING, headers=key)).status == 429


@pytest.mark.req("R50")
async def test_the_key_metric_names_the_key_by_its_id_never_by_its_name(make_gateway: GatewayFactory) -> None:
    """An API key's name is free text an administrator types: it may name a person ("Skript von Erika
    Mustermann"), so the metric's labels carry the key's id only."""
    gateway = await make_gateway(bot_defence=True, api_key_requests_per_minute=60, api_key_burst=1)
    admin = await gateway.signed_in("limit-admin2", (Role.ADMIN, "*"))
    name = "Skript von Erika Mustermann"
    key_id, key = await _key(admin, name)
    for _ in range(2):
        await gateway.client.post(BOOK, json=BOOKING, headers=key)
    assert _counted(key_id, "allowed") == 1 and _counted(key_id, "limited") == 1
    labels = {
        value
        for family in REGISTRY.collect()
        if family.name == METRIC.removesuffix("_total")
        for sample in family.samples
        for value in sample.labels.values()
    }
    assert key_id in labels
    assert not any("Mustermann" in value or "Skript" in value for value in labels)


@pytest.mark.req("R39")
async def test_bot_defence_off_lifts_the_key_limit_too(make_gateway: GatewayFactory) -> None:
    """OTV_BOT_DEFENCE=off switches the gateway's rate limits off (tests and load tests only)."""
    gateway = await make_gateway(bot_defence=False, api_key_requests_per_minute=1, api_key_burst=1)
    admin = await gateway.signed_in("limit-admin3", (Role.ADMIN, "*"))
    key_id, key = await _key(admin, "Lasttest")
    statuses = [(await gateway.client.post(BOOK, json=BOOKING, headers=key)).status for _ in range(5)]
    assert statuses == [200] * 5
    assert _counted(key_id, "allowed") == 5


@pytest.mark.req("R50")
def test_the_document_declares_the_key_limit_on_every_operation_a_key_can_call() -> None:
    merged = document()
    # An additive change of the document: a minor version above 1.1.0.
    major, minor, _ = (int(part) for part in VERSION.split("."))
    assert (major, minor) >= (1, 2) and merged["info"]["version"] == VERSION
    scheme = merged["components"]["securitySchemes"]["apiKey"]["description"]
    assert "OTV_API_KEY_REQUESTS_PER_MINUTE" in scheme and "Retry-After" in scheme
    for (method, path), rule in rule_table().items():
        if rule.operation is None or not path.startswith("/api/"):
            continue
        operation = merged["paths"][path][method.lower()]
        too_many = operation["responses"]["429"]
        assert "Retry-After" in too_many["headers"], (method, path)
        assert "OTV_API_KEY_REQUESTS_PER_MINUTE" in operation["description"], (method, path)


def test_the_key_limiter_forgets_only_keys_whose_allowance_is_full_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory stays bounded (beyond its maximum of keys the limiter sweeps), but a key that is still
    drawing on its allowance keeps its state; a clock stepped back refills nothing."""
    monkeypatch.setattr(rate_limit, "_MAX_KEYS", 2)
    limiter = RateLimiter(rate=1.0, burst=2)
    assert [limiter.take("quiet", 0.0), limiter.take("busy", 0.0), limiter.take("busy", 0.0)] == [0, 0, 0]
    assert limiter.take("busy", 0.0) == 1
    # A second later "quiet" is full again and "busy" has one token: a third key sweeps "quiet" only.
    assert limiter.take("new", 1.0) == 0
    assert [limiter.take("busy", 1.0), limiter.take("busy", 1.0)] == [0, 1]
    assert limiter.take("busy", 0.5) == 1  # the clock went back: no token for it
    assert RateLimiter(rate=1.0, burst=1, enabled=False).take("any", 0.0) == 0
