"""Further customer languages are content (R43): a catalogue in `OTV_TRANSLATIONS_DIR` makes Turkish
bookable on the customer pages. Staff then book in it too, and read every customer's language by its
German name ("Türkisch", "Leichte Sprache", "Portugiesisch (Brasilien)"), never a bare tag such as `tr`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.clock import ManualClock
from tests.booking import factory
from tests.staff.conftest import Gateway, GatewayFactory, notifier_behind_gateway
from tests.staff_work.conftest import (
    HERE,
    answer_for_the_catalog,
    book,
    events,
    form,
    row_of,
    signed_in,
    start_pages_gateway,
)
from tests.web.test_web_further_language import turkish_catalogue

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"


@pytest.fixture
async def turkish_pages_gateway(
    make_gateway: GatewayFactory, client: TestClient[Any, Any], clock: ManualClock, tmp_path: Path
) -> Gateway:
    turkish_catalogue(tmp_path)
    return await start_pages_gateway(make_gateway, client, clock, translations_dir=str(tmp_path))


def _language_options(html: str) -> list[tuple[str, str]]:
    select = re.search(r'<select id="f-language" name="language"[^>]*>(.*?)</select>', html, re.S)
    assert select, "no language field"
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(1))


@pytest.mark.req("R43")
async def test_staff_book_in_a_language_the_pages_offer_and_read_it_by_its_german_name(
    client: TestClient[Any, Any], turkish_pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    browser = await signed_in(turkish_pages_gateway, "sprachen")
    path = f"/staff/locations/{HERE}/book"
    html = await (await browser.get(path, params={"choice": "veraenderung|in_person"})).text()
    assert _language_options(html) == [
        ("de", "Deutsch"),
        ("de-x-ls", "Leichte Sprache"),
        ("en", "Englisch"),
        ("tr", "Türkisch"),
    ]
    attempt = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', html)
    assert attempt
    done = await form(
        browser,
        path,
        choice="veraenderung|in_person",
        start=factory.iso(TUESDAY, "08:00"),
        first_name="Ayşe",
        last_name="Demir",
        email="ayse@example.org",
        customer_number=factory.customer_number(81),
        language="tr",
        idempotency_key=attempt.group(1),
    )
    assert done.status == 303, await done.text()
    [booked] = await events(pool, "appointment.booked")
    assert booked["appointment"]["language_tag"] == "tr"
    file_html = await (await browser.get(done.headers["Location"])).text()
    assert re.search(r"<dt>Sprache der Buchung</dt><dd>Türkisch</dd>", file_html)

    # Booked elsewhere (the customer pages, the service centre's API): Leichte Sprache, and a tag the pages
    # do not offer but booking keeps, by the name Babel knows for it.
    easy = await book(client, TUESDAY, "08:15", language="de-x-ls")
    brazilian = await book(client, TUESDAY, "08:30", language="pt-BR")
    day = await (await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})).text()
    turkish_id = done.headers["Location"].split("/")[-1].split("?")[0]
    assert "Sprache: Türkisch" in row_of(day, f"a-{turkish_id}")
    assert "Sprache: Leichte Sprache" in row_of(day, f"a-{easy['id']}")
    assert "Sprache: Portugiesisch (Brasilien)" in row_of(day, f"a-{brazilian['id']}")
    assert ">tr<" not in day and "Sprache: tr" not in day and "pt-BR" not in day


@pytest.mark.req("R9")
@pytest.mark.req("R43")
async def test_the_cancel_form_names_the_language_the_mail_comes_in_not_a_booking_language_without_texts(
    make_gateway: GatewayFactory,
    client: TestClient[Any, Any],
    clock: ManualClock,
    tmp_path: Path,
    amqp: Any,
) -> None:
    """A Turkish customer (the pages offer Turkish, the notifier has no Turkish mail texts) gets the
    jobcenter's reason in a German mail: the hint asks for it in German, as the notifier says it writes."""
    turkish_catalogue(tmp_path)
    booking = {"booking": str(client.make_url("")).rstrip("/")}
    async with notifier_behind_gateway(
        make_gateway, amqp, clock=clock, urls=booking, translations_dir=str(tmp_path)
    ) as gateway:
        answer_for_the_catalog(gateway)
        browser = await signed_in(gateway, "absage-tr")
        hints = {}
        for language, at in (("tr", "08:00"), ("en", "08:15"), ("de-x-ls", "08:30")):
            booked = await book(client, TUESDAY, at, language=language)
            html = await (await browser.get(f"/staff/appointments/{booked['id']}")).text()
            hint = re.search(r'id="cancel-reason-hint">([^<]*)<', html)
            assert hint, html
            hints[language] = hint.group(1)
    assert hints["tr"].endswith(
        "Schreiben Sie ihn darum in der Sprache der E-Mail: Deutsch."
        " Für die Sprache der Buchung, Türkisch, gibt es keine E-Mail-Texte."
    )
    assert hints["en"].endswith("in der Sprache der Buchung: Englisch.")
    assert hints["de-x-ls"].endswith("in der Sprache der Buchung: Leichte Sprache.")
