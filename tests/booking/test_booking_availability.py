"""Availability through the booking API, with an injected clock: the weekly windows on the Berlin wall
clock, the days the clocks change, Bremen's holidays, the 06:00 cutoff, the month-change block, capacity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.clock import ManualClock
from shared.events.catalog import Closure, LeadTime, MonthChangeBlock
from shared.identity import Role
from tests.booking import factory
from tests.booking.conftest import configure
from tests.booking.factory import at, booking, window
from tests.staff_work.conftest import identity_header

Client = TestClient[Any, Any]


async def slots(
    client: Client, first: str, last: str, concern: str = "veraenderung", **q: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/locations/{factory.LOCATION}/availability",
        params={"concern": concern, "from": first, "to": last, **q},
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    result: list[dict[str, Any]] = body["slots"]
    return result


def starts(found: list[dict[str, Any]]) -> list[str]:
    return [s["start"] for s in found]


@pytest.mark.req("R16")
@pytest.mark.req("R17")
async def test_slots_follow_the_weekly_windows_on_a_grid_of_the_concerns_duration(client: Client) -> None:
    tuesday = await slots(client, "2026-03-03", "2026-03-03", concern="neuantrag")
    assert starts(tuesday) == [factory.iso("2026-03-03", f"{h:02d}:00") for h in (8, 9, 10, 11)]
    assert all(
        s["end"] == factory.at("2026-03-03", f"{h + 1:02d}:00").isoformat()
        for s, h in zip(tuesday, (8, 9, 10, 11), strict=True)
    )
    short = await slots(client, "2026-03-03", "2026-03-03")
    assert len(short) == 16  # 08:00 to 12:00 in 15 minutes
    weekend = await slots(client, "2026-03-07", "2026-03-08")
    assert weekend == []


@pytest.mark.req("R12")
async def test_evening_slots_are_marked_as_reserved(client: Client) -> None:
    thursday = await slots(client, "2026-03-05", "2026-03-05")
    evening = [s for s in thursday if s["evening_reserved"]]
    assert evening and evening[-1]["end"] == factory.iso("2026-03-05", "18:00")
    assert all(s["start"] >= factory.iso("2026-03-05", "14:00") for s in evening)
    assert not any(s["evening_reserved"] for s in thursday if s["start"] < factory.iso("2026-03-05", "12:00"))


async def test_daylight_saving_days_keep_the_wall_clock(
    pool: asyncpg.Pool, clock: ManualClock, client: Client
) -> None:
    # Sunday windows, to look at the two Sundays on which the clocks change in 2026.
    windows = [window("ez", 6, "01:00", "04:00", 1), window("ez", 6, "08:00", "09:00", 1)]
    await configure(pool, factory.location(revision=2, windows=windows))
    clock.set(at("2026-03-20", "10:00"))

    spring = await slots(client, "2026-03-22", "2026-03-29", concern="neuantrag")
    # 22 March: winter time all day; 29 March: 02:00 to 03:00 does not exist.
    assert starts(spring) == [
        "2026-03-22T01:00:00+01:00",
        "2026-03-22T02:00:00+01:00",
        "2026-03-22T03:00:00+01:00",
        "2026-03-22T08:00:00+01:00",
        # 01:00 to 02:00 would end in the hour that does not exist, 02:00 to 03:00 lies in it.
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T08:00:00+02:00",
    ]
    for slot in spring:  # an hour is an hour of real time, also in the night of the change
        duration = datetime.fromisoformat(slot["end"]) - datetime.fromisoformat(slot["start"])
        assert duration == timedelta(hours=1)

    clock.set(at("2026-10-20", "10:00"))
    autumn = await slots(client, "2026-10-25", "2026-10-25", concern="veraenderung")
    # 25 October: 02:00 to 03:00 happens twice; a slot that starts or ends then would be ambiguous.
    night = [s for s in autumn if s["start"] < "2026-10-25T05"]
    assert starts(night) == [f"2026-10-25T01:{m:02d}:00+02:00" for m in (0, 15, 30)] + [
        f"2026-10-25T03:{m:02d}:00+01:00" for m in (0, 15, 30, 45)
    ]
    morning = [s for s in autumn if s["start"].startswith("2026-10-25T08")]
    assert starts(morning)[0] == "2026-10-25T08:00:00+01:00"


@pytest.mark.req("R17")
async def test_reformationstag_and_other_bremen_holidays_have_no_slots(
    pool: asyncpg.Pool, clock: ManualClock, client: Client
) -> None:
    saturdays = [window("ez", 5, "08:00", "10:00", 1)]
    await configure(pool, factory.location(revision=2, windows=saturdays))
    clock.set(at("2026-10-20", "10:00"))
    found = await slots(client, "2026-10-24", "2026-11-07")
    days = sorted({s["start"][:10] for s in found})
    assert days == ["2026-10-24", "2026-11-07"]  # not Reformationstag, 31 October 2026


async def test_closures_of_the_location_or_the_group_remove_their_days(
    pool: asyncpg.Pool, client: Client
) -> None:
    closures = [
        Closure(
            first=factory.at("2026-03-03", "00:00").date(), last=factory.at("2026-03-03", "00:00").date()
        ),
        Closure(
            first=factory.at("2026-03-04", "00:00").date(),
            last=factory.at("2026-03-04", "00:00").date(),
            group_id="lt",
        ),
    ]
    await configure(pool, factory.location(revision=2, closures=closures))
    ez = await slots(client, "2026-03-03", "2026-03-04")
    assert {s["start"][:10] for s in ez} == {"2026-03-04"}
    lt = await slots(client, "2026-03-03", "2026-03-04", concern="bescheid")
    assert lt == []


@pytest.mark.req("R20")
async def test_a_restriction_of_a_day_leaves_only_its_service_points_to_book(
    pool: asyncpg.Pool, client: Client
) -> None:
    """Staff are short for a day (an absence, or a mass change that keeps one point): the entrance zone's
    three points become one on 3 March, so a start is full after one booking; the next day keeps three."""
    tuesday = factory.at("2026-03-03", "00:00").date()
    restricted = [Closure(first=tuesday, last=tuesday, group_id="ez", service_points_left=1)]
    await configure(pool, factory.location(revision=2, closures=restricted))
    eight, next_eight = factory.iso("2026-03-03", "08:00"), factory.iso("2026-03-04", "08:00")
    assert eight in starts(await slots(client, "2026-03-03", "2026-03-03"))

    first = await client.post("/api/v1/appointments", json=booking(eight))
    assert first.status == 201, await first.text()
    assert eight not in starts(await slots(client, "2026-03-03", "2026-03-03"))
    second = await client.post("/api/v1/appointments", json=booking(eight))
    assert second.status == 409 and (await second.json())["error"]["code"] == "slot_taken"
    # A hold cannot reach the points that are away either.
    hold = await client.post(
        f"/api/v1/locations/{factory.LOCATION}/holds",
        json={"concern_id": "veraenderung", "mode": "in_person", "start": eight},
    )
    assert hold.status == 409
    # The day after is not restricted: three bookings of one start.
    for _ in range(3):
        response = await client.post("/api/v1/appointments", json=booking(next_eight))
        assert response.status == 201, await response.text()
    assert next_eight not in starts(await slots(client, "2026-03-04", "2026-03-04"))


@pytest.mark.req("R19")
async def test_booking_for_a_day_closes_at_six_in_the_morning(clock: ManualClock, client: Client) -> None:
    clock.set(at("2026-03-03", "05:59"))
    before = await slots(client, "2026-03-03", "2026-03-04")
    assert before[0]["start"] == factory.iso("2026-03-03", "08:00")
    clock.set(at("2026-03-03", "06:01"))
    after = await slots(client, "2026-03-03", "2026-03-04")
    assert after[0]["start"] == factory.iso("2026-03-04", "08:00")

    # Booking follows the same rule: 409 booking_closed for the day itself after 06:00.
    response = await client.post("/api/v1/appointments", json=booking(factory.iso("2026-03-03", "11:00")))
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "booking_closed"
    clock.set(at("2026-03-03", "05:59"))
    response = await client.post("/api/v1/appointments", json=booking(factory.iso("2026-03-03", "11:00")))
    assert response.status == 201


@pytest.mark.req("R19")
async def test_lead_time_and_horizon_limit_the_slots(
    pool: asyncpg.Pool, clock: ManualClock, client: Client
) -> None:
    await configure(pool, factory.location(revision=2, lead=LeadTime(min_minutes=24 * 60, max_days=7)))
    clock.set(at("2026-03-03", "04:00"))
    found = await slots(client, "2026-03-03", "2026-03-20")
    days = sorted({s["start"][:10] for s in found})
    # Not before 4 March 04:00 (24 hours ahead), not after 10 March (7 days ahead).
    assert days[0] == "2026-03-04" and days[-1] == "2026-03-10"
    response = await client.post("/api/v1/appointments", json=booking(factory.iso("2026-03-11", "08:00")))
    assert (await response.json())["error"]["code"] == "booking_closed"


@pytest.mark.req("R18")
async def test_around_the_turn_of_the_month_only_emergency_concerns_are_bookable(
    pool: asyncpg.Pool, clock: ManualClock, client: Client
) -> None:
    await configure(pool, factory.location(revision=2, block=MonthChangeBlock(last_days=2, first_days=1)))
    clock.set(at("2026-03-20", "10:00"))
    normal = {s["start"][:10] for s in await slots(client, "2026-03-26", "2026-04-03", concern="bescheid")}
    assert normal == {"2026-03-26", "2026-03-27", "2026-04-02"}  # 3 April 2026 is Good Friday
    emergency = {
        s["start"][:10] for s in await slots(client, "2026-03-26", "2026-04-03", concern="energiesperre")
    }
    # 30, 31 March and 1 April are open for the emergency concern (3 April is Good Friday).
    assert emergency == {"2026-03-26", "2026-03-27", "2026-03-30", "2026-03-31", "2026-04-01", "2026-04-02"}
    blocked = await client.post(
        "/api/v1/appointments", json=booking(factory.iso("2026-03-31", "08:00"), concern="bescheid")
    )
    assert (await blocked.json())["error"]["code"] == "booking_closed"
    emergency_booking = await client.post(
        "/api/v1/appointments", json=booking(factory.iso("2026-03-31", "08:00"), concern="energiesperre")
    )
    assert emergency_booking.status == 201


async def test_a_slot_disappears_once_every_service_point_is_taken(client: Client) -> None:
    start = factory.iso("2026-03-03", "09:00")
    for _ in range(2):  # the lt group has two service points
        assert (
            await client.post("/api/v1/appointments", json=booking(start, concern="bescheid"))
        ).status == 201
    found = starts(await slots(client, "2026-03-03", "2026-03-03", concern="bescheid"))
    assert start not in found
    assert factory.iso("2026-03-03", "08:30") in found and factory.iso("2026-03-03", "09:30") in found


async def test_a_longer_appointment_blocks_the_shorter_slots_it_overlaps(
    pool: asyncpg.Pool, client: Client
) -> None:
    # A one-point group: a 60-minute appointment at 09:00 takes the 15-minute slots 09:00 to 09:45.
    windows = [window("ez", d, "08:00", "12:00", 1) for d in range(5)]
    await configure(pool, factory.location(revision=2, windows=windows))
    assert (
        await client.post(
            "/api/v1/appointments", json=booking(factory.iso("2026-03-03", "09:00"), concern="neuantrag")
        )
    ).status == 201
    found = starts(await slots(client, "2026-03-03", "2026-03-03"))
    assert factory.iso("2026-03-03", "08:45") in found
    assert not any(factory.iso("2026-03-03", f"09:{m:02d}") in found for m in (0, 15, 30, 45))
    assert factory.iso("2026-03-03", "10:00") in found


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-03-02", "to": "2026-04-27"}, "to"),  # 57 days
        ({"from": "2026-03-10", "to": "2026-03-02"}, "to"),
        ({"from": "02.03.2026", "to": "2026-03-03"}, "from"),
        ({"concern": "", "from": "2026-03-02"}, "concern"),
        ({"mode": "video"}, "mode"),
        ({"concern": "gibt-es-nicht"}, "concern"),
        ({"concern": "neuantrag", "mode": "phone"}, "mode"),
        ({"from": "9999-12-31"}, "from"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
    ],
)
async def test_bad_availability_questions_get_a_422_naming_the_field(
    client: Client, query: dict[str, str], field: str
) -> None:
    params = {"concern": "veraenderung", **query}
    response = await client.get(f"/api/v1/locations/{factory.LOCATION}/availability", params=params)
    assert response.status == 422
    body = await response.json()
    assert body["error"]["code"] == "validation_error"
    assert field in [d["field"] for d in body["error"]["details"]]


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/locations/{factory.LOCATION}/availability",
        f"/api/v1/staff/locations/{factory.LOCATION}/availability",
    ],
)
async def test_the_documented_template_with_mode_from_and_to_left_empty_is_the_default_question(
    client: Client, clock: ManualClock, path: str
) -> None:
    """`?concern=&mode=&from=&to=` as a homepage widget fills it, the optional fields left empty: the next
    two weeks in person, as without them, not a 422; on the public and the staff route."""
    headers = identity_header(clock, Role.APPOINTMENT_MANAGER, factory.LOCATION) if "/staff/" in path else {}
    plain = await client.get(path, params={"concern": "veraenderung"}, headers=headers)
    assert plain.status == 200, await plain.text()
    expected = (await plain.json())["slots"]
    assert expected
    for blank in ({"mode": "", "from": "", "to": ""}, {"mode": " "}, {"from": ""}, {"to": ""}):
        response = await client.get(path, params={"concern": "veraenderung", **blank}, headers=headers)
        assert response.status == 200, (blank, await response.text())
        assert (await response.json())["slots"] == expected, blank
    # Given, they still count: one day's slots.
    one_day = await client.get(
        path,
        params={"concern": "veraenderung", "mode": "", "from": "2026-03-03", "to": "2026-03-03"},
        headers=headers,
    )
    assert {s["start"][:10] for s in (await one_day.json())["slots"]} == {"2026-03-03"}


async def test_eight_weeks_at_once_are_allowed(client: Client) -> None:
    found = await slots(client, "2026-03-02", "2026-04-26")
    assert found and found[-1]["start"] < "2026-04-27"


async def test_an_unknown_location_is_404(client: Client) -> None:
    response = await client.get(
        "/api/v1/locations/nirgendwo/availability", params={"concern": "veraenderung"}
    )
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
