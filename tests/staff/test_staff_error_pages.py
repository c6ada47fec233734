"""A staff page that fails says so in German, with the navigation, whatever failed: the gateway's own
database (a failover), an answer the gateway did not expect, or the reporting service behind the
statistics pages (down, restarting, or refusing in JSON). Only the API answers in JSON."""

from __future__ import annotations

import pytest

from shared.identity import Role
from tests.staff.conftest import GatewayFactory
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


def _is_german_page(response_type: str, html: str) -> bool:
    return (
        response_type == "text/html"
        and html.lstrip().startswith("<!doctype html>")
        and '<html lang="de">' in html
    )


async def test_a_page_during_a_database_outage_of_the_gateway_asks_to_try_again_in_german(
    make_gateway: GatewayFactory,
) -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    port = await proxy.start()
    try:
        gateway = await make_gateway(db_port=port)
        manager = await gateway.signed_in("outage-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
        assert (await manager.get("/staff/work")).status == 200
        await proxy.cut()
        page = await manager.get("/staff/work")
        html = await page.text()
        assert page.status == 503 and page.headers["Retry-After"] == "5"
        assert _is_german_page(page.content_type, html), html[:300]
        assert "<title>Dienst nicht erreichbar" in html and "Ein Dienst antwortet gerade nicht" in html
        # The API keeps its JSON.
        api = await manager.get("/api/v1/staff/me")
        assert api.status == 503 and (await api.json())["error"]["code"] == "unavailable"
    finally:
        await proxy.cut()


async def test_an_unexpected_failure_behind_a_page_is_a_german_error_page(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway()
    # The catalog answers a list where the location page expects the location.
    gateway.upstreams["catalog"].answers["/api/v1/admin/locations/mitte"] = []
    admin = await gateway.signed_in("fault-admin", (Role.ADMIN, "*"))
    page = await admin.get("/staff/locations/mitte")
    html = await page.text()
    assert page.status == 500 and _is_german_page(page.content_type, html), html[:300]
    assert "Es ist ein Fehler aufgetreten" in html and 'aria-label="Hauptnavigation"' in html


async def test_the_statistics_pages_say_in_german_when_reporting_is_down_or_refuses_in_json(
    make_gateway: GatewayFactory,
) -> None:
    down = await make_gateway(urls={"reporting": "http://127.0.0.1:9"})  # nothing listens there
    statistics = await down.signed_in("stats-down", (Role.STATISTICS, "*"))
    page = await statistics.get("/staff/statistics")
    html = await page.text()
    assert page.status == 502 and _is_german_page(page.content_type, html), html[:300]
    assert "Ein Dienst antwortet gerade nicht" in html and "unavailable" not in html

    refusing = await make_gateway()
    reporting = refusing.upstreams["reporting"]
    reporting.status = 404
    reporting.answer = {"error": {"code": "not_found", "message": "No such report.", "details": []}}
    admin = await refusing.signed_in("stats-refused", (Role.ADMIN, "*"))
    page = await admin.get("/staff/admin/retention")
    html = await page.text()
    assert page.status == 404 and _is_german_page(page.content_type, html), html[:300]
    assert "<title>Nicht gefunden" in html and "No such report" not in html
