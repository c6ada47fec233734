"""Calendar rules of Bremen that several services need: public holidays and the Berlin wall clock."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays

from shared.clock import BERLIN

__all__ = ["BERLIN", "holiday_name", "is_public_holiday"]


@lru_cache(maxsize=32)
def _bremen(year: int) -> holidays.HolidayBase:
    # The state of Bremen (HB): Reformationstag (31 October) is a public holiday there since 2018.
    return holidays.country_holidays("DE", subdiv="HB", years=year, language="de")


def is_public_holiday(day: date) -> bool:
    return day in _bremen(day.year)


def holiday_name(day: date) -> str | None:
    name = _bremen(day.year).get(day)
    return str(name) if name is not None else None
