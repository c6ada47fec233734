"""Every link in the customer mails works (R41, R43): booked, moved and cancelled through the public API in
German, Leichte Sprache and English, each link of each mail (plain text and HTML) is opened against the
running gateway and opens a page in the customer's language, also in a browser that last showed the
pages in another language (a shared computer, the service centre's: the `otv_lang` cookie)."""

from __future__ import annotations

import html as markup
import re
from typing import Any

import aiohttp
import pytest

from tests.web.conftest import Stack, unique_customer_number, unique_email
from tools.mailsink import StoredMessage

pytestmark = pytest.mark.timeout(120)

_HREF = re.compile(r'href="([^"]+)"')
_URL = re.compile(r"https?://\S+")


def links_of(message: StoredMessage) -> tuple[set[str], set[str]]:
    """The web links of the plain-text part and of the HTML part."""
    text = html = ""
    for part in message.leaf_parts():
        if part.get_content_type() == "text/plain":
            text = str(part.get_content())
        elif part.get_content_type() == "text/html":
            html = str(part.get_content())
    in_html = {markup.unescape(h) for h in _HREF.findall(html) if h.startswith("http")}
    return set(_URL.findall(text)), in_html


async def open_link(url: str, remembered: str) -> tuple[int, str]:
    """A fresh browser per link, which remembers the language `remembered` from an earlier visit."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        http.get(url, headers={"Cookie": f"otv_lang={remembered}"}) as answer,
    ):
        return answer.status, await answer.text()


@pytest.mark.req("R41")
@pytest.mark.req("R43")
@pytest.mark.parametrize("language", ["de", "de-x-ls", "en"])
async def test_every_link_in_the_mails_opens_a_page_in_the_customers_language(
    stack: Stack, language: str
) -> None:
    email = unique_email(f"links-{language}")
    async with aiohttp.ClientSession(base_url=stack.gateway_url) as http:
        async with http.get(
            "/api/v1/locations/mitte/availability", params={"concern": "veraenderung", "mode": "in_person"}
        ) as answer:
            slots: list[dict[str, Any]] = (await answer.json())["slots"]
        body = {
            "location_id": "mitte",
            "concern_id": "veraenderung",
            "start": slots[-3]["start"],
            "mode": "in_person",
            "language": language,
            "customer": {
                "first_name": "Lena",
                "last_name": "Link",
                "email": email,
                "customer_number": unique_customer_number(),
            },
        }
        async with http.post("/api/v1/appointments", json=body) as answer:
            assert answer.status == 201, await answer.text()
            appointment = await answer.json()
        await stack.mail_to(email, 1)  # each mail out before the next change (it would supersede it)
        token = appointment["manage_url"].split("token=", 1)[1].split("&")[0]
        headers = {"X-Manage-Token": token}
        async with http.post(
            f"/api/v1/appointments/{appointment['id']}/reschedule",
            json={"start": slots[-6]["start"]},
            headers=headers,
        ) as answer:
            assert answer.status == 200, await answer.text()
        await stack.mail_to(email, 2)
        async with http.post(
            f"/api/v1/appointments/{appointment['id']}/cancel", json={}, headers=headers
        ) as answer:
            assert answer.status == 200, await answer.text()
    mails = await stack.mail_to(email, 3)

    opened: set[str] = set()
    for mail in mails:
        in_text, in_html = links_of(mail)
        assert in_text == in_html, mail.subject  # the two parts of a mail point to the same pages
        assert in_text, mail.subject
        for url in sorted(in_text - opened):
            assert url.startswith(stack.gateway_url + "/"), url  # absolute, to the customer pages
            status, page = await open_link(url, remembered="de" if language == "en" else "en")
            assert status == 200, (url, status)
            assert f'<html lang="{language}"' in page, url
            opened.add(url)
    # The manage page (from the confirmation and the move), the start page (to book again after the
    # cancellation) and the privacy notice.
    assert any("/manage/" in url for url in opened)
    assert any(url.split("?")[0] == stack.gateway_url + "/" for url in opened)
    assert any("/privacy" in url for url in opened)
