"""The catalog's rules without I/O: the policy check on purpose-built snapshots (R21 with R15, R17, R18),
the finder's matching, languages and the month-change block rule."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest

from services.catalog import domain
from shared.errors import ValidationError
from shared.events.catalog import (
    ConcernOffer,
    GroupKind,
    GroupSnapshot,
    LocationConfiguredV1,
    Mode,
    MonthChangeBlock,
    WindowSnapshot,
)

TODAY = date(2026, 11, 25)


def _offer(concern_id: str, group_id: str) -> ConcernOffer:
    return ConcernOffer(
        concern_id=concern_id,
        group_id=group_id,
        name={"de": concern_id},
        duration_minutes=20,
        modes=[Mode.IN_PERSON],
    )


def _window(group_id: str, weekday: int, start: str, end: str, **extra: Any) -> WindowSnapshot:
    return WindowSnapshot(
        group_id=group_id,
        weekday=weekday,
        start=time.fromisoformat(start),
        end=time.fromisoformat(end),
        service_points=1,
        **extra,
    )


def compliant(**changes: Any) -> LocationConfiguredV1:
    """A location that meets directive 3.2/3.3: 5 days, Thursday until 18:00, every mandatory concern."""
    ez = [_offer(c, "ez") for c in domain.MANDATORY_CONCERNS[GroupKind.ENTRANCE_ZONE]]
    lt = [_offer(c, "lt") for c in domain.MANDATORY_CONCERNS[GroupKind.BENEFITS_TEAM]]
    windows = [_window(g, d, "08:00", "12:00") for g in ("ez", "lt") for d in range(5)]
    windows.append(_window("lt", 3, "14:00", "18:00", evening=True))
    values: dict[str, Any] = {
        "location_id": "probe",
        "revision": 1,
        "name": "Probe",
        "address": {"street": "Am Wall 1", "postcode": "28195"},
        "hotline": "0421 1",
        "groups": [
            GroupSnapshot(id="ez", kind=GroupKind.ENTRANCE_ZONE, name={"de": "EZ"}, service_points=2),
            GroupSnapshot(id="lt", kind=GroupKind.BENEFITS_TEAM, name={"de": "LT"}, service_points=3),
        ],
        "windows": windows,
        "concerns": ez + lt,
    }
    values.update(changes)
    return LocationConfiguredV1(**values)


def codes(snapshot: LocationConfiguredV1, **kwargs: Any) -> set[str]:
    return {f.code for f in domain.policy_findings(snapshot, on=TODAY, **kwargs)}


@pytest.mark.req("R21")
def test_a_compliant_location_has_no_findings() -> None:
    assert codes(compliant()) == set()


@pytest.mark.req("R21")
@pytest.mark.req("R17")
def test_fewer_than_four_days_a_week_is_found() -> None:
    snapshot = compliant()
    three_days = [w for w in snapshot.windows if w.weekday in (0, 1, 3)]
    findings = domain.policy_findings(compliant(windows=three_days), on=TODAY)
    assert [f.code for f in findings] == ["fewer_than_4_days"]
    assert findings[0].rule == "R17"
    assert findings[0].details == {"weekdays": [0, 1, 3]}


@pytest.mark.req("R21")
@pytest.mark.req("R17")
def test_windows_of_a_group_without_offers_or_out_of_validity_do_not_count() -> None:
    snapshot = compliant()
    expired = [
        w.model_copy(update={"valid_until": date(2026, 1, 1)}) if w.weekday == 4 else w
        for w in snapshot.windows
    ]
    assert "fewer_than_4_days" not in codes(compliant(windows=expired))  # Mon-Thu still open
    only_future = [w.model_copy(update={"valid_from": date(2027, 1, 1)}) for w in snapshot.windows]
    assert {"fewer_than_4_days", "no_day_until_18"} <= codes(compliant(windows=only_future))
    nothing_offered = compliant(concerns=[])
    assert "fewer_than_4_days" in codes(nothing_offered)


@pytest.mark.req("R21")
@pytest.mark.req("R17")
def test_no_day_until_18_is_found() -> None:
    snapshot = compliant()
    early = [w for w in snapshot.windows if w.end < time(18, 0)]
    assert codes(compliant(windows=early)) == {"no_day_until_18"}


@pytest.mark.req("R21")
@pytest.mark.req("R15")
def test_a_missing_mandatory_concern_is_found_for_each_group_kind() -> None:
    snapshot = compliant()
    for missing in ("neuantrag", "energiesperre", "p-konto"):
        reduced = [o for o in snapshot.concerns if o.concern_id != missing]
        findings = domain.policy_findings(compliant(concerns=reduced), on=TODAY)
        assert [(f.code, f.details["concern_id"]) for f in findings] == [
            ("mandatory_concern_not_offered", missing)
        ]


@pytest.mark.req("R21")
@pytest.mark.req("R15")
def test_a_jba_location_needs_the_jba_concern_in_its_jba_entrance_zone() -> None:
    snapshot = compliant()
    jba_groups = [
        GroupSnapshot(id="ez", kind=GroupKind.JBA_ENTRANCE_ZONE, name={"de": "EZ JBA"}, service_points=2),
        snapshot.groups[1],
    ]
    only_jba_concern = [
        o for o in snapshot.concerns if o.group_id == "lt" or o.concern_id == "arbeitsaufnahme"
    ]
    assert codes(compliant(groups=jba_groups, concerns=only_jba_concern)) == set()
    without = [o for o in only_jba_concern if o.concern_id != "arbeitsaufnahme"]
    assert codes(compliant(groups=jba_groups, concerns=without)) == {"mandatory_concern_not_offered"}


@pytest.mark.req("R21")
@pytest.mark.req("R15")
def test_a_mandatory_concern_in_the_wrong_group_or_without_windows_is_found() -> None:
    snapshot = compliant()
    wrong = [
        o.model_copy(update={"group_id": "ez"}) if o.concern_id == "notlage" else o for o in snapshot.concerns
    ]
    assert codes(compliant(concerns=wrong)) == {"mandatory_concern_in_wrong_group"}
    extra_group = GroupSnapshot(id="lt2", kind=GroupKind.BENEFITS_TEAM, name={"de": "LT2"}, service_points=1)
    moved = [
        o.model_copy(update={"group_id": "lt2"}) if o.concern_id == "notlage" else o
        for o in snapshot.concerns
    ]
    assert codes(compliant(groups=[*snapshot.groups, extra_group], concerns=moved)) == {
        "mandatory_concern_without_windows"
    }


@pytest.mark.req("R21")
@pytest.mark.req("R15")
def test_a_location_without_entrance_zone_and_a_catalogue_without_the_concern_are_found() -> None:
    snapshot = compliant()
    no_ez = compliant(
        groups=[snapshot.groups[1]], concerns=[o for o in snapshot.concerns if o.group_id == "lt"]
    )
    assert "no_entrance_zone" in codes(no_ez)
    catalogue = {o.concern_id for o in snapshot.concerns} - {"p-konto"}
    assert codes(compliant(), catalogue=catalogue) == {"mandatory_concern_missing_from_catalogue"}


@pytest.mark.req("R21")
@pytest.mark.req("R18")
def test_a_month_change_block_longer_than_three_days_is_found() -> None:
    assert codes(compliant(month_change_block=MonthChangeBlock(last_days=1, first_days=2))) == set()
    findings = domain.policy_findings(
        compliant(month_change_block=MonthChangeBlock(last_days=2, first_days=2)), on=TODAY
    )
    assert [(f.rule, f.code) for f in findings] == [("R18", "month_change_block_too_long")]


@pytest.mark.req("R21")
def test_an_approved_restriction_is_shown_as_approved_while_the_approval_lasts() -> None:
    three_days = compliant(windows=[w for w in compliant().windows if w.weekday in (0, 1, 3)])
    approval = domain.Approval("R17", "GBL2-2026-17", "GBL 2", date(2026, 11, 1), date(2026, 12, 31))
    (finding,) = domain.policy_findings(three_days, on=TODAY, approvals=[approval])
    assert finding.approval == approval
    assert finding.as_dict()["approved"] is True
    (later,) = domain.policy_findings(three_days, on=date(2027, 1, 4), approvals=[approval])
    assert later.approval is None


@pytest.mark.req("R18")
def test_the_month_change_block_rule_refuses_more_than_three_days_naming_the_field() -> None:
    domain.check_month_change_block(3, 0)
    domain.check_month_change_block(1, 2)
    with pytest.raises(ValidationError) as refused:
        domain.check_month_change_block(2, 2)
    assert refused.value.details[0]["field"] == "first_days"


def test_a_window_that_ends_before_it_starts_is_refused_naming_end() -> None:
    with pytest.raises(ValidationError) as refused:
        domain.check_window_times(time(12, 0), time(8, 0))
    assert [d["field"] for d in refused.value.details] == ["end"]
    with pytest.raises(ValidationError):
        domain.check_window_times(time(8, 0), time(8, 0))
    with pytest.raises(ValidationError):
        domain.check_window_times(time(8, 3), time(9, 0))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Bürgermeister-Smidt-Straße", "buergermeister smidt str."),
        ("Am Wall", "am  wall"),
        ("Sögestraße", "SOEGESTRASSE"),
        ("St.-Jürgen-Straße", "St. Jürgen Str"),
        ("Vegesacker Bahnhofsplatz", "Vegesacker Bahnhofspl."),
    ],
)
def test_spellings_of_one_street_have_one_key(a: str, b: str) -> None:
    assert domain.street_key(a) == domain.street_key(b)


def test_house_numbers_are_read_by_their_number_part() -> None:
    assert domain.house_number_value("12a") == 12
    assert domain.house_number_value("12 - 14") == 12
    assert domain.house_number_value(None) is None


def _entry(
    location: str, first: int | None = None, last: int | None = None, **extra: Any
) -> domain.StreetEntry:
    values: dict[str, Any] = {
        "street": "X",
        "postcode": "28195",
        "first_number": first,
        "last_number": last,
        "parity": "all",
        "district": location.capitalize(),
        "location_id": location,
        "other_jobcenter_id": None,
    }
    values.update(extra)
    return domain.StreetEntry(**values)


def test_the_street_matcher_splits_by_range_parity_and_postcode() -> None:
    split = [_entry("mitte", 1, 99), _entry("ost", 100, None)]
    assert domain.match_street(split, number=None, postcode=None).outcome == "needs_house_number"
    assert domain.match_street(split, number=5, postcode=None).target == ("location", "mitte")
    assert domain.match_street(split, number=500, postcode=None).target == ("location", "ost")
    sides = [_entry("west", parity="odd"), _entry("mitte", parity="even")]
    assert domain.match_street(sides, number=7, postcode=None).target == ("location", "west")
    assert domain.match_street(sides, number=8, postcode=None).target == ("location", "mitte")
    gap = [_entry("mitte", 1, 10), _entry("ost", 20, 30)]
    assert domain.match_street(gap, number=15, postcode=None).outcome == "number_not_covered"
    places = [_entry("mitte", postcode="28195"), _entry("nord", postcode="28757")]
    assert domain.match_street(places, number=3, postcode=None).outcome == "needs_postcode"
    assert domain.match_street(places, number=3, postcode="28757").target == ("location", "nord")
    assert domain.match_street([], number=1, postcode=None).outcome == "unknown_street"


@pytest.mark.req("R3")
def test_a_street_in_several_places_asks_for_the_postcode_where_the_house_number_cannot_decide() -> None:
    """The same name in Mitte (every number) and in Vegesack (split at 50): with a house number that both
    have, the postcode decides; the number is right, so the finder must not call it unknown."""
    places = [
        _entry("mitte", postcode="28195"),
        _entry("nord", 1, 50, postcode="28757"),
        _entry("west", 51, None, postcode="28757"),
    ]
    assert domain.match_street(places, number=10, postcode=None).outcome == "needs_postcode"
    assert domain.match_street(places, number=10, postcode="28757").target == ("location", "nord")
    assert domain.match_street(places, number=60, postcode="28757").target == ("location", "west")
    assert domain.match_street(places, number=10, postcode="28195").target == ("location", "mitte")
    # A postcode that fits none of the places is not missing: it does not fit.
    assert domain.match_street(places, number=10, postcode="28199").outcome == "postcode_not_matching"
    unsplit = [_entry("mitte", postcode="28195"), _entry("nord", postcode="28757")]
    assert domain.match_street(unsplit, number=3, postcode="28199").outcome == "postcode_not_matching"
    # Within one place a number outside every range is still the number's fault.
    gap = [_entry("mitte", 1, 10), _entry("ost", 20, 30)]
    assert domain.match_street(gap, number=15, postcode="28195").outcome == "number_not_covered"


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        (None, None, "de"),
        ("en", "de", "en"),
        ("de-x-ls", None, "de-x-ls"),
        (None, "en-US,en;q=0.9,de;q=0.8", "en"),
        (None, "fr-FR,fr;q=0.9,en;q=0.5", "en"),
        (None, "de-x-ls, de;q=0.5", "de-x-ls"),
        (None, "en;q=0, de", "de"),
        (None, "zh", "de"),
        (None, "en;q=abc", "de"),
        # A language the pages offer as content (R43): the catalogue's texts along its tag, else German.
        ("tr", "en", "de"),
        ("en-GB", None, "en"),
        ("de-x-ls-foo", None, "de-x-ls"),
    ],
)
def test_the_language_follows_lang_then_accept_language_then_german(
    query: str | None, header: str | None, expected: str
) -> None:
    assert domain.resolve_language(query, header) == expected


@pytest.mark.parametrize("lang", ["english please", "de_DE", "x-ls", "d", "de-" + "a" * 40])
def test_a_lang_parameter_that_is_no_language_tag_is_a_422(lang: str) -> None:
    with pytest.raises(ValidationError) as refused:
        domain.resolve_language(lang, None)
    assert refused.value.details[0]["field"] == "lang"


@pytest.mark.req("R6")
def test_allow_list_entries_are_normalised_addresses_or_domains() -> None:
    assert (
        domain.normalise_allow_entry("  ServiceCenter@Jobcenter-Bremen.DE ")
        == "servicecenter@jobcenter-bremen.de"
    )
    assert domain.normalise_allow_entry("@jobcenter-bremen.de") == "@jobcenter-bremen.de"
    for bad in ("no-at-sign", "a@b", "<script>@x.de", "a@@b.de", "@", "x@y.de; DROP"):
        with pytest.raises(ValidationError):
            domain.normalise_allow_entry(bad)


def test_the_fingerprint_ignores_the_revision_only() -> None:
    assert domain.snapshot_fingerprint(compliant(revision=1)) == domain.snapshot_fingerprint(
        compliant(revision=9)
    )
    assert domain.snapshot_fingerprint(compliant()) != domain.snapshot_fingerprint(
        compliant(hotline="0421 2")
    )


@pytest.mark.req("R21")
@pytest.mark.req("R17")
def test_a_restriction_needs_the_approval_also_when_it_begins_later() -> None:
    before = compliant()
    windows = [w for w in before.windows if not w.evening]
    evening = next(w for w in before.windows if w.evening)
    # The evening ends with the month: from 1 December the location has no day until 18:00.
    later = compliant(windows=[*windows, evening.model_copy(update={"valid_until": date(2026, 11, 30)})])
    restricted = domain.new_restrictions(before, later, today=TODAY)
    assert [(f.code, f.details["from"]) for f in restricted] == [("no_day_until_18", "2026-12-01")]
    # Today's restriction names today; a shortfall the location had before is no new one.
    now = compliant(windows=windows)
    assert [f.details["from"] for f in domain.new_restrictions(before, now, today=TODAY)] == ["2026-11-25"]
    assert domain.new_restrictions(now, compliant(windows=windows[:-1]), today=TODAY) == []
    # An approval that covers the day lets it through; one that ends before does not.
    approval = domain.Approval("R17", "GBL2-1", "GBL 2", date(2026, 11, 1), date(2027, 3, 31))
    assert domain.new_restrictions(before, later, today=TODAY, approvals=[approval]) == []
    short = domain.Approval("R17", "GBL2-2", "GBL 2", date(2026, 11, 1), date(2026, 11, 30))
    assert [f.code for f in domain.new_restrictions(before, later, today=TODAY, approvals=[short])] == [
        "no_day_until_18"
    ]


@pytest.mark.req("R21")
@pytest.mark.req("R17")
def test_a_location_already_short_of_days_needs_the_approval_to_drop_one_more() -> None:
    # Three days a week: short of 3.3 already (a location being built, or an approval that ran out).
    three = compliant(windows=[w for w in compliant().windows if w.weekday in (0, 1, 3)])
    two = compliant(windows=[w for w in three.windows if w.weekday != 1])
    dropped = domain.new_restrictions(three, two, today=TODAY)
    assert [(f.code, f.details["weekdays"], f.details["from"]) for f in dropped] == [
        ("fewer_than_4_days", [0, 3], "2026-11-25")
    ]
    # Adding a day, or changing the hours of the days it keeps, is no further restriction.
    assert domain.new_restrictions(two, three, today=TODAY) == []
    shorter = compliant(
        windows=[w if w.evening else w.model_copy(update={"end": time(10, 0)}) for w in three.windows]
    )
    assert domain.new_restrictions(three, shorter, today=TODAY) == []
