"""Events of the notifier: the outcome of every mail it planned. No personal data: no address, no name,
no concern; the appointment id links a mail to what reporting already knows.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from shared.events import EventData, event


class MailKind(StrEnum):
    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    RESCHEDULE = "reschedule"
    CANCELLATION = "cancellation"
    TRANSFERRED = "transferred"  # R25: taken over by the responsible location (issue 8)
    MANAGE_LINK = "manage_link"  # the customer asked for the manage link again
    # The waiting list (R45, issue 11): for these, `appointment_id` of mail.* is the wish's id.
    WAITING_OPT_IN = "waiting_opt_in"
    WAITING_CONFIRMED = "waiting_confirmed"
    WAITING_OFFER = "waiting_offer"
    WAITING_OFFER_EXPIRED = "waiting_offer_expired"
    WAITING_EXPIRED = "waiting_expired"
    WAITING_WITHDRAWN = "waiting_withdrawn"


class FailureReason(StrEnum):
    # The receiving server refused the address for good (5xx at RCPT); later mail to it is suppressed.
    REJECTED = "rejected"
    # The server refused the message itself for good (5xx after the address was accepted).
    REFUSED = "refused"
    # Temporary failures until the deadline (for a reminder: the start of the appointment).
    EXPIRED = "expired"
    # Not tried: the address is on the suppression list after an earlier permanent failure.
    SUPPRESSED = "suppressed"


@event("mail.sent", 1)
class MailSentV1(EventData):
    mail_id: uuid.UUID
    appointment_id: uuid.UUID
    kind: MailKind
    revision: int
    attempts: int


@event("mail.failed", 1)
class MailFailedV1(EventData):
    mail_id: uuid.UUID
    appointment_id: uuid.UUID
    kind: MailKind
    revision: int
    attempts: int
    reason: FailureReason


@event("mail.offer_delivery", 1)
class OfferMailDeliveryV1(EventData):
    """Whether a waiting-list offer's mail reached the customer (R45), beside its `mail.sent` or
    `mail.failed`, for booking alone: an offer that runs out counts as missed only when its mail was
    delivered. An event of its own, so that booking binds this one routing key and not every mail's report
    (one per booking: 0.7 ms, about 6 %, more CPU per booking when booking consumed them all)."""

    wish_id: uuid.UUID
    revision: int  # the wish's revision of the offer mail (the offer's `offered_revision`)
    delivered: bool
