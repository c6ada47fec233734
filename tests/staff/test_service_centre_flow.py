"""The service centre's booking flow through the documented API (R37, R38, R39): free slots and holds
behind the staff rules, with its key, and not behind the customers' per-address bot defence."""

from __future__ import annotations

from typing import Any

import pytest

from services.gateway.openapi import document
from services.gateway.proxy import UPSTREAMS
from services.gateway.staff.rules import FORWARDED
from shared.identity import Role
from tests.staff.conftest import GatewayFactory, Stack, StaffClient, audit_rows, customer, wait_for_slots

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

DAY = "2026-03-03"


async def _key(admin: StaffClient, name: str, locations: list[str], operations: list[str]) -> dict[str, str]:
    response = await admin.post(
        "/api/v1/admin/api-keys", json={"name": name, "locations": locations, "operations": operations}
    )
    assert response.status == 201, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['key']}"}


def _hold(start: str) -> dict[str, Any]:
    return {"concern_id": "neuantrag", "mode": "in_person", "start": start}


@pytest.mark.req("R37")
@pytest.mark.req("R38")
@pytest.mark.req("R39")
async def test_the_service_centre_reads_slots_and_holds_forty_times_in_a_row_without_428_or_429(
    stack: Stack, make_gateway: GatewayFactory
) -> None:
    """Forty calls in a row from one address, as a CRM behind one NAT makes at the Monday peak: with its
    key on the staff routes none meets the bot defence, while the customers' routes from the same address
    ask for a proof-of-work challenge after eight (and refuse with 429 once the bucket is empty)."""
    slots = await wait_for_slots(stack.admin, "mitte", "neuantrag", DAY)
    urls = {name: next(stack.gateway.app[UPSTREAMS].candidates(name)) for name in ("catalog", "booking")}
    # The production limits of holds (burst 20, soft 8); availability's lowered to the same.
    gateway = await make_gateway(
        urls=urls,
        clock=stack.gateway.clock,
        bot_defence=True,
        bot_availability_burst=20,
        bot_availability_soft=8,
        bot_availability_rate=0.05,
    )
    key = await _key(stack.admin, "Service-Center", ["mitte"], ["appointments:write"])
    client = gateway.client
    query = {"concern": "neuantrag", "mode": "in_person", "from": DAY, "to": DAY}

    reads = [
        await client.get("/api/v1/staff/locations/mitte/availability", params=query, headers=key)
        for _ in range(40)
    ]
    assert [r.status for r in reads] == [200] * 40
    assert [s["start"] for s in (await reads[-1].json())["slots"]] == slots
    held = [
        await client.post(
            "/api/v1/staff/locations/mitte/holds", json=_hold(slots[n % len(slots)]), headers=key
        )
        for n in range(40)
    ]
    statuses = [h.status for h in held]
    assert not {428, 429} & set(statuses), statuses
    # Two service points: each slot can be held twice, then it is taken (as for a customer).
    assert statuses == [201] * (2 * len(slots)) + [409] * (40 - 2 * len(slots))
    assert {(await h.json())["error"]["code"] for h in held[2 * len(slots) :]} == {"slot_taken"}

    # The same address on the customers' routes: after eight, a proof-of-work challenge every time.
    public_reads = [
        (await client.get("/api/v1/locations/mitte/availability", params=query)).status for _ in range(40)
    ]
    public_holds = [
        (await client.post("/api/v1/locations/mitte/holds", json=_hold(slots[0]))).status for _ in range(40)
    ]
    for answered in (public_reads, public_holds):
        assert 428 not in answered[:8] and answered[8:] == [428] * 32, answered


@pytest.mark.req("R37")
@pytest.mark.req("R38")
@pytest.mark.req("R50")
async def test_a_hold_taken_with_the_key_is_booked_with_it_and_the_routes_keep_to_the_staff_rules(
    stack: Stack,
) -> None:
    gateway, admin = stack.gateway, stack.admin
    slots = await wait_for_slots(admin, "mitte", "neuantrag", DAY)
    key = await _key(admin, "Service-Center", ["mitte"], ["appointments:write"])
    client = gateway.client

    held = await client.post("/api/v1/staff/locations/mitte/holds", json=_hold(slots[0]), headers=key)
    assert held.status == 201, await held.text()
    hold = await held.json()
    booked = await client.post(
        "/api/v1/staff/appointments", json={**customer(slots[0]), "hold_id": hold["hold_id"]}, headers=key
    )
    assert booked.status == 201, await booked.text()
    assert (await booked.json())["start"] == slots[0]
    # The audit log names the hold, and the booking that took it (docs/staff-work.md: every hold and
    # booking is in the audit log).
    [hold_entry] = await audit_rows(gateway, entity="hold", outcome="ok")
    assert hold_entry["entity_id"] == hold["hold_id"]
    assert hold_entry["actor_kind"] == "api_key" and hold_entry["location"] == "mitte"
    [booking_entry] = await audit_rows(gateway, entity="appointment", outcome="ok")
    assert booking_entry["entity_id"] == (await booked.json())["id"]
    assert booking_entry["changes"]["hold_id"] == hold["hold_id"]

    # A staff member of the location may use them too (the staff pages' own way round is internal).
    manager = await gateway.signed_in("flow-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
    assert (await manager.post("/api/v1/staff/locations/mitte/holds", json=_hold(slots[1]))).status == 201
    # Another location, another key's location, a key that may only read, nobody: refused.
    read_only = await _key(admin, "Lesend", ["mitte"], ["appointments:read"])
    elsewhere = await _key(admin, "Nord", ["nord"], ["appointments:write"])
    query = {"concern": "neuantrag", "from": DAY, "to": DAY}
    assert (await manager.get("/api/v1/staff/locations/nord/availability", params=query)).status == 403
    for headers in (read_only, elsewhere):
        refused = await client.get(
            "/api/v1/staff/locations/mitte/availability", params=query, headers=headers
        )
        assert refused.status == 403
        refused = await client.post(
            "/api/v1/staff/locations/mitte/holds", json=_hold(slots[2]), headers=headers
        )
        assert refused.status == 403
    anonymous = await client.post("/api/v1/staff/locations/mitte/holds", json=_hold(slots[2]))
    assert anonymous.status == 401


@pytest.mark.req("R50")
def test_the_document_tells_the_service_centre_what_a_forwarded_route_may_answer_and_how_to_retry() -> None:
    """A CRM written against the document handles a 504 of a booking that may have committed: it repeats
    with the same key and body, within the 24 hours the first answer is kept."""
    paths = document()["paths"]
    for route in FORWARDED:
        if not route.path.startswith("/api/"):
            continue
        responses = paths[route.path][route.method.lower()]["responses"]
        assert {"502", "503", "504"} <= set(responses), (route.method, route.path)
        assert "Retry-After" in responses["503"]["headers"]
    booking = paths["/api/v1/staff/appointments"]["post"]
    (key,) = [p for p in booking["parameters"] if p["name"] == "Idempotency-Key"]
    for promise in (
        "24 hours",
        "Only a successful booking (201) is stored",
        "repeat the request with the same key and the same body",
        "belongs to the API key or staff member",
        "interpreter_language",
    ):
        assert promise in key["description"], promise
    assert "`too_late`" in booking["responses"]["409"]["description"]
    # A new manage link cannot be repeated blindly: each call mails and ends the link before.
    renewal = paths["/api/v1/staff/appointments/{appointment_id}/manage-link"]["post"]["description"]
    assert "Not idempotent" in renewal and "504" in renewal
