"""Leichte Sprache says what a page shows, in the words it uses everywhere else (R43): the finder's
result is a result (it may be "not found" or "another jobcenter"), the current appointment on the
reschedule page is the old one, "in person" is "Sie kommen zu uns", and the BfDI is explained."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.web.conftest import Stack
from tests.web.test_web_catalogues import leichte_sprache
from tests.web.test_web_security_and_bot_defence import csrf_of, gateway_client

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[TestClient[Any, Any]]:
    started = await gateway_client(stack)
    yield started
    await started.close()


@pytest.mark.req("R43")
def test_leichte_sprache_names_the_old_appointment_and_coming_to_us_plainly() -> None:
    texts = leichte_sprache()
    assert texts["Your appointment now"] == "Ihr alter Termin"  # not "bis jetzt": so far, until now
    assert texts["Your new appointment"] == "Ihr neuer Termin"
    assert "vor Ort" not in texts["only in person"] and "zu uns kommen" in texts["only in person"]
    assert not [key for key, text in texts.items() if "vor Ort" in text]


@pytest.mark.req("R43")
async def test_the_leichte_sprache_finder_result_is_called_the_result_also_when_nothing_was_found(
    client: TestClient[Any, Any],
) -> None:
    token = csrf_of(await (await client.get("/?lang=de-x-ls")).text())
    answer = await client.post(
        "/finder?lang=de-x-ls",
        data={"csrf_token": token, "street": "Gibtsnichtweg", "house_number": "1", "postcode": "28195"},
    )
    html = await answer.text()
    assert '<h2 id="finder-result-title" tabindex="-1" data-focus-on-load>Das Ergebnis</h2>' in html
    assert "Wir haben die Adresse nicht gefunden." in html


@pytest.mark.req("R43")
async def test_the_leichte_sprache_privacy_notice_explains_the_bfdi(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/privacy?lang=de-x-ls")).text()
    assert "(kurz: BfDI)" in html and "Regeln für den Daten·schutz" in html
    assert "Graurheindorfer Straße 153, 53117 Bonn" in html
