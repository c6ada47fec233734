"""The catalog's admin routes for the OpenAPI document (R50): the bodies and queries are the handlers' own
models (`models.py`, `admin_api.py`); the small answers of a change are declared here. The gateway adds
to each how it is authenticated and what its rule needs (`services/gateway/staff/openapi.py`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.catalog.admin_api import AllowEntryRef, ChangesQuery, HolidaysQuery, PolicyQuery, StreetQuery
from services.catalog.models import (
    AllowEntryIn,
    ApprovalIn,
    ClosureIn,
    ConcernIn,
    ConcernPatch,
    GroupIn,
    GroupPatch,
    LeadTimeIn,
    LocationIn,
    LocationPatch,
    MonthChangeBlockIn,
    OfferIn,
    OtherJobcenterIn,
    StreetIn,
    WindowIn,
)
from services.catalog.openapi import LOCATION_ID
from shared.openapi import ApiRoute


class ChangedOut(BaseModel):
    published_revision: int | None = Field(
        description="the location's new snapshot revision; null when nothing changed (nothing published)"
    )


class CreatedOut(ChangedOut):
    id: str | int


class ConcernChangedOut(BaseModel):
    published_revisions: dict[str, int] = Field(description="location id: its new snapshot revision")


class IdOut(BaseModel):
    id: str | int


class AllowEntryOut(BaseModel):
    entry: str
    published_revision: int | None


INT_ID = {"type": "integer", "minimum": 1}
WRITE_ERRORS = ("validation_error", "not_found", "conflict")
LOCATIONS = ("admin: locations",)
CONCERNS = ("admin: concerns",)
FINDER = ("admin: finder",)
POLICY = ("admin: policy",)


def _change(
    method: str,
    path: str,
    summary: str,
    body: type[BaseModel] | None = None,
    *,
    created: bool = False,
    tags: tuple[str, ...] = LOCATIONS,
) -> ApiRoute:
    params = {name: INT_ID for name in ("window_id", "closure_id") if f"{{{name}}}" in path}
    if "{location_id}" in path:
        params["location_id"] = LOCATION_ID
    return ApiRoute(
        method,
        path,
        summary,
        body=body,
        response=CreatedOut if created else ChangedOut,
        status=201 if created else 200,
        errors=WRITE_ERRORS,
        path_params=params,
        tags=tags,
        description="Every change publishes one new snapshot of the location (`catalog.location_configured`) "
        "in the same transaction, or nothing when the value was already so.",
    )


ADMIN_ROUTES = (
    _change("POST", "/api/v1/admin/locations", "Create a location", LocationIn, created=True),
    _change("PATCH", "/api/v1/admin/locations/{location_id}", "Change a location's data", LocationPatch),
    _change(
        "PUT",
        "/api/v1/admin/locations/{location_id}/lead-time",
        "Set the booking lead time and horizon",
        LeadTimeIn,
    ),
    _change(
        "PUT",
        "/api/v1/admin/locations/{location_id}/month-change-block",
        "Block the last and first days of a month",
        MonthChangeBlockIn,
    ),
    _change(
        "DELETE", "/api/v1/admin/locations/{location_id}/month-change-block", "Lift the month-change block"
    ),
    _change(
        "POST",
        "/api/v1/admin/locations/{location_id}/groups",
        "Add a service point group",
        GroupIn,
        created=True,
    ),
    _change("PATCH", "/api/v1/admin/groups/{group_id}", "Change a group (name, service points)", GroupPatch),
    _change("DELETE", "/api/v1/admin/groups/{group_id}", "Remove a group that offers no concern"),
    _change(
        "POST", "/api/v1/admin/groups/{group_id}/windows", "Add an opening window", WindowIn, created=True
    ),
    _change("PUT", "/api/v1/admin/windows/{window_id}", "Change an opening window", WindowIn),
    _change("DELETE", "/api/v1/admin/windows/{window_id}", "Remove an opening window"),
    _change(
        "PUT",
        "/api/v1/admin/locations/{location_id}/concerns/{concern_id}",
        "Offer a concern at a location (group, duration, modes)",
        OfferIn,
    ),
    _change(
        "DELETE",
        "/api/v1/admin/locations/{location_id}/concerns/{concern_id}",
        "Stop offering a concern here",
    ),
    _change(
        "POST",
        "/api/v1/admin/locations/{location_id}/closures",
        "Close days or hours",
        ClosureIn,
        created=True,
    ),
    _change("DELETE", "/api/v1/admin/closures/{closure_id}", "Remove a closure"),
    ApiRoute(
        "POST",
        "/api/v1/admin/concerns",
        "Add a concern to the catalogue",
        body=ConcernIn,
        response=IdOut,
        status=201,
        errors=("validation_error", "conflict"),
        tags=CONCERNS,
    ),
    ApiRoute(
        "PATCH",
        "/api/v1/admin/concerns/{concern_id}",
        "Change a concern of the catalogue (every location offering it is republished)",
        body=ConcernPatch,
        response=ConcernChangedOut,
        errors=("validation_error", "not_found"),
        tags=CONCERNS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/policy",
        "Whether every location complies with the policy",
        query=PolicyQuery,
        tags=POLICY,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/locations/{location_id}/policy",
        "Whether a location complies with the policy",
        query=PolicyQuery,
        errors=("not_found",),
        path_params={"location_id": LOCATION_ID},
        tags=POLICY,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/locations/{location_id}/policy-approvals",
        "Record an approved exception to a policy rule",
        body=ApprovalIn,
        response=IdOut,
        status=201,
        errors=("validation_error", "not_found"),
        path_params={"location_id": LOCATION_ID},
        tags=POLICY,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/allow-list",
        "Add an internal address or domain to the allow-list (R6)",
        body=AllowEntryIn,
        response=AllowEntryOut,
        status=201,
        errors=("validation_error", "conflict"),
        tags=CONCERNS,
    ),
    ApiRoute(
        "DELETE",
        "/api/v1/admin/allow-list",
        "Remove an entry of the allow-list",
        body=AllowEntryRef,
        response=ChangedOut,
        errors=("validation_error", "not_found"),
        tags=CONCERNS,
    ),
    ApiRoute("GET", "/api/v1/admin/finder/streets", "Streets of the finder", query=StreetQuery, tags=FINDER),
    ApiRoute(
        "POST",
        "/api/v1/admin/finder/streets",
        "Add a street (range) to the finder",
        body=StreetIn,
        response=IdOut,
        status=201,
        errors=("validation_error", "conflict"),
        tags=FINDER,
    ),
    ApiRoute(
        "PUT",
        "/api/v1/admin/finder/other-jobcenters/{jobcenter_id}",
        "Create or change a neighbouring jobcenter and its postcodes",
        body=OtherJobcenterIn,
        response=IdOut,
        errors=("validation_error", "not_found"),
        tags=FINDER,
    ),
    ApiRoute(
        "GET", "/api/v1/admin/changes", "The change log of the catalog", query=ChangesQuery, tags=LOCATIONS
    ),
    ApiRoute(
        "GET", "/api/v1/admin/holidays", "Bremen's public holidays", query=HolidaysQuery, tags=LOCATIONS
    ),
)
