"""The catalog's request models: what the admin API accepts and the finder's query. A field that does
not validate becomes a 422 naming it (shared.web.parse_json / parse_query)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from shared.calendar import CalendarDay, WallTime
from shared.events.catalog import GroupKind, Mode
from shared.versions import MAX_VERSION_LENGTH
from shared.web import blank_is_none

LOCATION_ID = r"^[a-z][a-z0-9-]{1,31}$"
ITEM_ID = r"^[a-z][a-z0-9-]{1,47}$"

LocationId = Annotated[str, StringConstraints(pattern=LOCATION_ID)]
ItemId = Annotated[str, StringConstraints(pattern=ITEM_ID)]
Language = Literal["de", "en", "de-x-ls"]


def _german_present(value: dict[str, str]) -> dict[str, str]:
    if not value.get("de", "").strip():
        raise ValueError("the German text ('de') is required")
    return value


ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Name = Annotated[dict[Language, ShortText], AfterValidator(_german_present)]
Info = dict[Language, LongText]
Document = Annotated[dict[Language, ShortText], AfterValidator(_german_present)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9+()/ -]{3,40}$")]


def _postcode(value: str) -> str:
    if not (len(value) == 5 and value.isascii() and value.isdigit()):
        raise ValueError("a postcode has five digits, e.g. 28195")
    return value


Postcode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10), AfterValidator(_postcode)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _expected_version(what: str) -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=MAX_VERSION_LENGTH,
        description=f"The {what}'s `version` as the client read it. Given, a change of the {what} made since "
        "(by a colleague, another form) refuses this one with 409 `stale` and nothing changes: read it "
        "again and decide anew. Absent: the change is made whatever happened since.",
    )


# Not a value of the object: what its update was made against (shared.versions). Left out of what is stored
# and logged.
NOT_A_VALUE: Final = {"expected_version"}


# --- locations --------------------------------------------------------------------------------------


class LocationIn(_Body):
    id: LocationId
    name: Label
    street: Label
    postcode: Postcode
    city: Label = "Bremen"
    phone: Phone | None = None
    hotline: Phone
    active: bool = True
    sort_order: int = Field(default=100, ge=0, le=10000)


class LocationPatch(_Body):
    expected_version: str | None = _expected_version("location")
    name: Label | None = None
    street: Label | None = None
    postcode: Postcode | None = None
    city: Label | None = None
    phone: Phone | None = None
    hotline: Phone | None = None
    active: bool | None = None
    sort_order: int | None = Field(default=None, ge=0, le=10000)


class LeadTimeIn(_Body):
    expected_version: str | None = _expected_version("lead time")
    min_minutes: int = Field(ge=0, le=20160)
    max_days: int = Field(ge=1, le=56)


class MonthChangeBlockIn(_Body):
    expected_version: str | None = _expected_version("month-change block")
    last_days: int = Field(ge=0, le=3)
    first_days: int = Field(ge=0, le=3)


class VersionQuery(_Body):
    """What a removal was made against: a DELETE carries no body, so its `expected_version` is a query
    parameter."""

    expected_version: str | None = _expected_version("month-change block")


# --- groups and windows -----------------------------------------------------------------------------


class GroupIn(_Body):
    id: ItemId
    kind: GroupKind
    name: Name
    service_points: int = Field(ge=0, le=200)
    active: bool = True
    sort_order: int = Field(default=100, ge=0, le=10000)


class GroupPatch(_Body):
    expected_version: str | None = _expected_version("group")
    name: Name | None = None
    service_points: int | None = Field(default=None, ge=0, le=200)
    active: bool | None = None
    sort_order: int | None = Field(default=None, ge=0, le=10000)


class WindowIn(_Body):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    # Berlin wall clock, without offset.
    start: WallTime
    end: WallTime
    service_points: int = Field(ge=1, le=200)
    evening: bool = False
    valid_from: CalendarDay | None = None
    valid_until: CalendarDay | None = None


class WindowUpdate(WindowIn):
    """A window's new values (PUT), with the version they were chosen against."""

    expected_version: str | None = _expected_version("window")


class ClosureIn(_Body):
    first: CalendarDay
    last: CalendarDay
    group_id: ItemId | None = None
    reason: ShortText = ""
    # 0: closed; n: only the service points 1..n take appointments on those days (R20).
    service_points_left: Annotated[int, Field(ge=0, le=200)] = 0


# --- concerns and offers ----------------------------------------------------------------------------


class LinkIn(_Body):
    label: Name
    url: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^https://[^\s<>\"']{3,500}$")]


class ConcernIn(_Body):
    id: ItemId
    group_kinds: list[GroupKind] = Field(min_length=1, max_length=3)
    name: Name
    info: Info = Field(default_factory=dict)
    links: list[LinkIn] = Field(default_factory=list, max_length=10)
    documents: list[Document] = Field(default_factory=list, max_length=20)
    emergency: bool = False
    sensitive: bool = False
    default_duration_minutes: int = Field(default=20, ge=5, le=240)
    active: bool = True
    sort_order: int = Field(default=100, ge=0, le=10000)


class ConcernPatch(_Body):
    expected_version: str | None = _expected_version("concern")
    group_kinds: list[GroupKind] | None = Field(default=None, min_length=1, max_length=3)
    name: Name | None = None
    info: Info | None = None
    links: list[LinkIn] | None = Field(default=None, max_length=10)
    documents: list[Document] | None = Field(default=None, max_length=20)
    emergency: bool | None = None
    sensitive: bool | None = None
    default_duration_minutes: int | None = Field(default=None, ge=5, le=240)
    active: bool | None = None
    sort_order: int | None = Field(default=None, ge=0, le=10000)


class OfferIn(_Body):
    group_id: ItemId
    duration_minutes: int = Field(ge=5, le=240)
    modes: list[Mode] = Field(min_length=1, max_length=2)
    active: bool = True


# --- allow-list, approvals --------------------------------------------------------------------------


class AllowEntryIn(_Body):
    entry: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    note: ShortText = ""


class ApprovalIn(_Body):
    rule: Literal["R17"]
    reference: Label
    approved_by: Label
    valid_from: CalendarDay
    valid_until: CalendarDay
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


# --- the finder -------------------------------------------------------------------------------------


# Letters of any alphabet, digits, spaces, dots and hyphens: what street names in Bremen are made of.
# Everything else (quotes, semicolons, angle brackets, ...) is refused with a 422 naming the field.
_STREET = re.compile(r"^[^\W_](?:[^\W_]|[ .\-])*$")
_HOUSE_NUMBER = re.compile(r"^\d{1,4}\s?[a-zA-Z]?(\s?[-/]\s?\d{1,4}\s?[a-zA-Z]?)?$")


def _street_name(value: str) -> str:
    if not _STREET.fullmatch(value):
        raise ValueError(
            "use letters, digits, spaces, dots and hyphens only, e.g. Bürgermeister-Smidt-Straße"
        )
    return value


def _house_number(value: str) -> str:
    if not _HOUSE_NUMBER.fullmatch(value):
        raise ValueError("a house number such as 12, 12a or 12-14")
    return value


StreetName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80), AfterValidator(_street_name)
]
HouseNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=15), AfterValidator(_house_number)
]


class FinderQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    street: StreetName
    house_number: Annotated[HouseNumber | None, BeforeValidator(blank_is_none)] = None
    postcode: Annotated[Postcode | None, BeforeValidator(blank_is_none)] = None
    under_25: bool = False
    lang: str | None = None


class StreetIn(_Body):
    street: StreetName
    postcode: Postcode | None = None
    first_number: int | None = Field(default=None, ge=1, le=9999)
    last_number: int | None = Field(default=None, ge=1, le=9999)
    parity: Literal["all", "odd", "even"] = "all"
    district: ShortText = ""
    location_id: LocationId | None = None
    other_jobcenter_id: ItemId | None = None


class OtherJobcenterIn(_Body):
    name: Label
    hotline: Phone
    address: ShortText = ""
    website: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    verified: bool = False
    postcodes: dict[Postcode, Label] = Field(default_factory=dict, max_length=200)
