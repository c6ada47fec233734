"""The OpenAPI 3.1 document at /api/v1/openapi.json describes every public endpoint, and schemathesis
finds no 5xx and no answer that breaks it (run from Python against the live in-process gateway, bounded)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.gateway.routes import PUBLIC_ROUTES
from tests.fuzzing import reproducible
from tests.web.conftest import Stack
from tests.web.test_web_reschedule import book_via_api, free_slots
from tests.web.test_web_security_and_bot_defence import gateway_client

pytestmark = pytest.mark.timeout(120)
EXAMPLES_PER_OPERATION = 25
CUSTOMER_PREFIXES = (
    "/api/v1/locations",
    "/api/v1/finder",
    "/api/v1/appointments",
    "/api/v1/challenge",
    "/api/v1/waiting-list",
)


async def fetch_document(stack: Stack) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(stack.gateway_url + "/api/v1/openapi.json") as response,
    ):
        assert response.status == 200
        document: dict[str, Any] = await response.json()
        return document


async def test_the_document_is_openapi_31_and_describes_every_public_route(stack: Stack) -> None:
    document = await fetch_document(stack)
    assert document["openapi"].startswith("3.1")
    # The architecture's customer booking table (the proxy's first nine routes).
    for route in PUBLIC_ROUTES[:9]:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["summary"]
        assert {"200", "201"} & set(operation["responses"]), route
    booking = document["paths"]["/api/v1/appointments"]["post"]
    body = booking["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = document["components"]["schemas"][body]["properties"]
    assert {
        "location_id",
        "concern_id",
        "start",
        "mode",
        "customer",
        "evening_declaration",
        "language",
    } <= set(fields)
    assert {"409", "422", "428", "429"} <= set(booking["responses"])
    assert document["paths"]["/api/v1/challenge"]["get"]


async def test_the_customer_cancel_documents_its_body_as_optional_and_takes_none(stack: Stack) -> None:
    """ARCHITECTURE.md names no body for the cancellation: the document must not make one required (a
    generated client would force it), and a POST without any body cancels."""
    document = await fetch_document(stack)
    cancel = document["paths"]["/api/v1/appointments/{appointment_id}/cancel"]["post"]
    assert cancel["requestBody"]["required"] is False
    assert document["paths"]["/api/v1/appointments"]["post"]["requestBody"]["required"] is True
    client = await gateway_client(stack)
    try:
        appointment_id, token = await book_via_api(client, (await free_slots(client))[-8]["start"])
        cancelled = await client.post(
            f"/api/v1/appointments/{appointment_id}/cancel", headers={"X-Manage-Token": token}
        )
        assert cancelled.status == 200 and await cancelled.json() == {"status": "cancelled"}
    finally:
        await client.close()


async def test_each_service_serves_its_own_part_of_the_document(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        for base, path in (
            (stack.catalog_url, "/api/v1/finder"),
            (stack.booking_url, "/api/v1/appointments"),
        ):
            async with http.get(base + "/openapi.json") as response:
                assert response.status == 200
                assert path in (await response.json())["paths"]


def _run_schemathesis(document: dict[str, Any], base_url: str) -> list[str]:
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    checks = [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # the document is valid (the test above)
        if not operation.path.startswith(CUSTOMER_PREFIXES):
            continue

        @reproducible(EXAMPLES_PER_OPERATION)
        @hypothesis.given(case=operation.as_strategy())
        def exercise(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=base_url, checks=checks, timeout=10)

        try:
            exercise()
        except Exception as exc:  # noqa: BLE001 -- collected per operation, reported together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures


@pytest.mark.req("R50")
async def test_schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_schema(stack: Stack) -> None:
    document = await fetch_document(stack)
    failures = await asyncio.to_thread(_run_schemathesis, document, stack.gateway_url)
    assert not failures, "\n\n".join(failures)


@pytest.mark.req("R43")
async def test_answers_in_the_asked_language_say_so_through_the_gateway_for_shared_caches(
    stack: Stack,
) -> None:
    """The concerns come in the language asked for and may be cached publicly: the gateway passes on
    `Vary: Accept-Language` and `Content-Language`, so that a shared cache never serves German to an
    English reader."""
    async with aiohttp.ClientSession() as http:
        for language in ("en", "de"):
            async with http.get(
                stack.gateway_url + "/api/v1/locations/mitte/concerns", headers={"Accept-Language": language}
            ) as response:
                assert response.status == 200
                assert "public" in response.headers["Cache-Control"]
                assert response.headers["Vary"] == "Accept-Language"
                assert response.headers["Content-Language"] == language
