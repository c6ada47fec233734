"""The statistics export hides small counts so that no sum gives them back (R35): a total shown exactly with
one hidden cell of its line would let a reader subtract the shown cells and read the hidden one. Each test
reads a real workbook with openpyxl and tries exactly that subtraction on every line a reader can see."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.workbook import Workbook

from services.reporting.domain import (
    CANCELLED_BY_LABELS,
    LEAD_TIME_BUCKETS,
    OUTCOME_LABELS,
    Bounds,
    Line,
    iso_week,
    protect,
)
from services.reporting.models import CallbackFigures, Figures, StatisticsReport, WaitingFigures
from services.reporting.workbooks import build_statistics_export
from tests.reporting.conftest import Reporting, berlin
from tests.reporting.test_reporting_statistics import FIRST, LAST, publish_generated, stats_headers

SMALL = "<5"
PROTECTED = "(x)"
FIGURE_SHEETS = ("Standorte", "Gruppen", "Anliegen", "Art", "Kanal", "Abendtermine", "Wochen", "Tage")


def rows_of(wb: Workbook, title: str) -> tuple[list[str], list[list[Any]]]:
    rows = [list(r) for r in wb[title].iter_rows(values_only=True)]
    return [str(h) for h in rows[0]], rows[1:]


def leaks(total: Any, parts: list[Any]) -> int | None:
    """What a reader works out from one line `total = sum(parts)`: the one hidden count it pins down, or
    the sum of its hidden counts when that sum is itself a small count (None: nothing)."""
    cells = [total, *parts]
    hidden = [v for v in cells if v in (SMALL, PROTECTED)]
    if not hidden:
        return None
    if total in (SMALL, PROTECTED):
        if len(hidden) == 1:
            return sum(int(v) for v in parts if isinstance(v, int))
        return None  # the total and a part hidden: only their difference is known
    rest = int(total) - sum(int(v) for v in parts if isinstance(v, int))
    if len(hidden) == 1 or 0 < rest < 5:
        return rest
    small = sum(v == SMALL for v in hidden)
    big = len(hidden) - small
    # Each "<5" is 1 to 4, each protected cell 5 or more: is one "<5" cell left one value?
    lowest_rest = (small - 1) + 5 * big
    highest_rest = None if big else (small - 1) * 4
    low = max(1, rest - highest_rest) if highest_rest is not None else 1
    high = min(4, rest - lowest_rest)
    return rest if small and low == high else None


def counted(name: str) -> bool:
    return "Minuten" not in name and name != "Auslastung" and "Vorlaufzeit" not in name


def columns(
    name: str, head: list[str], total: list[Any], parts: list[list[Any]]
) -> Iterator[tuple[str, Any, list[Any]]]:
    """The sum of each column of `parts` against the row `total` (same columns)."""
    for index, title in enumerate(head[1:], start=1):
        values = [p[index] for p in parts]
        if counted(title) and total[index] not in ("", None):
            yield f"{name}/{title}", total[index], values


def lines(wb: Workbook) -> Iterator[tuple[str, Any, list[Any]]]:
    """Every sum a reader of the export can check: each column of a breakdown against the overview, a
    location against its groups, a week against its days, the cancellations against who cancelled, the
    appointments against their lead times, and the rows of the callbacks and the waiting list against
    their row "alle"."""
    header, (total, *_) = rows_of(wb, "Übersicht")
    for title in FIGURE_SHEETS:
        head, rows = rows_of(wb, title)
        assert head[1:] == header[1:]
        yield from columns(title, head, total, rows)
        for row in rows:
            by = dict(zip(head, row, strict=True))
            yield (
                f"{title}/{row[0]}/Stornierungen",
                by["Stornierungen"],
                [by[f"storniert durch {label}"] for label in CANCELLED_BY_LABELS.values()],
            )
            yield (
                f"{title}/{row[0]}/Vorlauf",
                by["Termine"],
                [by[f"Vorlauf {label}"] for label, _ in LEAD_TIME_BUCKETS],
            )
    head, days = rows_of(wb, "Tage")
    for week in rows_of(wb, "Wochen")[1]:
        of_week = [d for d in days if iso_week(d[0].date()) == str(week[0]).split(" ")[0]]
        yield from columns(f"Wochen/{week[0]}", head, week, of_week)
    groups = rows_of(wb, "Gruppen")[1]
    for location in rows_of(wb, "Standorte")[1]:
        of_location = [g for g in groups if str(g[0]).startswith(f"{location[0]} - ")]
        yield from columns(f"Standorte/{location[0]}", head, location, of_location)
    head, rows = rows_of(wb, "Rückrufe")
    yield from columns("Rückrufe", head, rows[0], rows[1:])
    head, rows = rows_of(wb, "Warteliste")
    for prefix in ("Standort: ", "Anliegen: "):
        yield from columns(
            f"Warteliste/{prefix}", head, rows[0], [r for r in rows if str(r[0]).startswith(prefix)]
        )


def derivable(wb: Workbook) -> list[tuple[str, int]]:
    return [(name, n) for name, total, parts in lines(wb) if (n := leaks(total, parts)) is not None]


def figures(key: str, label: str, appointments: int, cancelled: int = 0) -> Figures:
    return Figures(
        key=key,
        label=label,
        appointments=appointments,
        cancellations=cancelled,
        cancelled_by={"customer": cancelled, **dict.fromkeys(list(CANCELLED_BY_LABELS)[1:], 0)},
        transferred_out=0 if key in ("total", "mitte", "nord") else None,
        outcomes=dict.fromkeys(OUTCOME_LABELS, 0),
        without_outcome=appointments - cancelled,
        booked_minutes=30 * (appointments - cancelled),
        lead_time_buckets={
            label: appointments if i == 1 else 0 for i, (label, _) in enumerate(LEAD_TIME_BUCKETS)
        },
    )


def report_with_one_small_concern() -> StatisticsReport:
    """23 appointments: 20 of one concern and 3 of another (an energy cut-off, a concern people keep
    quiet about) at one location on one day; every other breakdown has no small cell."""
    day = date(2026, 3, 10)
    total = figures("total", "gesamt", 23, 6)
    return StatisticsReport(
        first=day,
        last=day,
        location=None,
        total=total,
        by_location=[figures("mitte", "Bremen-Mitte", 23, 6), figures("nord", "Bremen-Nord", 0)],
        by_group=[figures("mitte/ez", "Bremen-Mitte - Eingangszone", 23, 6)],
        by_concern=[
            figures("neuantrag", "Neuantrag stellen", 20, 6),
            figures("energiesperre", "Drohende / eingetretene Energiesperre", 3),
            figures("veraenderung", "Mitteilung einer Veränderung", 0),
        ],
        by_mode=[figures("in_person", "persönlich", 23, 6), figures("phone", "telefonisch", 0)],
        by_channel=[figures("online", "online", 23, 6)],
        by_day=[figures(day.isoformat(), "Di 10.03.2026", 23, 6)],
        by_week=[figures("2026-W11", "2026-W11 (nur 10.03.-10.03.)", 23, 6)],
        by_evening=[figures("daytime", "tagsüber", 23, 6), figures("evening", "abends", 0)],
        callbacks=CallbackFigures(key="total", label="gesamt", created=9, closed_in_time=9),
        callbacks_by_location=[
            CallbackFigures(key="mitte", label="Bremen-Mitte", created=7, closed_in_time=7),
            CallbackFigures(key="nord", label="Bremen-Nord", created=2, closed_in_time=2),
        ],
        mails=[],
        waiting=WaitingFigures(key="total", label="gesamt", registered=8),
        waiting_by_location=[WaitingFigures(key="mitte", label="Bremen-Mitte", registered=8)],
        waiting_by_concern=[
            WaitingFigures(key="neuantrag", label="Neuantrag stellen", registered=6),
            WaitingFigures(key="energiesperre", label="Drohende / eingetretene Energiesperre", registered=2),
        ],
    )


def export(report: StatisticsReport) -> Workbook:
    content = build_statistics_export(
        report, scope="alle Standorte", threshold=5, generated_at=datetime(2026, 3, 11, 8, tzinfo=UTC)
    )
    return load_workbook(io.BytesIO(content))


@pytest.mark.req("R35")
def test_a_count_hidden_in_the_export_cannot_be_worked_out_from_a_total() -> None:
    wb = export(report_with_one_small_concern())
    head, rows = rows_of(wb, "Anliegen")
    concerns = {r[0]: dict(zip(head, r, strict=True)) for r in rows}
    assert concerns["Drohende / eingetretene Energiesperre"]["Termine"] == SMALL
    # The overview's 23 minus the 20 shown would say 3: the next smallest count of the line is hidden
    # too, marked as hidden for protection, and zero stays an exact zero.
    assert concerns["Neuantrag stellen"]["Termine"] == PROTECTED
    assert concerns["Mitteilung einer Veränderung"]["Termine"] == 0
    assert derivable(wb) == []
    # The other sheets keep their exact counts where no small one hides in their lines.
    head, rows = rows_of(wb, "Standorte")
    assert dict(zip(head, rows[0], strict=True))["Termine"] == 23
    callbacks = {r[0]: r[1] for r in rows_of(wb, "Rückrufe")[1]}
    assert callbacks == {"alle": 9, "Bremen-Mitte": PROTECTED, "Bremen-Nord": SMALL}
    notes = " ".join(str(c.value) for row in wb["Hinweise"].iter_rows() for c in row if c.value)
    assert f"„{PROTECTED}“" in notes and "zurückrechnen" in notes


@pytest.mark.req("R35")
def test_the_booked_minutes_give_no_hidden_count_back_through_their_total() -> None:
    """A concern has one duration: its booked minutes are its appointments not cancelled times that
    duration. Hidden in its row (10 appointments, 7 cancelled: 3 held), they must not follow from the
    overview's minutes minus the minutes of the other concerns either."""
    day = date(2026, 3, 10)
    held = {"without_outcome": 20}  # those of the second concern are still to come
    everything = figures("mitte", "Bremen-Mitte", 30, 7).model_copy(update=held)
    report = report_with_one_small_concern().model_copy(
        update={
            "total": figures("total", "gesamt", 30, 7).model_copy(update=held),
            "by_concern": [
                figures("neuantrag", "Neuantrag stellen", 20),
                figures("energiesperre", "Drohende / eingetretene Energiesperre", 10, 7).model_copy(
                    update={"without_outcome": 0}
                ),
            ],
            **{
                f"by_{d}": [everything.model_copy(update={"key": key})]
                for d, key in (
                    ("location", "mitte"),
                    ("group", "mitte/ez"),
                    ("mode", "in_person"),
                    ("channel", "online"),
                    ("day", day.isoformat()),
                    ("week", "2026-W11"),
                    ("evening", "daytime"),
                )
            },
        }
    )
    wb = export(report)
    head, rows = rows_of(wb, "Anliegen")
    column = head.index("gebuchte Minuten")
    minutes = {r[0]: r[column] for r in rows}
    assert rows_of(wb, "Übersicht")[1][0][column] == 690
    assert minutes["Drohende / eingetretene Energiesperre"] is None  # 90 = 3 x 30
    # 690 - 600 would give the 90 back.
    assert minutes["Neuantrag stellen"] is None
    assert {r[0]: r[1] for r in rows} == {
        "Neuantrag stellen": 20,
        "Drohende / eingetretene Energiesperre": 10,
    }
    assert derivable(wb) == []


@pytest.mark.req("R35")
async def test_no_line_of_a_generated_export_gives_a_hidden_count_back(reporting: Reporting) -> None:
    reporting.clock.set(berlin(LAST + timedelta(days=1), 12))
    client = await reporting.start()
    await publish_generated(reporting, count=60)
    response = await client.get(
        f"/api/v1/staff/statistics/export?from={FIRST}&to={LAST}", headers=stats_headers(reporting)
    )
    wb = load_workbook(io.BytesIO(await response.read()))
    cells = [v for ws in wb.worksheets[1:] for row in ws.iter_rows(min_row=2, values_only=True) for v in row]
    assert SMALL in cells and 0 in cells
    assert derivable(wb) == []
    # The JSON report stays exact (the statistics role sees every count, R32).
    report = await (
        await client.get(
            f"/api/v1/staff/statistics/report?from={FIRST}&to={LAST}", headers=stats_headers(reporting)
        )
    ).json()
    assert any(0 < f["appointments"] < 5 for f in report["by_day"])


def season_of_random_appointments(seed: int) -> StatisticsReport:
    """Four months of appointments drawn at random, counted into every breakdown as reporting counts
    them: many days, groups and concerns with a handful, and sums that hold as in the real export."""
    rnd = random.Random(seed)
    first = date(2026, 1, 5)
    days = [first + timedelta(days=n) for n in range(120)]
    appointments: list[dict[str, Any]] = []
    for day in days:
        for _ in range(rnd.randint(0, 30) if day.weekday() < 5 else rnd.choice((0, 0, 1))):
            location = rnd.choice(("mitte", "nord", "ost"))
            appointments.append(
                {
                    "day": day.isoformat(),
                    "week": iso_week(day),
                    "location": location,
                    "group": f"{location}/{rnd.choice('ab')}",
                    "concern": f"anliegen-{rnd.randrange(12)}",
                    "mode": rnd.choice(("in_person", "in_person", "phone")),
                    "channel": rnd.choice(("online", "online", "staff")),
                    "evening": rnd.choice(("daytime",) * 5 + ("evening",)),
                    "cancelled_by": rnd.choice((None,) * 6 + tuple(CANCELLED_BY_LABELS)),
                    "lead": rnd.choice([label for label, _ in LEAD_TIME_BUCKETS]),
                    "outcome": rnd.choice((None, "no_show", "resolved", "resolved")),
                }
            )

    def count(key: str, rows: list[dict[str, Any]]) -> Figures:
        cancelled = [r for r in rows if r["cancelled_by"]]
        held = [r for r in rows if not r["cancelled_by"]]
        outcomes = {k: sum(r["outcome"] == k for r in held) for k in OUTCOME_LABELS}
        return Figures(
            key=key,
            label=key.replace("/", " - "),
            appointments=len(rows),
            cancellations=len(cancelled),
            cancelled_by={k: sum(r["cancelled_by"] == k for r in cancelled) for k in CANCELLED_BY_LABELS},
            transferred_out=0 if key in ("total", "mitte", "nord", "ost") else None,
            no_shows=outcomes["no_show"],
            outcomes=outcomes,
            without_outcome=sum(r["outcome"] is None for r in held),
            booked_minutes=30 * len(held),
            lead_time_buckets={
                label: sum(r["lead"] == label for r in rows) for label, _ in LEAD_TIME_BUCKETS
            },
        )

    def breakdown(dimension: str) -> list[Figures]:
        slices: dict[str, list[dict[str, Any]]] = {}
        for a in appointments:
            slices.setdefault(a[dimension], []).append(a)
        return [count(key, rows) for key, rows in sorted(slices.items())]

    return StatisticsReport(
        first=days[0],
        last=days[-1],
        location=None,
        total=count("total", appointments),
        by_location=breakdown("location"),
        by_group=breakdown("group"),
        by_concern=breakdown("concern"),
        by_mode=breakdown("mode"),
        by_channel=breakdown("channel"),
        by_day=breakdown("day"),
        by_week=breakdown("week"),
        by_evening=breakdown("evening"),
        callbacks=CallbackFigures(key="total", label="gesamt"),
        callbacks_by_location=[],
        mails=[],
    )


@pytest.mark.req("R35")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_sum_of_a_season_gives_a_hidden_count_back_not_even_a_week_over_its_days(seed: int) -> None:
    wb = export(season_of_random_appointments(seed))
    cells = [v for ws in wb.worksheets[1:] for row in ws.iter_rows(min_row=2, values_only=True) for v in row]
    assert cells.count(SMALL) > 100 and cells.count(PROTECTED) > 10
    assert derivable(wb) == []


@pytest.mark.req("R35")
def test_with_a_threshold_of_2_the_counts_beside_two_ones_stay_shown() -> None:
    """ "<2" says 1 by itself (OTV_STATISTICS_MIN_COUNT=2): no sum can give away more, so 12 = 10 + "<2" +
    "<2" keeps its 10 and its 12."""
    counts = {"total": 12, "ten": 10, "one": 1, "other": 1}
    hidden: dict[str, Bounds] = {"one": (1, 1), "other": (1, 1)}
    line = Line("total", ("ten", "one", "other"))
    assert protect(counts, [line], hidden, protected=(2, math.inf), small=2) == set()
