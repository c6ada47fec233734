"""A further language is content, not code (R43): the web team puts a catalogue for Turkish into the
gateway's translations folder (`OTV_TRANSLATIONS_DIR`), nothing else. It is offered in the switcher, and a
customer who walks the dialogue in it books: the appointment keeps the language, and the confirmation
mail, which has no Turkish text, comes in German, with the manage link opening the pages in Turkish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po
from playwright.async_api import Browser, expect

from services.gateway.app import create_app as create_gateway
from services.gateway.web.i18n import LANGUAGE_NAME, TRANSLATIONS_DIR
from tests.conftest import free_port
from tests.web.conftest import (
    DESKTOP,
    Stack,
    _serve,
    _text,
    new_context,
    unique_customer_number,
    unique_email,
)

pytestmark = pytest.mark.timeout(90)

# A translator's first pass: the rest of the catalogue is still empty and shows the English ids.
TURKISH = {
    LANGUAGE_NAME: "Türkçe",
    "Book an appointment at Jobcenter Bremen": "Jobcenter Bremen: Randevu",
    "Continue": "Devam",
    "Next": "Devam",
    "Book appointment": "Randevuyu kesin olarak al",
    "Your appointment is booked": "Randevu kaydedildi",
}


def turkish_catalogue(folder: Path) -> Path:
    """`<folder>/tr/LC_MESSAGES/messages.po`, made from the pages' template as a translator starts."""
    with (TRANSLATIONS_DIR / "messages.pot").open("rb") as handle:
        template: Catalog = read_po(handle)
    catalogue = Catalog(locale="tr", project="OTV customer pages")
    for message in template:
        if message.id:
            catalogue.add(message.id, TURKISH.get(str(message.id), ""))
    target = folder / "tr" / "LC_MESSAGES" / "messages.po"
    target.parent.mkdir(parents=True)
    with target.open("wb") as handle:
        write_po(handle, catalogue)
    return target


@pytest.fixture
async def turkish_gateway(stack: Stack, tmp_path: Path) -> AsyncIterator[str]:
    """A gateway in front of the stack's services with the extra folder; its own address is its public one."""
    turkish_catalogue(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app: web.Application = create_gateway(
        stack.gateway_settings(port=port, public_base_url=url, translations_dir=str(tmp_path)),
        clock=stack.clock,
    )
    runner = await _serve(app, port)
    yield url
    await runner.cleanup()


@pytest.mark.req("R43")
async def test_a_customer_books_in_a_language_added_as_a_catalogue_and_gets_the_mail_in_german(
    stack: Stack, browser: Browser, turkish_gateway: str
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    email = unique_email("turkish")

    await page.goto(turkish_gateway + "/")
    await page.get_by_role("link", name="Türkçe").click()
    await expect(page.locator("html")).to_have_attribute("lang", "tr")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Jobcenter Bremen: Randevu")
    await page.locator("input[name=location][value=mitte]").check()
    await page.get_by_role("button", name="Devam").click()

    # The catalog has no Turkish names: the concerns are named in German, not refused.
    await expect(page.get_by_role("heading", level=1)).to_have_text("Choose your concern")
    name = page.locator("label[for$='-veraenderung'] .choice-title")
    await expect(name).to_have_text("Mitteilung einer Veränderung")
    await page.locator("input[name=concern][value=veraenderung]").check()
    await page.locator("input[name=mode][value=in_person]").check()
    await page.get_by_role("button", name="Devam").click()

    await page.locator(".calendar td.has-slots a").nth(14).click()
    await page.locator("button.slot:not(.slot-evening)").last.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your contact details")
    await page.get_by_label("First name").fill("Ayşe")
    await page.get_by_label("Last name").fill("Demir")
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Kundennummer", exact=False).first.fill(unique_customer_number())
    await page.get_by_role("button", name="Randevuyu kesin olarak al").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Randevu kaydedildi")
    await expect(page.locator("main")).not_to_contain_text("Please check your entries.")
    reference = (await page.locator(".reference").inner_text()).strip()
    assert reference
    await context.close()

    confirmation = (await stack.mail_to(email))[0]
    assert reference in confirmation.raw_text
    assert confirmation.subject.startswith("Terminbestätigung")
    assert confirmation.parsed["Content-Language"] == "de"
    text = _text(confirmation)
    assert "vielen Dank für Ihre Buchung" in text
    # The manage page opens in the customer's language, not the mail's.
    assert stack.manage_link(confirmation).endswith("&lang=tr")
