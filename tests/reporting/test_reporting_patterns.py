"""The booking-pattern report for administrators (R48): many bookings from one network or e-mail domain,
rapid cancel-and-rebook, changes after booking."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.events.appointment import AppointmentBookedV1, CancelledBy, Channel
from shared.events.catalog import AllowListChangedV1
from shared.identity import Role
from tests.reporting.conftest import DAY, Appt, Reporting, berlin, identity_header


@pytest.mark.req("R48")
async def test_pattern_report_shows_networks_domains_rebooking_and_changes_to_administrators(
    reporting: Reporting,
) -> None:
    reporting.clock.set(berlin(DAY, 12))
    client = await reporting.start(pattern_network_min=10, pattern_domain_min=10)
    base = berlin(DAY, 0) - timedelta(days=2)
    items: list[tuple[object, object]] = [
        (AllowListChangedV1(revision=1, entries=["@jobcenter-bremen.de"]), base),
    ]
    # Twelve online bookings from one /24, with addresses of one domain (a script at work).
    for n in range(12):
        a = Appt(
            "mitte",
            "veraenderung",
            berlin(DAY, 8) + timedelta(minutes=15 * n),
            email=f"bot{n}@slots.example",
            client_network=f"203.0.113.{n + 1}",
            booked_at=base + timedelta(minutes=n),
        )
        items.append((a.booked(), a.booked_at))
    # The service centre books often with its internal address: listed, but marked internal.
    for n in range(10):
        a = Appt(
            "nord",
            "neuantrag",
            berlin(DAY, 8) + timedelta(minutes=30 * n),
            email=f"sc{n}@jobcenter-bremen.de",
            channel=Channel.SERVICE_CENTRE,
            booked_at=base + timedelta(minutes=n),
        )
        items.append((a.booked(), a.booked_at))
    # One customer cancels and books again within minutes, twice (slot trading).
    trader = "trader@example.org"
    first = Appt("mitte", "neuantrag", berlin(DAY, 9), email=trader, booked_at=base)
    second = Appt("mitte", "neuantrag", berlin(DAY, 10), email=trader, booked_at=base + timedelta(minutes=65))
    third = Appt("mitte", "neuantrag", berlin(DAY, 11), email=trader, booked_at=base + timedelta(minutes=130))
    items += [
        (first.booked(), first.booked_at),
        (first.cancel(CancelledBy.CUSTOMER), base + timedelta(minutes=60)),
        (second.booked(), second.booked_at),
        (second.cancel(CancelledBy.CUSTOMER), base + timedelta(minutes=125)),
        (third.booked(), third.booked_at),
    ]
    # Moved twice; another whose customer data changed after booking.
    mover = Appt("nord", "leistungsbezug", berlin(DAY, 9), booked_at=base)
    changer = Appt("nord", "leistungsbezug", berlin(DAY, 10), booked_at=base)
    items += [
        (mover.booked(), base),
        (mover.reschedule(berlin(DAY, 10, 30)), base + timedelta(hours=1)),
        (mover.reschedule(berlin(DAY, 11)), base + timedelta(hours=2)),
        (changer.booked(), base),
    ]
    changer.last_name = "Anders"
    changer.revision += 1
    items.append((AppointmentBookedV1(appointment=changer.snapshot()), base + timedelta(hours=1)))
    await reporting.send(*items)  # type: ignore[arg-type]

    path = f"/api/v1/admin/booking-patterns?from={DAY - timedelta(days=3)}&to={DAY}"
    response = await client.get(path, headers=identity_header(reporting.clock, Role.ADMIN))
    assert response.status == 200
    report = await response.json()
    assert [(n["client_network"], n["bookings"], n["customers"]) for n in report["networks"]] == [
        ("203.0.113.0/24", 12, 12)
    ]
    domains = {d["email_domain"]: (d["bookings"], d["internal"]) for d in report["email_domains"]}
    assert domains == {"slots.example": (12, False), "jobcenter-bremen.de": (10, True)}
    assert len(report["rapid_rebooking"]) == 1
    rebook = report["rapid_rebooking"][0]
    assert rebook["cycles"] == 2
    assert set(rebook["references"]) == {first.reference, second.reference, third.reference}
    assert trader not in str(report)  # a pseudonym, not the address
    changes = {c["reference"]: (c["reschedules"], c["data_changes"]) for c in report["changes_after_booking"]}
    assert changes == {mover.reference: (2, 0), changer.reference: (0, 1)}

    page = await client.get(
        f"/staff/admin/booking-patterns?from={DAY - timedelta(days=3)}&to={DAY}",
        headers=identity_header(reporting.clock, Role.ADMIN),
    )
    assert page.status == 200
    assert "203.0.113.0/24" in await page.text()
    for role in (Role.STATISTICS, Role.LOCATION_ADMIN, Role.APPOINTMENT_MANAGER):
        denied = await client.get(path, headers=identity_header(reporting.clock, role, "*"))
        assert denied.status == 403
    assert (await client.get(path)).status == 401


@pytest.mark.req("R48")
async def test_many_bookings_from_a_known_office_network_are_listed_as_the_offices_not_as_a_script(
    reporting: Reporting,
) -> None:
    """The self-service PCs of a jobcenter office book through one NAT address (OTV_BOT_TRUSTED_NETWORKS,
    which gives them a larger allowance at the gateway too): the report still lists them, marked as a
    known office, so that an administrator does not chase the office while a script's network stands out."""
    reporting.clock.set(berlin(DAY, 12))
    client = await reporting.start(
        pattern_network_min=5, bot_trusted_networks="198.51.100.7/32, 2001:db8:1::/64"
    )
    base = berlin(DAY, 0) - timedelta(days=2)
    items: list[tuple[object, object]] = []
    for n, network in enumerate(["198.51.100.7"] * 6 + ["203.0.113.9"] * 5 + ["2001:db8:1::5"] * 5):
        a = Appt(
            "mitte",
            "veraenderung",
            berlin(DAY, 8) + timedelta(minutes=5 * n),
            email=f"kunde{n}@example.org",
            client_network=network,
            booked_at=base + timedelta(minutes=n),
        )
        items.append((a.booked(), a.booked_at))
    await reporting.send(*items)  # type: ignore[arg-type]

    period = f"from={DAY - timedelta(days=3)}&to={DAY}"
    response = await client.get(
        f"/api/v1/admin/booking-patterns?{period}", headers=identity_header(reporting.clock, Role.ADMIN)
    )
    assert response.status == 200
    report = await response.json()
    assert {n["client_network"]: (n["bookings"], n["known_office"]) for n in report["networks"]} == {
        "198.51.100.0/24": (6, True),
        "203.0.113.0/24": (5, False),
        "2001:db8:1::/48": (5, True),
    }

    page = await client.get(
        f"/staff/admin/booking-patterns?{period}", headers=identity_header(reporting.clock, Role.ADMIN)
    )
    rows = {
        row.split("</th>")[0].rsplit(">", 1)[-1]: row
        for row in (await page.text()).split('<tr><th scope="row">')[1:]
    }
    assert '<th scope="col">bekanntes Büro-Netz</th>' in await page.text()
    assert rows["198.51.100.0/24"].split("</tr>")[0].rstrip().endswith("<td>ja</td>")
    assert rows["203.0.113.0/24"].split("</tr>")[0].rstrip().endswith("<td>nein</td>")


def test_reporting_refuses_an_office_network_as_wide_as_a_providers_at_start() -> None:
    """The same rule as the gateway's: a wide network would hide a script's bookings in the report."""
    from pydantic import ValidationError

    from tests.reporting.conftest import reporting_settings

    with pytest.raises(ValidationError, match="wider than an IPv4 /16"):
        reporting_settings(bot_trusted_networks="10.0.0.0/8")
