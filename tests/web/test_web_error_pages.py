"""Addresses the customer pages do not have, wrong methods, unexpected failures and over-long dialogue
states (R42, R43): a citizen's browser gets a page in their language with a way back to the start, a
program gets the architecture's JSON error body, and no answer carries a header a proxy refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog.testing
from aiohttp import ClientResponse, CookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from services.gateway.web.pages import SEALER
from tests.conftest import free_port, svc_settings

# A made-up address, a trailing slash, a path under a page, a typo, a doubled slash, bytes that are no text.
UNKNOWN_PATHS = ("/foo", "/manage/", "/buchen/unknown", "/concernn", "/concern/", "//concern", "/%ff", "/%00")
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# What the pages' state in the address may be at most: nginx answers 502 from 4 or 8 KB of headers on.
LOCATION_LIMIT = 2000


async def _boom(_request: web.Request) -> web.StreamResponse:
    raise RuntimeError("an unexpected failure behind a page")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    settings = svc_settings(
        GatewaySettings,
        integrations=False,
        bot_defence=False,
        frame_ancestors="'self' https://www.jobcenter-bremen.example",
    )
    app = create_gateway(settings)  # type: ignore[arg-type]
    app.router.add_get("/test-only/failure", _boom)  # a page whose handler fails unexpectedly
    port = free_port()
    # Browsers accept the Secure CSRF cookie on http://127.0.0.1; aiohttp's client must be told so.
    jar = CookieJar(unsafe=True, treat_as_secure_origin=[f"http://127.0.0.1:{port}"])
    async with TestClient(TestServer(app, host="127.0.0.1", port=port), cookie_jar=jar) as started:
        yield started


async def raw_get(client: TestClient[Any, Any], path: str, **kwargs: Any) -> ClientResponse:
    """A request with the path exactly as typed (`//x`, `%ff`): the test client would normalise it."""
    base = str(client.make_url("/")).rstrip("/")
    return await client.session.get(URL(base + path, encoded=True), allow_redirects=False, **kwargs)


def assert_a_customer_page(response: ClientResponse, language: str) -> None:
    assert response.content_type == "text/html"
    assert response.headers["Content-Language"] == language
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self' https://www.jobcenter-bremen.example" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


# --- 404: addresses the pages do not have ------------------------------------------------------------


@pytest.mark.req("R43")
@pytest.mark.parametrize(
    ("query", "cookie", "language", "title", "start_link"),
    [
        ("", None, "de", "Seite nicht gefunden", 'href="/">Zur Startseite</a>'),
        ("?lang=en", None, "en", "Page not found", 'href="/?lang=en">To the start page</a>'),
        ("", "de-x-ls", "de-x-ls", "Diese Seite gibt es nicht", 'href="/?lang=de-x-ls">Zur Start·seite</a>'),
    ],
)
async def test_an_address_the_pages_do_not_have_shows_a_page_not_found_page_in_the_customers_language(
    client: TestClient[Any, Any],
    query: str,
    cookie: str | None,
    language: str,
    title: str,
    start_link: str,
) -> None:
    """A mistyped or outdated link: the page in the customer's language (the `lang` parameter, else the
    language cookie, as on every page), with the layout and a link back to the start; status 404."""
    headers = {**BROWSER, **({"Cookie": f"otv_lang={cookie}"} if cookie else {})}
    for path in UNKNOWN_PATHS:
        response = await raw_get(client, path + query, headers=headers)
        html = await response.text()
        assert response.status == 404, (path, html[:200])
        assert_a_customer_page(response, language)
        assert f'<html lang="{language}">' in html, path
        assert f"<h1>{title}</h1>" in html, path
        assert start_link in html, path
        assert "Jobcenter Bremen" in html and 'class="languages"' in html  # the usual layout
    head = await client.head("/foo", headers=BROWSER)
    assert head.status == 404 and head.content_type == "text/html"


async def test_a_page_not_found_at_an_address_that_looks_like_another_site_links_only_to_ours(
    client: TestClient[Any, Any],
) -> None:
    """`//evil.example/x` is a path to the server, but as a link a browser reads it as another site: the
    language links of the 404 page must not repeat it."""
    for path in ("//evil.example/x", "//evil.example", "/\\evil.example"):
        response = await raw_get(client, path, headers=BROWSER)
        html = await response.text()
        assert response.status == 404 and response.content_type == "text/html", path
        assert "evil.example" not in html, path
        assert 'href="/?lang=en"' in html, path


async def test_the_api_and_the_probes_keep_the_json_error_body(client: TestClient[Any, Any]) -> None:
    """What programs call answers the architecture's JSON error body, even to a browser's Accept header;
    an unknown page address asked for as JSON (a script's fetch) gets JSON too."""
    for path, headers in (
        ("/api/v1/no-such-thing", BROWSER),
        ("/api", BROWSER),
        ("/api/v1/locations/mitte/nothing", {}),
        ("/foo", {"Accept": "application/json"}),
    ):
        response = await client.get(path, headers=headers)
        assert response.status == 404, path
        assert response.content_type == "application/json", path
        assert (await response.json())["error"]["code"] == "not_found", path
    for method, path in (("POST", "/healthz"), ("DELETE", "/api/v1/locations"), ("POST", "/metrics")):
        wrong = await client.request(method, path, headers=BROWSER)
        assert wrong.status == 405, path
        assert (await wrong.json())["error"]["code"] == "method_not_allowed", path
    # The probes through the ingress stay hidden, in JSON.
    outside = await client.get("/metrics", headers={**BROWSER, "X-Forwarded-For": "203.0.113.9"})
    assert outside.status == 404 and (await outside.json())["error"]["code"] == "not_found"


# The Accept headers of what a page loads itself (Chromium, Firefox): a stylesheet, a script, an image.
SUBRESOURCES = ("text/css,*/*;q=0.1", "*/*", "image/avif,image/webp,image/png,image/*;q=0.8,*/*;q=0.5")


@pytest.mark.req("R43")
async def test_a_static_address_opened_in_the_browser_that_has_no_file_shows_the_customer_page(
    client: TestClient[Any, Any],
) -> None:
    """Someone opens an address under /static/ themselves (an old link, a typo): the same page as at any
    other address of the pages, in their language, not the API's JSON; a wrong method likewise."""
    # A missing file, a directory, and paths that lead out of the directory to the code beside it.
    for path in (
        "/static/no-such-file.css",
        "/static/js/nothing.js",
        "/static/css",
        "/static/",
        "/static/css/../../__init__.py",
        "/static/%2e%2e/__init__.py",
        "/static/..%2f__init__.py",
        "/static/%2Fetc%2Fpasswd",
    ):
        response = await raw_get(client, path + "?lang=en", headers=BROWSER)
        html = await response.text()
        assert response.status == 404, path
        assert_a_customer_page(response, "en")
        assert "<h1>Page not found</h1>" in html and 'href="/?lang=en">To the start page</a>' in html, path
    wrong = await client.post("/static/css/site.css?lang=de", headers=BROWSER)
    assert wrong.status == 405 and wrong.headers["Allow"] == "GET,HEAD"
    assert_a_customer_page(wrong, "de")
    assert "<h1>Diese Seite kann so nicht geöffnet werden</h1>" in await wrong.text()
    found = await client.get("/static/css/site.css", headers=BROWSER)
    assert found.status == 200 and found.content_type == "text/css"


async def test_a_file_a_page_loads_that_is_missing_gets_a_short_text_with_its_status(
    client: TestClient[Any, Any],
) -> None:
    """A stylesheet, script or image a page asks for is never shown: a missing one gets a few words of
    text with the status (no page rendered for nobody to see, no JSON a browser has no use for)."""
    for accept in SUBRESOURCES:
        missing = await client.get("/static/no-such-file.css", headers={"Accept": accept})
        assert missing.status == 404, accept
        assert missing.content_type == "text/plain", accept
        assert (await missing.text()).strip() == "Not Found", accept
        assert missing.headers["Cache-Control"] == "no-store"
    wrong = await client.post("/static/js/app.js", headers={"Accept": "*/*"})
    assert wrong.status == 405 and wrong.headers["Allow"] == "GET,HEAD"
    assert wrong.content_type == "text/plain" and (await wrong.text()).strip() == "Method Not Allowed"


# --- 405: a page called with a method it does not take ------------------------------------------------


@pytest.mark.req("R43")
async def test_a_page_called_with_the_wrong_method_shows_a_page_with_the_allowed_methods(
    client: TestClient[Any, Any],
) -> None:
    for method, path, allowed in (
        ("PUT", "/accessibility", "GET,HEAD"),
        ("POST", "/privacy", "GET,HEAD"),
        ("GET", "/challenge", "POST"),
        ("DELETE", "/?lang=en", "GET,HEAD,POST"),
    ):
        response = await client.request(method, path, headers=BROWSER)
        html = await response.text()
        assert response.status == 405, (method, path)
        assert response.headers["Allow"] == allowed
        assert response.content_type == "text/html", (method, path)
        if "lang=en" in path:
            assert "<h1>This page cannot be opened this way</h1>" in html
            assert 'href="/?lang=en">To the start page</a>' in html
        else:
            assert "<h1>Diese Seite kann so nicht geöffnet werden</h1>" in html
            assert 'href="/">Zur Startseite</a>' in html


# --- 500: an unexpected failure behind a page --------------------------------------------------------


async def test_an_unexpected_failure_behind_a_page_shows_a_page_and_is_logged_without_a_trace(
    client: TestClient[Any, Any],
) -> None:
    with structlog.testing.capture_logs() as logs:
        response = await client.get("/test-only/failure?lang=en", headers=BROWSER)
    html = await response.text()
    assert response.status == 500 and response.content_type == "text/html"
    assert "The appointment booking is not available right now" in html
    assert "RuntimeError" not in html and "Traceback" not in html
    logged = [entry for entry in logs if entry["event"] == "unhandled_error"]
    assert logged and logged[0]["error_type"] == "RuntimeError"
    assert logged[0]["route"] == "/test-only/failure"  # the pattern, never the address (R34)
    assert "path" not in logged[0]


# --- the dialogue's state in the address (`s`) ---------------------------------------------------------


@pytest.mark.req("R38")
async def test_an_over_long_or_forged_state_in_a_step_address_leads_to_the_start_not_to_a_huge_redirect(
    client: TestClient[Any, Any],
) -> None:
    """The renewal's address reloaded (`/details/hold?s=...`) sent its `s` back unchecked in Location: an
    address with a very long `s` (a link cut and pasted twice, or a crafted one) made a header over
    8 KB, which a proxy answers with 502. A state that is no state of ours leads to the start instead."""
    for forged in ("A" * 20_000, "A" * 3000, "not-a-state", "%00"):
        for lang, start in (("", "/"), ("&lang=en", "/?lang=en")):
            response = await client.get(f"/details/hold?s={forged}{lang}", allow_redirects=False)
            assert response.status == 303, (forged[:10], lang)
            assert response.headers["Location"] == start, (forged[:10], lang)
    # A state of ours still leads back to the contact form.
    sealed = client.app[SEALER].seal(
        {"loc": "mitte", "concern": "bescheid", "mode": "in_person", "start": "2027-03-09T08:00:00+01:00"}
    )
    reloaded = await client.get("/details/hold", params={"s": sealed}, allow_redirects=False)
    assert reloaded.status == 303 and reloaded.headers["Location"] == f"/details?s={sealed}"


@pytest.mark.req("R39")
async def test_the_check_page_never_sends_back_to_an_over_long_address(client: TestClient[Any, Any]) -> None:
    """The check page's `next` is the address the customer came from, as sent; a redirect to an address
    too long for a proxy's header buffer leads to that page's start instead."""
    token_page = await client.get("/manage")
    token = _csrf(await token_page.text())
    for target, expected in (
        ("/time?day=" + "1" * 9000, "/time"),
        ("/" + "a" * 9000, "/"),
        ("/details?s=abc", "/details?s=abc"),
    ):
        solved = await client.post(
            "/challenge", data={"csrf_token": token, "next": target}, allow_redirects=False
        )
        assert solved.status == 303, target[:20]
        assert solved.headers["Location"] == expected, target[:20]
        assert len(solved.headers["Location"]) <= LOCATION_LIMIT


def _csrf(html: str) -> str:
    marker = 'name="csrf_token" value="'
    return html.split(marker, 1)[1].split('"', 1)[0]
