"""The staff API in the OpenAPI document (R50): every staff and admin operation says how it is
authenticated and what its rule needs; the gateway's own answers match their declared models."""

from __future__ import annotations

import pytest

from services.gateway.integrations import openapi as integrations_openapi
from services.gateway.staff import openapi as staff_openapi
from services.gateway.staff.rules import FORWARDED, rule_table
from shared.identity import Role
from shared.openapi import merge_documents
from tests.staff.conftest import Gateway

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.mark.req("R50")
def test_every_staff_and_admin_api_route_is_documented_with_its_security_and_rule() -> None:
    merged = merge_documents([staff_openapi.document(), integrations_openapi.document()], title="test")
    staff_openapi.annotate(merged)
    schemes = merged["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    # The gateway's own staff routes declared here, and every route forwarded to a service (declared by
    # the service, or a short entry); other parts of the gateway declare their own routes.
    table = rule_table()
    documented = {(r.method, r.path) for r in staff_openapi.ROUTES} | {(r.method, r.path) for r in FORWARDED}
    for (method, path), rule in table.items():
        if not path.startswith("/api/v1/"):
            continue
        operation = merged["paths"].get(path, {}).get(method.lower())
        if operation is None:
            assert (method, path) not in documented, (method, path)
            continue
        if rule.public:
            assert "security" not in operation
            continue
        assert {"401", "403"} <= set(operation["responses"]), (method, path)
        assert ({"apiKey": []} in operation["security"]) == (rule.operation is not None or rule.keys_too), (
            method,
            path,
        )
        # Beyond a few refusals a minute of one account (and refused keys from one network): 429.
        assert "`rate_limited`" in operation["responses"]["429"]["description"], (method, path)
    booking = merged["paths"]["/api/v1/staff/appointments"]["post"]
    assert "operation `appointments:write`" in booking["description"]
    window = merged["paths"]["/api/v1/admin/windows/{window_id}"]["put"]
    assert "capacity_conflict" in window["description"] and "group_leader" in window["description"]


async def test_the_gateways_staff_answers_match_their_documented_models(gateway: Gateway) -> None:
    admin = await gateway.signed_in("doc-admin", (Role.ADMIN, "*"))
    login = await gateway.browser().login("doc-admin")
    staff_openapi.LoginOut.model_validate(await login.json())
    staff_openapi.MeOut.model_validate(await (await admin.get("/api/v1/staff/me")).json())
    created = await admin.post(
        "/api/v1/admin/accounts", json={"username": "doc-x", "grants": [{"role": "audit"}]}
    )
    staff_openapi.AccountCreatedOut.model_validate(await created.json())
    for account in await (await admin.get("/api/v1/admin/accounts")).json():
        staff_openapi.AccountOut.model_validate(account)
    key = await admin.post(
        "/api/v1/admin/api-keys",
        json={"name": "doc", "locations": ["*"], "operations": ["events:read"]},
    )
    staff_openapi.ApiKeyCreatedOut.model_validate(await key.json())
    staff_openapi.AuditPageOut.model_validate(await (await admin.get("/api/v1/admin/audit-log")).json())
    roles = await (await admin.get("/api/v1/admin/locations/mitte/staff-roles")).json()
    for row in roles:
        staff_openapi.LocationRoleOut.model_validate(row)


@pytest.mark.req("R50")
def test_the_public_document_carries_the_services_staff_and_admin_routes_with_their_bodies() -> None:
    """Every forwarded write that reads a body declares it (the service centre and other systems build
    their requests from the document), and the services' own documents are all merged."""
    from services.gateway.openapi import document

    paths = document()["paths"]
    takes_no_body = {
        "/api/v1/staff/callbacks/{callback_id}/claim",
        "/api/v1/staff/appointments/{appointment_id}/manage-link",
        "/api/v1/staff/appointments/{appointment_id}/erase",
        "/api/v1/staff/waiting-list/{wish_id}/erase",
    }
    missing = [
        f"{route.method} {route.path}"
        for route in FORWARDED
        if route.method in {"POST", "PUT", "PATCH"}
        and route.path not in takes_no_body
        and not route.path.endswith("/replay")
        and "requestBody" not in paths.get(route.path, {}).get(route.method.lower(), {})
    ]
    assert missing == []
    summary = paths["/api/v1/staff/statistics/summary"]["get"]  # reporting's own declaration
    assert summary["responses"]["200"]["content"]["application/json"]["schema"]
    templates = paths["/api/v1/admin/mail-templates/{kind}/{language}"]["put"]  # the notifier's
    assert "requestBody" in templates and "staffSession" in str(templates["security"])


@pytest.mark.req("R50")
def test_every_operation_of_the_public_document_declares_what_its_success_answer_holds() -> None:
    """A client generated from the document knows every answer's shape: JSON by its schema, the Excel
    list as binary, a staff page as HTML; none is left as a bare "OK"."""
    from services.gateway.openapi import document

    bare = [
        f"{method.upper()} {path}"
        for path, operations in document()["paths"].items()
        for method, operation in operations.items()
        if not any(
            answer.get("content")
            for status, answer in operation["responses"].items()
            if status.startswith("2")
        )
    ]
    assert bare == []


def test_every_error_code_a_service_raises_is_known_to_the_document_with_its_status() -> None:
    """An error the code can answer with is one the document can declare (and a client can look up)."""
    import importlib
    import pkgutil

    import services
    from shared.errors import OTVError
    from shared.openapi import ERROR_STATUS

    for module in pkgutil.walk_packages(services.__path__, "services."):
        if not module.name.endswith("__main__"):  # __main__ would start the service
            importlib.import_module(module.name)

    def subclasses(cls: type[OTVError]) -> list[type[OTVError]]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    raised = {(error.code, error.status) for error in subclasses(OTVError)}
    assert len(raised) > 10
    assert {(code, status) for code, status in raised if ERROR_STATUS.get(code) != status} == set()


@pytest.mark.req("R50")
def test_the_public_api_document_is_valid_openapi_3_1() -> None:
    """What the service centre and other systems generate their clients from is a valid document."""
    from openapi_spec_validator import OpenAPIV31SpecValidator

    from services.gateway.openapi import document

    assert [str(error)[:200] for error in OpenAPIV31SpecValidator(document()).iter_errors()] == []


@pytest.mark.req("R50")
def test_every_refusal_of_bad_input_the_gateway_or_a_service_answers_is_declared() -> None:
    """Found by schemathesis (test_staff_api_fuzz.py): a location id in the path that cannot be one is
    404 at the gateway's rule check, one in the query or body 422; a route that reads a query or a body
    answers 422 for an invalid one; the gateway refuses a forwarded path segment that is not an id with
    422. A generated client must find each of these statuses in the document."""
    from services.gateway.openapi import document
    from services.gateway.staff.rules import From

    paths = document()["paths"]
    table = rule_table()
    missing = []
    for path, operations in paths.items():
        if not path.startswith(("/api/v1/staff/", "/api/v1/admin/")):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            reads_input = "requestBody" in operation or any(
                p["in"] == "query" for p in operation.get("parameters", [])
            )
            if reads_input and "422" not in responses:
                missing.append(f"{method.upper()} {path}: 422")
            rule = table.get((method.upper(), path))
            if rule is None or rule.public:
                continue
            if rule.location.source in (From.PATH, From.LOOKUP) and "404" not in responses:
                missing.append(f"{method.upper()} {path}: 404")
            if rule.location.source in (From.QUERY, From.QUERY_OR_OWN, From.BODY) and "422" not in responses:
                missing.append(f"{method.upper()} {path}: 422")
    replay = paths["/api/v1/admin/booking/dead-letters/{dead_letter_id}/replay"]["post"]
    if "422" not in replay["responses"]:
        missing.append("POST .../dead-letters/{dead_letter_id}/replay: 422")
    assert missing == []


@pytest.mark.req("R50")
def test_a_query_field_read_empty_as_not_given_admits_the_empty_string_in_its_schema() -> None:
    """Found by schemathesis: `?from=&to=&location=` is "the default" (the descriptions say so, and a
    client filling the documented template sends it), but the schemas said `format: date` and
    `minLength: 1`, so the document called a request invalid that the service rightly answers."""
    from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]

    from services.gateway.openapi import document

    merged = document()
    checked = 0
    for path in (
        "/api/v1/staff/statistics/summary",
        "/api/v1/admin/booking-patterns",
        "/api/v1/staff/callbacks",
    ):
        for parameter in merged["paths"][path]["get"]["parameters"]:
            if parameter["in"] != "query" or parameter["name"] not in {"from", "to", "location"}:
                continue
            schema = {**parameter["schema"], "components": merged["components"]}
            validator = Draft202012Validator(schema, format_checker=FormatChecker())
            for blank in ("", " ", "\t"):  # blank_is_none reads whitespace as empty
                assert validator.is_valid(blank), (path, parameter, blank)
            checked += 1
    assert checked == 7
    # A value is still checked: a date that is none is not.
    to = next(
        p
        for p in merged["paths"]["/api/v1/staff/statistics/summary"]["get"]["parameters"]
        if p["name"] == "to"
    )
    assert not Draft202012Validator(to["schema"], format_checker=FormatChecker()).is_valid("2026-13-45")


@pytest.mark.req("R50")
def test_every_operation_that_takes_a_body_declares_the_413_of_a_body_too_large() -> None:
    """Found by schemathesis: the gateway answers 413 `payload_too_large` to any body over 256 KiB (the
    description says so), but no operation declared the status, so a client generated from the document
    had no case for it."""
    from services.gateway.openapi import document

    missing = [
        f"{method.upper()} {path}"
        for path, operations in document()["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
        and "`payload_too_large`" not in operation["responses"].get("413", {}).get("description", "")
    ]
    assert missing == []
