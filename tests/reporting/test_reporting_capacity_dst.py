"""R35: utilisation is booked minutes over offered minutes. On the Sundays the clocks change (29 March and
25 October 2026) a window offers what booking can sell: the real minutes whose wall-clock time exists
once; the hour the clocks skip or repeat has no appointment slot (booking's grid) and is not offered."""

from __future__ import annotations

from datetime import date

import pytest

from services.booking.domain import LocationConfig, grid_slots
from services.reporting.domain import offered_minutes
from shared.events.catalog import ConcernOffer, Mode
from tests.booking import factory

SPRING, AUTUMN, ORDINARY = date(2026, 3, 29), date(2026, 10, 25), date(2026, 3, 22)  # Sundays


def sunday_night(start: str, end: str) -> LocationConfig:
    window = factory.window("ez", 6, start, end, 1)
    concern = ConcernOffer(
        concern_id="veraenderung",
        group_id="ez",
        name={"de": "Veränderung"},
        duration_minutes=15,
        modes=[Mode.IN_PERSON],
    )
    return LocationConfig.of(factory.location(windows=[window], concerns=[concern]))


def sold_minutes(config: LocationConfig, day: date) -> int:
    """The real length of booking's slots of the day (one service point)."""
    concern = config.concern("veraenderung")
    assert concern is not None
    return sum(slot.end_ts - slot.start_ts for slot in grid_slots(config, concern, day)) // 60


@pytest.mark.req("R35")
@pytest.mark.parametrize("day", [SPRING, AUTUMN])
def test_the_hour_the_clocks_skip_or_repeat_is_not_offered_on_the_dst_sundays(day: date) -> None:
    night = sunday_night("00:00", "06:00")
    assert offered_minutes(night.snapshot, ORDINARY)["ez"] == 360 == sold_minutes(night, ORDINARY)
    # Six hours on the wall clock, five of them bookable: 300 minutes, not 360 (nor 420 in October).
    assert offered_minutes(night.snapshot, day)["ez"] == 300
    # A window from 02:00 to 04:00 is one bookable hour, as booking's grid has it.
    early = sunday_night("02:00", "04:00")
    assert offered_minutes(early.snapshot, day)["ez"] == 60 == sold_minutes(early, day)
    assert offered_minutes(early.snapshot, ORDINARY)["ez"] == 120
