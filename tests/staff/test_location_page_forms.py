"""The forms of a location page after they were sent: a refused form comes back as it was filled in, in
its own place, with an error summary that says "Fehler:" in the title and links to the fields it names,
each marked for assistive technology; a saved form is confirmed where the page jumps to (WCAG 3.3.1,
3.3.3, 4.1.3; R20, R29)."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from shared.identity import Role
from tests.conftest import wait_for
from tests.staff.conftest import Stack, wait_for_slots
from tests.staff.test_staff_pages import SAVED_CLOSURE, form_fields, nord_meeting_the_directive, post_form

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


class _Elements(HTMLParser):
    """Every element with an id: its attributes and its text; the links of the error summary; the
    ids of the elements (section, row) each role=status message stands in."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self.summary_links: list[tuple[str, str]] = []
        self.statuses: list[tuple[list[str], str]] = []
        self._open: list[tuple[str, str]] = []  # (tag, id) of the open elements with an id or a role
        self._summary = False
        self._link: str | None = None
        self._status: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("input", "br", "meta", "link"):
            if "id" in a:
                self.attrs[a["id"]] = a
            return
        self._open.append((tag, a.get("id", "")))
        if "id" in a:
            self.attrs[a["id"]] = a
            self.text[a["id"]] = ""
        if a.get("id") == "error-summary":
            self._summary = True
        if self._summary and tag == "a":
            self._link = a.get("href", "")
            self.summary_links.append((self._link, ""))
        if a.get("role") == "status":
            self._status = [i for _, i in self._open if i]
            self.statuses.append((self._status, ""))

    def handle_data(self, data: str) -> None:
        for _, element in self._open:
            if element:
                self.text[element] += data
        if self._link is not None:
            href, text = self.summary_links[-1]
            self.summary_links[-1] = (href, text + data)
        if self._status is not None:
            where, text = self.statuses[-1]
            self.statuses[-1] = (where, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._link = None
        if tag == "p":
            self._status = None
        while self._open:
            opened, element = self._open.pop()
            if element == "error-summary":
                self._summary = False
            if opened == tag:
                break


def elements(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def assert_marked(page: _Elements, field_id: str, message: str) -> None:
    """The field is invalid and its message (with the label) is what describes it."""
    attrs = page.attrs[field_id]
    assert attrs.get("aria-invalid") == "true", attrs
    assert f"{field_id}-error" in attrs.get("aria-describedby", "").split(), attrs
    assert message in page.text[f"{field_id}-error"]


async def tuesday_window(stack: Stack) -> int:
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    return int(next(w["id"] for w in details["windows"] if w["weekday"] == 1))


@pytest.mark.req("R20")
async def test_a_refused_closure_comes_back_as_typed_with_the_error_linked_to_its_field(stack: Stack) -> None:
    leader = await stack.gateway.signed_in("form-leader", (Role.GROUP_LEADER, "mitte"))
    typed = {
        "first": "2026-03-10",
        "last": "2026-03-09",
        "group_id": "mitte-ez",
        "service_points_left": "1",
        "reason": "Fortbildung",
    }
    status, _, html = await post_form(leader, "/staff/locations/mitte/closures", typed)
    assert status == 422
    assert "<title>Fehler: Standort Bremen-Mitte" in html
    page = elements(html)
    # The summary names the field by its visible label and leads to it.
    assert page.summary_links == [("#closure-last", "Letzter Tag: darf nicht vor dem ersten Tag liegen")]
    assert_marked(page, "closure-last", "Letzter Tag: darf nicht vor dem ersten Tag liegen")
    assert "aria-invalid" not in page.attrs["closure-first"]
    # Nothing typed is lost: the form shows it all again, the group still chosen.
    assert dict(form_fields(html, "/staff/locations/mitte/closures")) | {"csrf_token": ""} == {
        **typed,
        "csrf_token": "",
    }
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert details["closures"] == []


@pytest.mark.req("R29")
async def test_a_refused_window_comes_back_in_its_own_row_and_the_summary_names_the_row(stack: Stack) -> None:
    leader = await stack.gateway.signed_in("form-leader2", (Role.GROUP_LEADER, "mitte"))
    window = await tuesday_window(stack)
    before = await (await leader.get("/staff/locations/mitte")).text()
    row = dict(form_fields(before, f"/staff/windows/{window}"))
    typed = {**row, "start": "09:15", "end": "kaputt", "service_points": "2"}
    status, _, html = await post_form(leader, f"/staff/windows/{window}", typed)
    assert status == 422
    assert "<title>Fehler: Standort Bremen-Mitte" in html
    page = elements(html)
    key = f"window-{window}"
    assert page.summary_links == [(f"#{key}-end", "Zeitfenster Dienstag 08:00: Bis: bitte eine Uhrzeit")]
    assert_marked(page, f"{key}-end", "Bis: bitte eine Uhrzeit")
    again = dict(form_fields(html, f"/staff/windows/{window}"))
    assert (again["start"], again["end"], again["service_points"]) == ("09:15", "kaputt", "2")
    # The group's form for a new window stays empty: what was typed belongs to the row.
    new = dict(form_fields(html, "/staff/groups/mitte-ez/windows"))
    assert (new["start"], new["end"]) == ("", "")
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert [(w["start"], w["end"]) for w in details["windows"]] == [("08:00", "12:00")]


@pytest.mark.req("R21")
async def test_a_window_change_that_waits_for_an_approval_comes_back_as_typed(stack: Stack) -> None:
    """Nord meets 3.3 (Thursday until 18:00); shortening that evening waits for the approval (409), and
    the row keeps the new end its administrator typed, so that it can be sent once approved."""
    admin = stack.admin
    evening = await nord_meeting_the_directive(admin)
    location_admin = await stack.gateway.signed_in("form-nord-la", (Role.LOCATION_ADMIN, "nord"))
    row = dict(
        form_fields(
            await (await location_admin.get("/staff/locations/nord")).text(), f"/staff/windows/{evening}"
        )
    )

    status, _, html = await post_form(location_admin, f"/staff/windows/{evening}", {**row, "end": "16:00"})
    assert status == 409 and "<title>Fehler: Standort Bremen-Nord" in html
    summary = elements(html).text["error-summary"]
    assert (
        "Zeitfenster Donnerstag 08:00: Nicht gespeichert: Diese Änderung schränkt die Zeitfenster" in summary
    )
    assert dict(form_fields(html, f"/staff/windows/{evening}"))["end"] == "16:00"


@pytest.mark.req("R29")
async def test_the_location_administrators_forms_come_back_as_typed_after_the_catalog_refuses(
    stack: Stack,
) -> None:
    """Not only the checks of the form: a group id the catalog already has (409) and a lead time over
    its limit come back as typed, the field named by its label on the page."""
    location_admin = await stack.gateway.signed_in("form-la", (Role.LOCATION_ADMIN, "mitte"))
    group = {"id": "mitte-ez", "kind": "benefits_team", "name": "Leistung 2", "service_points": "3"}
    status, _, html = await post_form(location_admin, "/staff/locations/mitte/groups", group)
    assert status == 409 and "<title>Fehler: Standort Bremen-Mitte" in html
    page = elements(html)
    assert page.summary_links == [("#new-group-id", "Kennung: gibt es schon")]
    assert_marked(page, "new-group-id", "Kennung: gibt es schon")
    assert "new-group-id-hint" in page.attrs["new-group-id"]["aria-describedby"].split()  # and the hint
    assert dict(form_fields(html, "/staff/locations/mitte/groups")) == {
        "csrf_token": location_admin.csrf,
        **group,
    }

    # As the page sends it: with the version it was loaded with, which the refused form keeps.
    page_form = dict(
        form_fields(
            await (await location_admin.get("/staff/locations/mitte")).text(),
            "/staff/locations/mitte/lead-time",
        )
    )
    lead = {"min_minutes": "30", "max_days": "99", "expected_version": page_form["expected_version"]}
    status, _, html = await post_form(location_admin, "/staff/locations/mitte/lead-time", lead)
    assert status == 422 and "<title>Fehler: Standort Bremen-Mitte" in html
    page = elements(html)
    assert page.summary_links == [
        ("#lead-time-max_days", "Höchstens so viele Tage im Voraus buchbar: ist zu groß")
    ]
    assert dict(form_fields(html, "/staff/locations/mitte/lead-time")) == {
        "csrf_token": location_admin.csrf,
        **lead,
    }


@pytest.mark.req("R20")
async def test_a_saved_closure_or_window_is_confirmed_where_the_page_jumps_to(stack: Stack) -> None:
    leader = await stack.gateway.signed_in("form-leader3", (Role.GROUP_LEADER, "mitte"))
    closure = {"first": "2026-03-10", "group_id": "mitte-ez", "service_points_left": "1", "reason": "Krank"}
    status, location, _ = await post_form(leader, "/staff/locations/mitte/closures", closure)
    assert status == 303 and SAVED_CLOSURE.fullmatch(location), location
    page = elements(await (await leader.get(location)).text())
    # Once, in the section the page jumps to (not a second time at the top for a screen reader).
    assert page.statuses == [(["main", "closures"], "Gespeichert.")]

    window = await tuesday_window(stack)
    row = dict(
        form_fields(await (await leader.get("/staff/locations/mitte")).text(), f"/staff/windows/{window}")
    )
    status, location, _ = await post_form(leader, f"/staff/windows/{window}", {**row, "end": "12:30"})
    assert (status, location) == (303, f"/staff/locations/mitte?saved=window-{window}#window-{window}")
    page = elements(await (await leader.get(location)).text())
    assert page.statuses == [(["main", "groups", "group-mitte-ez", f"window-{window}"], "Gespeichert.")]
    # An address without a place on the page (an old link) confirms at the top.
    page = elements(await (await leader.get("/staff/locations/mitte?saved=elsewhere")).text())
    assert page.statuses == [(["main"], "Gespeichert.")]


@pytest.mark.req("R19")
async def test_a_lead_time_saved_on_the_location_page_changes_what_customers_can_book(stack: Stack) -> None:
    """The location administrator sets the lead time on the page; the customers' calendar follows (here
    Monday 09:00: with a day's notice Tuesday's first hour is gone, the rest stays)."""
    tuesday = "2026-03-03"
    nine = f"{tuesday}T09:00:00+01:00"
    before = await wait_for_slots(
        stack.admin, "mitte", "neuantrag", tuesday, present=f"{tuesday}T08:00:00+01:00"
    )
    assert nine in before and before[0] < nine
    location_admin = await stack.gateway.signed_in("lead-la", (Role.LOCATION_ADMIN, "mitte"))
    page = await (await location_admin.get("/staff/locations/mitte")).text()
    form = dict(form_fields(page, "/staff/locations/mitte/lead-time"))
    status, location, _ = await post_form(
        location_admin, "/staff/locations/mitte/lead-time", {**form, "min_minutes": "1440"}
    )
    assert (status, location) == (303, "/staff/locations/mitte?saved=lead-time#lead-time")
    page = await (await location_admin.get(location)).text()
    assert dict(form_fields(page, "/staff/locations/mitte/lead-time"))["min_minutes"] == "1440"

    async def tuesday_from_nine() -> bool:
        response = await stack.admin.get(
            "/api/v1/locations/mitte/availability",
            params={"concern": "neuantrag", "mode": "in_person", "from": tuesday, "to": tuesday},
        )
        slots = [s["start"] for s in (await response.json())["slots"]]
        return slots == [s for s in before if s >= nine]

    await wait_for(tuesday_from_nine, timeout=15, what="Tuesday's slots before 09:00 gone")


async def test_a_groups_english_and_easy_language_names_are_marked_for_a_screen_reader(stack: Stack) -> None:
    """WCAG 3.1.2: the group's name in English and in Leichte Sprache is read in its own language."""
    location_admin = await stack.gateway.signed_in("form-lang", (Role.LOCATION_ADMIN, "mitte"))
    page = elements(await (await location_admin.get("/staff/locations/mitte")).text())
    assert page.attrs["group-mitte-ez-name_en"].get("lang") == "en"
    assert page.attrs["group-mitte-ez-name_de-x-ls"].get("lang") == "de-x-ls"
    assert "lang" not in page.attrs["group-mitte-ez-name"]


@pytest.mark.req("R20")
async def test_the_catalogs_refusals_of_windows_and_location_data_are_named_in_german(stack: Stack) -> None:
    """A window closing before it opens came back as "Bis: must be after start", an overlapping one in
    the catalog's English sentence, a postcode, a missing German name or no form of appointment in
    pydantic's English ("Value error, ...", "List should have at least 1 item ...")."""
    location_admin = await stack.gateway.signed_in("form-la-de", (Role.LOCATION_ADMIN, "mitte"))
    new_window = "/staff/groups/mitte-ez/windows"
    cases: list[tuple[str, dict[str, str], str]] = [
        (new_window, {"weekday": "1", "start": "12:00", "end": "08:00"}, "Bis: muss nach „Von“ liegen"),
        (
            new_window,
            {"weekday": "1", "start": "10:00", "end": "11:00"},
            "Von: überschneidet sich mit einem anderen Zeitfenster der Gruppe an diesem Wochentag",
        ),
        (
            new_window,
            {"weekday": "2", "start": "08:03", "end": "11:00"},
            "Von: bitte in Schritten von 5 Minuten (zum Beispiel 08:05)",
        ),
        (
            "/staff/locations/mitte/groups",
            {"id": "mitte-lt9", "kind": "benefits_team", "name": " ", "service_points": "1"},
            "Name: der deutsche Text fehlt",
        ),
        (
            "/staff/locations/mitte/concerns",
            {"concern_id": "neuantrag", "group_id": "mitte-ez", "duration_minutes": "30"},
            "Form des Termins: bitte mindestens eine Angabe ankreuzen",
        ),
    ]
    for path, typed, line in cases:
        status, _, html = await post_form(location_admin, path, {"service_points": "1", **typed})
        assert status == 422, (typed, html)
        texts = [text for _, text in elements(html).summary_links]
        assert any(text.endswith(line) for text in texts), (line, texts)
    page_form = dict(
        form_fields(
            await (await location_admin.get("/staff/locations/mitte")).text(),
            "/staff/locations/mitte/details",
        )
    )
    details = {**page_form, "postcode": "2819"}
    status, _, html = await post_form(location_admin, "/staff/locations/mitte/details", details)
    assert status == 422
    assert [text for _, text in elements(html).summary_links] == [
        "Postleitzahl: bitte fünf Ziffern, zum Beispiel 28195"
    ]


@pytest.mark.req("R20")
async def test_a_restriction_to_more_places_than_the_group_has_is_refused_at_its_field_in_german(
    stack: Stack,
) -> None:
    """A restriction "nur Platz 1 bis 99" of a group of 2 places was saved and listed as if it restricted
    something; a window of more places than the group has was refused in English."""
    leader = await stack.gateway.signed_in("form-leader-99", (Role.GROUP_LEADER, "mitte"))
    typed = {
        "first": "2026-03-10",
        "last": "2026-03-10",
        "group_id": "mitte-ez",
        "service_points_left": "99",
        "reason": "Krankheit",
    }
    status, _, html = await post_form(leader, "/staff/locations/mitte/closures", typed)
    assert status == 422
    line = "Serviceplätze, die bleiben: höchstens 2, so viele Serviceplätze hat die Gruppe"
    page = elements(html)
    assert page.summary_links == [("#closure-service_points_left", line)]
    assert_marked(page, "closure-service_points_left", line)
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert details["closures"] == []
    window = {"weekday": "3", "start": "08:00", "end": "10:00", "service_points": "3"}
    status, _, html = await post_form(leader, "/staff/groups/mitte-ez/windows", window)
    assert status == 422
    texts = [text for _, text in elements(html).summary_links]
    assert texts == [f"Neues Zeitfenster für Eingangszone: Serviceplätze: {line.split(': ')[1]}"], texts


@pytest.mark.req("R20")
async def test_a_closure_that_would_be_over_already_is_refused_at_its_last_day_in_german(
    stack: Stack,
) -> None:
    """A closure typed with last year (2025 for 2026) was saved and filed under the past closures at once,
    closing nothing. Today is 02.03.2026: it is refused at "Letzter Tag"; one that began last week and
    lasts until today is saved."""
    leader = await stack.gateway.signed_in("form-leader-past", (Role.GROUP_LEADER, "mitte"))
    typed = {
        "first": "2025-03-10",
        "last": "2025-03-12",
        "group_id": "mitte-ez",
        "service_points_left": "0",
        "reason": "Umbau",
    }
    status, _, html = await post_form(leader, "/staff/locations/mitte/closures", typed)
    assert status == 422
    line = "Letzter Tag: liegt vor heute, die Schließung wäre schon vorbei; bitte das Datum prüfen"
    line += ", auch das Jahr"
    page = elements(html)
    assert page.summary_links == [("#closure-last", line)]
    assert_marked(page, "closure-last", line)
    assert dict(form_fields(html, "/staff/locations/mitte/closures")) | {"csrf_token": ""} == {
        **typed,
        "csrf_token": "",
    }
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert details["closures"] == []
    running = {**typed, "first": "2026-02-26", "last": "2026-03-02"}
    status, location, _ = await post_form(leader, "/staff/locations/mitte/closures", running)
    assert status == 303 and SAVED_CLOSURE.fullmatch(location), location


@pytest.mark.req("R20")
async def test_a_closure_over_days_already_closed_or_restricted_is_saved_with_a_notice_naming_the_days(
    stack: Stack,
) -> None:
    """Two entries for the same day both apply, the stricter wins (fewer places, or closed): legitimate
    (a restriction for a week, one day of it closed), but easily a slip. The confirmation names the days
    and what else is entered for them."""
    leader = await stack.gateway.signed_in("form-leader-overlap", (Role.GROUP_LEADER, "mitte"))
    week = {"first": "2026-03-09", "last": "2026-03-13", "group_id": "mitte-ez", "reason": "Krankheit"}
    status, location, _ = await post_form(
        leader, "/staff/locations/mitte/closures", {**week, "service_points_left": "1"}
    )
    assert status == 303
    page = elements(await (await leader.get(location)).text())
    assert page.statuses == [(["main", "closures"], "Gespeichert.")]  # nothing else entered for those days
    day = {"first": "2026-03-12", "last": "2026-03-16", "group_id": "mitte-ez", "service_points_left": "0"}
    status, location, _ = await post_form(leader, "/staff/locations/mitte/closures", day)
    assert status == 303 and location.startswith("/staff/locations/mitte?saved=closures&")
    page = elements(await (await leader.get(location)).text())
    assert page.statuses == [
        (
            ["main", "closures"],
            "Gespeichert. Hinweis: Vom 12.03.2026 bis 13.03.2026 gilt schon die Einschränkung auf den Platz 1"
            " der Gruppe „Eingangszone“. Wo sich Einträge überschneiden, gilt der strengere (weniger"
            " Serviceplätze oder geschlossen).",
        )
    ]
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert sorted((c["first"], c["service_points_left"]) for c in details["closures"]) == [
        ("2026-03-09", 1),
        ("2026-03-12", 0),
    ]


@pytest.mark.req("R20")
async def test_a_one_day_closure_already_over_is_refused_at_the_first_day_typed(stack: Stack) -> None:
    """With "Letzter Tag" left empty the closure is of the first day only. That day typed with last year,
    the refusal stands at "Erster Tag", the date that was typed, not at the empty field below it."""
    leader = await stack.gateway.signed_in("form-leader-one-day", (Role.GROUP_LEADER, "mitte"))
    typed = {
        "first": "2025-03-10",
        "last": "",
        "group_id": "mitte-ez",
        "service_points_left": "0",
        "reason": "Umbau",
    }
    status, _, html = await post_form(leader, "/staff/locations/mitte/closures", typed)
    assert status == 422
    line = "Erster Tag: liegt vor heute, die Schließung wäre schon vorbei; bitte das Datum prüfen"
    line += ", auch das Jahr"
    page = elements(html)
    assert page.summary_links == [("#closure-first", line)]
    assert_marked(page, "closure-first", line)
    assert "aria-invalid" not in page.attrs["closure-last"]
    assert dict(form_fields(html, "/staff/locations/mitte/closures")) | {"csrf_token": ""} == {
        **typed,
        "csrf_token": "",
    }
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert details["closures"] == []


@pytest.mark.req("R20")
async def test_the_closures_last_day_cannot_be_picked_before_today_in_bremen(stack: Stack) -> None:
    """The date picker of "Letzter Tag" offers no day already over: a closure must last until today at
    least. At 00:30 in Bremen (23:30 UTC the day before) today is Bremen's day. "Erster Tag" keeps every
    day: a closure that began last week and lasts until today is saved."""
    now = stack.gateway.clock.now()
    stack.gateway.clock.set(datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
    try:
        leader = await stack.gateway.signed_in("form-leader-min", (Role.GROUP_LEADER, "mitte"))
        page = elements(await (await leader.get("/staff/locations/mitte")).text())
    finally:
        stack.gateway.clock.set(now)
    assert page.attrs["closure-last"].get("min") == "2026-03-03"
    assert "min" not in page.attrs["closure-first"]
