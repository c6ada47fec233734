"""The responsibility finder's request for one more part of the address is an error of that field (R3,
R42, WCAG 3.3.1/3.3.3): in the error summary with a link to the field, at the field, which is then no
longer "optional", in each language."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.catalog import db as catalog_db
from services.catalog.domain import street_key
from tests.web.conftest import Stack
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
    name = "Zweiorteweg"
    async with pools["catalog"].acquire() as conn:
        ids = [
            await catalog_db.insert_street(
                conn,
                {
                    "street": name,
                    "street_key": street_key(name),
                    "postcode": postcode,
                    "district": district,
                    "location_id": location_id,
                },
            )
            for postcode, district, location_id in (
                ("28195", "Mitte", "mitte"),
                ("28205", "Hemelingen", "ost"),
            )
        ]
    yield name
    async with pools["catalog"].acquire() as conn:
        await catalog_db.delete_streets(conn, ids)


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
