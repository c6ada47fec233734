"""Events of the booking service. Every event carries the whole appointment as it is after the change,
with its `revision`, so that a consumer can apply the newest state and drop a stale one.

The customer's data are personal data: consumers keep them only as long as their task needs (R34), and
never write them into logs, metrics or mail subjects.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events import EventData, event
from shared.events.catalog import Mode


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    PASSED = "passed"


class Channel(StrEnum):
    ONLINE = "online"
    SERVICE_CENTRE = "service_centre"
    STAFF = "staff"


class CancelledBy(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    SERVICE_CENTRE = "service_centre"
    SYSTEM = "system"


class Language(StrEnum):
    """The built-in languages (R43). A customer may book in a further one (`shared/languages.py`): events
    carry it in `language_tag`, and here the nearest of these."""

    DE = "de"
    LEICHTE_SPRACHE = "de-x-ls"
    EN = "en"


# What an erased or anonymised appointment keeps of its interpreter (R26, R34): that one was needed, for the
# statistics, not the language (which may tell where the customer comes from). Booking writes it at the
# erasure, so that the events after it carry it; reporting writes it at its own anonymisation.
INTERPRETER_ERASED = "erforderlich"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CustomerData(_Part):
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    customer_number: str | None = None
    household_number: str | None = None


class AppointmentSnapshot(_Part):
    id: uuid.UUID
    reference: str
    revision: int
    status: AppointmentStatus
    location_id: str
    location_name: str
    location_address: str
    group_id: str
    service_point: int
    concern_id: str
    # The concern's name in the customer's language. Sensitive concerns (R52) never go into a subject,
    # a calendar title or a log line.
    concern_name: str
    sensitive: bool = False
    emergency: bool = False
    start: AwareDatetime
    end: AwareDatetime
    mode: Mode
    channel: Channel
    # The customer's language (R43): `language_tag` is the BCP 47 tag they booked in, which may be a
    # language the pages offer as content (`tr`); `language` is the nearest built-in one (`de` for `tr`,
    # `en` for `en-GB`), for consumers that know only those: a consumer of an earlier release validates
    # it and writes its mails in it, so a further language never sends an event to its dead letters.
    # `language_tag` is empty in events of releases before it; `customer_language` reads either.
    language: Language = Language.DE
    language_tag: str = ""
    evening: bool = False
    documents: list[str] = Field(default_factory=list)
    interpreter_language: str | None = None
    customer: CustomerData
    # The customer's manage page (R41): `<base>/manage/{id}?token=<token>`; the token makes it personal
    # data too. The booking service keeps only a hash of the token, so the full link is in an event only
    # when the change was made with it: always in `appointment.booked`, and in changes the customer made
    # through the link. Changes without it (by staff, or the system's `appointment.passed`) carry the
    # page without the token, `<base>/manage/{id}`: enough for the site's address, not to open the
    # appointment; a consumer keeps the link it has then.
    manage_url: str
    booked_at: AwareDatetime
    # The network the booking came from, for the booking-pattern report (R48): an IPv4 /24 or IPv6 /48
    # prefix such as "192.0.2.0/24", never the full address; None for staff and service-centre bookings.
    # Personal data too: reporting erases it with the rest after the retention period (R34).
    client_network: str | None = None

    @property
    def customer_language(self) -> str:
        return self.language_tag or self.language.value


@event("appointment.booked", 1)
class AppointmentBookedV1(EventData):
    appointment: AppointmentSnapshot


class SystemReason(StrEnum):
    """Why the jobcenter itself moved or cancelled an appointment, as a code: the notifier words it in the
    customer's language (a German text alone reached English and Leichte Sprache readers as it was)."""

    MASS_CHANGE = "mass_change"  # the location or group cannot offer the day (R44)
    HANDED_OVER = "handed_over"  # another location took the concern over and calls back (R25)


@event("appointment.rescheduled", 1)
class AppointmentRescheduledV1(EventData):
    appointment: AppointmentSnapshot
    previous_start: AwareDatetime
    previous_end: AwareDatetime
    # A `SystemReason` when the jobcenter moved it on its own; empty for a move the customer asked for
    # (online, or by phone through staff). A plain string, so that a code added later is no error here.
    reason_code: str = ""


@event("appointment.cancelled", 1)
class AppointmentCancelledV1(EventData):
    appointment: AppointmentSnapshot
    cancelled_by: CancelledBy
    reason: str = ""  # German, for staff and the file; a customer's own reason is not repeated to them
    reason_code: str = ""  # a `SystemReason` when the system worded `reason`; the mail words it anew
    handed_to: str = ""  # with `handed_over`: the name of the location that took the concern over


@event("appointment.link_renewed", 1)
class AppointmentLinkRenewedV1(EventData):
    """The customer asked for the manage link again (lost or deleted the confirmation mail). The booking
    service gave the appointment a new manage token: `manage_url` carries it, links sent before no longer
    open the appointment. Nothing else about the appointment changed."""

    appointment: AppointmentSnapshot


@event("appointment.contact_changed", 1)
class AppointmentContactChangedV1(EventData):
    """Staff or the service centre corrected the customer's name, e-mail address or phone number of a
    booked appointment that is still to come (a typo in the address, a number for a callback). Nothing
    else about the appointment changed. With `email_changed` the appointment got a new manage token:
    `manage_url` carries it (the link sent to the old address, maybe a stranger's, no longer opens the
    appointment) and the confirmation goes to the new address; without it `manage_url` is the bare page
    and no mail is sent."""

    appointment: AppointmentSnapshot
    email_changed: bool


@event("appointment.passed", 1)
class AppointmentPassedV1(EventData):
    appointment: AppointmentSnapshot
