"""What cannot be undone with one click asks first, without JavaScript: revoking an API key, resetting a
mail text to the standard text, removing a concern from a location, deleting a weekly window, lifting a
closure, deactivating an account and giving it a new start password. The first press shows what will
happen with the real button and "Abbrechen"; only the second changes anything."""

from __future__ import annotations

import pytest

from services.gateway.staff import service
from shared.identity import Role
from tests.staff.conftest import Gateway, Stack, account_id, audit_rows
from tests.staff.test_staff_pages import form_fields, post_form

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


def _title(html: str) -> str:
    return html.split("<title>", 1)[1].split("</title>", 1)[0]


async def test_an_api_key_is_revoked_only_after_the_administrator_confirmed_which_one(
    gateway: Gateway,
) -> None:
    admin = await gateway.signed_in("confirm-admin", (Role.ADMIN, "*"))
    key = await service.create_api_key(
        gateway.staff,
        service.Actor("test", "system"),
        name="Service-Center Bremen",
        locations=["*"],
        operations=["appointments:read"],
    )
    path = f"/staff/admin/api-keys/{key.id}/revoke"
    status, _, html = await post_form(admin, path, {})
    assert status == 200
    assert _title(html).startswith("API-Schlüssel sperren?")
    assert "„Service-Center Bremen“" in html and "nicht rückgängig" in html
    assert form_fields(html, path) == [("csrf_token", admin.csrf or ""), ("confirm", "yes")]
    assert 'href="/staff/admin/api-keys">Abbrechen' in html
    [listed] = await service.list_api_keys(gateway.staff)
    assert listed.revoked_at is None

    status, location, _ = await post_form(admin, path, {"confirm": "yes"})
    assert (status, location) == (303, "/staff/admin/api-keys?notice=revoked")
    [listed] = await service.list_api_keys(gateway.staff)
    assert listed.revoked_at is not None


async def test_a_mail_text_is_reset_to_the_standard_text_only_after_a_confirmation(gateway: Gateway) -> None:
    admin = await gateway.signed_in("confirm-text-admin", (Role.ADMIN, "*"))
    notifier = gateway.upstreams["notifier"]
    path = "/staff/admin/texts/reminder/en"
    status, _, html = await post_form(admin, path, {"reset": "true"})
    assert status == 200 and _title(html).startswith("Auf den Standardtext zurücksetzen?")
    assert "Erinnerung (Englisch)" in html
    assert dict(form_fields(html, path)) == {"csrf_token": admin.csrf, "reset": "true", "confirm": "yes"}
    assert notifier.calls == []

    status, location, _ = await post_form(admin, path, {"reset": "true", "confirm": "yes"})
    assert (status, location) == (303, "/staff/admin/texts?notice=saved")
    assert [(c["method"], c["path"]) for c in notifier.calls] == [
        ("DELETE", "/api/v1/admin/mail-templates/reminder/en")
    ]


async def test_an_account_is_deactivated_or_given_a_new_start_password_only_after_a_confirmation(
    gateway: Gateway,
) -> None:
    admin = await gateway.signed_in("confirm-acc-admin", (Role.ADMIN, "*"))
    colleague = await gateway.signed_in("colleague", (Role.APPOINTMENT_MANAGER, "mitte"))
    colleague_id = await account_id(gateway, "colleague")
    base = f"/staff/admin/accounts/{colleague_id}"

    status, _, html = await post_form(admin, f"{base}/active", {"active": "false"})
    assert status == 200 and _title(html).startswith("Konto deaktivieren?")
    assert dict(form_fields(html, f"{base}/active")) == {
        "csrf_token": admin.csrf,
        "active": "false",
        "confirm": "yes",
    }
    status, _, html = await post_form(admin, f"{base}/reset-password", {})
    assert status == 200 and _title(html).startswith("Neues Startpasswort vergeben?")
    assert "Startpasswort (wird nur jetzt angezeigt" not in html
    # Nothing happened: the colleague is still signed in with the same password.
    assert (await colleague.get("/api/v1/staff/me")).status == 200
    assert await audit_rows(gateway, entity="staff_account", entity_id=colleague_id, action="disable") == []

    status, _, html = await post_form(admin, f"{base}/reset-password", {"confirm": "yes"})
    assert status == 200 and "Startpasswort" in html and "<code>" in html
    status, location, _ = await post_form(admin, f"{base}/active", {"active": "false", "confirm": "yes"})
    assert (status, location) == (303, f"{base}?notice=disabled")
    assert not (await service.get_account(gateway.staff, "colleague")).active
    # Switching it on again takes one click.
    status, location, _ = await post_form(admin, f"{base}/active", {"active": "true"})
    assert (status, location) == (303, f"{base}?notice=enabled")


async def test_a_concern_is_removed_from_a_location_only_after_a_confirmation(stack: Stack) -> None:
    concern = {
        "id": "weiterbewilligung",
        "group_kinds": ["entrance_zone"],
        "name": {"de": "Weiterbewilligung"},
        "default_duration_minutes": 20,
    }
    assert (await stack.admin.post("/api/v1/admin/concerns", json=concern)).status == 201
    offer = {"group_id": "mitte-ez", "duration_minutes": 20, "modes": ["in_person"]}
    put = await stack.admin.put("/api/v1/admin/locations/mitte/concerns/weiterbewilligung", json=offer)
    assert put.status == 200, await put.text()
    location_admin = await stack.gateway.signed_in("confirm-la", (Role.LOCATION_ADMIN, "mitte"))
    path = "/staff/locations/mitte/concerns"
    remove = {"action": "remove", "concern_id": "weiterbewilligung"}
    status, _, html = await post_form(location_admin, path, remove)
    assert status == 200 and _title(html).startswith("Anliegen entfernen?")
    assert "„Weiterbewilligung“" in html and "Standort Bremen-Mitte" in html
    assert dict(form_fields(html, path)) == {
        "csrf_token": location_admin.csrf,
        "concern_id": "weiterbewilligung",
        "action": "remove",
        "confirm": "yes",
    }
    assert 'href="/staff/locations/mitte#concerns">Abbrechen' in html
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert sorted(o["concern_id"] for o in details["concerns"]) == ["neuantrag", "weiterbewilligung"]

    status, location, _ = await post_form(location_admin, path, {**remove, "confirm": "yes"})
    assert (status, location) == (303, "/staff/locations/mitte?saved=concerns#concerns")
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert [o["concern_id"] for o in details["concerns"]] == ["neuantrag"]


async def test_a_weekly_window_is_deleted_only_after_a_confirmation_that_names_it(stack: Stack) -> None:
    """One press of "Zeitfenster … löschen" took a weekly window away at once: its times and service
    points had to be typed again, and customers could no longer book that time."""
    leader = await stack.gateway.signed_in("confirm-leader", (Role.GROUP_LEADER, "mitte"))
    # A second window on Tuesday (Mitte's only day): taking it away restricts nothing under directive 3.3.
    afternoon = {"weekday": 1, "start": "13:00", "end": "14:00", "service_points": 2}
    added = await stack.admin.post("/api/v1/admin/groups/mitte-ez/windows", json=afternoon)
    assert added.status == 201, await added.text()
    window = (await added.json())["id"]
    path = f"/staff/windows/{window}/delete"
    status, _, html = await post_form(leader, path, {})
    assert status == 200 and _title(html).startswith("Zeitfenster löschen?")
    assert "Dienstag 13:00 bis 14:00 Uhr der Gruppe „Eingangszone“ am Standort Bremen-Mitte" in html
    assert form_fields(html, path) == [("csrf_token", leader.csrf or ""), ("confirm", "yes")]
    assert f'href="/staff/locations/mitte#window-{window}">Abbrechen' in html
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert window in [w["id"] for w in details["windows"]]

    status, location, _ = await post_form(leader, path, {"confirm": "yes"})
    assert status == 303 and location.startswith("/staff/locations/mitte?saved="), location
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert window not in [w["id"] for w in details["windows"]]


async def test_a_closure_is_lifted_only_after_a_confirmation_that_names_its_days(stack: Stack) -> None:
    """One press of "Schließung ab … aufheben" opened the closed days to bookings at once."""
    location_admin = await stack.gateway.signed_in("confirm-la", (Role.LOCATION_ADMIN, "mitte"))
    closure = {"first": "2026-03-10", "last": "2026-03-12", "group_id": "mitte-ez", "reason": "Umbau"}
    added = await stack.admin.post("/api/v1/admin/locations/mitte/closures", json=closure)
    assert added.status == 201, await added.text()
    closure_id = (await added.json())["id"]
    path = f"/staff/closures/{closure_id}/delete"
    status, _, html = await post_form(location_admin, path, {})
    assert status == 200 and _title(html).startswith("Schließung aufheben?")
    assert (
        "Die Schließung der Gruppe „Eingangszone“ am Standort Bremen-Mitte vom 10.03.2026 bis 12.03.2026"
        in html
    )
    assert "An diesen Tagen können Kundinnen und Kunden dann sofort wieder Termine buchen." in html
    assert form_fields(html, path) == [("csrf_token", location_admin.csrf or ""), ("confirm", "yes")]
    assert 'href="/staff/locations/mitte#closures">Abbrechen' in html
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert [c["id"] for c in details["closures"]] == [closure_id]

    status, location, _ = await post_form(location_admin, path, {"confirm": "yes"})
    assert (status, location) == (303, "/staff/locations/mitte?saved=closures#closures")
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert details["closures"] == []
    # One day, restricted: said so.
    one_day = {
        "first": "2026-03-17",
        "last": "2026-03-17",
        "group_id": "mitte-ez",
        "reason": "Krank",
        "service_points_left": 1,
    }
    added = await stack.admin.post("/api/v1/admin/locations/mitte/closures", json=one_day)
    assert added.status == 201, await added.text()
    status, _, html = await post_form(
        location_admin, f"/staff/closures/{(await added.json())['id']}/delete", {}
    )
    assert status == 200 and _title(html).startswith("Einschränkung aufheben?")
    assert "Die Einschränkung auf den Platz 1 der Gruppe „Eingangszone“" in html
    assert "am 17.03.2026 aufheben?" in html and "An diesem Tag können" in html
