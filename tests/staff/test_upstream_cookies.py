"""The gateway's one HTTP client carries every customer's and staff member's requests to the services: a
cookie a service sets must not be kept there and sent along with the next person's request (nor reach
the browser, which knows only the gateway's own cookies)."""

from __future__ import annotations

from aiohttp.test_utils import TestServer

from tests.staff.conftest import GatewayFactory, Upstream

AVAILABILITY = "/api/v1/locations/mitte/availability?concern=neuantrag&mode=in_person"


async def test_a_cookie_set_by_a_service_never_travels_with_the_next_persons_request(
    make_gateway: GatewayFactory,
) -> None:
    booking = Upstream(sets_cookie=("upstream_session", "first-customer"))
    server = TestServer(booking.app())
    await server.start_server()
    try:
        # By a host name, as in a deployment (`http://booking:8080`): a client's cookie jar keeps no
        # cookies of a bare IP address, so 127.0.0.1 would hide the leak.
        gateway = await make_gateway({"booking": f"http://localhost:{server.port}"})

        first = await gateway.client.get(AVAILABILITY)
        assert first.status == 200
        assert "Set-Cookie" not in first.headers

        booking.sets_cookie = None
        second = await gateway.client.get(AVAILABILITY)
        assert second.status == 200
        assert len(booking.calls) == 2
        assert "Cookie" not in booking.calls[-1]["headers"]
    finally:
        await server.close()
