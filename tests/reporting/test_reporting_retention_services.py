"""Deletion on schedule across the services (R34, I6): a booking made through the booking service, mailed
by the notifier and counted by reporting; after the retention period each service's own job has erased
its copy, no schema holds the customer's name or address any more, reporting's statistics are unchanged,
and reporting's deletion report shows the runs of all three."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.booking import retention as booking_retention
from services.booking.app import create_app as create_booking
from services.booking.config import Settings as BookingSettings
from services.booking.consumer import apply_location_configured
from services.notifier import retention as notifier_retention
from services.notifier.app import create_app as create_notifier
from services.notifier.config import Settings as NotifierSettings
from services.reporting import service as reporting_service
from shared.clock import ManualClock
from shared.config import SERVICE_NAMES
from shared.identity import Role
from tests.conftest import purge_test_queues, svc_settings, wait_for
from tests.reporting.conftest import (
    DAY,
    Reporting,
    berlin,
    empty_schema,
    identity_header,
    location_event,
    schema_holding,
)
from tools.mailsink import MailSink

NAME, EMAIL = "Quirinius-Zabłocki", "q.zablocki@example.com"


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    async with MailSink(smtp_port=0, http_port=0) as running:
        yield running


@pytest.mark.req("R34")
async def test_after_the_retention_period_no_service_holds_the_customers_data(
    reporting: Reporting, sink: MailSink, pools: dict[str, asyncpg.Pool]
) -> None:
    clock = reporting.clock  # Monday before DAY, 12:00
    for schema in ("booking", "notifier"):
        await empty_schema(pools[schema], schema)
    await purge_test_queues()
    booking_settings = cast(
        BookingSettings, svc_settings(BookingSettings, consume_catalog=False, run_jobs=False)
    )
    notifier_settings = cast(
        NotifierSettings,
        svc_settings(NotifierSettings, smtp_port=sink.smtp_port, mail_poll_seconds=0.2, smtp_timeout=5.0),
    )
    async with pools["booking"].acquire() as conn, conn.transaction():
        await apply_location_configured(conn, None, location_event("mitte"))
    reports = await reporting.start()
    clients: list[TestClient[Any, Any]] = []
    for app in (
        create_booking(booking_settings, clock=clock),
        create_notifier(notifier_settings, clock=clock),
    ):
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
    booking = clients[0]
    try:
        response = await booking.post(
            "/api/v1/appointments",
            json={
                "location_id": "mitte",
                "concern_id": "veraenderung",
                "start": berlin(DAY, 9).isoformat(),
                "mode": "phone",
                "customer": {
                    "first_name": "Quirin",
                    "last_name": NAME,
                    "email": EMAIL,
                    "phone": "0421 7654321",
                    "customer_number": "555D123456",
                },
            },
            headers={"X-Forwarded-For": "192.0.2.55"},
        )
        assert response.status == 201, await response.text()
        appointment_id = (await response.json())["id"]

        async def everywhere() -> bool:
            in_reporting = await reporting.pool.fetchval(
                "SELECT count(*) FROM appointments WHERE id = $1", appointment_id
            )
            mailed = await pools["notifier"].fetchval("SELECT count(*) FROM mails WHERE status = 'sent'")
            return bool(in_reporting and mailed)

        await wait_for(everywhere, timeout=20, what="the booking in reporting and its confirmation sent")
        needles = [NAME, EMAIL, "7654321", "555D123456"]
        assert await schema_holding(pools["booking"], "booking", needles)
        assert await schema_holding(reporting.pool, "reporting", needles)
        stats_path = f"/api/v1/staff/statistics/report?from={DAY}&to={DAY}"

        async def statistics() -> Any:
            response = await reports.get(stats_path, headers=identity_header(clock, Role.STATISTICS, "*"))
            return await response.json()

        before = await statistics()

        # Four weeks and a bit after the appointment: each service's own job, with the same setting.
        clock.set(berlin(DAY, 9, 15) + timedelta(days=28, hours=1))
        erased = await booking_retention.run_retention(pools["booking"], booking_settings, clock, force=True)
        assert erased is not None and erased["appointments_erased"] == 1

        async def erasure_arrived() -> bool:
            return bool(
                await pools["notifier"].fetchval("SELECT count(*) FROM mails WHERE recipient IS NOT NULL")
                == 0
                and await reporting.pool.fetchval(
                    "SELECT count(*) FROM appointments WHERE anonymised_at IS NULL"
                )
                == 0
            )

        await wait_for(
            erasure_arrived, timeout=20, what="booking's erasure event at the notifier and reporting"
        )
        assert await notifier_retention.run_retention(pools["notifier"], notifier_settings, clock, force=True)
        assert await reporting_service.run_retention(reporting.pool, reporting.settings, clock, force=True)

        async def reported() -> bool:
            services = await reporting.pool.fetch("SELECT DISTINCT service FROM retention_runs")
            return {r["service"] for r in services} >= {"booking", "notifier", "reporting"}

        await wait_for(reported, timeout=20, what="the runs of all services in reporting's deletion report")

        async def published(service: str) -> bool:
            pool = pools[service]
            return bool(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0)

        for service in ("booking", "notifier"):
            await wait_for(functools.partial(published, service), what=f"{service}'s outbox published")
        # Published events of the period went with the second run of each job.
        await booking_retention.run_retention(pools["booking"], booking_settings, clock, force=True)
        await notifier_retention.run_retention(pools["notifier"], notifier_settings, clock, force=True)

        leftovers = []
        for schema in SERVICE_NAMES:
            leftovers += await schema_holding(pools[schema], schema, needles)
        assert leftovers == []
        assert await statistics() == before
        row = await pools["booking"].fetchrow("SELECT status, concern_id, location_id FROM appointments")
        assert (row["status"], row["concern_id"], row["location_id"]) == ("booked", "veraenderung", "mitte")
        # The manage link leads nowhere any more.
        assert (await booking.get(f"/api/v1/appointments/{appointment_id}?token=anything")).status in (
            403,
            404,
        )

        report = await (
            await reports.get("/api/v1/admin/retention-report", headers=identity_header(clock, Role.ADMIN))
        ).json()
        totals = {s["service"]: s["totals"] for s in report["services"]}
        assert totals["booking"]["appointments_erased"] == 1
        # Booking's erasure event or reporting's own scheduled run (its clock moved too) got there first;
        # either way the appointment was anonymised once, never twice.
        assert totals["reporting"]["appointments_anonymised"] in (0, 1)
        assert "mails_erased" in totals["notifier"]
        # Operators see when each run completed (the alert OTVRetentionNotRunning watches it, R34).
        metrics = await (await booking.get("/metrics")).text()
        last_runs = {
            line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("otv_retention_last_run_timestamp_seconds{")
        }
        assert last_runs.get('service="booking"') == clock.now().timestamp(), last_runs
        assert last_runs.get('service="reporting"') == clock.now().timestamp(), last_runs  # its own job
    finally:
        for client in reversed(clients):
            await client.close()


@pytest.mark.req("R33")
@pytest.mark.req("R34")
async def test_the_running_booking_and_notifier_erase_the_customers_data_by_themselves_on_schedule(
    sink: MailSink, pools: dict[str, asyncpg.Pool], clock: ManualClock
) -> None:
    """Nobody calls a retention run here: booking and notifier run as in production, with their jobs on
    (a short interval), and after the retention period each one's own schedule erases its copy. The
    notifier's copy goes while booking is stopped, so not through booking's erasure event."""
    for schema in ("booking", "notifier"):
        await empty_schema(pools[schema], schema)
    await purge_test_queues()
    booking_settings = svc_settings(
        BookingSettings, consume_catalog=False, run_jobs=True, retention_interval_seconds=0.2
    )
    notifier_settings = svc_settings(
        NotifierSettings,
        smtp_port=sink.smtp_port,
        mail_poll_seconds=0.2,
        smtp_timeout=5.0,
        retention_interval_seconds=0.2,
    )
    async with pools["booking"].acquire() as conn, conn.transaction():
        await apply_location_configured(conn, None, location_event("mitte"))
    notifier: TestClient[Any, Any] = TestClient(
        TestServer(create_notifier(cast(NotifierSettings, notifier_settings), clock=clock))
    )
    await notifier.start_server()
    try:
        async with TestClient(
            TestServer(create_booking(cast(BookingSettings, booking_settings), clock=clock))
        ) as booking:
            response = await booking.post(
                "/api/v1/appointments",
                json={
                    "location_id": "mitte",
                    "concern_id": "veraenderung",
                    "start": berlin(DAY, 9).isoformat(),
                    "mode": "phone",
                    "customer": {
                        "first_name": "Quirin",
                        "last_name": NAME,
                        "email": EMAIL,
                        "phone": "0421 7654321",
                        "customer_number": "555D123456",
                    },
                },
            )
            assert response.status == 201, await response.text()
            token = (await response.json())["manage_url"].split("token=")[1]
            needles = [NAME, EMAIL, "7654321", "555D123456", token]
            await sink.wait_for_messages(1, to=EMAIL)
            assert await schema_holding(pools["booking"], "booking", needles)
            assert await schema_holding(pools["notifier"], "notifier", needles)

        async def erased_in(schema: str) -> bool:
            clock.advance(timedelta(seconds=1))  # time goes on: the schedule's next interval comes
            return not await schema_holding(pools[schema], schema, needles)

        # Booking is down; after the retention period the notifier's own schedule erases its copy.
        clock.set(berlin(DAY, 9, 15) + timedelta(days=28, hours=1))
        await wait_for(functools.partial(erased_in, "notifier"), timeout=15, what="the notifier's erasure")
        assert await schema_holding(pools["booking"], "booking", needles)

        async with TestClient(
            TestServer(create_booking(cast(BookingSettings, booking_settings), clock=clock))
        ):
            await wait_for(functools.partial(erased_in, "booking"), timeout=15, what="booking's erasure")
    finally:
        await notifier.close()
    # Each service's own run is in its outbox for reporting's deletion report.
    for schema in ("booking", "notifier"):
        assert await pools[schema].fetchval(
            "SELECT count(*) FROM outbox WHERE type = 'retention.run_completed'"
        ), schema
