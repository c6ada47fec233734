"""An API key's own request limit (R50): the service centre's key (many agents) gets more than a small
partner's, and a misbehaving partner is throttled harder without touching anybody else. An administrator
sets it when creating the key or later, in the API and on the API keys page; empty is the settings'
default. Every gateway replica applies a change from the key's next request on, the audit log has it,
and values that are no limit are refused at the field. The clock is the test's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from services.gateway.openapi import VERSION, document
from services.gateway.rate_limit import RateLimiter
from services.gateway.staff import db
from services.gateway.staff.domain import KeyAllowance
from shared.errors import ValidationError
from shared.identity import Role
from tests.staff.conftest import Gateway, GatewayFactory, StaffClient, audit_rows
from tests.staff.test_api_key_request_limit import BOOK, BOOKING
from tests.staff.test_location_page_forms import assert_marked, elements
from tests.staff.test_staff_pages import post_form

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

KEYS = "/api/v1/admin/api-keys"


def limit_path(key_id: str) -> str:
    return f"{KEYS}/{key_id}/request-limit"


async def _key(admin: StaffClient, name: str, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    body = {"name": name, "locations": ["mitte"], "operations": ["appointments:write"], **extra}
    response = await admin.post(KEYS, json=body)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created, {"Authorization": f"Bearer {created['key']}"}


async def _statuses(gateway: Gateway, key: dict[str, str], count: int) -> list[int]:
    return [(await gateway.client.post(BOOK, json=BOOKING, headers=key)).status for _ in range(count)]


async def _listed(admin: StaffClient) -> dict[str, dict[str, Any]]:
    return {k["name"]: k for k in await (await admin.get(KEYS)).json()}


@pytest.mark.req("R50")
async def test_a_key_with_a_low_own_limit_gets_429_while_a_key_with_the_default_goes_on(
    make_gateway: GatewayFactory,
) -> None:
    # The default of the settings: 600 a minute, 120 at once (a fifth of a minute's worth).
    gateway = await make_gateway(bot_defence=True)
    admin = await gateway.signed_in("own-limit-admin", (Role.ADMIN, "*"))
    partner, partner_key = await _key(admin, "Kleiner Partner", requests_per_minute=30)
    centre, centre_key = await _key(admin, "Service-Center Bremen")
    assert partner["requests_per_minute"] == 30
    assert partner["allowance"] == {"requests_per_minute": 30, "burst": 6}  # 30 of 600: 6 of 120 at once
    assert centre["requests_per_minute"] is None
    assert centre["allowance"] == {"requests_per_minute": 600, "burst": 120}

    # The two at the same time: the partner's seventh request is refused, the service centre's are not.
    statuses: dict[str, list[int]] = {"partner": [], "centre": []}
    for _ in range(8):
        statuses["partner"] += await _statuses(gateway, partner_key, 1)
        statuses["centre"] += await _statuses(gateway, centre_key, 1)
    assert statuses["partner"] == [200] * 6 + [429] * 2
    assert statuses["centre"] == [200] * 8
    limited = await gateway.client.post(BOOK, json=BOOKING, headers=partner_key)
    assert (await limited.json())["error"]["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "2"  # half a token a second
    assert len(gateway.upstreams["booking"].calls) == 6 + 8

    # Two seconds later one more of the partner's requests goes through, and only one.
    gateway.clock.advance(timedelta(seconds=2))
    assert await _statuses(gateway, partner_key, 2) == [200, 429]


@pytest.mark.req("R50")
async def test_a_changed_limit_holds_on_every_replica_from_the_next_request_on(
    make_gateway: GatewayFactory,
) -> None:
    """No restart and no wait: the gateway reads the key on every request, so the replica that did not
    take the change applies it at once, and a lowered limit leaves the key at most its new burst."""
    first = await make_gateway(bot_defence=True)
    second = await make_gateway(bot_defence=True, clock=first.clock)
    admin = await first.signed_in("change-limit-admin", (Role.ADMIN, "*"))
    partner, key = await _key(admin, "Partner mit Schleife")
    assert await _statuses(second, key, 3) == [200] * 3  # 117 of its 120 left on the second replica

    # Throttled hard on the first replica: 5 a minute, 1 at once.
    changed = await admin.put(limit_path(partner["id"]), json={"requests_per_minute": 5})
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["allowance"] == {"requests_per_minute": 5, "burst": 1}
    assert await _statuses(second, key, 3) == [200, 429, 429]
    assert (await _listed(admin))["Partner mit Schleife"]["requests_per_minute"] == 5

    # Back to the default: a second later ten requests a second again.
    reset = await admin.put(limit_path(partner["id"]), json={"requests_per_minute": None})
    assert reset.status == 200 and (await reset.json())["requests_per_minute"] is None
    first.clock.advance(timedelta(seconds=1))
    assert await _statuses(second, key, 10) == [200] * 10

    # A service centre that needs more than the default: 2400 a minute, 480 at once.
    raised = await admin.put(limit_path(partner["id"]), json={"requests_per_minute": 2400})
    assert (await raised.json())["allowance"] == {"requests_per_minute": 2400, "burst": 480}
    first.clock.advance(timedelta(minutes=1))
    assert await _statuses(second, key, 130) == [200] * 130  # beyond the default's 120 at once


@pytest.mark.req("R46")
@pytest.mark.req("R50")
async def test_each_change_of_a_key_limit_is_in_the_audit_log_with_before_and_after(
    gateway: Gateway,
) -> None:
    admin = await gateway.signed_in("audit-limit-admin", (Role.ADMIN, "*"))
    partner, _ = await _key(admin, "Partner", requests_per_minute=100)
    created = await audit_rows(gateway, action="create", entity="api_key", entity_id=partner["id"])
    assert created[0]["changes"]["requests_per_minute"] == 100

    assert (await admin.put(limit_path(partner["id"]), json={"requests_per_minute": 20})).status == 200
    assert (await admin.put(limit_path(partner["id"]), json={"requests_per_minute": None})).status == 200
    # The value it has already: nothing changes, nothing is written.
    assert (await admin.put(limit_path(partner["id"]), json={"requests_per_minute": None})).status == 200
    rows = await audit_rows(gateway, action="set_limit", entity="api_key", entity_id=partner["id"])
    assert [(r["actor"], r["outcome"], r["changes"]) for r in rows] == [
        (
            "audit-limit-admin",
            "ok",
            {"before": {"requests_per_minute": 100}, "after": {"requests_per_minute": 20}},
        ),
        (
            "audit-limit-admin",
            "ok",
            {"before": {"requests_per_minute": 20}, "after": {"requests_per_minute": None}},
        ),
    ]
    assert rows[0]["actor_kind"] == "user" and rows[0]["ip"] is not None


INVALID = [
    pytest.param(0, id="zero"),
    pytest.param(-5, id="negative"),
    pytest.param(60_001, id="above-the-maximum"),
    pytest.param(10**12, id="absurdly-large"),
    pytest.param("600", id="a-number-as-text"),
    pytest.param("viele", id="text"),
    pytest.param(12.5, id="a-fraction"),
    pytest.param(True, id="a-boolean"),
]


@pytest.mark.req("R50")
@pytest.mark.parametrize("value", INVALID)
async def test_a_limit_that_is_no_whole_number_within_the_bounds_is_422_naming_the_field(
    gateway: Gateway, value: object
) -> None:
    admin = await gateway.signed_in("invalid-limit-admin", (Role.ADMIN, "*"))
    body = {"name": "Partner", "locations": ["mitte"], "operations": ["appointments:read"]}
    refused = await admin.post(KEYS, json={**body, "requests_per_minute": value})
    assert refused.status == 422
    error = (await refused.json())["error"]
    assert error["code"] == "validation_error"
    assert [d["field"] for d in error["details"]] == ["requests_per_minute"]
    assert await _listed(admin) == {}

    partner, _ = await _key(admin, "Partner", requests_per_minute=50)
    refused = await admin.put(limit_path(partner["id"]), json={"requests_per_minute": value})
    assert refused.status == 422
    assert [d["field"] for d in (await refused.json())["error"]["details"]] == ["requests_per_minute"]
    assert (await _listed(admin))["Partner"]["requests_per_minute"] == 50
    assert await audit_rows(gateway, action="set_limit") == []


@pytest.mark.req("R50")
async def test_a_limit_change_needs_the_field_and_a_key_that_is_still_valid(gateway: Gateway) -> None:
    """A body that forgets the field does not reset the limit; an unknown key is 404, a revoked one 409."""
    admin = await gateway.signed_in("missing-limit-admin", (Role.ADMIN, "*"))
    partner, _ = await _key(admin, "Partner", requests_per_minute=50)
    missing = await admin.put(limit_path(partner["id"]), json={})
    assert missing.status == 422
    assert [d["field"] for d in (await missing.json())["error"]["details"]] == ["requests_per_minute"]
    unknown = await admin.put(
        limit_path("0b5e7c1a-93d4-4f4e-a1d2-5c2f6e8b9a10"), json={"requests_per_minute": 5}
    )
    assert unknown.status == 404
    assert (await admin.post(f"{KEYS}/{partner['id']}/revoke")).status == 200
    revoked = await admin.put(limit_path(partner["id"]), json={"requests_per_minute": 5})
    assert revoked.status == 409 and (await revoked.json())["error"]["code"] == "conflict"
    assert (await _listed(admin))["Partner"]["requests_per_minute"] == 50


@pytest.mark.req("R50")
async def test_the_database_refuses_a_limit_out_of_bounds_whoever_writes_it(gateway: Gateway) -> None:
    """The last line behind the API and the form: the table's CHECK, translated for the service."""
    admin = await gateway.signed_in("db-limit-admin", (Role.ADMIN, "*"))
    partner, _ = await _key(admin, "Partner")
    pool = gateway.staff.pool
    for value in (0, -1, 60_001):
        with pytest.raises(asyncpg.CheckViolationError):
            await pool.execute(
                "UPDATE api_keys SET requests_per_minute = $2 WHERE id = $1::uuid", partner["id"], value
            )
        async with pool.acquire() as conn:
            with pytest.raises(ValidationError) as refused:
                await db.set_api_key_limit(conn, partner["id"], value)
        assert refused.value.details == [{"field": "requests_per_minute", "message": "out of range"}]
    assert (await _listed(admin))["Partner"]["requests_per_minute"] is None


@pytest.mark.req("R50")
@pytest.mark.req("R28")
async def test_only_an_administrator_may_change_a_key_limit(gateway: Gateway) -> None:
    admin = await gateway.signed_in("only-admin", (Role.ADMIN, "*"))
    partner, key = await _key(admin, "Partner", requests_per_minute=10)
    location_admin = await gateway.signed_in("only-location-admin", (Role.LOCATION_ADMIN, "mitte"))
    manager = await gateway.signed_in("only-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
    for client in (location_admin, manager):
        refused = await client.put(limit_path(partner["id"]), json={"requests_per_minute": 60_000})
        assert refused.status == 403
        status, _, _ = await post_form(
            client, f"/staff/admin/api-keys/{partner['id']}/request-limit", {"requests_per_minute": ""}
        )
        assert status == 403
    # Nor the key itself, whatever its operations (no API key may call the admin routes).
    refused = await gateway.client.put(
        limit_path(partner["id"]), json={"requests_per_minute": 60_000}, headers=key
    )
    assert refused.status == 403
    assert (await _listed(admin))["Partner"]["requests_per_minute"] == 10
    assert await audit_rows(gateway, action="set_limit", outcome="ok") == []


@pytest.mark.req("R50")
async def test_the_api_keys_page_shows_each_limit_and_changes_it_with_german_errors(
    gateway: Gateway,
) -> None:
    gateway.upstreams["catalog"].answers["/api/v1/locations"] = [{"id": "mitte", "name": "Bremen-Mitte"}]
    admin = await gateway.signed_in("page-limit-admin", (Role.ADMIN, "*"))
    form = {"name": "Kleiner Partner", "locations": ["mitte"], "operations": ["appointments:write"]}

    # Created with a limit of its own on the page; text in the field is refused there, as typed.
    status, _, html = await post_form(
        admin, "/staff/admin/api-keys", {**form, "requests_per_minute": "viele"}
    )
    assert status == 422
    page = elements(html)
    assert page.summary_links == [
        (
            "#key-requests_per_minute",
            "Anfragen je Minute: bitte eine ganze Zahl (oder leer lassen für den Standard)",
        )
    ]
    assert_marked(page, "key-requests_per_minute", "bitte eine ganze Zahl")
    assert page.attrs["key-requests_per_minute"]["value"] == "viele"
    assert page.attrs["key-name"]["value"] == "Kleiner Partner"
    status, _, html = await post_form(admin, "/staff/admin/api-keys", {**form, "requests_per_minute": "30"})
    assert status == 200 and "Schlüssel „Kleiner Partner“ erstellt" in html
    await _key(admin, "Service-Center Bremen")

    keys = await _listed(admin)
    partner_id, centre_id = keys["Kleiner Partner"]["id"], keys["Service-Center Bremen"]["id"]
    page = elements(await (await admin.get("/staff/admin/api-keys")).text())
    assert "30/min" in page.text[f"apikey-{partner_id}"]
    assert "Standard (600/min)" in page.text[f"apikey-{centre_id}"]

    # Changed on the page: out of bounds is said at the row's field; a good value holds at once.
    field = f"limit-{partner_id}-requests_per_minute"
    action = f"/staff/admin/api-keys/{partner_id}/request-limit"
    for typed, problem in (("0", "bitte mindestens 1"), ("1000000", "bitte höchstens 60000")):
        status, _, html = await post_form(admin, action, {"requests_per_minute": typed})
        assert status == 422, typed
        page = elements(html)
        assert page.summary_links == [
            (f"#{field}", f"Schlüssel „Kleiner Partner“: Anfragen je Minute: {problem}")
        ]
        assert_marked(page, field, problem)
        assert page.attrs[field]["value"] == typed
    status, location, _ = await post_form(admin, action, {"requests_per_minute": "5"})
    assert status == 303 and location.startswith("/staff/admin/api-keys?notice=limit_saved")
    page = elements(await (await admin.get(location)).text())
    assert "5/min" in page.text[f"apikey-{partner_id}"] and page.attrs[field]["value"] == "5"
    # Empty is the default again.
    status, _, _ = await post_form(admin, action, {"requests_per_minute": ""})
    assert status == 303
    page = elements(await (await admin.get("/staff/admin/api-keys")).text())
    assert "Standard (600/min)" in page.text[f"apikey-{partner_id}"]
    assert len(await audit_rows(gateway, action="set_limit", entity_id=partner_id)) == 2


def test_the_document_declares_the_key_limit_route_and_field_in_a_new_minor_version() -> None:
    merged = document()
    major, minor, _ = (int(part) for part in VERSION.split("."))
    assert (major, minor) >= (1, 4) and merged["info"]["version"] == VERSION
    operation = merged["paths"][limit_path("{key_id}")]["put"]
    assert {"200", "403", "404", "409", "422"} <= set(operation["responses"])
    schemas = merged["components"]["schemas"]
    field = schemas["ApiKeyLimitIn"]["properties"]["requests_per_minute"]
    bounds = next(option for option in field["anyOf"] if option.get("type") == "integer")
    assert (bounds["minimum"], bounds["maximum"]) == (1, 60_000)
    assert "requests_per_minute" in schemas["ApiKeyIn"]["properties"]
    assert {"requests_per_minute", "allowance"} <= set(schemas["ApiKeyOut"]["properties"])


def test_a_key_limit_brings_a_burst_of_the_same_share_of_a_minute_as_the_default() -> None:
    default = KeyAllowance(per_minute=600, burst=120)
    assert default.of(None) == (10.0, 120)
    assert default.of(1200) == (20.0, 240)
    assert default.of(30) == (0.5, 6)
    assert default.of(1) == (1 / 60, 1)  # never less than one at once
    # The limiter keeps a key's tokens when its limit changes, at most the new burst, and sweeps each
    # idle key by its own size.
    limiter = RateLimiter(rate=10.0, burst=120)
    assert [limiter.take("k", 0.0) for _ in range(3)] == [0, 0, 0]
    assert [limiter.take("k", 0.0, rate=0.5, burst=2) for _ in range(3)] == [0, 0, 2]
    assert limiter.take("k", 2.0, rate=0.5, burst=2) == 0
