"""The booking rules as plain Python: no aiohttp, no asyncpg, no I/O; "now" is passed in.

Slots are generated on the wall clock of Europe/Berlin from a location's weekly windows (R16, R17), then
thinned by the calendar (Bremen public holidays, closures, the month-change block of R18) and by the time
rules (lead time, the 06:00 cutoff of the day itself, the horizon: R19). A slot is free while at least
one service point of its group is free for the concern's whole duration (R13). Instants are compared as
integer epoch seconds, which keeps availability over eight weeks cheap.

Besides the error base this module uses only pure parts of `shared`: the calendar and the catalog's
snapshot models (data, no I/O).
"""

from __future__ import annotations

import bisect
import calendar
import functools
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from shared.calendar import in_calendar, is_public_holiday
from shared.clock import BERLIN
from shared.errors import ConflictError, ValidationError
from shared.events.appointment import AppointmentStatus
from shared.events.catalog import (
    ConcernOffer,
    GroupSnapshot,
    LeadTime,
    LocalText,
    LocationConfiguredV1,
    MonthChangeBlock,
    WindowSnapshot,
)
from shared.languages import lookup

# Availability is asked for at most eight weeks at once (`to` inclusive).
MAX_RANGE_DAYS = 56


# --- errors (codes of the architecture's booking API) -------------------------------------------------------


class SlotTakenError(ConflictError):
    code = "slot_taken"


class AlreadyBookedError(ConflictError):
    code = "already_booked"


class BookingClosedError(ConflictError):
    code = "booking_closed"


class TooLateError(ConflictError):
    code = "too_late"


class HoldLimitError(ConflictError):
    """R38 with R39: the client has held this slot for the longest time one hold may last (renewals and
    holds taken again at once included); the slot can still be booked without a hold while it is free."""

    code = "hold_limit_reached"


def hold_expiry(now: datetime, held_since: datetime, hold: timedelta, longest: timedelta) -> datetime | None:
    """Until when a hold placed or renewed now lasts: `hold` from now, but never past `longest` after the
    holder began to hold the slot (one client must not block a slot for ever, R39); None when that time
    is up."""
    until = min(now + hold, held_since + longest)
    return until if until > now else None


def field_error(field_name: str, message: str, kind: str = "value_error") -> ValidationError:
    """A 422 that names the offending field, like the ones pydantic parsing produces."""
    return ValidationError(
        f"Invalid input: {field_name}.", details=[{"field": field_name, "message": message, "type": kind}]
    )


# --- the location's configuration, indexed for the rules ----------------------------------------------------


def local_text(text: LocalText, language: str) -> str:
    """A text in the customer's language, else along its tag (`en-GB` -> `en`); German is always there and
    the last fallback (R43: a language the pages offer as content has no texts in the catalog)."""
    for candidate in lookup(language):
        if text.get(candidate):
            return text[candidate]
    return next(iter(text.values()), "")


@dataclass(frozen=True)
class LocationConfig:
    """A location's bookable configuration (the catalog's snapshot), indexed once per revision."""

    snapshot: LocationConfiguredV1
    concerns: dict[str, ConcernOffer]
    groups: dict[str, GroupSnapshot]
    windows: dict[tuple[str, int], list[WindowSnapshot]]
    # The slot grid per (concern, day), filled on demand (see grid_slots).
    grids: dict[tuple[str, date], list[Slot]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, snapshot: LocationConfiguredV1) -> LocationConfig:
        concerns: dict[str, ConcernOffer] = {}
        for offer in snapshot.concerns:
            concerns.setdefault(offer.concern_id, offer)  # one group per concern and location
        windows: dict[tuple[str, int], list[WindowSnapshot]] = {}
        for window in snapshot.windows:
            windows.setdefault((window.group_id, window.weekday), []).append(window)
        for listed in windows.values():
            listed.sort(key=lambda w: w.start)
        return cls(
            snapshot=snapshot,
            concerns=concerns,
            groups={g.id: g for g in snapshot.groups},
            windows=windows,
        )

    @property
    def location_id(self) -> str:
        return self.snapshot.location_id

    @property
    def revision(self) -> int:
        return self.snapshot.revision

    @property
    def address(self) -> str:
        return self.snapshot.address.one_line()

    def concern(self, concern_id: str) -> ConcernOffer | None:
        return self.concerns.get(concern_id)


# --- appointments -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Appointment:
    """An appointment as the booking service keeps it."""

    id: uuid.UUID
    reference: str
    revision: int
    status: AppointmentStatus
    location_id: str
    group_id: str
    service_point: int
    concern_id: str
    mode: str
    channel: str
    language: str
    start: datetime
    end: datetime
    evening: bool
    evening_declared: bool
    interpreter_language: str | None
    first_name: str
    last_name: str
    email: str
    phone: str | None
    customer_number: str | None
    household_number: str | None
    location_name: str
    location_address: str
    concern_name: str
    documents: list[str]
    sensitive: bool
    emergency: bool
    booked_at: datetime
    client_network: str | None = None
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = None


@dataclass(frozen=True)
class NewAppointment:
    """Everything about a booking except where it lands (the service point) and its secret."""

    id: uuid.UUID
    reference: str
    location_id: str
    group_id: str
    concern_id: str
    mode: str
    channel: str
    language: str
    start: datetime
    end: datetime
    evening: bool
    evening_declared: bool
    interpreter_language: str | None
    first_name: str
    last_name: str
    email: str
    phone: str | None
    customer_number: str | None
    household_number: str | None
    email_key: str | None  # None: allow-listed (R6)
    customer_number_key: str | None
    household_number_key: str | None
    manage_token_hash: bytes
    location_name: str
    location_address: str
    concern_name: str
    documents: list[str]
    sensitive: bool
    emergency: bool
    booked_at: datetime
    client_network: str | None = None


REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_reference(choice: Callable[[str], str]) -> str:
    """A reference a person can read out on the phone: no 0/O or 1/I/L to confuse."""
    chars = "".join(choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def reference_in(text: str) -> str | None:
    """The reference a caller read out, as staff typed it ("xsf28yfj", "XSF2 8YFJ", "xsf2-8yfj"), in its
    stored form "XSF2-8YFJ"; None when the text is not eight characters of the reference alphabet."""
    chars = "".join(c for c in text.upper() if not c.isspace() and c not in "-\u2013")  # a hyphen, an en dash
    if len(chars) != 8 or any(c not in REFERENCE_ALPHABET for c in chars):
        return None
    return f"{chars[:4]}-{chars[4:]}"


# --- slots --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    group_id: str
    start: datetime  # aware, Europe/Berlin
    end: datetime
    start_ts: int  # epoch seconds, for cheap comparisons
    end_ts: int
    start_iso: str  # ISO 8601 with the Berlin offset, as the API shows it
    end_iso: str
    points: int  # service points 1..points of the group take appointments in this slot
    evening: bool  # R12: reserved for people in work or in a measure

    # The slot as the availability answer shows it, built once (this is the hottest read).
    json: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        evening = "true" if self.evening else "false"
        text = f'{{"start":"{self.start_iso}","end":"{self.end_iso}","evening_reserved":{evening}}}'
        object.__setattr__(self, "json", text)  # a frozen dataclass sets its derived field so

    def point_numbers(self) -> range:
        return range(1, self.points + 1)


def _day_has_transition(day: date) -> bool:
    midnight = datetime.combine(day, time(0), BERLIN)
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), BERLIN)
    return midnight.utcoffset() != next_midnight.utcoffset()


def _localise(naive: datetime) -> datetime | None:
    """The Berlin instant of a wall-clock time; None where the wall clock is ambiguous or skipped
    (the hour clocks go back on the last Sunday of October, the hour they skip in March)."""
    aware = naive.replace(tzinfo=BERLIN)
    if aware.astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) != naive:
        return None  # does not exist: inside the spring-forward gap
    if aware.utcoffset() != naive.replace(tzinfo=BERLIN, fold=1).utcoffset():
        return None  # exists twice: a customer could not tell which one is meant
    return aware


def window_slots(day: date, window: WindowSnapshot, duration_minutes: int, points: int) -> list[Slot]:
    """The slots of one window on one day: a grid of the concern's duration from the window's start on the
    wall clock; a slot must fit into the window, and never spans a change of the clocks."""
    if points <= 0 or window.end <= window.start:
        return []
    step = timedelta(minutes=duration_minutes)
    wall = datetime.combine(day, window.start)
    wall_end = datetime.combine(day, window.end)
    careful = _day_has_transition(day)
    slots: list[Slot] = []
    while wall + step <= wall_end:
        if careful:
            start = _localise(wall)
            end = _localise(wall + step)
            # Aware datetimes of one zone subtract on the wall clock; the real length needs UTC.
            if start is None or end is None or end.astimezone(UTC) - start.astimezone(UTC) != step:
                wall += step
                continue
        else:
            start = wall.replace(tzinfo=BERLIN)
            end = (wall + step).replace(tzinfo=BERLIN)
        slots.append(
            Slot(
                group_id=window.group_id,
                start=start,
                end=end,
                start_ts=int(start.timestamp()),
                end_ts=int(end.timestamp()),
                start_iso=start.isoformat(),
                end_iso=end.isoformat(),
                points=points,
                evening=window.evening,
            )
        )
        wall += step
    return slots


def _window_applies(window: WindowSnapshot, day: date) -> bool:
    if window.valid_from is not None and day < window.valid_from:
        return False
    return not (window.valid_until is not None and day > window.valid_until)


def grid_slots(config: LocationConfig, concern: ConcernOffer, day: date) -> list[Slot]:
    """Every slot of the concern on that day by the weekly windows alone (no calendar, no time rules).
    Remembered per configuration revision: the hottest read asks for the same days again and again."""
    key = (concern.concern_id, day)
    cached = config.grids.get(key)
    if cached is None:
        if len(config.grids) >= _GRID_CACHE_SIZE:
            config.grids.clear()
        cached = config.grids[key] = _grid_slots(config, concern, day)
    return cached


_GRID_CACHE_SIZE = 4096


def _grid_slots(config: LocationConfig, concern: ConcernOffer, day: date) -> list[Slot]:
    group = config.groups.get(concern.group_id)
    if group is None:
        return []
    found: dict[int, Slot] = {}
    # A restriction leaves points 1..n; a closed day (0) keeps its grid, day_blocked_reason refuses it.
    points_left = day_points_left(config, concern.group_id, day) or NO_LIMIT
    for window in config.windows.get((concern.group_id, day.weekday()), ()):
        if not _window_applies(window, day):
            continue
        points = min(window.service_points, group.service_points, points_left)
        for slot in window_slots(day, window, concern.duration_minutes, points):
            seen = found.get(slot.start_ts)
            # Overlapping windows of one group offer the same slot once, with the larger capacity.
            found[slot.start_ts] = (
                slot
                if seen is None
                else replace(seen, points=max(seen.points, slot.points), evening=seen.evening or slot.evening)
            )
    return [found[key] for key in sorted(found)]


# --- the calendar: holidays, closures, the month-change block -----------------------------------------------


NO_LIMIT = 10_000  # more service points than any group has: no restriction


def day_points_left(config: LocationConfig, group_id: str, day: date) -> int:
    """How many service points of the group may take appointments on that day by the closures: 0 when
    it is closed, the smallest `service_points_left` of a restriction, else no limit (a large number)."""
    left = NO_LIMIT
    for closure in config.snapshot.closures:
        if closure.first <= day <= closure.last and closure.group_id in (None, group_id):
            left = min(left, closure.service_points_left)
    return left


def in_month_change_block(block: MonthChangeBlock | None, day: date) -> bool:
    """R18: the last `last_days` days of a month and the first `first_days` days of the next."""
    if block is None:
        return False
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    return day.day <= block.first_days or day.day > days_in_month - block.last_days


def day_blocked_reason(config: LocationConfig, concern: ConcernOffer, day: date) -> str | None:
    """Why no appointment of this concern can be booked on that day, or None."""
    if is_public_holiday(day):
        return "public holiday"
    if day_points_left(config, concern.group_id, day) == 0:
        return "closed"
    if not concern.emergency and in_month_change_block(config.snapshot.month_change_block, day):
        return "only emergency concerns around the turn of the month"
    return None


# --- the time rules (R19) -----------------------------------------------------------------------------------


def cutoff_of(day: date, lead: LeadTime) -> datetime:
    """Booking for a day closes at the cutoff (06:00) on that day itself."""
    return datetime.combine(day, lead.cutoff, BERLIN)


def last_bookable_day(now: datetime, lead: LeadTime) -> date:
    return now.astimezone(BERLIN).date() + timedelta(days=lead.max_days)


def day_open_at(day: date, now: datetime, lead: LeadTime, *, horizon: bool = True) -> bool:
    return now < cutoff_of(day, lead) and (not horizon or day <= last_bookable_day(now, lead))


def earliest_start(now: datetime, lead: LeadTime) -> int:
    return int((now + timedelta(minutes=lead.min_minutes)).timestamp())


def booking_closed_reason(slot: Slot, now: datetime, lead: LeadTime) -> str | None:
    day = slot.start.date()
    if slot.start <= now:
        return "this time has already passed"
    if now >= cutoff_of(day, lead):
        return f"booking for this day closed at {lead.cutoff.strftime('%H:%M')} on the day"
    if day > last_bookable_day(now, lead):
        return f"appointments can be booked at most {lead.max_days} days ahead"
    if slot.start_ts < earliest_start(now, lead):
        return f"appointments need to be booked at least {lead.min_minutes} minutes ahead"
    return None


# --- capacity -----------------------------------------------------------------------------------------------


@dataclass
class Busy:
    """The occupied times of one service point (appointments and live holds), merged and sorted."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, starts: Sequence[int], ends: Sequence[int]) -> Busy:
        pairs = sorted(zip(starts, ends, strict=True))
        return cls.of_sorted([p[0] for p in pairs], [p[1] for p in pairs])

    @classmethod
    def of_sorted(cls, starts: Sequence[int], ends: Sequence[int]) -> Busy:
        """From intervals ordered by their start (the database sorts them): one linear merge."""
        merged_starts: list[int] = []
        merged_ends: list[int] = []
        last_end = None
        for start, end in zip(starts, ends, strict=True):
            if last_end is not None and start <= last_end:
                if end > last_end:
                    merged_ends[-1] = last_end = end
            else:
                merged_starts.append(start)
                merged_ends.append(end)
                last_end = end
        return cls(merged_starts, merged_ends)

    def is_free(self, start: int, end: int) -> bool:
        # The last interval that starts before `end` is the only one that can overlap [start, end).
        index = bisect.bisect_left(self.starts, end) - 1
        return index < 0 or self.ends[index] <= start


BusyMap = Mapping[tuple[str, int], Busy]


def free_points(slot: Slot, busy: BusyMap) -> list[int]:
    """The service points of the slot that are free for its whole duration, in order."""
    free: list[int] = []
    for point in slot.point_numbers():
        occupied = busy.get((slot.group_id, point))
        if occupied is None or occupied.is_free(slot.start_ts, slot.end_ts):
            free.append(point)
    return free


def has_free_point(slot: Slot, busy: BusyMap) -> bool:
    for point in slot.point_numbers():
        occupied = busy.get((slot.group_id, point))
        if occupied is None or occupied.is_free(slot.start_ts, slot.end_ts):
            return True
    return False


# --- availability and the choice of one slot ----------------------------------------------------------------


def check_day(name: str, day: date) -> None:
    """Dates far outside any booking horizon are refused before any calendar arithmetic is done on them."""
    if not in_calendar(day):
        raise field_error(name, "is not a date anybody can book")


def check_range(first: date, last: date) -> None:
    check_day("from", first)
    check_day("to", last)
    if last < first:
        raise field_error("to", "must not be before from")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise field_error("to", f"at most {MAX_RANGE_DAYS} days (8 weeks) at once")


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def candidate_slots(
    config: LocationConfig,
    concern: ConcernOffer,
    first: date,
    last: date,
    now: datetime,
    *,
    horizon: bool = True,
) -> list[Slot]:
    """The slots customers may book in the range by the calendar and the time rules, capacity aside.
    `horizon=False` leaves out the booking horizon (R19), which limits customers, not staff: a mass change
    (R44) moves customers to the days after it rather than cancel their appointments."""
    snapshot = config.snapshot
    if not snapshot.active:
        return []
    lead = snapshot.lead_time
    not_before = earliest_start(now, lead)
    found: list[Slot] = []
    for day in days(first, last):
        if not day_open_at(day, now, lead, horizon=horizon) or day_blocked_reason(config, concern, day):
            continue
        found.extend(slot for slot in grid_slots(config, concern, day) if slot.start_ts >= not_before)
    return found


class Slots(list[Slot]):
    """The free slots of one availability question, with the answer's JSON built once: the availability
    cache hands the same list to every reader of the same question (the hottest read)."""

    @functools.cached_property
    def answer_json(self) -> bytes:
        return ('{"slots":[' + ",".join(slot.json for slot in self) + "]}").encode()


def available_slots(
    config: LocationConfig, concern: ConcernOffer, first: date, last: date, now: datetime, busy: BusyMap
) -> Slots:
    occupied_points = sorted(point for group, point in busy if group == concern.group_id)
    return Slots(
        slot
        for slot in candidate_slots(config, concern, first, last, now)
        # A point with nothing booked or held in the whole range is free for every slot.
        if bisect.bisect_right(occupied_points, slot.points) < slot.points or has_free_point(slot, busy)
    )


def resolve_slot(config: LocationConfig, concern: ConcernOffer, start: datetime, now: datetime) -> Slot:
    """The slot a customer asks for: 422 when `start` is not a slot of the concern at all, 409
    `booking_closed` when it is one but cannot be booked now (calendar, cutoff, lead time, horizon). A
    start that has passed is 409 `too_late` (the architecture's code for it), for a booking, a hold and a
    move alike, with a detail naming `start`: a move's other `too_late` (the appointment itself has begun)
    names no field, so a client tells the two apart."""
    if not config.snapshot.active:
        raise BookingClosedError("This location takes no bookings at the moment.")
    try:
        wanted = int(start.timestamp())
        day = start.astimezone(BERLIN).date()
    except (OverflowError, ValueError):  # at the very ends of the calendar
        raise field_error("start", "is not a date anybody can book") from None
    if not in_calendar(day):
        raise field_error("start", "is not a date anybody can book")
    slot = next((s for s in grid_slots(config, concern, day) if s.start_ts == wanted), None)
    if slot is None:
        raise field_error("start", "is not the start of an appointment slot of this concern")
    if slot.start <= now:
        raise TooLateError(
            "This slot cannot be booked: this time has already passed.",
            details=[{"field": "start", "message": "this time has already passed", "type": "too_late"}],
        )
    reason = day_blocked_reason(config, concern, day) or booking_closed_reason(
        slot, now, config.snapshot.lead_time
    )
    if reason is not None:
        raise BookingClosedError(f"This slot cannot be booked: {reason}.")
    return slot
