"""Security of the customer pages and the bot defence (R36, R39, R42, R43): rate limits (429 with
Retry-After), the proof-of-work challenge (428, then solved and accepted), CSRF refusal, the security
headers and `frame-ancestors` from configuration, the language kept across pages, errors tied to fields."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import altcha
import asyncpg
import pydantic
import pytest
from aiohttp import ClientResponse, CookieJar
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, expect

from services.gateway.app import create_app as create_gateway
from services.gateway.bot_defence import ALTCHA_HEADER, BOT_DEFENCE, BotDefence, Bucket, Limits, Verdict
from services.gateway.config import Settings as GatewaySettings
from services.gateway.proxy import client_network
from services.gateway.web.pages import SEALER
from tests.conftest import free_port
from tests.web.conftest import DESKTOP, Shots, Stack, new_context, unique_customer_number, unique_email


async def gateway_client(stack: Stack, **overrides: Any) -> TestClient[Any, Any]:
    port = free_port()
    app = create_gateway(stack.gateway_settings(**overrides), clock=stack.clock)
    # Browsers accept Secure cookies on http://127.0.0.1; aiohttp's client must be told so.
    jar = CookieJar(unsafe=True, treat_as_secure_origin=[f"http://127.0.0.1:{port}"])
    client = TestClient(TestServer(app, host="127.0.0.1", port=port), cookie_jar=jar)
    await client.start_server()
    return client


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[TestClient[Any, Any]]:
    started = await gateway_client(stack, frame_ancestors="'self' https://www.jobcenter-bremen.example")
    yield started
    await started.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


async def first_slot(
    client: TestClient[Any, Any], concern: str = "veraenderung", mode: str = "in_person"
) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/locations/mitte/availability", params={"concern": concern, "mode": mode}
    )
    assert response.status == 200
    slots = (await response.json())["slots"]
    return dict(slots[len(slots) // 2])


def solve(challenge: dict[str, Any]) -> str:
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed)
    assert solution is not None
    return altcha.Payload(parsed, solution).to_base64()


# --- bot defence ----------------------------------------------------------------------------------


@pytest.mark.req("R39")
async def test_the_api_answers_429_with_retry_after_beyond_the_rate_limit(stack: Stack) -> None:
    client = await gateway_client(
        stack, bot_defence=True, bot_availability_burst=3, bot_availability_soft=3, bot_availability_rate=0.1
    )
    try:
        params = {"concern": "veraenderung"}
        for _ in range(3):
            assert (await client.get("/api/v1/locations/mitte/availability", params=params)).status == 200
        limited = await client.get("/api/v1/locations/mitte/availability", params=params)
        assert limited.status == 429
        assert (await limited.json())["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        # The waiting list's days compute the same slot grid: the same bucket.
        days = await client.get("/api/v1/locations/mitte/waiting-list/weekdays", params=params)
        assert days.status == 429
        # Other traffic is not limited: the locations are no availability request.
        assert (await client.get("/api/v1/locations")).status == 200
    finally:
        await client.close()


@pytest.mark.req("R39")
async def test_the_pages_answer_429_with_retry_after_beyond_the_rate_limit(stack: Stack) -> None:
    client = await gateway_client(
        stack, bot_defence=True, bot_availability_burst=2, bot_availability_soft=2, bot_availability_rate=0.1
    )
    try:
        state = client.app[SEALER].seal({"loc": "mitte", "concern": "veraenderung", "mode": "in_person"})
        for _ in range(2):
            assert (await client.get("/time", params={"s": state})).status == 200
        limited = await client.get("/time", params={"s": state})
        assert limited.status == 429
        assert "Retry-After" in limited.headers
        assert "Zu viele Anfragen" in await limited.text()
    finally:
        await client.close()


@pytest.mark.req("R39")
async def test_head_requests_of_the_calendar_count_against_the_rate_limit_like_gets(stack: Stack) -> None:
    """aiohttp answers HEAD with the GET handler, which reads the availability all the same; the limit
    counted GETs only, so a client asking with HEAD made those reads unlimited."""
    client = await gateway_client(
        stack, bot_defence=True, bot_availability_burst=2, bot_availability_soft=2, bot_availability_rate=0.1
    )
    try:
        state = client.app[SEALER].seal({"loc": "mitte", "concern": "veraenderung", "mode": "in_person"})
        for _ in range(2):
            assert (await client.head("/time", params={"s": state})).status == 200
        assert (await client.head("/time", params={"s": state})).status == 429
        assert (await client.get("/time", params={"s": state})).status == 429
    finally:
        await client.close()


@pytest.mark.req("R43")
async def test_the_429_page_asks_to_wait_one_second_in_the_singular(stack: Stack) -> None:
    client = await gateway_client(
        stack, bot_defence=True, bot_availability_burst=1, bot_availability_soft=1, bot_availability_rate=2.0
    )
    try:
        state = client.app[SEALER].seal({"loc": "mitte", "concern": "veraenderung", "mode": "in_person"})
        for language, wait in (
            ("de", "Bitte warten Sie 1 Sekunde und versuchen Sie es dann noch einmal."),
            ("en", "Please wait 1 second and try again."),
            ("de-x-ls", "Bitte warten Sie 1 Sekunde. Versuchen"),
        ):
            answers = [await client.get("/time", params={"s": state, "lang": language}) for _ in range(3)]
            limited = answers[-1]
            assert limited.status == 429 and limited.headers["Retry-After"] == "1"
            assert wait in await limited.text()
    finally:
        await client.close()


@pytest.mark.req("R39")
async def test_abnormal_booking_traffic_must_solve_a_challenge_and_is_then_accepted(stack: Stack) -> None:
    client = await gateway_client(stack, bot_defence=True, bot_booking_soft=0, bot_challenge_cost=500)
    try:
        slot = await first_slot(client, concern="bescheid", mode="phone")
        body = {
            "location_id": "mitte",
            "concern_id": "bescheid",
            "start": slot["start"],
            "mode": "phone",
            "customer": {
                "first_name": "Robo",
                "last_name": "Test",
                "email": unique_email("challenge"),
                "phone": "0421 111111",
                "customer_number": unique_customer_number(),
            },
        }
        refused = await client.post("/api/v1/appointments", json=body)
        assert refused.status == 428
        error = (await refused.json())["error"]
        assert error["code"] == "challenge_required"
        challenge = error["details"][0]["challenge"]
        assert error["details"][0]["header"] == ALTCHA_HEADER

        wrong = base64.b64encode(
            json.dumps({"challenge": challenge, "solution": {"counter": 1, "derivedKey": "00"}}).encode()
        ).decode()
        assert (
            await client.post("/api/v1/appointments", json=body, headers={ALTCHA_HEADER: wrong})
        ).status == 428

        accepted = await client.post(
            "/api/v1/appointments", json=body, headers={ALTCHA_HEADER: solve(challenge)}
        )
        assert accepted.status == 201, await accepted.text()
        assert (await accepted.json())["status"] == "booked"
    finally:
        await client.close()


@pytest.mark.req("R39")
async def test_a_solution_nested_too_deep_for_json_is_refused_like_a_wrong_one(stack: Stack) -> None:
    """A solution is base64 JSON: one nested thousands of levels deep (it fits in a header) made Python's
    json module raise RecursionError, a 500 for the very clients the challenge is for. It is no solution:
    428 on the API, the check page again on the pages."""
    client = await gateway_client(stack, bot_defence=True, bot_booking_soft=0, bot_challenge_cost=500)
    try:
        deep = base64.b64encode(b"[" * 5000 + b"]" * 5000).decode()
        body = {"location_id": "mitte", "concern_id": "bescheid", "start": "2027-03-09T08:00:00+01:00"}
        refused = await client.post("/api/v1/appointments", json=body, headers={ALTCHA_HEADER: deep})
        assert refused.status == 428, await refused.text()
        assert (await refused.json())["error"]["code"] == "challenge_required"
        token = csrf_of(await (await client.get("/")).text())
        page = await client.post(
            "/challenge", data={"csrf_token": token, "next": "/", "altcha": deep}, allow_redirects=False
        )
        assert page.status == 428, await page.text()
        assert page.content_type == "text/html"
    finally:
        await client.close()


@pytest.mark.req("R39")
async def test_the_check_page_leads_back_only_to_a_page_of_ours_whatever_its_next_field_holds(
    stack: Stack,
) -> None:
    """The check page's form sends back to the page the customer came from. A `next` that leaves the site
    once normalised (TAB, CR and LF are dropped on the way out: "/<TAB>/evil.example" becomes
    "//evil.example") leads to the start page instead, solved or not; our own page stays the target."""
    client = await gateway_client(stack, bot_defence=True, bot_challenge_cost=500)
    try:
        token = csrf_of(await (await client.get("/")).text())
        defence = client.app[BOT_DEFENCE]

        async def send(target: str, *, solved: bool) -> ClientResponse:
            altcha_field = solve(defence.challenge()) if solved else "not solved"
            return await client.post(
                "/challenge",
                data={"csrf_token": token, "next": target, "altcha": altcha_field},
                allow_redirects=False,
            )

        for sneaky in (
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\t\t/evil.example/x",
            "/\x0b/evil.example",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
        ):
            solved = await send(sneaky, solved=True)
            assert solved.status == 303, repr(sneaky)
            assert solved.headers["Location"] == "/", repr(sneaky)
            again = await send(sneaky, solved=False)
            assert again.status == 428, repr(sneaky)
            assert "evil.example" not in await again.text(), repr(sneaky)
        back = await send("/details?s=abc", solved=True)
        assert back.headers["Location"] == "/details?s=abc"
    finally:
        await client.close()


@pytest.mark.req("R39")
async def test_the_challenge_endpoint_gives_a_fresh_signed_challenge_and_a_solution_is_good_once() -> None:
    defence = BotDefence(
        enabled=True,
        limits={Bucket.BOOKING: Limits(rate=0.01, burst=5, soft=0)},
        secret="a-test-secret-of-enough-length",
        challenge_cost=300,
    )
    first, second = defence.challenge(), defence.challenge()
    assert first["signature"] != second["signature"]
    solution = solve(first)
    assert defence.check("10.0.0.1", Bucket.BOOKING).verdict is Verdict.CHALLENGE_REQUIRED
    assert defence.check("10.0.0.1", Bucket.BOOKING, solution).verdict is Verdict.ALLOW
    # The same solution does not open the door for another client.
    assert defence.check("10.0.0.2", Bucket.BOOKING, solution).verdict is Verdict.CHALLENGE_REQUIRED


@pytest.mark.req("R39")
async def test_bot_defence_off_switches_rate_limits_and_challenges_off(stack: Stack) -> None:
    client = await gateway_client(
        stack,
        bot_defence=False,
        bot_availability_burst=1,
        bot_availability_soft=0,
        bot_availability_rate=0.01,
    )
    try:
        for _ in range(5):
            response = await client.get(
                "/api/v1/locations/mitte/availability", params={"concern": "veraenderung"}
            )
            assert response.status == 200
    finally:
        await client.close()


@pytest.mark.req("R39")
async def test_holds_from_many_addresses_of_one_ipv6_network_are_limited_as_one_client(stack: Stack) -> None:
    # Behind the ingress (a trusted proxy) the client's address comes from X-Forwarded-For.
    client = await gateway_client(stack, bot_defence=True, trusted_proxies="127.0.0.1/32")
    try:

        async def hold(address: str) -> int:
            response = await client.post(
                "/api/v1/locations/mitte/holds", json={}, headers={"X-Forwarded-For": address}
            )
            return response.status

        # 30 fresh addresses of one /64, as a bot picks them: the network's allowance runs out.
        answers = [await hold(f"2001:db8:1:2::{n:x}") for n in range(1, 31)]
        passed = [status for status in answers if status not in (428, 429)]
        assert len(passed) == 8  # bot_booking_soft: then the challenge, as for one address
        assert set(answers[len(passed) :]) <= {428, 429}
        # Another network, and an IPv4 address, have their own allowance.
        assert await hold("2001:db8:1:3::1") not in (428, 429)
        assert await hold("192.0.2.1") not in (428, 429)
        assert await hold("192.0.2.2") not in (428, 429)
    finally:
        await client.close()


OFFICE = "198.51.100.0/28"  # a jobcenter office's public NAT addresses (OTV_BOT_TRUSTED_NETWORKS)


async def hold_statuses(client: TestClient[Any, Any], forwarded: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        response = await client.post(
            "/api/v1/locations/mitte/holds", json={}, headers={"X-Forwarded-For": forwarded}
        )
        statuses.append(response.status)
    return statuses


def throttled(statuses: list[int]) -> int:
    return sum(status in (428, 429) for status in statuses)


@pytest.mark.req("R39")
async def test_customers_of_a_known_office_behind_one_nat_address_are_not_throttled_as_one_client(
    stack: Stack,
) -> None:
    """The self-service PCs of a jobcenter office reach the gateway from one address: with the defaults
    the ninth hold or booking within minutes met a challenge and the twenty-first a 429, for everyone in
    the office. Known networks get OTV_BOT_TRUSTED_FACTOR times the allowance; anyone else still counts."""
    client = await gateway_client(
        stack, bot_defence=True, trusted_proxies="127.0.0.1/32", bot_trusted_networks=OFFICE
    )
    try:
        assert throttled(await hold_statuses(client, "198.51.100.7", 40)) == 0
        outside = await hold_statuses(client, "203.0.113.5", 40)
        assert outside[:8] == [s for s in outside[:8] if s not in (428, 429)] and throttled(outside) == 32
    finally:
        await client.close()


@pytest.mark.req("R39")
async def test_naming_the_office_address_in_x_forwarded_for_gives_no_larger_allowance(stack: Stack) -> None:
    """Only a trusted proxy's X-Forwarded-For counts, and of it only the address the proxy saw: a client
    that writes the office's address into the header is still counted as itself."""
    direct = await gateway_client(stack, bot_defence=True, bot_trusted_networks=OFFICE)
    try:  # no trusted proxy: the header is ignored, the peer (127.0.0.1) is the client
        assert throttled(await hold_statuses(direct, "198.51.100.7", 20)) == 12
    finally:
        await direct.close()
    behind = await gateway_client(
        stack, bot_defence=True, trusted_proxies="127.0.0.1/32", bot_trusted_networks=OFFICE
    )
    try:  # the ingress appends the address it saw (203.0.113.5) behind the client's forged entry
        assert throttled(await hold_statuses(behind, "198.51.100.7, 203.0.113.5", 20)) == 12
    finally:
        await behind.close()


def test_a_known_network_has_a_larger_allowance_but_still_a_limit() -> None:
    defence = BotDefence(
        enabled=True,
        limits={Bucket.BOOKING: Limits(rate=0.0, burst=2, soft=2)},
        secret="a-test-secret-of-enough-length",
        trusted_networks="192.0.2.0/24, 2001:db8:5::/48",
        trusted_factor=3,
        now=lambda: 0.0,
    )
    for address in ("192.0.2.9", "::ffff:192.0.2.10", "2001:db8:5:1::9"):
        verdicts = [defence.check(address, Bucket.BOOKING).verdict for _ in range(7)]
        assert verdicts == [Verdict.ALLOW] * 6 + [Verdict.RATE_LIMITED], address
    assert [defence.check("192.0.3.1", Bucket.BOOKING).verdict for _ in range(3)][-1] is Verdict.RATE_LIMITED


@pytest.mark.parametrize(
    ("networks", "message"),
    [
        ("198.51.100.0/28, office", "'office' is no network"),
        ("10.0.0.0/8", "wider than an IPv4 /16"),
        ("0.0.0.0/0", "wider than an IPv4 /16"),
        ("2001:db8::/32", "wider than an IPv4 /16 or an IPv6 /48"),
        ("2001:db8::1/128", "narrower than an IPv6 /64"),
    ],
)
def test_the_gateway_refuses_known_networks_that_are_no_network_or_too_wide(
    networks: str, message: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        GatewaySettings(bot_trusted_networks=networks)


def test_an_ipv6_client_counts_by_its_64_and_an_ipv4_client_by_its_address() -> None:
    assert client_network("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:2::1") == client_network("2001:db8:1:2:ffff::2")
    assert client_network("2001:db8:1:3::1") != client_network("2001:db8:1:2::1")
    assert client_network("192.0.2.7") == "192.0.2.7"
    assert client_network("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_network("unknown") == "unknown"


def test_the_token_bucket_refills_over_time() -> None:
    now = [0.0]
    defence = BotDefence(
        enabled=True,
        limits={Bucket.AVAILABILITY: Limits(rate=1.0, burst=2, soft=2)},
        secret="a-test-secret-of-enough-length",
        now=lambda: now[0],
    )
    assert defence.check("c", Bucket.AVAILABILITY).allowed
    assert defence.check("c", Bucket.AVAILABILITY).allowed
    limited = defence.check("c", Bucket.AVAILABILITY)
    assert limited.verdict is Verdict.RATE_LIMITED and limited.retry_after == 1
    now[0] += 1.0
    assert defence.check("c", Bucket.AVAILABILITY).allowed


# --- CSRF, headers, embedding -------------------------------------------------------------------------


@pytest.mark.req("R42")
async def test_a_form_without_a_valid_csrf_token_is_refused(client: TestClient[Any, Any]) -> None:
    page = await client.get("/")
    token = csrf_of(await page.text())
    missing = await client.post("/", data={"location": "mitte"}, allow_redirects=False)
    assert missing.status == 403
    assert "Das Formular ist abgelaufen" in await missing.text()
    forged = await client.post("/", data={"location": "mitte", "csrf_token": "0" * 64}, allow_redirects=False)
    assert forged.status == 403
    # Not ASCII at all (hmac's string comparison raised for it: a 500 before).
    odd = await client.post("/", data={"location": "mitte", "csrf_token": "\N{SLIGHTLY SMILING FACE}" * 64})
    assert odd.status == 403 and "Das Formular ist abgelaufen" in await odd.text()
    accepted = await client.post("/", data={"location": "mitte", "csrf_token": token}, allow_redirects=False)
    assert accepted.status == 303
    assert accepted.headers["Location"].startswith("/concern?s=")


@pytest.mark.parametrize(
    ("rest", "content_type"),
    [
        (b"&location=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"&location=mitte", "application/x-www-form-urlencoded; charset=bogus"),
        (b"&location=mitte&pad=" + b"x" * 300_000, "application/x-www-form-urlencoded"),
    ],
    ids=["not-utf-8", "unknown-charset", "too-large"],
)
async def test_a_form_that_cannot_be_read_is_the_expired_form_page_not_a_500(
    client: TestClient[Any, Any], rest: bytes, content_type: str
) -> None:
    """A body no browser sends (bytes that are not UTF-8, a charset Python does not know; more than the
    gateway takes) made aiohttp raise: a 500 or a 413 with the JSON error body on a page. It is a form
    that cannot be accepted, said on the page like an expired one."""
    token = csrf_of(await (await client.get("/")).text())
    for path in ("/", "/finder", "/manage", "/waiting-list/join", "/details/hold"):
        response = await client.post(
            path, data=f"csrf_token={token}".encode() + rest, headers={"Content-Type": content_type}
        )
        page = await response.text()
        assert response.status in (400, 413), (path, response.status, page[:200])
        assert response.content_type == "text/html" and "Das Formular ist abgelaufen" in page


@pytest.mark.parametrize("value", [b"\xff\xfe", b"a" * 41 + b"\xff\xfe"], ids=["short", "43-long"])
async def test_a_csrf_cookie_that_is_not_utf_8_is_no_cookie_not_a_500(
    client: TestClient[Any, Any], value: bytes
) -> None:
    """The form token is an HMAC of the cookie's text, which raised for a cookie with bytes that are not
    UTF-8 (aiohttp keeps them as lone surrogates): a 500 on every form, and on every page for one of the
    cookie's length. A sibling host of the domain can set such a cookie for a customer's browser. It is
    treated as no cookie: the page gets a new one, a form without a same-origin word is refused."""

    async def raw(method: str, path: str, form: bytes = b"") -> bytes:
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(form)}\r\n"
        if form:
            head += "Content-Type: application/x-www-form-urlencoded\r\n"
        writer.write(head.encode() + b"Cookie: otv_csrf=" + value + b"\r\n\r\n" + form)
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return answer

    page = await raw("GET", "/")
    assert page.startswith(b"HTTP/1.1 200") and b"Set-Cookie: otv_csrf=" in page, page[:300]
    posted = await raw("POST", "/", b"csrf_token=" + b"0" * 64 + b"&location=mitte")
    assert posted.startswith(b"HTTP/1.1 403") and b"Das Formular ist abgelaufen" in posted


async def test_a_foreign_origin_without_the_cookie_is_refused(stack: Stack) -> None:
    client = await gateway_client(stack)
    try:
        token = csrf_of(await (await client.get("/")).text())
        client.session.cookie_jar.clear()
        foreign = await client.post(
            "/",
            data={"location": "mitte", "csrf_token": token},
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
        )
        assert foreign.status == 403
    finally:
        await client.close()


@pytest.mark.req("R42")
async def test_behind_tls_a_csrf_cookie_another_host_of_the_domain_planted_is_no_cookie(stack: Stack) -> None:
    """Cookie tossing: a sibling host of the domain (the framing homepage, any subdomain) fetches a form
    itself, so it knows a cookie value and its token, sets that cookie for the whole domain in the
    customer's browser and posts the form from its own page. Behind TLS the gateway's cookie is
    `__Host-otv_csrf` (Secure, Path=/, no Domain: no other host can set it), and a cookie of the bare name
    is no cookie at all, so the foreign post is refused; the customer's own form goes through."""
    public = "https://termine.jobcenter-bremen.example"
    client = await gateway_client(stack, public_base_url=public)
    try:
        page = await client.get("/")
        raw = page.headers["Set-Cookie"]
        assert raw.startswith("__Host-otv_csrf="), raw
        attributes = {part.strip().split("=")[0].lower() for part in raw.split(";")[1:]}
        assert {"secure", "path"} <= attributes and "domain" not in attributes, raw
        assert "Path=/" in raw, raw
        own_value = page.cookies["__Host-otv_csrf"].value
        own_token = csrf_of(await page.text())
        client.session.cookie_jar.clear()

        # What the sibling host got for itself, planted under the bare name.
        theirs = await client.get("/")
        planted, planted_token = theirs.cookies["__Host-otv_csrf"].value, csrf_of(await theirs.text())
        client.session.cookie_jar.clear()
        tossed = await client.post(
            "/",
            data={"location": "mitte", "csrf_token": planted_token},
            headers={
                "Cookie": f"otv_csrf={planted}",
                "Origin": "https://www.jobcenter-bremen.example",
                "Sec-Fetch-Site": "same-site",
            },
            allow_redirects=False,
        )
        assert tossed.status == 403 and "Das Formular ist abgelaufen" in await tossed.text()

        # A customer who still holds a cookie of the bare name (before the update) and posts from our page:
        # accepted on the browser's word, and given the new cookie with the next page.
        client.session.cookie_jar.clear()
        former = await client.post(
            "/",
            data={"location": "mitte", "csrf_token": planted_token},
            headers={"Cookie": f"otv_csrf={planted}", "Origin": public, "Sec-Fetch-Site": "same-origin"},
            allow_redirects=False,
        )
        assert former.status == 303

        client.session.cookie_jar.clear()
        accepted = await client.post(
            "/",
            data={"location": "mitte", "csrf_token": own_token},
            headers={"Cookie": f"__Host-otv_csrf={own_value}"},
            allow_redirects=False,
        )
        assert accepted.status == 303
    finally:
        await client.close()


@pytest.mark.req("R42")
async def test_a_browser_without_the_cookie_posts_from_our_own_page_and_is_accepted(stack: Stack) -> None:
    # Under `Referrer-Policy: no-referrer` a browser sends `Origin: null` even from our own page, and
    # behind the TLS ingress its Origin is https while the gateway itself is reached over http.
    client = await gateway_client(stack, public_base_url="https://termine.jobcenter-bremen.example")
    try:
        token = csrf_of(await (await client.get("/")).text())
        client.session.cookie_jar.clear()

        async def post(headers: dict[str, str]) -> int:
            response = await client.post(
                "/", data={"location": "mitte", "csrf_token": token}, headers=headers, allow_redirects=False
            )
            return response.status

        assert await post({"Origin": "null", "Sec-Fetch-Site": "same-origin"}) == 303
        assert await post({"Origin": "https://termine.jobcenter-bremen.example"}) == 303
        assert await post({"Origin": "null", "Sec-Fetch-Site": "cross-site"}) == 403
        assert await post({"Origin": "null", "Sec-Fetch-Site": "same-site"}) == 403
        assert await post({"Origin": "null"}) == 403  # nothing says where it comes from
        assert await post({"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"}) == 403
    finally:
        await client.close()


@pytest.mark.req("R42")
async def test_a_customer_whose_browser_keeps_no_cookies_can_send_the_forms(
    stack: Stack, browser: Browser
) -> None:
    client = await gateway_client(stack)
    context = await new_context(browser, DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(str(client.make_url("/")))
        # As a browser with cookies off, or blocking them in a frame from another site: the form goes
        # out without the cookie, with the Origin and Sec-Fetch-Site Chromium sets itself.
        await context.clear_cookies()
        await page.locator("#location-mitte").check()
        await page.get_by_role("button", name="Weiter").click()
        await expect(page).to_have_url(re.compile(r"/concern\?s="))
    finally:
        await context.close()
        await client.close()


@pytest.mark.req("R36")
async def test_every_page_has_the_security_headers_and_frame_ancestors_from_configuration(
    client: TestClient[Any, Any],
) -> None:
    for path in (
        "/",
        "/accessibility",
        "/privacy",
        "/embed",
        "/manage/00000000-0000-0000-0000-000000000000?token=x",
    ):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://www.jobcenter-bremen.example" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    api = await client.get("/api/v1/locations")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in api.headers["Content-Security-Policy"]


@pytest.mark.req("R34")
@pytest.mark.req("R43")
async def test_the_privacy_notice_states_the_configured_retention_and_whom_to_ask(stack: Stack) -> None:
    """Art. 13 GDPR: who is responsible, whom to ask, and how long personal data are kept, taken from the
    retention period the services erase by (OTV_RETENTION_DAYS), in each language; every page links it."""
    client = await gateway_client(
        stack,
        retention_days=35,
        privacy_controller="Jobcenter Probe, Am Wall 1, 28195 Bremen",
        privacy_contact="dsb@probe.example",
    )
    try:
        german = await (await client.get("/privacy")).text()
        assert "<h1>Datenschutzhinweise</h1>" in german
        assert "Verantwortlich für Ihre Daten ist: Jobcenter Probe, Am Wall 1, 28195 Bremen." in german
        assert 'href="mailto:dsb@probe.example"' in german
        assert "35 Tage nach Ihrem Termin löschen wir Ihren Namen" in german
        assert "6. Dezember 2026" in german
        english = await (await client.get("/privacy?lang=en")).text()
        assert "35 days after your appointment we delete your name" in english
        easy = await (await client.get("/privacy?lang=de-x-ls")).text()
        assert "Wie lange haben wir Ihre Daten?" in easy and "35 Tage nach Ihrem Termin" in easy
        start = await (await client.get("/?lang=de")).text()
        assert ">Datenschutzhinweise</a>" in start and 'href="/privacy' in start
        # The embedding page is for the jobcenter's web team (linked from the staff start page), not for
        # customers: their footer does not offer it.
        assert 'href="/embed' not in start
        assert ">Impressum</a>" not in start  # no imprint configured, no link
    finally:
        await client.close()
    client = await gateway_client(stack, imprint_url="https://www.jobcenter-bremen.example/impressum")
    try:
        page = await (await client.get("/privacy?lang=en")).text()
        assert '<a href="https://www.jobcenter-bremen.example/impressum">Imprint</a>' in page
    finally:
        await client.close()


@pytest.mark.req("R36")
async def test_frame_ancestors_defaults_to_self(stack: Stack) -> None:
    client = await gateway_client(stack)
    try:
        csp = (await client.get("/")).headers["Content-Security-Policy"]
        assert "frame-ancestors 'self'" in csp
    finally:
        await client.close()


@pytest.mark.req("R36")
async def test_the_embed_page_gives_the_iframe_snippet_and_the_resize_script(
    client: TestClient[Any, Any],
) -> None:
    page = await (await client.get("/embed")).text()
    assert "&lt;iframe" in page and "/static/js/embed.js" in page
    script = await client.get("/static/js/embed.js")
    assert script.status == 200
    assert "otv:height" in await script.text()


@pytest.mark.req("R41")
async def test_the_manage_page_with_a_wrong_token_says_the_link_is_not_valid(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/manage/00000000-0000-0000-0000-000000000000?token=wrong")
    assert response.status == 404
    assert "Dieser Link ist nicht gültig" in await response.text()
    assert response.headers["Referrer-Policy"] == "no-referrer"
    # A token no link has (a NUL, a line break: it travels to booking in a header, which aiohttp
    # refuses to send) is a link that is not valid too, on every page of the link, not a 500.
    for page in ("", "/cancel", "/reschedule"):
        for odd in ("%00", "a%0Ab", "a%0D%0AX-Evil:%201", "%C3%A4"):
            response = await client.get(f"/manage/00000000-0000-0000-0000-000000000000{page}?token={odd}")
            assert response.status == 404, (page, odd, await response.text())
            assert "Dieser Link ist nicht gültig" in await response.text()


# --- languages (R43) ----------------------------------------------------------------------------------


@pytest.mark.req("R43")
async def test_the_chosen_language_is_kept_across_pages(client: TestClient[Any, Any]) -> None:
    german = await (await client.get("/")).text()
    assert '<html lang="de">' in german and "Standort wählen" in german
    english = await client.get("/?lang=en")
    assert '<html lang="en">' in await english.text()
    # Kept by the cookie ...
    statement = await (await client.get("/accessibility")).text()
    assert '<html lang="en">' in statement and "written on 25 November 2026" in statement
    # ... and by the links (for a framed page where cookies are blocked).
    easy = await (await client.get("/?lang=de-x-ls")).text()
    assert '<html lang="de-x-ls">' in easy
    assert 'href="/accessibility?lang=de-x-ls"' in easy
    client.session.cookie_jar.clear()
    statement = await (await client.get("/accessibility?lang=de-x-ls")).text()
    assert '<html lang="de-x-ls">' in statement and "25. November 2026" in statement  # a date, not 2026-11-25
    # The switcher is on every page, naming each language in itself.
    for name in ("Deutsch", "Leichte Sprache", "English"):
        assert f">{name}</a>" in easy


# --- the accessibility statement (R42) --------------------------------------------------------------


@pytest.mark.req("R42")
@pytest.mark.parametrize(
    ("language", "heading"),
    [("de", "Barrieren melden"), ("en", "Tell us about barriers"), ("de-x-ls", "Probleme melden")],
)
async def test_the_accessibility_statement_gives_the_configured_feedback_address_and_the_conciliation_body(
    stack: Stack, language: str, heading: str
) -> None:
    """BITV 2.0: whoever meets a barrier can report it (the address the operator configured, or the
    hotline) and, if the answer does not satisfy, turn to the conciliation body."""
    contact = "barrieren-melden@jobcenter-bremen.example"
    client = await gateway_client(stack, accessibility_contact=contact, hotline="0421 566-7777")
    try:
        response = await client.get("/accessibility", params={"lang": language})
        assert response.status == 200
        html = await response.text()
    finally:
        await client.close()
    feedback = html.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]
    assert f'<a href="mailto:{contact}">{contact}</a>' in feedback
    assert "0421 566-7777" in feedback
    # (Leichte Sprache splits long words with a middle dot.)
    assert "Schlichtungsstelle nach dem Behindertengleichstellungsgesetz" in html.replace("·", "")
    assert "info@schlichtungsstelle-bgg.de" in html


def test_the_gateway_refuses_an_accessibility_contact_that_is_no_mail_address() -> None:
    """An empty or broken setting would give a `mailto:` link that reaches nobody."""
    for wrong in ("", "barrierefreiheit", "a b@example.org"):
        with pytest.raises(pydantic.ValidationError):
            GatewaySettings(accessibility_contact=wrong)


# --- errors tied to fields (R42) -------------------------------------------------------------------


@pytest.mark.req("R42")
async def test_errors_are_tied_to_their_fields_and_summarised_at_the_top(
    client: TestClient[Any, Any],
) -> None:
    slot = await first_slot(client)
    state = client.app[SEALER].seal(
        {
            "loc": "mitte",
            "concern": "veraenderung",
            "mode": "phone",
            "start": slot["start"],
            "end": slot["end"],
        }
    )
    page = await client.get("/details", params={"s": state})
    token = csrf_of(await page.text())
    response = await client.post(
        f"/details?s={state}",
        data={"csrf_token": token, "first_name": "", "email": "not-an-address", "customer_number": "12"},
    )
    assert response.status == 422
    html = await response.text()
    summary = html[
        html.index('class="error-summary"') : html.index("</div>", html.index('class="error-summary"'))
    ]
    for field in ("first_name", "last_name", "email", "phone", "customer_number"):
        assert f'href="#field-{field}"' in summary
        tag = re.search(rf'<input[^>]*id="field-{field}"[^>]*>', html)
        assert tag, field
        assert 'aria-invalid="true"' in tag.group(0)
        assert f"{field}-error" in tag.group(0)
        assert f'id="{field}-error"' in html
    assert "Geben Sie die E-Mail-Adresse in der richtigen Form an" in html
    assert html.count("<title>Fehler:") == 1
    # One of the two numbers is needed (the group's hint says so): neither is labelled "optional".
    for field in ("customer_number", "household_number"):
        label = re.search(rf'<label for="field-{field}">(.*?)</label>', html, re.DOTALL)
        assert label and "optional" not in label.group(1), field
    assert re.search(r'<label for="field-phone">[^<]*<span class="optional">', html) is None  # by phone


@pytest.mark.req("R47")
@pytest.mark.req("R42")
@pytest.mark.parametrize(
    ("field", "number", "told"),
    [
        (
            "household_number",
            f"12345BG{uuid.uuid4().int % 10**7:07d}",
            "Mit dieser BG-Nummer ist schon ein Termin",
        ),
        ("customer_number", unique_customer_number(), "Mit dieser Kundennummer ist schon ein Termin"),
    ],
)
async def test_a_number_with_a_pending_appointment_is_named_at_its_field_with_what_helps(
    client: TestClient[Any, Any], field: str, number: str, told: str
) -> None:
    """A household member booked with the shared BG number (or someone with this customer number); the
    next, with an address of their own, is told so at that number's field with the hotline, not that
    "you" have an appointment whose link "you" hold."""
    answer = await client.get(
        "/api/v1/locations/mitte/availability", params={"concern": "veraenderung", "mode": "phone"}
    )
    slots = (await answer.json())["slots"]
    member = {"first_name": "Ada", "last_name": "Haus", "phone": "0421 222222", field: number}
    first = await client.post(
        "/api/v1/appointments",
        json={
            "location_id": "mitte",
            "concern_id": "veraenderung",
            "start": slots[0]["start"],
            "mode": "phone",
            "customer": {**member, "email": unique_email("member")},
        },
    )
    assert first.status == 201, await first.text()

    state = client.app[SEALER].seal(
        {
            "loc": "mitte",
            "concern": "veraenderung",
            "mode": "phone",
            "start": slots[-1]["start"],
            "end": slots[-1]["end"],
        }
    )
    token = csrf_of(await (await client.get("/details", params={"s": state})).text())
    response = await client.post(
        f"/details?s={state}",
        data={"csrf_token": token, **member, "first_name": "Bo", "email": unique_email("other-member")},
    )
    html = await response.text()
    assert response.status == 409
    assert told in html and "0421 566-0" in html
    # The hotline dials at the field; in the error summary, itself a link to the field, it is text.
    error = re.search(rf'<p class="field-error" id="{field}-error">.*?</p>', html, re.S)
    assert error and '<a href="tel:+494215660">0421 566-0</a>' in error.group(0)
    summary = html[
        html.index('class="error-summary"') : html.index("</div>", html.index('class="error-summary"'))
    ]
    assert "tel:" not in summary and "0421 566-0" in summary
    tag = re.search(rf'<input[^>]*id="field-{field}"[^>]*>', html)
    assert tag and 'aria-invalid="true"' in tag.group(0)
    assert "Sie haben schon einen Termin" not in html
    email_tag = re.search(r'<input[^>]*id="field-email"[^>]*>', html)
    assert email_tag and "aria-invalid" not in email_tag.group(0)


@pytest.mark.req("R5")
@pytest.mark.req("R39")
async def test_the_booking_form_sent_again_after_back_shows_the_same_booking_not_an_error(
    client: TestClient[Any, Any], pools: dict[str, asyncpg.Pool]
) -> None:
    """Booked, then Back (the page is loaded again), then "book" once more: the customer sees the booking
    made, not "you already have an appointment"; the same form changed after Back is a new attempt."""
    slot = await first_slot(client, concern="veraenderung", mode="in_person")
    state = client.app[SEALER].seal({"loc": "mitte", "concern": "veraenderung", "mode": "in_person"})
    token = csrf_of(await (await client.get("/")).text())
    held = await client.post(
        f"/time?s={state}", data={"csrf_token": token, "start": slot["start"]}, allow_redirects=False
    )
    details_url = held.headers["Location"]
    email = unique_email("back-button")
    person = {
        "first_name": "Zurück",
        "last_name": "Taste",
        "email": email,
        "customer_number": unique_customer_number(),
    }

    async def send(changes: dict[str, str] | None = None) -> Any:
        page = await (await client.get(details_url)).text()  # Back loads the page again (no-store)
        key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
        assert key
        data = {"csrf_token": csrf_of(page), "idempotency_key": key.group(1), **person, **(changes or {})}
        return await client.post(details_url, data=data, allow_redirects=False)

    first, again = await send(), await send()
    assert first.status == again.status == 303
    opened = [
        client.app[SEALER].open(parse_qs(urlsplit(r.headers["Location"]).query)["s"][0])
        for r in (first, again)
    ]
    assert opened[0] and opened[1] and opened[0]["id"] == opened[1]["id"]
    assert (
        await pools["booking"].fetchval("SELECT count(*) FROM appointments WHERE lower(email) = $1", email)
        == 1
    )
    changed = await send({"first_name": "Zurückgekehrt"})  # changed after Back: the one-appointment rule
    assert changed.status == 409 and "Sie haben schon einen Termin" in await changed.text()


@pytest.mark.req("R39")
async def test_the_booking_page_shows_the_proof_of_work_widget_and_books_once_it_is_solved(
    stack: Stack, browser: Browser
) -> None:
    client = await gateway_client(stack, bot_defence=True, bot_booking_soft=0, bot_challenge_cost=1000)
    context = await new_context(browser, DESKTOP)
    try:
        slot = await first_slot(client, concern="arbeitsaufnahme", mode="phone")
        state = client.app[SEALER].seal(
            {
                "loc": "mitte",
                "concern": "arbeitsaufnahme",
                "mode": "phone",
                "start": slot["start"],
                "end": slot["end"],
            }
        )
        page = await context.new_page()
        await page.goto(str(client.make_url("/details")) + f"?s={state}")
        await expect(page.locator("altcha-widget")).to_be_visible()
        # The widget solves the challenge by itself (local workers, no third party) and fills its field.
        await expect(page.locator("input[name=altcha]")).to_have_value(re.compile(".{20,}"), timeout=30_000)
        await Shots("challenge").take(page, "1-widget-solved")
        await page.locator("#field-first_name").fill("Mensch")
        await page.locator("#field-last_name").fill("Echt")
        await page.locator("#field-email").fill(unique_email("widget"))
        await page.locator("#field-phone").fill("0421 222222")
        await page.locator("#field-customer_number").fill(unique_customer_number())
        await page.locator("#details-form button[type=submit]").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")
    finally:
        await context.close()
        await client.close()


# --- the responsibility finder (R3) -------------------------------------------------------------------


async def find(client: TestClient[Any, Any], **address: str) -> str:
    token = csrf_of(await (await client.get("/")).text())
    response = await client.post("/finder", data={"csrf_token": token, **address})
    assert response.status == 200
    return await response.text()


@pytest.mark.req("R3")
async def test_the_finder_names_the_responsible_location_and_offers_to_continue_there(
    client: TestClient[Any, Any],
) -> None:
    page = await find(client, street="Am Wall", house_number="1", postcode="28195")
    assert "Ihr Standort ist:" in page
    assert '<input type="hidden" name="location" value="mitte">' in page
    young = await find(client, street="Am Wall", house_number="1", postcode="28195", under_25="yes")
    assert '<input type="hidden" name="location" value="jba">' in young


@pytest.mark.req("R3")
async def test_an_address_of_another_jobcenter_gets_the_hotline_notice(client: TestClient[Any, Any]) -> None:
    page = await find(client, street="Grimsbystraße", house_number="1", postcode="27568")
    assert "Für Sie ist ein anderes Jobcenter zuständig" in page
    assert '<strong><a href="tel:+494711428450">0471 1428-450</a></strong>' in page


@pytest.mark.req("R3")
async def test_an_unknown_address_says_what_to_do(client: TestClient[Any, Any]) -> None:
    page = await find(client, street="Gibtsnichtweg", house_number="1", postcode="28195")
    assert "Wir haben diese Adresse nicht gefunden." in page
    hotline = '<a href="tel:+494215660">0421 566-0</a>'  # a link a phone dials
    assert f"Oder rufen Sie uns an, wir helfen Ihnen: {hotline}" in page
    # One hotline on the page: the footer names the number the finder gives.
    assert f"Rufen Sie die Hotline des Jobcenters Bremen an: {hotline}" in page


@pytest.mark.req("R3")
@pytest.mark.parametrize(
    ("language", "not_found", "from_the_list", "needs_number", "not_bremen", "no_online"),
    [
        (
            "de",
            "Wir haben diese Adresse nicht gefunden.",
            "aus der Liste",
            "Bitte geben Sie auch Ihre Hausnummer an.",
            "Diese Postleitzahl gehört nicht zur Stadt Bremen.",
            "Ihr Standort vergibt zurzeit keine Termine, weder online noch am Telefon.",
        ),
        (
            "en",
            "We could not find this address.",
            "from the list",
            "Please also give your house number.",
            "This postcode is not in the city of Bremen.",
            "Your location is not giving appointments at the moment, neither online nor by phone.",
        ),
        (
            "de-x-ls",
            "Wir haben die Adresse nicht gefunden.",
            "in der Liste",
            "Bitte schreiben Sie auch Ihre Haus",
            "ist nicht in der Stadt Bremen.",
            "Bei Ihrem Standort gibt es gerade keine Termine. Nicht im Internet und nicht am Telefon.",
        ),
    ],
    ids=["de", "en", "de-x-ls"],
)
async def test_a_found_street_that_needs_more_or_takes_no_bookings_is_not_called_not_found(
    client: TestClient[Any, Any],
    pools: dict[str, asyncpg.Pool],
    language: str,
    not_found: str,
    from_the_list: str,
    needs_number: str,
    not_bremen: str,
    no_online: str,
) -> None:
    """Only an unknown street is "not found"; otherwise the finder's own answer, with the hotline once."""

    async def ask(status: int = 200, **address: str) -> str:
        token = csrf_of(await (await client.get(f"/?lang={language}")).text())
        response = await client.post(f"/finder?lang={language}", data={"csrf_token": token, **address})
        assert response.status == status
        return await response.text()

    def finder_result(page: str) -> str:
        found = re.search(r'<section class="panel finder-result".*?</section>', page, re.S)
        assert found
        return found.group(0)

    unknown = finder_result(await ask(street="Gibtsnichtweg", house_number="1", postcode="28195"))
    assert not_found in unknown and from_the_list in unknown
    needs_more = finder_result(await ask(422, street="Stader Straße"))  # an error at the field too
    outside = finder_result(await ask(street="Sögestraße", postcode="20095"))
    await pools["catalog"].execute("UPDATE locations SET active = false WHERE id = 'mitte'")
    try:
        inactive = finder_result(await ask(street="Am Wall", house_number="1", postcode="28195"))
    finally:
        await pools["catalog"].execute("UPDATE locations SET active = true WHERE id = 'mitte'")
    for result, message in ((needs_more, needs_number), (outside, not_bremen), (inactive, no_online)):
        assert message in result
        assert not_found not in result and from_the_list not in result
    for result in (outside, inactive):
        assert result.count("0421 566-0") == 1


@pytest.mark.req("R42")
async def test_every_day_of_the_calendar_tells_a_screen_reader_whether_it_can_be_chosen(
    client: TestClient[Any, Any],
) -> None:
    """The day number is hidden from screen readers; each day says instead what it is (WCAG 1.3.1)."""
    state = client.app[SEALER].seal({"loc": "mitte", "concern": "veraenderung", "mode": "in_person"})
    html = await (await client.get("/time", params={"s": state})).text()
    days = re.findall(r'<td class="(?:no-slots|has-slots[^"]*)">(.*?)</td>', html)
    assert len(days) >= 56
    assert all('class="visually-hidden"' in day for day in days)
    assert "Montag, 1. März 2027: nicht buchbar" in html  # a past day (the clock stands on 8 March)


# --- the held slot (R38, WCAG 2.2.1: no time limit without warning) ------------------------------------


async def hold_a_phone_slot(client: TestClient[Any, Any]) -> str:
    """Choose the first free phone slot of Mitte without a browser; the contact form's address."""
    slot = await first_slot(client, concern="kontaktdaten", mode="phone")
    state = client.app[SEALER].seal({"loc": "mitte", "concern": "kontaktdaten", "mode": "phone"})
    token = csrf_of(await (await client.get("/")).text())
    chosen = await client.post(
        f"/time?s={state}", data={"csrf_token": token, "start": slot["start"]}, allow_redirects=False
    )
    assert chosen.status == 303
    return str(chosen.headers["Location"])


@pytest.mark.req("R42")
async def test_a_hold_with_less_than_a_minute_left_says_about_1_minute_and_no_fixed_2_minutes(
    client: TestClient[Any, Any], stack: Stack
) -> None:
    details_url = await hold_a_phone_slot(client)
    assert "(etwa 5 Minuten)" in await (await client.get(details_url)).text()
    stack.clock.advance(timedelta(minutes=4, seconds=30))
    try:
        page = await (await client.get(details_url)).text()
        english = await (await client.get(f"{details_url}&lang=en")).text()
    finally:
        stack.clock.advance(timedelta(minutes=-4, seconds=-30))
    assert "für Sie frei (etwa 1 Minute)." in page
    # The warning a script announces when at most 2 minutes are left does not promise 2 more minutes.
    assert "noch 2 Minuten" not in page
    assert "nur noch kurz für Sie frei (höchstens 2 Minuten)." in page
    assert "(about 1 minute)." in english and "2 more minutes" not in english


@pytest.mark.req("R42")
async def test_a_held_time_can_be_held_again_after_it_ran_out_without_a_script_keeping_what_was_typed(
    client: TestClient[Any, Any], stack: Stack
) -> None:
    details_url = await hold_a_phone_slot(client)
    held = await (await client.get(details_url)).text()
    assert "Wir halten diesen Termin bis 07:35 Uhr" in held
    assert re.search(r'data-hold-seconds="[1-9][0-9]*"', held)
    assert 'id="hold-expired" hidden' in held
    assert 'id="hold-renew"' in held  # without a script the renewal is always there

    stack.clock.advance(timedelta(minutes=30))
    try:
        expired = await (await client.get(details_url)).text()
        assert 'data-hold-seconds="0"' in expired
        assert "Wir halten diesen Termin nicht mehr für Sie frei." in expired
        assert (
            "Brauchen Sie mehr Zeit? Drücken Sie unter dem Formular auf „Termin erneut freihalten“."
            in expired
        )
        rehold = re.search(
            r'id="hold-renew" form="details-form" formaction="(/details/hold\?s=[^"]+)"', expired
        )
        assert rehold
        typed = {
            "first_name": "Erika",
            "last_name": "Mustermann",
            "email": "erika@example.org",
            "phone": "0421 1",
        }
        again = await client.post(
            rehold.group(1).replace("&amp;", "&"), data={"csrf_token": csrf_of(expired), **typed}
        )
        page = await again.text()
        assert again.status == 200, page
        assert "Wir halten diesen Termin bis 08:05 Uhr" in page  # five minutes from now
        assert 'id="hold-expired" hidden' in page
        for name, value in typed.items():
            assert re.search(rf'name="{name}"[^>]*value="{value}"', page), name
        assert "error-summary" not in page  # nothing was checked yet: the customer was still typing
        # The page's form and language links carry the new hold; a reload of the renewal's address
        # leads back to the form.
        booked_url = re.search(r'action="(/details\?s=[^"]+)"', page)
        assert booked_url and booked_url.group(1) != details_url
        assert (
            "Wir halten diesen Termin bis 08:05 Uhr" in await (await client.get(booked_url.group(1))).text()
        )
        assert re.search(r'href="/details\?s=[^"]+&amp;lang=en"', page)
        reloaded = await client.get(rehold.group(1).replace("&amp;", "&"), allow_redirects=False)
        assert reloaded.status == 303 and reloaded.headers["Location"].startswith("/details?s=")
    finally:
        stack.clock.advance(timedelta(minutes=-30))


@pytest.mark.req("R42")
@pytest.mark.parametrize(
    ("hotline", "link"),
    [
        ("0421 566-0", '<a href="tel:+494215660">0421 566-0</a>'),
        ("+49 (0)421 361-0", '<a href="tel:+494213610">+49 (0)421 361-0</a>'),
        ("115", None),
    ],
)
async def test_the_hotline_on_the_pages_dials_as_a_global_number_or_is_plain_text(
    stack: Stack, hotline: str, link: str | None
) -> None:
    """A phone dials `tel:+49421…`; `tel:04215660` is a local number without a context (RFC 3966). A
    number without a global form is shown, not linked."""
    client = await gateway_client(stack, hotline=hotline)
    try:
        pages = [
            await (await client.get(path, params={"lang": "de"})).text() for path in ("/", "/accessibility")
        ]
    finally:
        await client.close()
    for html in pages:
        footer = html.split('<footer class="site-footer">', 1)[1]
        if link is None:
            assert "tel:" not in html and f"Jobcenters Bremen an: {hotline}</p>" in footer
        else:
            assert f"Rufen Sie die Hotline des Jobcenters Bremen an: {link}</p>" in footer
            assert re.findall(r'href="(tel:[^"]*)"', html) == [link.split('"')[1]] * html.count("tel:")
