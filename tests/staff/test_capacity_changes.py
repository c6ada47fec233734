"""R20: a short-notice reduction of windows or capacity never drops booked appointments silently: it is
refused with the affected appointments listed, or applied only when confirmed, listing them for handling."""

from __future__ import annotations

import pytest

from shared.identity import Role
from tests.conftest import wait_for
from tests.staff.conftest import Stack, audit_rows, customer, wait_for_slots

TUESDAY = "2026-03-03"
TEN = "2026-03-03T10:00:00+01:00"

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def _window_id(stack: Stack) -> int:
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    return int(details["windows"][0]["id"])


@pytest.mark.req("R20")
@pytest.mark.req("R29")
async def test_a_window_reduction_that_drops_a_booked_appointment_is_refused_or_applied_only_when_confirmed(
    stack: Stack,
) -> None:
    gateway = stack.gateway
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=TEN)
    booked = await gateway.browser().post("/api/v1/appointments", json=customer(TEN))
    assert booked.status == 201, await booked.text()
    appointment = await booked.json()
    leader = await gateway.signed_in("mitte-lead", (Role.GROUP_LEADER, "mitte"))
    window_id = await _window_id(stack)

    # Ends before the booked 10:00: refused, listing the appointment without personal data.
    shorter = {"weekday": 1, "start": "08:00", "end": "10:00", "service_points": 2}
    refused = await leader.put(f"/api/v1/admin/windows/{window_id}", json=shorter)
    assert refused.status == 409, await refused.text()
    error = (await refused.json())["error"]
    assert error["code"] == "capacity_conflict"
    assert [(a["id"], a["reference"], a["reason"]) for a in error["details"]] == [
        (appointment["id"], appointment["reference"], "no_window")
    ]
    assert "Mustermann" not in await refused.text() and "kundin@" not in await refused.text()
    unchanged = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert unchanged["windows"][0]["end"] == "12:00"

    # A reduction the appointment survives (it keeps service point 1) goes through without a list.
    one_point = {"weekday": 1, "start": "08:00", "end": "12:00", "service_points": 1}
    fewer = await leader.put(f"/api/v1/admin/windows/{window_id}", json=one_point)
    assert fewer.status == 200, await fewer.text()
    assert "affected_appointments" not in await fewer.json()

    # Confirmed: applied, and the answer lists the appointment for explicit handling.
    confirmed = await leader.put(
        f"/api/v1/admin/windows/{window_id}", json={**shorter, "service_points": 1, "confirm_affected": True}
    )
    assert confirmed.status == 200, await confirmed.text()
    listed = (await confirmed.json())["affected_appointments"]
    assert [a["id"] for a in listed] == [appointment["id"]]
    changed = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert changed["windows"][0]["end"] == "10:00"
    entries = await audit_rows(gateway, actor="mitte-lead", entity="window", outcome="ok")
    assert entries[-1]["changes"]["affected_appointments"] == [appointment["id"]]
    assert "confirm_affected" not in entries[-1]["changes"]["fields"]


@pytest.mark.req("R20")
async def test_a_closure_over_a_booked_day_needs_confirmation_and_a_leader_closes_only_their_group(
    stack: Stack,
) -> None:
    gateway = stack.gateway
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=TEN)
    booked = await gateway.browser().post("/api/v1/appointments", json=customer(TEN))
    assert booked.status == 201
    leader = await gateway.signed_in("ez-lead", (Role.GROUP_LEADER, "mitte", ("mitte-ez",)))
    other = await gateway.signed_in("other-lead", (Role.GROUP_LEADER, "mitte", ("mitte-lt",)))
    closure = {"first": TUESDAY, "last": TUESDAY, "group_id": "mitte-ez", "reason": "Personalengpass"}

    assert (await other.post("/api/v1/admin/locations/mitte/closures", json=closure)).status == 403
    whole = {"first": TUESDAY, "last": TUESDAY, "reason": "Betriebsversammlung"}
    assert (await leader.post("/api/v1/admin/locations/mitte/closures", json=whole)).status == 403

    refused = await leader.post("/api/v1/admin/locations/mitte/closures", json=closure)
    assert refused.status == 409
    assert (await refused.json())["error"]["details"][0]["reason"] == "closed"
    applied = await leader.post(
        "/api/v1/admin/locations/mitte/closures", json={**closure, "confirm_affected": True}
    )
    assert applied.status == 201, await applied.text()
    assert len((await applied.json())["affected_appointments"]) == 1


@pytest.mark.req("R20")
async def test_a_restriction_of_a_day_lists_only_the_appointments_beyond_its_points_and_is_saved_once(
    stack: Stack,
) -> None:
    gateway = stack.gateway
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=TEN)
    other = customer(TEN, "zweite@example.org")
    other["customer"]["customer_number"] = "123B456789"
    for body in (customer(TEN), other):
        booked = await gateway.browser().post("/api/v1/appointments", json=body)
        assert booked.status == 201, await booked.text()
    leader = await gateway.signed_in("ez-lead", (Role.GROUP_LEADER, "mitte", ("mitte-ez",)))
    restriction = {"first": TUESDAY, "group_id": "mitte-ez", "last": TUESDAY, "service_points_left": 1}

    # Only the appointment on the second point loses its place; the first keeps point 1.
    refused = await leader.post("/api/v1/admin/locations/mitte/closures", json=restriction)
    assert refused.status == 409, await refused.text()
    details = (await refused.json())["error"]["details"]
    assert [(d["service_point"], d["reason"]) for d in details] == [(2, "no_service_point")]
    applied = await leader.post(
        "/api/v1/admin/locations/mitte/closures", json={**restriction, "confirm_affected": True}
    )
    assert applied.status == 201, await applied.text()
    again = await leader.post(
        "/api/v1/admin/locations/mitte/closures", json={**restriction, "confirm_affected": True}
    )
    assert (await again.json())["id"] == (await applied.json())["id"]  # one restriction, not two
    location = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert [(c["first"], c["service_points_left"]) for c in location["closures"]] == [(TUESDAY, 1)]
    # Booking learns the restriction from the catalog's event: with point 1 taken, 10:00 is full that day.

    async def ten_is_full() -> bool | None:
        found = await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY)
        return TEN not in found or None

    await wait_for(ten_is_full, timeout=15, what="10:00 to be full under the restriction")


@pytest.mark.req("R20")
async def test_removing_a_window_or_reducing_service_points_lists_every_appointment_it_would_drop(
    stack: Stack,
) -> None:
    gateway = stack.gateway
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=TEN)
    first = await gateway.browser().post("/api/v1/appointments", json=customer(TEN, "a@example.org"))
    second_body = {**customer(TEN, "b@example.org")}
    second_body["customer"] = {**second_body["customer"], "customer_number": "123A456788"}
    second = await gateway.browser().post("/api/v1/appointments", json=second_body)
    assert first.status == second.status == 201, await second.text()
    ids = {(await first.json())["id"], (await second.json())["id"]}
    location_admin = await gateway.signed_in("mitte-la", (Role.LOCATION_ADMIN, "mitte"))
    window_id = await _window_id(stack)

    # One service point fewer: the appointment on service point 2 would have none.
    fewer = {"weekday": 1, "start": "08:00", "end": "12:00", "service_points": 1}
    refused = await location_admin.put(f"/api/v1/admin/windows/{window_id}", json=fewer)
    assert refused.status == 409
    dropped = (await refused.json())["error"]["details"]
    assert [(a["service_point"], a["reason"]) for a in dropped] == [(2, "no_service_point")]

    # Without the window, both.
    deleted = await location_admin.request("DELETE", f"/api/v1/admin/windows/{window_id}")
    assert deleted.status == 409
    assert {a["id"] for a in (await deleted.json())["error"]["details"]} == ids
    # Mitte's one day is its last: without it, no appointments at all (R21 asks for the approval first).
    unapproved = await location_admin.request(
        "DELETE", f"/api/v1/admin/windows/{window_id}", params={"confirm_affected": "true"}
    )
    assert (await unapproved.json())["error"]["code"] == "approval_required"
    approval = {
        "rule": "R17",
        "reference": "GBL2-2026-007",
        "approved_by": "GBL 2",
        "valid_from": "2026-03-01",
        "valid_until": "2026-06-30",
    }
    recorded = await stack.admin.post("/api/v1/admin/locations/mitte/policy-approvals", json=approval)
    assert recorded.status == 201, await recorded.text()
    confirmed = await location_admin.request(
        "DELETE", f"/api/v1/admin/windows/{window_id}", params={"confirm_affected": "true"}
    )
    assert confirmed.status == 200, await confirmed.text()
    assert {a["id"] for a in (await confirmed.json())["affected_appointments"]} == ids
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert details["windows"] == []


@pytest.mark.req("R20")
@pytest.mark.parametrize(
    ("times", "field"),
    [({"start": "08:00+01:00", "end": "12:00+01:00"}, "start"), ({"start": "08:00", "end": 43200}, "end")],
)
async def test_a_window_time_with_an_offset_or_as_a_number_is_a_422_naming_it(
    stack: Stack, times: dict[str, object], field: str
) -> None:
    """A window's times are Berlin wall-clock times. With an offset, booking's check of the booked
    appointments could not compare them (500, answered as 503 "could not be checked"); as a number they
    were read as seconds after midnight UTC. Refused at the edge instead, the window unchanged."""
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=TEN)
    booked = await stack.gateway.browser().post("/api/v1/appointments", json=customer(TEN))
    assert booked.status == 201, await booked.text()
    window_id = await _window_id(stack)
    window = {"weekday": 1, "service_points": 2, **times}
    response = await stack.admin.put(f"/api/v1/admin/windows/{window_id}", json=window)
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "validation_error" and error["details"][0]["field"] == field
    unchanged = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert (unchanged["windows"][0]["start"], unchanged["windows"][0]["end"]) == ("08:00", "12:00")
