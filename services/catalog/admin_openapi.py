"""The catalog's admin routes for the OpenAPI document (R50): the bodies and queries are the handlers' own
models (`models.py`, `admin_api.py`); the answers are declared here, after the serialisers of
`admin_api.py` (tests/catalog/test_admin_openapi.py reads real answers through them, extra fields
forbidden). The gateway adds to each how it is authenticated and what its rule needs
(`services/gateway/staff/openapi.py`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.catalog.admin_api import AllowEntryRef, ChangesQuery, HolidaysQuery, PolicyQuery, StreetQuery
from services.catalog.models import (
    AllowEntryIn,
    ApprovalIn,
    ClosureIn,
    ConcernIn,
    ConcernPatch,
    GroupIn,
    GroupPatch,
    Info,
    LeadTimeIn,
    LinkIn,
    LocationIn,
    LocationPatch,
    MonthChangeBlockIn,
    Name,
    OfferIn,
    OtherJobcenterIn,
    StreetIn,
    VersionQuery,
    WindowIn,
    WindowUpdate,
)
from services.catalog.openapi import LOCATION_ID
from shared.openapi import ApiRoute


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _version(route: str) -> Any:
    return Field(
        description="a short hash of the values its update changes; send it back as `expected_version` of "
        f"{route}, so that a change made since (by a colleague, another form) is not undone unseen "
        "(409 `stale`)"
    )


class LeadTimeOut(_Out):
    min_minutes: int
    max_days: int
    cutoff: str = Field(description="booking for a day closes at this time (Berlin) on that day itself")
    version: str = _version("`PUT /api/v1/admin/locations/{location_id}/lead-time`")


class MonthChangeBlockOut(_Out):
    last_days: int
    first_days: int


class LocationOut(_Out):
    id: str
    name: str
    street: str
    postcode: str
    city: str
    address: str
    phone: str | None
    hotline: str
    active: bool
    sort_order: int
    lead_time: LeadTimeOut
    month_change_block: MonthChangeBlockOut | None
    month_change_block_version: str = _version(
        "`PUT` or (as a query parameter) `DELETE /api/v1/admin/locations/{location_id}/month-change-block`"
        " (also while there is no block)"
    )
    revision: int = Field(description="the location's published snapshot revision")
    version: str = _version(
        "`PATCH /api/v1/admin/locations/{location_id}` (its name, address, phones, state)"
    )


class GroupOut(_Out):
    id: str
    location_id: str
    kind: str
    name: Name
    service_points: int
    active: bool
    sort_order: int
    version: str = _version("`PATCH /api/v1/admin/groups/{group_id}`")


class WindowOut(_Out):
    id: int
    group_id: str
    weekday: int = Field(description="0 = Monday")
    start: str = Field(description="HH:MM, Berlin")
    end: str = Field(description="HH:MM, Berlin")
    service_points: int
    evening: bool
    valid_from: date | None
    valid_until: date | None
    version: str = _version("`PUT /api/v1/admin/windows/{window_id}`")


class OfferOut(_Out):
    concern_id: str
    group_id: str
    name: Name
    duration_minutes: int
    modes: list[str]
    active: bool
    concern_active: bool
    emergency: bool
    sensitive: bool


class ClosureOut(_Out):
    id: int
    group_id: str | None = Field(description="null: the whole location is closed")
    first: date
    last: date
    reason: str
    service_points_left: int = Field(
        description="0: closed on those days; n: only the service points 1 to n take appointments"
    )


class ApprovalOut(_Out):
    id: int
    rule: str
    reference: str
    approved_by: str
    valid_from: date
    valid_until: date
    note: str
    recorded_by: str | None


class FindingApprovalOut(_Out):
    reference: str
    approved_by: str
    valid_from: date
    valid_until: date


class FindingOut(_Out):
    rule: str = Field(description="the requirement: R15, R17 or R18")
    code: str
    message: str
    details: dict[str, Any]
    approved: bool
    approval: FindingApprovalOut | None = None


class LocationDetailsOut(LocationOut):
    groups: list[GroupOut]
    windows: list[WindowOut]
    concerns: list[OfferOut]
    closures: list[ClosureOut]
    policy_approvals: list[ApprovalOut]
    policy_findings: list[FindingOut]


class ConcernOut(_Out):
    id: str
    group_kinds: list[str]
    name: Name
    info: Info
    links: list[LinkIn]
    documents: list[Name]
    emergency: bool
    sensitive: bool
    default_duration_minutes: int
    active: bool
    sort_order: int
    version: str = _version("`PATCH /api/v1/admin/concerns/{concern_id}`")


class PolicyLocationOut(_Out):
    location_id: str
    name: str
    on: date
    complies: bool
    findings: list[FindingOut]


class PolicyOut(_Out):
    complies: bool = Field(description="true when every active location complies")
    locations: list[PolicyLocationOut]


class AllowEntryRowOut(_Out):
    entry: str
    note: str
    added_by: str | None
    added_at: datetime


class AllowListOut(_Out):
    revision: int
    entries: list[AllowEntryRowOut]


class StreetOut(_Out):
    id: int
    street: str
    postcode: str | None
    first_number: int | None
    last_number: int | None
    parity: str = Field(description="`all`, `odd` or `even` house numbers")
    district: str
    location_id: str | None
    other_jobcenter_id: str | None


class OtherJobcenterOut(_Out):
    id: str
    name: str
    hotline: str
    address: str
    website: str
    verified: bool
    postcodes: list[str]
    municipalities: list[str]


class ChangeOut(_Out):
    id: int
    at: datetime
    staff: str | None
    action: str
    entity: str
    entity_id: str
    location_id: str | None
    details: dict[str, Any]


class HolidayOut(_Out):
    date: date
    name: str


class DeletedOut(_Out):
    deleted: bool


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
WRITE_ERRORS = ("validation_error", "not_found", "conflict", "approval_required")
# The updates that take `expected_version` (lost-update protection).
VERSIONED_WRITE_ERRORS = (*WRITE_ERRORS, "stale")
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
    versioned: bool = False,
    query: type[BaseModel] | None = None,
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
        query=query,
        errors=VERSIONED_WRITE_ERRORS if versioned else WRITE_ERRORS,
        path_params=params,
        tags=tags,
        description=(_VERSIONED if versioned else "")
        + "Every change publishes one new snapshot of the location (`catalog.location_configured`) "
        "in the same transaction, or nothing when the value was already so. A change that would take the "
        "location below the opening times of directive 3.3 (R17: 4 days a week, one until 18:00), today or "
        "from a later day (`details[].details.from`), answers 409 `approval_required` unless an approval "
        "of rule R17 covering that day is recorded first "
        "(`POST /api/v1/admin/locations/{location_id}/policy-approvals`, directive 3.6).",
    )


_VERSIONED = (
    "With `expected_version` (the `version` read before) a change of the object made since is refused with "
    "409 `stale` and nothing changes; without it the change is made whatever happened since. "
)

ADMIN_ROUTES = (
    ApiRoute(
        "GET",
        "/api/v1/admin/locations",
        "Every location, active or not",
        response=list[LocationOut],
        tags=LOCATIONS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/locations/{location_id}",
        "A location with its groups, opening windows, concerns, closures and its policy findings",
        response=LocationDetailsOut,
        errors=("not_found",),
        path_params={"location_id": LOCATION_ID},
        tags=LOCATIONS,
    ),
    _change("POST", "/api/v1/admin/locations", "Create a location", LocationIn, created=True),
    _change(
        "PATCH",
        "/api/v1/admin/locations/{location_id}",
        "Change a location's data",
        LocationPatch,
        versioned=True,
    ),
    _change(
        "PUT",
        "/api/v1/admin/locations/{location_id}/lead-time",
        "Set the booking lead time and horizon",
        LeadTimeIn,
        versioned=True,
    ),
    _change(
        "PUT",
        "/api/v1/admin/locations/{location_id}/month-change-block",
        "Block the last and first days of a month",
        MonthChangeBlockIn,
        versioned=True,
    ),
    _change(
        "DELETE",
        "/api/v1/admin/locations/{location_id}/month-change-block",
        "Lift the month-change block",
        versioned=True,
        query=VersionQuery,
    ),
    _change(
        "POST",
        "/api/v1/admin/locations/{location_id}/groups",
        "Add a service point group",
        GroupIn,
        created=True,
    ),
    _change(
        "PATCH",
        "/api/v1/admin/groups/{group_id}",
        "Change a group (name, service points)",
        GroupPatch,
        versioned=True,
    ),
    _change("DELETE", "/api/v1/admin/groups/{group_id}", "Remove a group that offers no concern"),
    _change(
        "POST", "/api/v1/admin/groups/{group_id}/windows", "Add an opening window", WindowIn, created=True
    ),
    _change(
        "PUT", "/api/v1/admin/windows/{window_id}", "Change an opening window", WindowUpdate, versioned=True
    ),
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
        "Close days, or restrict them to service points 1..n (`service_points_left`, at most the group's "
        "service points; for the whole location, its largest group's: more is 422 `validation_error`). A "
        "closure whose `last` day lies before today (Europe/Berlin) is 422 `validation_error` naming `last` "
        "(`details[].type` `in_the_past`); one that began earlier and lasts until today is accepted",
        ClosureIn,
        created=True,
    ),
    _change("DELETE", "/api/v1/admin/closures/{closure_id}", "Remove a closure"),
    ApiRoute(
        "GET",
        "/api/v1/admin/concerns",
        "The central concern catalogue",
        response=list[ConcernOut],
        tags=CONCERNS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/concerns/{concern_id}",
        "One concern of the catalogue",
        response=ConcernOut,
        errors=("not_found",),
        tags=CONCERNS,
    ),
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
        errors=("validation_error", "not_found", "stale"),
        tags=CONCERNS,
        description=_VERSIONED.strip(),
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/policy",
        "Whether every location complies with the policy",
        query=PolicyQuery,
        response=PolicyOut,
        errors=("validation_error",),
        tags=POLICY,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/locations/{location_id}/policy",
        "Whether a location complies with the policy",
        query=PolicyQuery,
        response=PolicyLocationOut,
        errors=("not_found", "validation_error"),
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
        "GET",
        "/api/v1/admin/allow-list",
        "The allow-list of internal addresses and domains, with its revision",
        response=AllowListOut,
        tags=CONCERNS,
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
    ApiRoute(
        "GET",
        "/api/v1/admin/finder/streets",
        "Streets of the finder",
        query=StreetQuery,
        response=list[StreetOut],
        errors=("validation_error",),
        tags=FINDER,
    ),
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
        "DELETE",
        "/api/v1/admin/finder/streets/{street_id}",
        "Remove a street (range) from the finder",
        response=DeletedOut,
        errors=("not_found",),
        path_params={"street_id": INT_ID},
        tags=FINDER,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/finder/other-jobcenters",
        "The neighbouring jobcenters and their postcodes",
        response=list[OtherJobcenterOut],
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
        "GET",
        "/api/v1/admin/changes",
        "The change log of the catalog, newest first",
        query=ChangesQuery,
        response=list[ChangeOut],
        errors=("validation_error",),
        tags=LOCATIONS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/holidays",
        "Bremen's public holidays",
        query=HolidaysQuery,
        response=list[HolidayOut],
        errors=("validation_error",),
        tags=LOCATIONS,
    ),
)
