"""The Excel files of reporting, built with openpyxl in write-only mode (rows streamed, little memory):
the daily list of a location (R22) and the statistics export (R35, small counts suppressed). Pure: data
in, bytes out."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from services.reporting.domain import (
    CALLBACK_PROMISE,
    CANCELLED_BY_LABELS,
    LEAD_TIME_BUCKETS,
    OUTCOME_LABELS,
    WAITING_LABELS,
    Bounds,
    DayListRow,
    Line,
    date_label,
    iso_week,
    protect,
    suppress,
)
from services.reporting.models import Figures, StatisticsReport
from shared.clock import BERLIN
from shared.labels import MAIL_KINDS_DE

CREATOR = "OTV - Online-Terminvergabe Jobcenter Bremen"
CONFIDENTIAL = (
    "Vertraulich: enthält personenbezogene Daten. Nur für die Terminverwaltung des Standorts; "
    "wird nach Ablauf des Tages automatisch gelöscht. Ausdrucke und Kopien ebenso vernichten (DA 2.4)."
)

_TITLE = Font(bold=True, size=14)
_SUBTITLE = Font(bold=True, size=11)
_NOTE = Font(italic=True, size=9, color="555555")
_HEAD = Font(bold=True, color="FFFFFF")
_HEAD_FILL = PatternFill("solid", fgColor="1F4E79")
_HEAD_BORDER = Border(bottom=Side(style="thin", color="000000"))
_WRAP = Alignment(vertical="top", wrap_text=True)
_TOP = Alignment(vertical="top")
_CANCELLED = Font(strike=True, color="7F7F7F")

_FORBIDDEN_IN_SHEET_NAMES = str.maketrans({c: "-" for c in "[]:*?/\\"})


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: float
    # Text wraps within the column (the row grows, Excel and LibreOffice fit its height on opening):
    # every column to the right is filled, so a longer text would be cut off on screen and in print.
    wrap: bool = False


# R22: the columns the issue names, in the order staff read them.
DAY_LIST_COLUMNS = (
    Column("Uhrzeit", 9),
    Column("Dauer (Min.)", 8),
    Column("Serviceplatz", 11),  # the header's one word whole, not "Servicepla" / "tz"
    Column("Name", 28, wrap=True),
    Column("Kunden-/BG-Nr.", 24, wrap=True),
    Column("Anliegen", 33, wrap=True),
    Column("Art", 12, wrap=True),
    Column("Telefon (Telefontermin)", 20, wrap=True),
    Column("Sprachmittlung / Hinweise", 22, wrap=True),
    Column("Status", 20, wrap=True),
    Column("Buchungsnummer", 16, wrap=True),
)
DAY_LIST_HEADER_ROW = 4


def sheet_title(name: str, taken: set[str]) -> str:
    """A valid, unique sheet name (Excel: at most 31 characters, none of []:*?/\\)."""
    base = (name.translate(_FORBIDDEN_IN_SHEET_NAMES).strip() or "Termine")[:31]
    title, n = base, 2
    while title.lower() in taken:
        suffix = f" ({n})"
        title = base[: 31 - len(suffix)] + suffix
        n += 1
    taken.add(title.lower())
    return title


def _naive_utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def _cell(ws: Worksheet, value: Any, **style: Any) -> Cell:
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str):
        # Text stays text: a name typed as "=HYPERLINK(...)" or "=cmd|..." must never become a formula that
        # runs when staff open the list (formula injection); openpyxl makes any "=..." string a formula.
        cell.data_type = "s"
    for name, val in style.items():
        setattr(cell, name, val)
    return cell


def _header_text(text: str) -> str:
    """Text for a printed header or footer: Excel reads "&" there as a code ("&I" italic, "&N" the page
    count, "&F" the file name), so an ampersand of a name is written "&&"."""
    return text.replace("&", "&&")


# Column-width characters across A4 landscape within the margins at 100 % (about 7 pixels of 96 per inch
# each), and the smallest print scale a table may get (0.75: an 11 pt font printed at 8 pt or more).
_PRINTABLE_CHARS = (11.69 - 2 * 0.4) * 96 / 7
_MIN_PRINT_SCALE = 0.75


def _print_setup(
    ws: Worksheet,
    title_rows: str | None,
    *,
    landscape: bool = True,
    pages_wide: int = 1,
    title_cols: str | None = None,
    footer: str = "Vertraulich - personenbezogene Daten",
) -> None:
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    # Fit all columns onto the width of `pages_wide` pages; as many pages down as needed.
    ws.page_setup.fitToWidth = pages_wide
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    if title_rows:
        ws.print_title_rows = title_rows
    if title_cols:
        ws.print_title_cols = title_cols
    ws.print_options.gridLines = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    # The printed header and footer (9 and 8 pt) end before the list begins: openpyxl's 0.5" would put
    # them onto the title row and the last row of the list.
    ws.page_margins.header = ws.page_margins.footer = 0.3
    ws.oddFooter.left.text = _header_text(footer)
    ws.oddFooter.left.size = 8
    ws.oddFooter.right.text = "Seite &P von &N"
    ws.oddFooter.right.size = 8


def build_day_list(
    *,
    location_id: str,
    location_name: str,
    day: date,
    groups: Sequence[tuple[str, str]],
    rows: Iterable[DayListRow],
    generated_at: datetime,
) -> bytes:
    """The list of one location and day: one sheet per group, sorted by time and service point, a header
    with location and date, frozen header row, filters, A4 landscape print set-up fitted to the width."""
    by_group: dict[str, list[DayListRow]] = {gid: [] for gid, _ in groups}
    names = dict(groups)
    for row in rows:
        by_group.setdefault(row.group_id, []).append(row)
        names.setdefault(row.group_id, row.group_name or row.group_id)
    if not by_group:
        by_group[""] = []
        names[""] = "Termine"

    wb = Workbook(write_only=True)
    taken: set[str] = set()
    stamp = generated_at.astimezone(BERLIN)
    last_col = get_column_letter(len(DAY_LIST_COLUMNS))
    for group_id, group_rows in by_group.items():
        group_rows.sort(key=DayListRow.sort_key)
        ws = wb.create_sheet(sheet_title(names[group_id], taken))
        for index, column in enumerate(DAY_LIST_COLUMNS, start=1):
            ws.column_dimensions[get_column_letter(index)].width = column.width
        header = DAY_LIST_HEADER_ROW
        ws.freeze_panes = f"A{header + 1}"
        ws.auto_filter.ref = f"A{header}:{last_col}{header + max(len(group_rows), 1)}"
        _print_setup(ws, f"1:{header}")
        ws.oddHeader.center.text = _header_text(
            f"Terminliste {location_name} - {names[group_id]} - {day:%d.%m.%Y}"
        )
        ws.oddHeader.center.size = 9

        cancelled = sum(1 for r in group_rows if r.status == "cancelled" and not r.moved)
        moved = sum(1 for r in group_rows if r.moved)
        ws.append([_cell(ws, f"Terminliste {location_name} - {date_label(day)}", font=_TITLE)])
        ws.append([_cell(ws, f"Serviceplatzgruppe: {names[group_id]}", font=_SUBTITLE)])
        ws.append(
            [
                _cell(
                    ws,
                    f"Stand {stamp:%d.%m.%Y %H:%M} Uhr · {len(group_rows)}"
                    f" {'Termin' if len(group_rows) == 1 else 'Termine'}"
                    f" (davon {cancelled} storniert{f', {moved} verlegt' if moved else ''})"
                    f" · {CONFIDENTIAL}",
                    font=_NOTE,
                )
            ]
        )
        ws.append(
            [
                _cell(ws, c.title, font=_HEAD, fill=_HEAD_FILL, border=_HEAD_BORDER, alignment=_WRAP)
                for c in DAY_LIST_COLUMNS
            ]
        )
        for r in group_rows:
            struck = r.struck
            start = r.start.astimezone(BERLIN)
            values: list[Any] = [
                _cell(ws, start.time().replace(second=0, microsecond=0), number_format="HH:MM"),
                r.duration_minutes,
                r.service_point,
                r.customer_name,
                r.numbers,
                r.concern,
                "telefonisch" if r.mode == "phone" else "persönlich",
                r.phone_for_call,
                r.notes,
                r.status_label,
                r.reference,
            ]
            cells = [v if isinstance(v, Cell) else _cell(ws, v) for v in values]
            for cell, column in zip(cells, DAY_LIST_COLUMNS, strict=True):
                cell.alignment = _WRAP if column.wrap else _TOP
                if struck:
                    cell.font = _CANCELLED
            ws.append(cells)

    props = wb.properties
    props.title = f"Terminliste {location_name} {day:%d.%m.%Y}"
    props.subject = f"Gebuchte Termine des Standorts {location_name} am {date_label(day)}"
    props.creator = CREATOR
    props.lastModifiedBy = CREATOR
    props.keywords = f"Terminliste; {location_id}; {day.isoformat()}; vertraulich"
    props.category = "Vertraulich - personenbezogene Daten"
    props.description = CONFIDENTIAL
    props.language = "de-DE"
    props.created = props.modified = _naive_utc(generated_at)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# --- the statistics export -----------------------------------------------------------------------------

_DIMENSION_SHEETS = (
    ("location", "Standorte", "Standort"),
    ("group", "Gruppen", "Serviceplatzgruppe"),
    ("concern", "Anliegen", "Anliegen"),
    ("mode", "Art", "Art"),
    ("channel", "Kanal", "Kanal"),
    ("evening", "Abendtermine", "Tageszeit"),
    ("week", "Wochen", "Kalenderwoche"),
    ("day", "Tage", "Tag"),
)
# A day with its German weekday ("Di 11.03.2025"), whatever the language of the Excel that opens it
# ([$-407]: de-DE).
DAY_FORMAT = "[$-407]ddd dd.mm.yyyy"
_CANCEL_KEYS = tuple(CANCELLED_BY_LABELS)
_OUTCOME_KEYS = tuple(OUTCOME_LABELS)


def _figure_header(first: str) -> list[str]:
    return [
        first,
        "Termine",
        "Stornierungen",
        *[f"storniert durch {CANCELLED_BY_LABELS[k]}" for k in _CANCEL_KEYS],
        "an zuständigen Standort übergeben (Rückruf)",
        "von anderem Standort übernommen",
        "an anderen Standort abgegeben",
        "nicht erschienen",
        *[f"Ergebnis: {OUTCOME_LABELS[k]}" for k in _OUTCOME_KEYS if k != "no_show"],
        "ohne erfasstes Ergebnis",
        "mit Sprachmittlung",
        "gebuchte Minuten",
        "angebotene Minuten",
        "Auslastung",
        "Vorlaufzeit Mittel (Std.)",
        "Vorlaufzeit Median (Std.)",
        *[f"Vorlauf {label}" for label, _ in LEAD_TIME_BUCKETS],
    ]


# A count hidden for protection (secondary suppression): 5 or more, but shown it would give a count below 5
# back by subtraction from a total.
PROTECTED = "(x)"
Key = tuple[str, ...]  # table, dimension, slice, column


def _figure_counts(f: Figures) -> dict[str, int | None]:
    """The counts of a row by column, in the header's order (None: no such count in this breakdown)."""
    return {
        "appointments": f.appointments,
        "cancellations": f.cancellations,
        **{f"cancelled_by:{k}": f.cancelled_by.get(k, 0) for k in _CANCEL_KEYS},
        "handed_over": f.handed_over,
        "transferred_in": f.transferred_in,
        "transferred_out": f.transferred_out,
        "no_shows": f.no_shows,
        **{f"outcome:{k}": f.outcomes.get(k, 0) for k in _OUTCOME_KEYS if k != "no_show"},
        "without_outcome": f.without_outcome,
        "interpreter": f.interpreter,
    }


def _lead_counts(f: Figures) -> dict[str, int]:
    return {f"lead:{label}": f.lead_time_buckets.get(label, 0) for label, _ in LEAD_TIME_BUCKETS}


_CALLBACK_COUNTS = ("created", "closed_in_time", "closed_late", "open_in_time", "open_overdue", "withdrawn")


class _Disclosure:
    """What the export shows of each count (R35): "<5" for 1 to 4, PROTECTED for a count that a sum would
    turn into one of those (every total with the cells adding up to it, in a row or a column, on one sheet
    or across the overview), the count itself otherwise. Booked minutes go (shown empty, with the
    utilisation) where they would give a hidden count back, and likewise where a sum of minutes would."""

    def __init__(self, report: StatisticsReport, threshold: int) -> None:
        self.threshold = threshold
        self.values: dict[Key, int] = {}
        self.hidden: dict[Key, Bounds] = {}
        lines: list[Line[Key]] = []
        figures = self._figure_rows(report)
        for row, f in figures.items():
            for column, count in (_figure_counts(f) | _lead_counts(f)).items():
                if count is not None:
                    self._count(("figures", *row, column), count)
            cell = ("figures", *row)
            lines += [
                Line((*cell, "cancellations"), tuple((*cell, f"cancelled_by:{k}") for k in _CANCEL_KEYS)),
                Line((*cell, "appointments"), tuple((*cell, k) for k in _lead_counts(f))),
                Line(
                    (*cell, "appointments"),
                    tuple(
                        (*cell, k)
                        for k in _figure_counts(f)
                        if k in ("cancellations", "handed_over", "no_shows", "without_outcome")
                        or k.startswith("outcome:")
                    ),
                ),
            ]
        columns = [*_figure_counts(report.total), *_lead_counts(report.total)]
        lines += self._sums("figures", figures, columns)
        callbacks = {("total", "total"): report.callbacks} | {
            ("location", c.key): c for c in report.callbacks_by_location
        }
        for row, c in callbacks.items():
            for column in _CALLBACK_COUNTS:
                self._count(("callbacks", *row, column), getattr(c, column))
            lines.append(
                Line(
                    ("callbacks", *row, "created"),
                    tuple(("callbacks", *row, k) for k in _CALLBACK_COUNTS[1:5]),
                )
            )
        lines += self._sums("callbacks", callbacks, list(_CALLBACK_COUNTS))
        waiting = (
            {("total", "total"): report.waiting}
            | {("location", w.key): w for w in report.waiting_by_location}
            | {("concern", w.key): w for w in report.waiting_by_concern}
        )
        for row, w in waiting.items():
            for column in WAITING_LABELS:
                self._count(("waiting", *row, column), getattr(w, column))
            lines.append(
                Line(
                    ("waiting", *row, "fulfilled"),
                    (("waiting", *row, "fulfilled_via_offer"), ("waiting", *row, "fulfilled_on_own")),
                )
            )
        lines += self._sums("waiting", waiting, list(WAITING_LABELS))
        protect(
            self.values,
            [line for line in lines if self._known(line)],
            self.hidden,
            protected=(threshold, math.inf),
            small=threshold,
        )

        # Each concern has one duration (R16): the booked minutes of a row give its count of appointments
        # not cancelled back, and the utilisation gives the minutes back. Both go when that count, or one
        # it would reveal, is hidden, and so do others whose sum with them is shown.
        self.minutes: dict[Key, int] = {}
        minutes_hidden: dict[Key, Bounds] = {}
        for row, f in figures.items():
            self.minutes[("minutes", *row, "booked")] = f.booked_minutes
            derived = (f.appointments - f.cancellations, f.appointments - f.cancellations - f.handed_over)
            if any(0 < n < threshold for n in derived) or any(
                ("figures", *row, k) in self.hidden for k in ("appointments", "cancellations", "handed_over")
            ):
                minutes_hidden[("minutes", *row, "booked")] = (0, math.inf)
        protect(
            self.minutes,
            [line for line in self._sums("minutes", figures, ["booked"]) if line.total in self.minutes],
            minutes_hidden,
            protected=(0, math.inf),
            small=None,
        )
        self.minutes_hidden = set(minutes_hidden)

    @staticmethod
    def _figure_rows(report: StatisticsReport) -> dict[tuple[str, str], Figures]:
        rows = {("total", "total"): report.total}
        for dimension, _, _ in _DIMENSION_SHEETS:
            rows |= {(dimension, f.key): f for f in report.breakdown(dimension)}
        return rows

    def _count(self, cell: Key, count: int) -> None:
        self.values[cell] = count
        if 0 < count < self.threshold:
            self.hidden[cell] = (1, self.threshold - 1)

    def _known(self, line: Line[Key]) -> bool:
        return line.total in self.values and all(p in self.values for p in line.parts)

    @staticmethod
    def _sums(table: str, rows: Mapping[tuple[str, str], object], columns: list[str]) -> list[Line[Key]]:
        """The sums of each column: the total of the overview (or the row "alle") over each breakdown, a
        location over its groups, a week over its days."""
        within: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for dimension, key in rows:
            if dimension != "total":
                within.setdefault(("total", "total"), []).append((dimension, key))
            if dimension == "group":
                within.setdefault(("location", key.partition("/")[0]), []).append((dimension, key))
            if dimension == "day":
                within.setdefault(("week", iso_week(date.fromisoformat(key))), []).append((dimension, key))
        lines: list[Line[Key]] = []
        for total, parts in within.items():
            by_dimension: dict[str, list[tuple[str, str]]] = {}
            for part in parts:
                by_dimension.setdefault(part[0], []).append(part)
            for same in by_dimension.values():
                for column in columns:
                    lines.append(
                        Line((table, *total, column), tuple((table, *part, column) for part in same))
                    )
        return lines

    def count(self, cell: Key) -> int | str:
        value = self.values[cell]
        if cell not in self.hidden:
            return value
        return f"<{self.threshold}" if 0 < value < self.threshold else PROTECTED

    def figure_row(self, dimension: str, f: Figures) -> list[Any]:
        cell = ("figures", dimension, f.key)
        counts = _figure_counts(f)
        few = 0 < f.appointments < self.threshold  # a mean over a handful would say too much about each one
        minutes_hidden = ("minutes", dimension, f.key, "booked") in self.minutes_hidden
        return [
            f.label,
            *["" if n is None else self.count((*cell, k)) for k, n in counts.items()],
            "" if minutes_hidden else f.booked_minutes,
            f.offered_minutes if f.offered_minutes is not None else "",
            "" if minutes_hidden or f.utilisation is None else f.utilisation,
            "" if few or f.lead_time_mean_hours is None else round(f.lead_time_mean_hours, 1),
            "" if few or f.lead_time_median_hours is None else round(f.lead_time_median_hours, 1),
            *[self.count((*cell, k)) for k in _lead_counts(f)],
        ]

    def callback_row(self, row: tuple[str, str], label: str) -> list[Any]:
        return [label, *[self.count(("callbacks", *row, k)) for k in _CALLBACK_COUNTS]]

    def waiting_row(self, row: tuple[str, str], label: str) -> list[Any]:
        return [label, *[self.count(("waiting", *row, k)) for k in WAITING_LABELS]]


def _table(
    ws: Worksheet,
    header: list[str],
    rows: list[list[Any]],
    widths: Sequence[float],
    *,
    footer: str,
    first_format: str | None = None,
) -> None:
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(len(rows), 1) + 1}"
    # A table too wide for one page at a readable size spreads over more, each with the row names.
    room = _PRINTABLE_CHARS / _MIN_PRINT_SCALE - widths[0]
    pages = max(1, math.ceil(sum(widths[1:]) / room))
    _print_setup(ws, "1:1", pages_wide=pages, title_cols="A:A" if pages > 1 else None, footer=footer)
    ws.append([_cell(ws, h, font=_HEAD, fill=_HEAD_FILL, alignment=_WRAP) for h in header])
    percent = header.index("Auslastung") if "Auslastung" in header else -1
    for row in rows:
        ws.append(
            [
                _cell(ws, v, number_format="0.0%")
                if i == percent and v != ""
                else _cell(ws, v, number_format=first_format)
                if i == 0 and first_format
                else _cell(ws, v)
                for i, v in enumerate(row)
            ]
        )


def build_statistics_export(
    report: StatisticsReport, *, scope: str, threshold: int, generated_at: datetime
) -> bytes:
    """The statistics of a period as a workbook: an overview and one sheet per breakdown. Counts from 1
    to threshold-1 are shown as "<threshold" (R35: small counts could identify a person). `scope` says
    what the figures cover ("Standort Bremen-Mitte", "alle Standorte"): a saved file names its filter."""
    shown = _Disclosure(report, threshold)
    wb = Workbook(write_only=True)
    period = f"{report.first:%d.%m.%Y} - {report.last:%d.%m.%Y}"
    # Each printed page says what it holds (the statistics hold no personal data, R34).
    footer = f"OTV-Statistik {period}, {scope} - ohne personenbezogene Daten"

    info = wb.create_sheet("Hinweise")
    info.column_dimensions["A"].width = 110
    _print_setup(info, None, footer=footer)
    for line, font in (
        (f"OTV-Statistik {period}, {scope}", _TITLE),
        (f"Erstellt {generated_at.astimezone(BERLIN):%d.%m.%Y %H:%M} Uhr", _NOTE),
        ("", None),
        (
            f"Geheimhaltung: Anzahlen von 1 bis {threshold - 1} werden als „<{threshold}“ ausgewiesen, "
            f"Mittelwerte über weniger als {threshold} Termine nicht; ebenso fehlen in solchen Zeilen die "
            "gebuchten Minuten und die Auslastung, aus denen sich die Anzahl zurückrechnen ließe. "
            f"„{PROTECTED}“ = zum Schutz gesperrt: die Anzahl ist {threshold} oder mehr, sie wird aber nicht "
            f"gezeigt, weil sich sonst eine Anzahl unter {threshold} aus einer Summe zurückrechnen ließe "
            "(Gesamtwert einer Zeile oder Spalte, der Übersicht oder der Zeile „alle“ minus die übrigen "
            "Werte). Aus demselben Grund fehlen gebuchte Minuten und Auslastung auch in einzelnen weiteren "
            "Zeilen. 0 wird immer genau ausgewiesen. "
            "Die Statistik enthält keine personenbezogenen Daten.",
            None,
        ),
        (
            "Termine zählen nach dem Tag ihres Beginns (Europe/Berlin); stornierte Termine zählen als Termin "
            "und als Stornierung. Ein Termin, den ein zuständiger Standort ohne freien Termin übernommen hat "
            "(Rückruf dort), zählt als „übergeben“, nicht als Stornierung; übernommen/abgegeben zählen "
            "Termine, die mit ihrem Termin an einen anderen Standort gingen. Auslastung = gebuchte "
            "Minuten nicht stornierter Termine / angebotene Minuten (Zeitfenster x Serviceplätze, ohne "
            "Feiertage und Schließungen).",
            None,
        ),
        (
            f"Rückruf-Tickets: fristgerecht = innerhalb von {int(CALLBACK_PROMISE.total_seconds() // 3600)}"
            " Stunden geschlossen (DA 2.3), gezählt nach dem Tag ihrer Anlage. Zurückgenommen = das "
            "Ergebnis „Rückruf“ wurde korrigiert; solche Tickets zählen nicht als angelegt und nicht als "
            "fristgerecht geschlossen.",
            None,
        ),
        (
            "Warteliste: Wünsche nach einem Termin, für den kein freier Termin angeboten war, und was aus "
            "ihnen wurde (angeboten, gebucht, zurückgezogen, abgelaufen), gezählt nach dem Tag des "
            "Ereignisses. „Termin gebucht“ = über ein Angebot + selbst gebucht. Trägt sich jemand erneut "
            "ein, bevor die Adresse bestätigt war, ersetzt der neue Eintrag den alten: er zählt als "
            "„erneut eingetragen“, der alte als „ersetzt“, nicht als eingetragen oder zurückgezogen. "
            "Nie bestätigte Eintragungen zählen nicht als abgelaufen.",
            None,
        ),
    ):
        info.append([_cell(info, line, font=font, alignment=_WRAP) if font else _cell(info, line)])

    overview = wb.create_sheet("Übersicht")
    header = _figure_header("Bereich")
    widths = [34, *([12] * (len(header) - 1))]
    _table(
        overview,
        header,
        [shown.figure_row("total", report.total.model_copy(update={"label": scope}))],
        widths,
        footer=footer,
    )

    for dimension, title, first in _DIMENSION_SHEETS:
        ws = wb.create_sheet(title)
        figures = report.breakdown(dimension)
        rows = [shown.figure_row(dimension, f) for f in figures]
        if dimension == "day":
            # A date, not the label's text: it sorts by time and a pivot table groups it by month.
            for row, f in zip(rows, figures, strict=True):
                row[0] = date.fromisoformat(f.key)
        _table(
            ws,
            _figure_header(first),
            rows,
            widths,
            footer=footer,
            first_format=DAY_FORMAT if dimension == "day" else None,
        )

    callbacks = wb.create_sheet("Rückrufe")
    _table(
        callbacks,
        [
            "Standort",
            "angelegt",
            "fristgerecht geschlossen",
            "verspätet geschlossen",
            "offen",
            "offen überfällig",
            "zurückgenommen",
        ],
        [shown.callback_row(("total", "total"), "alle")]
        + [shown.callback_row(("location", c.key), c.label) for c in report.callbacks_by_location],
        [34, 14, 14, 14, 14, 14, 14],
        footer=footer,
    )
    waiting = wb.create_sheet("Warteliste")
    _table(
        waiting,
        ["Bereich", *WAITING_LABELS.values()],
        [shown.waiting_row(("total", "total"), "alle")]
        + [shown.waiting_row(("location", w.key), f"Standort: {w.label}") for w in report.waiting_by_location]
        + [shown.waiting_row(("concern", w.key), f"Anliegen: {w.label}") for w in report.waiting_by_concern],
        [44, *([14] * len(WAITING_LABELS))],
        footer=footer,
    )
    mails = wb.create_sheet("E-Mails")
    _table(
        mails,
        ["Art der E-Mail", "versandt", "fehlgeschlagen"],
        [
            [MAIL_KINDS_DE.get(m.kind, m.kind), suppress(m.sent, threshold), suppress(m.failed, threshold)]
            for m in report.mails
        ],
        [30, 14, 14],
        footer=footer,
    )

    props = wb.properties
    props.title = f"OTV-Statistik {period}"
    props.subject = f"Statistik der Online-Terminvergabe, {scope}"
    props.creator = CREATOR
    props.lastModifiedBy = CREATOR
    props.keywords = "Statistik; OTV; anonymisiert"
    props.description = (
        f"Anzahlen unter {threshold} sind unterdrückt, dazu zum Schutz weitere ({PROTECTED}). "
        "Keine personenbezogenen Daten."
    )
    props.language = "de-DE"
    props.created = props.modified = _naive_utc(generated_at)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
