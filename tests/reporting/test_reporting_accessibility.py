"""axe-core finds no WCAG 2.1 AA violation on reporting's pages (R42 for staff: the statistics with its
charts, the booking patterns, the deletion report), each with figures in it, in Debian's Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]  # ships no types
from playwright.async_api import Browser

from shared.events.appointment import CancelledBy
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from shared.staff_nav import FORM_TOKEN_FIELD, FORM_TOKEN_HEADER
from tests.browser import chromium_browser
from tests.reporting.conftest import DAY, Appt, Reporting, berlin, location_event, reporting_settings
from tests.web.test_web_accessibility import check

pytestmark = pytest.mark.timeout(120)

STAFF_CSS = Path(__file__).resolve().parents[2] / "services" / "gateway" / "staff" / "static" / "staff.css"


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async for launched in chromium_browser():
        yield launched


@pytest.mark.req("R42")
@pytest.mark.req("R35")
async def test_no_reporting_page_has_a_wcag_21_aa_violation(reporting: Reporting, chromium: Browser) -> None:
    reporting.clock.set(berlin(DAY, 18))
    client = await reporting.start(pattern_network_min=3)
    base = berlin(DAY, 0) - timedelta(days=2)
    # A location with the long name of a real one: the statistics' choice of location stays as narrow as
    # the screen (it made the page wider than 320 px: WCAG 1.4.10).
    vegesack = location_event("nord").model_copy(
        update={"location_id": "vegesack", "name": "Geschäftsstelle Nord (Vegesack)"}
    )
    items: list[tuple[object, object]] = [
        (location_event("mitte"), base),
        (location_event("nord"), base),
        (vegesack, base),
    ]
    for n in range(8):
        appointment = Appt(
            "mitte" if n % 2 else "nord",
            ("neuantrag", "veraenderung", "leistungsbezug")[n % 3],
            berlin(DAY, 8) + timedelta(minutes=30 * n),
            email=f"kunde{n}@example.org",
            client_network="203.0.113.7",
            booked_at=base + timedelta(hours=n),
        )
        items.append((appointment.booked(), appointment.booked_at))
        if n % 3 == 0:
            cancelled_at = appointment.booked_at + timedelta(hours=1)
            items.append((appointment.cancel(CancelledBy.CUSTOMER), cancelled_at))
        elif n % 3 == 1:
            items.append((appointment.passed(), berlin(DAY, 17)))
    await reporting.send(*items)  # type: ignore[arg-type]

    identity = StaffIdentity(
        subject="axe-statistics",
        kind=IdentityKind.USER,
        grants=(Grant(role=Role.STATISTICS, locations=("*",)), Grant(role=Role.ADMIN, locations=("*",))),
        issued_at=reporting.clock.now(),
    )
    # What the gateway sends with a staff page: the signed identity and the session's form token.
    header = {HEADER: sign(identity, reporting_settings().internal_secret), FORM_TOKEN_HEADER: "form-token"}
    period = f"from={DAY - timedelta(days=3)}&to={DAY}"
    pages = {
        f"/staff/statistics?{period}": "Statistik der Online-Terminvergabe",
        f"/staff/statistics?{period}&location=mitte": "Statistik der Online-Terminvergabe",
        f"/staff/statistics?from={DAY}&to={DAY - timedelta(days=1)}": "Statistik der Online-Terminvergabe",
        f"/staff/admin/booking-patterns?{period}": "Buchungsmuster",
        "/staff/admin/retention": "Löschprotokoll",
    }
    # 320 CSS pixels: a desktop zoomed to 400 % (WCAG 1.4.10); wide tables scroll in their own region.
    context = await chromium.new_context(
        locale="de-DE", extra_http_headers=header, viewport={"width": 320, "height": 640}
    )
    # The staff pages' stylesheet, which the gateway serves beside reporting's pages (its sizes of fields).
    await context.route("**/staff/static/staff.css", lambda route: route.fulfill(path=STAFF_CSS))
    page = await context.new_page()
    axe, found = Axe(), dict[str, list[str]]()
    try:
        for path, heading in pages.items():
            response = await page.goto(str(client.make_url(path)))
            assert response is not None and response.status == 200, path
            assert heading in await page.locator("h1").inner_text(), path
            # The staff pages' header: their navigation, and the logout with the session's form token.
            main_nav = page.get_by_role("navigation", name="Hauptnavigation")
            assert await main_nav.get_by_role("link", name="Statistik").count() == 1
            assert (
                await page.locator(f"form.logout input[name={FORM_TOKEN_FIELD}]").input_value()
                == "form-token"
            )
            await check(page, axe, path, found)
    finally:
        await context.close()
    assert found == {}, found
