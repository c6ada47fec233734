"""The booking API's request and response bodies as pydantic models (the architecture's public API table).

The OpenAPI document is generated from these. Requests are parsed strictly (a string is no number and
"yes" is no boolean) with lengths bounded; contact data are validated and normalised leniently.
Unknown fields are ignored, so that a frontend may send more than the API reads.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from services.booking import contact
from shared.events.appointment import AppointmentStatus
from shared.events.catalog import Mode
from shared.languages import LanguageTag
from shared.web import blank_is_none

# Ids of locations and concerns are readable slugs (the catalog's are stricter still).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, str_max_length=1000)


class CustomerIn(_Request):
    first_name: Name
    last_name: Name
    email: Annotated[
        str,
        Field(
            min_length=3,
            max_length=254,
            description=(
                "Where the confirmation, the reminder and the manage link go. At most one pending "
                "appointment per address (R5: 409 `already_booked`), except for an address of the "
                "internal allow-list (R6): the service centre books a caller without an e-mail address "
                "of their own under its internal one."
            ),
        ),
    ]
    phone: Annotated[
        str | None,
        Field(
            max_length=40,
            description="Required for `mode` `phone` (422 on `customer.phone` without it): staff call this "
            "number at the booked time. Digits, may start with +, e.g. `0421 123456`.",
        ),
    ] = None
    customer_number: Annotated[
        str | None,
        Field(
            max_length=40,
            description="The Kundennummer, three digits, a letter, six digits (`123D456789`; spaces, dashes, "
            "slashes and dots are dropped, the letter may be lower case). A customer number or a household "
            "number is required: without both, 422 on `customer.customer_number`. It counts for the "
            "one-appointment rule like the e-mail address (R47).",
        ),
    ] = None
    household_number: Annotated[
        str | None,
        Field(
            max_length=40,
            description="The BG-Nummer, five digits, `BG`, seven digits (`12345BG1234567`; separators are "
            "dropped as for `customer_number`). Either this or `customer_number` is required.",
        ),
    ] = None

    @field_validator("first_name", "last_name")
    @classmethod
    def _name(cls, value: str) -> str:
        return contact.normalise_name(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return contact.normalise_email(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return contact.normalise_phone(value) if value and value.strip() else None

    @field_validator("customer_number")
    @classmethod
    def _customer_number(cls, value: str | None) -> str | None:
        return contact.normalise_customer_number(value) if value and value.strip() else None

    @field_validator("household_number")
    @classmethod
    def _household_number(cls, value: str | None) -> str | None:
        return contact.normalise_household_number(value) if value and value.strip() else None


HOLD_ID_DESCRIPTION = (
    "The `hold_id` of a live hold of this very slot (`POST .../holds`): the held service point is taken, "
    "and the hold with it. A hold that has run out, is unknown or is of another slot refuses nothing: the "
    "slot is then booked like one without a hold, on a free point (or 409 `slot_taken`), and a hold of "
    "another slot stays until it runs out."
)


class BookingRequest(_Request):
    """`POST /api/v1/appointments`."""

    location_id: Id
    concern_id: Id
    start: AwareDatetime
    mode: Mode
    customer: CustomerIn
    evening_declaration: bool | None = Field(
        default=None,
        description="`true`: the customer declares being in work or in a measure (R12). Required for a "
        "slot whose `evening_reserved` is true (else 422 `validation_error` naming `evening_declaration`); "
        "ask the caller.",
    )
    language: LanguageTag = "de"
    hold_id: uuid.UUID | None = Field(default=None, description=HOLD_ID_DESCRIPTION)


class HoldRequest(_Request):
    """`POST /api/v1/locations/{id}/holds`."""

    concern_id: Id
    mode: Mode
    start: AwareDatetime
    # WCAG 2.2.1: the customer asks for more time before the hold runs out. Renewing their own live hold of
    # this slot extends it (same hold_id); a new hold would find the slot taken by that very hold.
    renews: uuid.UUID | None = Field(
        default=None,
        description="The hold_id of the caller's own hold of this slot: while it is live, it is extended "
        "(same hold_id, new expires_at); otherwise a new hold is placed.",
    )


class RescheduleRequest(_Request):
    """`POST /api/v1/appointments/{id}/reschedule`."""

    start: AwareDatetime
    evening_declaration: bool | None = Field(
        default=None,
        description="As at booking: `true` for a slot whose `evening_reserved` is true, unless the "
        "appointment was declared already (a staff move needs none, R12).",
    )
    hold_id: uuid.UUID | None = Field(default=None, description=HOLD_ID_DESCRIPTION)


class CancelRequest(_Request):
    """`POST /api/v1/appointments/{id}/cancel`; the body is optional."""

    reason: Annotated[str, Field(max_length=500)] = ""

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return contact.normalise_text(value)


class AvailabilityQuery(BaseModel):
    """`GET /api/v1/locations/{id}/availability?concern=&mode=&from=&to=`; dates YYYY-MM-DD, `to`
    inclusive, at most 8 weeks. Without dates: the next two weeks."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    concern: Id
    # Left empty (`mode=&from=&to=`, the template as a client fills it): not given, the default.
    mode: Mode = Mode.IN_PERSON
    from_: Annotated[date | None, BeforeValidator(blank_is_none)] = Field(
        default=None, alias="from", description="The first day, YYYY-MM-DD; absent or empty: today (Berlin)."
    )
    to: Annotated[date | None, BeforeValidator(blank_is_none)] = Field(
        default=None,
        description="The last day, YYYY-MM-DD, inclusive: not before `from`, and at most 56 days (8 weeks) "
        "from `from` to `to` (else 422 `validation_error` naming `to`); absent or empty: two weeks, "
        "`from` and the 13 days after it. Slots beyond the booking horizon are not offered.",
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _blank_mode(cls, value: object) -> object:
        return Mode.IN_PERSON if blank_is_none(value) is None else value


# --- responses -----------------------------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class SlotOut(_Response):
    start: AwareDatetime
    end: AwareDatetime
    evening_reserved: bool


class AvailabilityOut(_Response):
    slots: list[SlotOut]


class HoldOut(_Response):
    hold_id: uuid.UUID
    expires_at: AwareDatetime
    start: AwareDatetime
    end: AwareDatetime


class LocationRef(_Response):
    id: str
    name: str
    address: str


class ConcernRef(_Response):
    id: str
    name: str


class AppointmentOut(_Response):
    """The 201 body of a booking, and the body of a reschedule."""

    id: uuid.UUID
    reference: str
    status: AppointmentStatus
    start: AwareDatetime
    end: AwareDatetime
    mode: Mode
    location: LocationRef
    concern: ConcernRef
    documents: list[str]
    manage_url: str = Field(
        description="The appointment's manage page, `<base>/manage/{id}`. In the answer to a booking (and to "
        "the customer's own routes) with `?token=`: the customer's secret link, also in their mails; "
        "pass it on to nobody else and keep it out of logs. In the answer to a staff move the bare page, "
        "without the token (a new link for the customer: `POST "
        "/api/v1/staff/appointments/{appointment_id}/manage-link`)."
    )
    evening_reserved: bool
    language: str = Field(description="The language booked in, as the request gave it (a BCP 47 tag).")


class CustomerOut(_Response):
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    customer_number: str | None = None
    household_number: str | None = None


class AppointmentView(AppointmentOut):
    """The customer's view through the manage link (R41)."""

    customer: CustomerOut
    can_change: bool


class LinkRequest(_Request):
    """`POST /api/v1/manage-links`: send the manage link of my appointments to this address again."""

    email: Annotated[str, Field(min_length=3, max_length=254)]

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return contact.normalise_email(value)


class LinkRequestedOut(_Response):
    """The same answer whether the address has appointments or not: nobody learns who booked."""

    status: Annotated[str, Field(examples=["accepted"])] = "accepted"


class CancelledOut(_Response):
    status: AppointmentStatus
