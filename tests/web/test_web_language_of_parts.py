"""German terms that the English pages keep on purpose (people know them from their letters) are marked
`lang="de"`, so that a screen reader reads them with a German voice (R43, WCAG 3.1.2); the German and the
Leichte-Sprache pages place the same terms without a mark (their own spelling in Leichte Sprache)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services.gateway.web.pages import SEALER
from tests.web.conftest import Stack
from tests.web.test_web_security_and_bot_defence import first_slot, gateway_client

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[TestClient[Any, Any]]:
    started = await gateway_client(stack)
    yield started
    await started.close()


async def pages(client: TestClient[Any, Any], language: str) -> dict[str, str]:
    slot = await first_slot(client)
    state = client.app[SEALER].seal(
        {
            "loc": "mitte",
            "concern": "veraenderung",
            "mode": "in_person",
            "start": slot["start"],
            "end": slot["end"],
        }
    )
    waiting = client.app[SEALER].seal({"loc": "mitte", "concern": "veraenderung", "mode": "in_person"})
    found = {}
    for name, path in (
        ("details", f"/details?s={state}"),
        ("waiting", f"/waiting-list/join?s={waiting}"),
        ("start", "/"),
        ("privacy", "/privacy"),
        ("accessibility", "/accessibility"),
    ):
        answer = await client.get(path, params={"lang": language})
        assert answer.status == 200, name
        found[name] = await answer.text()
    return found


@pytest.mark.req("R43")
async def test_german_terms_in_english_pages_are_marked_as_german(client: TestClient[Any, Any]) -> None:
    english = await pages(client, "en")
    for form in ("details", "waiting"):  # the booking's and the waiting list's
        assert re.search(
            r'<label for="field-customer_number">Customer number \(<span lang="de">Kundennummer</span>\)',
            english[form],
        )
        assert re.search(
            r'<label for="field-household_number">Household number \(<span lang="de">BG-Nummer</span>\)',
            english[form],
        )
    assert english["start"].count('<span lang="de">Jugendberufsagentur</span>') == 2
    assert 'household number (<span lang="de">BG-Nummer</span>).' in english["privacy"]
    assert 'authority: <span lang="de">Die Bundesbeauftragte für den Datenschutz' in english["privacy"]
    assert (
        'body (<span lang="de">Schlichtungsstelle nach dem Behindertengleichstellungsgesetz</span>, BGG)'
        in english["accessibility"]
    )
    assert (
        '<span lang="de">Schlichtungsstelle nach dem Behindertengleichstellungsgesetz bei dem'
        in english["accessibility"]
    )
    assert "</span>, phone 030 18 527 2805" in english["accessibility"]


@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("language", "customer_number", "youth_office"),
    [
        ("de", "Kundennummer", "Jugendberufsagentur (JBA)"),
        ("de-x-ls", "Kunden·nummer", "Jugend·berufs·agentur für"),
    ],
)
async def test_german_pages_place_the_terms_unmarked_in_their_own_spelling(
    client: TestClient[Any, Any], language: str, customer_number: str, youth_office: str
) -> None:
    german = await pages(client, language)
    assert all('<span lang="de">' not in page for page in german.values())
    assert f'<label for="field-customer_number">{customer_number}' in german["details"]
    assert youth_office in german["start"] and "„Jugendberufsagentur“" in german["start"]
    assert "Schlichtungs" in german["accessibility"] and "030 18 527 2805" in german["accessibility"]
