"""The responsibility finder's request for one more part of the address is an error of that field (R3,
R42, WCAG 3.3.1/3.3.3): in the error summary with a link to the field, at the field, which is then no
longer "optional", in each language."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.web.conftest import Stack, streets_of
from tests.web.test_web_security_and_bot_defence import csrf_of, gateway_client

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[TestClient[Any, Any]]:
    started = await gateway_client(stack)
    yield started
    await started.close()


def label_of(html: str, field: str) -> str:
    found = re.search(rf'<label for="field-{field}">(.*?)</label>', html, re.S)
    assert found, field
    return found.group(1)


@pytest.mark.req("R3")
@pytest.mark.req("R42")
@pytest.mark.parametrize(
    ("language", "asked", "error_title"),
    [
        ("de", "Bitte geben Sie auch Ihre Hausnummer an.", "Fehler:"),
        ("de-x-ls", "Bitte schreiben Sie auch Ihre Haus·nummer.", None),
        ("en", "Please also give your house number.", "Error:"),
    ],
)
async def test_a_street_that_needs_the_house_number_marks_the_house_number_field(
    client: TestClient[Any, Any], language: str, asked: str, error_title: str | None
) -> None:
    token = csrf_of(await (await client.get(f"/?lang={language}")).text())
    answer = await client.post(
        f"/finder?lang={language}", data={"csrf_token": token, "street": "Stader Straße"}
    )
    assert answer.status == 422
    html = await answer.text()
    if error_title:
        assert f"<title>{error_title} " in html
    summary = html[
        html.index('class="error-summary"') : html.index("</div>", html.index('class="error-summary"'))
    ]
    assert re.search(rf'<a href="#field-house_number">[^<]*{re.escape(asked)}', summary)
    field = re.search(r'<input[^>]*id="field-house_number"[^>]*>', html)
    assert field
    assert 'aria-invalid="true"' in field.group(0) and 'aria-describedby="house_number-error"' in field.group(
        0
    )
    assert re.search(rf'<p class="field-error" id="house_number-error">.*{re.escape(asked)}', html)
    assert 'class="optional"' not in label_of(html, "house_number")
    assert 'class="optional"' in label_of(html, "postcode")  # still optional: only the number is asked for
    # The result panel still says it where the focus used to go.
    assert asked in html[html.index('class="panel finder-result"') :]


@pytest.mark.req("R3")
async def test_a_found_address_is_no_error(client: TestClient[Any, Any]) -> None:
    token = csrf_of(await (await client.get("/")).text())
    answer = await client.post(
        "/finder", data={"csrf_token": token, "street": "Am Wall", "house_number": "1", "postcode": "28195"}
    )
    assert answer.status == 200
    html = await answer.text()
    assert 'class="error-summary"' not in html and 'class="optional"' in label_of(html, "house_number")


@pytest.fixture
async def street_in_two_places(pools: dict[str, asyncpg.Pool]) -> AsyncIterator[str]:
    """A street name found in two parts of Bremen (28195 in Mitte, 28205 in Hemelingen)."""
    parts = [
        {"postcode": postcode, "district": district, "location_id": location_id}
        for postcode, district, location_id in (("28195", "Mitte", "mitte"), ("28205", "Hemelingen", "ost"))
    ]
    async with streets_of(pools["catalog"], "Zweiorteweg", parts) as name:
        yield name


@pytest.mark.req("R3")
@pytest.mark.req("R42")
@pytest.mark.parametrize(
    ("language", "asked", "mismatch"),
    [
        (
            "de",
            "Bitte geben Sie auch Ihre Postleitzahl an.",
            "aber an keinem mit der Postleitzahl 28199. Bitte prüfen Sie die Postleitzahl",
        ),
        (
            "de-x-ls",
            "Bitte schreiben Sie auch Ihre Post·leit·zahl.",
            "Aber nicht mit der Post·leit·zahl 28199. Bitte prüfen Sie die Post·leit·zahl.",
        ),
        (
            "en",
            "Please also give your postcode.",
            "but none with the postcode 28199. Please check the postcode",
        ),
    ],
)
async def test_a_postcode_that_fits_none_of_the_places_of_a_street_is_said_to_not_fit_not_to_be_missing(
    client: TestClient[Any, Any], street_in_two_places: str, language: str, asked: str, mismatch: str
) -> None:
    """WCAG 3.3.3: the suggestion at the field fits what is in it."""
    token = csrf_of(await (await client.get(f"/?lang={language}")).text())
    empty = await client.post(
        f"/finder?lang={language}", data={"csrf_token": token, "street": street_in_two_places}
    )
    assert empty.status == 422
    assert re.search(rf'<p class="field-error" id="postcode-error">.*{re.escape(asked)}', await empty.text())

    answer = await client.post(
        f"/finder?lang={language}",
        data={"csrf_token": token, "street": street_in_two_places, "postcode": "28199"},
    )
    assert answer.status == 422
    html = await answer.text()
    assert asked not in html
    summary = html[
        html.index('class="error-summary"') : html.index("</div>", html.index('class="error-summary"'))
    ]
    assert re.search(rf'<a href="#field-postcode">[^<]*{re.escape(mismatch)}', summary)
    field = re.search(r'<input[^>]*id="field-postcode"[^>]*>', html)
    assert field and 'value="28199"' in field.group(0) and 'aria-invalid="true"' in field.group(0)
    assert re.search(rf'<p class="field-error" id="postcode-error">.*{re.escape(mismatch)}', html)
    assert mismatch in html[html.index('class="panel finder-result"') :]

    found = await client.post(
        f"/finder?lang={language}",
        data={"csrf_token": token, "street": street_in_two_places, "postcode": "28205"},
    )
    assert found.status == 200


class _SuggestionForm(HTMLParser):
    """The form of the finder's result panel that holds the suggested streets: its action, its hidden
    fields, and each button's name, value, lang and text."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.buttons: list[dict[str, str]] = []
        self._in_result = self._in_form = False
        self._button: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section" and "finder-result" in a.get("class", ""):
            self._in_result = True
        elif self._in_result and tag == "form" and a.get("action", "").startswith("/finder"):
            self._in_form, self.action = True, a["action"]
        elif self._in_form and tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        elif self._in_form and tag == "button":
            self._button = {**a, "text": ""}
            self.buttons.append(self._button)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None
        elif tag == "form":
            self._in_form = False
        elif tag == "section":
            self._in_result = False

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["text"] += data


@pytest.mark.req("R3")
@pytest.mark.req("R42")
@pytest.mark.parametrize(
    ("language", "asked", "found"),
    [
        ("de", "Meinten Sie: ", "Ihr Standort ist:"),
        ("de-x-ls", "Meinen Sie vielleicht: ", "Ihr Standort ist:"),
        ("en", "Did you mean: ", "Your location is:"),
    ],
)
async def test_a_suggested_street_is_a_button_that_searches_with_it(
    client: TestClient[Any, Any], language: str, asked: str, found: str
) -> None:
    """A misspelt street: the finder's suggestions are buttons in the sentence that names them, which search
    again with the suggested street and what else was entered, in the page's language, without JavaScript."""
    token = csrf_of(await (await client.get(f"/?lang={language}")).text())
    entered = {"street": "Sögestrase", "house_number": "1", "postcode": "28195", "under_25": "yes"}
    answer = await client.post(f"/finder?lang={language}", data={"csrf_token": token, **entered})
    assert answer.status == 200
    html = await answer.text()
    form = _SuggestionForm()
    form.feed(html)
    assert form.action == ("/finder" if language == "de" else f"/finder?lang={language}")
    assert form.hidden == {"csrf_token": token, "house_number": "1", "postcode": "28195", "under_25": "yes"}
    suggested = [b for b in form.buttons if b.get("value") == "Sögestraße"]
    assert len(suggested) == 1, form.buttons
    button = suggested[0]
    assert button["type"] == "submit" and button["name"] == "street" and button["text"] == "Sögestraße"
    # A German street name on an English page is read with a German voice (WCAG 3.1.2).
    assert button.get("lang") == (None if language.startswith("de") else "de")
    # The sentence still reads as before: the street stands where the finder named it.
    sentence = re.sub(r"<[^>]+>", "", html[html.index(asked) : html.index("?", html.index(asked)) + 1])
    assert "Sögestraße" in sentence

    again = await client.post(
        form.action, data={**form.hidden, "street": button["value"], "csrf_token": token}
    )
    assert again.status == 200
    page = await again.text()
    assert found in page and '<input type="hidden" name="location" value="jba">' in page
