"""The booking rules as plain Python: slot generation on the Berlin wall clock (a property test across
the days the clocks change), the month-change block, the cutoff, and the lenient normalisation of
contact data."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.booking import contact, domain
from shared.clock import BERLIN
from shared.events.catalog import LeadTime, MonthChangeBlock, WindowSnapshot

DST_DAYS = [date(2026, 3, 29), date(2026, 10, 25), date(2025, 3, 30), date(2025, 10, 26), date(2027, 3, 28)]
days = st.one_of(
    st.sampled_from(DST_DAYS), st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31))
)
quarter_hours = st.integers(min_value=0, max_value=95).map(lambda q: time(q // 4, (q % 4) * 15))


@st.composite
def windows(draw: st.DrawFn) -> WindowSnapshot:
    start = draw(quarter_hours)
    end = draw(quarter_hours.filter(lambda t: t > start))
    return WindowSnapshot(group_id="ez", weekday=0, start=start, end=end, service_points=1)


@settings(max_examples=150, deadline=None)
@given(day=days, window=windows(), duration=st.sampled_from([10, 15, 20, 30, 45, 60, 90, 120]))
def test_slots_lie_inside_their_window_and_never_span_a_change_of_the_clocks(
    day: date, window: WindowSnapshot, duration: int
) -> None:
    slots = domain.window_slots(day, window, duration, points=1)
    window_start = datetime.combine(day, window.start)
    window_end = datetime.combine(day, window.end)
    previous_end = None
    for slot in slots:
        wall_start = slot.start.replace(tzinfo=None)
        wall_end = slot.end.replace(tzinfo=None)
        # inside the window, on the wall clock, and on the grid of the duration from its start
        assert window_start <= wall_start < wall_end <= window_end
        assert (wall_start - window_start) % timedelta(minutes=duration) == timedelta(0)
        # as long in real time as on the wall clock: no slot across a gap or a repeated hour
        assert slot.end.astimezone(UTC) - slot.start.astimezone(UTC) == timedelta(minutes=duration)
        assert slot.end_ts - slot.start_ts == duration * 60
        # the wall-clock time exists and means one instant only
        for moment in (slot.start, slot.end):
            assert moment.astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) == moment.replace(
                tzinfo=None
            )
            assert moment.utcoffset() == moment.replace(fold=1).utcoffset()
        if previous_end is not None:
            assert slot.start_ts >= previous_end
        previous_end = slot.end_ts
    if not domain._day_has_transition(day):
        assert len(slots) == (window_end - window_start) // timedelta(minutes=duration)


def test_on_an_ordinary_day_the_slots_fill_the_window() -> None:
    window = WindowSnapshot(group_id="ez", weekday=1, start=time(8), end=time(12), service_points=2)
    slots = domain.window_slots(date(2026, 3, 3), window, 15, points=2)
    assert len(slots) == 16 and slots[0].start.isoformat() == "2026-03-03T08:00:00+01:00"


@pytest.mark.req("R18")
@pytest.mark.parametrize(
    ("day", "blocked"),
    [
        (date(2026, 3, 29), False),
        (date(2026, 3, 30), True),
        (date(2026, 3, 31), True),
        (date(2026, 4, 1), True),
        (date(2026, 4, 2), False),
        (date(2026, 2, 27), True),  # February has 28 days in 2026
        (date(2026, 2, 26), False),
    ],
)
def test_the_month_change_block_covers_the_last_and_first_days(day: date, blocked: bool) -> None:
    assert domain.in_month_change_block(MonthChangeBlock(last_days=2, first_days=1), day) is blocked
    assert domain.in_month_change_block(None, day) is False


@pytest.mark.req("R19")
def test_the_cutoff_is_six_in_the_morning_in_berlin_also_on_the_day_the_clocks_change() -> None:
    lead = LeadTime()
    assert domain.cutoff_of(date(2026, 3, 29), lead) == datetime(2026, 3, 29, 4, 0, tzinfo=UTC)
    assert domain.cutoff_of(date(2026, 3, 28), lead) == datetime(2026, 3, 28, 5, 0, tzinfo=UTC)
    assert domain.day_open_at(date(2026, 3, 29), datetime(2026, 3, 29, 3, 59, tzinfo=UTC), lead)
    assert not domain.day_open_at(date(2026, 3, 29), datetime(2026, 3, 29, 4, 0, tzinfo=UTC), lead)


@pytest.mark.req("R5")
@pytest.mark.parametrize(
    ("raw", "normal", "key"),
    [
        ("Erika.Mustermann@Example.ORG", "Erika.Mustermann@example.org", "erika.mustermann@example.org"),
        ("  erika@example.org ", "erika@example.org", "erika@example.org"),
        ("erika+otv@bücher.example", "erika+otv@xn--bcher-kva.example", "erika+otv@xn--bcher-kva.example"),
    ],
)
def test_email_addresses_are_normalised_and_matched_case_insensitively(
    raw: str, normal: str, key: str
) -> None:
    assert contact.normalise_email(raw) == normal
    assert contact.email_key(contact.normalise_email(raw)) == key


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "erika",
        "erika@",
        "@example.org",
        "erika@example",
        "er ika@example.org",
        "erika@exa_mple.org",
        "erika..m@example.org",
        "a" * 65 + "@example.org",
        "erika@-example.org",
    ],
)
def test_malformed_email_addresses_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"e-mail|domain"):
        contact.normalise_email(raw)


@pytest.mark.req("R47")
def test_customer_and_household_numbers_are_normalised_leniently() -> None:
    assert contact.normalise_customer_number(" 123 d 456789 ") == "123D456789"
    assert contact.normalise_customer_number("123-D-456-789") == "123D456789"
    assert contact.normalise_household_number("12345 bg 1234567") == "12345BG1234567"
    assert contact.normalise_household_number("12345/BG/1234567") == "12345BG1234567"
    for wrong in ("123456789", "12D456789", "123DD56789", "ABC"):
        with pytest.raises(ValueError, match="Kundennummer"):
            contact.normalise_customer_number(wrong)
    for wrong in ("12345BG123456", "1234BG1234567", "12345XY1234567"):
        with pytest.raises(ValueError, match="BG-Nummer"):
            contact.normalise_household_number(wrong)


@pytest.mark.req("R6")
@pytest.mark.req("R2")
def test_names_keep_their_spelling_and_refuse_control_and_bidi_characters() -> None:
    # Persian writes some names with a zero-width non-joiner (Shift+Space on its keyboards).
    assert contact.normalise_name("  Mehr\u200cangiz  ") == "Mehr\u200cangiz"
    assert contact.normalise_name("\u0645\u0647\u0631\u200c\u0627\u0646\u06af\u06cc\u0632") == (
        "\u0645\u0647\u0631\u200c\u0627\u0646\u06af\u06cc\u0632"
    )
    assert contact.normalise_name("Zo\u00eb\nO'Brien") == "Zo\u00eb O'Brien"  # a line break is a space
    for wrong in ("Erika\u0000", "Erika\u202egnuM", "\u2066Erika", "Erika\u00ad"):
        with pytest.raises(ValueError, match="control characters"):
            contact.normalise_name(wrong)


def test_the_allow_list_matches_addresses_and_whole_domains() -> None:
    entries = ["servicecenter@jobcenter-bremen.de", "@intern.example"]
    assert contact.is_allow_listed("ServiceCenter@Jobcenter-Bremen.de", entries)
    assert contact.is_allow_listed("wer@intern.example", entries)
    assert not contact.is_allow_listed("wer@extern.example", entries)
    assert not contact.is_allow_listed("servicecenter@jobcenter-bremen.de.evil.example", entries)


def test_busy_intervals_merge_and_answer_overlaps() -> None:
    busy = domain.Busy.of([100, 0, 50, 300], [200, 60, 120, 400])
    assert busy.starts == [0, 300] and busy.ends == [200, 400]
    assert busy.is_free(200, 300) and not busy.is_free(199, 250) and not busy.is_free(350, 360)
    assert busy.is_free(-50, 0) and busy.is_free(400, 500)
