"""Statistics (R32, R35): figures from the events through the real broker agree with a direct count of
the generated data, whatever the order and however often the events arrive; only the statistics role
sees them; pages draw charts without loading anything; the export suppresses small counts."""

from __future__ import annotations

import io
import random
import re
import uuid
from collections import Counter
from datetime import date, time, timedelta
from time import perf_counter
from typing import Any

import pytest
from openpyxl import load_workbook

import shared.events.staff_work  # noqa: F401 -- registers the staff-work events (outcomes, callbacks)
from services.reporting import statistics
from services.reporting.domain import Period
from shared.clock import BERLIN
from shared.db import create_pool
from shared.events import EventData, model_for
from shared.events.appointment import AppointmentStatus, CancelledBy, Channel
from shared.events.catalog import Mode, WindowSnapshot
from shared.events.mail import MailKind
from shared.events.waiting_list import (
    EndReason,
    WaitingExpiredV1,
    WaitingFulfilledV1,
    WaitingRegisteredV1,
    WaitingWithdrawnV1,
    WishSnapshot,
)
from shared.identity import Role
from shared.labels import MAIL_KINDS_DE
from tests.conftest import db_settings, wait_for
from tests.reporting.conftest import (
    BEFORE,
    CONCERNS,
    DAY,
    Appt,
    Reporting,
    berlin,
    envelope,
    identity_header,
    location_event,
)
from tests.reporting.test_reporting_daylist import printed_header_footer


def outcome_event(appt: Appt, outcome: str) -> EventData:
    appt.revision += 1
    model = model_for("appointment.outcome_recorded", 1)
    assert model is not None
    return model.model_validate({"appointment": appt.snapshot(), "outcome": outcome, "note": "Notiz"})


FIRST, LAST = DAY, DAY + timedelta(days=13)


def weekdays(first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def generate(seed: int = 7, count: int = 160) -> tuple[list[Appt], list[Any]]:
    """Appointments (160 by default) at two locations over two weeks with their events: bookings, reschedules,
    cancellations by everyone, passing and outcomes."""
    rnd = random.Random(seed)
    days = weekdays(FIRST, LAST)
    appts: list[Appt] = []
    events: list[Any] = []
    for n in range(count):
        concern = rnd.choice(list(CONCERNS))
        modes = CONCERNS[concern][3]
        day = rnd.choice(days)
        start = berlin(day, rnd.choice([8, 9, 10, 11]), rnd.choice([0, 15, 30]))
        booked_at = start - timedelta(hours=rnd.randint(20, 20 * 24))
        appt = Appt(
            rnd.choice(["mitte", "nord"]),
            concern,
            start,
            mode=rnd.choice(modes),
            channel=rnd.choice(list(Channel)),
            service_point=1 + n % 2,
            booked_at=booked_at,
            interpreter_language="Farsi" if rnd.random() < 0.1 else None,
        )
        events.append((appt.booked(), booked_at))
        if rnd.random() < 0.2:
            new_day = rnd.choice(days)
            moved_at = booked_at + timedelta(hours=2)
            events.append((appt.reschedule(berlin(new_day, rnd.choice([8, 9, 10]), 0)), moved_at))
        roll = rnd.random()
        if roll < 0.25:
            by = rnd.choice(list(CancelledBy))
            events.append((appt.cancel(by), appt.booked_at + timedelta(hours=3)))
        else:
            events.append((appt.passed(), appt.end + timedelta(minutes=5)))
            if roll < 0.4:
                events.append((outcome_event(appt, "no_show"), appt.end + timedelta(minutes=10)))
            elif roll < 0.7:
                events.append((outcome_event(appt, "resolved"), appt.end + timedelta(minutes=10)))
        appts.append(appt)
    return appts, events


def direct_counts(appts: list[Appt]) -> dict[str, Any]:
    """The figures counted straight from the generated data, without reporting."""
    in_period = [a for a in appts if FIRST <= a.day <= LAST]
    cancelled = [a for a in in_period if a.status is AppointmentStatus.CANCELLED]
    no_show = {a.id for a in in_period if getattr(a, "outcome", None) == "no_show"}

    def slice_(key: Any) -> dict[str, tuple[int, int, int]]:
        out: dict[str, list[int]] = {}
        for a in in_period:
            figures = out.setdefault(key(a), [0, 0, 0])
            figures[0] += 1
            figures[1] += a.status is AppointmentStatus.CANCELLED
            figures[2] += a.id in no_show
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    return {
        "appointments": len(in_period),
        "cancellations": len(cancelled),
        "no_shows": len(no_show),
        "without_outcome": sum(
            a.status is AppointmentStatus.PASSED and getattr(a, "outcome", None) is None for a in in_period
        ),
        "by_location": slice_(lambda a: a.location_id),
        "by_concern": slice_(lambda a: a.concern_id),
        "by_channel": slice_(lambda a: a.channel.value),
        "by_group": slice_(lambda a: f"{a.location_id}/{a.group_id}"),
        "by_mode": slice_(lambda a: a.mode.value),
        "booked_minutes_by_group": sum(
            (
                Counter({f"{a.location_id}/{a.group_id}": a.minutes})
                for a in in_period
                if a.status is not AppointmentStatus.CANCELLED
            ),
            Counter(),
        ),
        "cancelled_by": Counter(a.cancelled_by for a in cancelled),  # type: ignore[attr-defined]
        "booked_minutes_mitte": sum(
            a.minutes
            for a in in_period
            if a.location_id == "mitte" and a.status is not AppointmentStatus.CANCELLED
        ),
    }


def offered_minutes_mitte() -> int:
    """What the test snapshot offers at one location in the period: entrance zone Mon-Fri 8-12 with 3
    service points; benefits team Mon-Thu 8-12 with 2 and Thursday 14-18 with 1."""
    total = 0
    for day in weekdays(FIRST, LAST):
        total += 4 * 60 * 3
        if day.weekday() < 4:
            total += 4 * 60 * 2
        if day.weekday() == 3:
            total += 4 * 60
    return total


def offered_minutes_mitte_ez() -> int:
    """The entrance zone's part of it: Mon-Fri 8-12 with 3 service points."""
    return len(weekdays(FIRST, LAST)) * 4 * 60 * 3


async def publish_generated(reporting: Reporting, seed: int = 7, count: int = 160) -> list[Appt]:
    appts, events = generate(seed, count)
    # Remember the facts the direct count needs (the Appt objects hold the final state).
    for data, _ in events:
        appt = next((a for a in appts if a.id == data.appointment.id), None)
        if appt is not None and data.event_type == "appointment.outcome_recorded":
            appt.outcome = data.outcome  # type: ignore[attr-defined]
        if appt is not None and data.event_type == "appointment.cancelled":
            appt.cancelled_by = data.cancelled_by.value  # type: ignore[attr-defined]
    setup_at = berlin(FIRST, 0) - timedelta(days=30)
    envelopes = [envelope(location_event("mitte"), setup_at), envelope(location_event("nord"), setup_at)]
    envelopes += [envelope(data, at) for data, at in events]
    rnd = random.Random(seed)
    # Any order, and a tenth delivered twice (at least once, I3): the figures must not care.
    shuffled = envelopes[:2] + rnd.sample(envelopes[2:], len(envelopes) - 2)
    shuffled += rnd.sample(envelopes[2:], len(envelopes) // 10)
    await reporting.publish(*shuffled)
    await reporting.settle(within=30)
    return appts


def stats_headers(reporting: Reporting, *locations: str) -> dict[str, str]:
    return identity_header(reporting.clock, Role.STATISTICS, *(locations or ("*",)))


@pytest.mark.req("R35")
@pytest.mark.req("R32")
async def test_summary_from_the_events_agrees_with_a_direct_count_of_the_generated_data(
    reporting: Reporting,
) -> None:
    reporting.clock.set(berlin(LAST + timedelta(days=1), 12))
    client = await reporting.start()
    appts = await publish_generated(reporting)
    expected = direct_counts(appts)

    response = await client.get(
        f"/api/v1/staff/statistics/summary?from={FIRST}&to={LAST}", headers=stats_headers(reporting)
    )
    assert response.status == 200
    summary = await response.json()
    assert set(summary) == {
        "appointments",
        "cancellations",
        "no_shows",
        "by_location",
        "by_concern",
        "by_channel",
    }
    assert summary["appointments"] == expected["appointments"] > 100
    assert summary["cancellations"] == expected["cancellations"] > 10
    assert summary["no_shows"] == expected["no_shows"] > 5
    for name, key in (
        ("by_location", "location_id"),
        ("by_concern", "concern_id"),
        ("by_channel", "channel"),
    ):
        got = {i[key]: (i["appointments"], i["cancellations"], i["no_shows"]) for i in summary[name]}
        assert got == expected[name], name
    assert {i["location_id"]: i["name"] for i in summary["by_location"]} == {
        "mitte": "Bremen-Mitte",
        "nord": "Bremen-Nord",
    }

    report = await (
        await client.get(
            f"/api/v1/staff/statistics/report?from={FIRST}&to={LAST}", headers=stats_headers(reporting)
        )
    ).json()
    assert {k: v for k, v in report["total"]["cancelled_by"].items() if v} == dict(expected["cancelled_by"])
    # What a no-show rate is read against: passed appointments whose outcome nobody recorded.
    assert report["total"]["without_outcome"] == expected["without_outcome"] > 5
    mitte = next(f for f in report["by_location"] if f["key"] == "mitte")
    assert mitte["booked_minutes"] == expected["booked_minutes_mitte"]
    assert mitte["offered_minutes"] == offered_minutes_mitte()
    assert mitte["utilisation"] == round(expected["booked_minutes_mitte"] / offered_minutes_mitte(), 4)
    assert sum(d["appointments"] for d in report["by_day"]) == expected["appointments"]
    assert sum(w["appointments"] for w in report["by_week"]) == expected["appointments"]
    assert sum(sum(f["lead_time_buckets"].values()) for f in report["by_mode"]) == expected["appointments"]
    # By group (each location's teams) and by mode, as for the other dimensions.
    for name in ("by_location", "by_group", "by_mode", "by_concern", "by_channel"):
        got = {
            f["key"]: (f["appointments"], f["cancellations"], f["no_shows"])
            for f in report[name]
            if f["appointments"]
        }
        assert got == expected[name], name
    assert {k.split("/")[1] for k in expected["by_group"]} == {"ez", "lt1"}
    groups = {f["key"]: f for f in report["by_group"]}
    for key, minutes in expected["booked_minutes_by_group"].items():
        assert groups[key]["booked_minutes"] == minutes, key
    offered = {
        "mitte/ez": offered_minutes_mitte_ez(),
        "mitte/lt1": offered_minutes_mitte() - offered_minutes_mitte_ez(),
    }
    for key, minutes in offered.items():
        assert groups[key]["offered_minutes"] == minutes, key
        assert groups[key]["utilisation"] == round(expected["booked_minutes_by_group"][key] / minutes, 4), key

    # A location's own figures: the same count, filtered.
    only = await (
        await client.get(
            f"/api/v1/staff/statistics/summary?from={FIRST}&to={LAST}&location=nord",
            headers=stats_headers(reporting),
        )
    ).json()
    assert only["appointments"] == expected["by_location"]["nord"][0]

    breakdown = await (
        await client.get(
            f"/api/v1/staff/statistics/breakdown?by=mode&from={FIRST}&to={LAST}",
            headers=stats_headers(reporting),
        )
    ).json()
    assert {i["key"] for i in breakdown["items"]} <= {m.value for m in Mode}
    assert sum(i["appointments"] for i in breakdown["items"]) == expected["appointments"]


@pytest.mark.req("R32")
async def test_statistics_are_for_the_statistics_role_only(reporting: Reporting) -> None:
    client = await reporting.start()
    clock = reporting.clock
    path = f"/api/v1/staff/statistics/summary?from={FIRST}&to={LAST}"
    assert (await client.get(path)).status == 401
    for role in (Role.APPOINTMENT_MANAGER, Role.LOCATION_ADMIN, Role.ADMIN, Role.AUDIT, Role.SERVICE_CENTRE):
        response = await client.get(path, headers=identity_header(clock, role, "*"))
        assert response.status == 403, role
    assert (await client.get(path, headers=stats_headers(reporting))).status == 200
    # A statistics grant for one location covers that location's figures only.
    local = stats_headers(reporting, "mitte")
    assert (await client.get(path, headers=local)).status == 403
    assert (await client.get(path + "&location=mitte", headers=local)).status == 200
    assert (await client.get(path + "&location=nord", headers=local)).status == 403
    for page in ("/staff/statistics", "/api/v1/staff/statistics/export", "/api/v1/staff/statistics/report"):
        assert (await client.get(page, headers=identity_header(clock, Role.ADMIN))).status == 403
    bad = await client.get(
        f"/api/v1/staff/statistics/summary?from={LAST}&to={FIRST}", headers=stats_headers(reporting)
    )
    assert bad.status == 422
    assert (await bad.json())["error"]["details"][0]["field"] == "from"
    far_off = await client.get(
        "/api/v1/staff/statistics/summary?from=0001-01-01", headers=stats_headers(reporting)
    )
    assert far_off.status == 422 and (await far_off.json())["error"]["details"][0]["field"] == "from"


@pytest.mark.req("R35")
async def test_an_empty_from_or_to_means_the_default_period_like_an_empty_location(
    reporting: Reporting,
) -> None:
    """The architecture's template `?from=&to=&location=` filled with blanks by an integration: the
    default period (the last 30 days up to today) of all locations, not a 422."""
    client = await reporting.start()
    today = reporting.clock.now().astimezone(BERLIN).date()
    default = {"from": str(today - timedelta(days=29)), "to": str(today)}
    for query in ("from=&to=&location=", "from=&to=", "from= &location=", "to="):
        summary = await client.get(
            f"/api/v1/staff/statistics/summary?{query}", headers=stats_headers(reporting)
        )
        assert summary.status == 200, (query, await summary.text())
        response = await client.get(
            f"/api/v1/staff/statistics/report?{query}", headers=stats_headers(reporting)
        )
        assert response.status == 200, (query, await response.text())
        body = await response.json()
        assert {k: body[k] for k in ("from", "to")} == default, query
        assert body["location"] is None
    # A blank end with a given start: from that day up to today.
    start = today - timedelta(days=3)
    report = await client.get(
        f"/api/v1/staff/statistics/report?from={start}&to=", headers=stats_headers(reporting)
    )
    assert report.status == 200
    assert (await report.json())["from"] == str(start)
    export = await client.get(
        "/api/v1/staff/statistics/export?from=&to=&location=", headers=stats_headers(reporting)
    )
    assert export.status == 200 and export.content_type.endswith("spreadsheetml.sheet")


@pytest.mark.req("R35")
@pytest.mark.parametrize(
    "period", [f"from={LAST}&to={FIRST}", "from=0001-01-01&to=0001-01-02", "from=2026-13-01", "to=9999-12-31"]
)
async def test_an_impossible_period_on_a_page_shows_the_default_period_with_a_german_note(
    reporting: Reporting, period: str
) -> None:
    """A page, not a JSON error: "bis" before "von", or a day no calendar has."""
    client = await reporting.start()
    admin = identity_header(reporting.clock, Role.ADMIN)
    for path, headers in (
        ("/staff/statistics", stats_headers(reporting)),
        ("/staff/admin/booking-patterns", admin),
    ):
        page = await client.get(f"{path}?{period}", headers=headers)
        html = await page.text()
        assert page.status == 200 and page.content_type == "text/html", (path, html[:200])
        assert 'role="alert"' in html and "Angezeigt werden die letzten 30 Tage." in html
        assert "<title>Fehler: " in html  # the first thing a screen reader reads of the page
    retention = await client.get("/staff/admin/retention?days=100000", headers=admin)
    html = await retention.text()
    assert retention.status == 200 and "Angezeigt werden die letzten 90 Tage." in html
    assert "<title>Fehler: Löschprotokoll" in html
    page = await client.get("/staff/admin/retention?days=90", headers=admin)
    assert "<title>Löschprotokoll" in await page.text()


@pytest.mark.req("R35")
async def test_all_locations_chosen_in_the_form_show_the_chosen_period(reporting: Reporting) -> None:
    """The filter's "alle Standorte" is sent as `location=`: the page shows the period chosen, not the
    last 30 days with a note blaming the dates; the API takes the documented `location=` as "all"."""
    reporting.clock.set(berlin(LAST + timedelta(days=60), 12))
    client = await reporting.start()
    appts = await publish_generated(reporting, count=40)
    expected = direct_counts(appts)

    page = await client.get(
        f"/staff/statistics?from={FIRST}&to={LAST}&location=", headers=stats_headers(reporting)
    )
    html = await page.text()
    assert page.status == 200
    assert f"{FIRST:%d.%m.%Y} bis {LAST:%d.%m.%Y}" in html and "alle Standorte." in html
    assert 'role="alert"' not in html and "Angezeigt werden die letzten 30 Tage" not in html
    assert f'<span class="value">{expected["appointments"]}</span> Termine' in html

    for path in ("summary", "report", "breakdown?by=location&", "export"):
        sep = "" if path.endswith("&") else "?"
        response = await client.get(
            f"/api/v1/staff/statistics/{path}{sep}from={FIRST}&to={LAST}&location=",
            headers=stats_headers(reporting),
        )
        assert response.status == 200, (path, await response.text())
    summary = await (
        await client.get(
            f"/api/v1/staff/statistics/summary?from={FIRST}&to={LAST}&location=",
            headers=stats_headers(reporting),
        )
    ).json()
    assert summary["appointments"] == expected["appointments"]
    # "All locations" still needs the statistics role for all of them.
    only_mitte = await client.get(
        f"/api/v1/staff/statistics/summary?from={FIRST}&to={LAST}&location=",
        headers=stats_headers(reporting, "mitte"),
    )
    assert only_mitte.status == 403


@pytest.mark.req("R32")
async def test_the_header_of_the_evaluation_pages_links_only_to_pages_the_person_may_open(
    reporting: Reporting,
) -> None:
    client = await reporting.start()
    period = f"from={FIRST}&to={LAST}"
    statistics_page = await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))
    assert statistics_page.status == 200
    html = await statistics_page.text()
    main_nav = html.split('aria-label="Hauptnavigation"')[1].split("</nav>")[0]
    assert 'href="/staff/statistics" aria-current="page"' in main_nav
    assert 'href="/staff/work"' not in main_nav  # the statistics role manages no appointments
    assert "/staff/admin/booking-patterns" not in html and "/staff/admin/retention" not in html
    admin = identity_header(reporting.clock, Role.ADMIN, "*")
    patterns_page = await client.get(f"/staff/admin/booking-patterns?{period}", headers=admin)
    assert patterns_page.status == 200
    html = await patterns_page.text()
    reports = html.split('aria-label="Auswertungen"')[1].split("</nav>")[0]
    assert 'href="/staff/admin/booking-patterns"' in reports and 'href="/staff/admin/retention"' in reports
    assert 'href="/staff/statistics"' not in html  # administrators see statistics only with that role
    # The staff pages' navigation: an administrator of every location sees the administration's pages.
    assert 'href="/staff/admin/accounts"' in html.split('aria-label="Hauptnavigation"')[1].split("</nav>")[0]


@pytest.mark.req("R35")
async def test_statistics_page_draws_inline_svg_charts_and_loads_nothing_from_elsewhere(
    reporting: Reporting,
) -> None:
    reporting.clock.set(berlin(LAST + timedelta(days=1), 12))
    client = await reporting.start()
    await publish_generated(reporting, count=60)
    response = await client.get(f"/staff/statistics?from={FIRST}&to={LAST}", headers=stats_headers(reporting))
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert html.count("<svg") >= 8
    assert 'role="img"' in html and "<title id=" in html
    assert "<script" not in html
    assert "http://" not in html and "https://" not in html  # no CDN, no external font or image
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "Bremen-Mitte" in html and "Auslastung" in html and "Vorlaufzeit" in html
    assert re.search(r"stattgefunden, ohne erfasstes Ergebnis</th><td class=\"n\">[1-9]", html)
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.req("R24")
@pytest.mark.req("R35")
async def test_a_follow_up_counts_as_its_own_outcome_and_not_as_passed_without_one(
    reporting: Reporting,
) -> None:
    """Directive 3.4: an entrance-zone appointment that ends with a follow-up in the responsible team has
    that result; the statistics tell it apart from an outcome nobody recorded, on the page, in the JSON
    and in the Excel export."""
    reporting.clock.set(berlin(DAY + timedelta(days=1), 12))
    client = await reporting.start()
    envelopes = [envelope(location_event("mitte"), berlin(DAY, 0) - timedelta(days=30))]
    # Five without an outcome: one would be "<5" in the export, and the 6 beside it hidden to protect it.
    for n in range(11):
        appt = Appt("mitte", "veraenderung", berlin(DAY, 8 + n // 4, (n % 4) * 15))
        envelopes += [envelope(appt.booked(), appt.booked_at), envelope(appt.passed(), appt.end)]
        if n < 6:  # the others passed without an outcome
            follow_up = outcome_event(appt, "follow_up")
            envelopes.append(envelope(follow_up, appt.end + timedelta(minutes=5)))
    await reporting.publish(*envelopes)
    await reporting.settle(within=30)

    period = f"from={DAY}&to={DAY}"
    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    assert report["total"]["outcomes"]["follow_up"] == 6
    assert report["total"]["without_outcome"] == 5
    html = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    assert 'Ergebnis: Folgetermin im zuständigen Team</th><td class="n">6</td>' in html
    assert 'stattgefunden, ohne erfasstes Ergebnis</th><td class="n">5</td>' in html
    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    overview = list(load_workbook(io.BytesIO(await export.read()))["Übersicht"].iter_rows(values_only=True))
    column = overview[0].index("Ergebnis: Folgetermin im zuständigen Team")
    assert overview[1][column] == 6


@pytest.mark.req("R35")
async def test_export_shows_small_counts_as_below_five(reporting: Reporting) -> None:
    reporting.clock.set(berlin(LAST + timedelta(days=1), 12))
    client = await reporting.start()
    appts = await publish_generated(reporting, count=60)
    expected = direct_counts(appts)
    response = await client.get(
        f"/api/v1/staff/statistics/export?from={FIRST}&to={LAST}", headers=stats_headers(reporting)
    )
    assert response.status == 200
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="otv-statistik_alle_{FIRST}_{LAST}.xlsx"'
    )
    wb = load_workbook(io.BytesIO(await response.read()))
    assert {"Hinweise", "Übersicht", "Standorte", "Anliegen", "Kanal", "Tage", "Wochen", "Rückrufe"} <= set(
        wb.sheetnames
    )
    notes = " ".join(str(c.value) for row in wb["Hinweise"].iter_rows() for c in row if c.value)
    assert "„<5“" in notes
    overview = list(wb["Übersicht"].iter_rows(values_only=True))
    assert overview[1][1] == expected["appointments"]
    cells = [v for ws in wb.worksheets for row in ws.iter_rows(min_row=2, values_only=True) for v in row[1:]]
    assert "<5" in cells  # some days have a handful of cancellations
    # No count from 1 to 4 is shown anywhere; minutes count no persons.
    hidden_rows = 0
    for ws in wb.worksheets:
        header = next(ws.iter_rows(max_row=1, values_only=True))
        for row in ws.iter_rows(min_row=2, values_only=True):
            for title, value in zip(header, row, strict=False):
                if isinstance(value, int) and "Minuten" not in str(title):
                    assert not 0 < value < 5, (ws.title, title, value)
            # Nor can it be recalculated: the booked minutes of a concern of 15 minutes are 15 per
            # appointment, and the utilisation gives the minutes back.
            by_title = dict(zip(header, row, strict=False))
            if "<5" in (by_title.get("Termine"), by_title.get("Stornierungen")):
                hidden_rows += 1
                assert by_title["gebuchte Minuten"] in (None, ""), (ws.title, row)
                assert by_title["Auslastung"] in (None, ""), (ws.title, row)
    assert hidden_rows
    assert "gebuchten Minuten und die Auslastung" in notes


@pytest.mark.req("R35")
async def test_the_days_of_the_export_are_dates_that_sort_and_group_by_month(reporting: Reporting) -> None:
    """The "Tage" sheet has a filter: a day as text ("Mo 10.03.2025") sorted A-Z puts every Tuesday
    before the Mondays, and a pivot table cannot group it by month. A date with a German weekday format
    shows the same and sorts by time."""
    reporting.clock.set(berlin(DAY + timedelta(days=30), 12))
    client = await reporting.start()
    days = [DAY + timedelta(days=n) for n in (6, 0, 1, 21)]  # Mon 17.3., Tue 11.3., Wed 12.3., Mon 1.4.
    appts = [Appt("mitte", "neuantrag", berlin(day, 9)) for day in days]
    await reporting.send(*((a.booked(), a.booked_at) for a in appts))
    response = await client.get(
        f"/api/v1/staff/statistics/export?from={DAY}&to={DAY + timedelta(days=29)}",
        headers=stats_headers(reporting),
    )
    assert response.status == 200
    sheet = load_workbook(io.BytesIO(await response.read()))["Tage"]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert cells and all(c.is_date for c in cells)
    dates = [c.value.date() for c in cells]
    assert dates == sorted(dates)
    counts = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert [d for d, n in zip(dates, counts, strict=True) if n != 0] == sorted(days)  # each "<5"
    # German weekday names whatever the language of the Excel that opens it (de-DE: locale 407).
    assert {c.number_format for c in cells} == {"[$-407]ddd dd.mm.yyyy"}


async def test_callbacks_count_as_in_time_when_closed_within_48_hours(reporting: Reporting) -> None:
    reporting.clock.set(berlin(DAY + timedelta(days=4), 12))
    client = await reporting.start()
    created = model_for("callback.created", 1)
    closed = model_for("callback.closed", 1)
    assert created is not None and closed is not None
    appt = Appt("mitte", "leistungsbezug", berlin(DAY, 9))

    def ticket(n: int, hours_to_close: int | None) -> tuple[Any, ...]:
        at = berlin(DAY, 10) + timedelta(minutes=n)
        body: dict[str, Any] = {
            "id": str(uuid.UUID(int=n)),
            "appointment_id": str(appt.id),
            "location_id": "mitte",
            "group_id": "lt1",
            "reason": "outcome",
            "status": "open",
            "created_at": at,
            "due_at": at + timedelta(hours=48),
            "revision": 1,
        }
        out: list[Any] = [(created.model_validate({"callback": body}), at)]
        if hours_to_close is not None:
            done = at + timedelta(hours=hours_to_close)
            shut = {**body, "closed_at": done, "status": "closed", "revision": 2}
            out.append((closed.model_validate({"callback": shut}), done))
        return tuple(out)

    items = [*ticket(1, 5), *ticket(2, 47), *ticket(3, 50), *ticket(4, None)]
    # The close of ticket 1 before its creation: order does not matter.
    await reporting.send(items[1], items[0], *items[2:])
    report = await (
        await client.get(
            f"/api/v1/staff/statistics/report?from={DAY}&to={DAY}", headers=stats_headers(reporting)
        )
    ).json()
    assert report["callbacks"] == {
        "key": "total",
        "label": "gesamt",
        "created": 4,
        "closed_in_time": 2,
        "closed_late": 1,
        "open_in_time": 0,
        "open_overdue": 1,  # the clock stands four days later
        "withdrawn": 0,
    }


@pytest.mark.req("R23")
async def test_a_ticket_handed_to_another_team_or_opened_again_counts_as_its_newest_revision(
    reporting: Reporting,
) -> None:
    """A corrected outcome moves the ticket to another team, or opens a withdrawn one again (booking
    sends `callback.created` again, a higher revision); an older event arriving late changes nothing."""
    await reporting.start()
    created = model_for("callback.created", 1)
    closed = model_for("callback.closed", 1)
    assert created is not None and closed is not None
    appt = Appt("mitte", "leistungsbezug", berlin(DAY, 9))
    at = berlin(DAY, 10)
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "appointment_id": str(appt.id),
        "location_id": "mitte",
        "group_id": "ez",
        "reason": "outcome",
        "status": "open",
        "created_at": at,
        "due_at": at + timedelta(hours=48),
        "revision": 1,
    }

    async def stored() -> tuple[str, str]:
        row = await reporting.pool.fetchrow(
            "SELECT group_id, status FROM callbacks WHERE id = $1", body["id"]
        )
        return row["group_id"], row["status"]

    first = (created.model_validate({"callback": body}), at)
    await reporting.send(
        first, (created.model_validate({"callback": {**body, "group_id": "lt1", "revision": 2}}), at)
    )
    await reporting.send(first)  # redelivered late
    assert await stored() == ("lt1", "open")
    withdrawn = {
        **body,
        "group_id": "lt1",
        "status": "closed",
        "closed_at": at + timedelta(hours=1),
        "revision": 3,
    }
    await reporting.send((closed.model_validate({"callback": withdrawn}), at + timedelta(hours=1)))
    assert await stored() == ("lt1", "closed")
    again = {**body, "group_id": "lt1", "due_at": at + timedelta(hours=50), "revision": 4}
    await reporting.send((created.model_validate({"callback": again}), at + timedelta(hours=2)))
    assert await stored() == ("lt1", "open")
    await reporting.send((closed.model_validate({"callback": withdrawn}), at + timedelta(hours=1)))  # late
    assert await stored() == ("lt1", "open")


@pytest.mark.req("R12")
@pytest.mark.req("R35")
async def test_evening_appointments_are_a_dimension_with_their_own_offered_minutes_and_utilisation(
    reporting: Reporting,
) -> None:
    """Whether the mandatory evening slots (directive 3.3) are used: the statistics count the evening
    appointments apart and set them against the minutes the evening windows offered."""
    reporting.clock.set(berlin(DAY + timedelta(days=1), 12))
    client = await reporting.start()
    configured = location_event("mitte")
    evening_window = WindowSnapshot(
        group_id="lt1", weekday=DAY.weekday(), start=time(16), end=time(19), service_points=1, evening=True
    )
    configured = configured.model_copy(update={"windows": [*configured.windows, evening_window]})
    late = [Appt("mitte", "leistungsbezug", berlin(DAY, 16, 30 * n), evening=True) for n in range(2)]
    early = Appt("mitte", "neuantrag", berlin(DAY, 9))
    await reporting.send(
        (configured, berlin(DAY, 0) - timedelta(days=30)),
        *((a.booked(), a.booked_at) for a in [*late, early]),
    )
    period = f"from={DAY}&to={DAY}"
    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    parts = {f["key"]: f for f in report["by_evening"]}
    assert list(parts) == ["daytime", "evening"]
    assert (parts["evening"]["appointments"], parts["daytime"]["appointments"]) == (2, 1)
    # Tuesday: entrance zone 4 h x 3, benefits team 4 h x 2, and the evening window 3 h x 1.
    assert (parts["evening"]["offered_minutes"], parts["daytime"]["offered_minutes"]) == (180, 1200)
    assert parts["evening"]["utilisation"] == round(60 / 180, 4)
    assert parts["daytime"]["utilisation"] == round(60 / 1200, 4)
    breakdown = await (
        await client.get(
            f"/api/v1/staff/statistics/breakdown?by=evening&{period}", headers=stats_headers(reporting)
        )
    ).json()
    assert [i["appointments"] for i in breakdown["items"]] == [1, 2]

    html = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    table = html.split("<caption>Termine abends und tagsüber</caption>")[1].split("</table>")[0]
    assert '<th scope="row">abends (Abendtermine)</th><td class="n">2</td>' in table
    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    sheet = list(load_workbook(io.BytesIO(await export.read()))["Abendtermine"].iter_rows(values_only=True))
    rows = {row[0]: dict(zip(sheet[0], row, strict=True)) for row in sheet[1:]}
    assert rows["abends (Abendtermine)"]["angebotene Minuten"] == 180

    # A day whose evening part is unknown (written before it was kept): no evening utilisation at all.
    await reporting.pool.execute("UPDATE capacity_days SET evening_minutes = NULL WHERE day = $1", DAY)
    unknown = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    assert [(f["offered_minutes"], f["utilisation"]) for f in unknown["by_evening"]] == [(None, None)] * 2
    assert unknown["total"]["offered_minutes"] == 1380


@pytest.mark.req("R12")
@pytest.mark.req("R35")
async def test_days_ahead_written_without_their_evening_part_get_it_at_the_next_capacity_run(
    reporting: Reporting,
) -> None:
    """During the rolling update a pod of the previous release claims the capacity job (migration 008
    emptied it) and writes the days ahead without their evening part: the next capacity run of this
    release writes them again, once across replicas, so that their evening utilisation is shown."""
    first = await reporting.start()  # the day before DAY, 12:00
    await reporting.start()
    configured = location_event("mitte")
    evening_window = WindowSnapshot(
        group_id="lt1", weekday=DAY.weekday(), start=time(16), end=time(19), service_points=1, evening=True
    )
    configured = configured.model_copy(update={"windows": [*configured.windows, evening_window]})
    await reporting.send((configured, berlin(BEFORE, 0) - timedelta(days=30)))
    pool = reporting.pool
    # As the previous release's pod did: the job claimed now, the rows written without evening minutes.
    await pool.execute(
        "INSERT INTO job_runs (job, last_run_at) VALUES ('capacity', $1)"
        " ON CONFLICT (job) DO UPDATE SET last_run_at = EXCLUDED.last_run_at",
        reporting.clock.now(),
    )
    await pool.execute("UPDATE capacity_days SET evening_minutes = NULL")
    rows_before = await pool.fetchval("SELECT count(*) FROM capacity_days")
    period = f"from={DAY}&to={DAY + timedelta(days=7)}"

    async def by_evening() -> list[tuple[int | None, float | None]]:
        response = await first.get(
            f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting)
        )
        assert response.status == 200
        return [(f["offered_minutes"], f["utilisation"]) for f in (await response.json())["by_evening"]]

    assert await by_evening() == [(None, None)] * 2  # hidden while a day of the period is unknown

    reporting.clock.advance(timedelta(hours=1, seconds=1))  # the capacity job is due again

    async def written_again() -> bool:
        unknown = "SELECT count(*) FROM capacity_days WHERE day > $1 AND evening_minutes IS NULL"
        return bool(await pool.fetchval(unknown, BEFORE) == 0)

    await wait_for(written_again, what="the days ahead written again with their evening part")
    # Two Tuesdays' evening windows (3 h x 1); the daytime minutes of the week and the Monday after.
    offered = await by_evening()
    assert offered[1][0] == 2 * 180
    assert offered[0][0] is not None and offered[0][0] > 0
    assert await pool.fetchval("SELECT count(*) FROM capacity_days") == rows_before
    # Today's row is kept as it was (its evening part stays unknown).
    assert await pool.fetchval(
        "SELECT bool_and(evening_minutes IS NULL) FROM capacity_days WHERE day = $1", BEFORE
    )


@pytest.mark.req("R25")
@pytest.mark.req("R35")
async def test_a_hand_over_is_no_staff_cancellation_and_transfers_count_in_and_out_per_location(
    reporting: Reporting,
) -> None:
    """Mitte hands one concern over to Nord without a free slot (cancelled at Mitte, a callback at Nord)
    and Nord takes another appointment over with a slot of its own: neither is a cancellation by staff,
    and both locations see what went where (directive 3.4: bookings at the wrong location)."""
    reporting.clock.set(berlin(LAST + timedelta(days=1), 12))
    client = await reporting.start()
    handed, cancelled, moved, stays = (
        Appt("mitte", "leistungsbezug", berlin(DAY, 9)),
        Appt("mitte", "leistungsbezug", berlin(DAY, 10)),
        Appt("mitte", "leistungsbezug", berlin(DAY, 11)),
        Appt("nord", "leistungsbezug", berlin(DAY, 9)),
    )
    setup_at = berlin(FIRST, 0) - timedelta(days=30)
    booked = [(a.booked(), a.booked_at) for a in (handed, cancelled, moved, stays)]
    at = berlin(BEFORE, 15)
    await reporting.send(
        (location_event("mitte"), setup_at),
        (location_event("nord"), setup_at),
        *booked,
        (handed.hand_over("nord"), at),
        (cancelled.cancel(CancelledBy.STAFF, "Krankheit"), at),
        (moved.transfer("nord", berlin(DAY + timedelta(days=1), 9)), at),
    )
    period = f"from={FIRST}&to={LAST}"
    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    total = report["total"]
    assert (total["appointments"], total["cancellations"], total["handed_over"]) == (4, 1, 1)
    assert total["cancelled_by"]["staff"] == 1
    assert (total["transferred_in"], total["transferred_out"]) == (1, 1)
    by_location = {
        f["key"]: (
            f["appointments"],
            f["cancellations"],
            f["handed_over"],
            f["transferred_in"],
            f["transferred_out"],
        )
        for f in report["by_location"]
    }
    assert by_location == {"mitte": (2, 1, 1, 0, 1), "nord": (2, 0, 0, 1, 0)}
    assert report["by_concern"][0]["transferred_out"] is None  # a location's figure only
    summary = await (
        await client.get(f"/api/v1/staff/statistics/summary?{period}", headers=stats_headers(reporting))
    ).json()
    assert summary["cancellations"] == 1
    only_mitte = await (
        await client.get(
            f"/api/v1/staff/statistics/report?{period}&location=mitte", headers=stats_headers(reporting)
        )
    ).json()
    assert (only_mitte["total"]["transferred_in"], only_mitte["total"]["transferred_out"]) == (0, 1)

    html = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    assert '>storniert durch Mitarbeitende</th><td class="n">1</td>' in html
    assert (
        'an zuständigen Standort übergeben (Rückruf dort, keine Stornierung)</th><td class="n">1</td>' in html
    )
    moves = html.split("<caption>Übernahmen zwischen Standorten</caption>")[1].split("</table>")[0]
    assert re.sub(r"\s+", " ", moves).count('<td class="n">1</td>') == 3
    assert '<th scope="row">Bremen-Mitte</th><td class="n">0</td><td class="n">1</td>' in moves

    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    sheet = list(load_workbook(io.BytesIO(await export.read()))["Standorte"].iter_rows(values_only=True))
    rows = {row[0]: dict(zip(sheet[0], row, strict=True)) for row in sheet[1:]}
    assert rows["Bremen-Mitte"]["an zuständigen Standort übergeben (Rückruf)"] == "<5"
    assert rows["Bremen-Nord"]["an anderen Standort abgegeben"] == 0
    assert rows["Bremen-Nord"]["storniert durch Mitarbeitende"] == 0


@pytest.mark.req("R23")
@pytest.mark.req("R35")
async def test_a_ticket_withdrawn_by_a_corrected_outcome_is_counted_apart_not_as_closed_in_time(
    reporting: Reporting,
) -> None:
    """A clerk records "callback" by mistake at 10:00 and corrects it to "resolved" at 10:02: booking
    closes the ticket as withdrawn. Nobody called anyone back, so the 48-hour figure must not count it
    as kept (DA 2.3); a ticket withdrawn and then opened again counts as created after all."""
    reporting.clock.set(berlin(DAY + timedelta(days=4), 12))
    client = await reporting.start()
    created = model_for("callback.created", 1)
    closed = model_for("callback.closed", 1)
    assert created is not None and closed is not None
    at = berlin(DAY, 10)

    def body(location: str) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "appointment_id": str(uuid.uuid4()),
            "location_id": location,
            "group_id": "lt1",
            "reason": "outcome",
            "status": "open",
            "created_at": at,
            "due_at": at + timedelta(hours=48),
            "revision": 1,
        }

    def shut(ticket: dict[str, Any], minutes: int, closed_as: str, revision: int = 2) -> tuple[Any, Any]:
        done = at + timedelta(minutes=minutes)
        data = {**ticket, "status": "closed", "closed_at": done, "closed_as": closed_as, "revision": revision}
        return closed.model_validate({"callback": data}), done

    mistaken, called, reopened = body("mitte"), body("mitte"), body("nord")
    await reporting.send(
        (created.model_validate({"callback": mistaken}), at),
        shut(mistaken, 2, "withdrawn"),
        (created.model_validate({"callback": called}), at),
        shut(called, 60, "done"),
        (created.model_validate({"callback": reopened}), at),
        shut(reopened, 2, "withdrawn"),
        # Corrected back to "callback": the same ticket open again, a higher revision, due anew.
        (
            created.model_validate({"callback": {**reopened, "revision": 3}}),
            at + timedelta(minutes=5),
        ),
    )
    period = f"from={DAY}&to={DAY}"
    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    total = report["callbacks"]
    assert (total["created"], total["closed_in_time"], total["withdrawn"]) == (2, 1, 1)
    assert total["open_overdue"] == 1  # the ticket opened again, four days later
    by_location = {
        c["key"]: (c["created"], c["closed_in_time"], c["withdrawn"]) for c in report["callbacks_by_location"]
    }
    assert by_location == {"mitte": (1, 1, 1), "nord": (1, 0, 0)}

    html = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    assert '<span class="value">1 / 2</span> Rückrufe in 48 Std.' in html
    table = html.split("<caption>Rückruf-Tickets, angelegt im Zeitraum</caption>")[1].split("</table>")[0]
    assert '<th scope="col" class="n">zurückgenommen</th>' in table

    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    sheet = list(load_workbook(io.BytesIO(await export.read()))["Rückrufe"].iter_rows(values_only=True))
    rows = {row[0]: dict(zip(sheet[0], row, strict=True)) for row in sheet[1:]}
    assert rows["alle"]["angelegt"] == "<5" and rows["alle"]["zurückgenommen"] == "<5"
    assert rows["nord"]["zurückgenommen"] == 0 and rows["nord"]["fristgerecht geschlossen"] == 0


async def test_mail_outcomes_are_counted_by_kind(reporting: Reporting) -> None:
    client = await reporting.start()
    sent = model_for("mail.sent", 1)
    failed = model_for("mail.failed", 1)
    if sent is None or failed is None:
        pytest.skip("the notifier's mail events are not defined")
    appt = Appt("mitte", "neuantrag", berlin(DAY, 9))
    at = berlin(DAY, 0) - timedelta(days=1)
    await reporting.send(
        (appt.booked(), appt.booked_at),
        (
            sent.model_validate(
                {
                    "mail_id": appt.id,
                    "appointment_id": appt.id,
                    "kind": "confirmation",
                    "revision": 1,
                    "attempts": 1,
                }
            ),
            at,
        ),
        (
            failed.model_validate(
                {
                    "mail_id": Appt("mitte", "neuantrag", at).id,
                    "appointment_id": appt.id,
                    "kind": "reminder",
                    "revision": 1,
                    "attempts": 3,
                    "reason": "rejected",
                }
            ),
            at,
        ),
    )
    report = await (
        await client.get(
            f"/api/v1/staff/statistics/report?from={at.date()}&to={DAY}", headers=stats_headers(reporting)
        )
    ).json()
    # Every kind, 0 where none went out: a period without a reminder shows it, not a missing row.
    assert {m["kind"]: (m["sent"], m["failed"]) for m in report["mails"]} == dict.fromkeys(
        MAIL_KINDS_DE, (0, 0)
    ) | {"confirmation": (1, 0), "reminder": (0, 1)}
    # The page and the Excel file name each kind in German (the threshold hides counts under 5 there).
    period = f"from={at.date()}&to={DAY}"
    page = await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))
    html = await page.text()
    assert ">Bestätigung</th>" in html and ">Erinnerung</th>" in html and ">confirmation<" not in html
    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    sheet = load_workbook(io.BytesIO(await export.read()))["E-Mails"]
    rows = {row[0]: row[1:] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert list(rows) == list(MAIL_KINDS_DE.values())
    assert rows["Bestätigung"] == ("<5", 0) and rows["Erinnerung"] == (0, "<5") and rows["Absage"] == (0, 0)
    # Every kind of mail the notifier sends has its German name (staff never read a code).
    assert set(MAIL_KINDS_DE) == {kind.value for kind in MailKind}


@pytest.mark.req("R35")
@pytest.mark.req("R45")
async def test_a_location_without_callbacks_or_waiting_wishes_shows_them_as_0(reporting: Reporting) -> None:
    """Like its appointments, a location's callbacks and waiting list count 0 in a period without any:
    a row missing from the comparison of locations would read as "not counted"."""
    reporting.clock.set(berlin(DAY + timedelta(days=1), 12))
    client = await reporting.start()
    setup_at = berlin(DAY, 0) - timedelta(days=30)
    await reporting.send(
        (location_event("mitte"), setup_at),
        (location_event("nord"), setup_at),
        (WaitingRegisteredV1(wish=waiting_wish("mitte")), berlin(DAY, 9)),
    )
    period = f"from={DAY}&to={DAY}"
    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    assert {c["label"]: c["created"] for c in report["callbacks_by_location"]} == {
        "Bremen-Mitte": 0,
        "Bremen-Nord": 0,
    }
    assert {w["label"]: w["registered"] for w in report["waiting_by_location"]} == {
        "Bremen-Mitte": 1,
        "Bremen-Nord": 0,
    }
    one = await (
        await client.get(
            f"/api/v1/staff/statistics/report?{period}&location=nord", headers=stats_headers(reporting)
        )
    ).json()
    assert [c["key"] for c in one["callbacks_by_location"]] == ["nord"]
    assert [(w["key"], w["registered"]) for w in one["waiting_by_location"]] == [("nord", 0)]
    # A location's figures count no waiting-list mail (it belongs to a wish): no row says 0 for one.
    assert [m["kind"] for m in one["mails"]] == [k for k in MAIL_KINDS_DE if not k.startswith("waiting_")]

    html = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    table = html.split("<caption>Warteliste je Standort</caption>")[1].split("</table>")[0]
    assert '<tr><th scope="row">Bremen-Nord</th><td class="n">0</td>' in table
    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    wb = load_workbook(io.BytesIO(await export.read()))
    callbacks = {row[0]: row[1:] for row in wb["Rückrufe"].iter_rows(min_row=2, values_only=True)}
    assert callbacks == dict.fromkeys(("alle", "Bremen-Mitte", "Bremen-Nord"), (0,) * 6)
    waiting = {row[0]: row[1] for row in wb["Warteliste"].iter_rows(min_row=2, values_only=True)}
    assert waiting["Standort: Bremen-Mitte"] == "<5" and waiting["Standort: Bremen-Nord"] == 0


def waiting_wish(location: str, concern: str = "veraenderung") -> WishSnapshot:
    return WishSnapshot.model_validate(
        {
            "id": str(uuid.uuid4()),
            "reference": "WART-1234",
            "revision": 1,
            "status": "waiting",
            "location_id": location,
            "location_name": location,
            "location_address": "Doventorsteinweg 48, 28195 Bremen",
            "concern_id": concern,
            "concern_name": CONCERNS[concern][1],
            "mode": "in_person",
            "weekdays": [0, 1],
            "latest_date": (LAST + timedelta(days=30)).isoformat(),
            "customer": {"first_name": "Erika", "last_name": "Muster", "email": "erika@example.org"},
            "page_url": "https://x.example/waiting-list/1",
            "registered_at": berlin(FIRST, 9).isoformat(),
        }
    )


@pytest.mark.req("R45")
@pytest.mark.req("R35")
async def test_the_waiting_list_figures_show_on_the_page_in_the_report_and_in_the_export(
    reporting: Reporting,
) -> None:
    """Wishes nobody could serve are the demand the offered appointments did not meet (DA 3.3): the
    statistics show them by location and concern, and the export hides small counts as everywhere."""
    reporting.clock.set(berlin(LAST + timedelta(days=1), 12))
    client = await reporting.start()
    setup_at = berlin(FIRST, 0) - timedelta(days=30)
    at = berlin(FIRST + timedelta(days=1), 9)
    mitte = [waiting_wish("mitte") for _ in range(6)]
    await reporting.send(
        (location_event("mitte"), setup_at),
        (location_event("nord"), setup_at),
        *((WaitingRegisteredV1(wish=w), at) for w in mitte),
        (WaitingRegisteredV1(wish=waiting_wish("nord", "leistungsbezug")), at),
        (WaitingFulfilledV1(wish=mitte[0], appointment_id=uuid.uuid4(), via_offer=True), at),
        (WaitingRegisteredV1(wish=waiting_wish("mitte")), berlin(LAST + timedelta(days=1), 9)),  # later
    )
    period = f"from={FIRST}&to={LAST}"

    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    assert report["waiting"]["registered"] == 7 and report["waiting"]["fulfilled"] == 1
    assert report["waiting"]["offered"] == 0
    by_location = {
        w["key"]: (w["label"], w["registered"], w["fulfilled"]) for w in report["waiting_by_location"]
    }
    assert by_location == {"mitte": ("Bremen-Mitte", 6, 1), "nord": ("Bremen-Nord", 1, 0)}
    by_concern = {w["label"]: w["registered"] for w in report["waiting_by_concern"]}
    assert by_concern == {"Mitteilung einer Veränderung": 6, "Fragen zum Leistungsbezug": 1}
    nord = await (
        await client.get(
            f"/api/v1/staff/statistics/report?{period}&location=nord", headers=stats_headers(reporting)
        )
    ).json()
    assert nord["waiting"]["registered"] == 1

    html = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    table = html.split("<caption>Warteliste je Standort</caption>")[1].split("</table>")[0]
    assert '<th scope="col" class="n">eingetragen</th>' in table
    assert '<tr><th scope="row">Bremen-Mitte</th><td class="n">6</td>' in table

    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    sheet = list(load_workbook(io.BytesIO(await export.read()))["Warteliste"].iter_rows(values_only=True))
    header, rows = sheet[0], {row[0]: dict(zip(sheet[0], row, strict=True)) for row in sheet[1:]}
    assert header[:3] == ("Bereich", "eingetragen", "Adresse bestätigt")
    assert rows["alle"]["eingetragen"] == 7 and rows["alle"]["Termin gebucht"] == "<5"
    assert rows["Standort: Bremen-Nord"]["eingetragen"] == "<5"
    # 7 of all minus the 6 of Bremen-Mitte would give Bremen-Nord's one back: hidden for protection.
    assert rows["Standort: Bremen-Mitte"]["eingetragen"] == "(x)"
    assert rows["Anliegen: Fragen zum Leistungsbezug"]["eingetragen"] == "<5"
    assert rows["alle"]["Termin angeboten"] == 0


@pytest.mark.req("R45")
@pytest.mark.req("R35")
async def test_waiting_list_endings_are_counted_by_what_happened_not_by_the_events_type(
    reporting: Reporting,
) -> None:
    """ "Termin gebucht" is split into bookings through an offer and on the customer's own; a customer who
    registers again before confirming is one wish (the new registration and the replaced one are counted
    apart, not as a second wish and a withdrawal); an opt-in never used is not an expired wish."""
    reporting.clock.set(berlin(LAST + timedelta(days=1), 12))
    client = await reporting.start()
    at = berlin(FIRST + timedelta(days=1), 9)
    (offer_taken, own, own_too, lost_mail, again, withdrawn, unconfirmed, too_late) = (
        waiting_wish("mitte") for _ in range(8)
    )
    registered = [offer_taken, own, own_too, lost_mail, withdrawn, unconfirmed, too_late]
    await reporting.send(
        (location_event("mitte"), berlin(FIRST, 0) - timedelta(days=30)),
        *((WaitingRegisteredV1(wish=w), at) for w in registered),
        (WaitingFulfilledV1(wish=offer_taken, appointment_id=uuid.uuid4(), via_offer=True), at),
        (WaitingFulfilledV1(wish=own, appointment_id=uuid.uuid4()), at),
        (WaitingFulfilledV1(wish=own_too, appointment_id=uuid.uuid4(), via_offer=False), at),
        (WaitingWithdrawnV1(wish=lost_mail, reason=EndReason.REPLACED), at),
        (WaitingRegisteredV1(wish=again, replaces_unconfirmed=True), at),
        (WaitingWithdrawnV1(wish=withdrawn, reason=EndReason.CUSTOMER), at),
        (WaitingExpiredV1(wish=unconfirmed, reason=EndReason.NOT_CONFIRMED), at),
        (WaitingExpiredV1(wish=too_late, reason=EndReason.LATEST_DATE), at),
    )
    period = f"from={FIRST}&to={LAST}"
    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    expected = {
        "registered": 7,
        "re_registered": 1,
        "replaced": 1,
        "fulfilled": 3,
        "fulfilled_via_offer": 1,
        "fulfilled_on_own": 2,
        "withdrawn": 1,
        "not_confirmed": 1,
        "expired": 1,
    }
    for figures in (report["waiting"], report["waiting_by_location"][0], report["waiting_by_concern"][0]):
        assert {k: figures[k] for k in expected} == expected

    html = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    table = html.split("<caption>Warteliste je Standort</caption>")[1].split("</table>")[0]
    header = re.findall(r'<th scope="col" class="n">([^<]+)</th>', table)
    row = re.findall(
        r'<td class="n">(\d+)</td>', table.split('<th scope="row">gesamt</th>')[1].split("</tr>")[0]
    )
    shown = dict(zip(header, row, strict=True))
    assert shown["eingetragen"] == "7" and shown["zurückgezogen"] == "1"
    assert shown["davon über ein Angebot"] == "1" and shown["davon selbst gebucht"] == "2"
    assert shown["durch neue Eintragung ersetzt"] == "1" and shown["Adresse nie bestätigt"] == "1"

    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    sheet = list(load_workbook(io.BytesIO(await export.read()))["Warteliste"].iter_rows(values_only=True))
    assert {"davon über ein Angebot", "erneut eingetragen", "Adresse nie bestätigt"} <= set(sheet[0])
    everything = dict(zip(sheet[0], sheet[1], strict=True))
    assert everything["eingetragen"] == 7 and everything["davon selbst gebucht"] == "<5"


@pytest.mark.req("R35")
async def test_a_months_statistics_list_every_iso_week_with_its_offered_minutes_in_json_page_and_excel(
    reporting: Reporting,
) -> None:
    """Appointments in one week of March only: the weeks without any still show what was offered (0 %
    utilisation, the interesting ones in a weekly trend), and the weeks add up to the month."""
    first, last = date(2025, 3, 1), date(2025, 3, 31)  # Saturday of 2025-W09 to Monday of 2025-W14
    reporting.clock.set(berlin(last + timedelta(days=1), 12))
    client = await reporting.start()
    appts = [Appt("mitte", "leistungsbezug", berlin(DAY, 9 + n)) for n in range(2)]
    setup_at = berlin(first, 0) - timedelta(days=30)
    await reporting.publish(
        envelope(location_event("mitte"), setup_at), *(envelope(a.booked(), a.booked_at) for a in appts)
    )
    await reporting.settle(within=30)
    period = f"from={first}&to={last}"

    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    weeks = {w["key"]: w for w in report["by_week"]}
    assert list(weeks) == [f"2025-W{n:02d}" for n in range(9, 15)]
    assert weeks["2025-W11"]["appointments"] == 2  # the week of DAY
    offered_by_week: Counter[str] = Counter()
    for day in report["by_day"]:
        year, week, _ = date.fromisoformat(day["key"]).isocalendar()
        offered_by_week[f"{year}-W{week:02d}"] += day["offered_minutes"]
    assert {k: w["offered_minutes"] for k, w in weeks.items()} == dict(offered_by_week)
    assert all(weeks[f"2025-W{n}"]["offered_minutes"] > 0 for n in (10, 12, 13, 14))
    assert weeks["2025-W12"]["appointments"] == 0 and weeks["2025-W12"]["utilisation"] == 0
    assert sum(w["offered_minutes"] for w in weeks.values()) == report["total"]["offered_minutes"]

    page = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    week_table = page.split("Termine je Kalenderwoche</caption>", 1)[1].split("</table>", 1)[0]
    # (the first and the last week with the days of March they count: "2025-W09 (nur 01.03.-02.03.)")
    assert re.findall(r'<th scope="row">(2025-W\d\d)[^<]*</th>', week_table) == list(weeks)
    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    sheet = load_workbook(io.BytesIO(await export.read()))["Wochen"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [str(r[0])[:8] for r in rows if str(r[0]).startswith("2025-W")] == list(weeks)


@pytest.mark.req("R35")
async def test_an_export_of_one_location_names_it_as_the_page_does(reporting: Reporting) -> None:
    """A saved file says what it holds: the location by the name the statistics page shows, not by its
    internal id, in the title, in the overview's row and in the file's properties."""
    reporting.clock.set(berlin(DAY + timedelta(days=1), 12))
    client = await reporting.start()
    await reporting.send((location_event("mitte"), berlin(DAY, 0) - timedelta(days=30)))
    page = await client.get(
        f"/staff/statistics?from={DAY}&to={DAY}&location=mitte", headers=stats_headers(reporting)
    )
    assert "Standort Bremen-Mitte" in await page.text()
    response = await client.get(
        f"/api/v1/staff/statistics/export?from={DAY}&to={DAY}&location=mitte",
        headers=stats_headers(reporting),
    )
    assert response.status == 200
    wb = load_workbook(io.BytesIO(await response.read()))
    assert wb["Hinweise"]["A1"].value == "OTV-Statistik 11.03.2025 - 11.03.2025, Standort Bremen-Mitte"
    assert wb["Übersicht"]["A2"].value == "Standort Bremen-Mitte"
    assert wb.properties.subject == "Statistik der Online-Terminvergabe, Standort Bremen-Mitte"

    everything = await client.get(
        f"/api/v1/staff/statistics/export?from={DAY}&to={DAY}", headers=stats_headers(reporting)
    )
    wb = load_workbook(io.BytesIO(await everything.read()))
    assert wb["Hinweise"]["A1"].value == "OTV-Statistik 11.03.2025 - 11.03.2025, alle Standorte"
    assert wb["Übersicht"]["A2"].value == "alle Standorte"


@pytest.mark.req("R35")
async def test_a_mode_or_channel_nobody_used_shows_as_0_not_as_a_missing_row(reporting: Reporting) -> None:
    """A week without a phone appointment, or without a booking by the service centre, is a finding: the
    breakdowns by mode and channel list every mode and channel with 0, in the JSON, on the page and in
    the export, as the days and the parts of the day do; a period without any appointment as well."""
    reporting.clock.set(berlin(DAY + timedelta(days=30), 12))
    client = await reporting.start()
    await reporting.send((location_event("mitte"), berlin(DAY, 0) - timedelta(days=30)))
    appt = Appt("mitte", "neuantrag", berlin(DAY, 9))  # in person, booked online
    await reporting.send((appt.booked(), appt.booked_at))

    for first, last, appointments in ((DAY, DAY, 1), (DAY + timedelta(days=1), DAY + timedelta(days=2), 0)):
        period = f"from={first}&to={last}"
        report = await (
            await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
        ).json()
        assert [(f["key"], f["appointments"]) for f in report["by_mode"]] == [
            ("in_person", appointments),
            ("phone", 0),
        ]
        assert [(f["key"], f["appointments"]) for f in report["by_channel"]] == [
            ("online", appointments),
            ("staff", 0),
            ("service_centre", 0),
        ]
        page = await (
            await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))
        ).text()
        assert '<th scope="row">telefonisch</th><td class="n">0</td>' in page
        assert '<th scope="row">Service-Center</th><td class="n">0</td>' in page
        export = await client.get(
            f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting)
        )
        wb = load_workbook(io.BytesIO(await export.read()))
        shown = "<5" if appointments else 0
        modes = [row[:2] for row in wb["Art"].iter_rows(min_row=2, values_only=True)]
        assert modes == [("persönlich", shown), ("telefonisch", 0)]
        channels = [row[:2] for row in wb["Kanal"].iter_rows(min_row=2, values_only=True)]
        assert channels == [("online", shown), ("Mitarbeitende", 0), ("Service-Center", 0)]


@pytest.mark.req("R35")
async def test_a_location_its_groups_and_concerns_without_appointments_show_as_0(
    reporting: Reporting,
) -> None:
    """A weekend, a public holiday or a closed location: every location that takes bookings, each of its
    groups and every concern it offers stays in the breakdowns with 0, not a missing row (a month's
    comparison of the locations must not lose the one that was closed); a location that takes no
    bookings any more is left out."""
    saturday = DAY + timedelta(days=4)
    reporting.clock.set(berlin(saturday + timedelta(days=3), 12))
    client = await reporting.start()
    setup_at = berlin(DAY, 0) - timedelta(days=30)
    closed = location_event("nord").model_copy(update={"name": "Bremen-Nord (geschlossen)", "active": False})
    await reporting.send((location_event("mitte"), setup_at), (closed, setup_at))
    assert saturday.weekday() == 5

    period = f"from={saturday}&to={saturday + timedelta(days=1)}"
    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    assert [(f["key"], f["appointments"]) for f in report["by_location"]] == [("mitte", 0)]
    assert [(f["key"], f["appointments"]) for f in report["by_group"]] == [("mitte/ez", 0), ("mitte/lt1", 0)]
    assert sorted((f["key"], f["appointments"]) for f in report["by_concern"]) == [
        (concern, 0) for concern in sorted(CONCERNS)
    ]
    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    wb = load_workbook(io.BytesIO(await export.read()))
    assert [row[:2] for row in wb["Standorte"].iter_rows(min_row=2, values_only=True)] == [
        ("Bremen-Mitte", 0)
    ]
    assert [row[:2] for row in wb["Gruppen"].iter_rows(min_row=2, values_only=True)] == [
        ("Bremen-Mitte - Eingangszone", 0),
        ("Bremen-Mitte - Leistungsteam 1", 0),
    ]
    assert len(list(wb["Anliegen"].iter_rows(min_row=2))) == len(CONCERNS)
    page = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    assert '<th scope="row">Bremen-Mitte</th><td class="n">0</td>' in page


@pytest.mark.req("R35")
async def test_the_statistics_of_a_long_period_are_not_slowed_by_query_compilation(
    reporting: Reporting,
) -> None:
    """A year's export over every location reads hundreds of thousands of appointments: PostgreSQL then
    compiles the statistics' query to machine code first (JIT), which costs seconds on every request and
    saves nothing on a query run once (measured: 8 s instead of 4 s for 300,000 appointments, close to the
    gateway's 10 s). Here a database that compiles every query, whatever its size, stands in for that
    period: the statistics answer as fast as without compilation."""
    reporting.clock.set(berlin(LAST + timedelta(days=1), 12))
    await reporting.start()
    await reporting.send((location_event("mitte"), berlin(FIRST, 0) - timedelta(days=30)))
    appts = [Appt("mitte", "neuantrag", berlin(day, 9)) for day in weekdays(FIRST, LAST)]
    await reporting.send(*((a.booked(), a.booked_at) for a in appts))
    always = {
        "jit": "on",
        "jit_above_cost": "0",
        "jit_inline_above_cost": "0",
        "jit_optimize_above_cost": "0",
    }
    pool = await create_pool(
        db_settings("reporting"),
        server_settings={"search_path": "reporting,public", "timezone": "UTC", **always},
    )
    try:
        period = Period(FIRST, LAST)
        started = perf_counter()
        report = await statistics.statistics_report(pool, reporting.settings, reporting.clock, period, None)
        took = perf_counter() - started
    finally:
        await pool.close()
    assert report.total.appointments == len(appts)
    assert took < 1.0, f"{took:.1f} s"  # compiled: 3 s and more


def printed_scale(ws: Any) -> float:
    """How large a sheet prints on A4 landscape fitted to its pages' width, as a share of its size on
    screen: the columns (a column repeated on each page counted on each) spread over `fitToWidth` pages,
    about 7 pixels (96 per inch) per character of column width."""
    widths = {letter: dim.width for letter, dim in ws.column_dimensions.items() if dim.width}
    repeated = (ws.print_title_cols or "").replace("$", "")
    pages = ws.page_setup.fitToWidth or 1
    title = widths.get("A", 0.0) if repeated == "A:A" else 0.0
    per_page = (sum(widths.values()) + (pages - 1) * title) / pages
    printable = (11.69 - ws.page_margins.left - ws.page_margins.right) * 96 / 7
    return float(min(1.0, printable / per_page))


@pytest.mark.req("R35")
async def test_each_sheet_of_the_export_prints_readably_with_its_row_names_on_every_page(
    reporting: Reporting,
) -> None:
    """Printed on A4 landscape, a sheet of 27 figures per location squeezed onto the width of one page
    came out at 43 % (a 4.7 pt font): a wide sheet spreads over as many pages as it needs to stay at 70 %
    or more, as the day list does, and repeats the row names (column A) on each of them."""
    reporting.clock.set(berlin(DAY + timedelta(days=1), 12))
    client = await reporting.start()
    await reporting.send((location_event("mitte"), berlin(DAY, 0) - timedelta(days=30)))
    export = await client.get(
        f"/api/v1/staff/statistics/export?from={DAY}&to={DAY}", headers=stats_headers(reporting)
    )
    wb = load_workbook(io.BytesIO(await export.read()))
    for ws in wb.worksheets:
        if ws.title != "Hinweise":
            assert ws.page_setup.orientation == "landscape"
            assert (ws.print_title_rows or "").replace("$", "") == "1:1", ws.title  # the header row
        assert printed_scale(ws) >= 0.7, (ws.title, round(printed_scale(ws), 2))
        if (ws.page_setup.fitToWidth or 1) > 1:
            assert (ws.print_title_cols or "").replace("$", "") == "A:A", ws.title
    assert wb["Standorte"].page_setup.fitToWidth > 1  # 27 columns: more than one page wide


@pytest.mark.req("R35")
@pytest.mark.req("R34")
async def test_each_printed_page_of_the_export_says_what_it_holds_and_claims_no_personal_data(
    reporting: Reporting,
) -> None:
    """A printed page of the statistics is read apart from the file: its footer names the period and the
    locations. It said "Vertraulich - personenbezogene Daten" like the day list, though the statistics
    hold none (R34) and their notes say so."""
    reporting.clock.set(berlin(DAY + timedelta(days=1), 12))
    client = await reporting.start()
    await reporting.send((location_event("mitte"), berlin(DAY, 0) - timedelta(days=30)))
    export = await client.get(
        f"/api/v1/staff/statistics/export?from={DAY}&to={DAY}&location=mitte",
        headers=stats_headers(reporting),
    )
    content = await export.read()
    sheets = load_workbook(io.BytesIO(content)).sheetnames
    for number, title in enumerate(sheets, start=1):
        printed = printed_header_footer(content, number)
        assert printed["oddFooter.L"] == (
            "OTV-Statistik 11.03.2025 - 11.03.2025, Standort Bremen-Mitte - ohne personenbezogene Daten"
        ), title
        assert printed["oddFooter.R"] == "Seite 1 von 2", title


@pytest.mark.req("R35")
async def test_a_week_cut_by_the_period_says_which_of_its_days_it_counts(reporting: Reporting) -> None:
    """Wednesday to the Tuesday two weeks later: the first and the last calendar week count only some of
    their days. In a weekly trend they look like weeks with few appointments unless their name says so;
    a whole week keeps its plain name."""
    first, last = date(2025, 3, 12), date(2025, 3, 25)
    reporting.clock.set(berlin(last + timedelta(days=1), 12))
    client = await reporting.start()
    await reporting.send((location_event("mitte"), berlin(first, 0) - timedelta(days=30)))
    period = f"from={first}&to={last}"
    report = await (
        await client.get(f"/api/v1/staff/statistics/report?{period}", headers=stats_headers(reporting))
    ).json()
    labels = [(w["key"], w["label"]) for w in report["by_week"]]
    assert labels == [
        ("2025-W11", "2025-W11 (nur 12.03.-16.03.)"),
        ("2025-W12", "2025-W12"),
        ("2025-W13", "2025-W13 (nur 24.03.-25.03.)"),
    ]
    export = await client.get(f"/api/v1/staff/statistics/export?{period}", headers=stats_headers(reporting))
    sheet = load_workbook(io.BytesIO(await export.read()))["Wochen"]
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == [label for _, label in labels]
    page = await (await client.get(f"/staff/statistics?{period}", headers=stats_headers(reporting))).text()
    assert '<th scope="row">2025-W13 (nur 24.03.-25.03.)</th>' in page
