"""The hotline in the notices the customer pages build in code (a page that is not there, a method a page
does not take, an invalid link, the booking out of service, the finder's answers) is the same link a
phone dials as in the templates: a `tel:` link where the number has a global form, the number as text
otherwise (R42, shared/phone.py), and never a link inside the error summary's link to a field."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import free_port
from tests.web.conftest import Stack, streets_of
from tests.web.test_web_security_and_bot_defence import csrf_of, gateway_client

pytestmark = pytest.mark.timeout(60)

DIALLED = '<a href="tel:+494215660">0421 566-0</a>'


def main_of(html: str) -> str:
    return html[html.index('<main id="main"') : html.index("</main>")]


async def notices(client: TestClient[Any, Any]) -> dict[str, str]:
    """The main part of each page whose notice is built in code, in German."""
    pages = {
        "not found": await client.get("/gibt-es-nicht", params={"lang": "de"}),
        "wrong method": await client.put("/accessibility", params={"lang": "de"}),
        "invalid link": await client.get(
            "/manage/00000000-0000-4000-8000-000000000000", params={"lang": "de", "token": "x" * 40}
        ),
    }
    assert [r.status for r in pages.values()] == [404, 405, 404]
    return {name: main_of(await response.text()) for name, response in pages.items()}


@pytest.mark.req("R42")
@pytest.mark.parametrize(
    ("hotline", "shown"),
    [("0421 566-0", DIALLED), ("+49 (0)421 361-0", '<a href="tel:+494213610">+49 (0)421 361-0</a>')],
)
async def test_the_hotline_in_a_notice_built_in_code_dials_as_a_global_number(
    stack: Stack, hotline: str, shown: str
) -> None:
    client = await gateway_client(stack, hotline=hotline)
    try:
        for name, main in (await notices(client)).items():
            assert f"rufen Sie uns an: {shown}." in main, name
    finally:
        await client.close()


@pytest.mark.req("R42")
async def test_a_hotline_without_a_global_form_is_text_in_a_notice(stack: Stack) -> None:
    client = await gateway_client(stack, hotline="115 & Co")
    try:
        for name, main in (await notices(client)).items():
            assert "rufen Sie uns an: 115 &amp; Co." in main and "tel:" not in main, name
    finally:
        await client.close()


@pytest.mark.req("R42")
async def test_the_hotline_on_the_page_of_an_unavailable_booking_dials(stack: Stack) -> None:
    client = await gateway_client(stack, catalog_urls=f"http://127.0.0.1:{free_port()}")
    try:
        answer = await client.get("/", params={"lang": "de"})
        assert answer.status == 503
        assert f"Wenn es eilig ist, rufen Sie uns an: {DIALLED}." in main_of(await answer.text())
    finally:
        await client.close()


@pytest.fixture
async def split_street(pools: dict[str, asyncpg.Pool]) -> AsyncIterator[str]:
    """A street of 28195 split between two locations by house number: 1-9 Mitte, 11-19 Ost."""
    parts = [
        {"postcode": "28195", "first_number": first, "last_number": last, "location_id": location_id}
        for first, last, location_id in ((1, 9, "mitte"), (11, 19, "ost"))
    ]
    async with streets_of(pools["catalog"], "Geteiltweg", parts) as name:
        yield name


@pytest.mark.req("R3")
@pytest.mark.req("R42")
async def test_the_hotline_in_the_finders_answer_dials_and_stays_out_of_the_summarys_link(
    stack: Stack, split_street: str
) -> None:
    client = await gateway_client(stack)
    try:
        token = csrf_of(await (await client.get("/", params={"lang": "de"})).text())
        unknown = await client.post(
            "/finder?lang=de",
            data={"csrf_token": token, "street": "Gibtsnichtweg", "house_number": "1", "postcode": "28195"},
        )
        html = main_of(await unknown.text())
        result = html[html.index('class="panel finder-result"') :]
        assert f"rufen Sie das Service-Center an: {DIALLED}." in result

        # A number the street's places do not cover: the message is an error of the house number field.
        not_covered = await client.post(
            "/finder?lang=de",
            data={"csrf_token": token, "street": split_street, "house_number": "50", "postcode": "28195"},
        )
        assert not_covered.status == 422
        html = main_of(await not_covered.text())
        summary = html[html.index('class="error-summary"') : html.index("</div>")]
        # Links are not nested: the summary's link to the field names the number as text.
        assert "tel:" not in summary
        assert re.search(r'<a href="#field-house_number">[^<]*Service-Center an: 0421 566-0\.', summary)
        error = re.search(r'<p class="field-error" id="house_number-error">.*?</p>', html, re.S)
        assert error and f"Service-Center an: {DIALLED}." in error.group(0)
        assert f"Service-Center an: {DIALLED}." in html[html.index('class="panel finder-result"') :]
    finally:
        await client.close()
