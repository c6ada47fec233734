"""Events of the catalog service: the full, versioned snapshot of a location's bookable configuration.

The booking service keeps its own copy from these (so that customers can book while the catalog is
down) and drops a snapshot whose `revision` is not higher than the one it has.
Texts that customers read are given per language: `{"de": ..., "en": ..., "de-x-ls": ...}`; German is
always present, the others fall back to it.
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.events import EventData, event

LocalText = dict[str, str]


class GroupKind(StrEnum):
    ENTRANCE_ZONE = "entrance_zone"
    BENEFITS_TEAM = "benefits_team"
    JBA_ENTRANCE_ZONE = "jba_entrance_zone"


class Mode(StrEnum):
    IN_PERSON = "in_person"
    PHONE = "phone"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Address(_Part):
    street: str
    postcode: str
    city: str = "Bremen"

    def one_line(self) -> str:
        return f"{self.street}, {self.postcode} {self.city}"


class GroupSnapshot(_Part):
    id: str
    kind: GroupKind
    name: LocalText
    service_points: int = Field(ge=0)


class WindowSnapshot(_Part):
    """A weekly time window of a group: on `weekday` (0 = Monday) from `start` to `end` (Berlin wall
    clock), `service_points` of the group take appointments. `evening` marks windows reserved for people
    in work or in a measure (R12)."""

    group_id: str
    weekday: int = Field(ge=0, le=6)
    start: time
    end: time
    service_points: int = Field(ge=1)
    evening: bool = False
    valid_from: date | None = None
    valid_until: date | None = None


class Link(_Part):
    label: LocalText
    url: str


class ConcernOffer(_Part):
    """A concern of the central catalogue as offered by one group of this location."""

    concern_id: str
    group_id: str
    name: LocalText
    duration_minutes: int = Field(ge=5, le=240)
    modes: list[Mode]
    emergency: bool = False
    sensitive: bool = False
    info: LocalText = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list)
    documents: list[LocalText] = Field(default_factory=list)


class Closure(_Part):
    """The location (or one group, when `group_id` is set) takes no appointments from `first` to `last`
    (both days included); with `service_points_left` above 0 it is a restriction instead: on those days
    only the service points 1 to `service_points_left` take appointments (an unplanned absence, R20)."""

    first: date
    last: date
    group_id: str | None = None
    reason: str = ""
    service_points_left: int = Field(default=0, ge=0)


class MonthChangeBlock(_Part):
    """Around every turn of the month only emergency concerns are bookable (R18): the last
    `last_days` days of a month and the first `first_days` of the next; together at most 3."""

    last_days: int = Field(ge=0, le=3)
    first_days: int = Field(ge=0, le=3)


# Booking for a day closes at this time on that day (R19); the customer pages start their calendar on the
# first day still open.
BOOKING_CUTOFF = time(6, 0)


class LeadTime(_Part):
    """How short-notice and how far ahead customers may book (R19). Booking for a day closes at
    `cutoff` on that day (06:00) in any case."""

    min_minutes: int = Field(default=0, ge=0)
    max_days: int = Field(default=56, ge=1, le=56)
    cutoff: time = BOOKING_CUTOFF


@event("catalog.location_configured", 1)
class LocationConfiguredV1(EventData):
    """A location's whole bookable configuration. It holds only active groups and the active offers of
    active concerns by them; `active: false` means the location takes no new bookings. `revision`
    strictly increases with every change of the location; `python -m services.catalog republish` sends
    the current snapshots again with the revision they have (unchanged content)."""

    location_id: str
    revision: int
    name: str
    address: Address
    phone: str | None = None
    hotline: str
    active: bool = True
    lead_time: LeadTime = Field(default_factory=LeadTime)
    month_change_block: MonthChangeBlock | None = None
    groups: list[GroupSnapshot]
    windows: list[WindowSnapshot]
    concerns: list[ConcernOffer]
    closures: list[Closure] = Field(default_factory=list)


@event("catalog.allow_list_changed", 1)
class AllowListChangedV1(EventData):
    """The internal e-mail addresses (service centre, jobcenter) that may book any number of times (R6).
    Entries are normalised (lower case); an entry starting with `@` allows a whole domain."""

    revision: int
    entries: list[str]
