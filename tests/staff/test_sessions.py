"""Sign-in, sessions and their cookies, lock-out, CSRF, and one's own password (R28-R32, I5)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from yarl import URL

from services.gateway.openapi import document
from services.gateway.staff.authz import COOKIE
from shared.identity import Role
from shared.staff_nav import FORM_TOKEN_FIELD, FORM_TOKEN_HEADER
from tests.staff.conftest import PASSWORD, Gateway, GatewayFactory, audit_rows

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.mark.req("R28")
async def test_login_sets_a_secure_httponly_lax_cookie_and_opens_the_staff_api(gateway: Gateway) -> None:
    await gateway.account("anna", (Role.APPOINTMENT_MANAGER, "mitte"))
    browser = gateway.browser()
    response = await browser.login("anna")
    assert response.status == 200
    raw = response.headers["Set-Cookie"]
    assert raw.startswith(f"{COOKIE}=")
    lowered = raw.lower()
    assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    me = await browser.get("/api/v1/staff/me")
    assert me.status == 200
    body = await me.json()
    assert body["subject"] == "anna"
    assert body["grants"] == [{"role": "appointment_manager", "locations": ["mitte"], "groups": []}]


async def test_wrong_password_and_unknown_user_get_the_same_401(gateway: Gateway) -> None:
    await gateway.account("bert", (Role.APPOINTMENT_MANAGER, "mitte"))
    browser = gateway.browser()
    wrong = await browser.login("bert", "not the password")
    unknown = await browser.login("nobody-here", "not the password")
    assert wrong.status == unknown.status == 401
    assert (await wrong.json()) == (await unknown.json())
    assert (await wrong.json())["error"]["code"] == "unauthenticated"
    assert "Set-Cookie" not in wrong.headers


async def test_repeated_failures_lock_the_account_until_the_lockout_has_passed(gateway: Gateway) -> None:
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    browser = gateway.browser()
    for _ in range(5):
        assert (await browser.login("carla", "wrong guess")).status == 401
    # Locked: even the right password is refused, with the same answer as a wrong one.
    locked = await browser.login("carla")
    assert locked.status == 401
    assert (await locked.json())["error"]["code"] == "unauthenticated"
    gateway.clock.advance(timedelta(minutes=14))
    assert (await browser.login("carla")).status == 401
    gateway.clock.advance(timedelta(minutes=2))
    assert (await browser.login("carla")).status == 200
    refusals = await audit_rows(gateway, actor="carla", action="login", outcome="refused")
    reasons = [r["changes"]["reason"] for r in refusals]
    assert reasons == ["wrong_password"] * 4 + ["locked_now", "locked", "locked"]


async def test_a_refused_login_with_an_unknown_name_does_not_store_what_was_typed(gateway: Gateway) -> None:
    browser = gateway.browser()
    await browser.login("my-secret-password-typed-into-the-name-field", "x")
    rows = await audit_rows(gateway, action="login")
    assert [(r["actor"], r["outcome"]) for r in rows] == [("unknown", "refused")]
    assert "secret" not in json.dumps(rows[0], default=str)


@pytest.mark.req("R28")
async def test_a_forged_cookie_is_401_and_an_anonymous_call_is_401_even_for_an_unknown_id(
    gateway: Gateway,
) -> None:
    browser = gateway.browser()
    browser.cookie = "forged-session-id-that-was-never-issued-by-the-gateway-000"
    assert (await browser.get("/api/v1/staff/me")).status == 401
    anonymous = gateway.browser()
    for method, path in [
        ("GET", "/api/v1/staff/locations/no-such-place/appointments?date=2026-03-02"),
        ("POST", "/api/v1/staff/appointments/00000000-0000-0000-0000-000000000000/cancel"),
        ("GET", "/api/v1/admin/accounts/nobody"),
        ("PATCH", "/api/v1/admin/groups/no-such-group"),
        ("GET", "/api/v1/staff/no/such/route"),
    ]:
        response = await anonymous.request(method, path, json={})
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]["code"] == "unauthenticated"
    assert not gateway.upstreams["booking"].calls


async def raw_request(gateway: Gateway, path: str, cookie: bytes, form: bytes = b"") -> bytes:
    """A request whose Cookie header holds bytes that are not UTF-8 (a client library would not send it;
    aiohttp's server keeps them as lone surrogates), a POST of `form` if given: the status line and
    headers of the answer."""
    server = gateway.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    method = "POST" if form else "GET"
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(form)}\r\n"
    if form:
        head += "Content-Type: application/x-www-form-urlencoded\r\n"
    writer.write(head.encode() + cookie + b"\r\n\r\n" + form)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("value", [b"\xff\xfe", b"a" * 41 + b"\xff\xfe", b"\xed\xa0\x80"])
async def test_a_cookie_that_is_not_utf_8_is_no_session_or_sign_in_token_not_a_500(
    gateway: Gateway, value: bytes
) -> None:
    """The session cookie's token is hashed to find the session, the sign-in page's double-submit token
    compared: both encoded the text, which raised for such a cookie (a 500 on every staff route and on
    the sign-in page). It is a cookie the gateway never set: 401, the sign-in page."""
    api = await raw_request(gateway, "/api/v1/staff/me", b"Cookie: " + COOKIE.encode() + b"=" + value)
    assert api.startswith(b"HTTP/1.1 401"), api
    page = await raw_request(gateway, "/staff/", b"Cookie: " + COOKIE.encode() + b"=" + value)
    assert page.startswith(b"HTTP/1.1 303") and b"Location: /staff/login" in page, page
    sign_in = await raw_request(gateway, "/staff/login", b"Cookie: otv_staff_login=" + value)
    assert sign_in.startswith(b"HTTP/1.1 200"), sign_in
    form = b"csrf_token=" + b"a" * 43 + b"&username=someone&password=secret"
    refused = await raw_request(gateway, "/staff/login", b"Cookie: otv_staff_login=" + value, form)
    assert refused.startswith(b"HTTP/1.1 403"), refused  # the sign-in page expired, as without the cookie


async def test_a_session_ends_after_the_idle_timeout_and_after_the_absolute_timeout(gateway: Gateway) -> None:
    browser = await gateway.signed_in("dora", (Role.APPOINTMENT_MANAGER, "mitte"))
    gateway.clock.advance(timedelta(minutes=29))
    assert (await browser.get("/api/v1/staff/me")).status == 200
    gateway.clock.advance(timedelta(minutes=31))
    assert (await browser.get("/api/v1/staff/me")).status == 401

    busy = gateway.browser()
    assert (await busy.login("dora")).status == 200
    for _ in range(20):  # active all day: 20 x 29 minutes = 9 h 40 min
        gateway.clock.advance(timedelta(minutes=29))
        assert (await busy.get("/api/v1/staff/me")).status == 200
    gateway.clock.advance(timedelta(minutes=29))  # beyond 10 hours since sign-in
    assert (await busy.get("/api/v1/staff/me")).status == 401


@pytest.mark.req("R28")
async def test_a_page_form_sent_after_the_idle_timeout_gets_the_german_sign_in_page_back_to_its_page(
    gateway: Gateway,
) -> None:
    """A caseworker types a callback's result for more than 30 minutes: the form's answer is the sign-in
    page saying the session ended and nothing was saved, leading back to the queue it was sent from;
    never an English JSON body, and never to a page of another site."""
    browser = await gateway.signed_in("dora", (Role.APPOINTMENT_MANAGER, "mitte"))
    gateway.clock.advance(timedelta(minutes=31))
    queue = f"{browser.origin}/staff/locations/mitte/callbacks?status=mine"
    fields = {FORM_TOKEN_FIELD: browser.csrf or "", "location": "mitte", "result": "erreicht"}
    path = "/staff/callbacks/00000000-0000-0000-0000-000000000001/close"
    answer = await browser.post(path, data=fields, headers={"Referer": queue})
    html = await answer.text()
    assert answer.status == 401 and answer.content_type == "text/html"
    assert "nach 30 Minuten ohne Aktivität abgelaufen" in html and "nicht gespeichert" in html
    assert 'name="next" value="/staff/locations/mitte/callbacks?status=mine"' in html
    assert 'action="/staff/login"' in html
    for foreign in (
        "https://evil.example/staff/x",
        f"{browser.origin}/api/v1/staff/me",
        "//evil.example/",
        f"{browser.origin}/staff/\t/evil.example",  # a TAB is dropped on parsing: "/staff//evil.example"
    ):
        answer = await browser.post(path, data=fields, headers={"Referer": foreign})
        assert 'name="next" value="/staff/"' in await answer.text(), foreign
    # An API client (JSON) keeps its JSON 401.
    api = await browser.post(path, json={"result": "erreicht"})
    assert api.status == 401 and (await api.json())["error"]["code"] == "unauthenticated"
    assert not gateway.upstreams["booking"].calls


async def test_logout_ends_the_session_on_the_server(gateway: Gateway) -> None:
    browser = await gateway.signed_in("emil", (Role.APPOINTMENT_MANAGER, "mitte"))
    cookie = browser.cookie
    response = await browser.post("/api/v1/staff/logout")
    assert response.status == 200
    assert response.cookies[COOKIE].value == ""
    browser.cookie = cookie  # a copy of the old cookie is worth nothing now
    assert (await browser.get("/api/v1/staff/me")).status == 401


async def test_cookie_authenticated_json_writes_need_a_same_origin_request(gateway: Gateway) -> None:
    browser = await gateway.signed_in("fritz", (Role.ADMIN, "*"))
    body = {"username": "new-one", "grants": []}
    no_origin = await gateway.client.post(
        "/api/v1/admin/accounts", json=body, headers={"Cookie": f"{COOKIE}={browser.cookie}"}
    )
    assert no_origin.status == 403
    assert (await no_origin.json())["error"]["code"] == "csrf_failed"
    cross = await gateway.client.post(
        "/api/v1/admin/accounts",
        json=body,
        headers={"Cookie": f"{COOKIE}={browser.cookie}", "Origin": "https://evil.example"},
    )
    assert cross.status == 403
    fetch_site = await gateway.client.post(
        "/api/v1/admin/accounts",
        json=body,
        headers={"Cookie": f"{COOKIE}={browser.cookie}", "Sec-Fetch-Site": "same-origin"},
    )
    assert fetch_site.status == 201
    same = await browser.post("/api/v1/admin/accounts", json={"username": "another-one"})
    assert same.status == 201


async def test_staff_writes_are_judged_by_origin_as_the_customer_forms_are(
    make_gateway: GatewayFactory,
) -> None:
    # Behind the TLS ingress the browser's Origin is the public https address, not the gateway's http.
    gateway = await make_gateway(public_base_url="https://termine.jobcenter-bremen.example")
    browser = await gateway.signed_in("fiete", (Role.ADMIN, "*"))
    cookie = {"Cookie": f"{browser.cookie_name}={browser.cookie}"}  # `__Host-` prefixed behind TLS

    async def create(name: str, headers: dict[str, str]) -> int:
        response = await gateway.client.post(
            "/api/v1/admin/accounts", json={"username": name}, headers={**cookie, **headers}
        )
        return response.status

    assert await create("via-public", {"Origin": "https://termine.jobcenter-bremen.example"}) == 201
    assert await create("via-null", {"Origin": "null", "Sec-Fetch-Site": "same-origin"}) == 201
    assert await create("from-null", {"Origin": "null"}) == 403
    assert await create("from-subdomain", {"Origin": "null", "Sec-Fetch-Site": "same-site"}) == 403
    # A form carries the session's token, but a browser that says it comes from elsewhere is refused.
    cross = await gateway.client.post(
        "/staff/admin/accounts",
        data={"username": "via-form", "csrf_token": browser.csrf},
        headers={**cookie, "Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert cross.status == 403


async def test_the_json_sign_in_takes_only_json_so_another_site_cannot_sign_a_browser_in(
    gateway: Gateway,
) -> None:
    await gateway.account("ilse", (Role.APPOINTMENT_MANAGER, "mitte"), password="abc=def-is-my-secret")
    # What a form of another site with enctype="text/plain" sends: `name=value`, reading as the JSON.
    forged = await gateway.client.post(
        "/api/v1/staff/login",
        data='{"username":"ilse","password":"abc=def-is-my-secret"}',
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )
    assert forged.status == 422
    assert (await forged.json())["error"]["details"] == [
        {"field": "body", "message": "must be application/json"}
    ]
    assert COOKIE not in forged.cookies
    signed_in = await gateway.browser().login("ilse", "abc=def-is-my-secret")
    assert signed_in.status == 200


async def test_a_form_post_without_the_sessions_csrf_token_is_refused(gateway: Gateway) -> None:
    browser = await gateway.signed_in("gerda", (Role.ADMIN, "*"))
    refused = await browser.post(
        "/staff/admin/accounts", data={"username": "via-form", "csrf_token": "wrong"}
    )
    assert refused.status == 403
    accepted = await browser.post(
        "/staff/admin/accounts", data={"username": "via-form", "csrf_token": browser.csrf}
    )
    assert accepted.status == 200
    assert "via-form" in await accepted.text()


async def test_changing_the_password_ends_other_sessions_and_the_old_password(gateway: Gateway) -> None:
    first = await gateway.signed_in("hanna", (Role.APPOINTMENT_MANAGER, "mitte"))
    second = gateway.browser()
    assert (await second.login("hanna")).status == 200
    wrong = await first.post(
        "/api/v1/staff/password", json={"current_password": "nope", "new_password": "a much better secret"}
    )
    assert wrong.status == 422
    assert (await wrong.json())["error"]["details"][0]["field"] == "current_password"
    short = await first.post(
        "/api/v1/staff/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert short.status == 422
    ok = await first.post(
        "/api/v1/staff/password", json={"current_password": PASSWORD, "new_password": "a much better secret"}
    )
    assert ok.status == 200
    assert (await first.get("/api/v1/staff/me")).status == 200
    assert (await second.get("/api/v1/staff/me")).status == 401
    assert (await gateway.browser().login("hanna")).status == 401
    assert (await gateway.browser().login("hanna", "a much better secret")).status == 200


async def test_wrong_current_passwords_on_a_password_change_lock_like_failed_sign_ins_and_end_the_session(
    gateway: Gateway,
) -> None:
    """A stolen session cookie is no unlimited oracle for the account's password: wrong current passwords
    count like failed sign-ins from that network; the guess that locks the account there ends the session
    (401), the right password signs in from there only after the lock-out, and the audit keeps each try."""
    thief = await gateway.signed_in("henrike", (Role.APPOINTMENT_MANAGER, "mitte"))

    async def change(current: str) -> int:
        response = await thief.post(
            "/api/v1/staff/password",
            json={"current_password": current, "new_password": "a much better secret"},
        )
        return response.status

    assert [await change(f"guess {n}") for n in range(4)] == [422] * 4
    assert (await thief.get("/api/v1/staff/me")).status == 200
    assert await change("guess 4") == 401
    assert (await thief.get("/api/v1/staff/me")).status == 401
    assert await change(PASSWORD) == 401  # the session is gone: no more guesses through it
    assert (await gateway.browser().login("henrike")).status == 401  # the sign-in's lock holds too
    gateway.clock.advance(timedelta(minutes=16))
    assert (await gateway.browser().login("henrike")).status == 200
    refusals = await audit_rows(gateway, action="change_password", outcome="refused")
    assert [r["changes"]["reason"] for r in refusals] == ["wrong_password"] * 4 + ["locked_now"]


async def test_the_password_page_signs_out_after_too_many_wrong_current_passwords(gateway: Gateway) -> None:
    browser = await gateway.signed_in("hilde", (Role.APPOINTMENT_MANAGER, "mitte"))
    form = {
        FORM_TOKEN_FIELD: browser.csrf or "",
        "current_password": "not it",
        "new_password": "a much better secret",
        "new_password_repeat": "a much better secret",
    }
    for _ in range(4):
        wrong = await browser.post("/staff/password", data=form)
        assert wrong.status == 422 and "Das aktuelle Passwort stimmt nicht." in await wrong.text()
    ended = await browser.post("/staff/password", data=form)
    html = await ended.text()
    assert ended.status == 401 and 'action="/staff/login"' in html
    assert "zu oft falsch" in html and "abgemeldet" in html
    assert ended.cookies[COOKIE].value == ""  # the browser forgets the ended session
    assert (await browser.get("/api/v1/staff/me")).status == 401


async def test_a_password_change_while_failed_sign_ins_locked_the_account_says_so_not_wrong_password(
    gateway: Gateway,
) -> None:
    """Someone else failed to sign in as this person from the same network: the right current password
    is not even checked and the session ends; the page says the account is locked, not that the password
    typed here was wrong too often, and the API says it in its message. The document explains the 401."""
    browser = await gateway.signed_in("hedda", (Role.APPOINTMENT_MANAGER, "mitte"))
    api = gateway.browser()
    assert (await api.login("hedda")).status == 200
    for _ in range(5):
        assert (await gateway.browser().login("hedda", "not hers")).status == 401
    form = {
        FORM_TOKEN_FIELD: browser.csrf or "",
        "current_password": PASSWORD,
        "new_password": "a much better secret",
        "new_password_repeat": "a much better secret",
    }
    ended = await browser.post("/staff/password", data=form)
    html = await ended.text()
    assert ended.status == 401 and 'action="/staff/login"' in html
    assert "zu oft falsch" not in html
    assert "nach mehreren fehlgeschlagenen Anmeldungen vorübergehend gesperrt" in html
    assert "nicht geändert" in html and "abgemeldet" in html

    refused = await api.post(
        "/api/v1/staff/password", json={"current_password": PASSWORD, "new_password": "a much better secret"}
    )
    assert refused.status == 401
    body = await refused.json()
    assert body["error"]["code"] == "unauthenticated"
    assert "locked" in body["error"]["message"] and "wrong passwords" not in body["error"]["message"]
    assert (await api.get("/api/v1/staff/me")).status == 401

    described = document()["paths"]["/api/v1/staff/password"]["post"]
    assert "401" in described["responses"]
    assert "counts as a failed sign-in" in described["description"]
    assert "ends the session: 401 `unauthenticated`" in described["description"]


@pytest.mark.req("R31")
async def test_an_account_created_by_an_administrator_must_change_its_start_password_first(
    gateway: Gateway,
) -> None:
    admin = await gateway.signed_in("ines", (Role.ADMIN, "*"))
    created = await admin.post(
        "/api/v1/admin/accounts",
        json={
            "username": "jonas",
            "display_name": "Jonas",
            "grants": [{"role": "location_admin", "location": "mitte"}],
        },
    )
    assert created.status == 201
    start_password = (await created.json())["start_password"]
    assert len(start_password) >= 20
    jonas = gateway.browser()
    login = await jonas.login("jonas", start_password)
    assert login.status == 200 and (await login.json())["must_change_password"] is True
    blocked = await jonas.get("/api/v1/admin/locations/mitte/staff-roles")
    assert blocked.status == 403
    assert (await blocked.json())["error"]["code"] == "password_change_required"
    changed = await jonas.post(
        "/api/v1/staff/password",
        json={"current_password": start_password, "new_password": "my own long secret"},
    )
    assert changed.status == 200
    assert (await jonas.get("/api/v1/admin/locations/mitte/staff-roles")).status == 200


@pytest.mark.req("R31")
async def test_a_disabled_account_loses_its_sessions_and_cannot_sign_in(gateway: Gateway) -> None:
    admin = await gateway.signed_in("karl", (Role.ADMIN, "*"))
    lena = await gateway.signed_in("lena", (Role.APPOINTMENT_MANAGER, "mitte"))
    assert (await admin.post("/api/v1/admin/accounts/lena/disable")).status == 200
    assert (await lena.get("/api/v1/staff/me")).status == 401
    assert (await gateway.browser().login("lena")).status == 401
    assert (await admin.post("/api/v1/admin/accounts/lena/enable")).status == 200
    assert (await gateway.browser().login("lena")).status == 200
    own = await admin.post("/api/v1/admin/accounts/karl/disable")
    assert own.status == 409


async def test_a_revoked_role_stops_at_once_in_a_running_session(gateway: Gateway) -> None:
    admin = await gateway.signed_in("max", (Role.ADMIN, "*"))
    nora = await gateway.signed_in("nora", (Role.LOCATION_ADMIN, "mitte"))
    assert (await nora.get("/api/v1/admin/locations/mitte/staff-roles")).status == 200
    response = await admin.put("/api/v1/admin/accounts/nora/grants", json={"grants": []})
    assert response.status == 200
    assert (await nora.get("/api/v1/admin/locations/mitte/staff-roles")).status == 403


async def test_many_failed_sign_ins_from_one_address_are_slowed_down_whatever_the_names(
    gateway: Gateway,
) -> None:
    await gateway.account("olga", (Role.APPOINTMENT_MANAGER, "mitte"))
    browser = gateway.browser()
    for n in range(50):  # password spraying: one try per name, never enough to lock an account
        assert (await browser.login(f"name-{n}", "Sommer2026!")).status == 401
    throttled = await browser.login("olga")
    assert throttled.status == 429
    assert (await throttled.json())["error"]["code"] == "rate_limited"
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60 + 1
    gateway.clock.advance(timedelta(minutes=15, seconds=1))
    assert (await browser.login("olga")).status == 200


async def test_failed_sign_ins_from_many_addresses_of_one_ipv6_network_are_slowed_down_together(
    make_gateway: GatewayFactory,
) -> None:
    # Behind the ingress (a trusted proxy) the client's address comes from X-Forwarded-For.
    gateway = await make_gateway(trusted_proxies="127.0.0.1/32")
    await gateway.account("pia", (Role.APPOINTMENT_MANAGER, "mitte"))

    async def login(name: str, password: str, address: str) -> int:
        response = await gateway.client.post(
            "/api/v1/staff/login",
            json={"username": name, "password": password},
            headers={"X-Forwarded-For": address},
        )
        return response.status

    for n in range(50):  # a fresh address of the same /64 for every try
        assert await login(f"name-{n}", "Sommer2026!", f"2001:db8:7:7::{n + 1:x}") == 401
    assert await login("pia", PASSWORD, "2001:db8:7:7::ffff") == 429
    assert await login("pia", PASSWORD, "2001:db8:7:8::1") == 200  # a neighbouring network is not held


async def test_a_signed_out_page_request_keeps_its_whole_query_for_after_the_sign_in(
    gateway: Gateway,
) -> None:
    """The target travels whole (every parameter, not only the first); an absurdly long one (a Location
    header has its limits) keeps the page without its query rather than breaking the redirect."""
    browser = gateway.browser()
    asked = await browser.get("/staff/locations/mitte/day?date=2026-03-03&view=all")
    assert asked.status == 303
    login = URL(asked.headers["Location"])
    assert login.path == "/staff/login"
    assert login.query["next"] == "/staff/locations/mitte/day?date=2026-03-03&view=all"
    page = await browser.get(asked.headers["Location"])
    assert 'value="/staff/locations/mitte/day?date=2026-03-03&amp;view=all"' in await page.text()

    long = await browser.get("/staff/locations/mitte/day?date=2026-03-03&x=" + "a" * 9000)
    assert long.status == 303 and len(long.headers["Location"]) < 1100
    assert URL(long.headers["Location"]).query["next"] == "/staff/locations/mitte/day"


@pytest.mark.req("R46")
async def test_an_audit_log_filter_with_a_space_leads_back_to_the_filtered_page_after_the_sign_in(
    gateway: Gateway,
) -> None:
    """A filter of two words ("max m", sent as %20 or +) and one with an encoded & or + in it: after the
    session ended, the sign-in leads back to the same filter, from a page asked for or from the Referer of
    a form sent too late; not to the start page, and not with the filter changed."""
    await gateway.account("ria", (Role.ADMIN, "*"))
    filtered = "/staff/admin/audit-log?actor=max%20m&entity=staff_account&route=a%26b%2Bc&q=x+y"
    asked = await gateway.client.get(URL(filtered, encoded=True), allow_redirects=False)
    assert asked.status == 303
    assert URL(asked.headers["Location"]).query["next"] == filtered
    page = await gateway.client.get(URL(asked.headers["Location"], encoded=True), allow_redirects=False)
    login_cookie = page.cookies["otv_staff_login"].value
    assert f'name="next" value="{filtered.replace("&", "&amp;")}"' in await page.text()
    signed_in = await gateway.client.post(
        "/staff/login",
        data={"username": "ria", "password": PASSWORD, "csrf_token": login_cookie, "next": filtered},
        headers={"Cookie": f"otv_staff_login={login_cookie}"},
        allow_redirects=False,
    )
    assert signed_in.status == 303 and signed_in.headers["Location"] == filtered

    late = await gateway.signed_in("sven", (Role.APPOINTMENT_MANAGER, "mitte"))
    gateway.clock.advance(timedelta(minutes=31))
    answer = await late.post(
        "/staff/callbacks/00000000-0000-0000-0000-000000000001/close",
        data={FORM_TOKEN_FIELD: late.csrf or "", "location": "mitte", "result": "erreicht"},
        headers={"Referer": f"{late.origin}{filtered}"},
    )
    assert answer.status == 401
    assert f'name="next" value="{filtered.replace("&", "&amp;")}"' in await answer.text()


async def test_the_login_page_signs_in_and_keeps_the_target_page(gateway: Gateway) -> None:
    await gateway.account("paula", (Role.LOCATION_ADMIN, "mitte"))
    browser = gateway.browser()
    page = await browser.get("/staff/login?next=/staff/locations/mitte/staff-roles")
    assert page.status == 200
    login_cookie = page.cookies["otv_staff_login"].value
    html = await page.text()
    assert f'value="{login_cookie}"' in html
    form = {
        "username": "paula",
        "password": PASSWORD,
        "csrf_token": login_cookie,
        "next": "/staff/locations/mitte/staff-roles",
    }
    forged = await gateway.client.post(
        "/staff/login", data={**form, "csrf_token": "x"}, allow_redirects=False
    )
    assert forged.status == 403
    signed_in = await gateway.client.post(
        "/staff/login",
        data=form,
        headers={"Cookie": f"otv_staff_login={login_cookie}"},
        allow_redirects=False,
    )
    assert signed_in.status == 303
    assert signed_in.headers["Location"] == "/staff/locations/mitte/staff-roles"
    assert signed_in.cookies[COOKIE].value
    for elsewhere in ("https://evil.example/", "/staff/\t/evil.example", "/staff/\r\n/evil.example"):
        away = await gateway.client.post(
            "/staff/login",
            data={**form, "next": elsewhere},
            headers={"Cookie": f"otv_staff_login={login_cookie}"},
            allow_redirects=False,
        )
        assert away.headers["Location"] == "/staff/", repr(elsewhere)


@pytest.mark.req("R28")
async def test_a_sign_in_form_posted_from_another_host_of_the_domain_signs_nobody_in(
    gateway: Gateway,
) -> None:
    """Login CSRF by cookie tossing: a sibling host (the framing homepage) sets `otv_staff_login` for the
    domain and posts its own account's credentials with the matching token. The browser names the page
    it comes from, and the gateway refuses it like any other foreign staff write: no session, no sign-in
    in the audit log; the same form from our own page signs in."""
    await gateway.account("mallory", (Role.APPOINTMENT_MANAGER, "mitte"))
    tossed = "token-the-sibling-host-set-for-the-whole-domain"
    form = {"username": "mallory", "password": PASSWORD, "csrf_token": tossed, "next": "/staff/"}
    cookie = {"Cookie": f"otv_staff_login={tossed}"}
    for foreign in (
        {"Origin": "https://www.jobcenter-bremen.example", "Sec-Fetch-Site": "same-site"},
        {"Origin": "null", "Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        answer = await gateway.client.post(
            "/staff/login", data=form, headers={**cookie, **foreign}, allow_redirects=False
        )
        assert answer.status == 403, foreign
        assert COOKIE not in answer.cookies, foreign
        assert "Die Anmeldeseite war abgelaufen" in await answer.text()
    assert await audit_rows(gateway, actor="mallory", action="login") == []
    own = str(gateway.client.make_url("")).rstrip("/")
    signed_in = await gateway.client.post(
        "/staff/login",
        data=form,
        headers={**cookie, "Origin": own, "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    )
    assert signed_in.status == 303 and signed_in.cookies[COOKIE].value


async def test_a_name_no_account_can_have_is_a_failed_sign_in_and_no_such_account(gateway: Gateway) -> None:
    """A NUL in a username never reaches a query: the sign-in fails like any wrong name (401, counted
    against the address), and an administrator's look-up finds no such account (404)."""
    browser = gateway.browser()
    refused = await browser.login("ad\x00min", "whatever it is")
    assert refused.status == 401 and (await refused.json())["error"]["code"] == "unauthenticated"
    admin = await gateway.signed_in("nul-lookup-admin", (Role.ADMIN, "*"))
    missing = await admin.get("/api/v1/admin/accounts/ad%00min")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"


@pytest.mark.req("R32")
async def test_a_staff_page_of_reporting_gets_the_sessions_form_token_for_its_logout(
    gateway: Gateway,
) -> None:
    """Reporting renders the statistics pages; the gateway hands them the session's form token so that
    their header offers the logout like every staff page. An API call does not carry it."""
    await gateway.account("stats", (Role.STATISTICS, "*"))
    browser = gateway.browser()
    assert (await browser.login("stats")).status == 200
    reporting = gateway.upstreams["reporting"]
    assert (await browser.get("/staff/statistics")).status == 200
    assert (await browser.get("/api/v1/staff/statistics/summary")).status == 200
    page, api = reporting.calls[-2], reporting.calls[-1]
    assert page["path"] == "/staff/statistics" and page["headers"][FORM_TOKEN_HEADER] == browser.csrf
    assert FORM_TOKEN_HEADER not in api["headers"]
    # The token is the session's: the logout form a reporting page renders with it ends the session.
    form = {FORM_TOKEN_FIELD: browser.csrf or ""}
    logout = await browser.post("/staff/logout", data=form)
    assert logout.status == 303
    assert (await browser.get("/api/v1/staff/me")).status == 401
