"""R20, R50: opening windows are Berlin wall-clock times. A window time with a UTC offset is refused with
422 naming the field: the catalog neither drops the offset (shifting the window by an hour or two) nor
fails, and booking's check of the booked appointments does not turn it into a "try again" 503."""

from __future__ import annotations

from typing import Any

import pytest

from tests.staff.conftest import Stack, customer, wait_for_slots

TUESDAY = "2026-03-03"
TEN = "2026-03-03T10:00:00+01:00"

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def windows_of(stack: Stack) -> list[dict[str, Any]]:
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    found: list[dict[str, Any]] = details["windows"]
    return found


@pytest.mark.req("R20")
@pytest.mark.req("R50")
async def test_a_window_time_with_an_offset_is_refused_naming_the_field_and_nothing_changes(
    stack: Stack,
) -> None:
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=TEN)
    booked = await stack.gateway.browser().post("/api/v1/appointments", json=customer(TEN))
    assert booked.status == 201, await booked.text()
    before = await windows_of(stack)
    window_id = before[0]["id"]

    # 07:00Z-11:00Z meant 08:00-12:00 in winter; stored as 07:00-11:00 Berlin it would be wrong.
    utc = {"weekday": 2, "start": "07:00:00Z", "end": "11:00:00Z", "service_points": 1}
    mixed = {"weekday": 1, "start": "08:00+01:00", "end": "12:00", "service_points": 2}
    ending = {"weekday": 1, "start": "08:00", "end": "12:00+01:00", "service_points": 2}
    for method, path, body, field in (
        ("POST", "/api/v1/admin/groups/mitte-ez/windows", utc, "start"),
        ("POST", "/api/v1/admin/groups/mitte-ez/windows", mixed, "start"),
        ("PUT", f"/api/v1/admin/windows/{window_id}", mixed, "start"),
        ("PUT", f"/api/v1/admin/windows/{window_id}", ending, "end"),
    ):
        response = await stack.admin.request(method, path, json=body)
        answer = await response.json()
        assert response.status == 422, (method, body, answer)
        assert answer["error"]["code"] == "validation_error"
        assert answer["error"]["details"][0]["field"] == field
    assert await windows_of(stack) == before
