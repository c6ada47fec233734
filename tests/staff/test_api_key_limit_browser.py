"""An administrator changes an API key's own request limit on the API keys page in a real browser
(Chromium through Playwright): a value out of bounds is said at the row's field with the focus on the
summary, an empty field is the default again, and axe-core finds no serious violation on the page with
its row forms, also at 320 CSS pixels (R50, WCAG 3.3.1, 1.4.10)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from shared.identity import Role
from tests.staff.conftest import PASSWORD, Gateway
from tests.staff_work.chromium import browser, no_serious_violation, sign_in  # noqa: F401 -- fixture by name

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.mark.req("R50")
async def test_in_the_browser_an_administrator_throttles_a_key_and_sets_it_back_to_the_default(
    gateway: Gateway,
    browser: Browser,  # noqa: F811 -- the fixture imported above
) -> None:
    gateway.upstreams["catalog"].answers["/api/v1/locations"] = [{"id": "mitte", "name": "Bremen-Mitte"}]
    admin = await gateway.signed_in("browser-limit-admin", (Role.ADMIN, "*"))
    created = await admin.post(
        "/api/v1/admin/api-keys",
        json={"name": "Kleiner Partner", "locations": ["mitte"], "operations": ["appointments:read"]},
    )
    key_id = (await created.json())["id"]
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    base = str(gateway.client.make_url("")).rstrip("/")
    row = page.locator(f"#apikey-{key_id}")
    field = page.get_by_label("Anfragen je Minute für Kleiner Partner (leer: Standard)")
    save = page.get_by_role("button", name="Limit für Kleiner Partner speichern")
    try:
        await page.goto(base + "/staff/admin/api-keys")
        await sign_in(page, "browser-limit-admin", PASSWORD)
        await expect(row).to_contain_text("Standard (600/min)")
        await no_serious_violation(page)

        await field.fill("0")
        await save.click()
        await expect(page.locator("#error-summary")).to_be_focused()
        await expect(page.locator("#error-summary")).to_contain_text(
            "Schlüssel „Kleiner Partner“: Anfragen je Minute: bitte mindestens 1"
        )
        await expect(field).to_have_attribute("aria-invalid", "true")
        await expect(field).to_have_value("0")
        await no_serious_violation(page)

        await field.fill("30")
        await save.click()
        await expect(page.get_by_role("status")).to_contain_text("Anfragelimit")
        await expect(row).to_contain_text("30/min")
        await expect(row).to_contain_text("6 auf einmal")

        await field.fill("")
        await save.click()
        await expect(row).to_contain_text("Standard (600/min)")
    finally:
        await context.close()
    listed = await (await admin.get("/api/v1/admin/api-keys")).json()
    assert listed[0]["requests_per_minute"] is None
