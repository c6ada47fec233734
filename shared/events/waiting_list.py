"""Events of the waiting list (R45), published by the booking service (it owns wishes, because an offer
holds its capacity).

Every event carries the wish as it is after the change, with its `revision`, so that a consumer can drop
a stale one. Personal data are only what the notifier needs to send its mail: the name and e-mail address
(never the customer or household number, never the phone number). The wish's page link carries its
secret token only in `waiting.registered` (booking keeps a hash of the token, like the manage token of
R41); later events carry the bare page, and the notifier keeps the link it got first.

Reporting counts these events by type, location and concern, and reads nothing else of them but the
kind of an ending (`reason`, `via_offer`, `replaces_unconfirmed`) and whether an expired offer was
missed (`missed`: its mail had been delivered).
"""

from __future__ import annotations

import uuid
from datetime import date, time
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.events import EventData, event
from shared.events.appointment import Language
from shared.events.catalog import Mode


class WishStatus(StrEnum):
    PENDING_OPT_IN = "pending_opt_in"  # registered; the address is not confirmed yet (double opt-in)
    WAITING = "waiting"  # confirmed: waits for a freed slot in order of registration
    OFFERED = "offered"  # a slot is held for it until the offer expires
    BOOKED = "booked"  # the customer has an appointment now (through an offer or on their own)
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


ACTIVE_STATUSES = (WishStatus.PENDING_OPT_IN, WishStatus.WAITING, WishStatus.OFFERED)


class EndReason(StrEnum):
    CUSTOMER = "customer"  # withdrawn from the link in a mail
    REPLACED = "replaced"  # an unconfirmed wish replaced by a new registration of the same customer
    LATEST_DATE = "latest_date"  # the wish's latest date has passed
    NOT_CONFIRMED = "not_confirmed"  # the opt-in link was not used in time
    OFFERS_MISSED = "offers_missed"  # too many offers expired unanswered
    BOOKED = "booked"  # the customer booked an appointment


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WishCustomer(_Part):
    first_name: str
    last_name: str
    email: str


class WishSnapshot(_Part):
    id: uuid.UUID
    reference: str
    revision: int
    status: WishStatus
    location_id: str
    location_name: str
    location_address: str
    concern_id: str
    # The concern's name in the customer's language: for the mail's body only, never its subject (R52).
    concern_name: str
    sensitive: bool = False
    mode: Mode
    # Days of the week that suit (0 = Monday) and the times of day (Berlin wall clock; None: open).
    weekdays: list[int]
    earliest: time | None = None
    latest: time | None = None
    latest_date: date
    # The customer's language, as in `AppointmentSnapshot`: the tag, and the nearest built-in language.
    language: Language = Language.DE
    language_tag: str = ""
    customer: WishCustomer
    # `<base>/waiting-list/{id}?token=<token>` in `waiting.registered`, else `<base>/waiting-list/{id}`.
    page_url: str
    registered_at: AwareDatetime
    # Until when the opt-in link works, so that the opt-in mail can say so (set while `pending_opt_in`;
    # None later, and in events of booking versions that did not send it).
    confirm_by: AwareDatetime | None = None

    @property
    def customer_language(self) -> str:
        return self.language_tag or self.language.value


class OfferSnapshot(_Part):
    id: uuid.UUID
    start: AwareDatetime
    end: AwareDatetime
    expires_at: AwareDatetime
    evening: bool = False
    # The wish's revision in the offer's `waiting.offered`, which is the `revision` of its offer mail
    # (`mail.sent`, `mail.failed` of kind `waiting_offer`); None in events of booking versions before it.
    offered_revision: int | None = None


@event("waiting.registered", 1)
class WaitingRegisteredV1(EventData):
    wish: WishSnapshot
    # The same customer registered again while an unconfirmed wish of theirs waited for the opt-in (a
    # lost mail): that wish ended with `waiting.withdrawn`, reason `replaced`, in the same transaction.
    # Reporting counts such a registration apart, so that one customer is not two wishes (R45).
    replaces_unconfirmed: bool = False


@event("waiting.confirmed", 1)
class WaitingConfirmedV1(EventData):
    wish: WishSnapshot


@event("waiting.offered", 1)
class WaitingOfferedV1(EventData):
    wish: WishSnapshot
    offer: OfferSnapshot


@event("waiting.offer_expired", 1)
class WaitingOfferExpiredV1(EventData):
    """The offer ran out unanswered; the wish waits again (or ended: `waiting.expired`, `offers_missed`).

    `missed` is False when booking had no report that the offer's mail was delivered (`mail.sent`) when
    the offer ran out: a relay outage until the offer's end, a suppressed address, a mail never sent.
    Such an offer does not count against the wish (`OTV_WAITING_MAX_MISSED_OFFERS`), reporting counts it
    as not delivered, and the notifier sends no mail about an offer the customer never saw (it asks its
    own record of the offer mail, which a late `mail.sent` has not yet reached booking's). Events of
    booking versions before this field counted every expiry: True."""

    wish: WishSnapshot
    offer: OfferSnapshot
    missed: bool = True


@event("waiting.withdrawn", 1)
class WaitingWithdrawnV1(EventData):
    wish: WishSnapshot
    reason: EndReason = EndReason.CUSTOMER


@event("waiting.expired", 1)
class WaitingExpiredV1(EventData):
    wish: WishSnapshot
    reason: EndReason = EndReason.LATEST_DATE


@event("waiting.fulfilled", 1)
class WaitingFulfilledV1(EventData):
    """The customer booked an appointment (through the offer, `via_offer`, or on their own): the wish
    ends; the booking's own confirmation mail says everything, so this one sends no mail."""

    wish: WishSnapshot
    appointment_id: uuid.UUID
    via_offer: bool = False


@event("waiting.personal_data_erased", 1)
class WaitingPersonalDataErasedV1(EventData):
    """Booking erased an ended wish's personal data after the retention period (R34); a copy goes too."""

    wish_id: uuid.UUID
    erased_at: AwareDatetime


WISH_EVENTS: tuple[type[EventData], ...] = (
    WaitingRegisteredV1,
    WaitingConfirmedV1,
    WaitingOfferedV1,
    WaitingOfferExpiredV1,
    WaitingWithdrawnV1,
    WaitingExpiredV1,
    WaitingFulfilledV1,
)
