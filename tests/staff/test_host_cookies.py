"""Behind TLS (an https public address) the staff session cookie is a `__Host-` cookie: the browser takes it
only with Secure, Path=/ and no Domain, so another host of the registrable domain (a sibling subdomain,
the framing homepage) can neither plant a session of its own nor overwrite one (R28). A browser that still
holds the cookie of the former name is simply asked to sign in again. Plain-HTTP local runs keep the bare
name, which browsers accept there."""

from __future__ import annotations

import pytest

from services.gateway.staff.authz import COOKIE
from shared.identity import Role
from tests.staff.conftest import GatewayFactory

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

HTTPS = "https://termine.jobcenter-bremen.example"
HOST_COOKIE = f"__Host-{COOKIE}"


@pytest.mark.req("R28")
async def test_behind_tls_the_session_is_a_host_cookie_and_a_cookie_of_the_bare_name_is_no_session(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(public_base_url=HTTPS)
    await gateway.account("hanna", (Role.APPOINTMENT_MANAGER, "mitte"))
    browser = gateway.browser()
    signed_in = await browser.login("hanna")
    assert signed_in.status == 200
    raw = signed_in.headers["Set-Cookie"]
    assert raw.startswith(f"{HOST_COOKIE}="), raw
    attributes = {part.strip().split("=")[0].lower() for part in raw.split(";")[1:]}
    assert {"secure", "httponly", "path"} <= attributes and "domain" not in attributes, raw
    assert "Path=/;" in raw or raw.rstrip().endswith("Path=/"), raw
    token = signed_in.cookies[HOST_COOKIE].value
    assert (await browser.get("/api/v1/staff/me")).status == 200

    # The same session token under the bare name (a cookie of the former release, or one another host of
    # the domain planted): no session. The page asks to sign in; the API answers its usual 401.
    bare = {"Cookie": f"{COOKIE}={token}"}
    page = await gateway.client.get("/staff/work", headers=bare, allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/staff/login"), page.status
    api = await gateway.client.get("/api/v1/staff/me", headers=bare)
    assert api.status == 401 and (await api.json())["error"]["code"] == "unauthenticated"

    # The sign-in page's form sets the host cookie too; signing out clears it.
    login = await gateway.client.get("/staff/login")
    form_token = login.cookies["otv_staff_login"].value
    posted = await gateway.client.post(
        "/staff/login",
        data={"username": "hanna", "password": "correct horse battery staple", "csrf_token": form_token},
        headers={"Cookie": f"otv_staff_login={form_token}"},
        allow_redirects=False,
    )
    assert posted.status == 303 and posted.cookies[HOST_COOKIE].value
    assert COOKIE not in posted.cookies
    out = await browser.post("/api/v1/staff/logout")
    assert out.status in (200, 204) and out.cookies[HOST_COOKIE].value == ""
    assert "Path=/" in out.headers["Set-Cookie"] and "Secure" in out.headers["Set-Cookie"]


async def test_over_plain_http_the_session_cookie_keeps_its_bare_name(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()  # http://127.0.0.1, as `make run`
    await gateway.account("lokal", (Role.APPOINTMENT_MANAGER, "mitte"))
    signed_in = await gateway.browser().login("lokal")
    assert signed_in.status == 200 and signed_in.headers["Set-Cookie"].startswith(f"{COOKIE}=")
