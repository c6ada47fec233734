"""The catalog's public read API for the booking dialogue (served at the paths the gateway proxies):
`GET /api/v1/locations`, `GET /api/v1/finder`, `GET /api/v1/locations/{id}/concerns`.

Texts come in the language of `?lang=` (de, en, de-x-ls; another BCP 47 tag gets German) or else of the
Accept-Language header.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from aiohttp import web

from services.catalog import domain, finder, service
from services.catalog.config import Settings
from services.catalog.models import FinderQuery
from services.catalog.texts import WHERE, finder_message
from shared.web import POOL, SETTINGS, parse_query, path_id

routes = web.RouteTableDef()

# Bremen's postcodes (the city, not Bremerhaven): a postcode outside them and outside the table of
# other jobcenters is "not ours" rather than "street unknown".
BREMEN_POSTCODES = frozenset(
    {
        "28195", "28197", "28199", "28201", "28203", "28205", "28207", "28209", "28211", "28213",
        "28215", "28217", "28219", "28237", "28239", "28259", "28277", "28279", "28307", "28309",
        "28325", "28327", "28329", "28355", "28357", "28359", "28717", "28719", "28755", "28757",
        "28759", "28777", "28779",
    }
)  # fmt: skip

PUBLIC_CACHE = "public, max-age=60"


def language_of(request: web.Request) -> str:
    return domain.resolve_language(request.query.get("lang"), request.headers.get("Accept-Language"))


def _dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


def _json(body: Any, language: str | None = None, *, cache: bool = True) -> web.Response:
    response = web.json_response(body, dumps=_dumps)
    if language is not None:
        response.headers["Content-Language"] = language
        response.headers["Vary"] = "Accept-Language"
    if cache:
        response.headers["Cache-Control"] = PUBLIC_CACHE
    return response


def address_line(row: asyncpg.Record) -> str:
    return f"{row['street']}, {row['postcode']} {row['city']}"


def public_location(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "address": address_line(row),
        "phone_hotline": row["hotline"],
        "phone": row["phone"],
        "street": row["street"],
        "postcode": row["postcode"],
        "city": row["city"],
    }


@routes.get("/api/v1/locations")
async def list_locations(request: web.Request) -> web.Response:
    rows = await service.public_locations(request.app[POOL])
    return _json([public_location(r) for r in rows])


@routes.get("/api/v1/locations/{location_id}/concerns")
async def list_concerns(request: web.Request) -> web.Response:
    language = language_of(request)
    location_id = path_id(request, "location_id", "There is no such location.")
    rows = await service.public_concerns(request.app[POOL], location_id)
    body = [
        {
            "id": r["concern_id"],
            "name": domain.text_in(r["name"], language),
            "group": r["group_kind"],
            "group_id": r["group_id"],
            "group_name": domain.text_in(r["group_name"], language),
            "duration_minutes": r["duration_minutes"],
            "modes": sorted(r["modes"]),
            "info": domain.text_in(r["info"], language),
            "documents": [domain.text_in(d, language) for d in r["documents"]],
            "links": [
                {"label": domain.text_in(link["label"], language), "url": link["url"]} for link in r["links"]
            ],
            "emergency": r["emergency"],
            "sensitive": r["sensitive"],
        }
        for r in rows
    ]
    return _json(body, language)


@routes.get("/api/v1/finder")
async def find_responsible_office(request: web.Request) -> web.Response:
    query = parse_query(request, FinderQuery)
    language = domain.resolve_language(query.lang, request.headers.get("Accept-Language"))
    pool = request.app[POOL]
    answer = await finder.find_responsible(
        pool,
        street=query.street,
        house_number=query.house_number,
        postcode=query.postcode,
        under_25=query.under_25,
        bremen_postcodes=BREMEN_POSTCODES,
    )
    hotline = _service_centre_phone(request)
    body: dict[str, Any] = {"result": answer.result, "reason": answer.reason}
    if answer.result == "location" and answer.location is not None:
        location = public_location(answer.location)
        body["location"] = location
        body["hotline"] = location["phone_hotline"]
        key = "under_25" if answer.reason == "under_25" else "found"
        body["message"] = finder_message(key, language, name=location["name"], address=location["address"])
        if answer.district:
            body["district"] = answer.district
    elif answer.result == "other_jobcenter" and answer.jobcenter is not None:
        jobcenter = answer.jobcenter
        body["hotline"] = jobcenter["hotline"]
        body["jobcenter"] = {
            "id": jobcenter["id"],
            "name": jobcenter["name"],
            "hotline": jobcenter["hotline"],
            "address": jobcenter["address"],
            "website": jobcenter["website"],
        }
        where = (
            WHERE.get(language, WHERE["de"]).format(municipality=answer.municipality)
            if answer.municipality
            else ""
        )
        body["message"] = finder_message(
            "other_jobcenter",
            language,
            where=where,
            jobcenter=jobcenter["name"],
            hotline=jobcenter["hotline"],
        )
    else:
        body["hotline"] = hotline
        suggest = ""
        if answer.suggestions:
            suggest = finder_message("suggest", language, names=", ".join(answer.suggestions))
            body["suggestions"] = list(answer.suggestions)
        if answer.reason in ("needs_house_number", "needs_postcode"):
            body["missing"] = [answer.reason.removeprefix("needs_")]
        # `postcode_not_matching`: the postcode given fits none of the street's places (R3, WCAG 3.3.3);
        # it is not missing, so neither `missing` nor "your postcode too" asks for what was entered.
        body["message"] = finder_message(
            answer.reason, language, hotline=hotline, suggest=suggest, postcode=query.postcode or ""
        )
    youth = answer.youth_location
    if youth is not None and answer.result != "other_jobcenter" and answer.reason != "under_25":
        body["youth_hint"] = {
            "message": finder_message(
                "youth_hint", language, name=youth["name"], address=address_line(youth)
            ),
            "location": public_location(youth),
        }
    return _json(body, language, cache=False)


def _service_centre_phone(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    configured = settings.service_centre_phone if isinstance(settings, Settings) else ""
    return configured or settings.hotline
