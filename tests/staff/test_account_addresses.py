"""R34: a staff account's username names the employee (erika.muster). The account pages and the admin API
address an account by its opaque id, so that the name stays out of the browser's history, access logs and
Referer headers; old addresses with the username lead to the same page by id (the API still answers them
for existing clients, deprecated); the audit log's entries about an account name it by its id."""

from __future__ import annotations

import re
import uuid
from html import unescape

import asyncpg
import pytest
import structlog

from services.gateway.openapi import document
from services.gateway.staff import service
from shared.identity import Role
from tests.staff.conftest import Gateway, StaffClient, account_id, audit_rows
from tests.staff.test_staff_pages import post_form

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

_ADDRESS = re.compile(r'(?:href|action)="([^"]*)"')


def _addresses(html: str) -> list[str]:
    """Every address a page links to or sends a form to."""
    return [unescape(a) for a in _ADDRESS.findall(html)]


async def _page(client: StaffClient, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, path
    return await response.text()


@pytest.mark.req("R34")
async def test_the_account_pages_address_an_account_by_its_id_and_never_by_its_username(
    gateway: Gateway,
) -> None:
    gateway.upstreams["catalog"].answers["/api/v1/locations"] = [{"id": "mitte", "name": "Bremen-Mitte"}]
    run = uuid.uuid4().hex[:8]
    erika = f"erika.muster-{run}"
    admin = await gateway.signed_in(f"addr-admin-{run}", (Role.ADMIN, "*"))
    with structlog.testing.capture_logs() as logs:
        status, _, created = await post_form(
            admin,
            "/staff/admin/accounts",
            {"username": erika, "display_name": "Erika Muster", "role": "audit", "location": ""},
        )
        assert status == 200 and f"Konto {erika} angelegt" in created
        erika_id = await account_id(gateway, erika)
        page = f"/staff/admin/accounts/{erika_id}"
        assert page in _addresses(created)  # the new account's card leads to its page by id

        listing = await _page(admin, "/staff/admin/accounts")
        assert f'<a href="{page}">{erika}</a>' in listing
        html = await _page(admin, page)
        assert f"Konto {erika}" in html and "Erika Muster" in html
        seen = _addresses(created) + _addresses(listing) + _addresses(html)
        assert {f"{page}/grants", f"{page}/grants/remove", f"{page}/active", f"{page}/reset-password"} <= set(
            seen
        )

        # Every step answers with the page by id: a new role, a removed one, off and on again.
        status, where, _ = await post_form(admin, f"{page}/grants", {"role": "statistics", "location": ""})
        assert (status, where) == (303, f"{page}?notice=saved")
        status, where, _ = await post_form(admin, f"{page}/grants/remove", {"role": "audit", "location": "*"})
        assert (status, where) == (303, f"{page}?notice=saved")
        status, _, asked = await post_form(admin, f"{page}/active", {"active": "false"})
        assert status == 200 and "Konto deaktivieren?" in asked
        status, where, _ = await post_form(admin, f"{page}/active", {"active": "false", "confirm": "yes"})
        assert (status, where) == (303, f"{page}?notice=disabled")
        status, where, _ = await post_form(admin, f"{page}/active", {"active": "true"})
        assert (status, where) == (303, f"{page}?notice=enabled")
        status, _, reset_asked = await post_form(admin, f"{page}/reset-password", {})
        assert status == 200 and "Neues Startpasswort vergeben?" in reset_asked
        status, _, reset = await post_form(admin, f"{page}/reset-password", {"confirm": "yes"})
        assert status == 200 and "Neues Startpasswort" in reset
        seen += _addresses(asked) + _addresses(reset_asked) + _addresses(reset)
        seen += _addresses(await _page(admin, f"{page}?notice=saved"))
    assert page in _addresses(asked) and page in _addresses(reset_asked)  # "Abbrechen" leads back by id
    assert [a for a in seen if erika in a] == []
    assert [entry for entry in logs if erika in str(entry)] == []

    account = await service.get_account(gateway.staff, erika_id)
    assert account.active and [g.role for g in account.grants] == [Role.STATISTICS]
    # The audit log names the account by its id, and the audit page shows its username beside it.
    entries = await audit_rows(gateway, entity="staff_account", entity_id=erika_id)
    assert [e["action"] for e in entries] == [
        "create",
        "grant",
        "grant",
        "disable",
        "enable",
        "reset_password",
    ]
    assert await audit_rows(gateway, entity="staff_account", entity_id=erika) == []
    audit_page = await _page(admin, "/staff/admin/audit-log?entity=staff_account&limit=1")
    assert f"<code>{erika_id}</code> ({erika})" in audit_page


@pytest.mark.req("R34")
async def test_an_old_account_address_with_the_username_leads_to_the_page_by_id(gateway: Gateway) -> None:
    """A bookmark with the username still opens the account's page, by id; a form sent to an old address
    (a tab opened before the change) is not carried out: the page by id shows the account as it is."""
    run = uuid.uuid4().hex[:8]
    otto = f"otto.normal-{run}"
    admin = await gateway.signed_in(f"old-admin-{run}", (Role.ADMIN, "*"))
    colleague = await gateway.signed_in(otto, (Role.APPOINTMENT_MANAGER, "mitte"))
    otto_id = await account_id(gateway, otto)
    with structlog.testing.capture_logs() as logs:
        old = await admin.get(f"/staff/admin/accounts/{otto}")
        old_with_notice = await admin.get(f"/staff/admin/accounts/{otto}?notice=saved")
        status, where, _ = await post_form(
            admin, f"/staff/admin/accounts/{otto}/active", {"active": "false", "confirm": "yes"}
        )
        granted = await post_form(
            admin, f"/staff/admin/accounts/{otto}/grants", {"role": "statistics", "location": ""}
        )
        nobody = await admin.get(f"/staff/admin/accounts/max.mustermann-{run}")
    assert [entry for entry in logs if otto in str(entry)] == []
    assert (old.status, old.headers["Location"]) == (303, f"/staff/admin/accounts/{otto_id}")
    assert (old_with_notice.status, old_with_notice.headers["Location"]) == (303, old.headers["Location"])
    assert nobody.status == 404

    assert (status, where) == (303, f"/staff/admin/accounts/{otto_id}?notice=not_done")
    assert granted[:2] == (303, where)
    assert "Nicht ausgeführt" in await _page(admin, where)
    # Nothing was done: the colleague is still signed in, with the same roles; no audit entry.
    assert (await colleague.get("/api/v1/staff/me")).status == 200
    assert [g.role for g in (await service.get_account(gateway.staff, otto_id)).grants] == [
        Role.APPOINTMENT_MANAGER
    ]
    assert [e["action"] for e in await audit_rows(gateway, entity="staff_account", entity_id=otto_id)] == [
        "create"
    ]


@pytest.mark.req("R34")
@pytest.mark.req("R28")
async def test_only_administrators_reach_an_account_by_its_id(gateway: Gateway) -> None:
    run = uuid.uuid4().hex[:8]
    target = f"target-{run}"
    await gateway.account(target, (Role.AUDIT, "*"))
    target_id = await account_id(gateway, target)
    for role, location in ((Role.AUDIT, "*"), (Role.LOCATION_ADMIN, "mitte"), (Role.STATISTICS, "*")):
        other = await gateway.signed_in(f"not-admin-{role}-{run}", (role, location))
        page = f"/staff/admin/accounts/{target_id}"
        assert (await other.get(page)).status == 403, role
        assert (await other.get(f"/staff/admin/accounts/{target}")).status == 403, role
        assert (await post_form(other, f"{page}/active", {"active": "false", "confirm": "yes"}))[0] == 403
        api = f"/api/v1/admin/accounts/{target_id}"
        assert (await other.get(api)).status == 403, role
        assert (await other.post(f"{api}/disable")).status == 403, role
        assert (await other.put(f"{api}/grants", json={"grants": []})).status == 403, role
    anonymous = gateway.browser()
    assert (await anonymous.get(f"/api/v1/admin/accounts/{target_id}")).status == 401
    assert (await service.get_account(gateway.staff, target_id)).active


@pytest.mark.req("R34")
async def test_the_admin_api_addresses_an_account_by_its_id_and_still_by_its_username(
    gateway: Gateway,
) -> None:
    run = uuid.uuid4().hex[:8]
    lisa = f"lisa.beispiel-{run}"
    admin = await gateway.signed_in(f"api-admin-{run}", (Role.ADMIN, "*"))
    with structlog.testing.capture_logs() as logs:
        created = await admin.post("/api/v1/admin/accounts", json={"username": lisa, "grants": []})
        assert created.status == 201
        lisa_id = (await created.json())["account"]["id"]
        assert lisa_id == await account_id(gateway, lisa)
        base = f"/api/v1/admin/accounts/{lisa_id}"

        one = await admin.get(base)
        assert one.status == 200 and (await one.json())["username"] == lisa
        grants = await admin.put(f"{base}/grants", json={"grants": [{"role": "statistics"}]})
        assert grants.status == 200 and (await grants.json())["grants"][0]["role"] == "statistics"
        disabled = await admin.post(f"{base}/disable")
        assert disabled.status == 200 and not (await disabled.json())["active"]
        enabled = await admin.post(f"{base}/enable")
        assert enabled.status == 200 and (await enabled.json())["active"]
        reset = await admin.post(f"{base}/reset-password")
        assert reset.status == 200 and (await reset.json())["start_password"]
        assert (await admin.get(f"/api/v1/admin/accounts/{uuid.uuid4()}")).status == 404
        listed = {a["username"]: a["id"] for a in await (await admin.get("/api/v1/admin/accounts")).json()}
        assert listed[lisa] == lisa_id
    assert [entry for entry in logs if lisa in str(entry)] == []
    entries = await audit_rows(gateway, entity="staff_account", entity_id=lisa_id)
    assert [e["action"] for e in entries] == ["create", "grant", "disable", "enable", "reset_password"]

    # Existing clients that name the account by its username still work (deprecated in the document).
    by_name = await admin.get(f"/api/v1/admin/accounts/{lisa}")
    assert by_name.status == 200 and (await by_name.json())["id"] == lisa_id
    assert (await admin.post(f"/api/v1/admin/accounts/{lisa}/disable")).status == 200
    assert (await audit_rows(gateway, entity="staff_account", action="disable"))[-1]["entity_id"] == lisa_id
    own = await admin.post(f"/api/v1/admin/accounts/{await account_id(gateway, f'api-admin-{run}')}/disable")
    assert own.status == 409  # one's own account, by id as by name


@pytest.mark.req("R34")
async def test_no_username_has_the_shape_of_anaccount_id(gateway: Gateway) -> None:
    """The API reads an account in the path by its shape: an id, else a username. So no username may look
    like an id, neither through the forms nor in the database."""
    admin = await gateway.signed_in("shape-admin", (Role.ADMIN, "*"))
    lookalike = str(uuid.uuid4())
    refused = await admin.post("/api/v1/admin/accounts", json={"username": lookalike})
    assert refused.status == 422
    assert (await refused.json())["error"]["details"][0]["field"] == "username"
    status, _, html = await post_form(admin, "/staff/admin/accounts", {"username": lookalike, "role": ""})
    assert status == 422 and "wie die Kennung eines Kontos" in html
    with pytest.raises(asyncpg.CheckViolationError):
        await gateway.staff.pool.execute(
            "INSERT INTO staff_accounts"
            " (username, password_hash, created_at, updated_at, password_changed_at)"
            " VALUES ($1, 'x', now(), now(), now())",
            lookalike,
        )
    assert (
        await gateway.staff.pool.fetchval(
            "SELECT count(*) FROM staff_accounts WHERE username = $1", lookalike
        )
    ) == 0
    # A username of 32 hex digits without dashes is no id's address form, and stays a username.
    plain = uuid.uuid4().hex
    assert (await admin.post("/api/v1/admin/accounts", json={"username": plain})).status == 201
    assert (await (await admin.get(f"/api/v1/admin/accounts/{plain}")).json())["username"] == plain


@pytest.mark.req("R34")
@pytest.mark.req("R30")
async def test_a_location_administrator_sets_roles_there_by_the_accounts_id(gateway: Gateway) -> None:
    run = uuid.uuid4().hex[:8]
    clerk = f"clerk.beispiel-{run}"
    location_admin = await gateway.signed_in(f"la-{run}", (Role.LOCATION_ADMIN, "mitte"))
    await gateway.account(clerk, (Role.APPOINTMENT_MANAGER, "mitte"))
    clerk_id = await account_id(gateway, clerk)
    listed = await (await location_admin.get("/api/v1/admin/locations/mitte/staff-roles")).json()
    assert {"account_id": clerk_id, "username": clerk} in [
        {"account_id": r["account_id"], "username": r["username"]} for r in listed
    ]
    body = {"roles": ["group_leader"], "groups": ["mitte-ez"]}
    answer = await location_admin.put(f"/api/v1/admin/locations/mitte/staff-roles/{clerk_id}", json=body)
    assert answer.status == 200 and (await answer.json())["id"] == clerk_id
    assert [(g.role, g.groups) for g in (await service.get_account(gateway.staff, clerk_id)).grants] == [
        (Role.GROUP_LEADER, ("mitte-ez",))
    ]
    [entry] = await audit_rows(gateway, entity="staff_account", action="grant")
    assert (entry["entity_id"], entry["location"]) == (clerk_id, "mitte")
    elsewhere = await location_admin.put(f"/api/v1/admin/locations/nord/staff-roles/{clerk_id}", json=body)
    assert elsewhere.status == 403


def test_the_document_names_the_account_by_its_id_and_marks_the_username_deprecated() -> None:
    doc = document()
    major, minor, _ = (int(part) for part in doc["info"]["version"].split("."))
    assert (major, minor) >= (1, 5)  # the version that made the change; later ones keep it
    paths = [p for p in doc["paths"] if p.startswith("/api/v1/admin/accounts/") or "/staff-roles/" in p]
    assert paths and all(p.endswith("{account_id}") or "{account_id}/" in p for p in paths), paths
    for path in paths:
        for operation in doc["paths"][path].values():
            [param] = [p for p in operation["parameters"] if p["in"] == "path" and p["name"] != "location_id"]
            assert param["name"] == "account_id"
            id_form, name_form = param["schema"]["anyOf"]
            assert id_form["format"] == "uuid" and "deprecated" not in id_form
            assert name_form["deprecated"] is True
    assert "id" in doc["components"]["schemas"]["AccountOut"]["required"]
