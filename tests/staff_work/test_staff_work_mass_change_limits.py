"""R20, R44: the mass change's API refuses up front what the catalog refuses when the closure it stands for
is saved: more service points left than the group has (the whole location: its largest group), and days
that are over. Before, its preview took both; its confirmation then failed at the catalog, or (a client
that names no capacity) "applied" a restriction that restricted nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.events.catalog import GroupKind, GroupSnapshot
from shared.identity import Role
from tests.booking import factory
from tests.booking.conftest import configure
from tests.staff.conftest import Gateway
from tests.staff_work.conftest import HERE, Staff, book, signed_in

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"
BASE = f"/api/v1/staff/locations/{HERE}/mass-change"


def refused_field(answer: dict[str, Any]) -> tuple[str, str, str]:
    (detail,) = answer["error"]["details"]
    return answer["error"]["code"], detail["field"], detail["type"]


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_the_preview_refuses_more_service_points_left_than_the_group_or_the_largest_group_has(
    client: TestClient[Any, Any], leader: Staff, location_admin: Staff, pool: asyncpg.Pool
) -> None:
    """The entrance zone has 3 service points, the benefits team 2: "4 left" restricts nothing."""
    await book(client, TUESDAY, "08:00")
    group = await leader.post(
        f"{BASE}/preview", {"date": TUESDAY, "group_id": "ez", "service_points_left": 4}
    )
    answer = await group.json()
    assert group.status == 422, answer
    assert refused_field(answer) == ("validation_error", "service_points_left", "too_many_service_points")
    assert answer["error"]["details"][0]["message"] == "the group has 3 service points"
    team = await leader.post(f"{BASE}/preview", {"date": TUESDAY, "group_id": "lt", "service_points_left": 3})
    assert team.status == 422
    whole = await location_admin.post(f"{BASE}/preview", {"date": TUESDAY, "service_points_left": 4})
    answer = await whole.json()
    assert whole.status == 422 and refused_field(answer)[2] == "too_many_service_points"
    assert (
        answer["error"]["details"][0]["message"] == "the largest group of the location has 3 service points"
    )
    assert await pool.fetchval("SELECT count(*) FROM mass_changes") == 0
    # As many as the group has (for the whole location: its largest group) is a valid, if empty, change.
    for staff, body in ((leader, {"group_id": "ez"}), (location_admin, {})):
        taken = await staff.post(f"{BASE}/preview", {"date": TUESDAY, **body, "service_points_left": 3})
        assert taken.status == 201 and (await taken.json())["affected"] == []


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_a_preview_the_group_has_shrunk_below_is_applied_not_at_all_and_its_closure_taken_back(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    """Previewed with 2 of the entrance zone's 3 points left, then the group is reduced to 1 point before
    the confirmation: the catalog would refuse the restriction, so nothing may move, neither through a
    confirmation that saves the capacity first nor through one that only moves."""
    booked = [await book(client, TUESDAY, "08:00") for _ in range(3)]
    leader = await signed_in(pages_gateway, "gruppenleitung-punkte", Role.GROUP_LEADER)
    chosen = {"date": TUESDAY, "group_id": "ez", "service_points_left": 2}
    preview = await leader.post(f"{BASE}/preview", json=chosen)
    found = await preview.json()
    assert preview.status == 201 and [a["action"] for a in found["affected"]] == ["move"], found
    smaller = [
        GroupSnapshot(id="ez", kind=GroupKind.ENTRANCE_ZONE, name={"de": "Eingangszone"}, service_points=1),
        GroupSnapshot(id="lt", kind=GroupKind.BENEFITS_TEAM, name={"de": "Leistungsteam"}, service_points=2),
    ]
    await configure(pool, factory.location(2, groups=smaller))
    catalog = pages_gateway.upstreams["catalog"]
    catalog.answer = {"id": 93, "published_revision": 2}
    before = await pool.fetchval("SELECT count(*) FROM outbox")
    places = await pool.fetch("SELECT id, start_at, service_point, revision FROM appointments ORDER BY id")

    for body in ({"preview_id": found["id"], **chosen}, {"preview_id": found["id"]}):
        applied = await leader.post(f"{BASE}/apply", json=body)
        answer = await applied.json()
        assert applied.status == 422, answer
        assert refused_field(answer) == ("validation_error", "service_points_left", "too_many_service_points")
    catalog.answer = None
    writes = [(c["method"], c["path"]) for c in catalog.calls if c["method"] in ("POST", "DELETE")]
    assert writes == [
        ("POST", f"/api/v1/admin/locations/{HERE}/closures"),
        ("DELETE", "/api/v1/admin/closures/93"),
    ]
    assert (
        await pool.fetch("SELECT id, start_at, service_point, revision FROM appointments ORDER BY id")
        == places
    )
    assert {r["status"] for r in await pool.fetch("SELECT status FROM appointments")} == {"booked"}
    assert len(places) == len(booked)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before
    assert await pool.fetchval("SELECT count(*) FROM appointment_history") == 0
    assert await pool.fetchval("SELECT applied_at FROM mass_changes") is None


@pytest.mark.req("R44")
async def test_the_preview_refuses_days_that_are_over_and_takes_a_range_that_lasts_until_today(
    client: TestClient[Any, Any], leader: Staff, pool: asyncpg.Pool
) -> None:
    """The clock stands on Monday, 2 March 2026: Friday's change is over before it is made (mostly a year
    typed wrong), as the catalog says of its closure; one from Friday until today still changes today."""
    chosen = {"group_id": "ez", "service_points_left": 0}
    friday = await leader.post(f"{BASE}/preview", {"date": "2026-02-27", **chosen})
    assert friday.status == 422
    assert refused_field(await friday.json()) == ("validation_error", "date", "in_the_past")
    weekend = await leader.post(f"{BASE}/preview", {"date": "2026-02-27", "last": "2026-03-01", **chosen})
    assert weekend.status == 422
    assert refused_field(await weekend.json()) == ("validation_error", "last", "in_the_past")
    assert await pool.fetchval("SELECT count(*) FROM mass_changes") == 0
    until_today = await leader.post(f"{BASE}/preview", {"date": "2026-02-27", "last": "2026-03-02", **chosen})
    assert until_today.status == 201, await until_today.text()
    today = await leader.post(f"{BASE}/preview", {"date": "2026-03-02", **chosen})
    assert today.status == 201
