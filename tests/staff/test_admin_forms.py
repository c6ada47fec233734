"""The central administration's forms in daily use: a refusal is said in German at the field it names
and keeps what was typed (WCAG 3.3.1, 3.3.3), a role is granted for a location only when one was
chosen (R28), and English text is marked as English for a screen reader (WCAG 3.1.2)."""

from __future__ import annotations

import pytest

from shared.identity import Role
from tests.staff.conftest import Gateway
from tests.staff.test_location_page_forms import elements

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
