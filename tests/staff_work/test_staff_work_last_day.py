"""R19, R37: the free times staff and the service centre book from reach the last day booking takes, today
+ 56 days, by default too (the customers' calendar does the same)."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.booking import factory
from tests.booking.conftest import configure
from tests.staff.conftest import Gateway
from tests.staff_work.conftest import HERE, signed_in

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

LAST_DAY = date(2026, 4, 27)  # Monday 2 March 2026 + 56 days


@pytest.mark.req("R19")
@pytest.mark.req("R37")
async def test_the_staff_booking_page_lists_the_last_bookable_day_without_choosing_a_later_day(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    # A new team whose Monday mornings start on the last day of the horizon: nothing free before it.
    window = factory.window("ez", 0, "08:00", "09:00", 1).model_copy(update={"valid_from": LAST_DAY})
    await configure(pool, factory.location(revision=2, windows=[window]))
    browser = await signed_in(pages_gateway, "servicecenter")
    page = await browser.get(f"/staff/locations/{HERE}/book", params={"choice": "veraenderung|in_person"})
    html = await page.text()
    assert page.status == 200
    assert '<optgroup label="Montag, 27. April 2026">' in html
    assert f'<option value="{factory.iso(LAST_DAY.isoformat(), "08:00")}">' in html
