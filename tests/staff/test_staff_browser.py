"""The staff pages in a real browser (Chromium through Playwright): a group leader signs in, changes a
time window, and customers see the new times in the availability (through the gateway's public API);
axe-core finds no serious or critical accessibility violation on the admin pages (R20, R21, R29, R30)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]  # ships no type information
from playwright.async_api import Browser, Page, expect

from shared.identity import Role
from tests.browser import chromium_browser
from tests.staff.conftest import PASSWORD, Gateway, Stack, account_id, audit_rows, customer, wait_for_slots

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"
MAIL_TEXTS = [
    {
        "kind": "confirmation",
        "language": "de",
        "subject": "Ihr Termin beim Jobcenter Bremen",
        "text": "Guten Tag ...",
        "html": "<p>Guten Tag ...</p>",
        "customised": False,
        "updated_at": None,
    }
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async for launched in chromium_browser():
        yield launched


def base_url(stack: Stack) -> str:
    return str(stack.gateway.client.make_url("")).rstrip("/")


async def sign_in(page: Page, base: str, username: str, target: str = "/staff/") -> None:
    await page.goto(base + target)
    await expect(page.get_by_role("heading", name="Anmeldung")).to_be_visible()
    await page.get_by_label("Benutzername").fill(username)
    await page.get_by_label("Passwort", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Anmelden").click()


@pytest.mark.req("R20")
@pytest.mark.req("R29")
async def test_a_group_leader_changes_a_window_in_the_browser_and_customers_see_the_new_times(
    stack: Stack, browser: Browser
) -> None:
    gateway = stack.gateway
    await gateway.account("mitte-leader", (Role.GROUP_LEADER, "mitte"))
    later = f"{TUESDAY}T13:30:00+01:00"
    before = await wait_for_slots(
        stack.admin, "mitte", "neuantrag", TUESDAY, present=f"{TUESDAY}T11:30:00+01:00"
    )
    assert later not in before

    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await sign_in(page, base_url(stack), "mitte-leader")
        await expect(page.get_by_role("heading", name="Start")).to_be_visible()
        cookies = {c["name"]: c for c in await context.cookies()}
        session = cookies["otv_staff_session"]
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"

        await page.get_by_role("link", name="Zeitfenster und Kapazität").click()
        await expect(
            page.get_by_role("heading", name="Standort Bremen-Mitte: Zeitfenster und Kapazität")
        ).to_be_visible()
        await page.get_by_label("Bis (Dienstag)").fill("14:00")
        await page.get_by_role("button", name="Zeitfenster Dienstag 08:00 speichern").click()
        await expect(page.get_by_role("status")).to_contain_text("Gespeichert")
        await expect(page.get_by_label("Bis (Dienstag)")).to_have_value("14:00")
    finally:
        await context.close()

    # Customers see the longer window: the booking service got the catalog's new snapshot.
    after = await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=later)
    assert later in after
    entries = await audit_rows(gateway, actor="mitte-leader", entity="window", outcome="ok")
    assert [(e["action"], e["route"]) for e in entries] == [("update", "/api/v1/admin/windows/{window_id}")]


@pytest.mark.req("R20")
async def test_in_the_browser_a_reduction_over_a_booked_appointment_asks_for_confirmation(
    stack: Stack, browser: Browser
) -> None:
    gateway = stack.gateway
    ten = f"{TUESDAY}T10:00:00+01:00"
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=ten)
    booked = await gateway.browser().post("/api/v1/appointments", json=customer(ten))
    assert booked.status == 201
    reference = (await booked.json())["reference"]
    await gateway.account("mitte-leader2", (Role.GROUP_LEADER, "mitte"))
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await sign_in(page, base_url(stack), "mitte-leader2", "/staff/locations/mitte")
        await page.get_by_label("Bis (Dienstag)").fill("09:30")
        await page.get_by_role("button", name="Zeitfenster Dienstag 08:00 speichern").click()
        await expect(page.get_by_role("heading", name="Gebuchte Termine betroffen")).to_be_visible()
        await expect(page.get_by_role("alert")).to_contain_text("nicht")
        await expect(page.get_by_role("rowheader", name=reference)).to_be_visible()
        results = await Axe().run(page)
        assert _serious(results.response) == []
        await page.get_by_role("button", name="Trotzdem speichern").click()
        await expect(page.get_by_role("heading", name="Änderung gespeichert")).to_be_visible()
        await expect(page.get_by_role("rowheader", name=reference)).to_be_visible()
    finally:
        await context.close()
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert details["windows"][0]["end"] == "09:30"


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_in_the_browser_a_restriction_of_a_day_leads_to_the_mass_change_of_its_appointments(
    stack: Stack, browser: Browser
) -> None:
    """One of the entrance zone's two colleagues is ill on Tuesday: the leader keeps one service point for
    the day on the location page, confirms over the appointment on point 2, and moves it from there."""
    gateway = stack.gateway
    ten = f"{TUESDAY}T10:00:00+01:00"
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=ten)
    second = customer(ten, "zweite@example.org")
    second["customer"]["customer_number"] = "123B456789"
    references = []
    for body in (customer(ten), second):
        booked = await gateway.browser().post("/api/v1/appointments", json=body)
        assert booked.status == 201, await booked.text()
        references.append((await booked.json())["reference"])
    await gateway.account("mitte-leader3", (Role.GROUP_LEADER, "mitte"))
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await sign_in(page, base_url(stack), "mitte-leader3", "/staff/locations/mitte")
        await page.get_by_label("Erster Tag").fill(TUESDAY)
        await page.get_by_label("Für", exact=True).select_option(label="Eingangszone")
        await page.get_by_label("Serviceplätze, die bleiben").fill("1")
        await page.get_by_role("button", name="Schließung eintragen").click()
        await expect(page.get_by_role("heading", name="Gebuchte Termine betroffen")).to_be_visible()
        await expect(page.locator("tbody tr")).to_have_count(1)  # point 1 keeps its appointment
        await expect(page.get_by_role("rowheader", name=references[1])).to_be_visible()
        # The other way, before anything is saved: the mass change of that day, filled in.
        instead = page.get_by_role("link", name="Stattdessen die Massenänderung für diesen Tag öffnen")
        assert await instead.get_attribute("href") == (
            f"/staff/locations/mitte/mass-change?date={TUESDAY}&last={TUESDAY}&group_id=mitte-ez&service_points_left=1"
        )
        await page.get_by_role("button", name="Trotzdem speichern").click()
        await expect(page.get_by_role("heading", name="Änderung gespeichert")).to_be_visible()

        await page.get_by_role("link", name="Die Termine jetzt verlegen (Massenänderung)").click()
        await expect(page.get_by_label("Tag")).to_have_value(TUESDAY)
        await expect(page.get_by_label("Betroffen")).to_have_value("mitte-ez")
        await expect(page.get_by_label("Verbleibende Serviceplätze")).to_have_value("1")
        await page.get_by_role("button", name="Betroffene Termine anzeigen").click()
        await expect(page.get_by_role("heading", name="Vorschau: 1 Termin betroffen")).to_be_visible()
        await expect(page.locator("tbody tr")).to_contain_text(references[1])
        await page.get_by_role("button", name=re.compile(r"^Änderung bestätigen")).click()
        await expect(page.get_by_role("status")).to_contain_text("1 Termin verlegt")
        results = await Axe().run(page)
        assert _serious(results.response) == []
        # The location page lists the day the way staff write it.
        await page.goto(base_url(stack) + "/staff/locations/mitte#closures")
        row = page.locator("#closures tbody tr").first
        await expect(row).to_contain_text("03.03.2026")
        await expect(row).to_contain_text("Eingangszone")
        await expect(row).to_contain_text("nur Platz 1 bis 1")
    finally:
        await context.close()
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert [(c["first"], c["group_id"], c["service_points_left"]) for c in details["closures"]] == [
        (TUESDAY, "mitte-ez", 1)
    ]


@pytest.mark.req("R20")
async def test_in_the_browser_a_refused_closure_keeps_what_was_typed_and_a_saved_one_is_confirmed_there(
    stack: Stack, browser: Browser
) -> None:
    """A leader types a closure whose last day lies before its first: the page says "Fehler:" in its
    title, the summary has the focus and its link leads to the marked field, and everything typed is
    still there. Corrected and saved, the page jumps to the closures and says so there, once."""
    await stack.gateway.account("mitte-leader4", (Role.GROUP_LEADER, "mitte"))
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await sign_in(page, base_url(stack), "mitte-leader4", "/staff/locations/mitte")
        await page.get_by_label("Erster Tag").fill("2026-03-10")
        await page.get_by_label("Letzter Tag").fill("2026-03-09")
        await page.get_by_label("Für", exact=True).select_option(label="Eingangszone")
        await page.get_by_label("Serviceplätze, die bleiben").fill("1")
        await page.get_by_label("Grund (intern)").fill("Fortbildung")
        await page.get_by_role("button", name="Schließung eintragen").click()

        await expect(page).to_have_title(re.compile(r"^Fehler: Standort Bremen-Mitte"))
        await expect(page.locator("#error-summary")).to_be_focused()
        await page.get_by_role("link", name="Letzter Tag: darf nicht vor dem ersten Tag liegen").click()
        last = page.get_by_label("Letzter Tag")
        await expect(last).to_be_focused()
        await expect(last).to_have_attribute("aria-invalid", "true")
        await expect(last).to_have_accessible_description(re.compile("darf nicht vor dem ersten Tag liegen"))
        await expect(last).to_have_value("2026-03-09")
        await expect(page.get_by_label("Erster Tag")).to_have_value("2026-03-10")
        await expect(page.get_by_label("Für", exact=True)).to_have_value("mitte-ez")
        await expect(page.get_by_label("Serviceplätze, die bleiben")).to_have_value("1")
        await expect(page.get_by_label("Grund (intern)")).to_have_value("Fortbildung")

        await last.fill("2026-03-11")
        await page.get_by_role("button", name="Schließung eintragen").click()
        await expect(page).to_have_url(re.compile(r"#closures$"))
        await expect(page.get_by_role("status")).to_have_count(1)
        confirmation = page.locator("#closures").get_by_role("status")
        await expect(confirmation).to_have_text("Gespeichert.")
        await expect(confirmation).to_be_in_viewport()
    finally:
        await context.close()


def _serious(response: dict[str, Any]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in response.get("violations", [])
        if v.get("impact") in ("serious", "critical")
    ]


@pytest.mark.req("R10")
@pytest.mark.req("R14")
@pytest.mark.req("R21")
@pytest.mark.req("R30")
@pytest.mark.req("R31")
async def test_axe_finds_no_serious_violation_on_the_admin_pages(stack: Stack, browser: Browser) -> None:
    gateway = stack.gateway
    gateway.upstreams["notifier"].answers.update(
        {
            "/api/v1/admin/mail-templates": MAIL_TEXTS,
            "/api/v1/admin/mail-templates/confirmation/de": MAIL_TEXTS[0],
        }
    )
    dead = {
        "id": 7,
        "consumer": "notifier.appointments",
        "queue": "otv.notifier.appointments",
        "event_id": "0f6b7c1e-1111-4c3a-9d7e-2a1b3c4d5e6f",
        "event_type": "appointment.booked",
        "reason": "failed 5 times, last: UndefinedTableError",
        "attempts": 5,
        "dead_at": "2026-03-02T07:59:00+00:00",
        "replayed_at": None,
    }
    gateway.upstreams["notifier"].answers["/api/v1/admin/dead-letters"] = [dead]
    gateway.upstreams["reporting"].answers["/api/v1/admin/dead-letters"] = []
    await gateway.account("axe-admin", (Role.ADMIN, "*"))
    axe_admin = await account_id(gateway, "axe-admin")
    axe = Axe()
    problems: dict[str, list[str]] = {}
    # Every template of the staff pages once (the administrator sees every form of a location page).
    pages = [
        ("/staff/", "Start"),
        ("/staff/admin/locations", "Standorte"),
        ("/staff/locations/mitte", "Standort Bremen-Mitte: Zeitfenster und Kapazität"),
        ("/staff/locations/mitte/staff-roles", "Personal \N{EN DASH} Bremen-Mitte"),
        ("/staff/admin/concerns", "Zentraler Leistungskatalog"),
        ("/staff/admin/concerns/neuantrag", "Anliegen: Neuantrag stellen"),
        ("/staff/admin/allow-list", "Interne E-Mail-Adressen (Positivliste)"),
        ("/staff/admin/texts", "Texte der E-Mails"),
        ("/staff/admin/texts/confirmation/de", "Text bearbeiten: Bestätigung (Deutsch)"),
        ("/staff/admin/accounts", "Konten und Rollen"),
        (f"/staff/admin/accounts/{axe_admin}", "Konto axe-admin"),
        ("/staff/admin/api-keys", "API-Schlüssel"),
        ("/staff/admin/audit-log", "Audit-Log"),
        ("/staff/admin/dead-letters", "Nicht zustellbare Nachrichten"),
        ("/staff/password", "Passwort ändern"),
        ("/staff/admin/concerns/no-such-concern", "Nicht gefunden"),
    ]
    # 320 CSS pixels: a desktop zoomed to 400 % (WCAG 1.4.10); wide tables scroll in their own region.
    context = await browser.new_context(locale="de-DE", viewport={"width": 320, "height": 640})
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto(base_url(stack) + "/staff/login")
        found = _serious((await axe.run(page)).response)
        if found:
            problems["/staff/login"] = found
        await sign_in(page, base_url(stack), "axe-admin")
        await expect(page.get_by_role("heading", name="Start")).to_be_visible()
        for path, heading in pages:
            await page.goto(base_url(stack) + path)
            await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            found = _serious((await axe.run(page)).response)
            if not await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
                found.append("reflow: the page is wider than the screen")
            if found:
                problems[path] = found
    finally:
        await context.close()
    assert problems == {}, problems


# The focused control's outline, the colour of its outer ring (the box shadow) and the backgrounds around
# it: the card (the form) it sits on and the page.
FOCUS_RING = """() => {
  const focused = document.activeElement;
  const style = getComputedStyle(focused);
  const card = getComputedStyle(focused.closest(".card")).backgroundColor;
  return {outline: style.outlineColor, ring: style.boxShadow.match(/rgba?\\([^)]*\\)/)?.[0] ?? "",
          card, page: getComputedStyle(document.body).backgroundColor};
}"""


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two CSS colours given as rgb(r, g, b)."""

    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        assert len(channels) == 3, colour
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


async def test_in_the_browser_a_refused_form_says_error_in_the_title_and_the_summary_has_the_focus(
    gateway: Gateway, browser: Browser
) -> None:
    """After a refused form a screen reader starts with the title ("Fehler: ...") and then the error
    summary, which has the focus (staff.js), not with the banner and the navigation. A keyboard user sees
    where the focus is: a ring that stands out 3:1 against the grey form and the white page."""
    await gateway.account("fokus", (Role.APPOINTMENT_MANAGER, "mitte"))
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto(str(gateway.client.make_url("/staff/login")))
        await expect(page).to_have_title(re.compile(r"^Anmeldung \W OTV Verwaltung$"))
        await page.get_by_label("Benutzername").fill("fokus")
        await page.get_by_label("Passwort", exact=True).fill("falsch-" + PASSWORD)
        await page.keyboard.press("Tab")  # to the button, by keyboard: its focus indicator shows
        await expect(page.get_by_role("button", name="Anmelden")).to_be_focused()
        ring = await page.evaluate(FOCUS_RING)
        assert ring["outline"] == "rgb(255, 191, 71)" and contrast(ring["ring"], ring["card"]) >= 3, ring
        assert contrast(ring["ring"], ring["page"]) >= 3, ring
        await page.keyboard.press("Enter")
        await expect(page).to_have_title(re.compile(r"^Fehler: Anmeldung \W OTV Verwaltung$"))
        await expect(page.locator("#error-summary")).to_be_focused()
        await expect(page.locator("#error-summary")).to_contain_text("Benutzername oder Passwort sind falsch")
    finally:
        await context.close()


@pytest.mark.req("R34")
async def test_in_the_browser_an_account_is_opened_and_deactivated_without_its_username_in_any_address(
    gateway: Gateway, browser: Browser
) -> None:
    """The username names the employee: the browser's history, the address bar and the Referer of every
    step of the account pages carry the account's id instead; an old bookmark leads to the same page."""
    gateway.upstreams["catalog"].answers["/api/v1/locations"] = [{"id": "mitte", "name": "Bremen-Mitte"}]
    await gateway.account("konto-admin", (Role.ADMIN, "*"))
    await gateway.account("erika.muster", (Role.APPOINTMENT_MANAGER, "mitte"), display_name="Erika Muster")
    erika = await account_id(gateway, "erika.muster")
    base = str(gateway.client.make_url("")).rstrip("/")
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    addresses: list[str] = []
    page.on("request", lambda request: addresses.extend([request.url, request.headers.get("referer", "")]))
    try:
        await sign_in(page, base, "konto-admin", "/staff/admin/accounts")
        await page.get_by_role("link", name="erika.muster").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Konto erika.muster")
        assert page.url == f"{base}/staff/admin/accounts/{erika}"
        await page.get_by_role("button", name="Konto deaktivieren").click()
        await page.get_by_role("button", name="Konto erika.muster deaktivieren").click()
        await expect(page.get_by_text("Das Konto ist deaktiviert.")).to_be_visible()
        assert page.url == f"{base}/staff/admin/accounts/{erika}?notice=disabled"
        before_bookmark = len(addresses)
        await page.goto(f"{base}/staff/admin/accounts/erika.muster")  # an old bookmark
        await expect(page.get_by_role("heading", level=1)).to_have_text("Konto erika.muster")
        assert page.url == f"{base}/staff/admin/accounts/{erika}"
    finally:
        await context.close()
    assert (
        addresses[before_bookmark:] and [a for a in addresses[:before_bookmark] if "erika.muster" in a] == []
    )
    [disable] = await audit_rows(gateway, action="disable", entity="staff_account")
    assert disable["entity_id"] == erika


@pytest.mark.req("R28")
async def test_in_the_browser_two_minutes_before_the_idle_timeout_a_warning_offers_to_extend_the_session(
    gateway: Gateway, browser: Browser
) -> None:
    """WCAG 2.2.1: the session ends after 30 minutes without a request (typing in a long note is none);
    two minutes before, a warning takes the focus and "Sitzung verlängern" keeps the session, and the
    focus returns to the field; a session that ended says so, with the typed text still on the page."""
    await gateway.account("zeit", (Role.APPOINTMENT_MANAGER, "mitte"))
    context = await browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.clock.install()
        await sign_in(page, str(gateway.client.make_url("")).rstrip("/"), "zeit", "/staff/password")
        await expect(page.get_by_role("heading", name="Passwort", exact=False).first).to_be_visible()
        await expect(page.get_by_text("Sitzung endet nach 30 Minuten ohne Aktivität")).to_be_visible()
        warning = page.get_by_role("alertdialog", name="Sitzung läuft ab")
        await expect(warning).to_be_hidden()
        field = page.locator("input[type=password]").first
        await field.fill("halb getippt")

        await page.clock.run_for("27:59")
        await expect(warning).to_be_hidden()
        await page.clock.run_for("00:02")
        await expect(warning).to_be_visible()
        await expect(warning).to_contain_text("Nicht gesendete Eingaben gehen dann verloren")
        await expect(page.get_by_role("button", name="Sitzung verlängern")).to_be_focused()
        gateway.clock.advance(timedelta(minutes=28, seconds=1))
        await page.keyboard.press("Space")
        await expect(warning).to_be_hidden()
        await expect(field).to_be_focused()
        await expect(field).to_have_value("halb getippt")
        # The server kept the session: 20 more minutes are 48 since the page, but 20 since extending.
        gateway.clock.advance(timedelta(minutes=20))
        response = await page.request.get(str(gateway.client.make_url("/api/v1/staff/me")))
        assert response.status == 200

        # Left alone: the warning again, then the note that the session has ended.
        await page.clock.run_for("30:01")
        ended = page.get_by_role("alertdialog", name="Sitzung abgelaufen")
        await expect(ended).to_contain_text("Bitte kopieren Sie nicht gesendete Eingaben")
        await expect(page.get_by_role("button", name="Sitzung verlängern")).to_be_hidden()
        await expect(field).to_have_value("halb getippt")
    finally:
        await context.close()
