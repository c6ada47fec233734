"""A query parameter given twice (`?to=2026-03-31&to=2026-12-31`) is refused on every surface, never
answered with one of its values: the public API and the staff API with the architecture's 422
`validation_error` naming the parameter, an export of reporting alike, a staff page with its German
error page, a customer page with its error page in the customer's language, and a service's own API
(called without the gateway) alike. No parameter of ours takes a list (a GET form of the pages neither),
so there is no multi-valued one to keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.gateway.proxy import UPSTREAMS
from shared.identity import Role
from tests.staff.conftest import Gateway, GatewayFactory, Stack, real_stack, wait_for_slots

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

DAY = "2026-03-03"  # the Tuesday of the stack's window
AVAILABILITY = f"/api/v1/locations/mitte/availability?concern=neuantrag&mode=in_person&from={DAY}"


def refused(body: dict[str, Any], field: str) -> bool:
    error = body["error"]
    return error["code"] == "validation_error" and [d["field"] for d in error["details"]] == [field]


@pytest.fixture
async def reporting_stack(
    clean_db: dict[str, asyncpg.Pool], make_gateway: GatewayFactory, amqp: Any
) -> AsyncIterator[Stack]:
    async with real_stack(make_gateway, amqp, reporting=True) as started:
        yield started


async def test_the_public_api_refuses_a_repeated_parameter_instead_of_answering_for_one_value(
    stack: Stack,
) -> None:
    customer = stack.gateway.client
    await wait_for_slots(stack.admin, "mitte", "neuantrag", DAY)
    assert (await customer.get(f"{AVAILABILITY}&to={DAY}")).status == 200
    for query in (f"&to={DAY}&to=2026-04-28", f"&to={DAY}&to=", "&to=x&to=x"):
        response = await customer.get(AVAILABILITY + query)
        assert response.status == 422, query
        assert refused(await response.json(), "to"), query


async def test_the_staff_api_refuses_a_repeated_day_or_location_before_any_rule_is_checked(
    stack: Stack,
) -> None:
    appointments = "/api/v1/staff/locations/mitte/appointments"
    assert (await stack.admin.get(f"{appointments}?date={DAY}")).status == 200
    response = await stack.admin.get(f"{appointments}?date={DAY}&date=2026-03-10")
    assert response.status == 422 and refused(await response.json(), "date")
    # Authentication comes first: without a session it is 401, whatever the query holds.
    anonymous = await stack.gateway.client.get(f"{appointments}?date={DAY}&date=2026-03-10")
    assert anonymous.status == 401
    # A manager of mitte naming two locations: not a 403 for the one and an answer for the other.
    manager = await stack.gateway.signed_in("twice-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
    assert (await manager.get("/api/v1/staff/callbacks?location=mitte")).status == 200
    for query in ("location=mitte&location=nord", "location=nord&location=mitte"):
        response = await manager.get(f"/api/v1/staff/callbacks?{query}")
        assert response.status == 422, query
        assert refused(await response.json(), "location"), query


async def test_a_statistics_export_for_a_period_given_twice_is_refused_not_made_for_one_of_them(
    reporting_stack: Stack,
) -> None:
    central = await reporting_stack.gateway.signed_in("twice-statistics", (Role.STATISTICS, "*"))
    export = "/api/v1/staff/statistics/export?from=2026-03-01&to=2026-03-31"
    assert (await central.get(export)).status == 200
    response = await central.get(f"{export}&to=2026-12-31")
    assert response.status == 422 and response.content_type == "application/json"
    assert refused(await response.json(), "to")


async def test_a_staff_page_with_a_repeated_parameter_is_the_german_error_page_naming_it(
    gateway: Gateway,
) -> None:
    admin = await gateway.signed_in("twice-admin", (Role.ADMIN, "*"))
    audit = "/staff/admin/audit-log?from=2026-03-01"
    assert (await admin.get(audit)).status == 200
    page = await admin.get(f"{audit}&from=2026-12-01")
    html = await page.text()
    assert page.status == 422 and page.content_type == "text/html", html[:300]
    assert '<html lang="de">' in html and "<title>Adresse nicht eindeutig" in html
    assert "nennt „from“ mehrfach" in html


async def test_a_customer_page_with_a_repeated_parameter_is_an_error_page_and_remembers_no_language(
    gateway: Gateway,
) -> None:
    customer = gateway.client
    assert (await customer.get("/accessibility?lang=en")).status == 200
    page = await customer.get("/accessibility?lang=en&lang=de", headers={"Accept": "text/html"})
    html = await page.text()
    assert page.status == 400 and page.content_type == "text/html", html[:300]
    # In the language the customer had (none yet: German), with the way back to the start page.
    assert '<html lang="de"' in html and "Dieser Link ist nicht gültig" in html
    assert "Bitte beginnen Sie auf der Startseite neu" in html
    assert "otv_lang" not in page.headers.get("Set-Cookie", "")


async def test_a_services_own_api_refuses_a_repeated_parameter_it_reads_by_hand(stack: Stack) -> None:
    # The catalog's concerns read `lang` by hand (not through a query model); called directly, as the
    # gateway does.
    catalog = next(stack.gateway.app[UPSTREAMS].candidates("catalog"))
    async with aiohttp.ClientSession(catalog) as session:
        async with session.get("/api/v1/locations/mitte/concerns?lang=en") as response:
            assert response.status == 200
        async with session.get("/api/v1/locations/mitte/concerns?lang=en&lang=de") as response:
            assert response.status == 422
            assert refused(await response.json(), "lang")
