"""The admin pages do what the API does, under the same rules: the central catalogue (R14), the concern
assignment of a location (R14, R30), the mail texts (R10), the policy check on each location's page (R21),
and the personnel of a location (R30)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from services.gateway.staff.pages import error_messages
from shared.errors import ValidationError
from shared.identity import Role
from tests.staff.conftest import Gateway, Stack, StaffClient, audit_rows

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


# Where a saved closure leads: back to the closures, with its id (the page says more about it there).
SAVED_CLOSURE = re.compile(r"/staff/locations/mitte\?saved=closures&closure=\d+#closures")


async def post_form(
    client: StaffClient, path: str, form: Mapping[str, str | Sequence[str]]
) -> tuple[int, str, str]:
    fields: list[tuple[str, str]] = []
    for key, value in {**form, "csrf_token": client.csrf or ""}.items():
        fields.extend((key, v) for v in ([value] if isinstance(value, str) else value))
    response = await client.post(path, data=fields)
    return response.status, response.headers.get("Location", ""), await response.text()


@pytest.mark.req("R14")
@pytest.mark.req("R30")
@pytest.mark.req("R31")
async def test_administrators_keep_the_catalogue_and_location_administrators_assign_concerns(
    stack: Stack,
) -> None:
    gateway = stack.gateway
    admin = await gateway.signed_in("page-admin", (Role.ADMIN, "*"))
    status, location, _ = await post_form(
        admin,
        "/staff/admin/concerns/neuantrag",
        {
            "name_de": "Neuantrag stellen",
            "group_kinds": ["entrance_zone"],
            "info_de": "Bearbeitung meist in 3 Wochen.",
            "doc_de": ["Personalausweis", "Mietvertrag"],
            "link_url": "https://www.jobcenter-bremen.de/video",
            "link_de": "Erklärvideo",
            "default_duration_minutes": "60",
            "emergency": "",
            "sensitive": "",
            "active": "true",
        },
    )
    assert (status, location) == (303, "/staff/admin/concerns?notice=saved")
    concern = await (await admin.get("/api/v1/admin/concerns/neuantrag")).json()
    assert concern["info"]["de"] == "Bearbeitung meist in 3 Wochen."
    assert [d["de"] for d in concern["documents"]] == ["Personalausweis", "Mietvertrag"]
    assert concern["links"][0]["url"] == "https://www.jobcenter-bremen.de/video"

    location_admin = await gateway.signed_in("page-la", (Role.LOCATION_ADMIN, "mitte"))
    status, _, page = await post_form(
        location_admin,
        "/staff/admin/concerns",
        {"id": "neu", "name_de": "Neu", "group_kinds": "entrance_zone"},
    )
    assert status == 403 and "Dafür fehlt Ihnen die Rolle" in page
    offer = {
        "concern_id": "neuantrag",
        "group_id": "mitte-ez",
        "duration_minutes": "45",
        "modes": ["in_person", "phone"],
    }
    status, location, _ = await post_form(location_admin, "/staff/locations/mitte/concerns", offer)
    assert (status, location) == (303, "/staff/locations/mitte?saved=concerns#concerns")
    public = await (await gateway.browser().get("/api/v1/locations/mitte/concerns")).json()
    assert [(c["id"], c["duration_minutes"], sorted(c["modes"])) for c in public] == [
        ("neuantrag", 45, ["in_person", "phone"])
    ]
    status, _, _ = await post_form(location_admin, "/staff/locations/nord/concerns", offer)
    assert status == 403
    # Nor through a form field that would make another location's route out of this one's.
    group = {"id": "nord-ez", "kind": "entrance_zone", "name": {"de": "Eingangszone"}, "service_points": 1}
    assert (await admin.post("/api/v1/admin/locations/nord/groups", json=group)).status == 201
    nord_offer = {**offer, "group_id": "nord-ez"}
    status, _, _ = await post_form(admin, "/staff/locations/nord/concerns", nord_offer)
    assert status == 303
    for sneaky in ("../../nord/concerns/neuantrag", "..%2F..%2Fnord%2Fconcerns%2Fneuantrag", ".."):
        status, _, page = await post_form(
            location_admin,
            "/staff/locations/mitte/concerns",
            {"action": "remove", "concern_id": sneaky},
        )
        assert status == 422, page
    public = await (await gateway.browser().get("/api/v1/locations/nord/concerns")).json()
    assert [c["id"] for c in public] == ["neuantrag"]
    entries = await audit_rows(gateway, actor="page-la", outcome="ok")  # the refused ones are not "ok"
    assert [(e["entity"], e["location"], e["route"]) for e in entries if e["entity"] == "concern_offer"] == [
        ("concern_offer", "mitte", "/api/v1/admin/locations/{location_id}/concerns/{concern_id}")
    ]


@pytest.mark.req("R21")
async def test_each_location_page_shows_where_the_location_falls_short_of_the_directive(stack: Stack) -> None:
    leader = await stack.gateway.signed_in("page-leader", (Role.GROUP_LEADER, "mitte"))
    response = await leader.get("/staff/locations/mitte")
    assert response.status == 200
    page = await response.text()
    # Mitte has one window on Tuesdays until 12:00, and the catalogue one concern only.
    assert "Termine an weniger als 4 Tagen pro Woche" in page
    assert "(Ziffer 3.3 verlangt mindestens 4). Termine gibt es an: Dienstag." in page
    assert "Kein Tag mit Terminen bis 18 Uhr" in page
    assert "Ein Pflichtanliegen fehlt im zentralen Leistungskatalog: veraenderung." in page
    # Every staff page offers the appointment work to whoever may do it (a leader manages appointments).
    nav = page.split('aria-label="Hauptnavigation"')[1].split("</nav>")[0]
    assert 'href="/staff/work"' in nav and 'href="/staff/search"' in nav
    # Each window is a form whose fields have visible labels (a list that wraps on a narrow screen).
    windows = page.split('<ul class="windows-list"', 1)[1].split("</ul>", 1)[0]
    for label in ("Tag", "Von", "Bis", "Serviceplätze", "Gültig ab", "Gültig bis"):
        assert f">{label}<" in windows, label
    # A group leader changes windows, not the location's concerns or data.
    assert "Zeitfenster hinzufügen" in page and "Anliegen speichern" not in page
    assert "Standortdaten speichern" not in page


async def nord_meeting_the_directive(admin: StaffClient) -> int:
    """Nord's entrance zone open Monday to Thursday, Thursday until 18:00 (directive 3.3); the id of
    that evening's window."""
    group = {"id": "nord-ez", "kind": "entrance_zone", "name": {"de": "Eingangszone"}, "service_points": 2}
    assert (await admin.post("/api/v1/admin/locations/nord/groups", json=group)).status == 201
    offer = {"group_id": "nord-ez", "duration_minutes": 30, "modes": ["in_person"]}
    assert (await admin.put("/api/v1/admin/locations/nord/concerns/neuantrag", json=offer)).status == 200
    for weekday in range(4):
        window = {"weekday": weekday, "start": "08:00", "end": "18:00" if weekday == 3 else "12:00"}
        answer = await admin.post(
            "/api/v1/admin/groups/nord-ez/windows", json={**window, "service_points": 2}
        )
        assert answer.status == 201, await answer.text()
    windows = (await (await admin.get("/api/v1/admin/locations/nord")).json())["windows"]
    evening = next(w["id"] for w in windows if w["end"].startswith("18:00"))
    return int(evening)


@pytest.mark.req("R21")
@pytest.mark.req("R17")
async def test_a_restriction_below_the_directive_waits_for_the_approval_an_administrator_records(
    stack: Stack,
) -> None:
    # Nord meets 3.3: Monday to Thursday, Thursday until 18:00.
    admin = stack.admin
    evening = await nord_meeting_the_directive(admin)

    # Its administrator may not take the evening away on their own (directive 3.6): nothing changes.
    location_admin = await stack.gateway.signed_in("nord-la", (Role.LOCATION_ADMIN, "nord"))
    status, _, page = await post_form(location_admin, f"/staff/windows/{evening}/delete", {"confirm": "yes"})
    assert status == 409 and "Nicht gespeichert: Diese Änderung schränkt die Zeitfenster" in page
    assert "Ab 02.03.2026: Kein Tag mit Terminen bis 18 Uhr (Ziffer 3.3 verlangt mindestens einen)." in page
    assert len((await (await admin.get("/api/v1/admin/locations/nord")).json())["windows"]) == 4
    assert "Abstimmung eintragen" not in page  # the form is the administrators'

    # An administrator records the approval on the location page; then the restriction goes through.
    approval = {
        "reference": "GBL2-2026-007",
        "approved_by": "Geschäftsbereichsleitung 2",
        "valid_from": "2026-03-01",
        "valid_until": "2026-03-31",
        "note": "Personalengpass",
    }
    status, location, _ = await post_form(admin, "/staff/locations/nord/policy-approvals", approval)
    assert (status, location) == (303, "/staff/locations/nord?saved=policy#policy")
    status, _, _ = await post_form(location_admin, f"/staff/windows/{evening}/delete", {"confirm": "yes"})
    assert status == 303
    page = await (await location_admin.get("/staff/locations/nord")).text()
    assert "(vorab abgestimmt: GBL2-2026-007)" in page and "31.03.2026" in page
    # The location administrator may not record approvals themselves.
    status, _, _ = await post_form(location_admin, "/staff/locations/nord/policy-approvals", approval)
    assert status == 403


@pytest.mark.req("R20")
async def test_the_closure_form_keeps_points_and_a_cleared_points_field_closes_nothing(stack: Stack) -> None:
    leader = await stack.gateway.signed_in("page-leader", (Role.GROUP_LEADER, "mitte"))
    day = {"first": "2026-03-10", "last": "", "group_id": "mitte-ez", "reason": "Krankheit"}
    status, _, page = await post_form(
        leader, "/staff/locations/mitte/closures", {**day, "service_points_left": ""}
    )
    assert status == 422 and "Serviceplätze, die bleiben: bitte eine ganze Zahl" in page
    assert "<title>Fehler: Standort Bremen-Mitte" in page and 'id="error-summary"' in page
    status, _, page = await post_form(
        leader, "/staff/locations/mitte/closures", {**day, "service_points_left": "x"}
    )
    assert status == 422
    backwards = {**day, "last": "2026-03-09", "service_points_left": "1"}
    status, _, page = await post_form(leader, "/staff/locations/mitte/closures", backwards)
    assert status == 422 and "Letzter Tag: darf nicht vor dem ersten Tag liegen" in page
    details = await (await stack.admin.get("/api/v1/admin/locations/mitte")).json()
    assert details["closures"] == []
    status, location, _ = await post_form(
        leader, "/staff/locations/mitte/closures", {**day, "service_points_left": "1"}
    )
    assert status == 303 and SAVED_CLOSURE.fullmatch(location), location
    page = await (await leader.get("/staff/locations/mitte")).text()
    assert "10.03.2026" in page and "nur Platz 1 bis 1" in page and "Krankheit" in page
    assert "Einschränkung ab 10.03.2026 aufheben" in page
    # A closure that is over stays for the record, folded away below the coming ones, without a button.
    # (Entered when it was still to come: one already over is refused.)
    past = {"first": "2026-02-16", "last": "2026-02-17", "group_id": "mitte-ez", "reason": "Fortbildung"}
    now = stack.gateway.clock.now()
    stack.gateway.clock.set(now - timedelta(days=14))
    assert (await stack.admin.post("/api/v1/admin/locations/mitte/closures", json=past)).status == 201
    stack.gateway.clock.set(now)
    page = await (await leader.get("/staff/locations/mitte")).text()
    coming, _, folded = page.partition("Vergangene Schließungen (1)")
    assert "Einschränkung ab 10.03.2026 aufheben" in coming and "Fortbildung" not in coming
    assert "16.02.2026" in folded and "Fortbildung" in folded and "ab 16.02.2026 aufheben" not in folded


@pytest.mark.req("R10")
async def test_administrators_change_the_mail_texts_through_the_notifiers_api(gateway: Gateway) -> None:
    admin = await gateway.signed_in("text-admin", (Role.ADMIN, "*"))
    texts = {"subject": "Ihr Termin am {{ date }}", "text": "Guten Tag", "html": "<p>Guten Tag</p>"}
    status, location, _ = await post_form(admin, "/staff/admin/texts/confirmation/de", texts)
    assert (status, location) == (303, "/staff/admin/texts?notice=saved")
    call = gateway.upstreams["notifier"].calls[-1]
    assert (call["method"], call["path"]) == ("PUT", "/api/v1/admin/mail-templates/confirmation/de")
    assert json.loads(call["body"]) == texts
    assert call["identity"]
    entry = (await audit_rows(gateway, actor="text-admin", entity="mail_template"))[-1]
    assert (entry["entity_id"], entry["changes"]) == (
        "confirmation/de",
        {"fields": ["html", "subject", "text"]},
    )
    location_admin = await gateway.signed_in("text-la", (Role.LOCATION_ADMIN, "mitte"))
    status, _, _ = await post_form(location_admin, "/staff/admin/texts/confirmation/de", texts)
    assert status == 403


@pytest.mark.req("R30")
async def test_a_location_administrator_names_the_group_leaders_of_their_location_only(
    gateway: Gateway,
) -> None:
    location_admin = await gateway.signed_in("staff-la", (Role.LOCATION_ADMIN, "mitte"))
    await gateway.account("new-leader")
    status, location, _ = await post_form(
        location_admin,
        "/staff/locations/mitte/staff-roles",
        {"username": "new-leader", "roles": ["group_leader"], "groups": "mitte-ez"},
    )
    assert (status, location) == (303, "/staff/locations/mitte/staff-roles?notice=saved")
    leader = gateway.browser()
    await leader.login("new-leader")
    grants = (await (await leader.get("/api/v1/staff/me")).json())["grants"]
    assert grants == [{"role": "group_leader", "locations": ["mitte"], "groups": ["mitte-ez"]}]
    # Not another location, and not a higher role.
    status, _, _ = await post_form(
        location_admin,
        "/staff/locations/nord/staff-roles",
        {"username": "new-leader", "roles": ["group_leader"]},
    )
    assert status == 403
    status, _, _ = await post_form(
        location_admin, "/staff/locations/mitte/staff-roles", {"username": "new-leader", "roles": ["admin"]}
    )
    assert status == 422
    # A name no account can have (a NUL, a trailing line break) is no such account, on the page.
    for name in ("new-le\x00ader", "new-leader\n"):
        form = {"username": name, "roles": ["group_leader"], "groups": "mitte-ez"}
        status, _, page = await post_form(location_admin, "/staff/locations/mitte/staff-roles", form)
        assert status == 404 and "<html" in page
        assert "Benutzername: ein Konto mit diesem Namen gibt es nicht" in page


async def test_a_form_value_the_database_refuses_is_an_error_page_not_a_json_body(gateway: Gateway) -> None:
    """The last line of defence behind the forms' checks: a NUL character in a free text reaches
    PostgreSQL, which refuses it; the administrator gets the German error page, and nothing is stored."""
    admin = await gateway.signed_in("nul-admin", (Role.ADMIN, "*"))
    form = {"name": "Service\x00Center", "locations": "mitte", "operations": "appointments:read"}
    status, _, page = await post_form(admin, "/staff/admin/api-keys", form)
    assert status == 422 and page.lstrip().startswith("<!doctype html>"), page[:200]
    assert "Bitte prüfen Sie Ihre Eingaben" in page
    keys = await (await admin.get("/api/v1/admin/api-keys")).json()
    assert keys == []


# Bodies no browser sends but any client can (with the form's CSRF token): bytes that are not UTF-8, a
# charset Python does not know, a multipart body without its end, and more than the gateway takes.
UNREADABLE_FORMS = {
    "not utf-8": (b"&name=\xff\xfe&locations=mitte", "application/x-www-form-urlencoded"),
    "unknown charset": (b"&name=x&locations=mitte", "application/x-www-form-urlencoded; charset=bogus"),
    "broken multipart": (b"\r\n--b\r\nContent-Disposition: form-data", "multipart/form-data; boundary=b"),
    "too large": (b"&name=x&pad=" + b"x" * 300_000, "application/x-www-form-urlencoded"),
}


@pytest.mark.parametrize("case", list(UNREADABLE_FORMS))
async def test_a_form_that_cannot_be_read_is_the_german_error_page_not_a_500_or_json(
    gateway: Gateway, case: str
) -> None:
    """aiohttp raises ValueError or LookupError for such a body (a 500 with the JSON error body) and
    413 in JSON beyond the limit; on the pages (a signed-in form, and the sign-in itself) it is the
    German error page with a 4xx, and nothing is stored."""
    rest, content_type = UNREADABLE_FORMS[case]
    admin = await gateway.signed_in("unreadable-admin", (Role.ADMIN, "*"))
    if content_type.startswith("multipart"):
        token = f"--b\r\nContent-Disposition: form-data; name=csrf_token\r\n\r\n{admin.csrf}".encode()
    else:
        token = f"csrf_token={admin.csrf}".encode()
    headers = {"Content-Type": content_type}
    for client, path in ((admin, "/staff/admin/api-keys"), (gateway.browser(), "/staff/login")):
        response = await client.post(path, data=token + rest, headers=headers)
        page = await response.text()
        assert response.status in (413, 422), (path, response.status, page[:300])
        assert response.content_type == "text/html" and "<!doctype html>" in page, (path, page[:200])
    assert await (await admin.get("/api/v1/admin/api-keys")).json() == []


@pytest.mark.req("R36")
async def test_the_administrators_start_page_links_the_embedding_instructions(gateway: Gateway) -> None:
    """R36: the code to put the booking into the jobcenter's homepage is for its web team."""
    admin = await gateway.signed_in("start-admin", (Role.ADMIN, "*"))
    manager = await gateway.signed_in("start-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
    assert 'href="/embed"' in await (await admin.get("/staff/")).text()
    assert 'href="/embed"' not in await (await manager.get("/staff/")).text()


class _FormFields(HTMLParser):
    """The fields a browser would send for the form whose action is `action` (text inputs, checked boxes,
    selected options, text areas), in page order."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside = action, False
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        elif not self.inside or "name" not in a:
            if tag == "option" and self.inside and self._select and "selected" in a:
                self.fields.append((self._select, a.get("value", "")))
        elif tag == "input" and (a.get("type") not in ("checkbox", "radio") or "checked" in a):
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))
        elif tag == "select":
            self._select = a["name"]

    def handle_data(self, data: str) -> None:
        if self._textarea:
            name, value = self.fields[-1]
            self.fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_fields(html: str, action: str) -> list[tuple[str, str]]:
    parser = _FormFields(action)
    parser.feed(html)
    assert parser.fields, f"no form {action}"
    return parser.fields


@pytest.mark.req("R43")
@pytest.mark.req("R14")
async def test_saving_a_concern_or_a_group_on_its_page_keeps_the_english_and_easy_language_texts(
    stack: Stack,
) -> None:
    """The pages and mails show documents, links and group names in the customer's language. An
    administrator who corrects one German line and saves must not wipe the translations of the rest."""
    admin = stack.admin
    three = {"de": "Mietvertrag", "en": "Tenancy agreement", "de-x-ls": "Ihren Miet-Vertrag"}
    video = {"de": "Erklärvideo", "en": "Explainer video", "de-x-ls": "Ein Film dazu"}
    patched = await admin.request(
        "PATCH",
        "/api/v1/admin/concerns/neuantrag",
        json={
            "documents": [{"de": "Ausweis", "en": "Identity card", "de-x-ls": "Ihren Ausweis"}, three],
            "links": [{"label": video, "url": "https://www.jobcenter-bremen.example/video"}],
        },
    )
    assert patched.status == 200, await patched.text()
    group = {"de": "Eingangszone", "en": "Entrance zone", "de-x-ls": "Eingang"}
    renamed = await admin.request("PATCH", "/api/v1/admin/groups/mitte-ez", json={"name": group})
    assert renamed.status == 200, await renamed.text()

    page = await (await admin.get("/staff/admin/concerns/neuantrag")).text()
    fields = form_fields(page, "/staff/admin/concerns/neuantrag")
    assert ("doc_en", "Tenancy agreement") in fields and ("link_de-x-ls", "Ein Film dazu") in fields
    fields = [(k, "Personalausweis" if (k, v) == ("doc_de", "Ausweis") else v) for k, v in fields]
    fields += [("doc_de", "Meldebescheinigung")]  # typed into the empty row: German only for now
    fields = [(k, v) for k, v in fields if k != "csrf_token"]
    status, location, _ = await post_form(admin, "/staff/admin/concerns/neuantrag", _grouped(fields))
    assert (status, location) == (303, "/staff/admin/concerns?notice=saved")
    concern = await (await admin.get("/api/v1/admin/concerns/neuantrag")).json()
    assert concern["documents"] == [
        {"de": "Personalausweis", "en": "Identity card", "de-x-ls": "Ihren Ausweis"},
        three,
        {"de": "Meldebescheinigung"},
    ]
    assert concern["links"] == [{"label": video, "url": "https://www.jobcenter-bremen.example/video"}]

    # A document whose German text is cleared is removed (in the page as saved: the form sent before was
    # loaded before that save, and would be refused as stale).
    page = await (await admin.get("/staff/admin/concerns/neuantrag")).text()
    fields = [
        (k, "" if (k, v) == ("doc_de", "Mietvertrag") else v)
        for k, v in form_fields(page, "/staff/admin/concerns/neuantrag")
        if k != "csrf_token"
    ]
    status, _, _ = await post_form(admin, "/staff/admin/concerns/neuantrag", _grouped(fields))
    assert status == 303
    documents = (await (await admin.get("/api/v1/admin/concerns/neuantrag")).json())["documents"]
    assert [d["de"] for d in documents] == ["Personalausweis", "Meldebescheinigung"]

    # The group's rename on the location page keeps its English and easy-language names.
    location_page = await (await admin.get("/staff/locations/mitte")).text()
    fields = [
        (k, "Eingangszone Mitte" if k == "name" else v)
        for k, v in form_fields(location_page, "/staff/groups/mitte-ez")
        if k != "csrf_token"
    ]
    status, _, _ = await post_form(admin, "/staff/groups/mitte-ez", _grouped(fields))
    assert status == 303
    location = await (await admin.get("/api/v1/admin/locations/mitte")).json()
    [ez] = [g for g in location["groups"] if g["id"] == "mitte-ez"]
    assert ez["name"] == {**group, "de": "Eingangszone Mitte"}


def _grouped(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in fields:
        grouped.setdefault(key, []).append(value)
    return grouped


def test_the_lines_of_an_error_summary_name_the_fields_by_their_visible_labels() -> None:
    """A reader looks for the field the line names: "Von", not "Beginn", and the lead time's long labels."""
    refused = ValidationError(
        "invalid",
        details=[
            {"field": "body.start", "type": "time_parsing"},
            {"field": "end", "type": "time_parsing"},
            {"field": "min_minutes", "type": "missing"},
            {"field": "max_days", "type": "less_than_equal"},
            {"field": "first_days", "type": "less_than_equal"},
        ],
    )
    assert error_messages(refused) == [
        "Von: bitte eine Uhrzeit",
        "Bis: bitte eine Uhrzeit",
        "Frühestens so viele Minuten vor dem Termin buchbar: fehlt",
        "Höchstens so viele Tage im Voraus buchbar: ist zu groß",
        "Erste Tage des neuen Monats: ist zu groß",
    ]


def _title(html: str) -> str:
    return html.split("<title>", 1)[1].split("</title>", 1)[0]


async def test_the_location_page_says_what_it_is_and_names_the_form_of_an_appointment_as_the_work_pages_do(
    stack: Stack,
) -> None:
    """A tab, a bookmark or a screen reader's list of windows shows the title: "Bremen-Mitte" alone did not
    say that this is where windows and capacity are kept. "persönlich" is the word of the day list and
    the Excel list (shared/labels.py); the location page said "vor Ort"."""
    html = await (await stack.admin.get("/staff/locations/mitte")).text()
    assert _title(html) == "Standort Bremen-Mitte: Zeitfenster und Kapazität \N{EN DASH} OTV Verwaltung"
    assert "<h1>Standort Bremen-Mitte: Zeitfenster und Kapazität</h1>" in html
    assert "vor Ort" not in html
    assert "<td>persönlich</td>" in html and '<label for="offer-modes">persönlich</label>' in html


async def test_an_error_page_is_titled_by_what_went_wrong(gateway: Gateway) -> None:
    """Every refusal was titled "Nicht möglich": a reader could not tell a missing page from a missing
    role."""
    manager = await gateway.signed_in("title-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
    missing = await manager.get("/staff/no-such-page")
    assert missing.status == 404
    assert _title(await missing.text()).startswith("Nicht gefunden \N{EN DASH}")
    forbidden = await manager.get("/staff/admin/accounts")
    assert forbidden.status == 403
    assert _title(await forbidden.text()).startswith("Keine Berechtigung \N{EN DASH}")
    expired = await manager.post("/staff/locations/mitte/closures", data={"csrf_token": "old"})
    assert expired.status == 403
    assert _title(await expired.text()).startswith("Formular abgelaufen \N{EN DASH}")


async def test_a_refused_mail_text_is_titled_with_the_text_it_is(gateway: Gateway) -> None:
    admin = await gateway.signed_in("title-admin", (Role.ADMIN, "*"))
    notifier = gateway.upstreams["notifier"]
    notifier.status = 422
    notifier.answer = {"error": {"code": "validation_error", "message": "invalid", "details": []}}
    texts = {"subject": "Ihr Termin", "text": "{{ kaputt", "html": "<p>x</p>"}
    status, _, html = await post_form(admin, "/staff/admin/texts/reminder/en", texts)
    assert status == 422
    assert _title(html).startswith("Fehler: Text bearbeiten: Erinnerung (Englisch) \N{EN DASH}")
