"""The central administration's forms in daily use: a refusal is said in German at the field it names
and keeps what was typed (WCAG 3.3.1, 3.3.3), a role is granted for a location only when one was
chosen (R28), and English text is marked as English for a screen reader (WCAG 3.1.2)."""

from __future__ import annotations

import pytest

from services.gateway.staff import service
from shared.identity import Role
from tests.staff.conftest import Gateway
from tests.staff.test_location_page_forms import elements
from tests.staff.test_staff_pages import post_form

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

CONCERN = {
    "id": "neuantrag",
    "name": {"de": "Neuantrag stellen", "en": "New application"},
    "info": {"de": "Bitte Unterlagen mitbringen.", "en": "Please bring your documents."},
    "group_kinds": ["entrance_zone"],
    "documents": [],
    "links": [],
    "default_duration_minutes": 30,
    "emergency": False,
    "sensitive": False,
    "active": True,
}


async def test_english_texts_are_marked_as_english_for_a_screen_reader(gateway: Gateway) -> None:
    """An English mail text or concern name read with German pronunciation is hard to understand."""
    admin = await gateway.signed_in("lang-admin", (Role.ADMIN, "*"))
    gateway.upstreams["notifier"].answers["/api/v1/admin/mail-templates/confirmation/en"] = {
        "kind": "confirmation",
        "language": "en",
        "subject": "Your appointment",
        "text": "Hello",
        "html": "<p>Hello</p>",
        "customised": False,
    }
    page = elements(await (await admin.get("/staff/admin/texts/confirmation/en")).text())
    for field in ("subject", "text", "html"):
        assert page.attrs[field].get("lang") == "en", field

    gateway.upstreams["catalog"].answers["/api/v1/admin/concerns/neuantrag"] = CONCERN
    page = elements(await (await admin.get("/staff/admin/concerns/neuantrag")).text())
    for field in ("name_en", "info_en"):
        assert page.attrs[field].get("lang") == "en", field
    assert "lang" not in page.attrs["name_de"] and "lang" not in page.attrs["info_de"]


def _options(html: str, select_id: str) -> list[tuple[str, bool]]:
    """The options of a select: (value, selected)."""
    import re

    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert found, select_id
    return [
        (value, bool(selected))
        for value, selected in re.findall(r'<option value="([^"]*)"( selected)?>', found.group(1))
    ]


@pytest.mark.req("R28")
async def test_a_location_role_is_granted_only_for_a_location_the_administrator_chose(
    gateway: Gateway,
) -> None:
    """A new clerk at Mitte must not see every location's appointments because the administrator pressed
    the button before choosing: the forms start with "Bitte wählen", and a location role without a
    location is refused in German. The central roles need none."""
    admin = await gateway.signed_in("grant-admin", (Role.ADMIN, "*"))
    await gateway.account("new-clerk")
    page = await (await admin.get("/staff/admin/accounts/new-clerk")).text()
    assert _options(page, "role")[0] == ("", False) and _options(page, "location")[0] == ("", False)
    assert not any(selected for _, selected in _options(page, "location"))
    assert '<select id="location" name="location" required' in page
    new_account = await (await admin.get("/staff/admin/accounts")).text()
    assert _options(new_account, "location")[0] == ("", False)

    path = "/staff/admin/accounts/new-clerk/grants"
    status, _, html = await post_form(admin, path, {"role": "appointment_manager", "location": ""})
    assert status == 422
    assert "Standort: bitte wählen Sie einen Standort" in html
    assert (await service.get_account(gateway.staff, "new-clerk")).grants == ()
    status, _, html = await post_form(
        admin, "/staff/admin/accounts", {"username": "other-clerk", "role": "group_leader", "location": ""}
    )
    assert status == 422 and "Standort: bitte wählen Sie einen Standort" in html
    assert "other-clerk" not in [a.username for a in await service.list_accounts(gateway.staff)]

    # Chosen: the location, or explicitly all of them; a central role needs none.
    for role, location in (("appointment_manager", "mitte"), ("group_leader", "*"), ("statistics", "")):
        status, where, _ = await post_form(admin, path, {"role": role, "location": location})
        assert (status, where) == (303, "/staff/admin/accounts/new-clerk?notice=saved"), role
    grants = {(g.role, g.location) for g in (await service.get_account(gateway.staff, "new-clerk")).grants}
    assert grants == {(Role.APPOINTMENT_MANAGER, "mitte"), (Role.GROUP_LEADER, "*"), (Role.STATISTICS, "*")}
