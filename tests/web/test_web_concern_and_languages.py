"""The concern page checks no way of talking for the customer unless the concern is offered in one way only
(R11), asks for one in each language when none is chosen (R43), and the waiting list's pages speak the
language chosen (R43, R45)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from services.gateway.web import steps
from services.gateway.web.pages import SEALER
from tests.web.conftest import DESKTOP, Stack, new_context
from tests.web.test_web_security_and_bot_defence import csrf_of, gateway_client

# In the demo data "veraenderung" is offered in person and by phone, "neuantrag" in person only.
BOTH, IN_PERSON_ONLY = "veraenderung", "neuantrag"
NO_MODE_CHOSEN = {
    "de": "Wählen Sie, wie Sie mit uns sprechen möchten: persönlich oder telefonisch.",
    "en": "Choose how you want to talk to us: in person or by phone.",
    "de-x-ls": "Bitte wählen Sie: Wollen Sie zu uns kommen? Oder sollen wir Sie anrufen?",
}


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[TestClient[Any, Any]]:
    started = await gateway_client(stack)
    yield started
    await started.close()


def checked_modes(html: str) -> list[str]:
    return re.findall(
        r'<input type="radio" id="mode-[^"]+" name="mode" value="(\w+)" required checked>', html
    )


def mode_inputs(html: str) -> list[str]:
    return re.findall(r'<input type="radio"[^>]* name="mode"[^>]*>', html)


async def concern_page(client: TestClient[Any, Any], state: dict[str, str], language: str = "de") -> str:
    params = {"s": client.app[SEALER].seal(state), "lang": language}
    response = await client.get("/concern", params=params)
    assert response.status == 200
    return await response.text()


@pytest.mark.req("R11")
async def test_the_concern_page_checks_no_way_of_talking_when_the_customer_has_a_choice(
    client: TestClient[Any, Any],
) -> None:
    for state in ({"loc": "mitte"}, {"loc": "mitte", "concern": BOTH}):
        html = await concern_page(client, state)
        inputs = mode_inputs(html)
        assert len(inputs) == 2 and all(" required" in tag for tag in inputs), inputs
        assert not any(" checked" in tag for tag in inputs), (state, inputs)


@pytest.mark.req("R11")
async def test_the_only_way_a_chosen_concern_is_offered_in_is_checked(client: TestClient[Any, Any]) -> None:
    html = await concern_page(client, {"loc": "mitte", "concern": IN_PERSON_ONLY})
    assert checked_modes(html) == ["in_person"]
    # What the customer chose before (the back link from the calendar) stays chosen.
    html = await concern_page(client, {"loc": "mitte", "concern": BOTH, "mode": "phone"})
    assert checked_modes(html) == ["phone"]


def test_a_phone_only_concern_gets_phone_checked_and_a_location_offering_both_nothing() -> None:
    """The catalog may offer a concern by phone only: a preselected "in person" made it fail."""
    phone_only = {"id": "auskunft", "modes": ["phone"]}
    both = {"id": BOTH, "modes": []}  # an empty list means both
    assert steps.preselected_mode([phone_only, both], "auskunft", "") == "phone"
    assert steps.preselected_mode([phone_only, both], BOTH, "") is None
    assert steps.preselected_mode([phone_only, both], None, None) is None
    assert steps.preselected_mode([phone_only], None, None) == "phone"  # every concern there by phone only
    assert steps.preselected_mode([phone_only, both], BOTH, "in_person") == "in_person"


@pytest.mark.req("R11")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", list(NO_MODE_CHOSEN))
async def test_choosing_no_way_of_talking_is_an_error_tied_to_the_field(
    client: TestClient[Any, Any], language: str
) -> None:
    state = client.app[SEALER].seal({"loc": "mitte"})
    token = csrf_of(await concern_page(client, {"loc": "mitte"}, language))
    response = await client.post(
        "/concern",
        params={"s": state, "lang": language},
        data={"concern": BOTH, "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status == 422
    html = await response.text()
    assert NO_MODE_CHOSEN[language] in html
    assert 'href="#field-mode"' in html  # the error summary links to the radio group
    assert not checked_modes(html)
    assert f'value="{BOTH}" data-modes="in_person phone" checked' in html  # the concern stays chosen


@pytest.mark.req("R11")
async def test_a_concern_offered_in_one_way_needs_no_choice_of_the_way(client: TestClient[Any, Any]) -> None:
    state = client.app[SEALER].seal({"loc": "mitte"})
    token = csrf_of(await concern_page(client, {"loc": "mitte"}))
    response = await client.post(
        "/concern",
        params={"s": state},
        data={"concern": IN_PERSON_ONLY, "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status in (302, 303), await response.text()
    [sealed] = parse_qs(urlsplit(response.headers["Location"]).query)["s"]
    opened = client.app[SEALER].open(sealed)
    assert opened is not None and opened["mode"] == "in_person"


@pytest.mark.req("R11")
async def test_choosing_a_concern_in_the_browser_checks_its_only_way_and_takes_it_back_for_the_next(
    stack: Stack, browser: Browser
) -> None:
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await page.goto(stack.gateway_url + "/")
    await page.locator("input[name=location][value=mitte]").check()
    await page.get_by_role("button", name="Weiter").click()
    modes = page.locator("input[name=mode]:checked")
    await expect(modes).to_have_count(0)
    await page.locator(f"input[name=concern][value={IN_PERSON_ONLY}]").check()
    await expect(page.locator("input[name=mode][value=in_person]")).to_be_checked()
    await page.locator(f"input[name=concern][value={BOTH}]").check()
    await expect(modes).to_have_count(0)  # the script's own choice is taken back
    await page.locator("input[name=mode][value=in_person]").check()  # now the customer's own choice
    await page.locator(f"input[name=concern][value={IN_PERSON_ONLY}]").check()
    await page.locator(f"input[name=concern][value={BOTH}]").check()
    await expect(page.locator("input[name=mode][value=in_person]")).to_be_checked()  # the customer's
    await context.close()


@pytest.mark.req("R43")
@pytest.mark.req("R45")
async def test_the_waiting_list_page_speaks_english_in_english_and_german_in_german(
    client: TestClient[Any, Any],
) -> None:
    state = client.app[SEALER].seal({"loc": "mitte", "concern": BOTH, "mode": "in_person"})
    pages = {}
    for language in ("en", "de"):
        response = await client.get("/waiting-list/join", params={"s": state, "lang": language})
        assert response.status == 200
        pages[language] = await response.text()
    english, german = pages["en"], pages["de"]
    for text in (
        "Join the waiting list",
        "Which days of the week suit you?",
        "Monday",
        "Mornings (until 12:00)",
    ):
        assert text in english, text
    assert not re.search(r"Warteliste|Wochentag|Vormittag|Montag|Uhrzeit", english)
    assert "Warteliste" in german and "Montag" in german and "Join the waiting list" not in german


@pytest.mark.req("R11")
@pytest.mark.parametrize("language", ["de", "en"])
async def test_the_selection_shows_each_concerns_information_documents_and_links_from_the_catalog(
    stack: Stack, browser: Browser, language: str
) -> None:
    """What the catalog says about a concern (how long it takes, what to bring, an explainer link) is
    shown in the concern selection itself, in the customer's language, before anything is booked."""
    async with aiohttp.ClientSession() as http:
        url = f"{stack.catalog_url}/api/v1/locations/mitte/concerns"
        async with http.get(url, params={"lang": language}) as response:
            offered = {c["id"]: c for c in await response.json()}
    concern = offered[IN_PERSON_ONLY]  # Neuantrag: information, documents and a link in the demo data
    assert concern["info"] and concern["documents"] and concern["links"]
    context = await new_context(browser, DESKTOP)
    page = await context.new_page()
    await page.goto(f"{stack.gateway_url}/?lang={language}")
    await page.locator("input[name=location][value=mitte]").check()
    await page.locator("form[action^='/'][novalidate] button[type=submit]").first.click()

    choice = page.locator(".choice.concern", has=page.locator(f"input[value={IN_PERSON_ONLY}]"))
    await expect(choice.locator(".choice-info")).to_have_text(concern["info"])
    # The information is read out with the concern's radio button.
    info_id = await choice.locator(".choice-info").get_attribute("id")
    await expect(choice.locator("input[name=concern]")).to_have_attribute("aria-describedby", str(info_id))
    details = choice.locator("details.concern-details")
    await expect(details.locator("li", has_text=concern["documents"][0])).to_be_hidden()
    await details.locator("summary").click()
    await expect(details.locator("li").filter(has_text=concern["documents"][0]).first).to_be_visible()
    link = concern["links"][0]
    await expect(details.get_by_role("link", name=link["label"])).to_have_attribute("href", link["url"])
    await context.close()
