"""A staff member's day in a real browser (Chromium through Playwright) against the real catalog, booking
and gateway: the demo login `mitte-manager` opens the day list, records outcomes (one of them a callback
ticket), and claims and closes the ticket in the callback queue; axe-core finds no serious or critical
accessibility violation on the day list, the call list and the callback queue (R22, R23, R27)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from services.gateway.config import Settings as GatewaySettings
from services.gateway.staff.demo import load_demo_accounts
from shared.clock import BERLIN
from shared.web import SETTINGS
from tests.booking import factory
from tests.staff.conftest import (  # noqa: F401 -- fixtures used by name
    Stack,
    customer,
    make_gateway,
    stack,
    staff_db,
    wait_for_slots,
)
from tests.staff_work.chromium import browser, no_serious_violation  # noqa: F401 -- fixture used by name

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"


@pytest.mark.req("R22")
@pytest.mark.req("R23")
@pytest.mark.req("R27")
async def test_mitte_manager_opens_the_day_records_outcomes_and_claims_and_closes_a_callback_in_the_browser(
    stack: Stack,  # noqa: F811 -- the fixture imported above
    browser: Browser,  # noqa: F811 -- the fixture imported above
) -> None:
    gateway = stack.gateway
    settings = gateway.app[SETTINGS]
    assert isinstance(settings, GatewaySettings)
    await load_demo_accounts(gateway.staff, settings)  # as `load-demo` does: mitte-manager and the others
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=f"{TUESDAY}T09:00:00+01:00")
    booked: dict[str, dict[str, Any]] = {}
    for number, (hhmm, last_name) in enumerate(
        (("08:00", "Albers"), ("08:30", "Brandt"), ("09:00", "Claassen")), start=1
    ):
        body = customer(f"{TUESDAY}T{hhmm}:00+01:00", f"kunde{number}@example.org")
        body["customer"].update(
            last_name=last_name,
            customer_number=factory.customer_number(100 + number),
            phone="0421 123456",  # a callback ticket needs a number to call
        )
        response = await gateway.browser().post("/api/v1/appointments", json=body)
        assert response.status == 201, await response.text()
        booked[last_name] = await response.json()
    gateway.clock.set(datetime(2026, 3, 3, 10, 30, tzinfo=BERLIN))  # the appointments' day

    base = str(gateway.client.make_url("")).rstrip("/")
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto(f"{base}/staff/locations/mitte/day?date={TUESDAY}")
        await expect(page.get_by_role("heading", name="Anmeldung")).to_be_visible()
        await page.get_by_label("Benutzername").fill("mitte-manager")
        await page.get_by_label("Passwort", exact=True).fill(settings.demo_password)
        await page.get_by_role("button", name="Anmelden").click()

        await expect(page.get_by_role("heading", name="Tagesliste Bremen-Mitte")).to_be_visible()
        await expect(page.get_by_text("3 Termine, davon 3 ohne Ergebnis")).to_be_visible()
        await no_serious_violation(page)

        # Each row's fields and buttons name the row (time and name), so that they are told apart outside
        # the table too: in a list of form fields, or by a voice command.
        for hhmm, last_name, outcome in (
            ("08:00", "Albers", "Anliegen geklärt"),
            ("08:30", "Brandt", "Rückruf-Ticket an das zuständige Team"),
            ("09:00", "Claassen", "Nicht erschienen"),
        ):
            who = f"({hhmm}, {last_name})"
            await page.get_by_label(f"Ergebnis {who}", exact=True).select_option(label=outcome)
            await page.get_by_label(f"Notiz zum Ergebnis {who}", exact=True).fill("im Gespräch geklärt")
            await page.get_by_role("button", name=f"Ergebnis speichern {who}", exact=True).click()
            await expect(page.get_by_role("status")).to_contain_text("Ergebnis ist gespeichert")
            await expect(page.locator(f"#a-{booked[last_name]['id']}")).to_contain_text(outcome)
            # The confirmation stands in the row the page jumped to, and has the focus: a screen reader
            # reads it, and the keyboard goes on from that row.
            saved = page.locator(f"#a-{booked[last_name]['id']} [role=status]")
            await expect(saved).to_contain_text("Ergebnis ist gespeichert")
            await expect(saved).to_be_focused()
        await expect(page.get_by_text("3 Termine, davon 0 ohne Ergebnis")).to_be_visible()

        await page.get_by_role("link", name="Anrufliste").click()
        await expect(page.get_by_role("heading", name="Anrufliste Bremen-Mitte")).to_be_visible()
        await no_serious_violation(page)

        await page.get_by_role("link", name="Rückrufe").click()
        await expect(page.get_by_role("heading", name="Rückrufe Bremen-Mitte")).to_be_visible()
        ticket = page.locator("tbody tr")
        await expect(ticket).to_have_count(1)
        await expect(ticket).to_contain_text("Brandt")
        await expect(ticket).to_contain_text("05.03.2026 10:30")  # 48 hours on Bremen working days
        await no_serious_violation(page)
        await page.get_by_role("button", name="Übernehmen (fällig 05.03.2026 10:30, Brandt)").click()
        await expect(page.get_by_role("status")).to_contain_text("Ticket übernommen")
        await expect(page.locator("tbody tr")).to_contain_text("mitte-manager")
        await page.locator("tbody tr").get_by_label("Ergebnis des Rückrufs").fill("Kunde erreicht, erledigt")
        await page.locator("tbody tr").get_by_role("button", name="Ticket erledigen").click()
        await expect(page.get_by_role("status")).to_contain_text("Ticket ist erledigt")
        await expect(page.get_by_text("Keine Tickets in dieser Ansicht.")).to_be_visible()
        await page.get_by_label("Tickets").select_option(label="erledigt")
        await page.get_by_role("button", name="Anzeigen").click()
        await expect(page.locator("tbody tr")).to_contain_text("Kunde erreicht, erledigt")
        await no_serious_violation(page)
    finally:
        await context.close()
