"""Calendar rules of Bremen that several services need: public holidays and the Berlin wall clock."""

from __future__ import annotations

from datetime import date, time, timedelta
from functools import lru_cache
from typing import Annotated

import holidays
from pydantic import AfterValidator, BeforeValidator, Field, Strict

from shared.clock import BERLIN

__all__ = [
    "BERLIN",
    "DAY_LIST_HORIZON",
    "EARLIEST_DAY",
    "LATEST_DAY",
    "CalendarDay",
    "WallTime",
    "day_list_available",
    "holiday_name",
    "in_calendar",
    "is_public_holiday",
]

# The days any query of OTV may name. Far-off dates (0001-01-01, 9999-12-31) are refused at the edge,
# before time arithmetic on them overflows (a Berlin midnight of year 1 is not a UTC instant).
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)
CalendarDay = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]


def _written_time(value: object) -> object:
    """A time of day is written ("08:30"): pydantic would read a number as seconds after midnight UTC."""
    if isinstance(value, str | time):
        return value
    raise ValueError("a time of day such as 08:30")


def _wall_clock(value: time) -> time:
    """Opening hours and wished times are Berlin wall-clock times: an offset ("08:30+02:00") would be
    dropped in storage, and compared with a time without one it raised (a 500)."""
    if value.tzinfo is not None:
        raise ValueError("a time of day without an offset (Berlin time), such as 08:30")
    return value


# A time of day on the Berlin wall clock, as a request names it: "08:30", never a number or an offset.
# Not strict, also in a strict model: the text has passed `_written_time`, and strict would refuse it.
WallTime = Annotated[time, Strict(False), BeforeValidator(_written_time), AfterValidator(_wall_clock)]


def in_calendar(day: date) -> bool:
    return EARLIEST_DAY <= day <= LATEST_DAY


# R22, R33: the Excel list of a day is made from today up to this far ahead; a past day's list is deleted
# at the end of its day and not made again. Reporting refuses other days; the staff pages link only these.
DAY_LIST_HORIZON = timedelta(days=90)


def day_list_available(day: date, today: date) -> bool:
    return today <= day <= today + DAY_LIST_HORIZON


@lru_cache(maxsize=32)
def _bremen(year: int) -> holidays.HolidayBase:
    # The state of Bremen (HB): Reformationstag (31 October) is a public holiday there since 2018.
    return holidays.country_holidays("DE", subdiv="HB", years=year, language="de")


def is_public_holiday(day: date) -> bool:
    return day in _bremen(day.year)


def holiday_name(day: date) -> str | None:
    name = _bremen(day.year).get(day)
    return str(name) if name is not None else None
