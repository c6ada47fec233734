"""The customer pages' test stack: the real catalog, booking, notifier and gateway in-process on free ports,
the catalog's demo data of Jobcenter Bremen, the local mail sink, and one headless Chromium (Debian's).

Started once per session (a few seconds); every browser test opens its own context (desktop or phone).
The clock stands still on a Monday in March 2027 at 07:30 in Bremen, so that the calendar, the month-change
block and the screenshots are the same on every run.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, expect

from services.booking.app import create_app as create_booking
from services.booking.config import Settings as BookingSettings
from services.catalog import db as catalog_db
from services.catalog.app import create_app as create_catalog
from services.catalog.config import Settings as CatalogSettings
from services.catalog.demo import load_demo
from services.catalog.domain import street_key
from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from services.notifier.app import create_app as create_notifier
from services.notifier.config import Settings as NotifierSettings
from shared.clock import ManualClock
from tests.browser import chromium_browser
from tests.conftest import empty_schemas, free_port, svc_settings, wait_for
from tools.mailsink import MailSink, StoredMessage

expect.set_options(timeout=15_000)
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
NOW = datetime(2027, 3, 8, 6, 30, tzinfo=UTC)  # Monday, 07:30 in Bremen
POOL = 4  # database connections per service: the database is shared with the other test folders
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 375, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 1,
}


@dataclass
class Stack:
    gateway_url: str
    catalog_url: str
    booking_url: str
    sink: MailSink
    clock: ManualClock

    def gateway_settings(self, **overrides: Any) -> GatewaySettings:
        """Settings of another gateway in front of the same services (for the bot defence tests)."""
        given: dict[str, Any] = {
            "catalog_urls": self.catalog_url,
            "booking_urls": self.booking_url,
            "public_base_url": self.gateway_url,
            "bot_defence": False,
            "db_pool_max": POOL,
        }
        settings = svc_settings(GatewaySettings, **{**given, **overrides})
        assert isinstance(settings, GatewaySettings)
        return settings

    async def mail_to(self, address: str, count: int = 1) -> list[StoredMessage]:
        return await self.sink.wait_for_messages(count, to=address)

    def manage_link(self, message: StoredMessage) -> str:
        match = re.search(
            r"https?://[^\s\"'<>]+/manage/[0-9a-f-]{36}\?token=[A-Za-z0-9_\-]+(?:&lang=[a-z-]+)?",
            _text(message),
        )
        assert match, "no manage link in the mail"
        return match.group(0)


def _text(message: StoredMessage) -> str:
    parts = []
    for part in message.leaf_parts():
        if part.get_content_type() in ("text/plain", "text/html"):
            parts.append(str(part.get_content()))
    return "\n".join(parts)


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture(scope="package")
async def stack(pools: dict[str, asyncpg.Pool], amqp: Any) -> AsyncIterator[Stack]:
    await empty_schemas(pools)
    clock = ManualClock(NOW)
    sink = MailSink(smtp_port=0, http_port=0)
    await sink.start()
    ports = {name: free_port() for name in ("gateway", "catalog", "booking", "notifier")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    apps = [
        (
            create_catalog(
                svc_settings(CatalogSettings, port=ports["catalog"], db_pool_max=POOL),  # type: ignore[arg-type]
                clock=clock,
            ),
            ports["catalog"],
        ),
        (
            create_booking(
                svc_settings(  # type: ignore[arg-type]
                    BookingSettings, port=ports["booking"], public_base_url=urls["gateway"], db_pool_max=POOL
                ),
                clock=clock,
            ),
            ports["booking"],
        ),
        (
            create_notifier(
                svc_settings(  # type: ignore[arg-type]
                    NotifierSettings,
                    port=ports["notifier"],
                    smtp_host=sink.smtp_host,
                    smtp_port=sink.smtp_port,
                    public_base_url=urls["gateway"],
                    db_pool_max=POOL,
                ),
                clock=clock,
            ),
            ports["notifier"],
        ),
    ]
    runners = [await _serve(app, port) for app, port in apps]
    result = Stack(urls["gateway"], urls["catalog"], urls["booking"], sink, clock)
    gateway = create_gateway(result.gateway_settings(port=ports["gateway"]), clock=clock)
    runners.append(await _serve(gateway, ports["gateway"]))
    await load_demo(pools["catalog"], clock)

    async with aiohttp.ClientSession(base_url=urls["gateway"]) as http:

        async def bookable() -> bool:
            async with http.get(
                "/api/v1/locations/mitte/availability", params={"concern": "veraenderung", "mode": "phone"}
            ) as response:
                return response.status == 200 and bool((await response.json())["slots"])

        await wait_for(bookable, timeout=30, what="the booking service to know the demo locations")

        async def pages_answer() -> bool:
            # The first page also warms the catalog's and the gateway's connection pools.
            async with http.get("/") as response:
                return response.status == 200

        await wait_for(pages_answer, timeout=30, what="the start page")
    yield result
    for runner in reversed(runners):
        await runner.cleanup()
    await sink.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async for launched in chromium_browser():
        yield launched


async def new_context(browser: Browser, device: dict[str, Any], **extra: Any) -> BrowserContext:
    context = await browser.new_context(**device, locale="de-DE", **extra)
    # Generous: the whole suite may run beside other heavy tests on two cores.
    context.set_default_timeout(20_000)
    return context


class Shots:
    """Numbered screenshots of one scenario: tests/artifacts/screenshots/<scenario>-<nn>-<step>.png."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def take(self, page: Page, step: str) -> None:
        self.count += 1
        await page.screenshot(
            path=SCREENSHOTS / f"{self.scenario}-{self.count:02d}-{step}.png", full_page=True
        )


def unique_customer_number() -> str:
    """A fresh Kundennummer per booking: the one-appointment rule matches it too (R47)."""
    digits = f"{uuid.uuid4().int % 10**9:09d}"
    return f"{digits[:3]}D{digits[3:]}"


def unique_email(prefix: str) -> str:
    """A fresh address per booking: the one-appointment rule (R5) would refuse a second one."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


async def to_the_calendar(page: Page, stack: Stack, concern: str, mode: str | None = "in_person") -> None:
    """From the first page to the calendar of Mitte for a concern (and a mode, where it has a choice)."""
    await page.goto(stack.gateway_url + "/")
    await page.locator("input[name=location][value=mitte]").check()
    await page.get_by_role("button", name="Weiter").click()
    await page.locator(f"input[name=concern][value={concern}]").check()
    if mode is not None:
        await page.locator(f"input[name=mode][value={mode}]").check()
    await page.get_by_role("button", name="Weiter").click()


async def book_on_the_pages(page: Page, stack: Stack, email: str, *, day: int) -> None:
    """A booking of "veraenderung" at Mitte through the pages, as Erika Mustermann with a fresh customer
    number: the first daytime slot of the `day`-th day with free times (tests share the slots, so each
    takes its own day); ends on the confirmation page."""
    await to_the_calendar(page, stack, "veraenderung")
    await page.locator(".calendar td.has-slots a").nth(day).click()
    await page.locator("button.slot:not(.slot-evening)").first.click()
    await fill_in_and_book(page, email)


async def fill_in_and_book(page: Page, email: str, *, phone: str | None = None) -> None:
    """The last step as Erika Mustermann with a fresh customer number (and `phone` for a phone
    appointment); ends on the confirmation page."""
    await page.get_by_label("Vorname").fill("Erika")
    await page.get_by_label("Nachname").fill("Mustermann")
    await page.get_by_label("E-Mail-Adresse").fill(email)
    if phone is not None:
        await page.get_by_label("Telefonnummer").fill(phone)
    await page.get_by_label("Kundennummer", exact=False).first.fill(unique_customer_number())
    await page.get_by_role("button", name="Termin verbindlich buchen").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")


@asynccontextmanager
async def streets_of(pool: asyncpg.Pool, name: str, parts: Iterable[dict[str, Any]]) -> AsyncIterator[str]:
    """The street `name` in the catalog's directory, once for each part (postcode, location_id, and house
    numbers or a district), for the time of a test."""
    async with pool.acquire() as conn:
        ids = [
            await catalog_db.insert_street(conn, {"street": name, "street_key": street_key(name), **part})
            for part in parts
        ]
    try:
        yield name
    finally:
        async with pool.acquire() as conn:
            await catalog_db.delete_streets(conn, ids)
