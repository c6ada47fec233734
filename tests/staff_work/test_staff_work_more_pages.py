"""The search, the booking by staff, the week view and the mass change as pages
(services/gateway/staff_work) through a real gateway and the real booking service: search within one's
own locations by a posted form (R22, R28), a new appointment with an interpreter need (R26), the week by
day, group and service point (R27), and the mass change of a day with preview, confirmation and a
second confirmation that changes nothing (R20, R44)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import date
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.booking import mass_change
from shared.events.catalog import Closure
from shared.identity import Role
from tests.booking import factory
from tests.booking.conftest import configure
from tests.staff.conftest import Gateway, audit_rows
from tests.staff_work.conftest import HERE, THERE, book, events, form, row_of, signed_in

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY = "2026-03-03"


@pytest.mark.req("R22")
@pytest.mark.req("R28")
async def test_search_by_name_reference_or_customer_number_finds_only_ones_own_locations_and_links_the_file(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    here = await book(client, TUESDAY, "08:00", number=factory.customer_number(61))
    there = await book(client, TUESDAY, "08:00", location_id=THERE, number=factory.customer_number(62))
    browser = await signed_in(pages_gateway, "suche")

    empty = await browser.get("/staff/search", params={"q": "Mustermann"})
    html = await empty.text()
    assert empty.status == 200 and 'method="post" action="/staff/search"' in html
    assert "Ergebnisse" not in html  # a name in the URL is not searched for
    found = await form(browser, "/staff/search", q="Mustermann")
    html = await found.text()
    assert found.status == 200 and "1 Termin gefunden" in html
    assert f'href="/staff/appointments/{here["id"]}"' in row_of(html, f"a-{here['id']}")
    assert there["id"] not in html and "Jobcenter Anderswo" not in html
    # The reference as a caller reads it out and staff type it: without the dash, with a space, lower case.
    reference = here["reference"]
    typed = (
        reference.lower(),
        reference.replace("-", "").lower(),
        reference.replace("-", " "),
        f" {reference} ",
    )
    for query in (*typed, factory.customer_number(61)):
        html = await (await form(browser, "/staff/search", q=query)).text()
        assert f"a-{here['id']}" in html and "1 Termin gefunden" in html, query
    assert "0 Termine gefunden" in await (await form(browser, "/staff/search", q=there["reference"])).text()

    short = await form(browser, "/staff/search", q="M")
    html = await short.text()
    assert short.status == 422 and "bitte 2 bis 100 Zeichen" in html
    assert 'aria-describedby="q-hint q-error" aria-invalid="true"' in html
    assert (await browser.post("/staff/search", data={"q": "Mustermann"})).status == 403  # no CSRF token

    elsewhere = await signed_in(pages_gateway, "suche-anderswo", location=THERE)
    html = await (await form(elsewhere, "/staff/search", q="Mustermann")).text()
    assert f"a-{there['id']}" in html and here["id"] not in html


@pytest.mark.req("R26")
@pytest.mark.req("R28")
async def test_staff_book_a_new_appointment_with_an_interpreter_and_bad_input_is_named_at_its_field(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    browser = await signed_in(pages_gateway, "buchung")
    path = f"/staff/locations/{HERE}/book"
    html = await (await browser.get(path)).text()
    assert 'value="veraenderung|phone"' in html and 'name="start"' not in html
    html = await (await browser.get(path, params={"choice": "veraenderung|in_person"})).text()
    start = factory.iso(TUESDAY, "08:00")
    assert f'<option value="{start}">08:00\N{EN DASH}08:15 Uhr</option>' in html
    assert '<optgroup label="Dienstag, 3. März 2026">' in html
    for name in ("first_name", "last_name", "email", "phone", "interpreter_language"):
        assert f'<label for="f-{name}">' in html, name
    for number in ("customer_number", "household_number"):  # one of the two is needed: not "freiwillig"
        label = re.search(rf'<label for="f-{number}">(.*?)</label>', html, re.DOTALL)
        assert label and "freiwillig" not in label.group(1), number
    # A caller who wants a later day: the times from that day on ("Ab Tag"), kept through the booking form.
    later = await browser.get(path, params={"choice": "veraenderung|in_person", "from": "2026-03-17"})
    html = await later.text()
    assert '<optgroup label="Dienstag, 17. März 2026">' in html and "3. März 2026" not in html
    assert '<input type="hidden" name="from" value="2026-03-17">' in html
    far = await browser.get(path, params={"choice": "veraenderung|in_person", "from": "9999-12-31"})
    assert far.status == 200 and '<optgroup label="Dienstag, 3. März 2026">' in await far.text()
    # A day beyond the location's booking period: the page says why nothing is listed.
    beyond = await (
        await browser.get(path, params={"choice": "veraenderung|in_person", "from": "2026-12-01"})
    ).text()
    assert "In den acht Wochen ab Dienstag, 1. Dezember 2026" in beyond and "früheren Tag" in beyond

    fields = {"choice": "veraenderung|in_person", "start": start, "first_name": "Amal", "last_name": "Haddad"}
    missing = await form(browser, path, **fields)
    html = await missing.text()
    assert missing.status == 422 and "E-Mail-Adresse: bitte prüfen" in html
    assert 'aria-describedby="f-email-hint f-email-error" aria-invalid="true"' in html
    assert 'value="Amal"' in html  # what was typed stays
    no_slot = await form(browser, path, **{**fields, "start": "", "email": "amal@example.org"})
    assert no_slot.status == 422 and "Zeit: bitte prüfen" in await no_slot.text()

    no_number = await form(browser, path, **fields, email="amal@example.org")
    html = await no_number.text()
    assert no_number.status == 422 and "Kundennummer: bitte prüfen" in html
    assert 'aria-describedby="f-customer_number-hint f-customer_number-error"' in html
    fields["customer_number"] = factory.customer_number(71)
    attempt = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', html)
    assert attempt  # each form shown is one attempt
    fields["idempotency_key"] = attempt.group(1)
    done = await form(browser, path, **fields, email="amal@example.org", interpreter_language="Arabisch")
    assert done.status == 303, re.findall(r"<li>(.*?)</li>", await done.text())
    assert done.headers["Location"].endswith("?notice=booked")
    # A second click on the same form books nothing more and leads to the same file.
    twice = await form(browser, path, **fields, email="amal@example.org", interpreter_language="Arabisch")
    assert twice.status == 303 and twice.headers["Location"] == done.headers["Location"]
    del fields["idempotency_key"]
    html = await (await browser.get(done.headers["Location"])).text()
    assert "Der Termin ist gebucht" in html and "Arabisch" in html and "Mitarbeitende" in html
    day = await (await browser.get(f"/staff/locations/{HERE}/day", params={"date": TUESDAY})).text()
    assert "Haddad" in day and "Arabisch" in day
    booked = (await events(pool, "appointment.booked"))[0]["appointment"]
    assert booked["channel"] == "staff" and booked.get("interpreter_language", "Arabisch") == "Arabisch"
    entries = await audit_rows(pages_gateway, entity="appointment")
    # Both clicks are in the log, naming the one appointment.
    assert [(e["action"], e["location"]) for e in entries] == [("create", HERE)] * 2
    assert entries[0]["entity_id"] == entries[1]["entity_id"]
    assert "Haddad" not in str(entries[0]["changes"]) and "amal@" not in str(entries[0]["changes"])
    taken = await form(browser, path, **fields, email="amal@example.org")
    assert taken.status == 409 and "schon einen offenen Termin" in await taken.text()

    # R28: not at another location, neither the form nor a booking.
    assert (await browser.get(f"/staff/locations/{THERE}/book")).status == 403
    refused = await form(browser, f"/staff/locations/{THERE}/book", **fields, email="x@example.org")
    assert refused.status == 403
    assert await pool.fetchval("SELECT count(*) FROM appointments WHERE location_id = $1", THERE) == 0


@pytest.mark.req("R27")
@pytest.mark.req("R28")
async def test_the_week_shows_each_day_by_group_and_service_point_with_links_to_the_files(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    tuesday = await book(client, TUESDAY, "08:00")
    thursday = await book(client, "2026-03-05", "09:00", concern="bescheid", mode="phone")
    next_week = await book(client, "2026-03-10", "08:00")
    browser = await signed_in(pages_gateway, "woche")
    page = await browser.get(f"/staff/locations/{HERE}/week", params={"date": "2026-03-04"})
    html = await page.text()
    assert page.status == 200 and "Montag, 2. März 2026 bis Sonntag, 8. März 2026 · 2 Termine" in html
    assert html.index("Dienstag, 3. März 2026") < html.index("Donnerstag, 5. März 2026")
    assert "Eingangszone, Serviceplatz 1, 03.03." in html and "Leistungsteam, Serviceplatz 1, 05.03." in html
    assert f'href="/staff/appointments/{tuesday["id"]}"' in html
    assert "telefonisch" in row_of(html, f"a-{thursday['id']}")
    assert next_week["id"] not in html and 'aria-current="page">Woche' in html
    for wrong in ("03.03.2026", "9999-12-31", "0001-01-01"):  # the ends of the calendar are no week
        for view in ("week", "day", "calls"):
            bad = await browser.get(f"/staff/locations/{HERE}/{view}", params={"date": wrong})
            assert bad.status == 200 and "Das Datum ist ungültig" in await bad.text(), (view, wrong)
    assert (await browser.get(f"/staff/locations/{THERE}/week")).status == 403


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_a_mass_change_page_previews_confirms_once_and_a_second_confirmation_changes_nothing(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    booked = [await book(client, TUESDAY, "08:00") for _ in range(3)]  # points 1, 2 and 3 of ez
    other_group = await book(client, TUESDAY, "08:00", concern="bescheid")
    manager = await signed_in(pages_gateway, "nur-termine")
    assert (await manager.get(f"/staff/locations/{HERE}/mass-change")).status == 403
    assert "Massenänderung" not in await (await manager.get(f"/staff/locations/{HERE}/day")).text()
    leader = await signed_in(pages_gateway, "gruppenleitung", Role.GROUP_LEADER)
    path = f"/staff/locations/{HERE}/mass-change"
    html = await (await leader.get(path)).text()
    assert '<option value="ez">Gruppe Eingangszone</option>' in html and 'name="service_points_left"' in html
    assert "Massenänderung" in await (await leader.get(f"/staff/locations/{HERE}/day")).text()

    bad = await form(leader, f"{path}/preview", date="morgen", group_id="ez", service_points_left="-1")
    html = await bad.text()
    assert bad.status == 422 and "Tag: bitte ein Datum wählen." in html
    assert 'aria-describedby="mc-date-error" aria-invalid="true"' in html
    assert "eine Zahl von 0 bis 200" in html
    unknown = await form(leader, f"{path}/preview", date=TUESDAY, group_id="gibtsnicht")
    assert unknown.status == 422 and "Gruppe: bitte prüfen" in await unknown.text()

    preview = await form(leader, f"{path}/preview", date=TUESDAY, group_id="ez", service_points_left="1")
    html = await preview.text()
    assert preview.status == 200 and "Vorschau: 2 Termine betroffen" in html
    assert "2 Termine werden verlegt, 0 abgesagt. Noch ist nichts geändert." in html
    moved_ids = re.findall(r'<tr id="m-([0-9a-f-]+)"', html)
    assert len(moved_ids) == 2 and other_group["id"] not in moved_ids
    assert set(moved_ids) <= {b["id"] for b in booked}
    # The next equivalent free slots: later that day on the point that stays.
    assert "verlegen auf Dienstag, 3. März 2026, 08:15 Uhr, Platz 1" in html
    assert "verlegen auf Dienstag, 3. März 2026, 08:30 Uhr, Platz 1" in html
    assert "Eingangszone, Platz 2" in html and "Mitteilung einer Veränderung (persönlich)" in html  # names
    preview_id = re.search(r'name="preview_id" value="([^"]+)"', html)
    assert preview_id
    # Two customers book at 09:00 while the leader reads the preview: the one on point 2, which the
    # preview did not see, is named on the result page for a look, and nothing happens to it.
    late = [await book(client, TUESDAY, "09:00") for _ in range(2)]
    before = await pool.fetchval("SELECT count(*) FROM outbox")
    # The confirmation carries what the preview was made for; the day's capacity goes to the catalog.
    assert '<input type="hidden" name="date" value="2026-03-03">' in html
    chosen = {"date": TUESDAY, "group_id": "ez", "service_points_left": "1"}
    catalog = pages_gateway.upstreams["catalog"]

    applied = await form(leader, f"{path}/apply", preview_id=preview_id.group(1), **chosen)
    html = await applied.text()
    assert applied.status == 200 and "Die Änderung ist angewendet: 2 Termine verlegt, 0 abgesagt" in html
    assert "eingetragen als nur Serviceplatz 1 (auf" in html
    assert "Bitte einzeln prüfen" in html and "Dienstag, 3. März 2026, 09:00 Uhr, Termin" in html
    assert sum(f'href="/staff/appointments/{a["id"]}"' in html for a in late) == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before + 2
    closures = [c for c in catalog.calls if c["method"] == "POST" and c["path"].endswith("/closures")]
    assert [c["path"] for c in closures] == [f"/api/v1/admin/locations/{HERE}/closures"]
    assert json.loads(closures[0]["body"]) == {
        "first": TUESDAY,
        "last": TUESDAY,
        "group_id": "ez",
        "reason": "Massenänderung",
        "service_points_left": 1,
    }
    again = await form(leader, f"{path}/apply", preview_id=preview_id.group(1), **chosen)
    html = await again.text()
    assert again.status == 200 and "Diese Änderung wurde bereits angewendet" in html
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before + 2
    entries = await audit_rows(pages_gateway, entity="mass_change")
    assert len(entries) == 3 and all(e["location"] == HERE for e in entries)  # preview, apply twice
    # The closure the confirmation saves is in the log as what it is, a closure, with its own route.
    saved = await audit_rows(pages_gateway, entity="closure")
    assert [(e["route"], e["location"]) for e in saved] == [
        ("/api/v1/admin/locations/{location_id}/closures", HERE)
    ] * 2
    # Other values than the preview's are refused, and nothing moves.
    other = await form(
        leader, f"{path}/apply", preview_id=preview_id.group(1), **{**chosen, "date": "2026-03-04"}
    )
    assert other.status == 422 and await pool.fetchval("SELECT count(*) FROM outbox") == before + 2

    garbage = await form(leader, f"{path}/apply", preview_id="kein-vorschau", **chosen)
    assert garbage.status == 422 and "Vorschau: bitte prüfen" in await garbage.text()
    # A preview that does not exist moves nothing, and the closure saved for it is taken back.
    catalog.answer = {"id": 77, "published_revision": 12}
    unknown_preview = await form(
        leader, f"{path}/apply", preview_id="00000000-0000-0000-0000-000000000000", **chosen
    )
    html = await unknown_preview.text()
    assert unknown_preview.status == 404 and "Diese Vorschau gibt es nicht" in html
    # The form shows what was sent (not today, not the whole location), for a new preview of the same.
    assert f'name="date" required value="{TUESDAY}"' in html
    assert '<option value="ez" selected>Gruppe Eingangszone</option>' in html
    assert 'name="service_points_left" min="0" max="200" required value="1"' in html
    writes = [(c["method"], c["path"]) for c in catalog.calls if c["method"] in ("POST", "DELETE")]
    assert writes[-2:] == [
        ("POST", f"/api/v1/admin/locations/{HERE}/closures"),
        ("DELETE", "/api/v1/admin/closures/77"),
    ]
    catalog.answer = None
    # Closing the whole location is for its administrators: a group leader is not offered it.
    assert '<option value="">Ganzer Standort</option>' not in await (await leader.get(path)).text()
    whole = await form(leader, f"{path}/preview", date=TUESDAY, service_points_left="0")
    assert whole.status == 422 and "nur die Standort-Administration" in await whole.text()
    location_admin = await signed_in(pages_gateway, "standortleitung", Role.LOCATION_ADMIN)
    assert '<option value="">Ganzer Standort</option>' in await (await location_admin.get(path)).text()
    # Another location's leader may not preview here.
    elsewhere = await signed_in(pages_gateway, "leitung-anderswo", Role.GROUP_LEADER, THERE)
    refused = await form(elsewhere, f"{path}/preview", date=TUESDAY, service_points_left="0")
    assert refused.status == 403 and "Mustermann" not in await refused.text()


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_the_preview_refuses_more_places_left_than_the_group_has_as_the_confirmation_would(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    """ "5 places stay" for a group of 3 restricts nothing: the preview showed nobody affected, and its
    confirmation was then refused by the catalog (422 `too_many_service_points`) with a vague "bitte
    prüfen". Now the preview refuses it first, and both say the same: how many places there are."""
    await book(client, TUESDAY, "08:00")
    catalog = pages_gateway.upstreams["catalog"]
    catalog.answers[f"/api/v1/admin/locations/{HERE}"] = {
        "id": HERE,
        "groups": [{"id": "ez", "service_points": 3}, {"id": "lt", "service_points": 2}],
        "windows": [],
    }
    admin = await signed_in(pages_gateway, "standortleitung-plaetze", Role.LOCATION_ADMIN)
    path = f"/staff/locations/{HERE}/mass-change"
    line = "Verbleibende Serviceplätze: höchstens 3, so viele Serviceplätze hat die Gruppe."
    too_many = await form(admin, f"{path}/preview", date=TUESDAY, group_id="ez", service_points_left="5")
    html = await too_many.text()
    assert too_many.status == 422 and line in html, html
    assert 'aria-describedby="mc-points-hint mc-points-error" aria-invalid="true"' in html
    assert 'name="service_points_left" min="0" max="200" required value="5"' in html  # as typed
    whole = await form(admin, f"{path}/preview", date=TUESDAY, service_points_left="5")
    assert whole.status == 422
    assert "höchstens 3, so viele Serviceplätze hat die größte Gruppe des Standorts." in await whole.text()
    assert await pool.fetchval("SELECT count(*) FROM mass_changes") == 0  # no preview stored
    # As many as the group has restricts nothing either, but it is no slip: the preview is shown.
    fits = await form(admin, f"{path}/preview", date=TUESDAY, group_id="ez", service_points_left="3")
    assert fits.status == 200 and "Vorschau" in await fits.text()
    preview_id = re.search(r'name="preview_id" value="([^"]+)"', await fits.text())
    assert preview_id

    # The confirmation of a preview made before the group shrank: the catalog refuses, in the same words.
    catalog.status = 422
    catalog.answer = {
        "error": {
            "code": "validation_error",
            "message": "Invalid service_points_left: the group has 3 service points.",
            "details": [
                {
                    "field": "service_points_left",
                    "message": "the group has 3 service points",
                    "type": "too_many_service_points",
                }
            ],
        }
    }
    chosen = {"date": TUESDAY, "group_id": "ez", "service_points_left": "3"}
    refused = await form(admin, f"{path}/apply", preview_id=preview_id.group(1), **chosen)
    html = await refused.text()
    catalog.status, catalog.answer = 200, None
    assert refused.status == 422 and line in html, html


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_a_mass_change_through_the_api_saves_the_days_capacity_as_the_page_does(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API client's confirmation that names day, group and points closes or restricts the day in the
    catalog first, so that the places the moved appointments leave are not offered again; a failed one
    takes the closure back; one that names none only moves, as before."""
    for _ in range(3):
        await book(client, TUESDAY, "08:00")
    leader = await signed_in(pages_gateway, "gruppenleitung-api", Role.GROUP_LEADER)
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    chosen = {"date": TUESDAY, "group_id": "ez", "service_points_left": 1}
    preview = await leader.post(f"{base}/preview", json=chosen)
    assert preview.status == 201, await preview.text()
    catalog = pages_gateway.upstreams["catalog"]
    catalog.answer = {"id": 91, "published_revision": 4}

    gone = await leader.post(f"{base}/apply", json={"preview_id": str(uuid.uuid4()), **chosen})
    assert gone.status == 404
    writes = [(c["method"], c["path"]) for c in catalog.calls if c["method"] in ("POST", "DELETE")]
    assert writes == [
        ("POST", f"/api/v1/admin/locations/{HERE}/closures"),
        ("DELETE", "/api/v1/admin/closures/91"),
    ]

    # The moves wait until booking's copy of the location has the catalog's revision with the closure (it
    # travels as an event), so that the places they free are not sold again on a day still open there.
    apply_body = {"preview_id": (await preview.json())["id"], **chosen}
    applying = asyncio.create_task(leader.post(f"{base}/apply", json=apply_body))
    await asyncio.sleep(0.5)
    assert (
        not applying.done()
        and await pool.fetchval("SELECT count(*) FROM mass_changes WHERE applied_at IS NOT NULL") == 0
    )
    points_left = Closure(first=date(2026, 3, 3), last=date(2026, 3, 3), group_id="ez", service_points_left=1)
    await configure(pool, factory.location(revision=4, closures=[points_left]))
    applied = await applying
    answer = await applied.json()
    assert applied.status == 200 and len(answer["moved"]) == 2, answer
    closures = [c for c in catalog.calls if c["method"] == "POST" and c["path"].endswith("/closures")]
    assert len(closures) == 2 and json.loads(closures[-1]["body"]) == {
        "first": TUESDAY,
        "last": TUESDAY,
        "group_id": "ez",
        "reason": "Massenänderung",
        "service_points_left": 1,
    }
    # The whole location is for its administrators, through the API as on the page: nothing is saved.
    whole = await leader.post(
        f"{base}/apply", json={"preview_id": str(uuid.uuid4()), "date": TUESDAY, "service_points_left": 0}
    )
    assert whole.status == 403 and len([c for c in catalog.calls if c["method"] == "POST"]) == 2
    # A revision that does not arrive in time: nothing moves, the closure is taken back, the client may retry.
    monkeypatch.setattr(mass_change, "CATALOG_WAIT_SECONDS", 0.3)
    catalog.answer = {"id": 92, "published_revision": 9}
    again = await leader.post(f"{base}/preview", json={**chosen, "date": "2026-03-04"})
    late = await leader.post(
        f"{base}/apply", json={"preview_id": (await again.json())["id"], **chosen, "date": "2026-03-04"}
    )
    assert late.status == 503 and (await late.json())["error"]["code"] == "unavailable"
    assert [(c["method"], c["path"]) for c in catalog.calls][-1] == ("DELETE", "/api/v1/admin/closures/92")
    catalog.answer = None


@pytest.mark.req("R47")
async def test_a_booking_form_names_a_missing_customer_number_together_with_the_other_fields(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    """Booking checks the number only once every other field is valid: a form with a wrong e-mail
    address and no number named the e-mail address, and after its correction the number."""
    browser = await signed_in(pages_gateway, "buchung-nummer")
    path = f"/staff/locations/{HERE}/book"
    start = factory.iso(TUESDAY, "08:00")
    fields = {"choice": "veraenderung|in_person", "start": start, "first_name": "Amal", "last_name": "Haddad"}
    refused = await form(browser, path, **fields, email="kein-at-zeichen")
    html = await refused.text()
    assert refused.status == 422
    summary = html.split('id="error-summary"', 1)[1].split("</ul>", 1)[0]
    assert "E-Mail-Adresse: bitte prüfen" in summary and "Kundennummer: bitte prüfen" in summary
    assert 'aria-describedby="f-customer_number-hint f-customer_number-error"' in html
    # With a household number instead, the number is not asked for.
    household = await form(
        browser, path, **fields, email="kein-at-zeichen", household_number="12345BG0000001"
    )
    assert household.status == 422 and "Kundennummer: bitte prüfen" not in await household.text()
