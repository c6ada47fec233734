"""Two staff members edit the same window, group, location, concern or mail text: the second save, made
in a form loaded before the first, does not silently undo the first. The catalog's and the notifier's
update routes take the `version` the client read (`expected_version`) and refuse a change made against
an older one with 409 `stale`; the staff pages send it from a hidden field and show the form again with
the values as they are now and a German "inzwischen geändert" line. API clients that do not send it keep
the old behaviour (R20, R29, R30, R10)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from shared.identity import Role
from tests.staff.conftest import (
    Gateway,
    GatewayFactory,
    Stack,
    StaffClient,
    customer,
    notifier_behind_gateway,
    wait_for_slots,
)
from tests.staff.test_location_page_forms import elements, tuesday_window
from tests.staff.test_staff_pages import _grouped, form_fields, post_form

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

# "inzwischen von jemand anderem geändert", or, where the audit log has the change, "inzwischen von
# Anna Becker (stale-leader-a) um 10:00 Uhr geändert".
MEANWHILE = "inzwischen von"
TUESDAY = "2026-03-03"
TEN = "2026-03-03T10:00:00+01:00"


def _fields(html: str, action: str) -> dict[str, list[str]]:
    """The form's fields as the browser sends them, without the form token (post_form adds the current)."""
    return _grouped([(k, v) for k, v in form_fields(html, action) if k != "csrf_token"])


def _one(fields: dict[str, list[str]], **changed: str) -> dict[str, list[str]]:
    return {**fields, **{k: [v] for k, v in changed.items()}}


async def _details(stack: Stack) -> dict[str, Any]:
    details: dict[str, Any] = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    return details


@pytest.mark.req("R20")
@pytest.mark.req("R29")
async def test_a_window_form_loaded_before_a_colleagues_change_does_not_undo_it(stack: Stack) -> None:
    """Monday morning: group leader A reduces Tuesday's window to 1 service point (a colleague is ill);
    location administrator B, whose page was loaded before, moves its end to 13:00."""
    window_id = await tuesday_window(stack)
    action = f"/staff/windows/{window_id}"
    admin_b = await stack.gateway.signed_in("stale-admin-b", (Role.LOCATION_ADMIN, "mitte"))
    old_form = _fields(await (await admin_b.get("/staff/locations/mitte")).text(), action)
    assert old_form["expected_version"][0]

    leader_a = await stack.gateway.signed_in(
        "stale-leader-a", (Role.GROUP_LEADER, "mitte"), display_name="Anna Becker"
    )
    a_form = _fields(await (await leader_a.get("/staff/locations/mitte")).text(), action)
    status, _, _ = await post_form(leader_a, action, _one(a_form, service_points="1"))
    assert status == 303

    status, _, html = await post_form(admin_b, action, _one(old_form, end="13:00"))
    assert status == 409, html
    assert "<title>Fehler:" in html and MEANWHILE in html
    # Who made the change that came in between, and when (in Bremen), as the audit log has it.
    assert "wurde inzwischen von Anna Becker (stale-leader-a) um 09:00 Uhr geändert" in html
    page = elements(html)
    assert any(target == f"#window-{window_id}" and MEANWHILE in text for target, text in page.summary_links)
    # The form shows the window as it is now (with its current version), not what B typed.
    now_form = _fields(html, action)
    assert (now_form["end"], now_form["service_points"]) == (["12:00"], ["1"])
    [window] = [w for w in (await _details(stack))["windows"] if w["id"] == window_id]
    assert (window["end"], window["service_points"]) == ("12:00", 1)

    # B makes the change again in the form as it is now: saved, A's service points stay.
    status, _, _ = await post_form(admin_b, action, _one(now_form, end="13:00"))
    assert status == 303
    [window] = [w for w in (await _details(stack))["windows"] if w["id"] == window_id]
    assert (window["end"], window["service_points"]) == ("13:00", 1)


@pytest.mark.req("R20")
async def test_a_stale_window_form_is_refused_as_stale_not_listed_as_dropping_appointments(
    stack: Stack,
) -> None:
    """B's form, loaded before A moved the window's end, would end it before a booked 10:00: the catalog
    refuses it as stale anyway, so the page says that instead of asking to confirm dropping the
    appointment for a change that will not be made."""
    await wait_for_slots(stack.admin, "mitte", "neuantrag", TUESDAY, present=TEN)
    assert (await stack.gateway.browser().post("/api/v1/appointments", json=customer(TEN))).status == 201
    window_id = await tuesday_window(stack)
    action = f"/staff/windows/{window_id}"
    admin_b = await stack.gateway.signed_in("stale-admin-b", (Role.LOCATION_ADMIN, "mitte"))
    old_form = _fields(await (await admin_b.get("/staff/locations/mitte")).text(), action)
    body = {"weekday": 1, "start": "08:00", "end": "12:30", "service_points": 2}
    assert (await stack.admin.put(f"/api/v1/admin/windows/{window_id}", json=body)).status == 200
    status, _, html = await post_form(admin_b, action, _one(old_form, end="10:00"))
    assert status == 409 and MEANWHILE in html and "Gebuchte Termine betroffen" not in html
    [window] = [w for w in (await _details(stack))["windows"] if w["id"] == window_id]
    assert window["end"] == "12:30"


@pytest.mark.req("R30")
async def test_a_group_form_and_the_location_details_loaded_before_a_change_do_not_undo_it(
    stack: Stack,
) -> None:
    admin_b = await stack.gateway.signed_in("stale-admin-b", (Role.LOCATION_ADMIN, "mitte"))
    page = await (await admin_b.get("/staff/locations/mitte")).text()
    group_form = _fields(page, "/staff/groups/mitte-ez")
    details_form = _fields(page, "/staff/locations/mitte/details")

    # Meanwhile another administrator raises the group's service points and changes the hotline.
    changed = await stack.admin.request("PATCH", "/api/v1/admin/groups/mitte-ez", json={"service_points": 3})
    assert changed.status == 200, await changed.text()
    changed = await stack.admin.request(
        "PATCH", "/api/v1/admin/locations/mitte", json={"hotline": "0421 566-1234"}
    )
    assert changed.status == 200, await changed.text()

    status, _, html = await post_form(
        admin_b, "/staff/groups/mitte-ez", _one(group_form, name="Eingangszone Mitte")
    )
    assert status == 409 and MEANWHILE in html
    assert _fields(html, "/staff/groups/mitte-ez")["service_points"] == ["3"]
    status, _, html = await post_form(
        admin_b, "/staff/locations/mitte/details", _one(details_form, street="Doventorsteinweg 48")
    )
    assert status == 409 and MEANWHILE in html
    assert _fields(html, "/staff/locations/mitte/details")["hotline"] == ["0421 566-1234"]
    details = await _details(stack)
    [group] = details["groups"]
    assert (group["name"]["de"], group["service_points"]) == ("Eingangszone", 3)
    assert (details["street"], details["hotline"]) == ("Doventorsteinweg 44", "0421 566-1234")


@pytest.mark.req("R14")
async def test_a_concern_form_loaded_before_a_colleagues_change_does_not_undo_it(stack: Stack) -> None:
    action = "/staff/admin/concerns/neuantrag"
    admin_b = await stack.gateway.signed_in("stale-central-b", (Role.ADMIN, "*"))
    old_form = _fields(await (await admin_b.get(action)).text(), action)
    changed = await stack.admin.request(
        "PATCH", "/api/v1/admin/concerns/neuantrag", json={"info": {"de": "Dauert etwa 30 Minuten."}}
    )
    assert changed.status == 200, await changed.text()
    status, _, html = await post_form(admin_b, action, _one(old_form, name_en="New application"))
    assert status == 409 and MEANWHILE in html
    assert _fields(html, action)["info_de"] == ["Dauert etwa 30 Minuten."]
    concern = await (await stack.admin.get("/api/v1/admin/concerns/neuantrag")).json()
    assert concern["info"] == {"de": "Dauert etwa 30 Minuten."} and "en" not in concern["name"]


@pytest.mark.req("R29")
async def test_the_catalog_api_refuses_a_change_against_an_older_version_and_without_one_changes_as_before(
    stack: Stack,
) -> None:
    admin = stack.admin
    window_id = await tuesday_window(stack)
    details = await _details(stack)
    [window] = [w for w in details["windows"] if w["id"] == window_id]
    [group] = details["groups"]
    concern = await (await admin.get("/api/v1/admin/concerns/neuantrag")).json()
    body = {k: window[k] for k in ("weekday", "start", "end", "service_points", "evening")}
    # Another window (a closure, the lead time) changing does not make this one stale.
    lead = await admin.put(
        "/api/v1/admin/locations/mitte/lead-time", json={"min_minutes": 60, "max_days": 28}
    )
    assert lead.status == 200
    saved = await admin.put(
        f"/api/v1/admin/windows/{window_id}",
        json={**body, "end": "12:30", "expected_version": window["version"]},
    )
    assert saved.status == 200, await saved.text()
    for method, path, change, version in (
        ("PUT", f"/api/v1/admin/windows/{window_id}", {**body, "end": "13:00"}, window["version"]),
        ("PATCH", "/api/v1/admin/groups/mitte-ez", {"service_points": 4}, "0" * 16),
        ("PATCH", "/api/v1/admin/locations/mitte", {"hotline": "0421 1"}, "0" * 16),
        ("PATCH", "/api/v1/admin/concerns/neuantrag", {"sort_order": 5}, "0" * 16),
    ):
        refused = await admin.request(method, path, json={**change, "expected_version": version})
        answer = await refused.json()
        assert refused.status == 409 and answer["error"]["code"] == "stale", (path, answer)
    after = await _details(stack)
    [window_after] = [w for w in after["windows"] if w["id"] == window_id]
    assert window_after["end"] == "12:30" and window_after["version"] != window["version"]
    assert after["groups"][0]["service_points"] == group["service_points"]
    assert after["hotline"] == details["hotline"] and after["version"] == details["version"]
    unchanged = await (await admin.get("/api/v1/admin/concerns/neuantrag")).json()
    assert unchanged == concern
    # Without `expected_version`: changed whatever happened since, as before.
    assert (
        await admin.put(f"/api/v1/admin/windows/{window_id}", json={**body, "end": "13:00"})
    ).status == 200
    patched = await admin.request("PATCH", "/api/v1/admin/concerns/neuantrag", json={"sort_order": 5})
    assert patched.status == 200
    current = await (await admin.get("/api/v1/admin/concerns/neuantrag")).json()
    assert current["sort_order"] == 5 and current["version"] != concern["version"]


# --- the mail texts: the notifier behind the gateway -------------------------------------------------
@pytest.fixture
async def texts_gateway(
    clean_db: dict[str, asyncpg.Pool], make_gateway: GatewayFactory, amqp: Any
) -> AsyncIterator[Gateway]:
    """The real notifier (its own broker names, no mail to send) behind a gateway."""
    async with notifier_behind_gateway(make_gateway, amqp) as started:
        yield started


def _text_form(html: str) -> dict[str, list[str]]:
    """The edit form of a mail text (the reset button's form posts to the same address: not its field)."""
    fields = _fields(html, "/staff/admin/texts/confirmation/de")
    assert fields.pop("reset") == ["true"]
    return fields


async def _text(admin: StaffClient) -> dict[str, Any]:
    found: dict[str, Any] = await (await admin.get("/api/v1/admin/mail-templates/confirmation/de")).json()
    return found


@pytest.mark.req("R10")
async def test_a_mail_text_form_loaded_before_a_colleagues_save_does_not_drop_their_wording(
    texts_gateway: Gateway,
) -> None:
    action = "/staff/admin/texts/confirmation/de"
    admin_a = await texts_gateway.signed_in("text-a", (Role.ADMIN, "*"))
    admin_b = await texts_gateway.signed_in("text-b", (Role.ADMIN, "*"))
    old_form = _text_form(await (await admin_b.get(action)).text())
    assert old_form["expected_version"][0] == (await _text(admin_a))["version"]

    a_form = _text_form(await (await admin_a.get(action)).text())
    a_subject = "Ihr Termin beim Jobcenter am {{ date }}"
    status, _, _ = await post_form(admin_a, action, _one(a_form, subject=a_subject))
    assert status == 303

    status, _, html = await post_form(admin_b, action, _one(old_form, text=old_form["text"][0] + "\nGruß"))
    assert status == 409 and MEANWHILE in html and "<title>Fehler:" in html
    assert "wurde inzwischen von text-a um 09:00 Uhr geändert" in html
    assert _text_form(html)["subject"] == [a_subject]  # the form shows A's wording
    stored = await _text(admin_a)
    assert stored["subject"] == a_subject and not stored["text"].endswith("Gruß")

    # The API: an older version is refused, none changes as before.
    body = {k: stored[k] for k in ("subject", "text", "html")}
    refused = await admin_a.put(
        "/api/v1/admin/mail-templates/confirmation/de",
        json={**body, "subject": "Termin", "expected_version": old_form["expected_version"][0]},
    )
    assert refused.status == 409 and (await refused.json())["error"]["code"] == "stale"
    assert (await _text(admin_a))["subject"] == a_subject
    saved = await admin_a.put(
        "/api/v1/admin/mail-templates/confirmation/de", json={**body, "subject": "Termin am {{ date }}"}
    )
    assert saved.status == 200, await saved.text()


@pytest.mark.req("R18")
@pytest.mark.req("R30")
async def test_a_lead_time_or_month_change_block_form_loaded_before_a_colleagues_change_does_not_undo_it(
    stack: Stack,
) -> None:
    """Administrator A shortens the horizon and sets a month-change block; B's page, loaded before,
    saves its lead time and lifts the block: neither undoes A's change, and the forms show it."""
    admin_b = await stack.gateway.signed_in("stale-admin-b", (Role.LOCATION_ADMIN, "mitte"))
    page = await (await admin_b.get("/staff/locations/mitte")).text()
    lead_form = _fields(page, "/staff/locations/mitte/lead-time")
    block_form = _fields(page, "/staff/locations/mitte/month-change-block")
    assert lead_form["expected_version"][0] and block_form["expected_version"][0]

    lead = await stack.admin.put(
        "/api/v1/admin/locations/mitte/lead-time", json={"min_minutes": 120, "max_days": 21}
    )
    assert lead.status == 200, await lead.text()
    block = await stack.admin.put(
        "/api/v1/admin/locations/mitte/month-change-block", json={"last_days": 1, "first_days": 1}
    )
    assert block.status == 200, await block.text()

    status, _, html = await post_form(
        admin_b, "/staff/locations/mitte/lead-time", _one(lead_form, min_minutes="30")
    )
    assert status == 409 and MEANWHILE in html and "<title>Fehler:" in html
    assert any(t == "#lead-time" and "Vorlaufzeit" in text for t, text in elements(html).summary_links)
    assert re.search(r"wurde inzwischen von the-admin um \d\d:\d\d Uhr geändert", html)
    now_lead = _fields(html, "/staff/locations/mitte/lead-time")
    assert (now_lead["min_minutes"], now_lead["max_days"]) == (["120"], ["21"])

    status, _, html = await post_form(
        admin_b, "/staff/locations/mitte/month-change-block", {**block_form, "action": ["remove"]}
    )
    assert status == 409 and MEANWHILE in html
    assert re.search(r"wurde inzwischen von the-admin um \d\d:\d\d Uhr geändert", html)
    now_block = _fields(html, "/staff/locations/mitte/month-change-block")
    assert (now_block["last_days"], now_block["first_days"]) == (["1"], ["1"])
    status, _, html = await post_form(
        admin_b, "/staff/locations/mitte/month-change-block", _one(block_form, last_days="2")
    )
    assert status == 409 and MEANWHILE in html

    details = await _details(stack)
    assert details["lead_time"]["min_minutes"] == 120 and details["lead_time"]["max_days"] == 21
    assert details["month_change_block"] == {"last_days": 1, "first_days": 1}

    # In the form as it is now, B's change is saved.
    status, _, _ = await post_form(
        admin_b, "/staff/locations/mitte/month-change-block", {**now_block, "action": ["remove"]}
    )
    assert status == 303
    assert (await _details(stack))["month_change_block"] is None
    # B saves the lead time, then sends that same form once more (another tab): B made the change between.
    status, _, _ = await post_form(admin_b, "/staff/locations/mitte/lead-time", _one(now_lead, max_days="14"))
    assert status == 303
    status, _, html = await post_form(
        admin_b, "/staff/locations/mitte/lead-time", _one(now_lead, max_days="7")
    )
    assert status == 409 and "wurde inzwischen von Ihnen selbst (in einem anderen Fenster" in html
    assert (await _details(stack))["lead_time"]["max_days"] == 14


@pytest.mark.req("R18")
async def test_the_lead_time_and_block_api_refuse_an_older_version_and_without_one_change_as_before(
    stack: Stack,
) -> None:
    admin = stack.admin
    details = await _details(stack)
    lead_version = details["lead_time"]["version"]
    block_version = details["month_change_block_version"]
    # The location's own data changing does not make the lead time or the block stale.
    assert (
        await admin.request("PATCH", "/api/v1/admin/locations/mitte", json={"hotline": "0421 2"})
    ).status == 200
    saved = await admin.put(
        "/api/v1/admin/locations/mitte/lead-time",
        json={"min_minutes": 60, "max_days": 28, "expected_version": lead_version},
    )
    assert saved.status == 200, await saved.text()
    saved = await admin.put(
        "/api/v1/admin/locations/mitte/month-change-block",
        json={"last_days": 1, "first_days": 0, "expected_version": block_version},
    )
    assert saved.status == 200, await saved.text()
    for method, path, body in (
        ("PUT", "/api/v1/admin/locations/mitte/lead-time", {"min_minutes": 0, "max_days": 56}),
        ("PUT", "/api/v1/admin/locations/mitte/month-change-block", {"last_days": 2, "first_days": 1}),
        (
            "DELETE",
            f"/api/v1/admin/locations/mitte/month-change-block?expected_version={block_version}",
            None,
        ),
    ):
        version = lead_version if "lead-time" in path else block_version
        json = {**body, "expected_version": version} if body is not None else None
        refused = await admin.request(method, path, json=json)
        answer = await refused.json()
        assert refused.status == 409 and answer["error"]["code"] == "stale", (path, answer)
    after = await _details(stack)
    assert (after["lead_time"]["min_minutes"], after["lead_time"]["max_days"]) == (60, 28)
    assert after["month_change_block"] == {"last_days": 1, "first_days": 0}
    # Without `expected_version`: as before.
    assert (await admin.request("DELETE", "/api/v1/admin/locations/mitte/month-change-block")).status == 200
    assert (
        await admin.put("/api/v1/admin/locations/mitte/lead-time", json={"min_minutes": 0, "max_days": 56})
    ).status == 200
    assert (await _details(stack))["month_change_block"] is None


@pytest.mark.req("R10")
async def test_resetting_a_mail_text_loaded_before_a_colleagues_save_does_not_drop_their_wording(
    texts_gateway: Gateway,
) -> None:
    action = "/staff/admin/texts/confirmation/de"
    admin_a = await texts_gateway.signed_in("text-a", (Role.ADMIN, "*"))
    admin_b = await texts_gateway.signed_in("text-b", (Role.ADMIN, "*"))
    old_page = await (await admin_b.get(action)).text()
    old_version = _text_form(old_page)["expected_version"][0]
    # Both forms of the page carry the version: the edit form and the reset button's.
    assert [v for k, v in form_fields(old_page, action) if k == "expected_version"] == [old_version] * 2

    a_form = _text_form(await (await admin_a.get(action)).text())
    a_subject = "Ihr Termin beim Jobcenter am {{ date }}"
    status, _, _ = await post_form(admin_a, action, _one(a_form, subject=a_subject))
    assert status == 303

    # B presses "Auf den Standardtext zurücksetzen" in the old page, then confirms.
    reset_only = {"reset": ["true"], "expected_version": [old_version]}
    status, _, confirm_page = await post_form(admin_b, action, reset_only)
    assert status == 200 and "zurücksetzen?" in confirm_page
    confirmation = _grouped([(k, v) for k, v in form_fields(confirm_page, action) if k != "csrf_token"])
    assert confirmation["expected_version"] == reset_only["expected_version"]
    status, _, html = await post_form(admin_b, action, confirmation)
    assert status == 409 and MEANWHILE in html, html
    assert _text_form(html)["subject"] == [a_subject]
    assert (await _text(admin_a))["subject"] == a_subject

    # The API: a reset against an older version is refused, one without a version resets as before.
    refused = await admin_a.request(
        "DELETE", f"/api/v1/admin/mail-templates/confirmation/de?expected_version={old_version}"
    )
    assert refused.status == 409 and (await refused.json())["error"]["code"] == "stale"
    assert (await _text(admin_a))["subject"] == a_subject
    assert (await admin_a.request("DELETE", "/api/v1/admin/mail-templates/confirmation/de")).status == 200
    assert not (await _text(admin_a))["customised"]


@pytest.mark.req("R29")
async def test_a_group_leader_saves_the_service_points_of_their_group_with_the_form_of_their_page(
    stack: Stack,
) -> None:
    """The group's form carries the version it was loaded with; the rule that lets a leader change only
    the service points counted that as a change of its own, and the leader's own form answered 403
    "Keine Berechtigung". A stale one is still refused as stale, and the name stays the administrators'."""
    leader = await stack.gateway.signed_in("stale-leader-points", (Role.GROUP_LEADER, "mitte"))
    page = await (await leader.get("/staff/locations/mitte")).text()
    group_form = _fields(page, "/staff/groups/mitte-ez")
    assert set(group_form) == {"expected_version", "service_points"}
    status, location, _ = await post_form(
        leader, "/staff/groups/mitte-ez", _one(group_form, service_points="3")
    )
    assert status == 303, location
    [group] = (await _details(stack))["groups"]
    assert group["service_points"] == 3

    # The same form again, now stale: refused as such, nothing changed.
    status, _, html = await post_form(leader, "/staff/groups/mitte-ez", _one(group_form, service_points="4"))
    assert status == 409 and MEANWHILE in html
    [group] = (await _details(stack))["groups"]
    assert group["service_points"] == 3
    # Not the name, even with the current version.
    fresh = _fields(await (await leader.get("/staff/locations/mitte")).text(), "/staff/groups/mitte-ez")
    renamed = {**fresh, "name": ["Umbenannt"]}
    status, _, _ = await post_form(leader, "/staff/groups/mitte-ez", _one(renamed, service_points="3"))
    assert status == 403
