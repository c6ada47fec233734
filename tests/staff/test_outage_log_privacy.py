"""R34: a request that fails while the gateway's database is away is logged with its route's pattern,
never its address. The deprecated admin API address `/api/v1/admin/accounts/<username>` and old bookmarks
of `/staff/admin/accounts/<username>` name an employee; a query can carry a token or an e-mail address."""

from __future__ import annotations

import json

import pytest
import structlog

from shared.identity import Role
from tests.staff.conftest import GatewayFactory
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.mark.req("R34")
async def test_a_database_outage_is_logged_with_the_route_not_the_username_in_the_address(
    make_gateway: GatewayFactory,
) -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    port = await proxy.start()
    try:
        gateway = await make_gateway(db_port=port)
        admin = await gateway.signed_in("outage-log-admin", (Role.ADMIN, "*"))
        await gateway.account("erika.musterfrau")
        await proxy.cut()
        with structlog.testing.capture_logs() as logs:
            api = await admin.get("/api/v1/admin/accounts/erika.musterfrau?email=erika@example.invalid")
            page = await admin.get("/staff/admin/accounts/erika.musterfrau?token=geheim-token-123")
        assert api.status == 503 and page.status == 503
    finally:
        await proxy.cut()
    outage = [line for line in logs if line["event"] == "database_unavailable"]
    assert len(outage) == 2, logs
    logged = json.dumps(outage, default=str)
    for value in ("erika.musterfrau", "erika@example.invalid", "geheim-token-123"):
        assert value not in logged
    assert {line.get("route") for line in outage} == {
        "/api/v1/admin/accounts/{account_id}",
        "/staff/admin/accounts/{account_id}",
    }
