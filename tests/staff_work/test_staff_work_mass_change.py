"""R20, R44: a mass change of 50 appointments when a location closes for a day: each customer gets
exactly one notice (one appointment event), nobody lands on an occupied service point, and applying the
same preview again changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.booking import factory
from tests.booking.conftest import configure
from tests.staff_work.conftest import HERE, Staff, book

TUESDAY = "2026-03-03"


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_a_mass_change_of_50_moves_or_cancels_each_once_never_onto_an_occupied_point_and_twice_is_once(
    client: TestClient[Any, Any], location_admin: Staff, manager: Staff, pool: asyncpg.Pool
) -> None:
    for minute in range(0, 240, 15):  # 16 slots x 3 points of the entrance zone
        for _ in range(3):
            await book(client, TUESDAY, f"{8 + minute // 60:02d}:{minute % 60:02d}")
    await book(client, TUESDAY, "08:00", concern="bescheid")
    await book(client, TUESDAY, "08:00", concern="bescheid")
    # Wednesday is partly booked already: the proposals go around it.
    for _ in range(3):
        await book(client, "2026-03-04", "08:00")

    assert (
        await manager.post(f"/api/v1/staff/locations/{HERE}/mass-change/preview", {"date": TUESDAY})
    ).status == 403
    response = await location_admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/preview", {"date": TUESDAY, "service_points_left": 0}
    )
    assert response.status == 201, await response.text()
    preview = await response.json()
    assert len(preview["affected"]) == 50
    assert all(a["action"] == "move" for a in preview["affected"])
    assert all(not a["proposed_start"].startswith(TUESDAY) for a in preview["affected"])
    before = await pool.fetchval("SELECT count(*) FROM outbox")

    applied = await location_admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/apply", {"preview_id": preview["id"]}
    )
    result = await applied.json()
    assert len(result["moved"]) + len(result["cancelled"]) == 50 and result["already_applied"] is False
    rows = await pool.fetch("SELECT type, envelope FROM outbox ORDER BY seq OFFSET $1", before)
    notices = Counter(r["envelope"]["data"]["appointment"]["id"] for r in rows)
    assert len(notices) == 50 and set(notices.values()) == {1}
    assert {r["type"] for r in rows} <= {"appointment.rescheduled", "appointment.cancelled"}
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM appointments WHERE location_id = $1 AND status = 'booked'"
            " AND start_at >= $2 AND start_at < $3",
            HERE,
            factory.at(TUESDAY, "00:00"),
            factory.at("2026-03-04", "00:00"),
        )
        == 0
    )
    overlapping = await pool.fetchval(
        "SELECT count(*) FROM appointments a JOIN appointments b ON a.id < b.id"
        " AND a.location_id = b.location_id AND a.group_id = b.group_id"
        " AND a.service_point = b.service_point AND a.status <> 'cancelled'"
        " AND b.status <> 'cancelled' AND tstzrange(a.start_at, a.end_at) && tstzrange(b.start_at, b.end_at)"
    )
    assert overlapping == 0

    again = await location_admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/apply", {"preview_id": preview["id"]}
    )
    second = await again.json()
    assert second["already_applied"] is True and second["moved"] == result["moved"]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before + 50


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_the_whole_location_s_day_is_for_its_administrators_a_group_s_day_for_its_leaders(
    client: TestClient[Any, Any], leader: Staff, location_admin: Staff, pool: asyncpg.Pool
) -> None:
    """A group leader changes a group's day; closing or restricting the whole location, which moves the
    customers of every team, is for the location's administrators, in booking as in the catalog."""
    booked = [await book(client, TUESDAY, "08:00"), await book(client, TUESDAY, "08:00", concern="bescheid")]
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    whole = {"date": TUESDAY, "service_points_left": 0}
    refused = await leader.post(f"{base}/preview", whole)
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "forbidden"
    # A preview an administrator made is not the group leader's to apply.
    preview = await (await location_admin.post(f"{base}/preview", whole)).json()
    assert len(preview["affected"]) == 2
    assert (await leader.post(f"{base}/apply", {"preview_id": preview["id"]})).status == 403
    statuses = await pool.fetch(
        "SELECT status, start_at FROM appointments WHERE id = ANY($1::uuid[])", [b["id"] for b in booked]
    )
    assert {(r["status"], r["start_at"]) for r in statuses} == {("booked", factory.at(TUESDAY, "08:00"))}
    # A group's day is the leader's to change.
    group = await leader.post(f"{base}/preview", {**whole, "group_id": "ez"})
    assert group.status == 201 and len((await group.json())["affected"]) == 1


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_appointments_the_preview_did_not_see_or_could_not_place_are_left_for_staff_not_cancelled(
    client: TestClient[Any, Any], location_admin: Staff, pool: asyncpg.Pool
) -> None:
    """Staff review a preview for a while; meanwhile a customer books on the day, and others take the free
    places proposed for the moves. Applying it must neither cancel an appointment whose new place is gone
    (the preview proposed a move, not a cancellation) nor overlook the one booked after the preview."""
    first, second = await book(client, TUESDAY, "08:00"), await book(client, TUESDAY, "08:00")
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    preview = await (
        await location_admin.post(f"{base}/preview", {"date": TUESDAY, "service_points_left": 0})
    ).json()
    proposed = {a["appointment_id"]: a for a in preview["affected"]}
    assert {a["action"] for a in proposed.values()} == {"move"}
    target = proposed[first["id"]]["proposed_start"]
    day, hhmm = target[:10], target[11:16]
    taken = []
    while True:  # other customers take every place of the first move's new time
        response = await client.post("/api/v1/appointments", json=factory.booking(factory.iso(day, hhmm)))
        if response.status != 201:
            assert response.status == 409
            break
        taken.append(await response.json())
    late = await book(client, TUESDAY, "09:00")
    before = await pool.fetchval("SELECT count(*) FROM outbox")

    result = await (await location_admin.post(f"{base}/apply", {"preview_id": preview["id"]})).json()
    assert result["cancelled"] == []
    assert first["id"] in result["skipped"] and late["id"] in result["skipped"]
    assert set(result["moved"]) | set(result["skipped"]) == {first["id"], second["id"], late["id"]}
    assert {c["reference"] for c in result["to_check"]} == {
        a["reference"] for a in (first, second, late) if a["id"] in result["skipped"]
    }
    left = await pool.fetch(
        "SELECT status, start_at FROM appointments WHERE id = ANY($1::uuid[])", result["skipped"]
    )
    assert {r["status"] for r in left} == {"booked"} and all(
        r["start_at"].date().isoformat() == TUESDAY for r in left
    )
    # One notice per moved customer, none for those left to staff.
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before + len(result["moved"])


@pytest.mark.req("R44")
async def test_a_move_whose_place_was_taken_falls_back_only_to_points_the_restriction_keeps(
    client: TestClient[Any, Any], location_admin: Staff, pool: asyncpg.Pool
) -> None:
    """A restriction to one service point over two days moves the customer on point 2 to a later time on
    point 1. When someone takes that place before the change is applied, the move may try another point of
    that time, but never one the restriction closes."""
    await book(client, TUESDAY, "08:00")
    moving = await book(client, TUESDAY, "08:00")
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    answer = await location_admin.post(
        f"{base}/preview", {"date": TUESDAY, "last": "2026-03-04", "service_points_left": 1}
    )
    assert answer.status == 201, await answer.text()
    preview = await answer.json()
    (proposal,) = [a for a in preview["affected"] if a["appointment_id"] == moving["id"]]
    target = proposal["proposed_start"]
    assert target[:10] in (TUESDAY, "2026-03-04")  # a later time within the range, on the point kept
    await book(client, target[:10], target[11:16])  # someone takes that time's first free point

    result = await (await location_admin.post(f"{base}/apply", {"preview_id": preview["id"]})).json()
    point = await pool.fetchval(
        "SELECT service_point FROM appointments WHERE id = $1", uuid.UUID(moving["id"])
    )
    if moving["id"] in result["moved"]:
        assert point == 1
    else:
        assert moving["id"] in result["skipped"] and point == 2  # left where it was, for staff to look at


@pytest.mark.req("R44")
async def test_a_mass_change_caught_in_a_deadlock_with_another_change_is_applied_on_a_second_attempt(
    client: TestClient[Any, Any], location_admin: Staff, pool: asyncpg.Pool
) -> None:
    """Applying locks the appointments one after the other; a staff member's change that holds one of them
    and then waits for one the mass change already holds is a deadlock, and PostgreSQL aborts one side.
    When that is the mass change, it must try again, not answer 500 and leave the closure undone."""
    first, second = await book(client, TUESDAY, "08:00"), await book(client, TUESDAY, "08:15")
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    preview = await (
        await location_admin.post(f"{base}/preview", {"date": TUESDAY, "service_points_left": 0})
    ).json()
    assert [a["appointment_id"] for a in preview["affected"]] == [first["id"], second["id"]]
    async with pool.acquire() as other:
        change = other.transaction()
        await change.start()
        await other.execute("SELECT 1 FROM appointments WHERE id = $1 FOR UPDATE", uuid.UUID(second["id"]))
        applying = asyncio.create_task(location_admin.post(f"{base}/apply", {"preview_id": preview["id"]}))
        await asyncio.sleep(0.5)  # the mass change has moved the first and waits for the second
        # Now the other change wants the first: PostgreSQL finds the cycle after deadlock_timeout (1 s) in
        # the mass change, which waited longer, and aborts its transaction.
        await other.execute("SELECT 1 FROM appointments WHERE id = $1 FOR UPDATE", uuid.UUID(first["id"]))
        await change.rollback()
        response = await applying
    assert response.status == 200, await response.text()
    result = await response.json()
    assert sorted(result["moved"]) == sorted([first["id"], second["id"]])


@pytest.mark.req("R44")
async def test_the_proposal_is_the_next_free_slot_of_the_same_kind_never_an_evening_for_a_daytime_customer(
    client: TestClient[Any, Any], location_admin: Staff, pool: asyncpg.Pool
) -> None:
    """A small, known grid: Wednesday 08:00 is taken, 08:15 free, an evening hour in the afternoon, and
    Thursday morning. Closing Tuesday proposes exactly the next free place of the same group, duration
    and mode for each customer; the evening hour only to the customer who had an evening appointment."""
    windows = [
        factory.window("ez", 1, "08:00", "08:30", 1),  # Tuesday
        factory.window("ez", 1, "16:00", "16:15", 1, evening=True),
        factory.window("ez", 2, "08:00", "08:30", 1),  # Wednesday
        factory.window("ez", 2, "15:00", "15:15", 1, evening=True),
        factory.window("ez", 3, "08:00", "08:30", 1),  # Thursday
    ]
    await configure(pool, factory.location(2, windows=windows))
    await book(client, "2026-03-04", "08:00")  # Wednesday 08:00 is full
    in_person = await book(client, TUESDAY, "08:00")
    phone = await book(client, TUESDAY, "08:15", mode="phone")
    evening = await book(client, TUESDAY, "16:00", evening_declaration=True)

    response = await location_admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/preview", {"date": TUESDAY, "service_points_left": 0}
    )
    assert response.status == 201, await response.text()
    proposed = {a["appointment_id"]: a for a in (await response.json())["affected"]}
    assert {k: (v["action"], v["proposed_start"]) for k, v in proposed.items()} == {
        in_person["id"]: ("move", factory.iso("2026-03-04", "08:15")),
        # Wednesday's evening hour is free and earlier, but not for someone who did not ask for one.
        phone["id"]: ("move", factory.iso("2026-03-05", "08:00")),
        evening["id"]: ("move", factory.iso("2026-03-04", "15:00")),
    }

    applied = await location_admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/apply", {"preview_id": (await response.json())["id"]}
    )
    assert applied.status == 200, await applied.text()
    rows = await pool.fetch(
        "SELECT id::text, start_at, group_id, mode, concern_id FROM appointments WHERE id = ANY($1::uuid[])",
        list(proposed),
    )
    assert {r["id"]: (r["start_at"], r["group_id"], r["mode"], r["concern_id"]) for r in rows} == {
        in_person["id"]: (factory.at("2026-03-04", "08:15"), "ez", "in_person", "veraenderung"),
        phone["id"]: (factory.at("2026-03-05", "08:00"), "ez", "phone", "veraenderung"),
        evening["id"]: (factory.at("2026-03-04", "15:00"), "ez", "in_person", "veraenderung"),
    }
