"""The catalog's rules as plain Python: languages, the mandatory concerns of directive 3.2, the policy
check (R21), the responsibility finder's matching (R3), and the snapshot's fingerprint.

No I/O here. The snapshot (`LocationConfiguredV1`) is a plain pydantic value and serves as the policy
check's input, so that the check sees exactly what the booking service sees.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from shared.errors import ValidationError
from shared.events.catalog import GroupKind, LocationConfiguredV1
from shared.languages import is_well_formed, lookup, pick

# --- languages -------------------------------------------------------------------------------------

DEFAULT_LANGUAGE = "de"
# The languages of the catalogue's texts: German, English, Leichte Sprache (R43). The pages may offer
# further ones (content of the gateway); for those the texts come in German.
LANGUAGES = ("de", "en", "de-x-ls")

LocalText = dict[str, str]


def resolve_language(requested: str | None, accept_language: str | None) -> str:
    """The language of a response: the nearest to `?lang=` when given (any BCP 47 tag: one without texts
    here gets German; one that is no tag is a 422), else the best match of the Accept-Language header,
    else German."""
    if requested is not None and requested != "":
        wanted = requested.strip()
        if is_well_formed(wanted):
            return pick(wanted, LANGUAGES)
        raise ValidationError(
            "Unknown language.",
            details=[
                {
                    "field": "lang",
                    "message": f"a language tag such as {', '.join(LANGUAGES)}",
                    "type": "language_tag",
                }
            ],
        )
    return _from_accept_language(accept_language or "")


def _from_accept_language(header: str) -> str:
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:500].split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not tag or quality <= 0:
            continue
        if tag in LANGUAGES:
            language = tag
        elif tag.startswith("de-x-ls") or tag in {"de-ls", "ls"}:
            language = "de-x-ls"
        else:
            language = tag.split("-")[0]
        if language in LANGUAGES:
            choices.append((-quality, position, language))
    return sorted(choices)[0][2] if choices else DEFAULT_LANGUAGE


def text_in(text: LocalText | None, language: str) -> str:
    """A text in the wanted language, falling back along its tag to German (always present)."""
    if not text:
        return ""
    for candidate in lookup(language):
        if text.get(candidate):
            return text[candidate]
    return next(iter(text.values()), "")


def check_local_text(value: LocalText, *, field_name: str, max_length: int, required: bool = True) -> None:
    problems = []
    if required and not (value.get(DEFAULT_LANGUAGE) or "").strip():
        problems.append({"field": f"{field_name}.de", "message": "German text is required"})
    for language, text in value.items():
        if language not in LANGUAGES:
            problems.append({"field": f"{field_name}.{language}", "message": "unknown language"})
        elif len(text) > max_length:
            problems.append(
                {"field": f"{field_name}.{language}", "message": f"at most {max_length} characters"}
            )
    if problems:
        raise ValidationError(f"Invalid text: {field_name}.", details=problems)


# --- directive 3.2: the mandatory concerns (R15) ----------------------------------------------------

# Concern ids of the central catalogue that directive 3.2 makes mandatory, per group kind. A location
# with an entrance zone offers the entrance-zone list there; a location with a JBA entrance zone the JBA
# list; every location the benefits list ("in allen Liegenschaften").
MANDATORY_CONCERNS: dict[GroupKind, tuple[str, ...]] = {
    GroupKind.ENTRANCE_ZONE: ("neuantrag", "veraenderung", "arbeitsaufnahme"),
    GroupKind.JBA_ENTRANCE_ZONE: ("arbeitsaufnahme",),
    GroupKind.BENEFITS_TEAM: (
        "leistungsbezug",
        "umzugswunsch",
        "bearbeitungsstand",
        "einkommen",
        "bescheid",
        "rueckforderung",
        "bg-zuzug-auszug",
        "unterkunft",
        "notlage",
        "energiesperre",
        "p-konto",
    ),
}

# Which kinds of group may offer a concern meant for a kind: the JBA entrance zone is an entrance zone.
COMPATIBLE_KINDS: dict[GroupKind, frozenset[GroupKind]] = {
    GroupKind.ENTRANCE_ZONE: frozenset({GroupKind.ENTRANCE_ZONE, GroupKind.JBA_ENTRANCE_ZONE}),
    GroupKind.JBA_ENTRANCE_ZONE: frozenset({GroupKind.JBA_ENTRANCE_ZONE}),
    GroupKind.BENEFITS_TEAM: frozenset({GroupKind.BENEFITS_TEAM}),
}

# --- directive 3.3: windows and blocks (R17, R18) ---------------------------------------------------

MIN_DAYS_PER_WEEK = 4
EVENING_UNTIL = time(18, 0)
MONTH_CHANGE_MAX_DAYS = 3
BOOKING_CUTOFF = time(6, 0)  # directive 2.3: booking for a day closes at 06:00 on that day (R19)


def check_month_change_block(last_days: int, first_days: int) -> None:
    if last_days + first_days > MONTH_CHANGE_MAX_DAYS:
        raise ValidationError(
            "A month-change block lasts at most 3 days (directive 3.3).",
            details=[
                {
                    "field": "first_days",
                    "message": f"last_days + first_days must be at most {MONTH_CHANGE_MAX_DAYS}",
                    "type": "month_change_block_too_long",
                }
            ],
        )
    if last_days + first_days == 0:
        raise ValidationError(
            "A month-change block needs at least one day; remove it instead.",
            details=[{"field": "first_days", "message": "last_days + first_days must be at least 1"}],
        )


def check_window_times(start: time, end: time) -> None:
    problems = []
    for name, value in (("start", start), ("end", end)):
        if value.second or value.microsecond or value.minute % 5:
            problems.append({"field": name, "message": "whole minutes in steps of 5"})
    if end <= start:
        problems.append({"field": "end", "message": "must be after start", "type": "window_order"})
    if problems:
        raise ValidationError(
            "Invalid time window: " + ", ".join(p["field"] for p in problems), details=problems
        )


# --- the policy check (R21) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """A prior approval of a restriction (directive 3.6: by GBL 2 or BLL)."""

    rule: str
    reference: str
    approved_by: str
    valid_from: date
    valid_until: date


@dataclass(frozen=True)
class Finding:
    rule: str  # the requirement id: R15, R17, R18
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    approval: Approval | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "rule": self.rule,
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "approved": self.approval is not None,
        }
        if self.approval is not None:
            body["approval"] = {
                "reference": self.approval.reference,
                "approved_by": self.approval.approved_by,
                "valid_from": self.approval.valid_from.isoformat(),
                "valid_until": self.approval.valid_until.isoformat(),
            }
        return body


def policy_findings(
    snapshot: LocationConfiguredV1,
    *,
    on: date,
    catalogue: set[str] | None = None,
    approvals: list[Approval] | tuple[Approval, ...] = (),
) -> list[Finding]:
    """Where a location falls short of directive 3.2/3.3 on the day `on`: fewer than 4 days a week with
    appointments, no day until 18:00 (R17), a mandatory concern not offered (R15), a month-change block
    longer than 3 days (R18). `catalogue` is the set of concern ids in the central catalogue, to tell a
    concern missing from the catalogue from one the location does not offer."""
    findings: list[Finding] = []
    groups = {g.id: g for g in snapshot.groups if g.service_points > 0}
    offering = {o.group_id for o in snapshot.concerns}
    windows = [
        w
        for w in snapshot.windows
        if w.group_id in groups
        and w.group_id in offering
        and (w.valid_from is None or w.valid_from <= on)
        and (w.valid_until is None or w.valid_until >= on)
    ]
    groups_with_windows = {w.group_id for w in windows}
    days = sorted({w.weekday for w in windows})
    if len(days) < MIN_DAYS_PER_WEEK:
        findings.append(
            Finding(
                "R17",
                "fewer_than_4_days",
                f"Appointments on {len(days)} day(s) a week; directive 3.3 asks for at least "
                f"{MIN_DAYS_PER_WEEK}.",
                {"weekdays": days},
            )
        )
    evening_days = sorted({w.weekday for w in windows if w.end >= EVENING_UNTIL})
    if not evening_days:
        findings.append(
            Finding(
                "R17",
                "no_day_until_18",
                "No day of the week with appointments until 18:00; directive 3.3 asks for at least one.",
            )
        )

    kinds = {g.kind for g in groups.values()}
    required: dict[str, set[GroupKind]] = {}
    if GroupKind.ENTRANCE_ZONE not in kinds and GroupKind.JBA_ENTRANCE_ZONE not in kinds:
        findings.append(
            Finding("R15", "no_entrance_zone", "The location has no entrance zone with service points.")
        )
    for kind in (GroupKind.ENTRANCE_ZONE, GroupKind.JBA_ENTRANCE_ZONE):
        if kind in kinds:
            for concern_id in MANDATORY_CONCERNS[kind]:
                required.setdefault(concern_id, set()).add(kind)
    for concern_id in MANDATORY_CONCERNS[GroupKind.BENEFITS_TEAM]:
        required.setdefault(concern_id, set()).add(GroupKind.BENEFITS_TEAM)

    offers = {o.concern_id: o for o in snapshot.concerns}
    for concern_id, needed_kinds in required.items():
        offer = offers.get(concern_id)
        group = groups.get(offer.group_id) if offer is not None else None
        if catalogue is not None and concern_id not in catalogue:
            findings.append(
                Finding(
                    "R15",
                    "mandatory_concern_missing_from_catalogue",
                    f"The mandatory concern {concern_id!r} is missing from the central catalogue.",
                    {"concern_id": concern_id},
                )
            )
        elif offer is None or group is None:
            findings.append(
                Finding(
                    "R15",
                    "mandatory_concern_not_offered",
                    f"The mandatory concern {concern_id!r} is not offered.",
                    {"concern_id": concern_id, "group_kinds": sorted(needed_kinds)},
                )
            )
        elif not any(group.kind in COMPATIBLE_KINDS[k] for k in needed_kinds):
            findings.append(
                Finding(
                    "R15",
                    "mandatory_concern_in_wrong_group",
                    f"The mandatory concern {concern_id!r} is offered by a group of kind {group.kind}.",
                    {"concern_id": concern_id, "group_id": group.id, "group_kinds": sorted(needed_kinds)},
                )
            )
        elif group.id not in groups_with_windows:
            findings.append(
                Finding(
                    "R15",
                    "mandatory_concern_without_windows",
                    f"The mandatory concern {concern_id!r} is assigned, but its group has no time window.",
                    {"concern_id": concern_id, "group_id": group.id},
                )
            )

    block = snapshot.month_change_block
    if block is not None and block.last_days + block.first_days > MONTH_CHANGE_MAX_DAYS:
        findings.append(
            Finding(
                "R18",
                "month_change_block_too_long",
                f"The month-change block lasts {block.last_days + block.first_days} days; directive 3.3 "
                f"allows at most {MONTH_CHANGE_MAX_DAYS}.",
                {"last_days": block.last_days, "first_days": block.first_days},
            )
        )

    current = [a for a in approvals if a.valid_from <= on <= a.valid_until]
    return [_with_approval(f, current) for f in findings]


RESTRICTION_HORIZON = timedelta(days=400)  # how far ahead a dated window change is checked (R21)


def _window_boundaries(snapshot: LocationConfiguredV1, today: date) -> set[date]:
    """The days on which the snapshot's windows change: today, and each start and day after the end of
    a dated window within the horizon."""
    days = {today}
    for window in snapshot.windows:
        for day in (window.valid_from, window.valid_until and window.valid_until + timedelta(days=1)):
            if day is not None and today < day <= today + RESTRICTION_HORIZON:
                days.add(day)
    return days


def new_restrictions(
    before: LocationConfiguredV1,
    after: LocationConfiguredV1,
    *,
    today: date,
    approvals: list[Approval] | tuple[Approval, ...] = (),
) -> list[Finding]:
    """R21: the shortfalls of the opening times (R17) a change adds that no approval covers, today or on
    a later day where a dated window begins or ends (a restriction from next month needs the approval
    too). Directive 3.6 asks for the approval of GBL 2 or BLL before the windows of 3.3 are restricted; a
    shortfall that existed before the change (a location being built) does not stop the next step, but
    cutting further into it does (a location with 3 days that drops a fourth). Each finding names the
    first day it would hold from (`details.from`)."""
    found: dict[str, Finding] = {}
    for day in sorted(_window_boundaries(before, today) | _window_boundaries(after, today)):
        had = {f.code: f for f in policy_findings(before, on=day, approvals=approvals)}
        for f in policy_findings(after, on=day, approvals=approvals):
            if f.rule == "R17" and f.approval is None and f.code not in found and _worse(f, had.get(f.code)):
                details = {**f.details, "from": day.isoformat()}
                found[f.code] = Finding(f.rule, f.code, f.message, details)
    return list(found.values())


def _worse(after: Finding, before: Finding | None) -> bool:
    """Whether a shortfall is new, or deeper than the one before (fewer days than already too few)."""
    if before is None:
        return True
    if after.code == "fewer_than_4_days":
        return len(after.details.get("weekdays", [])) < len(before.details.get("weekdays", []))
    return False


def _with_approval(finding: Finding, approvals: list[Approval]) -> Finding:
    for approval in approvals:
        if approval.rule == finding.rule:
            return Finding(finding.rule, finding.code, finding.message, finding.details, approval)
    return finding


# --- the snapshot's fingerprint ---------------------------------------------------------------------


def snapshot_fingerprint(snapshot: LocationConfiguredV1) -> str:
    """A hash of everything in the snapshot but its revision: equal fingerprints, nothing to publish."""
    body = snapshot.model_dump(mode="json", exclude={"revision"})
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


# --- the internal e-mail allow-list (R6) ------------------------------------------------------------

_ALLOW_ENTRY = re.compile(r"^([a-z0-9._%+'-]+@|@)[a-z0-9-]+(\.[a-z0-9-]+)+$")


def normalise_allow_entry(raw: str) -> str:
    """An e-mail address or `@domain`, lower case, trimmed; a 422 naming `entry` when malformed."""
    entry = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(entry) > 254 or not _ALLOW_ENTRY.fullmatch(entry):
        raise ValidationError(
            "Not an e-mail address or @domain.",
            details=[{"field": "entry", "message": "an e-mail address (name@domain) or @domain"}],
        )
    return entry


# --- the responsibility finder (R3) -----------------------------------------------------------------

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e"})
_ABBREVIATIONS = (("str", "strasse"), ("pl", "platz"))


def street_key(street: str) -> str:
    """The lookup key of a street name: lower case, umlauts spelt out, 'Str.' = 'Straße', no spaces or
    hyphens ("Bürgermeister Smidt Str." and "Bürgermeister-Smidt-Straße" meet)."""
    text = unicodedata.normalize("NFKC", street).strip().lower().translate(_UMLAUTS)
    key = re.sub(r"[^a-z0-9]", "", text)
    for short, long in _ABBREVIATIONS:
        if key.endswith(short):
            return key[: -len(short)] + long
    return key


_HOUSE_NUMBER = re.compile(r"^(\d{1,4})\s?[a-zA-Z]?(\s?[-/]\s?\d{1,4}\s?[a-zA-Z]?)?$")


def house_number_value(house_number: str | None) -> int | None:
    """The number part of a house number ("12a" -> 12, "12-14" -> 12); None when not given."""
    if house_number is None:
        return None
    match = _HOUSE_NUMBER.fullmatch(house_number.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class StreetEntry:
    street: str
    postcode: str | None
    first_number: int | None
    last_number: int | None
    parity: str
    district: str
    location_id: str | None
    other_jobcenter_id: str | None

    def covers(self, number: int) -> bool:
        if self.first_number is not None and number < self.first_number:
            return False
        if self.last_number is not None and number > self.last_number:
            return False
        if self.parity == "odd":
            return number % 2 == 1
        if self.parity == "even":
            return number % 2 == 0
        return True

    @property
    def target(self) -> tuple[str, str]:
        if self.location_id is not None:
            return ("location", self.location_id)
        return ("other_jobcenter", self.other_jobcenter_id or "")


@dataclass(frozen=True)
class FinderMatch:
    """What the street table says: one responsible target, or why not."""

    # found, unknown_street, needs_postcode, postcode_not_matching, needs_house_number, number_not_covered
    outcome: str
    target: tuple[str, str] | None = None
    district: str = ""


def match_street(entries: list[StreetEntry], *, number: int | None, postcode: str | None) -> FinderMatch:
    """Pick the responsible target among the entries of one street name. The postcode narrows the
    entries where it agrees with some of them (a typo in it must not hide the street); the house number
    decides a split street. Where only the postcode can decide (the same name in several places, the
    house number found in more than one), a missing one is asked for (`needs_postcode`) and one that fits
    none of the places is said not to fit (`postcode_not_matching`), never the house number blamed."""
    if not entries:
        return FinderMatch("unknown_street")
    narrowed = False
    if postcode is not None:
        same_postcode = [e for e in entries if e.postcode == postcode]
        if same_postcode:
            entries, narrowed = same_postcode, True
    ask_postcode = "postcode_not_matching" if postcode is not None and not narrowed else "needs_postcode"
    targets = {e.target for e in entries}
    if len(targets) == 1:
        return FinderMatch("found", entries[0].target, _district(entries))
    if all(e.first_number is None and e.last_number is None and e.parity == "all" for e in entries):
        # The same name in different places (not a split street): the postcode tells them apart.
        return FinderMatch(ask_postcode)
    if number is None:
        return FinderMatch("needs_house_number")
    covering = [e for e in entries if e.covers(number)]
    targets = {e.target for e in covering}
    if len(targets) == 1:
        return FinderMatch("found", covering[0].target, _district(covering))
    if not narrowed and len({e.postcode for e in covering}) > 1:
        # The number exists in more than one place of that name: the postcode decides, not the number.
        return FinderMatch(ask_postcode)
    return FinderMatch("number_not_covered")


def _district(entries: list[StreetEntry]) -> str:
    districts = sorted({e.district for e in entries if e.district})
    return ", ".join(districts)
