"""Erasure on request (Art. 17 GDPR) of one waiting-list wish from the staff pages
(services/gateway/staff_work/wish_pages.py) through a real gateway and the real booking service: a
location administrator finds an ended wish by the reference of its mails, sees its place and status
without the customer's data, and erases it after confirming the request; nobody else can see or erase
it. Plain forms and redirects only: the pages work without JavaScript."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.booking.waiting_models import StaffWishStateOut
from shared.clock import ManualClock
from shared.config import CommonSettings
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from tests.staff.conftest import Gateway, audit_rows
from tests.staff_work.conftest import HERE, THERE, book, events, form, signed_in
from tests.waiting_list.conftest import DEFAULT_START, wish_body

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

PERSONAL = ("first_name", "last_name", "email", "phone", "customer_number", "household_number")
SEARCH = "/staff/waiting-list/search"


async def ended_wish(client: TestClient[Any, Any], pool: asyncpg.Pool, email: str) -> dict[str, Any]:
    """A wish that was confirmed and then withdrawn by the customer: on no waiting list any more."""
    for _ in range(3):  # every service point of the wished start booked: a wish waits only for a full one
        await book(client, DEFAULT_START[:10], DEFAULT_START[11:16])
    joined = await client.post("/api/v1/waiting-list", json=wish_body(email))
    wish: dict[str, Any] = await joined.json()
    assert joined.status == 201, wish
    url = await pool.fetchval(
        "SELECT envelope->'data'->'wish'->>'page_url' FROM outbox WHERE type = 'waiting.registered'"
        " AND envelope->'data'->'wish'->>'id' = $1",
        wish["id"],
    )
    token = {"token": str(url).rsplit("token=", 1)[1]}
    assert (await client.post(f"/api/v1/waiting-list/{wish['id']}/confirm", params=token)).status == 200
    assert (await client.post(f"/api/v1/waiting-list/{wish['id']}/withdraw", params=token)).status == 200
    return wish


async def kept(pool: asyncpg.Pool, wish_id: str) -> list[str]:
    """The personal fields of the wish that still hold something (names only: a failure shows no data)."""
    row = await pool.fetchrow("SELECT * FROM wishes WHERE id = $1", uuid.UUID(wish_id))
    assert row is not None
    return [name for name in PERSONAL if row[name]]


def typed(reference: str) -> str:
    """The reference as a caller reads it out and staff type it: lower case, without the hyphen."""
    return reference.replace("-", "").lower()


@pytest.mark.req("R34")
@pytest.mark.req("R30")
async def test_a_location_administrator_finds_an_ended_wish_by_its_reference_and_erases_it(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    email = f"warteliste-{uuid.uuid4().hex[:8]}@example.org"
    wish = await ended_wish(client, pool, email)
    admin = await signed_in(pages_gateway, "wl-admin", Role.LOCATION_ADMIN)

    # The start page leads there; the form is a plain labelled form with the session's CSRF token.
    assert f'href="{SEARCH}"' in await (await admin.get("/staff/")).text()
    page = await admin.get(SEARCH)
    html = await page.text()
    assert (
        page.status == 200 and "<title>Wartelisten-Eintrag löschen \N{EN DASH} OTV Verwaltung</title>" in html
    )
    assert f'<form method="post" action="{SEARCH}"' in html and 'name="csrf_token"' in html
    assert '<label for="reference">Vorgangsnummer</label>' in html

    # A reference that is none, or that no wish has: the form again, the summary linking to the field.
    for wrong, status, says in (
        ("12", 422, "bitte die acht Zeichen"),
        ("ZZZZ-ZZZZ", 404, "es gibt keinen Eintrag"),
    ):
        refused = await form(admin, SEARCH, reference=wrong)
        html = await refused.text()
        assert refused.status == status and says in html, status
        assert "<title>Fehler: Wartelisten-Eintrag löschen" in html
        assert '<a href="#reference">Vorgangsnummer:' in html  # the error summary's line
        assert 'aria-describedby="reference-hint reference-error" aria-invalid="true"' in html

    found = await form(admin, SEARCH, reference=typed(wish["reference"]))
    assert found.status == 303
    path = found.headers["Location"]
    assert path == f"/staff/waiting-list/{wish['id']}"  # the id only: no reference in the URL
    html = await (await admin.get(path)).text()
    for shown in (wish["reference"], "beendet: zurückgezogen", "Jobcenter Teststadt", "noch gespeichert"):
        assert shown in html, shown
    assert email not in html and "Mustermann" not in html  # what the erasure needs, no personal data
    assert f'<form method="post" action="{path}/erase">' in html and "Daten jetzt löschen" in html

    unconfirmed = await form(admin, f"{path}/erase")
    html = await unconfirmed.text()
    assert unconfirmed.status == 422 and "<title>Fehler: Wartelisten-Eintrag" in html
    assert '<a href="#erase-confirm">Bitte bestätigen Sie, dass ein Antrag auf Löschung vorliegt.</a>' in html
    assert 'aria-describedby="erase-confirm-hint erase-confirm-error" aria-invalid="true"' in html
    assert await kept(pool, wish["id"]) != []

    done = await form(admin, f"{path}/erase", confirm="yes")
    assert done.status == 303 and done.headers["Location"] == f"{path}?notice=wish_erased"
    html = await (await admin.get(done.headers["Location"])).text()
    assert (
        'role="status">Die personenbezogenen Daten dieses Eintrags auf der Warteliste sind gelöscht' in html
    )
    assert "gelöscht am 02.03.2026 10:00 Uhr" in html and "Daten jetzt löschen" not in html
    # Booking holds none of the customer's data any more; the notifier is told to erase its copy.
    assert await kept(pool, wish["id"]) == []
    assert await pool.fetchval("SELECT count(*) FROM wishes WHERE email = $1", email) == 0
    assert [e["wish_id"] for e in await events(pool, "waiting.personal_data_erased")] == [wish["id"]]
    entries = await audit_rows(pages_gateway, entity="wish")
    assert [(e["action"], e["entity_id"]) for e in entries] == [("erase", wish["id"])]

    # Found again by its reference: erased, nothing more to erase.
    again = await form(admin, SEARCH, reference=wish["reference"])
    assert again.headers["Location"] == path


@pytest.mark.req("R28")
@pytest.mark.req("R34")
async def test_an_appointment_manager_or_another_locations_administrator_can_neither_see_nor_erase_the_wish(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    wish = await ended_wish(client, pool, f"fremd-{uuid.uuid4().hex[:8]}@example.org")
    path = f"/staff/waiting-list/{wish['id']}"
    manager = await signed_in(pages_gateway, "wl-manager")  # an appointment manager here
    elsewhere = await signed_in(pages_gateway, "wl-elsewhere", Role.LOCATION_ADMIN, THERE)

    for response in (
        await manager.get(SEARCH),
        await form(manager, SEARCH, reference=wish["reference"]),
        await manager.get(path),
        await form(manager, f"{path}/erase", confirm="yes"),
        await manager.get("/api/v1/staff/waiting-list", params={"reference": wish["reference"]}),
        await form(elsewhere, SEARCH, reference=wish["reference"]),
        await elsewhere.get(path),
        await form(elsewhere, f"{path}/erase", confirm="yes"),
        await elsewhere.get("/api/v1/staff/waiting-list", params={"reference": wish["reference"]}),
        await elsewhere.get(f"/api/v1/staff/waiting-list/{wish['id']}"),
    ):
        html = await response.text()
        assert response.status == 403, (response.method, response.url.path, response.status)
        assert "Jobcenter Teststadt" not in html and "zurückgezogen" not in html
    assert "Wartelisten-Eintrag löschen" not in await (await manager.get("/staff/")).text()

    # Not for API keys either, whatever their scope: erasure is a person's decision.
    admin = await pages_gateway.signed_in("wl-key-admin", (Role.ADMIN, "*"))
    created = await admin.post(
        "/api/v1/admin/api-keys",
        json={"name": "Service-Center", "locations": [HERE], "operations": ["appointments:read"]},
    )
    key = {"Authorization": f"Bearer {(await created.json())['key']}"}
    by_key = await pages_gateway.client.get(
        "/api/v1/staff/waiting-list", params={"reference": wish["reference"]}, headers=key
    )
    assert by_key.status == 403

    assert await kept(pool, wish["id"]) != []
    assert await events(pool, "waiting.personal_data_erased") == []
    # Its own location's administrator finds it (the wish is there to be found).
    here = await signed_in(pages_gateway, "wl-here", Role.LOCATION_ADMIN)
    assert (await form(here, SEARCH, reference=wish["reference"])).status == 303


def signed(
    clock: ManualClock, role: Role, location: str, kind: IdentityKind = IdentityKind.USER
) -> dict[str, str]:
    identity = StaffIdentity(
        subject="wl-api",
        kind=kind,
        grants=(Grant(role=role, locations=(location,)),),
        issued_at=clock.now(),
    )
    return {HEADER: sign(identity, CommonSettings().internal_secret)}


@pytest.mark.req("R28")
@pytest.mark.req("R50")
async def test_booking_shows_a_wish_by_reference_or_id_only_to_its_locations_administrators(
    client: TestClient[Any, Any], pool: asyncpg.Pool, clock: ManualClock
) -> None:
    """Booking's own check, behind the gateway's: the signed identity's role at the wish's location; API
    keys refused even with the role there; the answer has no personal data and matches its document."""
    email = f"api-{uuid.uuid4().hex[:8]}@example.org"
    wish = await ended_wish(client, pool, email)
    by_reference: tuple[str, dict[str, str]] = (
        "/api/v1/staff/waiting-list",
        {"reference": typed(wish["reference"])},
    )
    by_id: tuple[str, dict[str, str]] = (f"/api/v1/staff/waiting-list/{wish['id']}", {})
    for path, params in (by_reference, by_id):
        assert (await client.get(path, params=params)).status == 401
        for refused in (
            signed(clock, Role.APPOINTMENT_MANAGER, HERE),
            signed(clock, Role.GROUP_LEADER, HERE),
            signed(clock, Role.LOCATION_ADMIN, THERE),
            signed(clock, Role.LOCATION_ADMIN, HERE, IdentityKind.API_KEY),
        ):
            assert (await client.get(path, params=params, headers=refused)).status == 403, path
        answer = await client.get(path, params=params, headers=signed(clock, Role.LOCATION_ADMIN, HERE))
        assert answer.status == 200, path
        body = await answer.json()
        found = StaffWishStateOut.model_validate(body)
        assert (str(found.id), found.reference, found.status, found.location_id, found.erased_at) == (
            wish["id"],
            wish["reference"],
            "withdrawn",
            HERE,
            None,
        )
        assert email not in str(body) and "customer" not in body and "Mustermann" not in str(body)
    admin = signed(clock, Role.LOCATION_ADMIN, HERE)
    for reference, status in (("ZZZZ-ZZZZ", 404), ("abc", 422), ("ABCD-EF0O", 422)):
        response = await client.get(
            "/api/v1/staff/waiting-list", params={"reference": reference}, headers=admin
        )
        assert response.status == status, reference
    unknown = await client.get(f"/api/v1/staff/waiting-list/{uuid.uuid4()}", headers=admin)
    assert unknown.status == 404
