"""The audit log (invariant I5, R46): every write by staff and API keys with who, what, when and from
where, without customers' personal data; append-only for the application's database role; readable by
audit review and administrators only, with filters and paging."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import aiohttp
import asyncpg
import pytest
import structlog
from prometheus_client import REGISTRY
from yarl import URL

from services.gateway.staff.service import erase_audit_addresses
from shared.clock import ManualClock
from shared.identity import Role
from tests.conftest import db_settings
from tests.staff.conftest import Gateway, GatewayFactory, StaffClient, account_id, audit_rows

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.mark.req("R46")
async def test_the_applications_database_role_cannot_change_or_delete_the_audit_log(gateway: Gateway) -> None:
    admin = await gateway.signed_in("audit-admin", (Role.ADMIN, "*"))
    assert (await admin.post("/api/v1/admin/accounts", json={"username": "someone-new"})).status == 201
    entry = (await audit_rows(gateway, entity="staff_account", action="create"))[-1]
    # The gateway's own role (otv_gateway), as the running service connects.
    settings = db_settings("gateway")
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT current_user") == "otv_gateway"
        for statement in (
            "UPDATE gateway_audit.audit_log SET actor = 'someone-else' WHERE id = $1",
            "DELETE FROM gateway_audit.audit_log WHERE id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, entry["id"])
        for statement in (
            "TRUNCATE gateway_audit.audit_log",
            "DROP TABLE gateway_audit.audit_log",
            "ALTER TABLE gateway_audit.audit_log DISABLE TRIGGER ALL",
            "SET ROLE otv_audit_owner",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        assert not await conn.fetchval("SELECT pg_has_role('otv_gateway', 'otv_audit_owner', 'MEMBER')")
        row = await conn.fetchrow("SELECT actor FROM gateway_audit.audit_log WHERE id = $1", entry["id"])
        assert row is not None and row["actor"] == "audit-admin"
    finally:
        await conn.close()


@pytest.mark.req("R46")
async def test_every_write_names_who_what_when_and_from_where(gateway: Gateway) -> None:
    admin = await gateway.signed_in("audit-admin2", (Role.ADMIN, "*"))
    await admin.post("/api/v1/admin/accounts", json={"username": "lisa", "grants": []})
    lisa = await account_id(gateway, "lisa")  # an entry about an account names it by its id (R34)
    await admin.put(
        f"/api/v1/admin/accounts/{lisa}/grants",
        json={"grants": [{"role": "group_leader", "location": "mitte"}]},
    )
    await admin.post(f"/api/v1/admin/accounts/{lisa}/disable")
    # A write forwarded to another service: entered once the service answered 2xx, field names only.
    await admin.put(
        "/api/v1/admin/mail-templates/confirmation/de",
        json={"subject": "Ihr Termin", "text": "Hallo Erika Mustermann", "html": "<p>Hallo</p>"},
    )
    entries = await audit_rows(gateway, actor="audit-admin2", outcome="ok")
    summary = [(e["action"], e["entity"], e["entity_id"]) for e in entries]
    assert summary == [
        ("login", "session", None),
        ("create", "staff_account", lisa),
        ("grant", "staff_account", lisa),
        ("disable", "staff_account", lisa),
        ("update", "mail_template", "confirmation/de"),
    ]
    grant = entries[2]
    assert grant["changes"]["after"] == [{"role": "group_leader", "location": "mitte", "groups": []}]
    assert all(e["ip"] == "127.0.0.1" and e["occurred_at"] == gateway.clock.now() for e in entries)
    assert entries[-1]["changes"] == {"fields": ["html", "subject", "text"]}
    assert entries[-1]["status"] == 200 and entries[-1]["method"] == "PUT"
    assert all(e["correlation_id"] for e in entries)


async def test_a_write_the_upstream_refused_is_not_entered_as_done(gateway: Gateway) -> None:
    admin = await gateway.signed_in("audit-admin3", (Role.ADMIN, "*"))
    gateway.upstreams["catalog"].status = 422
    response = await admin.post("/api/v1/admin/concerns", json={"id": "x"})
    assert response.status == 422
    assert await audit_rows(gateway, entity="concern") == []


@pytest.mark.req("R46")
@pytest.mark.parametrize(
    "body",
    [
        b'{"location_id": "\\u0000"}',  # a location no id can be, in a field the service ignores
        b'{"a\\u0000b": 1}',  # a field name with a NUL
        b'{"\\ud800": 1}',  # a field name that is a lone surrogate (no UTF-8 for it)
        b"[" * 5000 + b"]" * 5000,  # nested deeper than Python's json module can read
    ],
    ids=["nul-location", "nul-name", "surrogate-name", "deep"],
)
async def test_a_change_with_odd_json_is_in_the_log_and_answered_as_the_service_answered(
    gateway: Gateway, body: bytes
) -> None:
    """The service made the change (it ignores what it does not read), so the log must have it: the
    entry's location and field names come from the body, and a value PostgreSQL cannot store there lost
    the entry (a NUL, a lone surrogate), or a body nested too deep for the gateway's own reading of it
    answered 500 after the change was made."""
    admin = await gateway.signed_in("audit-odd", (Role.ADMIN, "*"))
    response = await admin.request(
        "DELETE",
        "/api/v1/admin/mail-templates/confirmation/de",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()
    assert gateway.upstreams["notifier"].calls
    [entry] = await audit_rows(gateway, actor="audit-odd", entity="mail_template")
    assert (entry["action"], entry["entity_id"], entry["status"]) == ("delete", "confirmation/de", 200)
    assert entry["location"] is None
    assert all("\x00" not in f for f in entry["changes"]["fields"])


@pytest.mark.req("R46")
async def test_only_audit_review_and_administrators_read_the_log_with_filters_and_paging(
    gateway: Gateway,
) -> None:
    # The log outlives test runs (append-only) and the test clock repeats: a name of this run only.
    actor = f"audit-admin-{uuid.uuid4().hex[:8]}"
    admin = await gateway.signed_in(actor, (Role.ADMIN, "*"))
    ids = {}
    for name in ("p1", "p2", "p3", "p4", "p5"):
        await admin.post("/api/v1/admin/accounts", json={"username": name})
        ids[name] = await account_id(gateway, name)
        gateway.clock.advance(timedelta(minutes=10))
    reviewer = await gateway.signed_in("reviewer", (Role.AUDIT, "*"))
    location_admin = await gateway.signed_in("audit-la", (Role.LOCATION_ADMIN, "mitte"))
    statistics = await gateway.signed_in("audit-stats", (Role.STATISTICS, "*"))
    assert (await location_admin.get("/api/v1/admin/audit-log")).status == 403
    assert (await statistics.get("/api/v1/admin/audit-log")).status == 403
    assert (await admin.get("/api/v1/admin/audit-log")).status == 200

    first = await reviewer.get(
        "/api/v1/admin/audit-log", params={"actor": actor, "entity": "staff_account", "limit": "2"}
    )
    assert first.status == 200
    page = await first.json()
    assert [e["entity_id"] for e in page["entries"]] == [ids["p5"], ids["p4"]]
    second = await reviewer.get(
        "/api/v1/admin/audit-log",
        params={
            "actor": actor,
            "entity": "staff_account",
            "limit": "2",
            "before": str(page["next_before"]),
        },
    )
    assert [e["entity_id"] for e in (await second.json())["entries"]] == [ids["p3"], ids["p2"]]
    # A time range: the second and third account (created 10 and 20 minutes after the first).
    start = gateway.clock.now() - timedelta(minutes=40)
    ranged = await reviewer.get(
        "/api/v1/admin/audit-log",
        params={
            "actor": actor,
            "entity": "staff_account",
            "from": start.isoformat(),
            "to": (start + timedelta(minutes=20)).isoformat(),
        },
    )
    assert [e["entity_id"] for e in (await ranged.json())["entries"]] == [ids["p3"], ids["p2"]]
    bad = await reviewer.get("/api/v1/admin/audit-log", params={"from": "yesterday"})
    assert bad.status == 422
    for far_off in ({"from": "0001-01-01"}, {"to": "9999-12-31"}):  # no day of any log: a 422, not a 500
        bad = await reviewer.get("/api/v1/admin/audit-log", params=far_off)
        assert bad.status == 422 and (await bad.json())["error"]["details"][0]["field"] in far_off
        bad_page = await reviewer.get("/staff/admin/audit-log", params=far_off)
        assert bad_page.status == 422 and "bitte ein Datum zwischen 2000 und 2999" in await bad_page.text()
    page_html = await _audit_page(reviewer, actor)
    assert page_html.status == 200
    assert f"<code>{ids['p5']}</code> (p5)" in await page_html.text()  # the id, and the name beside


async def _entries(reviewer: StaffClient, actor: str) -> list[dict[str, Any]]:
    response = await reviewer.get("/api/v1/admin/audit-log", params={"actor": actor})
    assert response.status == 200
    entries: list[dict[str, Any]] = (await response.json())["entries"]
    return entries


async def _audit_page(reviewer: StaffClient, actor: str) -> aiohttp.ClientResponse:
    """The audit page filtered by a username the way an old link does it: redirected to the filter by the
    account's id."""
    old_link = await reviewer.get("/staff/admin/audit-log", params={"actor": actor})
    assert old_link.status == 303 and actor not in old_link.headers["Location"]
    return await reviewer.get(old_link.headers["Location"])


async def _addresses_on_the_page(reviewer: StaffClient, actor: str) -> int:
    page = await _audit_page(reviewer, actor)
    assert page.status == 200
    html = await page.text()
    assert "nach 90 Tagen gelöscht" in html
    return html.count("<td>127.0.0.1</td>")


@pytest.mark.req("R46")
async def test_a_client_address_is_deleted_after_its_retention_period_and_the_entry_stays(
    make_gateway: GatewayFactory,
) -> None:
    # The database deletes by its own clock: the gateway's clock starts 120 days before the database's now.
    clock = ManualClock(datetime.now(UTC) - timedelta(days=120))
    gateway = await make_gateway(clock=clock)
    # The log outlives test runs (append-only) and the test clock repeats: a name of this run only.
    actor = f"audit-ip-{uuid.uuid4().hex[:8]}"
    admin = await gateway.signed_in(actor, (Role.ADMIN, "*"))
    assert (await admin.post("/api/v1/admin/accounts", json={"username": "early-one"})).status == 201
    gateway.clock.advance(timedelta(days=60))  # sessions have long ended: sign in again
    admin = gateway.browser()
    assert (await admin.login(actor)).status == 200
    assert (await admin.post("/api/v1/admin/accounts", json={"username": "later-one"})).status == 201

    reviewer = await gateway.signed_in(f"audit-rev-{uuid.uuid4().hex[:8]}", (Role.AUDIT, "*"))
    before = await _entries(reviewer, actor)
    assert [(e["action"], e["entity_id"]) for e in before] == [
        ("create", await account_id(gateway, "later-one")),
        ("login", None),
        ("create", await account_id(gateway, "early-one")),
        ("login", None),
    ]
    assert [e["ip"] for e in before] == ["127.0.0.1"] * 4
    assert await _addresses_on_the_page(reviewer, actor) == 4

    # 120 days after the first two entries, 60 after the last two: the job deletes the first two addresses.
    erased = await erase_audit_addresses(gateway.staff)
    assert erased is not None and erased >= 2
    after = await _entries(reviewer, actor)
    assert [e["ip"] for e in after] == ["127.0.0.1", "127.0.0.1", None, None]
    # Everything else of every entry is as it was written (I5).
    assert [{**e, "ip": None} for e in after] == [{**e, "ip": None} for e in before]
    assert await _addresses_on_the_page(reviewer, actor) == 2
    # The run reports under a label of its own, so that a failing run is not hidden by the event feed's.
    reported = REGISTRY.get_sample_value(
        "otv_retention_last_run_timestamp_seconds", {"service": "gateway-audit"}
    )
    assert reported == gateway.clock.now().timestamp()
    # A second run finds nothing more of these to delete; the recent addresses stay.
    await erase_audit_addresses(gateway.staff)
    assert [e["ip"] for e in await _entries(reviewer, actor)] == ["127.0.0.1", "127.0.0.1", None, None]


@pytest.mark.req("R46")
async def test_the_gateway_can_neither_change_nor_add_nor_delete_a_client_address(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(clock=ManualClock(datetime.now(UTC)))  # the database's day: entries of now
    admin = await gateway.signed_in("audit-ip-admin", (Role.ADMIN, "*"))
    assert (await admin.post("/api/v1/admin/accounts", json={"username": "someone-else"})).status == 201
    entry = (await audit_rows(gateway, entity="staff_account", action="create"))[-1]
    assert entry["ip"] == "127.0.0.1"
    without = await gateway.staff.pool.fetchval(
        "SELECT max(e.id) FROM gateway_audit.audit_log e WHERE NOT EXISTS"
        " (SELECT FROM gateway_audit.audit_client_addresses a WHERE a.audit_id = e.id)"
    )
    conn = await asyncpg.connect(db_settings("gateway").database_url)
    try:
        for statement, args in (
            (
                "UPDATE gateway_audit.audit_client_addresses SET client_address = '10.0.0.1'"
                " WHERE audit_id = $1",
                [entry["id"]],
            ),
            ("DELETE FROM gateway_audit.audit_client_addresses WHERE audit_id = $1", [entry["id"]]),
            ("INSERT INTO gateway_audit.audit_client_addresses VALUES ($1, '10.0.0.1', now())", [without]),
            ("TRUNCATE gateway_audit.audit_client_addresses", []),
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, *args)
        # The owner's escape for moving addresses out of old entries is not the gateway's either.
        async with conn.transaction():
            await conn.execute("SET LOCAL otv.audit_move = 'on'")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE gateway_audit.audit_log SET ip = NULL WHERE id = $1", entry["id"])
        # The retention function deletes none younger than 7 days, whatever the gateway asks for.
        for too_short in (timedelta(0), timedelta(days=1), timedelta(days=7) - timedelta(seconds=1)):
            with pytest.raises(asyncpg.InvalidParameterValueError, match="at least 7 days"):
                await conn.fetchval("SELECT gateway_audit.erase_client_addresses($1)", too_short)
        # The shortest period allowed leaves the address written just now where it is.
        assert await conn.fetchval("SELECT gateway_audit.erase_client_addresses($1)", timedelta(days=7)) >= 0
    finally:
        await conn.close()
    assert (await audit_rows(gateway, entity="staff_account", action="create"))[-1] == entry


@pytest.mark.req("R46")
async def test_a_loop_of_refused_requests_of_one_account_writes_only_a_few_audit_rows_a_minute(
    gateway: Gateway,
) -> None:
    """A caseworker's session (or a script with its cookie, or a CRM's key asking for a location it does
    not cover) asking again and again for what it may not do: the first refusals a minute are audited,
    beyond them only counted in a metric. Every answer stays 403 `forbidden`: the request can never
    succeed, so nothing tells the client to retry later (no 429, no Retry-After). Another account's
    refusals are still audited, and a minute later this account's again."""
    looping = await gateway.signed_in("refused-looper", (Role.APPOINTMENT_MANAGER, "mitte"))
    other = await gateway.signed_in("refused-other", (Role.APPOINTMENT_MANAGER, "mitte"))
    throttled_before = REGISTRY.get_sample_value("otv_staff_refusals_total", {"outcome": "throttled"}) or 0

    answers = [await looping.get("/api/v1/admin/accounts") for _ in range(60)]
    assert [r.status for r in answers] == [403] * 60
    assert (await answers[-1].json())["error"]["code"] == "forbidden"
    assert "Retry-After" not in answers[-1].headers
    page = await looping.get("/staff/admin/accounts")
    assert page.status == 403 and "Retry-After" not in page.headers
    assert "Dafür fehlt Ihnen die Rolle oder der Standort." in await page.text()
    rows = await audit_rows(gateway, actor="refused-looper", action="access", outcome="refused")
    assert len(rows) == 20
    throttled = REGISTRY.get_sample_value("otv_staff_refusals_total", {"outcome": "throttled"})
    assert throttled == throttled_before + 41

    assert (await other.get("/api/v1/admin/accounts")).status == 403
    assert len(await audit_rows(gateway, actor="refused-other", action="access", outcome="refused")) == 1
    # What the account may do is not held back.
    assert (await looping.get("/api/v1/staff/me")).status == 200
    gateway.clock.advance(timedelta(minutes=1, seconds=1))
    assert (await looping.get("/api/v1/admin/accounts")).status == 403
    assert len(await audit_rows(gateway, actor="refused-looper", action="access", outcome="refused")) == 21


def _options(html: str, name: str) -> dict[str, str]:
    """The options of the page's select `name`: value to the text shown."""
    select = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    return {
        unescape(value): unescape(re.sub(r"<[^>]+>", "", text)).strip()
        for value, text in re.findall(r'<option value="([^"]*)"[^>]*>(.*?)</option>', select)
    }


@pytest.mark.req("R34")
@pytest.mark.req("R46")
async def test_the_audit_page_filters_by_a_person_chosen_by_name_without_the_name_in_any_address(
    gateway: Gateway,
) -> None:
    """A username names the staff member (erika.muster): the audit page lets the reviewer choose whom to
    see by name, but its addresses (the filter's, the next page's, the redirect of an old link with the
    name) carry the account's opaque id, so that the name stays out of the browser's history, the access
    logs and proxies."""
    # The log outlives test runs (append-only) and the test clock repeats: names of this run only.
    run = uuid.uuid4().hex[:8]
    erika, otto = f"erika.muster-{run}", f"otto.normal-{run}"
    first = await gateway.signed_in(erika, (Role.ADMIN, "*"), display_name="Erika Muster")
    for name in (f"p1-{run}", f"p2-{run}"):
        assert (await first.post("/api/v1/admin/accounts", json={"username": name})).status == 201
    second = await gateway.signed_in(otto, (Role.ADMIN, "*"))
    assert (await second.post("/api/v1/admin/accounts", json={"username": f"q1-{run}"})).status == 201
    erika_id = str(
        await gateway.staff.pool.fetchval("SELECT id FROM staff_accounts WHERE username = $1", erika)
    )
    reviewer = await gateway.signed_in(f"reviewer-{run}", (Role.AUDIT, "*"))

    page = await reviewer.get("/staff/admin/audit-log")
    html = await page.text()
    assert page.status == 200
    assert 'name="actor"' not in html  # no field that would put a username into the address
    choices = _options(html, "who")
    assert erika in choices[erika_id] and "Erika Muster" in choices[erika_id]
    assert all(erika not in value for value in choices)

    chosen = await reviewer.get("/staff/admin/audit-log", params={"who": erika_id, "limit": "1"})
    html = await chosen.text()
    assert chosen.status == 200
    p1, p2 = [await account_id(gateway, f"{p}-{run}") for p in ("p1", "p2")]
    q1 = await account_id(gateway, f"q1-{run}")
    assert f"<code>{p2}</code> (p2-{run})" in html and f"<code>{q1}</code>" not in html
    assert re.search(rf'<option value="{erika_id}" selected>', html)
    assert erika in html  # the entries still name who did it
    older = re.search(r'href="(/staff/admin/audit-log\?[^"]*)">Ältere Einträge', html)
    assert older is not None and erika_id in unescape(older[1]) and erika not in unescape(older[1])
    page_two = await (await reviewer.get(unescape(older[1]))).text()
    assert f"<code>{p1}</code>" in page_two and f"<code>{p2}</code>" not in page_two

    # An old link or bookmark with the name still works: it leads to the same filter by the id.
    with structlog.testing.capture_logs() as logs:  # nor does the gateway's own log keep the old address
        old_link = await reviewer.get(
            "/staff/admin/audit-log", params={"actor": erika, "entity": "staff_account"}
        )
    assert all(erika not in str(entry) for entry in logs)
    assert old_link.status == 303
    target = URL(old_link.headers["Location"])
    assert erika not in str(target) and target.query["who"] == erika_id
    assert target.query["entity"] == "staff_account"
    # A name that is no account is not kept in the address either; the page says the filter was dropped.
    nobody = await reviewer.get("/staff/admin/audit-log", params={"actor": f"max.mustermann-{run}"})
    assert nobody.status == 303 and "max.mustermann" not in nobody.headers["Location"]
    assert "kein Konto" in await (await reviewer.get(nobody.headers["Location"])).text()
    # The page takes no name in `who` (it would put it into the address again).
    assert (await reviewer.get("/staff/admin/audit-log", params={"who": erika})).status == 422

    # The API takes the same `who`; its `actor` (a username) stays for existing clients.
    by_id = await reviewer.get("/api/v1/admin/audit-log", params={"who": erika_id, "entity": "staff_account"})
    assert by_id.status == 200
    assert [e["entity_id"] for e in (await by_id.json())["entries"]] == [p2, p1]
    by_name = await reviewer.get(
        "/api/v1/admin/audit-log", params={"actor": erika, "entity": "staff_account"}
    )
    assert (await by_name.json())["entries"] == (await by_id.json())["entries"]


@pytest.mark.req("R46")
async def test_the_audit_page_filters_sign_ins_under_names_that_are_no_account_and_automatic_steps(
    gateway: Gateway,
) -> None:
    """Who is no staff account has a choice of its own: refused sign-ins with a name that is no account
    ("unknown"), the system's own steps, API keys by their name."""
    run = uuid.uuid4().hex[:8]
    admin = await gateway.signed_in(f"keys-admin-{run}", (Role.ADMIN, "*"))
    created = await admin.post(
        "/api/v1/admin/api-keys",
        json={"name": f"CRM {run}", "locations": ["mitte"], "operations": ["appointments:write"]},
    )
    assert created.status == 201, await created.text()
    key_id = (await created.json())["id"]
    assert (await gateway.browser().login(f"max.mustermann-{run}", "wrong password")).status == 401
    reviewer = await gateway.signed_in(f"reviewer-{run}", (Role.AUDIT, "*"))

    choices = _options(await (await reviewer.get("/staff/admin/audit-log")).text(), "who")
    assert f"CRM {run}" in choices[f"api-key:{key_id}"]
    assert {"unknown", "system"} <= choices.keys()
    unknown = await reviewer.get(
        "/staff/admin/audit-log", params={"who": "unknown", "from": gateway.clock.now().date().isoformat()}
    )
    html = await unknown.text()
    assert unknown.status == 200 and "unknown_user" in html
    assert f"max.mustermann-{run}" not in html
    by_key = await reviewer.get("/api/v1/admin/audit-log", params={"who": f"api-key:{key_id}"})
    assert by_key.status == 200


@pytest.mark.req("R46")
async def test_the_audit_page_says_once_in_german_what_is_wrong_with_its_dates(gateway: Gateway) -> None:
    """A mistyped day was named twice, once in pydantic's English ("Input should be a valid datetime or
    date, ..."); a "Bis" before the "Von" showed an empty list, as if nothing had happened."""
    reviewer = await gateway.signed_in(f"reviewer-{uuid.uuid4().hex[:8]}", (Role.AUDIT, "*"))
    page = await reviewer.get("/staff/admin/audit-log", params={"from": "2026-13-01"})
    html = await page.text()
    assert page.status == 422
    summary = html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert re.findall(r"<li>(.*?)</li>", summary, re.S) == ["Von (Datum): bitte ein Datum"]
    assert "Input should be" not in html

    backwards = await reviewer.get(
        "/staff/admin/audit-log", params={"from": "2026-03-02", "to": "2026-03-01"}
    )
    html = await backwards.text()
    assert backwards.status == 422
    assert "Bis (Datum, einschließlich): darf nicht vor „Von (Datum)“ liegen" in html
    same_day = await reviewer.get("/staff/admin/audit-log", params={"from": "2026-03-02", "to": "2026-03-02"})
    assert same_day.status == 200
