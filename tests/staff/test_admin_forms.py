"""The central administration's forms in daily use: a refusal is said in German at the field it names
and keeps what was typed (WCAG 3.3.1, 3.3.3), a role is granted for a location only when one was
chosen (R28), and English text is marked as English for a screen reader (WCAG 3.1.2)."""

from __future__ import annotations

import pytest

from services.gateway.staff import service
from shared.identity import Role
from tests.staff.conftest import Gateway, GatewayFactory, Stack, account_id
from tests.staff.test_location_page_forms import elements
from tests.staff.test_staff_pages import form_fields, post_form

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


@pytest.mark.parametrize("language", ["de", "de-x-ls", "en"])
async def test_every_mail_text_is_marked_with_its_language_for_a_screen_reader(
    gateway: Gateway, language: str
) -> None:
    """Each mail text is read out in its own language (WCAG 3.1.2): German and Leichte Sprache as German
    (Leichte Sprache with its tag, as the customer pages mark it), English as English; on the list of all
    texts each subject as well."""
    admin = await gateway.signed_in("lang-texts", (Role.ADMIN, "*"))
    text = {
        "kind": "confirmation",
        "language": language,
        "subject": "Ihr Termin",
        "text": "Guten Tag",
        "html": "<p>Guten Tag</p>",
        "customised": False,
    }
    gateway.upstreams["notifier"].answers[f"/api/v1/admin/mail-templates/confirmation/{language}"] = text
    page = elements(await (await admin.get(f"/staff/admin/texts/confirmation/{language}")).text())
    for field in ("subject", "text", "html"):
        assert page.attrs[field].get("lang") == language, field

    gateway.upstreams["notifier"].answers["/api/v1/admin/mail-templates"] = [
        {**text, "subject": f"Betreff {language}"}
    ]
    listed = await (await admin.get("/staff/admin/texts")).text()
    assert f'<td lang="{language}">Betreff {language}</td>' in listed


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
    clerk = f"/staff/admin/accounts/{await account_id(gateway, 'new-clerk')}"
    page = await (await admin.get(clerk)).text()
    assert _options(page, "grant-role")[0] == ("", False)
    assert _options(page, "grant-location")[0] == ("", False)
    assert not any(selected for _, selected in _options(page, "grant-location"))
    assert '<select id="grant-location" name="location" required' in page
    new_account = await (await admin.get("/staff/admin/accounts")).text()
    assert _options(new_account, "account-location")[0] == ("", False)

    path = f"{clerk}/grants"
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
        assert (status, where) == (303, f"{clerk}?notice=saved"), role
    grants = {(g.role, g.location) for g in (await service.get_account(gateway.staff, "new-clerk")).grants}
    assert grants == {(Role.APPOINTMENT_MANAGER, "mitte"), (Role.GROUP_LEADER, "*"), (Role.STATISTICS, "*")}


# --- refusals in German, at their field, with what was typed (WCAG 3.3.1, 3.3.3) -------------------------
ENGLISH = ("empty", "exists already", "only for group_leader", "invalid group id", "You cannot", "No such")


def _no_english(html: str) -> None:
    summary = html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert not [word for word in ENGLISH if word in summary], summary


async def test_a_refused_api_key_says_in_german_which_field_and_keeps_what_was_typed(
    gateway: Gateway,
) -> None:
    gateway.upstreams["catalog"].answers["/api/v1/locations"] = [{"id": "mitte", "name": "Bremen-Mitte"}]
    admin = await gateway.signed_in("key-form-admin", (Role.ADMIN, "*"))
    form = {"name": "Service-Center Bremen", "locations": ["mitte"]}  # no operation ticked
    status, _, html = await post_form(admin, "/staff/admin/api-keys", form)
    assert status == 422
    _no_english(html)
    page = elements(html)
    assert page.summary_links == [("#key-operations", "Erlaubte Vorgänge: bitte mindestens einen ankreuzen")]
    assert page.attrs["key-operations"].get("aria-invalid") == "true"
    assert "Erlaubte Vorgänge" in page.text["key-operations-error"]
    assert 'aria-describedby="key-operations-error"' in html  # on the fieldset
    assert page.attrs["key-name"]["value"] == "Service-Center Bremen"
    assert "checked" in page.attrs["key-locations-mitte"] and "checked" not in page.attrs["key-locations"]
    assert await service.list_api_keys(gateway.staff) == []

    status, _, html = await post_form(
        admin, "/staff/admin/api-keys", {"name": "Test", "operations": ["appointments:read"]}
    )
    assert status == 422 and elements(html).summary_links == [
        ("#key-locations", "Standorte: bitte mindestens einen ankreuzen")
    ]
    assert "checked" in elements(html).attrs["key-operations"]


async def test_a_refused_account_or_role_says_in_german_which_field_and_keeps_what_was_typed(
    gateway: Gateway,
) -> None:
    gateway.upstreams["catalog"].answers["/api/v1/locations"] = [{"id": "mitte", "name": "Bremen-Mitte"}]
    admin = await gateway.signed_in("acc-form-admin", (Role.ADMIN, "*"))
    await gateway.account("erika")
    form = {
        "username": "erika",
        "display_name": "Erika Muster",
        "role": "appointment_manager",
        "location": "mitte",
    }
    status, _, html = await post_form(admin, "/staff/admin/accounts", form)
    assert status == 409
    _no_english(html)
    page = elements(html)
    assert page.summary_links == [("#account-username", "Benutzername: gibt es schon")]
    assert "gibt es schon" in page.text["account-username-error"]
    assert page.attrs["account-display_name"]["value"] == "Erika Muster"
    assert (
        '<option value="mitte" selected>' in html and '<option value="appointment_manager" selected>' in html
    )

    path = f"/staff/admin/accounts/{await account_id(gateway, 'erika')}/grants"
    for groups, line in (
        ("Team A", "Gruppen: bitte die Kennungen der Gruppen, durch Komma getrennt (zum Beispiel mitte-ez)"),
        ("mitte-ez", "Gruppen: nur für die Rolle Serviceplatzgruppen-Leiter:in"),
    ):
        role = "group_leader" if groups == "Team A" else "appointment_manager"
        status, _, html = await post_form(admin, path, {"role": role, "location": "mitte", "groups": groups})
        assert status == 422
        _no_english(html)
        page = elements(html)
        assert page.summary_links == [("#grant-groups", line)]
        assert page.attrs["grant-groups"]["value"] == groups
        assert f'<option value="{role}" selected>' in html and '<option value="mitte" selected>' in html

    # Refusals that name no field are German too.
    own = f"/staff/admin/accounts/{await account_id(gateway, 'acc-form-admin')}"
    status, _, html = await post_form(admin, f"{own}/active", {"active": "false", "confirm": "yes"})
    assert status == 409 and "Das eigene Konto können Sie nicht deaktivieren." in html
    _no_english(html)
    status, _, html = await post_form(admin, f"{own}/grants/remove", {"role": "admin", "location": "*"})
    assert status == 409 and "Die Rolle Administrator:in können Sie sich nicht selbst entziehen." in html


async def test_a_refused_location_staff_form_keeps_the_name_and_the_ticked_roles(gateway: Gateway) -> None:
    location_admin = await gateway.signed_in("staff-form-la", (Role.LOCATION_ADMIN, "mitte"))
    form = {"username": "niemand", "roles": ["group_leader"], "groups": "mitte-ez"}
    status, _, html = await post_form(location_admin, "/staff/locations/mitte/staff-roles", form)
    assert status == 404
    _no_english(html)
    page = elements(html)
    assert page.summary_links == [
        ("#staff-username", "Benutzername: ein Konto mit diesem Namen gibt es nicht")
    ]
    assert page.attrs["staff-username"]["value"] == "niemand"
    assert (
        "checked" in page.attrs["staff-roles-group_leader"]
        and page.attrs["staff-groups"]["value"] == "mitte-ez"
    )


async def test_a_location_staff_form_without_a_username_says_the_name_is_missing(gateway: Gateway) -> None:
    """With the browser's check bypassed, an empty name was answered "no account of this name"."""
    location_admin = await gateway.signed_in("staff-form-la-empty", (Role.LOCATION_ADMIN, "mitte"))
    for username in ("", "   "):
        form = {"username": username, "roles": ["appointment_manager"], "groups": ""}
        status, _, html = await post_form(location_admin, "/staff/locations/mitte/staff-roles", form)
        assert status == 422, username
        page = elements(html)
        assert page.summary_links == [("#staff-username", "Benutzername: fehlt")]
        assert page.attrs["staff-username"].get("aria-invalid") == "true"
        assert "checked" in page.attrs["staff-roles"]  # the first role, appointment manager


async def test_the_catalogs_admin_forms_say_in_german_which_field_and_keep_what_was_typed(
    stack: Stack,
) -> None:
    admin = stack.admin
    # A location whose id exists.
    location = {
        "id": "mitte",
        "name": "Mitte neu",
        "street": "Weg 1",
        "postcode": "28195",
        "hotline": "0421 1",
    }
    status, _, html = await post_form(admin, "/staff/admin/locations", location)
    assert status == 409
    page = elements(html)
    assert page.summary_links == [("#loc-id", "Kennung: gibt es schon")]
    assert page.attrs["loc-name"]["value"] == "Mitte neu" and page.attrs["loc-street"]["value"] == "Weg 1"
    assert "gibt es schon" in page.text["loc-id-error"]

    # An allow-list entry that is no address.
    status, _, html = await post_form(
        admin, "/staff/admin/allow-list", {"entry": "service-center", "note": "SC"}
    )
    assert status == 422
    page = elements(html)
    assert page.summary_links == [
        ("#allow-entry", "Adresse oder Domain: bitte eine E-Mail-Adresse (name@domain) oder @domain")
    ]
    assert (
        page.attrs["allow-entry"]["value"] == "service-center" and page.attrs["allow-note"]["value"] == "SC"
    )


async def test_a_refused_concern_keeps_every_edit_and_names_the_link_that_is_wrong(stack: Stack) -> None:
    """Fifteen minutes of edits to names, three-language notes, documents and links must not be lost
    because one link starts with http://."""
    admin = stack.admin
    path = "/staff/admin/concerns/neuantrag"
    fields = dict(form_fields(await (await admin.get(path)).text(), path))
    edits = {
        "name_en": "New application",
        "info_de": "Bitte alle Unterlagen mitbringen.",
        "info_en": "Please bring all documents.",
        "doc_de": ["Personalausweis", "Mietvertrag", ""],
        "doc_en": ["Identity card", "", ""],
        "link_url": ["http://www.jobcenter-bremen.example/video", ""],
        "link_de": ["Erklärvideo", ""],
        "group_kinds": ["entrance_zone"],
    }
    sent = {k: v for k, v in {**fields, **edits}.items() if k != "csrf_token"}
    status, _, html = await post_form(admin, path, sent)
    assert status == 422
    _no_english(html)
    page = elements(html)
    assert page.summary_links == [
        ("#link-1-url", "Link 1: Adresse: bitte eine Adresse, die mit https:// beginnt")
    ]
    assert "https://" in page.text["link-1-url-error"]
    assert page.attrs["link-1-url"].get("aria-invalid") == "true"
    again = form_fields(html, path)
    assert ("info_en", "Please bring all documents.") in again and ("name_en", "New application") in again
    assert ("doc_de", "Mietvertrag") in again and ("doc_en", "Identity card") in again
    assert ("link_url", "http://www.jobcenter-bremen.example/video") in again and (
        "link_de",
        "Erklärvideo",
    ) in again
    stored = await (await admin.get("/api/v1/admin/concerns/neuantrag")).json()
    assert stored["info"].get("en") is None and stored["documents"] == []


async def test_the_dead_letter_page_says_in_german_that_a_service_does_not_answer(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(urls={"notifier": "http://127.0.0.1:9"})  # nothing listens there
    gateway.upstreams["reporting"].answers["/api/v1/admin/dead-letters"] = []
    admin = await gateway.signed_in("dead-admin", (Role.ADMIN, "*"))
    html = await (await admin.get("/staff/admin/dead-letters")).text()
    assert "Die Liste ist gerade nicht abrufbar: Ein Dienst antwortet gerade nicht" in html
    assert "not available" not in html


@pytest.mark.req("R14")
async def test_a_refused_new_concern_keeps_what_was_typed_and_names_the_field(stack: Stack) -> None:
    """An administrator types a new concern whose id exists already: the form comes back as typed (the
    name, the ticked group kinds, the duration), the summary names the field in German and leads to it."""
    admin = stack.admin
    typed = {
        "id": "neuantrag",
        "name_de": "Neuantrag für Selbstständige",
        "group_kinds": ["benefits_team"],
        "default_duration_minutes": "45",
    }
    status, _, html = await post_form(admin, "/staff/admin/concerns", typed)
    assert status == 409, html
    page = elements(html)
    assert page.summary_links == [("#c-id", "Kennung: gibt es schon")]
    assert page.attrs["c-id"].get("aria-invalid") == "true" and "gibt es schon" in page.text["c-id-error"]
    assert page.attrs["c-id"]["value"] == "neuantrag"
    assert page.attrs["c-name"]["value"] == "Neuantrag für Selbstständige"
    assert (
        "checked" in page.attrs["c-kind-benefits_team"]
        and "checked" not in page.attrs["c-kind-entrance_zone"]
    )
    assert page.attrs["c-duration"]["value"] == "45"

    # A duration out of range: named by its label, linked to its field, the rest still as typed.
    typed = {**typed, "id": "gruendung", "default_duration_minutes": "500"}
    status, _, html = await post_form(admin, "/staff/admin/concerns", typed)
    assert status == 422, html
    page = elements(html)
    assert page.summary_links == [("#c-duration", "Übliche Dauer in Minuten: ist zu groß")]
    assert (
        page.attrs["c-duration"].get("aria-invalid") == "true" and page.attrs["c-duration"]["value"] == "500"
    )
    assert page.attrs["c-id"]["value"] == "gruendung" and "aria-invalid" not in page.attrs["c-id"]
    concerns = await (await admin.get("/api/v1/admin/concerns")).json()
    assert "gruendung" not in {c["id"] for c in concerns}


async def test_easy_language_texts_of_a_concern_are_marked_for_a_screen_reader(gateway: Gateway) -> None:
    """Leichte Sprache fields carry `de-x-ls`, as the customer pages and the mail texts mark it
    (WCAG 3.1.2), beside the English ones; German, the page's language, stays unmarked."""
    admin = await gateway.signed_in("lang-easy", (Role.ADMIN, "*"))
    gateway.upstreams["catalog"].answers["/api/v1/admin/concerns/neuantrag"] = {
        **CONCERN,
        "name": {"de": "Neuantrag stellen", "en": "New application", "de-x-ls": "Einen Antrag stellen"},
        "documents": [{"de": "Ausweis", "en": "ID card", "de-x-ls": "Ausweis"}],
        "links": [{"url": "https://example.org/", "label": {"de": "Mehr", "en": "More", "de-x-ls": "Mehr"}}],
    }
    page = elements(await (await admin.get("/staff/admin/concerns/neuantrag")).text())
    for field in ("name_ls", "info_ls", "doc-1-ls", "link-1-ls"):
        assert page.attrs[field].get("lang") == "de-x-ls", field
    for field in ("name_en", "info_en", "doc-1-en", "link-1-en"):
        assert page.attrs[field].get("lang") == "en", field
    assert "lang" not in page.attrs["name_de"] and "lang" not in page.attrs["doc-1-de"]
