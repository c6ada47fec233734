"""R20, R44: a closure of several days is one mass change. From the location page's closure over booked
appointments (whose files are linked) the mass change opens for all its days; its preview moves each
customer out of the whole closure, never into its later days, and confirming saves one closure for the
range. The preview counts in correct German ("1 Termin wird verlegt")."""

from __future__ import annotations

import html as markup
import json
import re
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.identity import Role
from tests.booking import factory
from tests.staff.conftest import Gateway
from tests.staff_work.conftest import HERE, Staff, book, form, signed_in

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

TUESDAY, WEDNESDAY = "2026-03-03", "2026-03-04"


def _mass_change_link(html: str) -> str:
    found = re.search(r'href="(/staff/locations/[^"]+/mass-change\?[^"]*)"', html)
    assert found, "no link to the mass change"
    return markup.unescape(found.group(1))


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_a_two_day_closure_opens_one_mass_change_that_moves_out_of_both_days_and_saves_one_closure(
    client: TestClient[Any, Any], pages_gateway: Gateway, pool: asyncpg.Pool
) -> None:
    booked = [await book(client, TUESDAY, "08:00"), await book(client, WEDNESDAY, "08:00")]
    catalog = pages_gateway.upstreams["catalog"]
    catalog.answers[f"/api/v1/admin/locations/{HERE}"] = {
        "id": HERE,
        "groups": [{"id": "ez", "service_points": 3}, {"id": "lt", "service_points": 2}],
        "windows": [],
    }
    admin = await signed_in(pages_gateway, "standortleitung", Role.LOCATION_ADMIN)
    closure = {"first": TUESDAY, "last": WEDNESDAY, "group_id": "ez", "reason": "Teamtag"}

    # The closure over both appointments: each listed with a link to its file.
    asked = await form(admin, f"/staff/locations/{HERE}/closures", **closure, service_points_left="0")
    html = await asked.text()
    assert asked.status == 409 and "Gebuchte Termine betroffen" in html
    for appointment in booked:
        assert f'<a href="/staff/appointments/{appointment["id"]}">{appointment["reference"]}</a>' in html
    assert "Stattdessen die Massenänderung für diese Tage öffnen" in html
    instead = _mass_change_link(html)
    assert f"date={TUESDAY}&last={WEDNESDAY}&group_id=ez&service_points_left=0" in instead
    # Saved anyway: the list of what is left to do links the files too, and the mass change of both days.
    saved = await form(
        admin,
        f"/staff/locations/{HERE}/closures",
        **closure,
        service_points_left="0",
        confirm_affected="true",
    )
    html = await saved.text()
    assert saved.status == 200 and "Änderung gespeichert" in html
    for appointment in booked:
        assert f'<a href="/staff/appointments/{appointment["id"]}">{appointment["reference"]}</a>' in html
    assert _mass_change_link(html) == instead

    page = await (await admin.get(instead)).text()
    assert f'name="date" required value="{TUESDAY}"' in page and f'name="last" value="{WEDNESDAY}"' in page
    preview = await form(
        admin,
        f"/staff/locations/{HERE}/mass-change/preview",
        date=TUESDAY,
        last=WEDNESDAY,
        group_id="ez",
        service_points_left="0",
    )
    html = await preview.text()
    assert preview.status == 200 and "Vorschau: 2 Termine betroffen" in html
    assert "Dienstag, 3. März 2026 bis Mittwoch, 4. März 2026" in html
    assert "2 Termine werden verlegt, 0 abgesagt" in html
    proposed = re.findall(r"verlegen auf \w+, (\d+)\. März 2026", html)
    assert len(proposed) == 2 and not {"3", "4"} & set(proposed), proposed  # after the closure
    assert f'<input type="hidden" name="last" value="{WEDNESDAY}">' in html
    preview_id = re.search(r'name="preview_id" value="([^"]+)"', html)
    assert preview_id
    before = await pool.fetchval("SELECT count(*) FROM outbox")
    posts_before = len([c for c in catalog.calls if c["method"] == "POST"])

    applied = await form(
        admin,
        f"/staff/locations/{HERE}/mass-change/apply",
        preview_id=preview_id.group(1),
        date=TUESDAY,
        last=WEDNESDAY,
        group_id="ez",
        service_points_left="0",
    )
    html = await applied.text()
    assert applied.status == 200 and "2 Termine verlegt, 0 abgesagt" in html, html
    assert "Dienstag, 3. März 2026 bis Mittwoch, 4. März 2026, Gruppe Eingangszone" in html
    # One closure for the range, one notice per customer, nobody left on the closed days.
    posts = [c for c in catalog.calls if c["method"] == "POST"][posts_before:]
    assert [c["path"] for c in posts] == [f"/api/v1/admin/locations/{HERE}/closures"]
    assert json.loads(posts[0]["body"]) == {
        "first": TUESDAY,
        "last": WEDNESDAY,
        "group_id": "ez",
        "reason": "Massenänderung",
        "service_points_left": 0,
    }
    rows = await pool.fetch("SELECT type, envelope FROM outbox ORDER BY seq OFFSET $1", before)
    assert sorted(r["envelope"]["data"]["appointment"]["id"] for r in rows) == sorted(b["id"] for b in booked)
    assert {r["type"] for r in rows} == {"appointment.rescheduled"}
    left = await pool.fetchval(
        "SELECT count(*) FROM appointments WHERE status = 'booked' AND start_at >= $1 AND start_at < $2",
        factory.at(TUESDAY, "00:00"),
        factory.at("2026-03-05", "00:00"),
    )
    assert left == 0


@pytest.mark.req("R44")
async def test_the_preview_counts_one_move_in_the_singular_and_refuses_a_range_beyond_31_days(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    await book(client, TUESDAY, "08:00")
    leader = await signed_in(pages_gateway, "gruppenleitung", Role.GROUP_LEADER)
    path = f"/staff/locations/{HERE}/mass-change/preview"
    preview = await form(leader, path, date=TUESDAY, group_id="ez", service_points_left="0")
    html = await preview.text()
    assert preview.status == 200 and "Vorschau: 1 Termin betroffen" in html
    assert "1 Termin wird verlegt, 0 abgesagt." in html and "werden verlegt" not in html

    too_long = await form(
        leader, path, date=TUESDAY, last="2026-04-03", group_id="ez", service_points_left="0"
    )
    html = await too_long.text()
    assert too_long.status == 422 and "höchstens 31 Tage insgesamt" in html
    assert 'aria-describedby="mc-last-hint mc-last-error" aria-invalid="true"' in html
    backwards = await form(leader, path, date=TUESDAY, last="2026-03-02", group_id="ez")
    assert (
        backwards.status == 422 and "Bis einschließlich: ein Tag ab dem ersten Tag" in await backwards.text()
    )


@pytest.mark.req("R44")
async def test_the_api_takes_a_range_of_at_most_31_days_and_applies_it_only_as_previewed(
    client: TestClient[Any, Any], leader: Staff
) -> None:
    await book(client, TUESDAY, "08:00")
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    chosen = {"date": TUESDAY, "group_id": "ez", "service_points_left": 0}
    too_long = await leader.post(f"{base}/preview", {**chosen, "last": "2026-04-03"})
    answer = await too_long.json()
    assert too_long.status == 422 and answer["error"]["details"][0]["field"] == "last"
    longest = await leader.post(f"{base}/preview", {**chosen, "last": "2026-04-02"})
    preview = await longest.json()
    assert longest.status == 201 and (preview["date"], preview["last"]) == (TUESDAY, "2026-04-02")
    assert all(a["proposed_start"] is None or a["proposed_start"] > "2026-04-03" for a in preview["affected"])
    # Applied as a one-day change, it would move without the rest of the closure: refused, nothing moves.
    refused = await leader.post(f"{base}/apply", {"preview_id": preview["id"], **chosen})
    assert refused.status == 422
    applied = await leader.post(
        f"{base}/apply", {"preview_id": preview["id"], **chosen, "last": "2026-04-02"}
    )
    assert applied.status == 200 and len((await applied.json())["moved"]) == 1


@pytest.mark.req("R44")
async def test_an_api_confirmation_of_several_days_saves_one_closure_for_all_of_them(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    await book(client, TUESDAY, "08:00")
    await book(client, WEDNESDAY, "08:00")
    leader = await signed_in(pages_gateway, "gruppenleitung-api", Role.GROUP_LEADER)
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    chosen = {"date": TUESDAY, "last": WEDNESDAY, "group_id": "ez", "service_points_left": 0}
    preview = await (await leader.post(f"{base}/preview", json=chosen)).json()
    assert len(preview["affected"]) == 2
    applied = await leader.post(f"{base}/apply", json={"preview_id": preview["id"], **chosen})
    assert applied.status == 200 and len((await applied.json())["moved"]) == 2
    catalog = pages_gateway.upstreams["catalog"]
    closures = [c for c in catalog.calls if c["method"] == "POST" and c["path"].endswith("/closures")]
    assert [json.loads(c["body"]) for c in closures] == [
        {
            "first": TUESDAY,
            "last": WEDNESDAY,
            "group_id": "ez",
            "reason": "Massenänderung",
            "service_points_left": 0,
        }
    ]


@pytest.mark.req("R44")
async def test_the_preview_of_several_days_names_each_appointments_day_in_its_row_header(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    """The same time on two days must not look the same: the leader judges each proposal by the day the
    customer was booked on, and the row header is what a screen reader announces for the row."""
    tuesday = await book(client, TUESDAY, "08:00")
    wednesday = await book(client, WEDNESDAY, "08:00")
    leader = await signed_in(pages_gateway, "gruppenleitung-tage", Role.GROUP_LEADER)
    preview = await form(
        leader,
        f"/staff/locations/{HERE}/mass-change/preview",
        date=TUESDAY,
        last=WEDNESDAY,
        group_id="ez",
        service_points_left="0",
    )
    html = await preview.text()
    assert preview.status == 200
    for booked, day in ((tuesday, "Dienstag, 3. März 2026"), (wednesday, "Mittwoch, 4. März 2026")):
        header = re.search(rf'<tr id="m-{booked["id"]}">\s*<th scope="row">(.*?)</th>', html, re.S)
        assert header, booked["id"]
        assert f"{day}, 08:00 Uhr" in header.group(1)

    # One day: the heading names it, and the row keeps to the time.
    one = await form(
        leader,
        f"/staff/locations/{HERE}/mass-change/preview",
        date=TUESDAY,
        group_id="ez",
        service_points_left="0",
    )
    header = re.search(rf'<tr id="m-{tuesday["id"]}">\s*<th scope="row">(.*?)</th>', await one.text(), re.S)
    assert header and header.group(1).startswith("08:00 Uhr")


@pytest.mark.req("R44")
async def test_a_day_at_the_end_of_the_calendar_is_named_as_no_day_on_the_page_and_the_api(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    """9999-12-31 plus the longest range overflowed Python's dates: a 500 with the JSON error body on the
    preview form, its link and the API's confirmation. It is no day to change, said at the field."""
    leader = await signed_in(pages_gateway, "gruppenleitung-far", Role.GROUP_LEADER)
    path = f"/staff/locations/{HERE}/mass-change"
    for far in ("9999-12-31", "0001-01-01"):
        preview = await form(leader, f"{path}/preview", date=far, group_id="ez", service_points_left="0")
        html = await preview.text()
        assert preview.status == 422, html
        assert preview.content_type == "text/html" and "Tag: bitte ein Datum wählen." in html
        linked = await leader.get(path, params={"date": far, "group_id": "ez"})
        assert linked.status == 200 and linked.content_type == "text/html"
    body = {"preview_id": "7996cf79-2ec7-411f-b9b0-909175070abb", "date": "9999-12-31", "group_id": "ez"}
    applied = await leader.post(f"/api/v1/staff/locations/{HERE}/mass-change/apply", json=body)
    assert applied.status in (404, 422), await applied.text()
    assert (await applied.json())["error"]["code"] in ("not_found", "validation_error")


@pytest.mark.req("R44")
async def test_a_day_that_is_over_is_refused_at_the_field_and_closes_nothing(
    client: TestClient[Any, Any], pages_gateway: Gateway
) -> None:
    """A mass change of a past day (a year typed wrong in January) was previewed with 0 appointments,
    "applied" and saved as a closure of that past day, as if the change had been made."""
    leader = await signed_in(pages_gateway, "gruppenleitung-past", Role.GROUP_LEADER)
    path = f"/staff/locations/{HERE}/mass-change"
    friday = "2026-02-27"  # the clock stands on Monday, 2 March 2026
    preview = await form(leader, f"{path}/preview", date=friday, group_id="ez", service_points_left="0")
    html = await preview.text()
    assert preview.status == 422 and "Tag: Der Tag ist schon vorbei" in html
    assert 'id="mc-date" name="date" required value="2026-02-27"' in html and 'aria-invalid="true"' in html
    applied = await form(
        leader,
        f"{path}/apply",
        preview_id="7996cf79-2ec7-411f-b9b0-909175070abb",
        date=friday,
        group_id="ez",
        service_points_left="0",
    )
    assert applied.status == 422 and "Tag: Der Tag ist schon vorbei" in await applied.text()
    catalog = pages_gateway.upstreams["catalog"]
    assert [c for c in catalog.calls if c["method"] == "POST"] == []
    # Today is no past day: a location that closes this morning still moves its customers.
    today = await form(leader, f"{path}/preview", date="2026-03-02", group_id="ez", service_points_left="1")
    html = await today.text()
    assert today.status == 200 and "1 Serviceplatz bleibt" in html and "nur der Serviceplatz 1." in html
