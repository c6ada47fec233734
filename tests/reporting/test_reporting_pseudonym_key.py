"""Reporting's customer pseudonyms across a rotation of OTV_INTERNAL_SECRET (deploy/README.md, "Rotating
secrets"). The booking-pattern report (R48) compares them over time: the keyed hash of the customer's
address pairs a cancellation with the same customer's new booking, and the hash of the customer's data
tells a change of those data from a revision that changed nothing else. Keyed with the internal secret,
its rotation made every appointment touched afterwards look like changed customer data, and hid every
rebooking across it. OTV_PSEUDONYM_KEY, set to the secret's value before the rotation, keeps them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.events.appointment import CancelledBy
from shared.identity import Role
from tests.reporting.conftest import DAY, Appt, Reporting, berlin, identity_header

ROTATED = "the-new-internal-secret-after-the-rotation"


@pytest.mark.req("R48")
async def test_a_rotated_internal_secret_changes_no_pseudonym_while_the_pseudonym_key_keeps_the_old_value(
    reporting: Reporting,
) -> None:
    reporting.clock.set(berlin(DAY, 12))
    before_rotation = reporting.settings.internal_secret
    base = berlin(DAY, 0) - timedelta(days=2)
    kept = Appt("nord", "leistungsbezug", berlin(DAY, 10), booked_at=base)
    trader = "trader@example.org"
    first = Appt("mitte", "neuantrag", berlin(DAY, 9), email=trader, booked_at=base)
    await reporting.start()
    await reporting.send(
        (kept.booked(), base),
        (first.booked(), base),
        (first.cancel(CancelledBy.CUSTOMER), base + timedelta(minutes=30)),
    )
    await reporting.close()

    # The rotation: reporting's new pods hold the new internal secret, and the old value as pseudonym key.
    client = await reporting.start(internal_secret=ROTATED, pseudonym_key=before_rotation)
    second = Appt("mitte", "neuantrag", berlin(DAY, 11), email=trader, booked_at=base + timedelta(minutes=40))
    await reporting.send(
        (kept.reschedule(berlin(DAY, 10, 30)), base + timedelta(minutes=35)),
        (second.booked(), second.booked_at),
    )

    path = f"/api/v1/admin/booking-patterns?from={DAY - timedelta(days=3)}&to={DAY}"
    headers = identity_header(reporting.clock, Role.ADMIN, secret=ROTATED)
    response = await client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    report = await response.json()
    # A reschedule, not a change of the customer's data; below the reschedule threshold: not listed.
    assert kept.reference not in {c["reference"] for c in report["changes_after_booking"]}
    # The cancellation before the rotation and the booking after it are the same customer's.
    (rebook,) = report["rapid_rebooking"]
    assert set(rebook["references"]) == {first.reference, second.reference}
