"""The appointment file and the mass change in a real browser (Chromium through Playwright) against the
real catalog, booking and gateway: the demo login `mitte-leader` opens an appointment's file from the day
list, books the follow-up in the responsible team with one click (R24), and moves it again with a mass
change of that team's day, preview then confirmation (R20, R44); a second confirmation of the same
preview changes nothing. axe-core finds no serious or critical violation on the file, the mass change
form and its preview."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from services.gateway.config import Settings as GatewaySettings
from services.gateway.staff.demo import load_demo_accounts
from shared.clock import BERLIN
from shared.web import SETTINGS
from tests.booking import factory
from tests.conftest import wait_for
from tests.staff.conftest import (  # noqa: F401 -- fixtures used by name
    Stack,
    StaffClient,
    customer,
    make_gateway,
    stack,
    staff_db,
    wait_for_slots,
)
from tests.staff_work.chromium import browser, no_serious_violation, sign_in  # noqa: F401 -- fixture by name

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY, WEDNESDAY = "2026-03-03", "2026-03-04"


async def add_benefits_team(admin: StaffClient) -> None:
    """Mitte's responsible team for follow-ups: one service point on Wednesdays and Thursdays."""
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (
            "POST",
            "/api/v1/admin/locations/mitte/groups",
            {"id": "mitte-lt", "kind": "benefits_team", "name": {"de": "Leistungsteam"}, "service_points": 1},
        ),
        *(
            (
                "POST",
                "/api/v1/admin/groups/mitte-lt/windows",
                {"weekday": weekday, "start": "08:00", "end": "12:00", "service_points": 1},
            )
            for weekday in (2, 3)
        ),
        (
            "POST",
            "/api/v1/admin/concerns",
            {
                "id": "bescheid",
                "group_kinds": ["benefits_team"],
                "name": {"de": "Fragen zum Bescheid"},
                "default_duration_minutes": 30,
            },
        ),
        (
            "PUT",
            "/api/v1/admin/locations/mitte/concerns/bescheid",
            {"group_id": "mitte-lt", "duration_minutes": 30, "modes": ["in_person"]},
        ),
    ]
    for method, path, body in steps:
        response = await admin.request(method, path, json=body)
        assert response.status in (200, 201), (path, await response.text())


@pytest.mark.req("R24")
@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_mitte_leader_opens_a_file_from_the_day_books_a_follow_up_and_runs_a_mass_change_in_the_browser(
    stack: Stack,  # noqa: F811 -- the fixture imported above
    browser: Browser,  # noqa: F811 -- the fixture imported above
) -> None:
    gateway = stack.gateway
    settings = gateway.app[SETTINGS]
    assert isinstance(settings, GatewaySettings)
    await load_demo_accounts(gateway.staff, settings)
    await add_benefits_team(stack.admin)
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=f"{TUESDAY}T08:00:00+01:00")
    await wait_for_slots(stack.admin, "mitte", "bescheid", WEDNESDAY, present=f"{WEDNESDAY}T08:00:00+01:00")
    body = customer(f"{TUESDAY}T08:00:00+01:00", "albers@example.org")
    body["customer"].update(last_name="Albers", customer_number=factory.customer_number(201))
    response = await gateway.browser().post("/api/v1/appointments", json=body)
    assert response.status == 201, await response.text()
    booked = await response.json()
    gateway.clock.set(datetime(2026, 3, 3, 10, 30, tzinfo=BERLIN))  # the appointment's day

    base = str(gateway.client.make_url("")).rstrip("/")
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto(f"{base}/staff/locations/mitte/day?date={TUESDAY}")
        await sign_in(page, "mitte-leader", settings.demo_password)
        await expect(page.get_by_role("heading", name="Tagesliste Bremen-Mitte")).to_be_visible()

        # The file, from the day list.
        await (
            page.locator(f"#a-{booked['id']}").get_by_role("link", name=f"Akte {booked['reference']}").click()
        )
        await expect(page.get_by_role("heading", name=f"Termin {booked['reference']}")).to_be_visible()
        await expect(page.get_by_text("Albers, Erika")).to_be_visible()
        await no_serious_violation(page)

        # R24: the follow-up in the responsible team, one click on its first free slot.
        await page.get_by_label("Anliegen und Art").select_option(
            label="Fragen zum Bescheid (persönlich) \N{EN DASH} Leistungsteam"
        )
        await page.get_by_role("button", name="Freie Zeiten anzeigen").first.click()
        slot = page.get_by_role("button", name="Folgetermin buchen: Mittwoch, 4. März 2026, 08:00 Uhr")
        await slot.click()
        await expect(page.get_by_role("status")).to_contain_text("Der Folgetermin ist gebucht")
        await expect(page.get_by_text("Gebucht als Folgetermin")).to_be_visible()
        follow_up_reference = (await page.get_by_role("heading", level=1).inner_text()).split()[-1]
        assert follow_up_reference != booked["reference"]

        # R20, R44: the team has nobody on Wednesday; preview, then confirm.
        await page.get_by_role("link", name="Massenänderung").click()
        await expect(page.get_by_role("heading", name="Massenänderung Bremen-Mitte")).to_be_visible()
        await page.get_by_label("Tag").fill(WEDNESDAY)
        await page.get_by_label("Betroffen").select_option(label="Gruppe Leistungsteam")
        await page.get_by_label("Verbleibende Serviceplätze").fill("0")
        await no_serious_violation(page)
        await page.get_by_role("button", name="Betroffene Termine anzeigen").click()
        await expect(page.get_by_role("heading", name="Vorschau: 1 Termin betroffen")).to_be_visible()
        row = page.locator("tbody tr")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("Albers")
        await expect(row).to_contain_text("verlegen auf Donnerstag, 5. März 2026, 08:00 Uhr")
        await no_serious_violation(page)
        confirmation = page.locator('form[action$="/mass-change/apply"] input[type="hidden"]')
        fields: dict[str, str | float | bool] = {
            str(await field.get_attribute("name")): str(await field.get_attribute("value") or "")
            for field in await confirmation.all()
        }
        assert fields["preview_id"] and fields["date"] == WEDNESDAY and fields["group_id"] == "mitte-lt"
        await page.get_by_role("button", name=re.compile(r"^Änderung bestätigen")).click()
        await expect(page.get_by_role("status")).to_contain_text(
            "Die Änderung ist angewendet: 1 Termin verlegt"
        )

        # The same confirmation once more (a second click, another tab): nothing moves twice.
        again = await page.request.post(f"{base}/staff/locations/mitte/mass-change/apply", form=fields)
        assert again.status == 200 and "Diese Änderung wurde bereits angewendet" in await again.text()

        # The team's Wednesday is entered as closed, once: the place the moved appointment left is not
        # offered to the next customer on a day nobody works.
        location = await (await page.request.get(f"{base}/api/v1/admin/locations/mitte")).json()
        closures = [(c["first"], c["group_id"], c["service_points_left"]) for c in location["closures"]]
        assert closures.count((WEDNESDAY, "mitte-lt", 0)) == 1

        async def wednesday_is_closed() -> bool | None:
            response = await page.request.get(
                f"{base}/api/v1/locations/mitte/availability",
                params={"concern": "bescheid", "mode": "in_person", "from": WEDNESDAY, "to": WEDNESDAY},
            )
            return (await response.json())["slots"] == [] or None

        await wait_for(wednesday_is_closed, timeout=15, what="the closed Wednesday")

        await page.get_by_role("link", name="Woche").click()
        await page.get_by_label("Woche mit dem Tag").fill(WEDNESDAY)
        await page.get_by_role("button", name="Anzeigen").click()
        thursday = page.get_by_role("region", name=re.compile(r"^Donnerstag, 5\. März 2026"))
        await expect(thursday).to_contain_text("Albers")
        await expect(thursday).to_contain_text(f"Akte {follow_up_reference}")
    finally:
        await context.close()

    # Art. 17 GDPR: Mitte's administrator erases the first (passed) appointment's data on request.
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto(f"{base}/staff/appointments/{booked['id']}")
        await sign_in(page, "mitte-admin", settings.demo_password)
        erase = page.get_by_role("region", name="Personenbezogene Daten löschen (Art. 17 DSGVO)")
        await expect(erase).to_be_visible()
        await no_serious_violation(page)
        await erase.get_by_label("Ein Antrag auf Löschung liegt vor.").check()
        await erase.get_by_role("button", name="Daten jetzt löschen").click()
        await expect(page.get_by_role("status")).to_contain_text("Die personenbezogenen Daten dieses Termins")
        await expect(page.get_by_text("Albers, Erika")).to_have_count(0)
        await no_serious_violation(page)
    finally:
        await context.close()


@pytest.mark.req("R37")
@pytest.mark.req("R41")
async def test_mitte_manager_corrects_a_mistyped_address_in_the_browser_after_the_summary_points_to_it(
    stack: Stack,  # noqa: F811 -- the fixture imported above
    browser: Browser,  # noqa: F811 -- the fixture imported above
) -> None:
    """A caller never got the confirmation: the address has a typo. The form keeps what was typed after a
    refusal, the summary leads to the field, and the saved address gets the confirmation anew."""
    gateway = stack.gateway
    settings = gateway.app[SETTINGS]
    assert isinstance(settings, GatewaySettings)
    await load_demo_accounts(gateway.staff, settings)
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=f"{TUESDAY}T08:00:00+01:00")
    body = customer(f"{TUESDAY}T08:00:00+01:00", "brandt@exmaple.org")
    body["customer"].update(last_name="Brant", customer_number=factory.customer_number(202))
    response = await gateway.browser().post("/api/v1/appointments", json=body)
    assert response.status == 201, await response.text()
    booked = await response.json()

    base = str(gateway.client.make_url("")).rstrip("/")
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto(f"{base}/staff/appointments/{booked['id']}")
        await sign_in(page, "mitte-manager", settings.demo_password)
        section = page.get_by_role("region", name="Kontaktdaten korrigieren")
        await expect(section).to_contain_text("der Link an die alte Adresse funktioniert danach nicht mehr")
        await expect(section.get_by_label("E-Mail-Adresse")).to_have_value("brandt@exmaple.org")
        await no_serious_violation(page)

        await section.get_by_label("Nachname").fill("Brandt")
        await section.get_by_label("E-Mail-Adresse").fill("brandt@example")  # no top-level domain
        await section.get_by_label("Telefonnummer").fill("0421 361 0")
        await section.get_by_role("button", name="Kontaktdaten speichern").click()
        summary = page.get_by_role("alert")
        await expect(summary).to_be_focused()
        await summary.get_by_role("link", name=re.compile("^E-Mail-Adresse")).click()
        await expect(page.get_by_label("E-Mail-Adresse")).to_be_focused()
        await expect(page.get_by_label("E-Mail-Adresse")).to_have_attribute("aria-invalid", "true")
        await expect(page.get_by_label("Nachname")).to_have_value("Brandt")  # kept
        await expect(page.get_by_label("Telefonnummer")).to_have_value("0421 361 0")
        await no_serious_violation(page)

        await page.get_by_label("E-Mail-Adresse").fill("brandt@example.org")
        await page.get_by_role("button", name="Kontaktdaten speichern").click()
        await expect(page.get_by_role("status")).to_contain_text(
            "Die Bestätigung mit einem neuen Link zum Termin geht an die neue E-Mail-Adresse"
        )
        await expect(page.get_by_text("Brandt, Erika")).to_be_visible()
        await expect(
            page.get_by_text("Kontaktdaten korrigiert: Nachname, E-Mail-Adresse, Telefonnummer")
        ).to_be_visible()
        await no_serious_violation(page)
    finally:
        await context.close()
    file = await (await stack.admin.get(f"/api/v1/staff/appointments/{booked['id']}")).json()
    assert (file["customer"]["email"], file["customer"]["phone"]) == ("brandt@example.org", "0421 361 0")
