"""The waiting list's rules as plain Python (R45): which slot fits a wish, how long an offer holds, which
slots a changed configuration adds. No I/O; "now" is passed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from services.booking.domain import LocationConfig, Slot, candidate_slots, cutoff_of, last_bookable_day
from shared.clock import BERLIN
from shared.errors import ConflictError, OTVError
from shared.events.catalog import LeadTime
from shared.events.waiting_list import WishStatus

# A wish looks at most this far ahead (the booking horizon: 8 weeks).
MAX_WISH_DAYS = 56


class AlreadyWaitingError(ConflictError):
    code = "already_waiting"


class SlotsAvailableError(ConflictError):
    """Appointments that suit the wish are free now: book one instead of waiting for a freed one (the
    waiting list offers only capacity that is freed or added later, R45). `details` name the first."""

    code = "slots_available"


class LinkExpiredError(OTVError):
    """The wish has ended or the offer has expired: the link in the mail no longer does anything."""

    code = "link_expired"
    status = 410


@dataclass(frozen=True)
class Criteria:
    """What suits the customer."""

    weekdays: frozenset[int]
    earliest: time | None
    latest: time | None
    latest_date: date
    evening_declared: bool

    def fits(self, slot: Slot) -> bool:
        start = slot.start.astimezone(BERLIN)
        end = slot.end.astimezone(BERLIN)
        if start.weekday() not in self.weekdays or start.date() > self.latest_date:
            return False
        if self.earliest is not None and start.time() < self.earliest:
            return False
        if self.latest is not None and (end.date() != start.date() or end.time() > self.latest):
            return False
        # R12: an evening slot only for a customer who declared work or a measure.
        return not slot.evening or self.evening_declared


@dataclass(frozen=True)
class Wish:
    id: uuid.UUID
    reference: str
    revision: int
    status: WishStatus
    location_id: str
    group_id: str
    concern_id: str
    mode: str
    criteria: Criteria
    language: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    customer_number: str | None
    household_number: str | None
    location_name: str
    location_address: str
    concern_name: str
    sensitive: bool
    registered_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    appointment_id: uuid.UUID | None
    missed_offers: int

    @property
    def active(self) -> bool:
        return self.status in (WishStatus.PENDING_OPT_IN, WishStatus.WAITING, WishStatus.OFFERED)

    def confirm_by(self, opt_in_hours: float) -> datetime | None:
        """Until when an unconfirmed wish's opt-in link works (R45): the opt-in time after registering,
        but never past the wish's latest date (an expired wish cannot be confirmed). None once confirmed
        or ended, when there is nothing left to confirm."""
        if self.status is not WishStatus.PENDING_OPT_IN:
            return None
        day_after = datetime.combine(self.criteria.latest_date + timedelta(days=1), time.min, BERLIN)
        return min(self.registered_at + timedelta(hours=opt_in_hours), day_after)


@dataclass(frozen=True)
class Offer:
    id: uuid.UUID
    wish_id: uuid.UUID
    status: str
    location_id: str
    group_id: str
    service_point: int
    start: datetime
    end: datetime
    evening: bool
    expires_at: datetime
    offered_at: datetime
    # The wish's revision of the offer (that of its offer mail), and what the notifier reported of that
    # mail: "sent", "failed", or None (no report: it counts as not delivered, R45).
    offered_revision: int | None = None
    mail_outcome: str | None = None

    @property
    def delivered(self) -> bool:
        """Whether the customer got the offer's mail: only then is an offer left to run out missed."""
        return self.mail_outcome == "sent"


@dataclass(frozen=True)
class Freed:
    """Capacity that became free: a time range of one service point of a group (None: any point)."""

    id: int
    location_id: str
    group_id: str
    service_point: int | None
    start: datetime
    end: datetime
    source: str
    available_at: datetime


def offer_expiry(now: datetime, slot: Slot, lead: LeadTime, hours: float) -> datetime:
    """The offer holds for `hours`, but never past the booking cutoff of the slot's day (R19) nor past
    the latest moment the lead time allows booking it."""
    return min(
        now + timedelta(hours=hours),
        cutoff_of(slot.start.astimezone(BERLIN).date(), lead),
        slot.start - timedelta(minutes=lead.min_minutes),
    )


def slots_in(
    config: LocationConfig, concern_id: str, start: datetime, end: datetime, latest_date: date, now: datetime
) -> list[Slot]:
    """The concern's bookable slots (calendar and time rules) that lie within [start, end)."""
    concern = config.concern(concern_id)
    if concern is None:
        return []
    first = start.astimezone(BERLIN).date()
    last = min(end.astimezone(BERLIN).date(), latest_date)
    if last < first:
        return []
    start_ts, end_ts = int(start.timestamp()), int(end.timestamp())
    return [
        slot
        for slot in candidate_slots(config, concern, first, last, now)
        if slot.start_ts >= start_ts and slot.end_ts <= end_ts
    ]


def added_capacity(
    old: LocationConfig | None, new: LocationConfig, concern_ids: Iterable[str], last: date, now: datetime
) -> list[tuple[str, int, datetime, datetime]]:
    """Slots of the given concerns that the new configuration offers and the old did not, or with more
    service points (a new window, more capacity, a closure lifted): `(group, point, start, end)` for each
    service point that is new at that time."""
    first = now.astimezone(BERLIN).date()
    found: dict[tuple[str, int, int], tuple[str, int, datetime, datetime]] = {}
    for concern_id in set(concern_ids):
        concern = new.concern(concern_id)
        if concern is None:
            continue
        before: dict[int, int] = {}
        old_concern = old.concern(concern_id) if old is not None else None
        if old is not None and old_concern is not None and old_concern.group_id == concern.group_id:
            before = {s.start_ts: s.points for s in candidate_slots(old, old_concern, first, last, now)}
        for slot in candidate_slots(new, concern, first, last, now):
            for point in range(before.get(slot.start_ts, 0) + 1, slot.points + 1):
                found[(slot.group_id, point, slot.start_ts)] = (slot.group_id, point, slot.start, slot.end)
    return sorted(found.values(), key=lambda item: (item[2], item[0], item[1]))


def entered_horizon(
    config: LocationConfig,
    concern_ids: Iterable[str],
    seen: date | None,
    since: datetime,
    latest: date,
    now: datetime,
) -> list[tuple[str, datetime, datetime]]:
    """R45 with R19: the days that entered the location's booking horizon since the wishes were checked
    against it, as freed ranges `(group, start, end)` of the wishes' groups (any service point: the whole
    day is new). Such a day was beyond the horizon when the oldest wish was registered (its free check
    stopped there) and after `seen`, the last day freed before; none after the wishes' latest date."""
    lead = config.snapshot.lead_time
    first = since.astimezone(BERLIN).date() + timedelta(days=lead.max_days + 1)
    if seen is not None:
        first = max(first, seen + timedelta(days=1))
    last = min(last_bookable_day(now, lead), latest)
    if first > last:
        return []
    groups = sorted({concern.group_id for c in set(concern_ids) if (concern := config.concern(c))})
    start = datetime.combine(first, time.min, BERLIN)
    end = datetime.combine(last + timedelta(days=1), time.min, BERLIN)
    return [(group, start, end) for group in groups]


def check_latest_date(latest_date: date, today: date) -> str | None:
    if latest_date < today:
        return "must not be in the past"
    if latest_date > today + timedelta(days=MAX_WISH_DAYS):
        return f"at most {MAX_WISH_DAYS} days (8 weeks) ahead"
    return None
