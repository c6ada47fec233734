"""R45, R50: a wish's times of day are Berlin wall-clock times; a time with a UTC offset is the client's
mistake (422 naming the field, nothing stored), never a server error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.waiting_list.conftest import Waiting, unique_email, wish_body


@pytest.mark.req("R45")
@pytest.mark.req("R50")
@pytest.mark.parametrize(
    ("times", "field"),
    [
        ({"earliest": "08:00:00+02:00", "latest": "12:00:00+02:00"}, "earliest"),
        ({"earliest": "08:00+02:00", "latest": "12:00"}, "earliest"),
        ({"earliest": "08:00", "latest": "12:00Z"}, "latest"),
    ],
)
async def test_a_wish_time_with_an_offset_is_refused_naming_the_field(
    waiting: Waiting, times: dict[str, Any], field: str
) -> None:
    body = wish_body(unique_email("offset"), weekdays=[0], latest_date="2026-04-01", **times)
    response = await waiting.client.post("/api/v1/waiting-list", json=body)
    answer = await response.json()
    assert response.status == 422, answer
    assert answer["error"]["code"] == "validation_error"
    assert answer["error"]["details"][0]["field"] == field
    assert await waiting.pool.fetchval("SELECT count(*) FROM wishes") == 0
