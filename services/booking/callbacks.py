"""The 48-hour promise of a callback ticket (R23, directive 3.4), as plain Python.

The rule: 48 hours counted on Bremen working days. The clock of a ticket runs only on working days
(Monday to Friday that are not public holidays in Bremen, `shared.calendar`), all day long; Saturdays,
Sundays and public holidays do not count at all. A ticket created on a day off starts counting at 00:00
of the next working day. Example: created on Thursday 2 April 2026 at 14:00, before Good Friday: 10
hours on Thursday, Good Friday, the weekend and Easter Monday do not count, 24 hours on Tuesday and 14
on Wednesday: due on Wednesday 8 April 2026 at 14:00. A ticket created on an ordinary Friday at 14:00 is
due on Tuesday at 14:00. Hours are elapsed hours (UTC arithmetic), days are Berlin calendar days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from shared.calendar import is_public_holiday
from shared.clock import BERLIN

PROMISE = timedelta(hours=48)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_public_holiday(day)


def _midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), BERLIN)


def callback_due(created_at: datetime, promise: timedelta = PROMISE) -> datetime:
    """When a ticket created at `created_at` is due: `promise` counted on Bremen working days only."""
    remaining = promise
    cursor = created_at.astimezone(BERLIN)
    while True:
        day = cursor.date()
        end_of_day = _midnight_after(day)
        if is_working_day(day):
            elapsed_today = end_of_day.timestamp() - cursor.timestamp()  # elapsed, across a DST change
            if remaining.total_seconds() <= elapsed_today:
                return datetime.fromtimestamp(cursor.timestamp() + remaining.total_seconds(), BERLIN)
            remaining -= timedelta(seconds=elapsed_today)
        cursor = end_of_day


def is_overdue(due_at: datetime, now: datetime, closed_at: datetime | None = None) -> bool:
    return (closed_at or now) > due_at
