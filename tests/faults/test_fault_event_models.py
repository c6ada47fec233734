"""Every event a service consumes is known to the service's own process. A model that only a test
imported made the real notifier acknowledge `appointment.transferred` as unknown and send no mail (R25):
these events go through the real notifier process here, after a booking through the gateway."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from shared.clock import SystemClock
from shared.events import EventData, make_envelope
from shared.events.appointment import AppointmentLinkRenewedV1, AppointmentSnapshot
from tests.conftest import publish_envelope, transferred, wait_for
from tests.faults.system import System, book, mails_to


async def _publish(system: System, data: EventData) -> None:
    envelope = make_envelope(data, producer="booking", clock=SystemClock(), correlation_id=uuid.uuid4().hex)
    await publish_envelope(system.amqp, envelope)


@pytest.mark.req("R25")
@pytest.mark.req("R41")
async def test_the_notifier_process_mails_a_transfer_and_a_renewed_link(system: System) -> None:
    await system.wait_ready()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        attempt = await book(http, system, "models", 1)
    assert attempt.status == 201
    await wait_for(lambda: mails_to(system.sink, "models").get(attempt.email), what="the confirmation")
    row: Any = await system.pools["booking"].fetchval(
        "SELECT envelope FROM outbox WHERE type = 'appointment.booked'"
        " AND envelope -> 'data' -> 'appointment' ->> 'id' = $1",
        attempt.appointment_id,
    )
    booked = AppointmentSnapshot.model_validate(row["data"]["appointment"])
    there = booked.model_copy(
        update={"revision": 2, "location_id": "fault-nord", "location_name": "Geschäftsstelle Nord"}
    )
    await _publish(system, transferred(booked, there))
    renewed_link = booked.manage_url.split("token=")[0] + "token=renewed-" + uuid.uuid4().hex
    await _publish(
        system,
        AppointmentLinkRenewedV1(
            appointment=there.model_copy(update={"revision": 3, "manage_url": renewed_link})
        ),
    )

    def subjects() -> list[str]:
        return [m.subject for m in mails_to(system.sink, "models").get(attempt.email, [])]

    await wait_for(lambda: len(subjects()) == 3, what="the transfer and the new-link mails")
    assert subjects()[1].startswith(
        "Ihr Termin im Jobcenter Bremen wurde vom zuständigen Standort übernommen"
    )
    assert subjects()[2].startswith("Ihr neuer Link zum Termin")
    unknown = [
        line
        for line in system.services["notifier"].log_lines()
        if line.get("event") == "event_version_unknown"
    ]
    assert unknown == []
