"""Events of the staff work (issue 8, R23-R26, R49): outcomes, callback tickets and transfers.

Each appointment event carries the whole appointment after the change with its `revision`, like the
booking service's other `appointment.*` events, so that reporting and the notifier apply the newest
state and drop a stale one. Callback tickets carry their own `revision` (created 1, claimed 2, closed 3)
and no free text: the note and the result stay in the booking service (personal data, R34).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.events import EventData, event
from shared.events.appointment import AppointmentSnapshot


class Outcome(StrEnum):
    RESOLVED = "resolved"
    PLACEMENT = "placement"  # handed to the placement (M&I) colleagues
    CALLBACK = "callback"  # a callback ticket to the responsible team, due within 48 hours
    NO_SHOW = "no_show"
    # R24: a follow-up booked in the responsible team (directive 3.4: "Termin im zuständigen Fachbereich
    # vereinbart"); recorded by booking the follow-up, never chosen on its own.
    FOLLOW_UP = "follow_up"


class CallbackReason(StrEnum):
    OUTCOME = "outcome"  # the outcome of an appointment (R23)
    MISSED_CALL = "missed_call"  # a phone appointment that could not be reached (R49)
    TRANSFER = "transfer"  # taken over by another location without a free slot (R25)
    PROMISE = "promise"  # the entrance zone's binding callback promise (R24)


class CallbackStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    CLOSED = "closed"


class CallbackClosure(StrEnum):
    """How a closed ticket ended (`CallbackTicket.closed_as`)."""

    DONE = "done"  # closed by staff with the result of the call
    WITHDRAWN = "withdrawn"  # the outcome was corrected away from "callback": nobody was to call back


class CallbackTicket(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    appointment_id: uuid.UUID
    location_id: str
    group_id: str  # the responsible team
    reason: CallbackReason
    status: CallbackStatus
    revision: int
    created_at: AwareDatetime
    # The promise (R23): 48 hours counted on Bremen working days (services/booking/callbacks.py).
    due_at: AwareDatetime
    claimed_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    # A `CallbackClosure` once closed, None while open (and in events sent before the field existed). A
    # plain string, so that a code added later is no error here. Only the kind of ending, never the
    # result's text (personal data): reporting counts a withdrawn ticket apart, not as kept in time.
    closed_as: str | None = None


@event("appointment.outcome_recorded", 1)
class AppointmentOutcomeRecordedV1(EventData):
    appointment: AppointmentSnapshot
    outcome: Outcome
    # Staff's note (personal data: for the file in booking; reporting does not keep it).
    note: str = ""
    # An explicit correction of an outcome recorded before (audited by the gateway).
    correction: bool = False
    previous_outcome: Outcome | None = None
    callback_id: uuid.UUID | None = None


@event("appointment.transferred", 1)
class AppointmentTransferredV1(EventData):
    """R25: the appointment taken over by the responsible location; `appointment` is the full new
    snapshot (location, group, concern, time), the `from_*` fields what it was before."""

    appointment: AppointmentSnapshot
    from_location_id: str
    from_location_name: str
    from_group_id: str
    from_concern_id: str
    previous_start: AwareDatetime
    previous_end: AwareDatetime


@event("callback.created", 1)
class CallbackCreatedV1(EventData):
    callback: CallbackTicket


@event("callback.closed", 1)
class CallbackClosedV1(EventData):
    callback: CallbackTicket
