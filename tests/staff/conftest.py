"""Fixtures of the staff-access tests: a gateway on the test database, staff accounts made directly
through the use cases (with a cheap argon2 setting, so that tests stay fast), and a client that signs
in and sends the session cookie and a same-origin `Origin` like a browser does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from services.gateway.staff.authz import COOKIE
from services.gateway.staff.domain import GrantRow
from services.gateway.staff.keys import STAFF
from services.gateway.staff.service import Actor, Staff, create_account
from shared.clock import ManualClock
from shared.identity import Role
from tests.conftest import delete_broker_objects, free_port, own_broker_names, svc_settings

PASSWORD = "correct horse battery staple"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class Upstream:
    """A stand-in for a service: records what reached it (with the identity header) and answers 200."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    answer: Any = None
    # Answers by exact path (GET lists and details of a stand-in), before `answer`.
    answers: dict[str, Any] = field(default_factory=dict)
    # A cookie (name, value) its answers set, as a misbehaving or compromised service might.
    sets_cookie: tuple[str, str] | None = None

    def app(self) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            raw = await request.read()
            self.calls.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": dict(request.query),
                    "identity": request.headers.get("X-OTV-Identity"),
                    "body": raw,
                    "headers": dict(request.headers),
                }
            )
            if request.path in self.answers:
                response = web.json_response(self.answers[request.path])
            else:
                # `affected` answers booking's R20 capacity check: nothing booked in the way.
                answer = self.answer if self.answer is not None else {"ok": True, "affected": []}
                response = web.json_response(answer, status=self.status)
            if self.sets_cookie is not None:
                response.set_cookie(*self.sets_cookie)
            return response

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        return app


class StaffClient:
    """A browser-like client of the gateway: keeps the staff session cookie and sends Origin on writes."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client
        self.cookie: str | None = None
        # The session cookie's name: `__Host-` prefixed behind TLS (an https public address).
        self.cookie_name = COOKIE
        self.csrf: str | None = None

    @property
    def origin(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def headers(self, extra: dict[str, str] | None = None, *, write: bool = False) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.cookie:
            headers["Cookie"] = f"{self.cookie_name}={self.cookie}"
        if write:
            headers["Origin"] = self.origin
        headers.update(extra or {})
        return headers

    async def login(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        response = await self.client.post(
            "/api/v1/staff/login", json={"username": username, "password": password}
        )
        if response.status == 200:
            self.cookie_name = next(n for n in (f"__Host-{COOKIE}", COOKIE) if n in response.cookies)
            self.cookie = response.cookies[self.cookie_name].value
            self.csrf = (await response.json())["csrf_token"]
        return response

    async def request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        write = method not in {"GET", "HEAD"}
        headers = self.headers(kwargs.pop("headers", None), write=write)
        return await self.client.request(method, path, headers=headers, allow_redirects=False, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("PUT", path, **kwargs)


@dataclass
class Gateway:
    app: web.Application
    client: TestClient[web.Request, web.Application]
    clock: ManualClock
    upstreams: dict[str, Upstream]
    # The audit log is append-only and outlives tests: each test reads the entries after this id.
    audit_from: int = 0

    @property
    def staff(self) -> Staff:
        return self.app[STAFF]

    def browser(self) -> StaffClient:
        return StaffClient(self.client)

    async def account(
        self,
        username: str,
        *grants: tuple[Role, str] | tuple[Role, str, tuple[str, ...]],
        password: str = PASSWORD,
        display_name: str = "",
    ) -> None:
        rows = [GrantRow(g[0], g[1], g[2] if len(g) > 2 else ()) for g in grants]
        await create_account(
            self.staff,
            Actor("test", "system"),
            username=username,
            display_name=display_name or username,
            grants=rows,
            password=password,
        )

    async def signed_in(self, username: str, *grants: Any, display_name: str = "") -> StaffClient:
        await self.account(username, *grants, display_name=display_name)
        browser = self.browser()
        response = await browser.login(username)
        assert response.status == 200, await response.text()
        return browser


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def staff_db(pools: dict[str, asyncpg.Pool]) -> asyncpg.Pool:
    """Empty the staff tables only (fast); tests that need the catalog and booking use `clean_db`."""
    pool = pools["gateway"]
    await pool.execute("DELETE FROM staff_sessions; DELETE FROM staff_grants; DELETE FROM staff_accounts;")
    await pool.execute("DELETE FROM api_keys")
    return pool


@pytest.fixture
async def make_gateway(staff_db: asyncpg.Pool) -> AsyncIterator[GatewayFactory]:
    """Start gateways whose upstream services are recording stand-ins (or given URLs)."""
    started: list[tuple[TestClient[web.Request, web.Application], list[TestServer]]] = []

    async def start(
        urls: dict[str, str] | None = None, clock: ManualClock | None = None, **overrides: Any
    ) -> Gateway:
        urls = dict(urls or {})
        upstreams: dict[str, Upstream] = {}
        servers: list[TestServer] = []
        for name in ("catalog", "booking", "reporting", "notifier"):
            if name in urls:
                continue
            upstream = Upstream()
            server = TestServer(upstream.app())
            await server.start_server()
            servers.append(server)
            upstreams[name] = upstream
            urls[name] = str(server.make_url("")).rstrip("/")
        settings = svc_settings(
            GatewaySettings,
            port=free_port(),
            catalog_urls=urls["catalog"],
            booking_urls=urls["booking"],
            reporting_urls=urls["reporting"],
            notifier_urls=urls["notifier"],
            # Off unless a test of the bot defence asks for it.
            bot_defence=overrides.pop("bot_defence", False),
            **overrides,
        )
        clock = clock or ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        app = create_gateway(settings, clock=clock)  # type: ignore[arg-type]
        client = TestClient(TestServer(app), cookie_jar=aiohttp.DummyCookieJar())
        await client.start_server()
        app[STAFF].passwords.hasher = CHEAP_HASHER  # the limits of the settings stay
        started.append((client, servers))
        mark = await staff_db.fetchval("SELECT coalesce(max(id), 0) FROM gateway_audit.audit_log")
        return Gateway(app, client, clock, upstreams, audit_from=mark)

    yield start
    for client, servers in started:
        await client.close()
        for server in servers:
            await server.close()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway()


async def account_id(gateway: Gateway, username: str) -> str:
    """A staff account's opaque id: how pages, the admin API and the audit log name it (R34)."""
    found = await gateway.staff.pool.fetchval("SELECT id FROM staff_accounts WHERE username = $1", username)
    assert found is not None, username
    return str(found)


async def audit_rows(gateway: Gateway, **where: Any) -> list[dict[str, Any]]:
    """This test's audit entries (the log keeps those of earlier runs: it cannot be emptied)."""
    conditions = "".join(f" AND {k} = ${i}" for i, k in enumerate(where, 2))
    # `ip`: the entry's client address, kept beside it until the retention job deletes it.
    rows = await gateway.staff.pool.fetch(
        "SELECT id, occurred_at, actor, actor_kind, action, entity, entity_id, location, outcome, status,"  # noqa: S608 -- test helper, fixed keys
        " a.client_address AS ip, method, route, changes, correlation_id FROM gateway_audit.audit_log e"
        " LEFT JOIN gateway_audit.audit_client_addresses a ON a.audit_id = e.id"
        f" WHERE id > $1{conditions} ORDER BY id",
        gateway.audit_from,
        *where.values(),
    )
    return [dict(r) for r in rows]


# --- the real catalog and booking services in-process ------------------------------------------------
@dataclass
class Stack:
    gateway: Gateway
    admin: StaffClient


async def wait_for_slots(
    client: StaffClient, location: str, concern: str, day: str, *, present: str | None = None
) -> list[str]:
    """Poll the customers' availability (through the gateway) until booking has the catalog's change."""
    from tests.conftest import wait_for

    async def slots() -> list[str] | None:
        response = await client.get(
            f"/api/v1/locations/{location}/availability",
            params={"concern": concern, "mode": "in_person", "from": day, "to": day},
        )
        if response.status != 200:
            return None
        found = [s["start"] for s in (await response.json())["slots"]]
        if present is None:
            return found or None
        return found if present in found else None

    result: list[str] = await wait_for(slots, timeout=15, what=f"slots of {location} on {day}")
    return result


@pytest.fixture
async def stack(
    clean_db: dict[str, asyncpg.Pool], make_gateway: GatewayFactory, amqp: Any
) -> AsyncIterator[Stack]:
    """Catalog and booking (consuming the catalog's events through RabbitMQ) behind a gateway, one clock;
    an administrator signed in; one location `mitte` with an entrance zone of 2 service points, a window
    on Tuesdays 08:00-12:00 and the concern `neuantrag` (30 minutes)."""
    async with real_stack(make_gateway, amqp) as started:
        yield started


@asynccontextmanager
async def real_stack(
    make_gateway: GatewayFactory,
    amqp: Any,
    *,
    reporting: bool = False,
    notifier: bool = False,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """The fixture `stack` with `overrides` of the gateway's settings (the database must be clean), and
    where `reporting` or `notifier`, the real service too (consuming the same events; the notifier with
    no mail server to reach) instead of a stand-in."""
    from services.booking.app import create_app as create_booking
    from services.booking.config import Settings as BookingSettings
    from services.catalog.app import create_app as create_catalog
    from services.catalog.config import Settings as CatalogSettings
    from services.notifier.app import create_app as create_notifier
    from services.notifier.config import Settings as NotifierSettings
    from services.reporting.app import create_app as create_reporting
    from services.reporting.config import Settings as ReportingSettings

    clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))  # Monday, 09:00 in Bremen
    # Broker names of this stack alone: an event a previous test's catalog published late must not reach
    # this test's booking (its revision would outrank the new catalog's and hide its changes).
    broker = own_broker_names()
    servers = {
        "catalog": TestServer(create_catalog(svc_settings(CatalogSettings, **broker), clock=clock)),  # type: ignore[arg-type]
        "booking": TestServer(
            create_booking(svc_settings(BookingSettings, run_jobs=False, **broker), clock=clock)  # type: ignore[arg-type]
        ),
    }
    if reporting:
        servers["reporting"] = TestServer(
            create_reporting(svc_settings(ReportingSettings, **broker), clock=clock)  # type: ignore[arg-type]
        )
    if notifier:
        settings = svc_settings(NotifierSettings, smtp_port=free_port(), **broker)
        servers["notifier"] = TestServer(create_notifier(settings, clock=clock))  # type: ignore[arg-type]
    started: list[TestServer] = []
    try:
        for server in servers.values():
            await server.start_server()
            started.append(server)
        gateway = await make_gateway(
            urls={name: str(server.make_url("")).rstrip("/") for name, server in servers.items()},
            clock=clock,
            **overrides,
        )
        admin = await gateway.signed_in("the-admin", (Role.ADMIN, "*"))
        await configure_mitte(admin)
        yield Stack(gateway, admin)
    finally:
        for server in reversed(started):
            await server.close()
        await delete_broker_objects(amqp, **broker)


async def configure_mitte(admin: StaffClient) -> None:
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (
            "POST",
            "/api/v1/admin/locations",
            {
                "id": "mitte",
                "name": "Bremen-Mitte",
                "street": "Doventorsteinweg 44",
                "postcode": "28195",
                "hotline": "0421 566-0",
            },
        ),
        (
            "POST",
            "/api/v1/admin/locations",
            {
                "id": "nord",
                "name": "Bremen-Nord (Vegesack)",
                "street": "Kirchheide 20",
                "postcode": "28757",
                "hotline": "0421 566-0",
            },
        ),
        (
            "POST",
            "/api/v1/admin/locations/mitte/groups",
            {"id": "mitte-ez", "kind": "entrance_zone", "name": {"de": "Eingangszone"}, "service_points": 2},
        ),
        (
            "POST",
            "/api/v1/admin/groups/mitte-ez/windows",
            {"weekday": 1, "start": "08:00", "end": "12:00", "service_points": 2},
        ),
        (
            "POST",
            "/api/v1/admin/concerns",
            {
                "id": "neuantrag",
                "group_kinds": ["entrance_zone"],
                "name": {"de": "Neuantrag stellen"},
                "default_duration_minutes": 30,
            },
        ),
        (
            "PUT",
            "/api/v1/admin/locations/mitte/concerns/neuantrag",
            {"group_id": "mitte-ez", "duration_minutes": 30, "modes": ["in_person"]},
        ),
    ]
    for method, path, body in steps:
        response = await admin.request(method, path, json=body)
        assert response.status in (200, 201), (path, await response.text())


def customer(start: str, email: str = "kundin@example.org") -> dict[str, Any]:
    return {
        "location_id": "mitte",
        "concern_id": "neuantrag",
        "start": start,
        "mode": "in_person",
        "customer": {
            "first_name": "Erika",
            "last_name": "Mustermann",
            "email": email,
            "customer_number": "123A456789",
        },
    }


@asynccontextmanager
async def notifier_behind_gateway(
    make_gateway: GatewayFactory,
    amqp: Any,
    *,
    clock: ManualClock | None = None,
    urls: dict[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[Gateway]:
    """The real notifier (its own broker names, no mail to send) behind a gateway (with `overrides` of
    its settings, and `urls` of further real services); the test's database must be clean (fixture
    `clean_db`)."""
    from services.notifier.app import create_app as create_notifier
    from services.notifier.config import Settings as NotifierSettings

    # One clock: the signed identity's time.
    clock = clock or ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    broker = own_broker_names()
    settings = svc_settings(NotifierSettings, smtp_port=free_port(), **broker)
    notifier = TestServer(create_notifier(settings, clock=clock))  # type: ignore[arg-type]
    await notifier.start_server()
    try:
        urls = {**(urls or {}), "notifier": str(notifier.make_url("")).rstrip("/")}
        yield await make_gateway(urls=urls, clock=clock, **overrides)
    finally:
        await notifier.close()
        await delete_broker_objects(amqp, **broker)
