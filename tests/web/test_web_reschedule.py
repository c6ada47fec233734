"""Moving an appointment from the manage page (R41, WCAG 3.3.4): a time chosen on the reschedule page
leads to a confirmation with the old and the new time; only its "Yes, move appointment" moves the
appointment (a form with the CSRF token), "No, keep appointment" keeps it. The old time is given up for
good after a move, so a press on a time in a list must not move it. Without JavaScript too."""

from __future__ import annotations

import asyncio
import html as markup
import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from tests.web.conftest import DESKTOP, Stack, new_context, unique_customer_number, unique_email
from tests.web.test_web_security_and_bot_defence import csrf_of, gateway_client

pytestmark = pytest.mark.timeout(90)
BERLIN = ZoneInfo("Europe/Berlin")


async def free_slots(client: TestClient[Any, Any], mode: str = "in_person") -> list[dict[str, Any]]:
    answer = await client.get(
        "/api/v1/locations/mitte/availability", params={"concern": "veraenderung", "mode": mode}
    )
    assert answer.status == 200
    return list((await answer.json())["slots"])


async def book_via_api(
    client: TestClient[Any, Any], start: str, mode: str = "in_person", phone: str | None = None
) -> tuple[str, str]:
    """An appointment booked through the public API; its id and manage token."""
    booked = await client.post(
        "/api/v1/appointments",
        json={
            "location_id": "mitte",
            "concern_id": "veraenderung",
            "start": start,
            "mode": mode,
            "customer": {
                "first_name": "Vera",
                "last_name": "Legt",
                "email": unique_email("move"),
                "customer_number": unique_customer_number(),
                **({"phone": phone} if phone else {}),
            },
        },
    )
    assert booked.status == 201, await booked.text()
    appointment = await booked.json()
    query = urlsplit(appointment["manage_url"]).query
    return str(appointment["id"]), query.removeprefix("token=").split("&")[0]


async def start_of(client: TestClient[Any, Any], appointment_id: str, token: str) -> datetime:
    answer = await client.get(f"/api/v1/appointments/{appointment_id}", headers={"X-Manage-Token": token})
    assert answer.status == 200
    return datetime.fromisoformat((await answer.json())["start"])


def same_address(one: str, other: str) -> bool:
    first, second = urlsplit(one), urlsplit(other)
    return first.path == second.path and parse_qs(first.query) == parse_qs(second.query)


def hhmm(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(BERLIN).strftime("%H:%M")


@pytest.mark.req("R41")
@pytest.mark.req("R42")
async def test_a_chosen_time_is_only_a_question_and_the_confirmation_alone_moves_the_appointment(
    stack: Stack,
) -> None:
    client = await gateway_client(stack)
    try:
        slots = await free_slots(client)
        old, new = slots[-4], slots[-9]
        appointment_id, token = await book_via_api(client, old["start"])
        base = f"/manage/{appointment_id}/reschedule"
        day = datetime.fromisoformat(new["start"]).astimezone(BERLIN).date().isoformat()

        page = await (await client.get(base, params={"token": token, "day": day})).text()
        # What a press on a time does is said before the first time, not after the last.
        hint = page.index('id="slots-hint"')
        assert hint < page.index('class="slot"')
        assert (
            "Verlegt wird Ihr Termin erst, wenn Sie das bestätigen." in page[hint : page.index("</p>", hint)]
        )
        assert "sofort" not in page

        chosen = await client.post(
            f"{base}?token={token}&day={day}",
            data={"csrf_token": csrf_of(page), "start": new["start"]},
            allow_redirects=False,
        )
        assert chosen.status == 303
        confirm_url = chosen.headers["Location"]
        assert confirm_url.startswith(f"{base}/confirm?")
        assert await start_of(client, appointment_id, token) == datetime.fromisoformat(old["start"])

        confirm = await client.get(confirm_url)
        assert confirm.status == 200
        text = await confirm.text()
        assert "<h1>Termin verlegen</h1>" in text
        assert re.search(rf"<dt>Ihr bisheriger Termin</dt><dd>[^<]*{hhmm(old['start'])} bis ", text)
        assert re.search(rf"<dt>Ihr neuer Termin</dt><dd><strong>[^<]*{hhmm(new['start'])} bis ", text)
        assert "Ja, Termin verlegen</button>" in text
        keep = re.search(r'<a class="button button-secondary" href="([^"]+)">Nein, Termin behalten</a>', text)
        assert keep and markup.unescape(keep.group(1)) == f"/manage/{appointment_id}?token={token}"
        form = re.search(r'<form method="post" action="([^"]+)">', text)
        assert form and same_address(markup.unescape(form.group(1)), confirm_url)
        # Reloading the question, or sending it without the form's token, moves nothing.
        assert (await client.get(confirm_url)).status == 200
        client.session.cookie_jar.clear()
        forged = await client.post(confirm_url, data={"csrf_token": "0" * 64}, allow_redirects=False)
        assert forged.status == 403
        assert await start_of(client, appointment_id, token) == datetime.fromisoformat(old["start"])

        text = await (await client.get(confirm_url)).text()
        moved = await client.post(confirm_url, data={"csrf_token": csrf_of(text)}, allow_redirects=False)
        assert moved.status == 303
        assert moved.headers["Location"] == f"/manage/{appointment_id}?token={token}&done=rescheduled"
        assert await start_of(client, appointment_id, token) == datetime.fromisoformat(new["start"])
    finally:
        await client.close()


@pytest.mark.req("R42")
async def test_a_time_taken_meanwhile_is_an_error_of_the_named_group_of_times(stack: Stack) -> None:
    """The error summary's link leads to the group of times; a screen reader says its name and the error."""
    client = await gateway_client(stack)
    try:
        slots = await free_slots(client)
        appointment_id, token = await book_via_api(client, slots[-5]["start"])
        # A time from a page loaded long ago that is no longer in the list of free times.
        taken = {"start": (datetime.fromisoformat(slots[-10]["start"]) + timedelta(minutes=1)).isoformat()}
        base = f"/manage/{appointment_id}/reschedule"
        day = datetime.fromisoformat(taken["start"]).astimezone(BERLIN).date().isoformat()
        page = await (await client.get(base, params={"token": token, "day": day})).text()
        answer = await client.post(
            f"{base}?token={token}&day={day}",
            data={"csrf_token": csrf_of(page), "start": taken["start"]},
            allow_redirects=False,
        )
        assert answer.status == 422
        html = await answer.text()
        assert '<a href="#field-slots">Dieser Termin ist nicht mehr frei.' in html
        group = re.search(r'<div id="field-slots"[^>]*>', html)
        assert group
        assert 'role="group"' in group.group(0) and 'aria-labelledby="slots-title"' in group.group(0)
        described = re.search(r'aria-describedby="([^"]+)"', group.group(0))
        assert described and set(described.group(1).split()) == {"slots-hint", "slots-error"}
        assert 'id="slots-error"' in html and 'id="slots-title"' in html
        assert await start_of(client, appointment_id, token) == datetime.fromisoformat(slots[-5]["start"])
    finally:
        await client.close()


@pytest.mark.req("R41")
async def test_without_javascript_a_customer_keeps_the_appointment_with_no_and_moves_it_with_yes(
    stack: Stack, browser: Browser
) -> None:
    client = await gateway_client(stack)
    context = await new_context(browser, DESKTOP, java_script_enabled=False)
    try:
        slots = await free_slots(client)
        appointment_id, token = await book_via_api(client, slots[-6]["start"])
        page = await context.new_page()
        await page.goto(f"{stack.gateway_url}/manage/{appointment_id}?token={token}")
        await page.get_by_role("link", name="Anderen Tag oder andere Uhrzeit wählen").click()
        await page.locator(".calendar td.has-slots a").last.click()
        slot = page.locator("button.slot:not(.slot-evening)").first
        new_time = (await slot.inner_text()).strip()[:5]
        await slot.click()

        await expect(page.get_by_role("heading", level=1)).to_have_text("Termin verlegen")
        await expect(page.locator("main")).to_contain_text(hhmm(slots[-6]["start"]))
        await page.get_by_role("link", name="Nein, Termin behalten").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin")
        await expect(page.get_by_role("status")).to_have_count(0)
        assert await start_of(client, appointment_id, token) == datetime.fromisoformat(slots[-6]["start"])

        await page.go_back()
        await page.get_by_role("button", name="Ja, Termin verlegen").click()
        await expect(page.get_by_role("status")).to_contain_text("Ihr Termin wurde verschoben.")
        await expect(page.locator("main")).to_contain_text(f"{new_time} bis")
        moved = await start_of(client, appointment_id, token)
        assert moved.astimezone(BERLIN).strftime("%H:%M") == new_time
    finally:
        await context.close()
        await client.close()


async def fill(client: TestClient[Any, Any], start: str) -> None:
    """Other customers take every place left at this time."""
    for _ in range(50):
        booked = await client.post(
            "/api/v1/appointments",
            json={
                "location_id": "mitte",
                "concern_id": "veraenderung",
                "start": start,
                "mode": "in_person",
                "customer": {
                    "first_name": "Fritz",
                    "last_name": "Voll",
                    "email": unique_email("fill"),
                    "customer_number": unique_customer_number(),
                },
            },
        )
        if booked.status != 201:
            assert booked.status == 409, await booked.text()
            break
    assert start not in [s["start"] for s in await free_slots(client)]


@pytest.mark.req("R41")
async def test_yes_pressed_twice_or_the_confirmation_reloaded_after_the_move_says_it_was_moved(
    stack: Stack,
) -> None:
    """The browser shows the answer to the last press. After the first press moved the appointment, its
    new time may have no place left (this appointment took one): a second press, or "Back" to the
    confirmation, says the appointment was moved, not that the time is no longer free."""
    client = await gateway_client(stack)
    try:
        slots = await free_slots(client)
        old, new = slots[-3], slots[-8]
        appointment_id, token = await book_via_api(client, old["start"])
        evening = "&evening=yes" if new.get("evening_reserved") else ""
        confirm_url = (
            f"/manage/{appointment_id}/reschedule/confirm?token={token}&start={new['start']}{evening}"
        )
        confirm_url = confirm_url.replace("+", "%2B")
        done = f"/manage/{appointment_id}?token={token}&done=rescheduled"
        text = await (await client.get(confirm_url)).text()
        assert "Ja, Termin verlegen</button>" in text
        csrf = csrf_of(text)

        # Two presses at once: booking moves it once, and both answers say so.
        presses = await asyncio.gather(
            *(client.post(confirm_url, data={"csrf_token": csrf}, allow_redirects=False) for _ in range(2))
        )
        assert [p.status for p in presses] == [303, 303]
        assert [p.headers["Location"] for p in presses] == [done, done]
        assert await start_of(client, appointment_id, token) == datetime.fromisoformat(new["start"])

        await fill(client, new["start"])
        again = await client.post(confirm_url, data={"csrf_token": csrf}, allow_redirects=False)
        assert again.status == 303, await again.text()
        assert again.headers["Location"] == done
        back = await client.get(confirm_url, allow_redirects=False)
        assert back.status == 303 and back.headers["Location"] == done
        page = await (await client.get(done)).text()
        assert "Ihr Termin wurde verschoben." in page
        assert "nicht mehr frei" not in page
        assert await start_of(client, appointment_id, token) == datetime.fromisoformat(new["start"])
    finally:
        await client.close()


@pytest.mark.req("R41")
@pytest.mark.req("R11")
async def test_the_confirmation_of_a_move_says_a_phone_appointment_stays_by_phone_and_gives_no_street(
    stack: Stack,
) -> None:
    """The last page before the move: a customer called by phone must not read a street address as the
    place of the appointment and come in person."""
    client = await gateway_client(stack)
    try:
        slots = await free_slots(client, "phone")
        appointment_id, token = await book_via_api(client, slots[-2]["start"], "phone", "0421 998877")
        new = slots[-7]
        confirm_url = f"/manage/{appointment_id}/reschedule/confirm?token={token}&start={new['start']}"
        if new.get("evening_reserved"):
            confirm_url += "&evening=yes"
        page = await client.get(confirm_url.replace("+", "%2B"))
        assert page.status == 200
        text = await page.text()
        assert "<dt>Terminart</dt><dd>Telefonisch: Wir rufen Sie unter 0421 998877 an.</dd>" in text
        location = re.search(r"<dt>Standort</dt><dd>([^<]*)(<br>)?[^<]*</dd>", text)
        assert location and location.group(1) and location.group(2) is None, location

        in_person_id, in_person_token = await book_via_api(client, (await free_slots(client))[-2]["start"])
        later = (await free_slots(client))[-7]
        other = f"/manage/{in_person_id}/reschedule/confirm?token={in_person_token}&start={later['start']}"
        if later.get("evening_reserved"):
            other += "&evening=yes"
        in_person = await (await client.get(other.replace("+", "%2B"))).text()
        assert "<dt>Terminart</dt><dd>Persönlich am Standort</dd>" in in_person
        street = re.search(r"<dt>Standort</dt><dd>[^<]+<br>([^<]+)</dd>", in_person)
        assert street and street.group(1).strip()
        assert street.group(1) not in text
    finally:
        await client.close()


@pytest.mark.req("R41")
async def test_the_list_of_new_times_does_not_offer_the_appointments_own_time(stack: Stack) -> None:
    """Its own time has a place left for others, but it is no new time: choosing it would "move" the
    appointment to where it is. From a list loaded earlier it leads back to the manage page, unmoved."""
    client = await gateway_client(stack)
    try:
        slots = await free_slots(client)
        own = slots[-11]
        appointment_id, token = await book_via_api(client, own["start"])
        assert own["start"] in [s["start"] for s in await free_slots(client)]  # a place left for others
        base = f"/manage/{appointment_id}/reschedule"
        day = datetime.fromisoformat(own["start"]).astimezone(BERLIN).date().isoformat()
        page = await (await client.get(base, params={"token": token, "day": day})).text()
        offered = re.findall(r'<button class="slot[^"]*" type="submit" name="start" value="([^"]+)"', page)
        assert offered and own["start"] not in offered

        chosen = await client.post(
            f"{base}?token={token}&day={day}",
            data={"csrf_token": csrf_of(page), "start": own["start"]},
            allow_redirects=False,
        )
        assert chosen.status == 303
        assert chosen.headers["Location"] == f"/manage/{appointment_id}?token={token}"
        assert await start_of(client, appointment_id, token) == datetime.fromisoformat(own["start"])
    finally:
        await client.close()


@pytest.mark.req("R41")
async def test_a_wrong_or_missing_manage_token_is_forbidden_in_the_api_and_not_valid_on_every_manage_page(
    stack: Stack,
) -> None:
    """The API answers 403 `forbidden` for an appointment that exists without its token and 404 only for
    an unknown id; the customer's pages say "This link is not valid" for both, and nothing changes."""
    client = await gateway_client(stack)
    try:
        slots = await free_slots(client)
        appointment_id, token = await book_via_api(client, slots[-7]["start"])
        booked_at = await start_of(client, appointment_id, token)
        api = f"/api/v1/appointments/{appointment_id}"
        for params in ({"token": "wrong"}, {}):
            for method, path in (("GET", api), ("GET", f"{api}/invitation.ics"), ("POST", f"{api}/cancel")):
                refused = await client.request(method, path, params=params)
                assert refused.status == 403, (method, path, params)
                assert (await refused.json())["error"]["code"] == "forbidden"
        unknown = await client.get(f"/api/v1/appointments/{uuid.uuid4()}", params={"token": token})
        assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "not_found"

        base = f"/manage/{appointment_id}"
        csrf = csrf_of(await (await client.get(f"{base}/cancel", params={"token": token})).text())
        new_start = slots[-3]["start"]
        for wrong in ("wrong", ""):
            for path in (base, f"{base}/cancel", f"{base}/reschedule", f"{base}/reschedule/confirm"):
                page = await client.get(path, params={"token": wrong, "start": new_start})
                assert page.status == 404, (path, wrong)
                assert "Dieser Link ist nicht gültig" in await page.text(), (path, wrong)
            for path in (f"{base}/cancel", f"{base}/reschedule/confirm"):
                posted = await client.post(
                    path,
                    params={"token": wrong, "start": new_start},
                    data={"csrf_token": csrf},
                    allow_redirects=False,
                )
                assert posted.status == 404, (path, wrong, await posted.text())
                assert "Dieser Link ist nicht gültig" in await posted.text()
        assert await start_of(client, appointment_id, token) == booked_at  # neither moved nor cancelled
        view = await client.get(api, headers={"X-Manage-Token": token})
        assert (await view.json())["status"] == "booked"
    finally:
        await client.close()
