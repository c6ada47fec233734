"""Schemathesis against the staff, service-centre and admin API of the OpenAPI document (R50), on the real
catalog, booking, reporting, notifier and gateway: bad input gets an error in the
architecture's body, never a 5xx, and every answer is what the document declares. With an API key that
may do everything an API key may (the service centre's routes), as a signed-in administrator (the admin
routes), as an administrator with the statistics role (reporting's routes), and without credentials (401
everywhere); then a service-centre day by hand, whose successful answers random input rarely reaches.
Bounded and derandomized, so that a failure found in CI is found again on a developer's machine: under a
minute in all. (A deeper local run: raise EXAMPLES_PER_OPERATION and set derandomize=False.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import asyncpg
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.gateway.staff import catalog_index
from services.gateway.staff.domain import OPERATIONS
from services.gateway.staff.rules import FORWARDED
from shared.identity import Role
from shared.openapi import ErrorBody
from tests.fuzzing import reproducible
from tests.staff.conftest import GatewayFactory, Stack, StaffClient, customer, real_stack, wait_for_slots

pytestmark = [
    pytest.mark.timeout(150),
    # The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain
    # string key, which aiohttp warns about; irrelevant here.
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]
EXAMPLES_PER_OPERATION = 20
# Routes that end the administrator's session or change its password: the run would lose its footing.
SESSION_ROUTES = {
    ("POST", "/api/v1/staff/login"),
    ("POST", "/api/v1/staff/logout"),
    ("POST", "/api/v1/staff/password"),
}


@dataclass
class FuzzStack:
    stack: Stack
    key: str
    # Path parameters that name things that exist (a location, its group, window and closure, a booked
    # appointment, an account, a second API key, a street of the finder), so that the generated requests
    # get past the 404 into the services' code.
    known: dict[str, str]

    @property
    def base_url(self) -> str:
        return str(self.stack.gateway.client.make_url("")).rstrip("/")


@pytest.fixture
async def fuzz_stack(
    clean_db: dict[str, asyncpg.Pool],
    make_gateway: GatewayFactory,
    amqp: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[FuzzStack]:
    # Each unknown group, window or closure id waits for the gateway's next look-up in the catalog, at
    # most one a second (catalog_index.py): random ids would spend the run's time waiting.
    monkeypatch.setattr(catalog_index, "REFRESH_AT_MOST_EVERY", 0.0)
    # A key's allowance (429 beyond it) would stop the run long before its examples are through.
    async with real_stack(make_gateway, amqp, reporting=True, notifier=True, api_key_burst=100_000) as stack:
        admin = stack.admin
        created = await admin.post(
            "/api/v1/admin/api-keys",
            json={"name": "Fuzzing", "locations": ["*"], "operations": sorted(OPERATIONS)},
        )
        assert created.status == 201, await created.text()
        key = (await created.json())["key"]
        await stack.gateway.account("fuzz-target", (Role.APPOINTMENT_MANAGER, "mitte"))
        slots = await wait_for_slots(admin, "mitte", "neuantrag", "2026-03-03")
        booked = await admin.post("/api/v1/staff/appointments", json=customer(slots[-1]))
        assert booked.status in (200, 201), await booked.text()
        location = await (await admin.get("/api/v1/admin/locations/mitte")).json()
        second = await admin.post(
            "/api/v1/admin/api-keys",
            json={"name": "Zweiter", "locations": ["mitte"], "operations": ["events:read"]},
        )
        closure = await admin.post(
            "/api/v1/admin/locations/mitte/closures", json={"first": "2026-04-07", "last": "2026-04-07"}
        )
        street = await admin.post(
            "/api/v1/admin/finder/streets", json={"street": "Fuzzweg", "location_id": "mitte"}
        )
        for created in (second, closure, street):
            assert created.status in (200, 201), await created.text()
        known = {
            "location_id": "mitte",
            "group_id": "mitte-ez",
            "concern_id": "neuantrag",
            "window_id": str(location["windows"][0]["id"]),
            "appointment_id": (await booked.json())["id"],
            "username": "fuzz-target",
            "key_id": (await second.json())["id"],
            "closure_id": str((await closure.json())["id"]),
            "street_id": str((await street.json())["id"]),
            "kind": "confirmation",
            "language": "de",
        }
        yield FuzzStack(stack, key, known)


def error_body_of_the_architecture(ctx: CheckContext, response: Any, case: schemathesis.Case[Any]) -> bool:
    """Every 4xx/5xx of a JSON route is `{"error": {"code", "message", "details"}}`."""
    if response.status_code < 400:
        return True
    try:
        ErrorBody.model_validate_json(response.content)
    except Exception as exc:
        raise AssertionError(
            f"{response.status_code} without the architecture's error body: {response.content[:300]!r}"
        ) from exc
    return True


def invalid_data_is_rejected(ctx: CheckContext, response: Any, case: schemathesis.Case[Any]) -> bool | None:
    """schemathesis's `negative_data_rejection`, except for an invalid cookie or header: the session
    cookie and the key's header are sent by the test whatever the case holds; and a documented 413
    `payload_too_large` (three text fields over their maxLength exceed the gateway's body limit) is a
    refusal too, which schemathesis does not count as one."""
    data = case.meta.phase.data if case.meta is not None else None
    locations = [getattr(data, "parameter_location", None)]
    locations += [m.parameter_location for m in getattr(data, "mutations", ())]
    if any(location is not None and location.name.lower() in {"cookie", "header"} for location in locations):
        return None
    if response.status_code == 413:  # a body over the gateway's limit (fields over their maxLength): refused
        return True
    result: bool | None = negative_data_rejection(ctx, response, case)
    return result


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    error_body_of_the_architecture,
]


def _services() -> dict[tuple[str, str], str]:
    return {(r.method, r.path): r.service for r in FORWARDED}


def _exercise(
    operation: Any,
    base_url: str,
    headers: dict[str, str],
    mode: GenerationMode,
    path_parameters: dict[str, str] | None,
    checks: list[Any],
    examples: int = EXAMPLES_PER_OPERATION,
) -> None:
    @reproducible(examples)
    @hypothesis.given(case=operation.as_strategy(mode, path_parameters=path_parameters))
    def exercise(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=10)

    exercise()


class Caller(StrEnum):
    KEY = "key"  # the routes an API key may call (apiKey scheme)
    ADMIN = "admin"  # the other routes of catalog, booking, notifier and gateway, as an administrator
    REPORTING = "reporting"  # reporting's routes, as an administrator with the statistics role


def _selected(caller: Caller, service: str | None, security: list[dict[str, Any]]) -> bool:
    if caller is Caller.REPORTING:
        return service == "reporting"
    return service != "reporting" and ({"apiKey": []} in security) == (caller is Caller.KEY)


def _run(document: dict[str, Any], fuzz: FuzzStack, headers: dict[str, str], caller: Caller) -> list[str]:
    """Every staff/admin API operation of the real services that this caller calls: valid requests with
    random and with existing path parameters, and invalid ones."""
    schema = schemathesis.openapi.from_dict(document)
    services = _services()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # the document is valid (test_staff_openapi)
        path, method = operation.path, operation.method.upper()
        if not path.startswith(("/api/v1/staff/", "/api/v1/admin/")) or (method, path) in SESSION_ROUTES:
            continue
        security = operation.definition.raw.get("security") or []
        if not _selected(caller, services.get((method, path)), security):
            continue
        names = {p.name for p in operation.path_parameters}
        known = {name: value for name, value in fuzz.known.items() if name in names}
        # Random path parameters (mostly 404), then, where every one can name something that exists,
        # valid and invalid requests about it; invalid ones with random path parameters otherwise.
        passes: list[tuple[GenerationMode, dict[str, str] | None]] = [(GenerationMode.POSITIVE, None)]
        if names and set(known) == names:
            passes += [(GenerationMode.POSITIVE, known), (GenerationMode.NEGATIVE, known)]
        else:
            passes.append((GenerationMode.NEGATIVE, None))

        for mode, path_parameters in passes:
            try:
                checks = CHECKS + ([invalid_data_is_rejected] if mode is GenerationMode.NEGATIVE else [])
                _exercise(operation, fuzz.base_url, headers, mode, path_parameters, checks)
            # schemathesis's FailureGroup is a BaseExceptionGroup, not an Exception.
            except (Exception, FailureGroup) as exc:  # noqa: BLE001 -- collected, reported together
                failures.append(f"{operation.label} ({mode.value}): {type(exc).__name__}: {str(exc)[:1500]}")
    return failures


def refused_as_unauthenticated(ctx: CheckContext, response: Any, case: schemathesis.Case[Any]) -> bool:
    """Without a session or key (or with generated ones), whatever the request holds: 401
    `unauthenticated` with the scheme, or, after a few refused keys from this network, 429."""
    code = response.json()["error"]["code"]
    if response.status_code == 429:
        assert code == "rate_limited"
        return True
    assert response.status_code == 401, f"{response.status_code} without credentials"
    assert code == "unauthenticated"
    assert "www-authenticate" in {name.lower() for name in response.headers}, "401 without WWW-Authenticate"
    return True


def _run_anonymous(document: dict[str, Any], base_url: str) -> list[str]:
    """Every staff/admin API operation that needs a session or key (of every service: the gateway refuses
    before it forwards), a few requests each without either."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # the document is valid (test_staff_openapi)
        if not operation.path.startswith(("/api/v1/staff/", "/api/v1/admin/")):
            continue
        if not operation.definition.raw.get("security"):
            continue
        checks = [*CHECKS, refused_as_unauthenticated]
        try:
            _exercise(operation, base_url, {}, GenerationMode.POSITIVE, None, checks, examples=3)
        except (Exception, FailureGroup) as exc:  # noqa: BLE001 -- collected, reported together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures


def _run_repeated(
    document: dict[str, Any], fuzz: FuzzStack, headers: dict[str, str]
) -> tuple[int, list[str]]:
    """Every staff/admin GET operation with query parameters whose path parameters name things that
    exist, with its first query parameter given twice: 422 `validation_error` naming it, as documented.
    Generated requests never repeat a parameter, so this is asked by hand. (How many were asked, the
    failures.)"""
    schema = schemathesis.openapi.from_dict(document)
    asked, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # the document is valid (test_staff_openapi)
        if operation.method.upper() != "GET" or not operation.path.startswith(
            ("/api/v1/staff/", "/api/v1/admin/")
        ):
            continue
        names = {p.name for p in operation.path_parameters}
        query = [p.name for p in operation.query]
        if not query or not names <= set(fuzz.known):
            continue
        asked += 1
        known = {name: fuzz.known[name] for name in names}
        case = operation.Case(path_parameters=known, query={query[0]: ["1", "1"]})
        try:
            response = case.call_and_validate(
                base_url=fuzz.base_url, headers=headers, checks=CHECKS, timeout=10
            )
            error = response.json()["error"]
            assert response.status_code == 422, response.status_code
            assert error["code"] == "validation_error" and error["details"][0]["field"] == query[0], error
        except (Exception, FailureGroup) as exc:  # noqa: BLE001 -- collected, reported together
            failures.append(f"{operation.label} ({query[0]} twice): {type(exc).__name__}: {str(exc)[:1500]}")
    return asked, failures


async def _document(fuzz: FuzzStack) -> dict[str, Any]:
    response = await fuzz.stack.gateway.client.get("/api/v1/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


@pytest.mark.req("R50")
async def test_the_service_centre_routes_answer_every_generated_request_as_documented(
    fuzz_stack: FuzzStack,
) -> None:
    document = await _document(fuzz_stack)
    headers = {"Authorization": f"Bearer {fuzz_stack.key}"}
    failures = await asyncio.to_thread(_run, document, fuzz_stack, headers, Caller.KEY)
    assert not failures, "\n\n".join(failures)


def _session(client: StaffClient) -> dict[str, str]:
    return {"Cookie": f"{client.cookie_name}={client.cookie}", "Origin": client.origin}


@pytest.mark.req("R50")
async def test_the_admin_routes_answer_every_generated_request_of_an_administrator_as_documented(
    fuzz_stack: FuzzStack,
) -> None:
    document = await _document(fuzz_stack)
    headers = _session(fuzz_stack.stack.admin)
    failures = await asyncio.to_thread(_run, document, fuzz_stack, headers, Caller.ADMIN)
    assert not failures, "\n\n".join(failures)


@pytest.mark.req("R50")
async def test_reportings_routes_answer_every_generated_request_as_documented(fuzz_stack: FuzzStack) -> None:
    document = await _document(fuzz_stack)
    central = await fuzz_stack.stack.gateway.signed_in(
        "fuzz-central", (Role.ADMIN, "*"), (Role.STATISTICS, "*")
    )
    failures = await asyncio.to_thread(_run, document, fuzz_stack, _session(central), Caller.REPORTING)
    assert not failures, "\n\n".join(failures)


@pytest.mark.req("R50")
async def test_every_staff_and_admin_route_refuses_a_generated_request_without_credentials_with_401(
    fuzz_stack: FuzzStack,
) -> None:
    document = await _document(fuzz_stack)
    failures = await asyncio.to_thread(_run_anonymous, document, fuzz_stack.base_url)
    assert not failures, "\n\n".join(failures)


@pytest.mark.req("R50")
async def test_every_staff_and_admin_query_refuses_a_parameter_given_twice_as_documented(
    fuzz_stack: FuzzStack,
) -> None:
    document = await _document(fuzz_stack)
    central = await fuzz_stack.stack.gateway.signed_in(
        "twice-central", (Role.ADMIN, "*"), (Role.STATISTICS, "*")
    )
    asked, failures = await asyncio.to_thread(_run_repeated, document, fuzz_stack, _session(central))
    assert asked >= 20, asked  # the day lists, statistics, audit log, events, dead letters and more
    assert not failures, "\n\n".join(failures)


@pytest.mark.req("R37")
@pytest.mark.req("R50")
async def test_a_service_centre_day_answers_every_step_as_documented(fuzz_stack: FuzzStack) -> None:
    """The successful answers are the ones random input rarely reaches: a day of the service centre with
    its key, the staff's work on the appointment's day, and reporting's lists and figures, each answer
    checked against the document as the generated ones are."""
    document = await _document(fuzz_stack)
    stack = fuzz_stack.stack
    await stack.gateway.account("day-central", (Role.ADMIN, "*"), (Role.STATISTICS, "*"))
    slots = await wait_for_slots(stack.admin, "mitte", "neuantrag", "2026-03-03")
    schema = schemathesis.openapi.from_dict(document)
    key = {"Authorization": f"Bearer {fuzz_stack.key}"}
    mitte = {"location_id": "mitte"}

    def call(headers: dict[str, str], method: str, path: str, status: int, **parts: Any) -> Any:
        case = schema[path][method].Case(**parts)
        response = case.call_and_validate(base_url=fuzz_stack.base_url, headers=headers, checks=CHECKS)
        assert response.status_code == status, (method, path, response.text[:500])
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
        return response.json() if "json" in str(content_type) else None

    def book(start: str, number: str) -> str:
        hold = call(
            key,
            "POST",
            "/api/v1/staff/locations/{location_id}/holds",
            201,
            path_parameters=mitte,
            body={"concern_id": "neuantrag", "mode": "in_person", "start": start},
        )
        person = {**customer(start)["customer"], "email": f"{number}@example.org", "customer_number": number}
        body = {
            **customer(start),
            "customer": person,
            "hold_id": hold["hold_id"],
            "interpreter_language": "ar",
        }
        booked = call(key, "POST", "/api/v1/staff/appointments", 201, body=body)
        return str(booked["id"])

    def service_centre() -> str:
        query = {"concern": "neuantrag", "mode": "in_person", "from": "2026-03-03", "to": "2026-03-03"}
        path = "/api/v1/staff/locations/{location_id}/availability"
        call(key, "GET", path, 200, path_parameters=mitte, query=query)
        one = {"appointment_id": book(slots[0], "111A111111")}
        other = {"appointment_id": book(slots[2], "222B222222")}
        reference = call(key, "GET", "/api/v1/staff/appointments/{appointment_id}", 200, path_parameters=one)
        path = "/api/v1/staff/locations/{location_id}/appointments"
        call(key, "GET", path, 200, path_parameters=mitte, query={"date": "2026-03-03"})
        call(key, "GET", "/api/v1/staff/appointments/search", 200, query={"q": reference["reference"]})
        path = "/api/v1/staff/appointments/{appointment_id}/contact"
        call(key, "POST", path, 200, path_parameters=one, body={"phone": "0421 123456"})
        call(key, "POST", "/api/v1/staff/appointments/{appointment_id}/manage-link", 202, path_parameters=one)
        path = "/api/v1/staff/appointments/{appointment_id}/reschedule"
        call(key, "POST", path, 200, path_parameters=one, body={"start": slots[1]})
        body = {"reason": "Kundin hat abgesagt", "on_customer_request": True}
        call(
            key,
            "POST",
            "/api/v1/staff/appointments/{appointment_id}/cancel",
            200,
            path_parameters=other,
            body=body,
        )
        call(key, "GET", "/api/v1/staff/events", 200, query={"limit": 50})
        return one["appointment_id"]

    appointment_id = await asyncio.to_thread(service_centre)
    # The appointment's day (a new session: yesterday's has ended): its outcome, a callback ticket, the
    # day's list and the figures.
    stack.gateway.clock.set(datetime(2026, 3, 3, 11, 0, tzinfo=UTC))
    central = stack.gateway.browser()
    assert (await central.login("day-central")).status == 200
    staff = _session(central)
    one = {"appointment_id": appointment_id}

    def staff_work() -> None:
        path = "/api/v1/staff/appointments/{appointment_id}/outcome"
        call(staff, "POST", path, 200, path_parameters=one, body={"outcome": "callback"})
        [ticket] = call(staff, "GET", "/api/v1/staff/callbacks", 200, query={"location": "mitte"})
        callback = {"callback_id": str(ticket["id"])}
        call(staff, "POST", "/api/v1/staff/callbacks/{callback_id}/claim", 200, path_parameters=callback)
        path = "/api/v1/staff/callbacks/{callback_id}/close"
        call(staff, "POST", path, 200, path_parameters=callback, body={"result": "Zurückgerufen"})
        call(staff, "GET", "/api/v1/admin/audit-log", 200, query={"limit": 5})
        path = "/api/v1/staff/locations/{location_id}/day-list"
        call(staff, "GET", path, 200, path_parameters=mitte, query={"date": "2026-03-03"})
        path = "/api/v1/staff/locations/{location_id}/day-lists"
        call(staff, "GET", path, 200, path_parameters=mitte, query={"from": "2026-03-01", "to": "2026-03-31"})
        period = {"from": "2026-03-01", "to": "2026-03-31"}
        for path in ("/api/v1/staff/statistics/summary", "/api/v1/staff/statistics/report"):
            call(staff, "GET", path, 200, query=period)
        call(staff, "GET", "/api/v1/staff/statistics/breakdown", 200, query={**period, "by": "channel"})
        call(staff, "GET", "/api/v1/staff/statistics/export", 200, query=period)
        call(staff, "GET", "/api/v1/admin/booking-patterns", 200, query=period)
        call(staff, "GET", "/api/v1/admin/retention-report", 200)

    await asyncio.to_thread(staff_work)
