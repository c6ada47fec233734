"""The page "Texte der E-Mails" with the real notifier behind it (R10): a text the notifier refuses comes
back as typed, each problem in German at its field and linked from the summary (WCAG 3.3.1, 3.3.3); HTML
that could attack a customer is refused; the same form sent twice saves once and says "saved"."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from shared.identity import Role
from tests.browser import chromium_browser
from tests.staff.conftest import PASSWORD, Gateway, GatewayFactory, StaffClient, notifier_behind_gateway
from tests.staff.test_location_page_forms import assert_marked, elements
from tests.staff.test_staff_pages import post_form
from tests.staff.test_stale_forms import _one, _text_form

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff pages.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

ACTION = "/staff/admin/texts/confirmation/de"
# Words of the notifier's English problems that must not reach the page.
ENGLISH = ("syntax error", "unknown value", "undefined", "unsafe", "must contain", "must not", "is empty")


@pytest.fixture
async def texts_gateway(
    clean_db: dict[str, asyncpg.Pool], make_gateway: GatewayFactory, amqp: Any
) -> AsyncIterator[Gateway]:
    async with notifier_behind_gateway(make_gateway, amqp) as started:
        yield started


async def _stored(admin: StaffClient) -> dict[str, Any]:
    found: dict[str, Any] = await (await admin.get("/api/v1/admin/mail-templates/confirmation/de")).json()
    return found


def in_content(form: dict[str, list[str]], html: str) -> str:
    """The HTML version with `html` inside its content block (outside, a layout's child renders nothing)."""
    return form["html"][0].replace("{% block content %}", "{% block content %}" + html, 1)


@pytest.mark.req("R10")
async def test_a_refused_mail_text_names_each_problem_in_german_at_its_field(texts_gateway: Gateway) -> None:
    admin = await texts_gateway.signed_in("mail-text-admin", (Role.ADMIN, "*"))
    form = _text_form(await (await admin.get(ACTION)).text())
    before = await _stored(admin)
    cases: list[tuple[dict[str, str], str, str]] = [
        (
            {"text": form["text"][0] + "\nBis bald {{ date"},
            "text",
            "Text (reine Textfassung): in Zeile",
        ),
        (
            {"text": "{{ gibt_es_nicht }} " + form["text"][0]},
            "text",
            "den Platzhalter „gibt_es_nicht“ gibt es nicht",
        ),
        ({"subject": "   "}, "subject", "Betreff: fehlt"),
        ({"text": "Guten Tag, Ihr Termin ist am {{ date }}."}, "text", "der Link zur Terminverwaltung"),
        (
            {"html": in_content(form, '<script>alert(1)</script><a href="javascript:x()">Klick</a>')},
            "html",
            "HTML-Fassung: nicht erlaubt in E-Mails: <script>, href=javascript:",
        ),
        ({"html": in_content(form, '<p onmouseover="x()">Hallo</p>')}, "html", "onmouseover="),
    ]
    for changed, field, line in cases:
        status, _, html = await post_form(admin, ACTION, _one(form, **changed))
        assert status == 422, (changed, html)
        page = elements(html)
        texts = [text for href, text in page.summary_links if href == f"#{field}"]
        assert len(texts) == 1 and line in texts[0], (line, page.summary_links)
        summary = html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
        assert not [word for word in ENGLISH if word in summary], summary
        # The field is marked and described by its message; what was typed is shown again.
        assert_marked(page, field, texts[0])
        assert _text_form(html)[field] == list(changed.values())
    assert await _stored(admin) == before  # nothing saved


@pytest.mark.req("R10")
async def test_the_same_mail_text_form_sent_twice_saves_once_and_says_saved(texts_gateway: Gateway) -> None:
    """A double click or a reload of the answer sent the form again with the version it was loaded with:
    the second was refused as "changed by you in another window" although nothing else had changed."""
    admin = await texts_gateway.signed_in("mail-text-twice", (Role.ADMIN, "*"))
    form = _one(_text_form(await (await admin.get(ACTION)).text()), subject="Ihr Termin am {{ date }}")
    for _ in range(2):
        status, location, html = await post_form(admin, ACTION, form)
        assert (status, location) == (303, "/staff/admin/texts?notice=saved"), html
    assert (await _stored(admin))["subject"] == "Ihr Termin am {{ date }}"
    # A different text on the old version is still refused: a colleague's wording is not dropped unseen.
    status, _, _ = await post_form(admin, ACTION, _one(form, subject="Termin am {{ date }}"))
    assert status == 409


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for launched in chromium_browser():
        yield launched


@pytest.mark.req("R10")
async def test_in_the_browser_at_200_percent_a_refused_mail_text_leads_by_keyboard_to_the_field(
    texts_gateway: Gateway, browser: Browser
) -> None:
    """By keyboard alone at 200 % zoom (a 1280 px screen is 640 CSS pixels wide): the refused save says
    "Fehler:" in the title, the summary has the focus, its line leads to the HTML field, which says what
    is wrong; the page does not scroll sideways."""
    await texts_gateway.account("mail-text-keys", (Role.ADMIN, "*"))
    base = str(texts_gateway.client.make_url("")).rstrip("/")
    context = await browser.new_context(locale="de-DE", viewport={"width": 640, "height": 400})
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto(base + "/staff/login?next=" + ACTION)
        await page.get_by_label("Benutzername").fill("mail-text-keys")
        await page.get_by_label("Passwort", exact=True).fill(PASSWORD)
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Text bearbeiten: Bestätigung (Deutsch)"
        )
        field = page.get_by_label("HTML-Fassung")
        original = await field.input_value()
        await field.fill(in_content({"html": [await field.input_value()]}, '<p onclick="x()">Hallo</p>'))
        await page.keyboard.press("Tab")  # past the hint to the next control: the button
        await expect(page.get_by_role("button", name="Speichern")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page).to_have_title(re.compile(r"^Fehler: Text bearbeiten: Bestätigung \(Deutsch\)"))
        summary = page.locator("#error-summary")
        await expect(summary).to_be_focused()
        await page.keyboard.press("Tab")
        link = summary.get_by_role(
            "link", name=re.compile("^HTML-Fassung: nicht erlaubt in E-Mails: onclick=")
        )
        await expect(link).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(field).to_be_focused()
        await expect(field).to_have_attribute("aria-invalid", "true")
        await expect(field).to_have_accessible_description(re.compile("nicht erlaubt in E-Mails: onclick="))
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # Corrected, the preview by keyboard: the focus lands on it, and it fits the zoomed screen.
        await field.fill(original)
        await page.get_by_label("Betreff").focus()
        await page.get_by_label("Betreff").fill("Vorschau am {{ date }}")
        preview_button = page.get_by_role("button", name="Vorschau zeigen")
        await preview_button.focus()
        await page.keyboard.press("Enter")
        preview = page.locator("#preview")
        await expect(preview).to_be_focused()
        await expect(preview).to_contain_text("Vorschau am ")
        await expect(page.get_by_title("Vorschau der HTML-Fassung")).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # A preview of a broken text is refused as a save is, the summary first.
        await field.fill("{{ kaputt")
        await preview_button.focus()
        await page.keyboard.press("Enter")
        await expect(summary).to_be_focused()
        await expect(summary).to_contain_text("HTML-Fassung: in Zeile 1")
    finally:
        await context.close()


@pytest.mark.req("R10")
async def test_the_preview_shows_the_mail_of_a_sample_appointment_and_saves_nothing(
    texts_gateway: Gateway,
) -> None:
    admin = await texts_gateway.signed_in("mail-text-preview", (Role.ADMIN, "*"))
    form = _text_form(await (await admin.get(ACTION)).text())
    before = await _stored(admin)
    typed = _one(form, subject="Vorschau: Ihr Termin am {{ date }}", action="preview")
    status, _, html = await post_form(admin, ACTION, typed)
    assert status == 200, html
    preview = html.split('id="preview"', 1)[1]
    assert "Vorschau: Ihr Termin am " in preview and "{{ date }}" not in preview  # filled in
    assert "https://termine.example/manage/sample?token=sample-token" in preview  # the text version
    assert 'sandbox srcdoc="' in preview  # the HTML version, without scripts or forms
    assert _text_form(html)["subject"] == ["Vorschau: Ihr Termin am {{ date }}"]  # still as typed
    assert await _stored(admin) == before
    # A text a save would refuse is refused for the preview too, at its field.
    status, _, html = await post_form(admin, ACTION, _one(typed, text="{{ kaputt"))
    assert status == 422 and 'id="preview"' not in html
    assert [href for href, _ in elements(html).summary_links] == ["#text"]
