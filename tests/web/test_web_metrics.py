"""What the operator's dashboards and alerts read about the customer pages (R51): a step of the booking
dialogue answers with a redirect (303 See Other), and /metrics counts it as that, never as a server error
(OTVHighServerErrorRate pages on the share of 5xx)."""

from __future__ import annotations

import re

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import Stack


async def http_requests(http: aiohttp.ClientSession) -> dict[tuple[str, str, str], float]:
    """otv_http_requests_total of the gateway from its /metrics: (method, route, status) -> count."""
    async with http.get("/metrics") as response:
        assert response.status == 200
        text = await response.text()
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "otv_http_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "otv_http_requests_total" and labels["service"] == "gateway":
                counts[labels["method"], labels["route"], labels["status"]] = sample.value
    return counts


def server_errors(counts: dict[tuple[str, str, str], float], method: str, route: str) -> float:
    return sum(v for (m, r, status), v in counts.items() if (m, r) == (method, route) and status >= "500")


@pytest.mark.req("R51")
async def test_a_step_of_the_dialogue_that_redirects_is_counted_as_303_and_never_as_a_server_error(
    stack: Stack,
) -> None:
    # The session cookie of the forms is Secure; browsers send it to http://127.0.0.1, aiohttp when told.
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[stack.gateway_url])
    async with aiohttp.ClientSession(base_url=stack.gateway_url, cookie_jar=jar) as http:
        before = await http_requests(http)
        async with http.get("/") as page:
            match = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
            assert match
        async with http.post(
            "/", data={"location": "mitte", "csrf_token": match.group(1)}, allow_redirects=False
        ) as step:
            assert step.status == 303  # on to the concern
            assert step.headers["Location"].startswith("/concern?s=")
        after = await http_requests(http)

    assert after.get(("POST", "/", "303"), 0) == before.get(("POST", "/", "303"), 0) + 1
    assert server_errors(after, "POST", "/") == server_errors(before, "POST", "/") == 0
