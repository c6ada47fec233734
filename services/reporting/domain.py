"""Rules of reporting as plain Python: calendar days in Berlin, offered capacity, pseudonyms, the rows of a
day list, suppression of small counts. No I/O; "now" is passed in."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from shared.calendar import is_public_holiday
from shared.clock import BERLIN
from shared.errors import OTVError, ValidationError
from shared.events.appointment import INTERPRETER_ERASED
from shared.events.catalog import LocationConfiguredV1
from shared.labels import CHANNELS_DE, MODES_DE, OUTCOMES_DE, language_de

# The columns of the read model that hold personal data (R34): erased by the retention job, never in
# statistics. Kept in step with the CHECK constraint of migration 003.
PERSONAL_COLUMNS = (
    "reference",
    "first_name",
    "last_name",
    "phone",
    "customer_number",
    "household_number",
    "customer_key",
    "email_domain",
    "client_network",
)

# Of the interpreter an anonymised row keeps that one was needed (the statistics count it, R26), not the
# language (personal data: it may tell where the customer comes from). Kept in step with migration 011.
ANONYMISED_INTERPRETER = (
    f"interpreter_language = CASE WHEN interpreter_language IS NULL THEN NULL ELSE '{INTERPRETER_ERASED}' END"
)


def anonymise_values(values: dict[str, Any]) -> None:
    """A snapshot's values for an anonymised row: no personal data (R34, I6)."""
    values.update(dict.fromkeys(PERSONAL_COLUMNS))
    if values.get("interpreter_language") is not None:
        values["interpreter_language"] = INTERPRETER_ERASED


STATUS_LABELS = {
    "booked": "gebucht",
    "cancelled": "storniert",
    "passed": "abgelaufen",
}
# The staff side's words, shared with the staff pages of the gateway.
OUTCOME_LABELS = OUTCOMES_DE
MODE_LABELS = MODES_DE
CHANNEL_LABELS = CHANNELS_DE
CANCELLED_BY_LABELS = {
    "customer": "Kund:in",
    "staff": "Mitarbeitende",
    "service_centre": "Service-Center",
    "system": "System",
}
# The waiting list's events (R45) as counted in `waiting_counts` (`waiting_list.counted_as`), in the order
# of a wish's life; then the endings that are no withdrawal or expiry of a wish (counted apart).
WAITING_LABELS = {
    "registered": "eingetragen",
    "confirmed": "Adresse bestätigt",
    "offered": "Termin angeboten",
    "offer_expired": "Angebot verfallen",
    "offer_not_delivered": "Angebot nicht zugestellt",
    "fulfilled": "Termin gebucht",
    "fulfilled_via_offer": "davon über ein Angebot",
    "fulfilled_on_own": "davon selbst gebucht",
    "withdrawn": "zurückgezogen",
    "expired": "ohne Termin abgelaufen",
    "not_confirmed": "Adresse nie bestätigt",
    "replaced": "durch neue Eintragung ersetzt",
    "re_registered": "erneut eingetragen",
}
WEEKDAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")

# The evening dimension of the statistics (R12): appointments in evening windows and the others.
EVENING_LABELS = {"daytime": "tagsüber", "evening": "abends (Abendtermine)"}

CALLBACK_PROMISE = timedelta(hours=48)  # directive 2.3: callbacks within 48 hours


class GoneError(OTVError):
    """The thing existed but is deleted on purpose (a past day's list, R33)."""

    code = "gone"
    status = 410


# --- the Berlin calendar ------------------------------------------------------------------------------


def berlin_day(instant: datetime) -> date:
    return instant.astimezone(BERLIN).date()


def berlin_instant(day: date, at: time) -> datetime:
    """The UTC instant of a Berlin wall-clock time on `day` (correct across daylight-saving changes)."""
    return datetime.combine(day, at, tzinfo=BERLIN).astimezone(UTC)


def day_start(day: date) -> datetime:
    return berlin_instant(day, time(0, 0))


def day_end(day: date) -> datetime:
    return day_start(day + timedelta(days=1))


def list_due_at(day: date, hour: int) -> datetime:
    """When the list of `day` is created automatically (R22: after the 06:00 booking cutoff)."""
    return berlin_instant(day, time(hour, 0))


def list_delete_after(day: date, keep_hours: int) -> datetime:
    """When the file of the list of `day` is deleted (R33: when its day is over)."""
    return day_end(day) + timedelta(hours=keep_hours)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def date_label(day: date) -> str:
    return f"{WEEKDAYS_DE[day.weekday()]}, {day:%d.%m.%Y}"


# --- offered capacity ---------------------------------------------------------------------------------


def offered_minutes(
    snapshot: LocationConfiguredV1, day: date, *, evening_only: bool = False
) -> dict[str, int]:
    """Minutes offered per group on `day`: the windows of that weekday times their service points (fewer
    under a restriction), none on public holidays of Bremen, on closures, or at an inactive location.
    `evening_only`: those of the evening windows alone (R12, directive 3.3)."""
    groups = {g.id: 0 for g in snapshot.groups}
    if not snapshot.active or is_public_holiday(day):
        return groups
    # Points left per group by the day's closures (0: closed; a restriction keeps points 1..n).
    location_left: int | None = None
    group_left: dict[str, int] = {}
    for closure in snapshot.closures:
        if closure.first <= day <= closure.last:
            left = closure.service_points_left
            if closure.group_id is None:
                location_left = left if location_left is None else min(location_left, left)
            else:
                group_left[closure.group_id] = min(group_left.get(closure.group_id, left), left)
    for window in snapshot.windows:
        if window.weekday != day.weekday() or (evening_only and not window.evening):
            continue
        caps = [c for c in (location_left, group_left.get(window.group_id)) if c is not None]
        points = min([window.service_points, *caps])
        if points == 0:
            continue
        if window.valid_from is not None and day < window.valid_from:
            continue
        if window.valid_until is not None and day > window.valid_until:
            continue
        minutes = window_minutes(day, window.start, window.end) * points
        groups[window.group_id] = groups.get(window.group_id, 0) + minutes
    return groups


def _exists_once(wall: datetime) -> bool:
    """Whether a Berlin wall-clock time is one instant: not in the hour the clocks skip in March, nor in
    the one they repeat in October (booking offers no slot there)."""
    aware = wall.replace(tzinfo=BERLIN)
    if aware.astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) != wall:
        return False
    return aware.utcoffset() == wall.replace(tzinfo=BERLIN, fold=1).utcoffset()


def window_minutes(day: date, start: time, end: time) -> int:
    """The real minutes a window offers on `day`. On the Sundays the clocks change, the wall clock's length
    is not the real one, and booking sells no slot in the skipped or repeated hour: those minutes count
    for nothing, the others one real minute each."""
    wall, wall_end = datetime.combine(day, start), datetime.combine(day, end)
    midnight = datetime.combine(day, time(0), BERLIN)
    if midnight.utcoffset() == datetime.combine(day + timedelta(days=1), time(0), BERLIN).utcoffset():
        return max(0, int((wall_end - wall).total_seconds() // 60))
    minutes = 0
    while wall < wall_end:  # a minute at a time on two days a year
        minutes += _exists_once(wall)
        wall += timedelta(minutes=1)
    return minutes


def group_names(snapshot: dict[str, Any] | None) -> dict[str, str]:
    if not snapshot:
        return {}
    return {g["id"]: _german(g.get("name")) or g["id"] for g in snapshot.get("groups", [])}


def concern_names(snapshot: dict[str, Any] | None) -> dict[str, str]:
    if not snapshot:
        return {}
    return {c["concern_id"]: _german(c.get("name")) or c["concern_id"] for c in snapshot.get("concerns", [])}


def _german(text: Any) -> str:
    if isinstance(text, dict):
        return str(text.get("de") or next(iter(text.values()), ""))
    return str(text or "")


# --- pseudonyms (R48) -----------------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_domain(email: str) -> str | None:
    _, at, domain = normalise_email(email).rpartition("@")
    return domain or None if at else None


def keyed_hash(secret: str, *parts: str | None) -> str:
    """A pseudonym: equal inputs give equal values, and nobody without the key can reverse or test them."""
    message = "\x1f".join(p or "" for p in parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def customer_key(secret: str, email: str) -> str:
    return keyed_hash(secret, "customer", normalise_email(email))


def network_prefix(value: str | None) -> str | None:
    """The booking's network as a /24 (IPv4) or /48 (IPv6) prefix: a full address is cut down, so that
    reporting never stores one; anything unreadable is dropped."""
    if not value:
        return None
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    prefix = 24 if network.version == 4 else 48
    if network.prefixlen > prefix:
        network = network.supernet(new_prefix=prefix)
    return str(network)


# --- the day list ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayListRow:
    group_id: str
    group_name: str
    start: datetime
    end: datetime
    service_point: int
    last_name: str
    first_name: str
    customer_number: str | None
    household_number: str | None
    concern: str
    mode: str
    phone: str | None
    interpreter_language: str | None
    status: str
    outcome: str | None
    reference: str
    emergency: bool = False
    language: str = "de"  # of the customer's pages and mails (de, de-x-ls, en, or one added as content)
    # Moved away from this list (another day or location): where it is now, `moved_label` (R22).
    moved_to: str = ""
    # Cancelled because another location took the concern over without a free slot (R25): its name.
    handed_to: str = ""

    @property
    def duration_minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def customer_name(self) -> str:
        return f"{self.last_name}, {self.first_name}" if self.last_name else self.first_name

    @property
    def numbers(self) -> str:
        parts = []
        if self.customer_number:
            parts.append(f"Kd-Nr. {self.customer_number}")
        if self.household_number:
            parts.append(f"BG-Nr. {self.household_number}")
        # One per line: both together are wider than the column and would be cut off in print.
        return "\n".join(parts)

    @property
    def phone_for_call(self) -> str:
        # R4: the number matters for phone appointments only; the list shows no more than the task needs.
        return (self.phone or "") if self.mode == "phone" else ""

    @property
    def notes(self) -> str:
        """What staff prepare for besides the concern, as the day page shows it: an emergency (it goes
        first, DA 3.3), the interpreter and the customer's language when it is not German."""
        lines = []
        if self.emergency:
            lines.append("Notfall")
        if self.interpreter_language:
            lines.append(f"Sprachmittlung: {self.interpreter_language}")
        if self.language != "de":
            lines.append(f"Sprache: {language_de(self.language)}")
        return "\n".join(lines)

    @property
    def moved(self) -> bool:
        return bool(self.moved_to)

    @property
    def struck(self) -> bool:
        """Not expected at this desk at this time: cancelled, or moved away."""
        return self.moved or self.status == "cancelled"

    @property
    def status_label(self) -> str:
        if self.moved:
            return f"{self.moved_to}, dort storniert" if self.status == "cancelled" else self.moved_to
        if self.status == "cancelled" and self.handed_to:
            return f"übergeben an Standort {self.handed_to} (Rückruf)"
        if self.outcome:
            return OUTCOME_LABELS.get(self.outcome, self.outcome)
        return STATUS_LABELS.get(self.status, self.status)

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.start, self.service_point, self.reference)


def moved_label(location_id: str, to_location_id: str, to_location_name: str, to_start: datetime) -> str:
    """Where an appointment moved away from a list went: "verlegt auf 18.03. 10:00" within the location,
    "übernommen von Standort Nord (18.03. 10:00)" when another location took it over (R25)."""
    when = f"{to_start.astimezone(BERLIN):%d.%m. %H:%M}"
    if to_location_id != location_id:
        return f"übernommen von Standort {to_location_name} ({when})"
    return f"verlegt auf {when}"


def day_list_filename(location_id: str, day: date) -> str:
    """The download's name: location and date only, no personal data."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in location_id)[:40]
    return f"terminliste_{safe}_{day.isoformat()}.xlsx"


# --- statistics -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def statistics_period(first: date | None, last: date | None, today: date, max_days: int) -> Period:
    """The period of a statistics request; by default the last 30 days up to today."""
    last = last or today
    first = first or last - timedelta(days=29)
    if first > last:
        raise ValidationError(
            "The period ends before it starts.",
            details=[{"field": "from", "message": "must not be after 'to'"}],
        )
    if (last - first).days + 1 > max_days:
        raise ValidationError(
            f"The period may cover at most {max_days} days.",
            details=[{"field": "to", "message": f"at most {max_days} days after 'from'"}],
        )
    return Period(first, last)


def suppress(count: int, threshold: int) -> int | str:
    """A count as shown in an export: 1 to threshold-1 become "<threshold" (a handful of appointments of
    one concern on one day could point to a person); 0 stays 0, it identifies nobody."""
    if 0 < count < threshold:
        return f"<{threshold}"
    return count


# A hidden cell's range as a reader knows it: "<5" is 1 to 4, a cell hidden for protection is 5 or more.
Bounds = tuple[float, float]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Line(Generic[K]):
    """A sum a reader of an export can check: `total` = the sum of `parts`. Where something else adds to
    the total as well (appointments still to come beside those with an outcome), it is taken as known to
    the reader: that can only hide more, never less."""

    total: K
    parts: tuple[K, ...]


def _pinned(line: Line[K], values: dict[K, int], hidden: dict[K, Bounds], small: int | None) -> bool:
    """Whether one line gives a hidden value of it back: total minus the shown parts leaves one hidden
    cell, or leaves so little for its hidden cells that one of them can have only one value (two "<5"
    adding up to 2), or (counts, `small` given) leaves their sum itself a count below `small`."""
    terms = [(1, k) for k in line.parts if k in hidden]
    if line.total in hidden:
        terms.append((-1, line.total))
    if not terms:
        return False
    if len(terms) == 1:
        return True
    known = sum(sign * values[k] for sign, k in terms)  # the total minus the shown parts
    if small is not None and line.total not in hidden and 0 < known < small:
        return True
    # The range of the signed sum of all hidden terms, infinite ends counted apart.
    low = high = 0.0
    low_inf = high_inf = 0
    ranges = []
    for sign, k in terms:
        lo, hi = hidden[k]
        a, b = (lo, hi) if sign > 0 else (-hi, -lo)
        ranges.append((a, b))
        low_inf += a == -math.inf
        high_inf += b == math.inf
        low += 0 if a == -math.inf else a
        high += 0 if b == math.inf else b
    for a, b in ranges:
        # The others' sum lies between rest_low and rest_high: this term is known minus it.
        rest_low = -math.inf if low_inf - (a == -math.inf) else low - (0 if a == -math.inf else a)
        rest_high = math.inf if high_inf - (b == math.inf) else high - (0 if b == math.inf else b)
        term_low, term_high = max(a, known - rest_high), min(b, known - rest_low)
        if a < b and term_low >= term_high:  # ("<2" says 1 by itself: no line can give away more)
            return True
    return False


def protect(
    values: dict[K, int],
    lines: list[Line[K]],
    hidden: dict[K, Bounds],
    *,
    protected: Bounds,
    small: int | None,
) -> set[K]:
    """Secondary suppression (as statistical offices do it): hides more cells until no line gives a hidden
    value back by subtraction. `hidden` holds the cells hidden at first with the range a reader knows for
    each; a line that would give one back also loses its smallest shown part that is not 0 (a 0 tells
    nothing and stays), or else its total; repeated until every line holds, since a cell hidden for one
    line can open another. Returns the cells hidden for protection; `hidden` gets them too."""
    added: set[K] = set()
    changed = True
    while changed:
        changed = False
        for line in lines:
            while _pinned(line, values, hidden, small):
                shown = [k for k in line.parts if k not in hidden and values[k] != 0]
                if shown:
                    cell = min(shown, key=lambda k: values[k])
                elif line.total not in hidden and values[line.total] != 0:
                    cell = line.total
                else:
                    break  # nothing left to hide; a line of zeros and hidden cells gives nothing back
                hidden[cell] = protected
                added.add(cell)
                changed = True
    return added


def utilisation(booked_minutes: int, offered: int | None) -> float | None:
    if not offered:
        return None
    return round(booked_minutes / offered, 4)


LEAD_TIME_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("unter 1 Tag", 24.0),
    ("1-2 Tage", 72.0),
    ("3-7 Tage", 24.0 * 8),
    ("8-14 Tage", 24.0 * 15),
    ("15 Tage und mehr", None),
)


def lead_time_bucket(hours: float) -> str:
    for label, below in LEAD_TIME_BUCKETS:
        if below is None or hours < below:
            return label
    return LEAD_TIME_BUCKETS[-1][0]
