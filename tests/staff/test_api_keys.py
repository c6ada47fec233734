"""API keys of the service centre and other systems (R37, R50): shown once, stored hashed, scoped to
locations and operations, revocable, with a last-used time; refusals are in the audit log."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import aiohttp
import pytest
from prometheus_client import REGISTRY

from shared.identity import IdentityKind, Role, request_target, verify
from shared.web import SETTINGS
from tests.staff.conftest import (
    Gateway,
    GatewayFactory,
    Stack,
    StaffClient,
    audit_rows,
    customer,
    wait_for_slots,
)

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

BOOKING = {
    "location_id": "mitte",
    "concern_id": "neuantrag",
    "start": "2026-03-03T10:00:00+01:00",
    "mode": "in_person",
    "customer": {
        "first_name": "Erika",
        "last_name": "Mustermann",
        "email": "service-centre@jobcenter.example",
    },
}


async def _key(admin: StaffClient, **scope: object) -> dict[str, object]:
    body = {"name": "Service-Center Bremen", "locations": ["mitte"], "operations": ["appointments:write"]}
    response = await admin.post("/api/v1/admin/api-keys", json={**body, **scope})
    assert response.status == 201, await response.text()
    created: dict[str, object] = await response.json()
    return created


def bearer(key: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.req("R37")
@pytest.mark.req("R50")
async def test_the_service_centre_books_with_its_key_as_channel_service_centre(gateway: Gateway) -> None:
    admin = await gateway.signed_in("key-admin", (Role.ADMIN, "*"))
    created = await _key(admin, operations=["appointments:write", "appointments:read"])
    plain = str(created["key"])
    assert plain.startswith(f"otv_{created['prefix']}_")
    # Stored only as a hash: neither the key nor its secret is in the database.
    secret = plain.split("_", 2)[2]
    row = await gateway.staff.pool.fetchrow("SELECT * FROM api_keys WHERE id = $1::uuid", created["id"])
    assert row is not None and secret not in json.dumps({k: str(v) for k, v in dict(row).items()})
    assert bytes(row["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    listed = await (await admin.get("/api/v1/admin/api-keys")).json()
    assert "key" not in listed[0] and listed[0]["last_used_at"] is None

    # No cookie, no Origin: an API key needs no CSRF protection.
    response = await gateway.client.post("/api/v1/staff/appointments", json=BOOKING, headers=bearer(plain))
    assert response.status == 200
    call = gateway.upstreams["booking"].calls[-1]
    assert call["path"] == "/api/v1/staff/appointments"
    identity = verify(
        call["identity"],
        gateway.app[SETTINGS].internal_secret,
        gateway.clock.now(),
        target=request_target("booking", "POST", "/api/v1/staff/appointments"),
    )
    assert identity.kind is IdentityKind.API_KEY
    assert identity.channel == "service_centre"
    assert identity.subject == f"api-key:{created['id']}"
    assert identity.operations == ("appointments:read", "appointments:write")
    assert "Authorization" not in call["headers"]

    listed = await (await admin.get("/api/v1/admin/api-keys")).json()
    assert listed[0]["last_used_at"] is not None
    # The write is in the audit log with the names of the fields, never the customer's values.
    entries = await audit_rows(gateway, actor=f"api-key:{created['id']}", outcome="ok")
    assert entries[-1]["entity"] == "appointment" and entries[-1]["location"] == "mitte"
    assert "customer.email" in entries[-1]["changes"]["fields"]
    assert "Mustermann" not in json.dumps(entries[-1]["changes"])


@pytest.mark.req("R50")
async def test_a_key_outside_its_scope_gets_403_and_the_refusal_is_audited(gateway: Gateway) -> None:
    admin = await gateway.signed_in("key-admin2", (Role.ADMIN, "*"))
    created = await _key(admin)
    key = bearer(created["key"])
    actor = f"api-key:{created['id']}"
    other_location = await gateway.client.post(
        "/api/v1/staff/appointments", json={**BOOKING, "location_id": "nord"}, headers=key
    )
    assert other_location.status == 403
    assert (await other_location.json())["error"]["code"] == "forbidden"
    not_its_operation = await gateway.client.get(
        "/api/v1/staff/locations/mitte/appointments?date=2026-03-03", headers=key
    )
    assert not_its_operation.status == 403
    never_for_keys = await gateway.client.get("/api/v1/admin/accounts", headers=key)
    assert never_for_keys.status == 403
    assert not gateway.upstreams["booking"].calls
    refusals = await audit_rows(gateway, actor=actor, outcome="refused")
    assert [(r["route"], r["status"]) for r in refusals] == [
        ("/api/v1/staff/appointments", 403),
        ("/api/v1/staff/locations/{location_id}/appointments", 403),
        ("/api/v1/admin/accounts", 403),
    ]
    assert refusals[0]["location"] == "nord"


@pytest.mark.req("R50")
async def test_a_revoked_expired_or_wrong_key_gets_401_and_the_refusal_is_audited(gateway: Gateway) -> None:
    admin = await gateway.signed_in("key-admin3", (Role.ADMIN, "*"))
    created = await _key(admin)
    plain = str(created["key"])
    assert (
        await gateway.client.post("/api/v1/staff/appointments", json=BOOKING, headers=bearer(plain))
    ).status == 200

    wrong = plain[:-4] + ("AAAA" if not plain.endswith("AAAA") else "BBBB")
    assert (
        await gateway.client.post("/api/v1/staff/appointments", json=BOOKING, headers=bearer(wrong))
    ).status == 401
    revoked = await admin.post(f"/api/v1/admin/api-keys/{created['id']}/revoke")
    assert revoked.status == 200 and (await revoked.json())["revoked_at"]
    after = await gateway.client.post("/api/v1/staff/appointments", json=BOOKING, headers=bearer(plain))
    assert after.status == 401
    assert (await after.json())["error"]["code"] == "unauthenticated"
    garbage = await gateway.client.get("/api/v1/staff/callbacks?location=mitte", headers=bearer("nonsense"))
    assert garbage.status == 401

    expiring = await _key(admin, expires_at=(gateway.clock.now() + timedelta(days=1)).isoformat())
    gateway.clock.advance(timedelta(days=1, seconds=1))
    expired = await gateway.client.post(
        "/api/v1/staff/appointments", json=BOOKING, headers=bearer(expiring["key"])
    )
    assert expired.status == 401

    refusals = await audit_rows(gateway, action="authenticate", outcome="refused")
    reasons = [(r["actor"], r["changes"]["reason"]) for r in refusals[-4:]]
    assert reasons == [
        (f"api-key:{created['id']}", "wrong_secret"),
        (f"api-key:{created['id']}", "revoked"),
        ("unknown-key", "malformed"),
        (f"api-key:{expiring['id']}", "expired"),
    ]
    assert len(gateway.upstreams["booking"].calls) == 1


@pytest.mark.req("R46")
async def test_a_flood_of_bogus_keys_from_one_network_writes_only_a_few_audit_rows_a_minute(
    make_gateway: GatewayFactory,
) -> None:
    # Behind the ingress (a trusted proxy) the client's address comes from X-Forwarded-For.
    gateway = await make_gateway(trusted_proxies="127.0.0.1/32")
    admin = await gateway.signed_in("key-admin-flood", (Role.ADMIN, "*"))
    valid = bearer((await _key(admin))["key"])
    throttled_before = REGISTRY.get_sample_value("otv_api_key_refusals_total", {"outcome": "throttled"}) or 0

    async def bogus(address: str) -> aiohttp.ClientResponse:
        return await gateway.client.get(
            "/api/v1/staff/does-not-exist", headers={**bearer("x"), "X-Forwarded-For": address}
        )

    # 200 requests, each from a fresh address of one IPv6 /64.
    answers = [await bogus(f"2001:db8:5:5::{n:x}") for n in range(1, 201)]
    assert [r.status for r in answers[:10]] == [401] * 10
    assert {r.status for r in answers[10:]} == {429}
    assert (await answers[-1].json())["error"]["code"] == "rate_limited"
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 61
    assert len(await audit_rows(gateway, action="authenticate", outcome="refused")) == 10
    throttled = REGISTRY.get_sample_value("otv_api_key_refusals_total", {"outcome": "throttled"})
    assert throttled == throttled_before + 190

    # A valid key from that network is not held back; another network's refusals are still audited.
    booked = await gateway.client.post(
        "/api/v1/staff/appointments", json=BOOKING, headers={**valid, "X-Forwarded-For": "2001:db8:5:5::1"}
    )
    assert booked.status == 200
    assert (await bogus("2001:db8:5:6::1")).status == 401
    # A minute later the network's refusals are audited again.
    gateway.clock.advance(timedelta(minutes=1, seconds=1))
    assert (await bogus("2001:db8:5:5::1")).status == 401
    rows = await audit_rows(gateway, action="authenticate", outcome="refused")
    assert len(rows) == 12 and rows[-1]["ip"] is not None


async def test_keys_are_created_only_by_administrators_and_scopes_are_validated(gateway: Gateway) -> None:
    location_admin = await gateway.signed_in("la-keys", (Role.LOCATION_ADMIN, "mitte"))
    assert (
        await location_admin.post(
            "/api/v1/admin/api-keys",
            json={"name": "x", "locations": ["mitte"], "operations": ["appointments:write"]},
        )
    ).status == 403
    admin = await gateway.signed_in("key-admin4", (Role.ADMIN, "*"))
    bad = await admin.post(
        "/api/v1/admin/api-keys", json={"name": "x", "locations": ["mitte"], "operations": ["everything"]}
    )
    assert bad.status == 422
    assert (await bad.json())["error"]["details"][0]["field"] == "operations"


@pytest.mark.req("R37")
@pytest.mark.req("R50")
async def test_the_service_centre_books_moves_reads_and_cancels_with_its_key_through_the_real_booking(
    stack: Stack,
) -> None:
    """End to end, with the real booking service behind the gateway: the key's scope is its locations
    and operations; booking checks both again (the stand-in of the test above cannot)."""
    gateway, admin = stack.gateway, stack.admin
    slots = await wait_for_slots(admin, "mitte", "neuantrag", "2026-03-03")
    key = bearer((await _key(admin, operations=["appointments:write", "appointments:read"]))["key"])
    read_only = bearer((await _key(admin, name="Lesend", operations=["appointments:read"]))["key"])
    elsewhere = bearer((await _key(admin, name="Nord", locations=["nord"]))["key"])
    client = gateway.client

    booked = await client.post("/api/v1/staff/appointments", json=customer(slots[0]), headers=key)
    assert booked.status == 201, await booked.text()
    appointment = await booked.json()
    file = await client.get(f"/api/v1/staff/appointments/{appointment['id']}", headers=key)
    assert file.status == 200 and (await file.json())["channel"] == "service_centre"

    moved = await client.post(
        f"/api/v1/staff/appointments/{appointment['id']}/reschedule", json={"start": slots[2]}, headers=key
    )
    assert moved.status == 200, await moved.text()
    assert (await moved.json())["start"] == slots[2]
    day = await client.get(
        "/api/v1/staff/locations/mitte/appointments", params={"date": "2026-03-03"}, headers=read_only
    )
    assert day.status == 200 and [a["start"] for a in await day.json()] == [slots[2]]

    # A caller spells the address anew: corrected with the key, audited with the field names only.
    contact = f"/api/v1/staff/appointments/{appointment['id']}/contact"
    corrected = await client.post(contact, json={"email": "erika.neu@example.org"}, headers=key)
    assert corrected.status == 200, await corrected.text()
    assert (await corrected.json())["customer"]["email"] == "erika.neu@example.org"
    [entry] = [
        e
        for e in await audit_rows(gateway, outcome="ok", entity="appointment")
        if e["route"].endswith("/contact")
    ]
    assert entry["actor"].startswith("api-key:") and entry["entity_id"] == appointment["id"]
    assert "email" in entry["changes"]["fields"] and "erika" not in json.dumps(entry["changes"])
    for headers in (read_only, elsewhere):  # no write operation; another location's key
        for path, body in (
            (f"/api/v1/staff/appointments/{appointment['id']}/reschedule", {"start": slots[3]}),
            (f"/api/v1/staff/appointments/{appointment['id']}/cancel", {"reason": "Anruf"}),
            (contact, {"phone": "0421 123456"}),
        ):
            refused = await client.post(path, json=body, headers=headers)
            assert refused.status == 403, (path, await refused.text())
    cancelled = await client.post(
        f"/api/v1/staff/appointments/{appointment['id']}/cancel", json={"reason": "Anruf"}, headers=key
    )
    assert cancelled.status == 200 and (await cancelled.json()) == {"status": "cancelled"}


@pytest.mark.req("R50")
async def test_a_booking_whose_body_is_not_json_is_told_so_not_that_a_field_is_missing(
    gateway: Gateway,
) -> None:
    """The service centre's software sends a form or broken JSON: the answer names the body, so that its
    developers look at the encoding, not for a location_id that is there."""
    admin = await gateway.signed_in("key-admin-json", (Role.ADMIN, "*"))
    key = bearer((await _key(admin))["key"])
    for body in ("location_id=mitte", '{"location_id": "mitte",', "[]"):
        response = await gateway.client.post(
            "/api/v1/staff/appointments", data=body, headers={**key, "Content-Type": "application/json"}
        )
        error = (await response.json())["error"]
        assert response.status == 422 and error["details"][0]["field"] == "body", body
        assert "JSON object" in error["message"]
    missing = await gateway.client.post("/api/v1/staff/appointments", json={"concern_id": "x"}, headers=key)
    assert (await missing.json())["error"]["details"][0]["field"] == "location_id"
    assert not gateway.upstreams["booking"].calls
