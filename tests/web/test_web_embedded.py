"""The booking inside the jobcenter's homepage (R36): a page on another origin embeds the dialogue with
the snippet of /embed, a customer books through the frame, and the frame takes the height its content
reports (`otv:height`), from the frame only."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Frame, Page, expect

from services.gateway.app import create_app as create_gateway
from tests.conftest import free_port, wait_for
from tests.web.conftest import DESKTOP, Stack, new_context, unique_customer_number, unique_email

pytestmark = pytest.mark.timeout(90)


async def _serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


@pytest.fixture
async def homepage(stack: Stack) -> AsyncIterator[str]:
    """A gateway that lets the homepage frame it, and the homepage on another origin (another site:
    `localhost` against `127.0.0.1`) carrying the snippet the gateway's /embed page gives."""
    gateway_port, home_port = free_port(), free_port()
    home = f"http://localhost:{home_port}"
    gateway = create_gateway(
        stack.gateway_settings(
            port=gateway_port,
            public_base_url=f"http://127.0.0.1:{gateway_port}",
            frame_ancestors=f"'self' {home}",
        ),
        clock=stack.clock,
    )
    runners = [await _serve(gateway, "127.0.0.1", gateway_port)]
    snippet: list[str] = []

    async def page(_request: web.Request) -> web.Response:
        body = "<!DOCTYPE html><html lang='de'><head><title>Jobcenter Bremen</title></head><body>"
        body += f"<h1>Jobcenter Bremen</h1>{snippet[0]}<footer>Fußzeile der Homepage</footer></body></html>"
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runners.append(await _serve(app, "127.0.0.1", home_port))
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{gateway_port}/embed") as response,
        ):
            text = await response.text()
        match = re.search(r'<textarea id="snippet"[^>]*>(.*?)</textarea>', text, re.S)
        assert match, "no snippet on /embed"
        snippet.append(html.unescape(match.group(1)))
        yield home
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def frame_height(page: Page) -> float:
    height: float = await page.locator("#otv-booking").evaluate("f => f.getBoundingClientRect().height")
    return height


async def fits(page: Page, frame: Frame) -> bool:
    """The iframe is as high as the framed page's content (no scroll bar inside the homepage)."""
    content: int = await frame.evaluate("document.documentElement.scrollHeight")
    return abs(await frame_height(page) - content) <= 1


@pytest.mark.req("R36")
async def test_a_customer_books_inside_the_jobcenters_homepage_and_the_frame_takes_its_contents_height(
    stack: Stack, browser: Browser, homepage: str
) -> None:
    context = await new_context(browser, DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(homepage + "/")
        dialogue = page.frame_locator("#otv-booking")
        await expect(dialogue.get_by_role("heading", level=1)).to_have_text(
            "Termin im Jobcenter Bremen buchen"
        )
        frame = next(f for f in page.frames if f.url.startswith("http://127.0.0.1"))
        # The snippet's minimum is 40rem; the start page is longer, and the frame grows to it.
        await wait_for(lambda: fits(page, frame), what="the frame to take the start page's height")
        assert await frame_height(page) > 640
        # Only the frame says how high it is: a message from anyone else changes nothing.
        before = await frame_height(page)
        await page.evaluate("window.postMessage({type: 'otv:height', height: 100}, '*')")
        await page.wait_for_timeout(200)
        assert await frame_height(page) == before

        await dialogue.locator("input[name=location][value=mitte]").check()
        await dialogue.get_by_role("button", name="Weiter").click()
        await dialogue.locator("input[name=concern][value=veraenderung]").check()
        await dialogue.locator("input[name=mode][value=in_person]").check()
        await dialogue.get_by_role("button", name="Weiter").click()
        await expect(dialogue.get_by_role("heading", level=1)).to_have_text("Tag und Uhrzeit wählen")
        await dialogue.locator(".calendar td.has-slots a").nth(12).click()
        await dialogue.locator("button.slot:not(.slot-evening)").first.click()
        await expect(dialogue.get_by_role("heading", level=1)).to_have_text("Ihre Kontaktdaten")
        email = unique_email("embedded")
        await dialogue.get_by_label("Vorname").fill("Erika")
        await dialogue.get_by_label("Nachname").fill("Mustermann")
        await dialogue.get_by_label("E-Mail-Adresse").fill(email)
        await dialogue.get_by_label("Kundennummer", exact=False).first.fill(unique_customer_number())
        await dialogue.get_by_role("button", name="Termin verbindlich buchen").click()

        await expect(dialogue.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")
        reference = (await dialogue.locator(".reference").inner_text()).strip()
        assert reference
        await wait_for(lambda: fits(page, frame), what="the frame to take the confirmation's height")
        # The homepage stays around it.
        await expect(page.locator("footer")).to_have_text("Fußzeile der Homepage")
        [mail] = await stack.mail_to(email)
        assert reference in mail.raw_text
    finally:
        await context.close()
