"""The demo data of Jobcenter Bremen against directive 3.2/3.3, read from the directive's own text:
every mandatory concern at every location (R15), windows (R17), evening slots (R12), the month-change
block (R18), durations (R16), documents (R11), sensitive concerns (R52), and no policy finding (R21)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.catalog import service
from services.catalog.demo_data import (
    CONCERNS,
    DIRECTIVE_3_2,
    DIRECTIVE_3_2_OPTIONAL,
    DIRECTIVE_SECTION_KINDS,
    LOCATIONS,
)
from services.catalog.domain import COMPATIBLE_KINDS, MANDATORY_CONCERNS
from shared.clock import ManualClock
from shared.events.catalog import GroupKind, LocationConfiguredV1
from tests.catalog.conftest import NOW, snapshot_events

Client = TestClient[web.Request, web.Application]

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed"


def directive_text() -> str:
    for path in sorted(SEED.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        if "3.2 Anliegensarten" in text:
            return text
    raise AssertionError(f"the directive is not in {SEED}")


def directive_3_2() -> tuple[dict[str, list[str]], list[str]]:
    """Section 3.2 of the directive: the mandatory concerns per heading, and the optional ones."""
    lines = [line.strip() for line in directive_text().splitlines()]
    start = lines.index("3.2 Anliegensarten")  # the heading, not the table of contents' line
    end = lines.index("3.3 Zeitfenster", start)
    section = lines[start:end]
    mandatory: dict[str, list[str]] = {}
    optional: list[str] = []
    heading: str | None = None
    in_optional = False
    for line in section:
        if "Weitere Anliegensarten" in line:  # "... Weitere Anliegensarten können folgende sein"
            heading = None
            in_optional = True
        elif line.startswith("Im Auswahlfeld"):
            in_optional = False
        elif re.fullmatch(r"[A-ZÄÖÜ][\wäöüß ]+:", line):
            heading = line[:-1]
            mandatory[heading] = []
        elif line.startswith("- "):
            item = line[2:].strip()
            if in_optional:
                optional.append(item)
            elif heading is not None:
                mandatory[heading].append(item)
    return mandatory, optional


def test_the_data_file_lists_the_concerns_of_directive_3_2_word_for_word() -> None:
    mandatory, optional = directive_3_2()
    assert mandatory == DIRECTIVE_3_2
    assert optional == DIRECTIVE_3_2_OPTIONAL
    assert len(mandatory["Leistungsgewährung"]) == 11 and len(optional) == 16


@pytest.mark.req("R15")
@pytest.mark.req("R14")
def test_the_catalogue_holds_every_concern_of_3_2_and_the_mandatory_ids_match_it() -> None:
    mandatory, optional = directive_3_2()
    by_name = {c["name"]["de"]: c for c in CONCERNS}
    for name in [n for names in mandatory.values() for n in names] + optional:
        assert name in by_name, name
    for heading, names in mandatory.items():
        kind = GroupKind(DIRECTIVE_SECTION_KINDS[heading])
        assert {by_name[n]["id"] for n in names} == set(MANDATORY_CONCERNS[kind]), heading


@pytest.fixture(scope="module")
async def snapshots(demo_module: Client, pools: dict[str, asyncpg.Pool]) -> dict[str, LocationConfiguredV1]:
    events = await snapshot_events(pools["catalog"])
    latest: dict[str, LocationConfiguredV1] = {}
    for envelope in events:
        snapshot = LocationConfiguredV1.model_validate(envelope["data"])
        latest[snapshot.location_id] = snapshot
    return latest


@pytest.mark.req("R15")
@pytest.mark.req("R13")
async def test_every_mandatory_concern_of_the_directive_is_offered_at_every_demo_location(
    snapshots: dict[str, LocationConfiguredV1], demo_module: Client
) -> None:
    mandatory, _ = directive_3_2()
    assert set(snapshots) == {"mitte", "nord", "ost", "sued", "west", "jba"}
    for location_id, snapshot in snapshots.items():
        kinds = {g.id: g.kind for g in snapshot.groups}
        offered = {o.name["de"]: kinds[o.group_id] for o in snapshot.concerns}
        has_jba = GroupKind.JBA_ENTRANCE_ZONE in kinds.values()
        for heading, names in mandatory.items():
            kind = GroupKind(DIRECTIVE_SECTION_KINDS[heading])
            if kind is GroupKind.JBA_ENTRANCE_ZONE and not has_jba:
                continue
            if kind is GroupKind.ENTRANCE_ZONE and has_jba:
                # the JBA's entrance zone is its entrance zone (it offers these too)
                kind = GroupKind.JBA_ENTRANCE_ZONE
            for name in names:
                assert name in offered, (location_id, name)
                assert offered[name] in COMPATIBLE_KINDS[kind], (location_id, name, offered[name])
        # and the public API lists them
        response = await demo_module.get(f"/api/v1/locations/{location_id}/concerns")
        names_listed = {c["name"] for c in await response.json()}
        assert {n for names in mandatory.values() for n in names} <= names_listed


async def test_optional_concerns_are_offered_somewhere_and_not_everywhere(
    snapshots: dict[str, LocationConfiguredV1],
) -> None:
    _, optional = directive_3_2()
    counts = Counter(o.name["de"] for s in snapshots.values() for o in s.concerns if o.name["de"] in optional)
    assert len(counts) >= 10
    assert any(n < len(snapshots) for n in counts.values())


@pytest.mark.req("R13")
async def test_every_location_has_an_entrance_zone_and_benefits_teams_with_service_points(
    snapshots: dict[str, LocationConfiguredV1],
) -> None:
    for location_id, snapshot in snapshots.items():
        kinds = Counter(g.kind for g in snapshot.groups)
        assert kinds[GroupKind.ENTRANCE_ZONE] + kinds[GroupKind.JBA_ENTRANCE_ZONE] == 1, location_id
        assert kinds[GroupKind.BENEFITS_TEAM] >= 1, location_id
        assert all(2 <= g.service_points <= 12 for g in snapshot.groups), location_id
        for window in snapshot.windows:
            group = next(g for g in snapshot.groups if g.id == window.group_id)
            assert 1 <= window.service_points <= group.service_points
    assert snapshots["jba"].groups[0].kind is GroupKind.JBA_ENTRANCE_ZONE


@pytest.mark.req("R17")
@pytest.mark.req("R12")
async def test_every_location_has_four_days_and_an_evening_until_18_reserved_for_working_people(
    snapshots: dict[str, LocationConfiguredV1],
) -> None:
    for location_id, snapshot in snapshots.items():
        assert len({w.weekday for w in snapshot.windows}) >= 4, location_id
        evenings = [w for w in snapshot.windows if w.evening]
        assert evenings, location_id
        assert all(w.end.hour == 18 and w.start.hour >= 16 for w in evenings)
        assert not any(w.end.hour >= 18 for w in snapshot.windows if not w.evening)


@pytest.mark.req("R18")
async def test_one_location_blocks_the_turn_of_the_month_for_at_most_three_days(
    snapshots: dict[str, LocationConfiguredV1],
) -> None:
    blocks = {k: s.month_change_block for k, s in snapshots.items() if s.month_change_block is not None}
    assert list(blocks) == ["west"]
    assert blocks["west"].last_days + blocks["west"].first_days <= 3
    emergency = {o.concern_id for o in snapshots["west"].concerns if o.emergency}
    assert emergency == {"notlage", "energiesperre"}


@pytest.mark.req("R16")
async def test_durations_are_set_per_concern_and_location_between_10_and_60_minutes(
    snapshots: dict[str, LocationConfiguredV1],
) -> None:
    durations = {(k, o.concern_id): o.duration_minutes for k, s in snapshots.items() for o in s.concerns}
    assert all(10 <= d <= 60 for d in durations.values())
    assert durations[("mitte", "neuantrag")] == 60 and durations[("mitte", "arbeitsaufnahme")] == 10
    assert durations[("nord", "neuantrag")] != durations[("mitte", "neuantrag")]


@pytest.mark.req("R11")
async def test_concerns_carry_info_links_and_the_documents_the_directive_names(
    snapshots: dict[str, LocationConfiguredV1],
) -> None:
    documents = {d["de"] for s in snapshots.values() for o in s.concerns for d in o.documents}
    for needed in ("Geburtsurkunde", "Mutterpass", "Nebenkostenabrechnung", "Gelber oder roter Zettel"):
        assert any(needed in d for d in documents), needed
    for concern in CONCERNS:
        for document in concern.get("documents", []):
            assert set(document) == {"de", "en", "de-x-ls"}
        assert set(concern["name"]) == {"de", "en", "de-x-ls"}
    neuantrag = next(o for o in snapshots["mitte"].concerns if o.concern_id == "neuantrag")
    assert neuantrag.links and neuantrag.links[0].url.startswith("https://")
    assert "Wochen" in neuantrag.info["de"]


@pytest.mark.req("R52")
async def test_the_sensitive_concerns_of_r52_are_flagged_in_every_snapshot(
    snapshots: dict[str, LocationConfiguredV1],
) -> None:
    sensitive = {c["id"] for c in CONCERNS if c.get("sensitive")}
    assert {"schwangerschaft", "gesundheit", "energiesperre", "p-konto"} <= sensitive
    for snapshot in snapshots.values():
        for offer in snapshot.concerns:
            assert offer.sensitive == (offer.concern_id in sensitive)


@pytest.mark.req("R21")
async def test_the_policy_check_finds_nothing_on_the_demo_data(demo_module: Client) -> None:
    response = await demo_module.get("/api/v1/admin/policy")
    body = await response.json()
    assert body["complies"] is True, body
    assert {r["location_id"] for r in body["locations"]} == {"mitte", "nord", "ost", "sued", "west", "jba"}


async def test_the_public_location_list_is_the_demo_offices_in_order(demo_module: Client) -> None:
    response = await demo_module.get("/api/v1/locations")
    body: list[dict[str, Any]] = await response.json()
    assert [b["id"] for b in body] == [loc["id"] for loc in LOCATIONS]
    for item in body:
        assert set(item) >= {"id", "name", "address", "phone_hotline"}
        assert re.fullmatch(r"[a-z]{2,6}", item["id"])
        assert item["address"].endswith("Bremen")


@pytest.mark.req("R43")
async def test_concerns_asked_for_in_a_language_the_catalogue_has_no_texts_for_come_in_german(
    demo_module: Client,
) -> None:
    """The pages may offer a language as content (a Turkish catalogue): the concern list answers in German
    rather than refusing the page, and says so; a regional English gets the English texts."""
    german = await (await demo_module.get("/api/v1/locations/mitte/concerns", params={"lang": "de"})).json()
    response = await demo_module.get("/api/v1/locations/mitte/concerns", params={"lang": "tr"})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Language"] == "de"
    assert await response.json() == german
    british = await demo_module.get("/api/v1/locations/mitte/concerns", params={"lang": "en-GB"})
    assert response.status == 200
    assert british.headers["Content-Language"] == "en"
    names = {c["id"]: c["name"] for c in await british.json()}
    assert names["veraenderung"] == "Report a change"
    refused = await demo_module.get("/api/v1/locations/mitte/concerns", params={"lang": "Türkçe"})
    assert refused.status == 422


@pytest.mark.req("R13")
async def test_demo_addresses_are_marked_unverified_unless_a_source_names_them() -> None:
    for location in LOCATIONS:
        assert location["verified"] is False
        assert "address_source" in location


async def test_location_details_for_admins_show_everything(
    demo_module: Client, pools: dict[str, asyncpg.Pool]
) -> None:
    response = await demo_module.get("/api/v1/admin/locations/west")
    body = await response.json()
    assert body["month_change_block"] == {"last_days": 1, "first_days": 2}
    assert body["lead_time"]["cutoff"] == "06:00"
    assert body["policy_findings"] == []
    assert len(body["groups"]) == 3 and body["windows"] and body["concerns"] and body["closures"]
    report = await service.policy_report(pools["catalog"], ManualClock(NOW), location_id="west")
    assert report[0]["complies"]


async def test_admins_see_the_public_holidays_of_bremen_with_reformationstag(demo_module: Client) -> None:
    response = await demo_module.get("/api/v1/admin/holidays", params={"year": "2026"})
    holidays = {h["date"]: h["name"] for h in await response.json()}
    assert "2026-10-31" in holidays and "Reformation" in holidays["2026-10-31"]
    assert "2026-12-25" in holidays and "2026-11-25" not in holidays
    assert (await demo_module.get("/api/v1/admin/holidays", params={"year": "x"})).status == 422


@pytest.mark.req("R11")
@pytest.mark.req("R43")
def test_an_explanation_in_a_concerns_info_explains_a_word_of_its_name() -> None:
    """ "BG heißt ..." under "Jemand zieht bei mir ein oder aus" explains a word the reader never met: each
    language names the concern in its own words, and its info explains those words, not the German ones."""
    explains = re.compile(r"^(\S+) (heißt|means)\b")
    wrong = []
    for concern in CONCERNS:
        for language, info in (concern.get("info") or {}).items():
            found = explains.match(info)
            if found and found.group(1).lower() not in concern["name"][language].lower():
                wrong.append(f"{concern['id']} ({language}): {info}")
    assert not wrong, wrong
