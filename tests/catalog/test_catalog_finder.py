"""The responsibility finder over the demo data (R3): every location is found from one of its streets,
other jobcenters come with their hotline, an unknown street says what to do, bad input is a clear 422."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.catalog import db as catalog_db
from services.catalog.app import create_app
from services.catalog.demo_data import OTHER_JOBCENTERS
from services.catalog.demo_streets import DISTRICTS
from services.catalog.domain import street_key
from services.catalog.texts import FINDER_MESSAGES
from shared.clock import ManualClock
from tests.catalog.conftest import NOW, catalog_settings

Client = TestClient[web.Request, web.Application]


async def find(client: Client, **params: str) -> dict[str, Any]:
    response = await client.get("/api/v1/finder", params=params)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


@pytest.mark.req("R3")
@pytest.mark.parametrize(
    ("street", "house_number", "location_id"),
    [
        ("Sögestraße", "12", "mitte"),
        ("Gerhard-Rohlfs-Straße", "3", "nord"),
        ("Schwachhauser Heerstraße", "100", "ost"),
        ("Pappelstraße", "7a", "sued"),
        ("Waller Heerstraße", "", "west"),
    ],
)
async def test_a_street_of_each_office_finds_that_office(
    demo_module: Client, street: str, house_number: str, location_id: str
) -> None:
    body = await find(demo_module, street=street, house_number=house_number)
    assert body["result"] == "location"
    assert body["location"]["id"] == location_id
    assert body["location"]["address"] and body["location"]["phone_hotline"]
    assert body["location"]["name"] in body["message"]
    assert body["youth_hint"]["location"]["id"] == "jba"


@pytest.mark.req("R3")
async def test_a_customer_under_25_is_sent_to_the_jugendberufsagentur(demo_module: Client) -> None:
    body = await find(demo_module, street="Sögestraße", under_25="true")
    assert body["result"] == "location"
    assert body["location"]["id"] == "jba"
    assert "Jugendberufsagentur" in body["message"]
    assert "youth_hint" not in body


@pytest.mark.req("R3")
async def test_spelling_variants_of_a_street_are_found(demo_module: Client) -> None:
    for spelling in (
        "bürgermeister smidt str.",
        "Buergermeister-Smidt-Strasse",
        "  BÜRGERMEISTER-SMIDT-STRASSE ",
    ):
        body = await find(demo_module, street=spelling)
        assert body["result"] == "location", spelling
        assert body["location"]["id"] == "mitte"


@pytest.mark.req("R3")
async def test_a_bremerhaven_address_gets_the_other_jobcenter_and_its_hotline(demo_module: Client) -> None:
    # The Bürgermeister-Smidt-Straße exists in Bremen and in Bremerhaven: the postcode decides.
    body = await find(demo_module, street="Bürgermeister-Smidt-Straße", house_number="10", postcode="27568")
    assert body["result"] == "other_jobcenter"
    assert body["jobcenter"]["name"] == "Jobcenter Bremerhaven"
    assert body["hotline"] == "0471 1428-450"
    assert "0471 1428-450" in body["message"] and "Bremerhaven" in body["message"]
    assert "location" not in body
    # a street only Bremerhaven has, typed without a postcode
    without_postcode = await find(demo_module, street="Hinrich-Schmalfeld-Straße")
    assert without_postcode["result"] == "other_jobcenter"
    assert without_postcode["hotline"] == "0471 1428-450"


@pytest.mark.req("R3")
@pytest.mark.parametrize(
    ("postcode", "municipality"),
    [
        (p, m)
        for jobcenter in OTHER_JOBCENTERS
        for p, m in jobcenter["postcodes"].items()
        if m in {"Delmenhorst", "Lilienthal", "Stuhr", "Weyhe", "Achim", "Oyten", "Ritterhude", "Schwanewede"}
    ][:12],
)
async def test_neighbouring_municipalities_are_other_jobcenters(
    demo_module: Client, postcode: str, municipality: str
) -> None:
    body = await find(demo_module, street="Bahnhofstraße", house_number="1", postcode=postcode)
    assert body["result"] == "other_jobcenter"
    assert body["hotline"]
    assert municipality in body["message"]


@pytest.mark.req("R3")
async def test_an_unknown_street_says_unknown_and_what_to_do(demo_module: Client) -> None:
    body = await find(demo_module, street="Gibtesnichtweg", house_number="5")
    assert body["result"] == "unknown"
    assert body["reason"] == "unknown_street"
    assert body["hotline"]
    assert "nicht gefunden" in body["message"] and body["hotline"] in body["message"]
    assert "location" not in body


@pytest.mark.req("R3")
async def test_a_misspelt_street_gets_suggestions(demo_module: Client) -> None:
    body = await find(demo_module, street="Sögestrase")
    assert body["result"] == "unknown"
    assert "Sögestraße" in body["suggestions"]
    assert "Sögestraße" in body["message"]


@pytest.mark.req("R3")
async def test_a_split_street_needs_the_house_number_and_then_decides_by_range(demo_module: Client) -> None:
    undecided = await find(demo_module, street="Stader Straße")
    assert undecided["result"] == "unknown"
    assert undecided["missing"] == ["house_number"]
    assert "Hausnummer" in undecided["message"]
    low = await find(demo_module, street="Stader Straße", house_number="12")
    assert low["location"]["id"] == "mitte"
    high = await find(demo_module, street="Stader Straße", house_number="112")
    assert high["location"]["id"] == "ost"


@pytest.mark.req("R3")
async def test_a_postcode_outside_bremen_and_outside_the_table_is_not_ours(demo_module: Client) -> None:
    body = await find(demo_module, street="Sögestraße", postcode="20095")
    assert body["result"] == "unknown"
    assert body["reason"] == "outside_area"
    assert "nicht zur Stadt Bremen" in body["message"]
    assert "youth_hint" not in body  # Bremen's youth agency is not responsible outside Bremen either


@pytest.mark.req("R3")
async def test_a_wrong_bremen_postcode_does_not_hide_the_street(demo_module: Client) -> None:
    body = await find(demo_module, street="Sögestraße", postcode="28309")
    assert body["result"] == "location"
    assert body["location"]["id"] == "mitte"


@pytest.mark.req("R3")
async def test_the_finder_speaks_english_and_leichte_sprache(demo_module: Client) -> None:
    english = await find(demo_module, street="Sögestraße", lang="en")
    assert english["message"].startswith("Your address is served by")
    easy = await find(demo_module, street="Sögestraße", lang="de-x-ls")
    assert "Die Adresse ist" in easy["message"]
    response = await demo_module.get(
        "/api/v1/finder",
        params={"street": "Sögestraße"},
        headers={"Accept-Language": "en-GB,en;q=0.9,de;q=0.5"},
    )
    assert response.headers["Content-Language"] == "en"
    assert (await response.json())["message"].startswith("Your address")


BAD_INPUTS: dict[str, tuple[dict[str, str], str]] = {
    "empty street": ({"street": ""}, "street"),
    "no street at all": ({"house_number": "1"}, "street"),
    "only spaces": ({"street": "   "}, "street"),
    "10,000 characters": ({"street": "a" * 10_000}, "street"),
    "10,000 umlauts": ({"street": "ä" * 10_000}, "street"),
    "sql": ({"street": "Am Wall'; DROP TABLE finder_streets; --"}, "street"),
    "sql or": ({"street": "x' OR '1'='1"}, "street"),
    "html": ({"street": "<script>alert(1)</script>"}, "street"),
    "html entity": ({"street": "Am Wall &lt;b&gt;"}, "street"),
    "null byte": ({"street": "Am Wall\x00"}, "street"),
    "bad house number": ({"street": "Am Wall", "house_number": "1; DROP"}, "house_number"),
    "long house number": ({"street": "Am Wall", "house_number": "1" * 10_000}, "house_number"),
    "bad postcode": ({"street": "Am Wall", "postcode": "2819"}, "postcode"),
    "html postcode": ({"street": "Am Wall", "postcode": "<b>28195</b>"}, "postcode"),
    "bad language": ({"street": "Am Wall", "lang": "english please"}, "lang"),
}


@pytest.mark.req("R3")
@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_is_a_clear_422_naming_the_field_never_a_500(demo_module: Client, case: str) -> None:
    params, field = BAD_INPUTS[case]
    response = await demo_module.get("/api/v1/finder", params=params)
    assert response.status == 422, await response.text()
    body = await response.json()
    assert body["error"]["code"] == "validation_error"
    assert field in {d["field"] for d in body["error"]["details"]}
    text = await response.text()
    assert "<script>" not in text and "DROP TABLE" not in text  # the input is not echoed
    assert "pattern" not in text  # a sentence a person understands, not a regular expression


async def test_the_finder_table_covers_every_stadtteil_of_bremen_with_several_streets() -> None:
    stadtteile = {
        "Mitte", "Häfen", "Neustadt", "Obervieland", "Huchting", "Woltmershausen", "Seehausen", "Strom",
        "Östliche Vorstadt", "Schwachhausen", "Vahr", "Horn-Lehe", "Borgfeld", "Oberneuland", "Osterholz",
        "Hemelingen", "Findorff", "Walle", "Gröpelingen", "Blockland", "Burglesum", "Vegesack", "Blumenthal",
    }  # fmt: skip
    assert set(DISTRICTS) == stadtteile
    for district, (location_id, _postcode, streets) in DISTRICTS.items():
        assert location_id in {"mitte", "nord", "ost", "sued", "west"}
        assert len(streets) >= 2, district
    assert sum(len(streets) for _, _, streets in DISTRICTS.values()) >= 200


@pytest.mark.req("R3")
async def test_one_street_of_every_stadtteil_is_found(demo_module: Client) -> None:
    for district, (location_id, _postcode, streets) in DISTRICTS.items():
        # the first street (the last ones of two Stadtteile are the split Stader Straße)
        spec = streets[0] if isinstance(streets[0], str) else streets[0][0]
        body = await find(demo_module, street=spec)
        assert body["result"] == "location", (district, body)
        assert body["location"]["id"] == location_id
        assert district in body["district"]


@pytest.mark.req("R43")
def test_the_finder_in_leichte_sprache_says_standort_as_the_pages_do() -> None:
    easy = {key: texts["de-x-ls"] for key, texts in FINDER_MESSAGES.items()}
    assert not [key for key, text in easy.items() if "Stelle" in text]  # the pages say "Standort"
    assert easy["found"].startswith(
        "Sie wohnen in dieser Straße. Dann ist dieser Standort für Sie da: {name}."
    )


@pytest.mark.req("R3")
async def test_where_the_finder_cannot_help_it_names_the_hotline_the_pages_and_mails_name(
    demo_pool: Any,
) -> None:
    """OTV_HOTLINE is the service centre's number on the pages and in the mails; the finder's API, which
    the service centre's own systems use too, once named the first location's number instead."""
    settings = catalog_settings(hotline="0421 999-1234")
    async with TestClient(TestServer(create_app(settings, clock=ManualClock(NOW)))) as client:
        body = await find(client, street="Gibtesnichtweg", house_number="5")
    assert body["result"] == "unknown" and body["hotline"] == "0421 999-1234"
    assert "0421 999-1234" in body["message"]


def test_the_finder_calls_the_place_by_the_word_of_the_pages_and_mails() -> None:
    """The pages and the mails say Standort / location; the finder said Geschäftsstelle / office."""
    for key, texts in FINDER_MESSAGES.items():
        assert "Geschäftsstelle" not in texts["de"], key
        assert "office" not in texts["en"].lower(), key


@pytest.mark.req("R3")
@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("lang", "no_appointments"),
    [
        ("de", "weder online noch am Telefon"),
        ("en", "neither online nor by phone"),
        ("de-x-ls", "Nicht im Internet und nicht am Telefon"),
    ],
)
async def test_an_inactive_location_is_said_to_take_no_appointments_and_no_caller_is_sent_to_book_by_phone(
    demo_pool: Any, lang: str, no_appointments: str
) -> None:
    """Booking refuses every channel at an inactive location, the service centre's too: the finder must
    not send the caller to the service centre for an appointment it cannot make (round in a circle)."""
    await demo_pool.execute("UPDATE locations SET active = false WHERE id = 'mitte'")
    settings = catalog_settings(hotline="0421 999-1234")
    async with TestClient(TestServer(create_app(settings, clock=ManualClock(NOW)))) as client:
        body = await find(client, street="Sögestraße", house_number="12", lang=lang)
    assert (body["result"], body["reason"]) == ("unknown", "location_inactive")
    message = body["message"]
    assert no_appointments in message and "0421 999-1234" in message
    assert "Service-Center" not in message and "service centre" not in message
    assert "Online-Termine" not in message and "online appointments" not in message


@pytest.mark.req("R3")
async def test_a_street_in_two_places_one_of_them_split_asks_for_the_postcode_not_another_number(
    demo_module: Client, pools: dict[str, asyncpg.Pool]
) -> None:
    """The same name in Mitte and in Vegesack (split there at 50): house number 10 exists in both, so the
    postcode decides; a postcode that fits neither place is said not to fit, not to be missing."""
    name = "Zweiorteweg"
    rows = (
        ("28195", "Mitte", "mitte", None, None),
        ("28757", "Vegesack", "nord", 1, 50),
        ("28757", "Vegesack", "west", 51, None),
    )
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
                    "first_number": first,
                    "last_number": last,
                },
            )
            for postcode, district, location_id, first, last in rows
        ]
    try:
        number_only = await find(demo_module, street=name, house_number="10")
        assert (number_only["result"], number_only["reason"]) == ("unknown", "needs_postcode")
        assert number_only["missing"] == ["postcode"] and "Postleitzahl" in number_only["message"]
        assert "Hausnummer" not in number_only["message"]  # the number is right
        found = await find(demo_module, street=name, house_number="10", postcode="28757")
        assert found["location"]["id"] == "nord"
        wrong = await find(demo_module, street=name, house_number="10", postcode="28199")
        assert (wrong["result"], wrong["reason"]) == ("unknown", "postcode_not_matching")
        assert "missing" not in wrong and "28199" in wrong["message"]
    finally:
        async with pools["catalog"].acquire() as conn:
            await catalog_db.delete_streets(conn, ids)
