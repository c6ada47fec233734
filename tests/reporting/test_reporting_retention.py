"""Deletion on schedule (R34, I6): after the retention period no personal data of an appointment remain
anywhere in reporting's schema, the statistics do not change, a late event brings nothing back, and the
deletion report shows that the job ran."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from openpyxl import load_workbook

from services.reporting import service
from shared.events.appointment import INTERPRETER_ERASED, AppointmentLinkRenewedV1, CancelledBy, Channel
from shared.events.catalog import Mode
from shared.events.retention import AppointmentPersonalDataErasedV1, RetentionRunCompletedV1
from shared.events.staff_work import AppointmentOutcomeRecordedV1, Outcome
from shared.identity import Role
from tests.conftest import wait_for
from tests.reporting.conftest import (
    DAY,
    Appt,
    Reporting,
    berlin,
    identity_header,
    location_event,
    schema_holding,
)


async def places_holding(pool: asyncpg.Pool, needles: list[str]) -> list[str]:
    """Every column of the reporting schema in which one of the needles occurs."""
    columns = await pool.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'reporting'"
    )
    assert columns > 100  # the search covers the whole schema, not a few columns
    return await schema_holding(pool, "reporting", needles)


def person() -> Appt:
    return Appt(
        "mitte",
        "energiesperre",
        berlin(DAY, 9),
        first_name="Zoë",
        last_name="Quellenhof-Ybarra",
        email="Zoe.Quellenhof@Example.NET",
        phone="0421 98765432",
        customer_number="987X654321",
        household_number="BG-424242",
        mode=Mode.PHONE,
        client_network="198.51.100.77",
    )


PERSONAL = [
    "Quellenhof",
    "zoe.quellenhof@example.net",
    "98765432",
    "987X654321",
    "BG-424242",
    "198.51.100",
    "example.net",
    "Ruf mich nicht an",
]


@pytest.mark.req("R34")
async def test_after_the_retention_period_no_personal_data_remain_and_the_statistics_are_unchanged(
    reporting: Reporting,
) -> None:
    client = await reporting.start()
    pool = reporting.pool
    zoe = person()
    other = Appt(
        "mitte",
        "neuantrag",
        berlin(DAY, 10),
        last_name="Quellenhof-Ybarra",
        first_name="Zoë",
        email="zoe.quellenhof@example.net",
        channel=Channel.STAFF,
    )
    setup = berlin(DAY, 0) - timedelta(days=10)
    await reporting.send(
        (location_event("mitte"), setup),
        (zoe.booked(), zoe.booked_at),
        (other.booked(), other.booked_at),
    )
    await reporting.send((zoe.reschedule(berlin(DAY, 11)), zoe.booked_at + timedelta(hours=1)))
    await reporting.send((other.cancel(CancelledBy.CUSTOMER, reason="Ruf mich nicht an, Zoë"), zoe.booked_at))
    reporting.clock.set(berlin(DAY, 6, 30))
    managers = identity_header(reporting.clock, Role.APPOINTMENT_MANAGER, "mitte")
    assert (
        await client.get(f"/api/v1/staff/locations/mitte/day-list?date={DAY}", headers=managers)
    ).status == 200
    reporting.clock.set(berlin(DAY, 12))
    await reporting.send((zoe.passed(), berlin(DAY, 12)))

    assert await places_holding(pool, PERSONAL)  # the search finds them while they are needed
    stats_path = f"/api/v1/staff/statistics/report?from={DAY}&to={DAY}"

    async def statistics() -> dict[str, object]:
        headers = identity_header(reporting.clock, Role.STATISTICS, "*")
        body: dict[str, object] = await (await client.get(stats_path, headers=headers)).json()
        return body

    before = await statistics()

    # 27 days after the end: still kept; 28 days and a minute after: gone, by the scheduler on its own.
    reporting.clock.set(zoe.end + timedelta(days=27))
    kept = await service.run_retention(pool, reporting.settings, reporting.clock, force=True)
    assert kept is not None and kept["appointments_anonymised"] == 0
    reporting.clock.set(zoe.end + timedelta(days=28, minutes=1))

    async def erased() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM appointments WHERE anonymised_at IS NULL") == 0)

    await wait_for(erased, what="the scheduled retention run")
    assert await places_holding(pool, PERSONAL) == []
    assert await statistics() == before

    # A late redelivery of an old event brings nothing back (I6).
    late = zoe.copy()
    late.revision += 5
    await reporting.send((late.booked(), reporting.clock.now()))
    assert await places_holding(pool, PERSONAL) == []
    assert await statistics() == before

    report = await (
        await client.get(
            "/api/v1/admin/retention-report", headers=identity_header(reporting.clock, Role.ADMIN)
        )
    ).json()
    assert report["retention_days"] == 28
    runs = [
        r for r in report["runs"] if r["job"] == "personal_data" and r["counts"]["appointments_anonymised"]
    ]
    assert runs and runs[0]["counts"]["appointments_anonymised"] == 2
    assert runs[0]["counts"]["revision_rows_deleted"] == 5  # booked, moved, passed; booked, cancelled
    assert report["services"][0]["service"] == "reporting"
    text = str(report)
    assert not any(p.lower() in text.lower() for p in PERSONAL)
    for role in (Role.STATISTICS, Role.LOCATION_ADMIN, Role.AUDIT):
        forbidden = await client.get(
            "/api/v1/admin/retention-report", headers=identity_header(reporting.clock, role, "*")
        )
        assert forbidden.status == 403


@pytest.mark.req("R34")
async def test_reporting_keeps_no_address_manage_link_note_or_cancellation_reason_it_never_shows(
    reporting: Reporting,
) -> None:
    """Reporting keeps of a customer only what the day list shows: no e-mail address (a keyed hash and
    the domain are enough for the pattern report), no manage link with its token (a working credential),
    no staff note, no cancellation reason, and a phone number only for a phone appointment (R4)."""
    client = await reporting.start()
    zoe = person()  # a phone appointment
    walk_in = Appt(
        "mitte", "neuantrag", berlin(DAY, 10), last_name="Ufergrund", phone="0421 55501234", service_point=2
    )
    gone = Appt("mitte", "neuantrag", berlin(DAY, 11), last_name="Weggang")
    at = zoe.booked_at
    await reporting.send(
        (location_event("mitte"), at - timedelta(days=1)),
        (zoe.booked(), at),
        (walk_in.booked(), at),
        (gone.booked(), at),
    )
    zoe.revision += 1
    renewed = AppointmentLinkRenewedV1(
        appointment=zoe.snapshot().model_copy(
            update={"manage_url": f"http://127.0.0.1:8080/manage/{zoe.id}?token=renewed-4711"}
        )
    )
    walk_in.revision += 1
    noted = AppointmentOutcomeRecordedV1(
        appointment=walk_in.snapshot(), outcome=Outcome.RESOLVED, note="Kundin schwanger, Unterlagen fehlen"
    )
    await reporting.send(
        (renewed, at + timedelta(hours=1)),
        (noted, at + timedelta(hours=1)),
        (gone.cancel(CancelledBy.STAFF, reason="Kunde ist verzogen nach Hamburg"), at + timedelta(hours=1)),
    )

    needles = [
        "zoe.quellenhof@example.net",
        walk_in.email,
        "token=",
        "secret-",
        "renewed-4711",
        "schwanger",
        "verzogen nach Hamburg",
        "55501234",  # the phone number of an appointment in person
    ]
    assert await schema_holding(reporting.pool, "reporting", needles) == []
    assert await schema_holding(reporting.pool, "reporting", ["Quellenhof", "98765432", "987X654321"])

    # The day list still shows names, numbers, the phone number of the phone appointment, the outcome.
    response = await client.get(
        f"/api/v1/staff/locations/mitte/day-list?date={DAY}",
        headers=identity_header(reporting.clock, Role.APPOINTMENT_MANAGER, "mitte"),
    )
    assert response.status == 200
    cells = [
        str(v)
        for ws in load_workbook(io.BytesIO(await response.read())).worksheets
        for row in ws.iter_rows(values_only=True)
        for v in row
        if v is not None
    ]
    assert "Quellenhof-Ybarra, Zoë" in cells and "0421 98765432" in cells
    assert "Kd-Nr. 987X654321\nBG-Nr. BG-424242" in cells
    assert "Ufergrund, Erika" in cells and not any("55501234" in c for c in cells)
    assert "Weggang, Erika" in cells and "storniert" in cells


@pytest.mark.req("R34")
async def test_what_a_pod_of_the_previous_release_writes_into_the_unused_columns_is_not_kept(
    reporting: Reporting,
) -> None:
    """During the rolling update the previous release's pods still write the address, the link, the note
    and the reason (the columns go a release later, deploy/README.md); the database keeps none of them."""
    await reporting.start()
    walk_in = Appt("mitte", "neuantrag", berlin(DAY, 10), last_name="Ufergrund", mode=Mode.IN_PERSON)
    await reporting.send((walk_in.booked(), walk_in.booked_at))
    await reporting.pool.execute(
        "UPDATE appointments SET email = 'alt@example.org', manage_url = 'https://x/manage/1?token=t',"
        " cancel_reason = 'verzogen', outcome_note = 'schwanger', phone = '0421 1' WHERE id = $1",
        walk_in.id,
    )
    row = await reporting.pool.fetchrow(
        "SELECT email, manage_url, cancel_reason, outcome_note, phone, last_name FROM appointments"
        " WHERE id = $1",
        walk_in.id,
    )
    assert dict(row) == {
        "email": None,
        "manage_url": None,
        "cancel_reason": None,
        "outcome_note": None,
        "phone": None,  # in person: the day list shows no number
        "last_name": walk_in.last_name,
    }


@pytest.mark.req("R34")
async def test_an_erasure_by_booking_erases_reportings_copy_at_once(reporting: Reporting) -> None:
    await reporting.start()
    zoe = person()
    await reporting.send((zoe.booked(), zoe.booked_at))
    assert await places_holding(reporting.pool, PERSONAL[:2])
    await reporting.send(
        (
            AppointmentPersonalDataErasedV1(appointment_id=zoe.id, erased_at=reporting.clock.now()),
            reporting.clock.now(),
        )
    )
    assert await places_holding(reporting.pool, PERSONAL) == []
    row = await reporting.pool.fetchrow(
        "SELECT status, concern_id, day FROM appointments WHERE id = $1", zoe.id
    )
    assert (row["status"], row["concern_id"], row["day"]) == ("booked", "energiesperre", DAY)


@pytest.mark.req("R34")
async def test_an_erasure_that_comes_before_the_appointments_events_holds_against_them(
    reporting: Reporting,
) -> None:
    """A backlog drained by two relays at once (or a replayed dead letter) brings the erasure before the
    booking and the cancellation: they are stored without the customer's data, the counts keep them."""
    await reporting.start()
    zoe = person()
    booked = zoe.booked()
    cancelled = zoe.cancel(reason="Quellenhof: ich bin umgezogen")
    erased = AppointmentPersonalDataErasedV1(appointment_id=zoe.id, erased_at=reporting.clock.now())
    await reporting.send((erased, reporting.clock.now()))
    await reporting.send((booked, zoe.booked_at), (cancelled, reporting.clock.now()))

    assert await places_holding(reporting.pool, PERSONAL) == []
    row = await reporting.pool.fetchrow(
        "SELECT status, concern_id, day, anonymised_at FROM appointments WHERE id = $1", zoe.id
    )
    assert (row["status"], row["concern_id"], row["day"]) == ("cancelled", "energiesperre", DAY)
    assert row["anonymised_at"] is not None


@pytest.mark.req("R34")
async def test_an_event_that_arrives_after_the_retention_period_is_stored_without_personal_data(
    reporting: Reporting,
) -> None:
    await reporting.start()
    zoe = person()
    reporting.clock.set(zoe.end + timedelta(days=40))
    await reporting.send((zoe.booked(), zoe.booked_at), (zoe.passed(), zoe.end))
    assert await places_holding(reporting.pool, PERSONAL) == []
    assert (
        await reporting.pool.fetchval("SELECT count(*) FROM appointments WHERE anonymised_at IS NOT NULL")
        == 1
    )


async def test_the_database_refuses_personal_data_in_an_anonymised_row(reporting: Reporting) -> None:
    await reporting.start()
    zoe = person()
    await reporting.send((zoe.booked(), zoe.booked_at))
    with pytest.raises(asyncpg.CheckViolationError):
        await reporting.pool.execute("UPDATE appointments SET anonymised_at = now() WHERE id = $1", zoe.id)


@pytest.mark.req("R34")
async def test_dead_letters_holding_events_go_with_the_retention_period(reporting: Reporting) -> None:
    pool = reporting.pool
    now = reporting.clock.now()
    for age in (40, 3):
        await pool.execute(
            "INSERT INTO dead_letters (consumer, queue, reason, body, dead_at) VALUES ($1, $2, $3, $4, $5)",
            "reporting.events",
            "q",
            "test",
            b'{"data": {"customer": {"last_name": "Quellenhof"}}}',
            now - timedelta(days=age),
        )
        await pool.execute(
            "INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, gen_random_uuid(), $2)",
            "reporting.events",
            now - timedelta(days=age),
        )
    counts = await service.run_retention(pool, reporting.settings, reporting.clock, force=True)
    assert counts is not None and counts["dead_letters_deleted"] == 1
    # The inbox's records of handled events go at the same age (the table would grow for ever).
    assert counts["inbox_rows_deleted"] == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM inbox WHERE processed_at < $1", now - timedelta(days=28))
        == 0
    )
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 1


@pytest.mark.req("R33")
async def test_the_deletion_report_shows_the_runs_of_every_service(reporting: Reporting) -> None:
    client = await reporting.start()
    now = reporting.clock.now()
    await service.run_retention(reporting.pool, reporting.settings, reporting.clock, force=True)
    await reporting.send(
        (
            RetentionRunCompletedV1(
                service="booking",
                job="personal_data",
                started_at=now,
                finished_at=now + timedelta(seconds=2),
                retention_days=28,
                cutoff=now - timedelta(days=28),
                counts={"appointments_anonymised": 17, "holds_deleted": 3},
            ),
            now,
        ),
        (
            RetentionRunCompletedV1(
                service="notifier",
                job="personal_data",
                started_at=now,
                finished_at=now + timedelta(seconds=1),
                retention_days=28,
                cutoff=now - timedelta(days=28),
                counts={"mails_erased": 40},
            ),
            now,
        ),
        (
            # A location administrator erased one appointment on the customer's request (Art. 17 GDPR).
            RetentionRunCompletedV1(
                service="booking",
                job="erasure_on_request",
                started_at=now,
                finished_at=now,
                retention_days=28,
                counts={"appointments_erased": 1, "staff_notes_erased": 0},
            ),
            now,
        ),
    )
    report = await (
        await client.get(
            "/api/v1/admin/retention-report", headers=identity_header(reporting.clock, Role.ADMIN)
        )
    ).json()
    services = {s["service"]: s for s in report["services"]}
    assert set(services) == {"booking", "notifier", "reporting"}
    assert services["booking"]["totals"] == {
        "appointments_anonymised": 17,
        "holds_deleted": 3,
        "appointments_erased": 1,
        "staff_notes_erased": 0,
    }
    assert services["notifier"]["runs"] == 1
    page = await client.get("/staff/admin/retention", headers=identity_header(reporting.clock, Role.ADMIN))
    assert page.status == 200
    html = await page.text()
    assert "booking" in html and "E-Mails gelöscht: 40" in html  # in German, not the counter's name
    assert "Excel-Tageslisten mit Ablauf ihres Tages" in html
    on_request = next(row for row in html.split("<tr>") if "Löschung auf Antrag (Art. 17 DSGVO)" in row)
    assert "Termine (Personendaten gelöscht): 1" in on_request and "<td>-</td>" in on_request  # no cutoff


@pytest.mark.req("R34")
@pytest.mark.req("R26")
async def test_an_anonymised_appointment_keeps_that_an_interpreter_was_needed_not_the_language(
    reporting: Reporting,
) -> None:
    """The statistics count appointments with an interpreter (R26); which language it was is personal data
    (the gateway strips it from every feed), and goes with the erasure, on request or on schedule."""
    client = await reporting.start()
    erased, expired = person(), person()
    erased.interpreter_language = "Tigrinya (Eritrea)"
    expired.interpreter_language = "Farsi, Dolmetscherin bestellt"
    path = f"/api/v1/staff/statistics/report?from={DAY}&to={DAY}"
    headers = identity_header(reporting.clock, Role.STATISTICS, "*")
    await reporting.send((erased.booked(), erased.booked_at), (expired.booked(), expired.booked_at))
    before = await (await client.get(path, headers=headers)).json()

    await reporting.send(
        (
            AppointmentPersonalDataErasedV1(appointment_id=erased.id, erased_at=reporting.clock.now()),
            reporting.clock.now(),
        )
    )
    reporting.clock.set(expired.end + timedelta(days=29))
    await service.run_retention(reporting.pool, reporting.settings, reporting.clock, force=True)
    # A late event of the expired one brings the language back no more.
    await reporting.send((expired.passed(), expired.end))

    rows = await reporting.pool.fetch("SELECT interpreter_language, anonymised_at FROM appointments")
    assert [(r["interpreter_language"], r["anonymised_at"] is not None) for r in rows] == [
        (INTERPRETER_ERASED, True),
        (INTERPRETER_ERASED, True),
    ]
    assert await places_holding(reporting.pool, ["Tigrinya", "Farsi"]) == []
    headers = identity_header(reporting.clock, Role.STATISTICS, "*")  # signed at the later "now"
    after = await (await client.get(path, headers=headers)).json()
    assert _interpreters(after) == _interpreters(before) and _interpreters(before)[0] == 2


def _interpreters(report: Any) -> list[int]:
    """Every count of appointments with an interpreter in the statistics report, in order."""
    if isinstance(report, dict):
        own = [report["interpreter"]] if isinstance(report.get("interpreter"), int) else []
        return own + [
            n for key, value in report.items() if key != "interpreter" for n in _interpreters(value)
        ]
    if isinstance(report, list):
        return [n for value in report for n in _interpreters(value)]
    return []
