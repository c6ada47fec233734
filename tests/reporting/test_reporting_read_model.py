"""The read model is kept from events alone: idempotent (inbox) and order-tolerant (revision), so that
reporting works while booking is down and never reads another service's tables."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import asyncpg
import pytest
from openpyxl import load_workbook

from services.reporting import service
from services.reporting.domain import offered_minutes
from shared.events.appointment import AppointmentBookedV1, CancelledBy, Language
from shared.events.catalog import Closure
from shared.identity import Role
from tests.conftest import wait_for
from tests.reporting.conftest import (
    CONCERNS,
    DAY,
    Appt,
    Reporting,
    berlin,
    envelope,
    identity_header,
    location_event,
)


async def test_a_late_booked_event_after_the_cancellation_does_not_bring_the_appointment_back(
    reporting: Reporting,
) -> None:
    await reporting.start()
    appt = Appt("mitte", "neuantrag", berlin(DAY, 9))
    booked = appt.booked()
    moved = appt.reschedule(berlin(DAY, 10))
    cancelled = appt.cancel(CancelledBy.SERVICE_CENTRE, reason="verlegt")
    at = appt.booked_at
    await reporting.send((cancelled, at + timedelta(hours=2)), (moved, at + timedelta(hours=1)))
    await reporting.send((booked, at))
    row = await reporting.pool.fetchrow(
        "SELECT status, revision, start_at, cancelled_by, cancelled_at FROM appointments WHERE id = $1",
        appt.id,
    )
    assert row["status"] == "cancelled" and row["revision"] == 3
    assert row["start_at"] == berlin(DAY, 10)
    assert row["cancelled_by"] == "service_centre"
    assert row["cancelled_at"] == at + timedelta(hours=2)


async def test_the_same_event_delivered_twice_is_applied_once(reporting: Reporting) -> None:
    await reporting.start()
    appt = Appt("mitte", "neuantrag", berlin(DAY, 9))
    once = envelope(appt.booked(), appt.booked_at)
    await reporting.publish(once, once, once)
    await reporting.settle()
    assert await reporting.pool.fetchval("SELECT count(*) FROM appointments") == 1
    assert await reporting.pool.fetchval("SELECT count(*) FROM appointment_revisions") == 1


async def test_a_reschedule_moves_the_appointment_to_its_new_day_and_marks_both_lists_changed(
    reporting: Reporting,
) -> None:
    reporting.clock.set(berlin(DAY, 6, 30))
    await reporting.start()
    appt = Appt("mitte", "neuantrag", berlin(DAY, 9))
    await reporting.send(
        (location_event("mitte"), berlin(DAY, 0) - timedelta(days=3)), (appt.booked(), appt.booked_at)
    )
    pool = reporting.pool

    async def generated() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM day_lists WHERE generated_at IS NOT NULL"))

    await wait_for(generated, what="the list of the day")
    await reporting.send((appt.reschedule(berlin(DAY + timedelta(days=1), 9)), berlin(DAY, 7)))
    assert await pool.fetchval("SELECT day FROM appointments") == DAY + timedelta(days=1)

    async def rebuilt() -> bool:
        return bool(await pool.fetchval("SELECT generation FROM day_lists WHERE day = $1", DAY) == 2)

    await wait_for(rebuilt, what="the list rebuilt with the moved appointment struck through")
    # It stays in the old day's list, saying where it went (test_reporting_daylist), and is counted there.
    assert await pool.fetchval("SELECT appointment_count FROM day_lists WHERE day = $1", DAY) == 1
    assert await pool.fetchval("SELECT count(*) FROM moved_away WHERE day = $1", DAY) == 1


async def test_an_older_catalog_snapshot_is_dropped_and_capacity_follows_the_newest(
    reporting: Reporting,
) -> None:
    await reporting.start()
    at = berlin(DAY, 0) - timedelta(days=7)
    await reporting.send((location_event("mitte", revision=2, ez_points=1), at + timedelta(hours=1)))
    await reporting.send((location_event("mitte", revision=1, ez_points=3), at))
    pool = reporting.pool
    assert await pool.fetchval("SELECT revision FROM locations WHERE location_id = 'mitte'") == 2
    # Entrance zone Mon-Fri 8-12 with one service point under revision 2.
    assert (
        await pool.fetchval(
            "SELECT offered_minutes FROM capacity_days"
            " WHERE location_id = 'mitte' AND group_id = 'ez' AND day = $1",
            DAY,
        )
        == 240
    )


async def test_the_first_two_snapshots_of_a_new_location_applied_at_once_keep_the_newest_capacity(
    reporting: Reporting,
) -> None:
    """Two replicas apply a new location's first snapshots together (a backlog): revision 1 (created,
    without concerns yet) reads "no row" before revision 2 is committed, then waits for its insert. It must
    not write its capacity over revision 2's once that is committed: utilisation would use the old windows'
    offered minutes until the next catalog change."""
    at = berlin(DAY, 0) - timedelta(days=7)
    created = location_event("mitte", revision=1, ez_points=3).model_copy(update={"concerns": []})
    configured = location_event("mitte", revision=2, ez_points=1)
    pool, settings, clock = reporting.pool, reporting.settings, reporting.clock
    newer, older = await pool.acquire(), await pool.acquire()
    try:
        newer_tx, older_tx = newer.transaction(), older.transaction()
        await newer_tx.start()
        await service.apply_location_configured(
            newer, envelope(configured, at + timedelta(minutes=5)), configured, settings=settings, clock=clock
        )
        await older_tx.start()
        older_pid = older.get_server_pid()
        applying = asyncio.create_task(
            service.apply_location_configured(
                older, envelope(created, at), created, settings=settings, clock=clock
            )
        )

        async def older_waits() -> bool:
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                older_pid,
            )
            return bool(waiting) or applying.done()

        await wait_for(older_waits, what="revision 1 waiting for revision 2's row")
        await newer_tx.commit()
        await applying
        await older_tx.commit()
    finally:
        await pool.release(newer)
        await pool.release(older)

    assert await pool.fetchval("SELECT revision FROM locations WHERE location_id = 'mitte'") == 2
    rows = await pool.fetch("SELECT DISTINCT revision FROM capacity_days WHERE location_id = 'mitte'")
    assert [r["revision"] for r in rows] == [2]
    # Entrance zone Mon-Fri 8-12 with one service point, as revision 2 says (three under revision 1).
    assert (
        await pool.fetchval(
            "SELECT offered_minutes FROM capacity_days"
            " WHERE location_id = 'mitte' AND group_id = 'ez' AND day = $1",
            DAY,
        )
        == 240
    )


async def test_capacity_of_a_past_day_is_kept_when_the_windows_change_later(reporting: Reporting) -> None:
    await reporting.start()
    reporting.clock.set(berlin(DAY + timedelta(days=2), 12))
    await reporting.send(
        (location_event("mitte", revision=1, ez_points=3), berlin(DAY, 0) - timedelta(days=7))
    )
    await reporting.send(
        (location_event("mitte", revision=2, ez_points=1), berlin(DAY + timedelta(days=2), 11))
    )
    pool = reporting.pool
    query = "SELECT offered_minutes FROM capacity_days WHERE location_id = 'mitte' AND group_id = 'ez'"
    query += " AND day = $1"
    assert await pool.fetchval(query, DAY) == 720  # as offered then
    assert await pool.fetchval(query, DAY + timedelta(days=3)) == 240  # as offered from the change on


async def test_reporting_uses_no_table_of_another_service(reporting: Reporting) -> None:
    """Reporting's database role cannot even see another schema: all it knows came as events."""
    await reporting.start()
    for schema in ("booking", "catalog", "notifier", "gateway"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reporting.pool.fetch(f"SELECT 1 FROM {schema}.schema_migrations LIMIT 1")  # noqa: S608 -- fixed names


@pytest.mark.req("R35")
def test_offered_capacity_counts_a_closure_as_none_and_a_restriction_as_its_points() -> None:
    """Utilisation is booked over offered minutes: a day the team is short counts what was really offered."""
    day = DAY  # a Tuesday: entrance zone 8-12 on 3 points, team 8-12 on 2
    plain = location_event("mitte")
    assert offered_minutes(plain, day) == {"ez": 720, "lt1": 480}
    restricted = plain.model_copy(
        update={
            "closures": [
                Closure(first=day, last=day, group_id="ez", service_points_left=1),
                Closure(first=day, last=day, group_id="lt1"),
            ]
        }
    )
    assert offered_minutes(restricted, day) == {"ez": 240, "lt1": 0}
    whole = plain.model_copy(update={"closures": [Closure(first=day, last=day, service_points_left=1)]})
    assert offered_minutes(whole, day) == {"ez": 240, "lt1": 240}
    assert offered_minutes(whole, day + timedelta(days=1)) == offered_minutes(plain, day + timedelta(days=1))


@pytest.mark.req("R22")
@pytest.mark.req("R35")
async def test_a_concern_no_longer_offered_keeps_its_german_name_in_the_day_list_and_the_statistics(
    reporting: Reporting,
) -> None:
    """Staff read the catalogue's German name whatever language the customer booked in. The location's
    newest snapshot holds only the concerns it offers now: once "Neuantrag stellen" is no longer offered,
    the appointments booked for it before must not show the English or Leichte Sprache wording."""
    client = await reporting.start()
    at = berlin(DAY, 0) - timedelta(days=5)
    english = Appt("mitte", "neuantrag", berlin(DAY, 9), language=Language.EN)
    easy = Appt("mitte", "neuantrag", berlin(DAY, 10), language=Language.LEICHTE_SPRACHE)
    worded = {english.id: "Make a new application", easy.id: "Zum ersten Mal Bürgergeld beantragen"}
    booked = [
        AppointmentBookedV1(appointment=a.snapshot().model_copy(update={"concern_name": worded[a.id]}))
        for a in (english, easy)
    ]
    first = location_event("mitte")
    withdrawn = location_event("mitte", revision=2).model_copy(
        update={"concerns": [c for c in first.concerns if c.concern_id != "neuantrag"]}
    )
    await reporting.send((first, at), *((b, at + timedelta(hours=1)) for b in booked))
    await reporting.send((withdrawn, at + timedelta(days=1)))

    response = await client.get(
        f"/api/v1/staff/locations/mitte/day-list?date={DAY}",
        headers=identity_header(reporting.clock, Role.APPOINTMENT_MANAGER, "mitte"),
    )
    assert response.status == 200
    ws = load_workbook(io.BytesIO(await response.read()))["Eingangszone"]
    header = [c.value for c in ws[4]]
    concerns = [row[header.index("Anliegen")] for row in ws.iter_rows(min_row=5, values_only=True)]
    assert concerns == ["Neuantrag stellen", "Neuantrag stellen"]

    report = await client.get(
        f"/api/v1/staff/statistics/report?from={DAY}&to={DAY}",
        headers=identity_header(reporting.clock, Role.STATISTICS, "*"),
    )
    by_concern = {f["key"]: f["label"] for f in (await report.json())["by_concern"]}
    assert by_concern["neuantrag"] == "Neuantrag stellen"
    # The concerns still offered are there as well (with 0), each by its German name.
    assert by_concern == {"neuantrag": "Neuantrag stellen"} | {
        c: CONCERNS[c][1] for c in CONCERNS if c != "neuantrag"
    }
