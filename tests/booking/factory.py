"""Test data of the booking tests: a synthetic location as the catalog would publish it, and bodies."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from shared.clock import BERLIN
from shared.events.catalog import (
    Address,
    Closure,
    ConcernOffer,
    GroupKind,
    GroupSnapshot,
    LeadTime,
    LocationConfiguredV1,
    Mode,
    MonthChangeBlock,
    WindowSnapshot,
)

LOCATION = "teststadt"
WEEKDAYS = range(5)
_counter = itertools.count(1)


def at(day: str, hhmm: str) -> datetime:
    """A Berlin wall-clock time as an aware datetime."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), BERLIN)


def iso(day: str, hhmm: str) -> str:
    return at(day, hhmm).isoformat()


def window(
    group: str, weekday: int, start: str, end: str, points: int, *, evening: bool = False
) -> WindowSnapshot:
    return WindowSnapshot(
        group_id=group,
        weekday=weekday,
        start=time.fromisoformat(start),
        end=time.fromisoformat(end),
        service_points=points,
        evening=evening,
    )


def default_windows() -> list[WindowSnapshot]:
    windows = [window("ez", d, "08:00", "12:00", 3) for d in WEEKDAYS]
    windows += [window("lt", d, "08:00", "12:00", 2) for d in WEEKDAYS]
    windows.append(window("ez", 3, "14:00", "18:00", 2, evening=True))  # Thursday until 18:00 (R12, R17)
    return windows


def default_concerns() -> list[ConcernOffer]:
    return [
        ConcernOffer(
            concern_id="neuantrag",
            group_id="ez",
            name={"de": "Neuantrag stellen", "en": "New application"},
            duration_minutes=60,
            modes=[Mode.IN_PERSON],
            documents=[
                {"de": "Personalausweis", "en": "Identity card"},
                {"de": "Mietvertrag", "en": "Tenancy agreement"},
            ],
        ),
        ConcernOffer(
            concern_id="veraenderung",
            group_id="ez",
            name={"de": "Mitteilung einer Veränderung", "en": "Notice of a change"},
            duration_minutes=15,
            modes=[Mode.IN_PERSON, Mode.PHONE],
        ),
        ConcernOffer(
            concern_id="energiesperre",
            group_id="lt",
            name={"de": "Drohende Energiesperre", "en": "Threatened energy cut-off"},
            duration_minutes=30,
            modes=[Mode.IN_PERSON, Mode.PHONE],
            emergency=True,
            sensitive=True,
            documents=[{"de": "Roter Zettel des Versorgers"}],
        ),
        ConcernOffer(
            concern_id="bescheid",
            group_id="lt",
            name={"de": "Fragen zum Bescheid"},
            duration_minutes=30,
            modes=[Mode.IN_PERSON, Mode.PHONE],
        ),
    ]


def location(
    revision: int = 1,
    *,
    location_id: str = LOCATION,
    name: str = "Jobcenter Teststadt",
    groups: Sequence[GroupSnapshot] | None = None,
    windows: Sequence[WindowSnapshot] | None = None,
    concerns: Sequence[ConcernOffer] | None = None,
    closures: Sequence[Closure] = (),
    block: MonthChangeBlock | None = None,
    lead: LeadTime | None = None,
    active: bool = True,
) -> LocationConfiguredV1:
    return LocationConfiguredV1(
        location_id=location_id,
        revision=revision,
        name=name,
        address=Address(street="Teststraße 1", postcode="28195"),
        hotline="0421 0000000",
        active=active,
        lead_time=lead or LeadTime(min_minutes=0, max_days=56),
        month_change_block=block,
        groups=list(
            groups
            or [
                GroupSnapshot(
                    id="ez", kind=GroupKind.ENTRANCE_ZONE, name={"de": "Eingangszone"}, service_points=3
                ),
                GroupSnapshot(
                    id="lt", kind=GroupKind.BENEFITS_TEAM, name={"de": "Leistungsteam"}, service_points=2
                ),
            ]
        ),
        windows=list(windows if windows is not None else default_windows()),
        concerns=list(concerns if concerns is not None else default_concerns()),
        closures=list(closures),
    )


def customer_number(n: int) -> str:
    return f"{n % 1000:03d}D{n:06d}"


def booking(
    start: str,
    *,
    concern: str = "veraenderung",
    mode: str = "in_person",
    location_id: str = LOCATION,
    email: str | None = None,
    number: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid booking body; every call a different customer unless told otherwise."""
    n = next(_counter)
    customer: dict[str, Any] = {
        "first_name": "Erika",
        "last_name": "Mustermann",
        "email": email or f"kunde{n}@example.org",
        "customer_number": number or customer_number(n),
    }
    if mode == "phone":
        customer["phone"] = "0421 123456"
    customer.update(extra.pop("customer", {}))
    return {
        "location_id": location_id,
        "concern_id": concern,
        "start": start,
        "mode": mode,
        "customer": customer,
        **extra,
    }
