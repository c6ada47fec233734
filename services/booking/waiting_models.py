"""The waiting list's request and response bodies (R45). The contact data are the booking's own model
(`CustomerIn`: the same checks and normalisation as a booking)."""

from __future__ import annotations

import uuid
from datetime import date, time
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.booking.domain import reference_in
from services.booking.models import ConcernRef, CustomerIn, CustomerOut, Id, LocationRef
from shared.calendar import WallTime
from shared.events.appointment import Language
from shared.events.catalog import Mode
from shared.events.waiting_list import WishStatus

Weekday = Annotated[int, Field(ge=0, le=6)]


class WishRequest(BaseModel):
    """`POST /api/v1/waiting-list`: location, concern, mode, what suits, contact data."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, str_max_length=1000)

    location_id: Id
    concern_id: Id
    mode: Mode
    # Days of the week that suit, 0 = Monday.
    weekdays: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    # Times of day that suit (Berlin wall clock): a slot starts at or after `earliest` and ends at or
    # before `latest`; absent: any time.
    earliest: WallTime | None = None
    latest: WallTime | None = None
    # The last day an appointment would still help (at most 8 weeks ahead).
    latest_date: date
    # R12: evening slots (until 18:00) only for people in work or in a measure.
    evening_declaration: bool | None = None
    customer: CustomerIn
    language: Language = Language.DE

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _times(self) -> WishRequest:
        if self.earliest is not None and self.latest is not None and self.earliest >= self.latest:
            raise ValueError("earliest must be before latest")
        return self


class WishDaysQuery(BaseModel):
    """`GET /api/v1/locations/{id}/waiting-list/weekdays?concern=&mode=`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    concern: Id
    mode: Mode = Mode.IN_PERSON


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class WishDaysOut(_Response):
    """The days of the week (0 = Monday) on which the location has appointments of the concern between
    today and `until`, free or booked: the days a wish can name."""

    weekdays: list[int]
    until: date


class WishOut(_Response):
    """The 201 body of `POST /api/v1/waiting-list`. It has no link: the wish counts only once the
    customer has confirmed the address from the mail (double opt-in)."""

    id: uuid.UUID
    reference: str
    status: WishStatus
    location: LocationRef
    concern: ConcernRef
    mode: Mode
    weekdays: list[int]
    earliest: time | None = None
    latest: time | None = None
    latest_date: date
    language: Language
    registered_at: AwareDatetime
    # Until when the address must be confirmed from the mail (only while the wish is not confirmed).
    confirm_by: AwareDatetime | None = None


class OfferOut(_Response):
    start: AwareDatetime
    end: AwareDatetime
    expires_at: AwareDatetime
    evening_reserved: bool


class WishView(WishOut):
    """`GET /api/v1/waiting-list/{id}?token=`: the customer's view of the wish."""

    customer: CustomerOut
    confirmed_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    end_reason: str | None = None
    # How many confirmed wishes for the same concern at the location were registered earlier.
    waiting_before: int | None = None
    offer: OfferOut | None = None


class WishStatusOut(_Response):
    status: WishStatus


# --- staff -------------------------------------------------------------------------------------------


class StaffWishOut(_Response):
    id: uuid.UUID
    reference: str
    status: WishStatus
    mode: Mode
    registered_at: AwareDatetime
    age_days: int
    weekdays: list[int]
    earliest: time | None = None
    latest: time | None = None
    latest_date: date
    customer: CustomerOut
    offer: OfferOut | None = None


class StaffConcernWaitingOut(_Response):
    concern_id: str
    concern_name: str
    pending_opt_in: int
    waiting: int
    offered: int
    oldest_registered_at: AwareDatetime | None = None
    oldest_age_days: int | None = None
    wishes: list[StaffWishOut]


class StaffWaitingListOut(_Response):
    location_id: str
    concerns: list[StaffConcernWaitingOut]


class WishErasedOut(_Response):
    """`POST /api/v1/staff/waiting-list/{id}/erase` (Art. 17 GDPR)."""

    erased: bool = Field(description="false when the wish's personal data were erased already")


class WishReferenceQuery(BaseModel):
    """`GET /api/v1/staff/waiting-list?reference=`: the reference of the customer's wish mails
    ("Vorgangsnummer"), as a caller reads it out ("abcd ef23" is `ABCD-EF23`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reference: str = Field(
        min_length=1,
        max_length=40,
        description="the wish's reference, eight letters and digits, with or without the hyphen",
        examples=["ABCD-EF23"],
    )

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        found = reference_in(value)
        if found is None:
            raise ValueError("is not a reference: eight letters and digits such as ABCD-EF23")
        return found


class StaffWishStateOut(_Response):
    """One wish, in any status, as a location administrator sees it to erase it on the customer's request
    (Art. 17 GDPR): where it is and in which state, none of the customer's data."""

    id: uuid.UUID
    reference: str
    status: WishStatus
    location_id: str
    concern_id: str
    concern_name: str = Field(description="the concern's German name")
    mode: Mode
    registered_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    end_reason: str | None = None
    erased_at: AwareDatetime | None = Field(
        default=None,
        description="when its personal data were erased (on request or after the retention period); null: "
        "they are still there",
    )
