"""Every service: health, readiness, metrics, the error body, graceful shutdown, and the gateway's proxy."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import aiohttp
import asyncpg
import pytest
import structlog
import structlog.testing
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from services.booking.app import create_app as create_booking
from services.booking.config import Settings as BookingSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from shared.clock import SystemClock
from shared.config import SERVICE_NAMES
from shared.events import make_envelope
from tests.booking import factory
from tests.conftest import free_port, publish_envelope, svc_settings, wait_for
from tests.tcp_proxy import TcpProxy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def test_readyz_follows_the_database_down_and_back() -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    port = await proxy.start()
    settings = svc_settings(BookingSettings, db_port=port)
    async with TestClient(TestServer(create_booking(settings))) as client:  # type: ignore[arg-type]
        assert (await client.get("/readyz")).status == 200
        await proxy.cut()
        down = await client.get("/readyz")
        assert down.status == 503
        body = await down.json()
        assert body["error"]["code"] == "not_ready"
        assert "database" in body["error"]["message"]
        assert (await client.get("/healthz")).status == 200  # alive, just not ready
        # A request meanwhile is told to retry shortly (503 unavailable), not that the service broke (500).
        request = await client.get(f"/api/v1/appointments/{uuid.uuid4()}")
        assert request.status == 503 and request.headers["Retry-After"] == "5"
        assert (await request.json())["error"]["code"] == "unavailable"
        await proxy.start(port)

        async def ready_again() -> bool:
            return (await client.get("/readyz")).status == 200

        await wait_for(ready_again, timeout=15, what="readiness after the database is back")
    await proxy.cut()


async def test_a_database_that_accepts_but_never_answers_gives_503_within_the_connect_timeout() -> None:
    """A failover in progress or a lost route: the database's port takes the connection and says nothing.
    A request is told to retry (503 `unavailable`) after `db_connect_timeout`, well before the gateway's
    upstream timeout, not left hanging for asyncpg's default minute and then answered 500."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = svc_settings(BookingSettings, db_port=port, db_connect_timeout=0.5)
    try:
        async with TestClient(TestServer(create_booking(settings))) as client:  # type: ignore[arg-type]
            async with asyncio.timeout(10):
                response = await client.get(f"/api/v1/appointments/{uuid.uuid4()}")
            assert response.status == 503 and response.headers["Retry-After"] == "5"
            assert (await response.json())["error"]["code"] == "unavailable"
    finally:
        for writer in held:
            writer.close()
        server.close()


@pytest.mark.parametrize(
    ("raised", "status", "event"),
    [
        (ConnectionRefusedError(111, "refused"), 503, "database_unavailable"),
        (ConnectionResetError(104, "reset by peer"), 500, "unhandled_error"),
    ],
)
async def test_only_a_refused_connection_counts_as_the_database_unavailable(
    raised: Exception, status: int, event: str
) -> None:
    """An operator's alert on `database_unavailable` must not fire for a client that hung up mid-request
    (a reset connection is some other socket's trouble, not the database's)."""
    app = create_booking(svc_settings(BookingSettings))  # type: ignore[arg-type]

    async def fail(_request: web.Request) -> web.Response:
        raise raised

    app.router.add_get("/fail", fail)
    async with TestClient(TestServer(app)) as client:
        with structlog.testing.capture_logs() as logs:
            response = await client.get("/fail")
    assert response.status == status
    assert event in [entry["event"] for entry in logs]


async def test_a_service_starts_while_the_broker_is_down_stays_ready_and_consumes_once_it_is_back(
    pools: dict[str, asyncpg.Pool], amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    """A RabbitMQ outage must not take the site down: a pod that starts meanwhile starts, serves (its
    events wait in the outbox), names the broker as degraded in /readyz without leaving the load balancer,
    and its consumers start by themselves once the broker answers."""
    port = free_port()
    proxy = TcpProxy("127.0.0.1", 5672)
    settings = svc_settings(
        BookingSettings, broker_url=f"amqp://guest:guest@127.0.0.1:{port}/", broker_connect_wait_seconds=0.3
    )
    location_id = f"broker-down-{uuid.uuid4().hex[:6]}"
    try:
        async with asyncio.timeout(20), TestClient(TestServer(create_booking(settings))) as client:  # type: ignore[arg-type]
            ready = await client.get("/readyz")
            assert ready.status == 200 and (await ready.json())["degraded"] == ["broker: not connected"]
            assert (await client.get("/healthz")).status == 200
            await proxy.start(port)

            async def back() -> bool:
                return "degraded" not in await (await client.get("/readyz")).json()

            await wait_for(back, timeout=15, what="the broker connection")
            snapshot = make_envelope(
                factory.location(location_id=location_id), producer="catalog", clock=SystemClock()
            )

            async def consumed() -> bool:  # published again until the late consumer's queue takes it
                await publish_envelope(amqp, snapshot)
                await asyncio.sleep(0.3)
                found = await pools["booking"].fetchval(
                    "SELECT revision FROM locations WHERE id = $1", location_id
                )
                return bool(found == 1)

            await wait_for(consumed, timeout=15, what="the consumer started after the broker came back")
    finally:
        await proxy.cut()


async def test_the_gateway_keeps_metrics_and_readiness_from_requests_through_the_ingress() -> None:
    """Probes and Prometheus reach the pod directly; the internet reaches it through the ingress, which
    adds X-Forwarded-For: such a request gets neither the traffic per route nor internal error names."""
    settings = svc_settings(GatewaySettings, integrations=False)
    async with TestClient(TestServer(create_gateway(settings))) as client:  # type: ignore[arg-type]
        for path in ("/metrics", "/readyz", "/healthz"):
            assert (await client.get(path)).status == 200, path
            outside = await client.get(path, headers={"X-Forwarded-For": "203.0.113.9"})
            assert outside.status == 404 and (await outside.json())["error"]["code"] == "not_found", path
        assert (await client.get("/privacy", headers={"X-Forwarded-For": "203.0.113.9"})).status == 200


async def test_the_gateway_asks_browsers_for_https_only_when_its_public_address_is_https() -> None:
    """HSTS from the gateway itself, whichever ingress is in front: on pages, API answers and errors alike;
    not for a plain-http public address (development)."""
    public = svc_settings(GatewaySettings, integrations=False, public_base_url="https://termine.example")
    async with TestClient(TestServer(create_gateway(public))) as client:  # type: ignore[arg-type]
        for path in ("/privacy", "/healthz", "/no/such/page", "/staff/login"):
            response = await client.get(path, allow_redirects=False)
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000", path
            assert response.headers["Server"] == "OTV", path
    # Plain http (development), and https to this machine (a local TLS proxy): HSTS ignores the port, so
    # a browser would then refuse plain http to every local service for a year.
    for address in (
        "http://127.0.0.1:8080",
        "https://localhost:8443",
        "https://LOCALHOST",
        "https://otv.localhost",
        "https://127.0.0.1:8443",
        "https://127.0.1.1",
        "https://[::1]:8443",
    ):
        local = svc_settings(GatewaySettings, integrations=False, public_base_url=address)
        async with TestClient(TestServer(create_gateway(local))) as client:  # type: ignore[arg-type]
            assert "Strict-Transport-Security" not in (await client.get("/privacy")).headers, address
    # A public host named like one is still a public host.
    public_ip = svc_settings(GatewaySettings, integrations=False, public_base_url="https://203.0.113.7")
    async with TestClient(TestServer(create_gateway(public_ip))) as client:  # type: ignore[arg-type]
        assert (await client.get("/privacy")).headers["Strict-Transport-Security"] == "max-age=31536000"


async def test_unknown_route_and_wrong_method_get_the_error_body() -> None:
    async with TestClient(TestServer(create_booking(svc_settings(BookingSettings)))) as client:  # type: ignore[arg-type]
        missing = await client.get("/no/such/thing")
        assert missing.status == 404
        assert (await missing.json())["error"]["code"] == "not_found"
        wrong = await client.post("/healthz")
        assert wrong.status == 405
        assert (await wrong.json())["error"]["code"] == "method_not_allowed"
        assert missing.headers["X-Correlation-ID"]


async def test_an_unexpected_exception_is_a_500_error_body_without_trace() -> None:
    app = create_booking(svc_settings(BookingSettings))  # type: ignore[arg-type]

    async def explode(_request: web.Request) -> web.Response:
        raise KeyError("customer@example.org")

    app.router.add_get("/explode", explode)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/explode")
        assert response.status == 500
        text = await response.text()
        assert "Traceback" not in text and "customer@example.org" not in text
        assert (await response.json())["error"]["code"] == "internal_error"


async def test_metrics_are_prometheus_text() -> None:
    async with TestClient(TestServer(create_booking(svc_settings(BookingSettings)))) as client:  # type: ignore[arg-type]
        await client.get("/healthz")
        metrics = await client.get("/metrics")
        assert metrics.status == 200
        text = await metrics.text()
        assert 'otv_http_requests_total{method="GET",route="/healthz",service="booking",status="200"}' in text


@pytest.fixture
async def slow_upstream() -> AsyncIterator[str]:
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/api/v1/locations", slow)
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/")


async def test_gateway_answers_502_for_a_down_upstream_and_504_for_a_slow_one(slow_upstream: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = svc_settings(
        GatewaySettings, catalog_urls=slow_upstream, booking_urls=closed, upstream_timeout=0.5
    )
    async with TestClient(TestServer(create_gateway(settings))) as client:  # type: ignore[arg-type]
        down = await client.get("/api/v1/locations/mitte/availability")
        assert down.status == 502
        assert (await down.json())["error"]["code"] == "upstream_unavailable"
        slow = await client.get("/api/v1/locations")
        assert slow.status == 504
        assert (await slow.json())["error"]["code"] == "upstream_timeout"


async def test_gateway_balances_across_replicas_and_skips_a_dead_one() -> None:
    seen: list[str] = []

    def replica(name: str) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            seen.append(name)
            return web.json_response({"replica": name, "cid": request.headers.get("X-Correlation-ID")})

        app = web.Application()
        app.router.add_get("/api/v1/locations", handler)
        return app

    async with TestServer(replica("a")) as a, TestServer(replica("b")) as b:
        dead = f"http://127.0.0.1:{free_port()}"
        urls = ",".join(str(s.make_url("")).rstrip("/") for s in (a, b)) + "," + dead
        settings = svc_settings(GatewaySettings, catalog_urls=urls)
        async with TestClient(TestServer(create_gateway(settings))) as client:  # type: ignore[arg-type]
            for _ in range(6):
                response = await client.get("/api/v1/locations", headers={"X-Correlation-ID": "abc-123"})
                assert response.status == 200
                assert (await response.json())["cid"] == "abc-123"
    assert set(seen) == {"a", "b"}
    assert len(seen) == 6


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_service_process_starts_answers_and_stops_on_sigterm(service: str) -> None:
    port = free_port()
    env = {**os.environ, "OTV_PORT": str(port), "OTV_LOG_JSON": "true"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"services.{service}",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(ready, timeout=20, what=f"{service} to become ready")
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert r.status == 200
                assert r.headers["Server"] == "OTV"  # never "Python/3.x aiohttp/3.y.z"
            async with http.get(f"http://127.0.0.1:{port}/no/such/page") as r:
                assert r.status == 404 and r.headers["Server"] == "OTV"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert "otv_http_requests_total" in await r.text()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=15)
        assert code == 0
        assert time.monotonic() - started < 10
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_gateway_takes_the_client_address_from_x_forwarded_for_only_behind_a_trusted_proxy() -> None:
    from services.gateway.proxy import TRUSTED_PROXIES, client_ip
    from shared.networks import parse_networks

    def ip_seen(trusted: str, forwarded: str) -> str:
        app = web.Application()
        app[TRUSTED_PROXIES] = parse_networks(trusted)
        request = make_mocked_request(
            "GET", "/", headers={"X-Forwarded-For": forwarded}, app=app, transport=_Transport()
        )
        return client_ip(request)

    # The peer is 127.0.0.1 (the test transport). Untrusted: the header is ignored.
    assert ip_seen("", "203.0.113.9") == "127.0.0.1"
    # Behind a trusted ingress: the last hop that is not a trusted proxy; a forged first entry is skipped.
    assert ip_seen("127.0.0.0/8, 10.0.0.0/8", "198.51.100.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"


class _Transport:
    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default


async def test_an_over_long_query_through_the_gateway_gets_the_error_body_not_a_parser_error() -> None:
    async def echo(_request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"code": "validation_error", "message": "too long", "details": []}}, status=422
        )

    upstream = web.Application(handler_args={"max_line_size": 65536})  # as every service of ours
    upstream.router.add_get("/api/v1/finder", echo)
    async with TestServer(upstream) as server:
        settings = svc_settings(GatewaySettings, catalog_urls=str(server.make_url("")).rstrip("/"))
        async with TestClient(TestServer(create_gateway(settings))) as client:  # type: ignore[arg-type]
            response = await client.get("/api/v1/finder", params={"street": "x" * 10_000})
            assert response.status == 422
            assert (await response.json())["error"]["code"] == "validation_error"


async def test_the_gateway_forwards_the_path_it_checked_never_a_resolved_dot_segment() -> None:
    """`%2E%2E` is one path segment to the gateway's router (and to its rules); the upstream must get the
    same path, not one that an HTTP client resolved to another route."""
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.json_response({})

    upstream = web.Application()
    upstream.router.add_route("*", "/{tail:.*}", anything)
    async with TestServer(upstream) as server:
        base = str(server.make_url("")).rstrip("/")
        settings = svc_settings(GatewaySettings, catalog_urls=base, booking_urls=base)
        async with TestServer(create_gateway(settings)) as gateway:  # type: ignore[arg-type]
            for path in ("/api/v1/locations/%2E%2E/concerns", "/api/v1/locations/%2e%2e/availability"):
                # A raw request line: a client library would resolve the segment before sending.
                reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                await reader.read()
                writer.close()
    assert seen == ["/api/v1/locations/%2E%2E/concerns", "/api/v1/locations/%2e%2e/availability"]
