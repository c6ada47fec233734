"""What the staff search says about what it did not list (R22, R37): a list cut at 50 says so, in the
API (a header; the body stays a list) and on the page; an allow-listed address (R6) matches nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.booking import factory
from tests.booking.conftest import allow, configure
from tests.staff.conftest import Gateway
from tests.staff_work.conftest import HERE, Staff, book, form, signed_in
from tests.staff_work.day_fill import big_location, fill_day

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"
BIG = "grossstadt"


@pytest.mark.req("R22")
async def test_a_search_with_more_than_50_matches_says_the_list_is_cut_and_asks_to_narrow_it(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    await configure(pool, big_location(BIG, "Jobcenter Großstadt"))
    await fill_day(client, BIG, date(2026, 3, 3), 50, first_customer=40_000)
    browser = await signed_in(pages_gateway, "suche-viele", location=BIG)

    exactly = await browser.get("/api/v1/staff/appointments/search", params={"q": "Mustermann"})
    assert exactly.status == 200 and len(await exactly.json()) == 50
    assert "X-Result-Truncated" not in exactly.headers
    html = await (await form(browser, "/staff/search", q="Mustermann")).text()
    assert "50 Termine gefunden." in html and "Mehr als" not in html

    await fill_day(client, BIG, date(2026, 3, 4), 1, first_customer=40_100)
    cut = await browser.get("/api/v1/staff/appointments/search", params={"q": "Mustermann"})
    assert cut.status == 200 and len(await cut.json()) == 50
    assert cut.headers["X-Result-Truncated"] == "true"
    html = await (await form(browser, "/staff/search", q="Mustermann")).text()
    assert "Mehr als 50 Termine gefunden" in html and "bitte die Suche eingrenzen" in html
    assert html.count('<tr id="a-') == 50

    narrowed = await browser.get(
        "/api/v1/staff/appointments/search", params={"q": factory.customer_number(40_007)}
    )
    assert len(await narrowed.json()) == 1 and "X-Result-Truncated" not in narrowed.headers


@pytest.mark.req("R6")
@pytest.mark.req("R37")
async def test_a_search_for_an_allow_listed_address_finds_none_of_its_callers_and_the_page_says_why(
    client: TestClient[Any, Any], manager: Staff, pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    """The service centre books its callers under its own address: a search for that address would list
    some of them, at random for the agent; a customer's own address finds their appointment."""
    internal = "service-center@jobcenter.example"
    await allow(pool, internal)
    for hhmm in ("08:00", "08:15"):
        booked = await manager.post(
            "/api/v1/staff/appointments", factory.booking(factory.iso(TUESDAY, hhmm), email=internal)
        )
        assert booked.status == 201, await booked.text()
    own = await book(client, TUESDAY, "08:30", email="Kundin@Example.org")

    found = await manager.get("/api/v1/staff/appointments/search", params={"q": internal.upper()})
    assert found.status == 200 and await found.json() == []
    found = await manager.get("/api/v1/staff/appointments/search", params={"q": "kundin@example.org"})
    assert [a["id"] for a in await found.json()] == [own["id"]]

    browser = await signed_in(pages_gateway, "suche-intern", location=HERE)
    html = await (await form(browser, "/staff/search", q=internal)).text()
    assert "0 Termine gefunden" in html
    assert "Interne Adressen (Service-Center, Jobcenter) findet die Suche nicht" in html
