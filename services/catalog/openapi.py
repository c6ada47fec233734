"""The catalog service's public routes for the OpenAPI document. Served at `GET /openapi.json`; the gateway
merges it into `/api/v1/openapi.json`.

The query of the finder is the service's own model (`models.FinderQuery`); the public answers are built
as dictionaries in `api.py`, so their shapes are declared here as pydantic models, next to nothing else.
A field added to an answer without its model here is still valid JSON Schema-wise (extra properties are
allowed), and schemathesis (tests/web) checks every answer against these models.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.catalog.models import FinderQuery
from shared.events.catalog import GroupKind, Mode
from shared.languages import LanguageTag
from shared.openapi import ApiRoute, build_document, openapi_handler

TAGS = ("catalog",)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class LocationOut(_Out):
    id: str = Field(description="A readable slug such as `mitte`.")
    name: str
    address: str = Field(description="One line: street, postcode and city.")
    phone_hotline: str
    phone: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None


class LinkOut(_Out):
    label: str
    url: str


class ConcernOut(_Out):
    id: str
    name: str
    group: GroupKind = Field(description="The kind of service point group that offers it.")
    group_id: str | None = None
    group_name: str | None = None
    duration_minutes: int
    modes: list[Mode]
    info: str = ""
    documents: list[str] = Field(default_factory=list, description="Documents to bring (R11).")
    links: list[LinkOut] = Field(default_factory=list)
    emergency: bool = False
    sensitive: bool = False


class JobcenterOut(_Out):
    id: str | None = None
    name: str
    hotline: str
    address: str | None = None
    website: str | None = None


class YouthHintOut(_Out):
    message: str
    location: LocationOut


class FinderOut(_Out):
    result: Literal["location", "other_jobcenter", "unknown"]
    reason: str | None = Field(
        default=None,
        description="Why, for a client that acts on it (more may come; `message` always says what to do). "
        "With `location`: `found`, or `under_25` (the youth employment agency's location, asked for with "
        "`under_25`). With `other_jobcenter`: `other_jobcenter_postcode` or `other_jobcenter_street`. With "
        "`unknown`: `unknown_street` (maybe with `suggestions`), `needs_postcode` or `needs_house_number` "
        "(the street has several responsible locations: ask for it and repeat), `number_not_covered`, "
        "`outside_area` (the postcode is not Bremen's), `location_inactive`.",
    )
    message: str
    hotline: str | None = None
    location: LocationOut | None = None
    district: str | None = None
    jobcenter: JobcenterOut | None = None
    suggestions: list[str] | None = None
    missing: list[str] | None = None
    youth_hint: YouthHintOut | None = None


class LanguageQuery(BaseModel):
    lang: LanguageTag | None = Field(
        default=None,
        description="The language of the texts (a BCP 47 tag: de, en, de-x-ls; another gets German); "
        "else Accept-Language; else German.",
    )


LOCATION_ID = {"type": "string", "minLength": 1, "maxLength": 64, "examples": ["mitte"]}

ROUTES = (
    ApiRoute(
        "GET", "/api/v1/locations", "The locations of Jobcenter Bremen", response=list[LocationOut], tags=TAGS
    ),
    ApiRoute(
        "GET",
        "/api/v1/finder",
        "The responsible location for an address (R3)",
        query=FinderQuery,
        response=FinderOut,
        errors=("validation_error",),
        tags=TAGS,
        description="`other_jobcenter`: the address belongs to another jobcenter; call its hotline. "
        "`unknown`: the address was not found, or (`reason`) needs more input (`needs_house_number`, "
        "`needs_postcode`, with the field in `missing`), has a part that fits nothing "
        "(`postcode_not_matching`, `number_not_covered`), is outside Bremen, or its "
        "location takes no appointments at the moment (`location_inactive`: no channel books there, "
        "neither online nor the service centre; `hotline` is for information only); `message` says what "
        "to do.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/locations/{location_id}/concerns",
        "The concerns a location offers, with info, links and documents to bring (R11)",
        query=LanguageQuery,
        response=list[ConcernOut],
        errors=("validation_error", "not_found"),
        path_params={"location_id": LOCATION_ID},
        tags=TAGS,
    ),
)


def document() -> dict[str, Any]:
    from services.catalog.admin_openapi import ADMIN_ROUTES  # which uses this module's parameters

    return build_document(
        (*ROUTES, *ADMIN_ROUTES),
        title="Catalog",
        description="Locations, concerns and the finder; their administration.",
    )


def setup_openapi(app: web.Application) -> None:
    """Serve this service's part of the public API's description at `GET /openapi.json`."""
    app.router.add_get("/openapi.json", openapi_handler(document))
