"""The admin API's old form that names a staff account by its username in the path (deprecated since document
version 1.5.0, R34) says so in every answer, machine-readably: `Deprecation` (RFC 9745) with the moment it
was deprecated, and `Link: <...>; rel="successor-version"` to the same route by the account's id where the
account is known to the caller. Operators see in a metric and the log, by route and never by username,
whether clients still use it."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from services.gateway.openapi import document
from shared.identity import Role
from tests.staff.conftest import Gateway, account_id

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

ACCOUNT = "/api/v1/admin/accounts/{account_id}"
STAFF_ROLES = "/api/v1/admin/locations/{location_id}/staff-roles/{account_id}"
# When each form was deprecated (git history: the account routes in 21963c5, a location's staff roles in
# 37ee33a, both released as document version 1.5.0), as RFC 9745 writes it.
ACCOUNTS_DEPRECATED = "@1796651764"  # 2026-12-07 13:56:04 UTC
STAFF_ROLES_DEPRECATED = "@1796652152"  # 2026-12-07 14:02:32 UTC


def _uses(route: str) -> float:
    value = REGISTRY.get_sample_value("otv_deprecated_requests_total", {"route": route})
    assert value is not None, f"{route} is not counted from zero"
    return value


def _successor(path: str) -> str:
    return f'<{path}>; rel="successor-version"'


def _used(logs: list[MutableMapping[str, Any]]) -> list[str]:
    return [entry["route"] for entry in logs if entry["event"] == "deprecated_form_used"]


@pytest.mark.req("R34")
@pytest.mark.req("R50")
async def test_every_answer_to_an_account_named_by_its_username_says_the_form_is_deprecated(
    gateway: Gateway,
) -> None:
    run = uuid.uuid4().hex[:8]
    lisa = f"lisa.beispiel-{run}"
    admin_name = f"dep-admin-{run}"
    admin = await gateway.signed_in(admin_name, (Role.ADMIN, "*"))
    auditor = await gateway.signed_in(f"dep-audit-{run}", (Role.AUDIT, "*"))
    await gateway.account(lisa, (Role.AUDIT, "*"))
    lisa_id = await account_id(gateway, lisa)
    admin_id = await account_id(gateway, admin_name)
    by_name = f"/api/v1/admin/accounts/{lisa}"
    by_id = f"/api/v1/admin/accounts/{lisa_id}"
    steps = (
        ("GET", "", None),
        ("PUT", "/grants", {"grants": [{"role": "statistics"}]}),
        ("POST", "/disable", None),
        ("POST", "/enable", None),
        ("POST", "/reset-password", None),
    )
    disable_before = _uses(f"{ACCOUNT}/disable")
    with structlog.testing.capture_logs() as logs:
        for method, suffix, body in steps:
            answer = await admin.request(method, f"{by_name}{suffix}", json=body)
            assert answer.status == 200, (method, suffix)
            assert answer.headers["Deprecation"] == ACCOUNTS_DEPRECATED, (method, suffix)
            assert answer.headers["Link"] == _successor(f"{by_id}{suffix}"), (method, suffix)
            # The id form is the successor, and not deprecated.
            current = await admin.request(method, f"{by_id}{suffix}", json=body)
            assert current.status == 200, (method, suffix)
            assert "Deprecation" not in current.headers and "Link" not in current.headers

        # Error answers say it too; the successor wherever the caller has reached the account.
        invalid = await admin.put(f"{by_name}/grants", json={"grants": "statistics"})
        own = await admin.post(f"/api/v1/admin/accounts/{admin_name}/disable")
        nobody = await admin.post(f"/api/v1/admin/accounts/max.mustermann-{run}/disable")
        # Neither an anonymous nor a refused caller learns from a Link which usernames exist.
        anonymous = await gateway.browser().post(f"{by_name}/disable")
        refused = await auditor.post(f"{by_name}/disable")
    assert invalid.status == 422 and invalid.headers["Link"] == _successor(f"{by_id}/grants")
    assert own.status == 409 and own.headers["Link"] == _successor(
        f"/api/v1/admin/accounts/{admin_id}/disable"
    )
    for answer, status in ((nobody, 404), (anonymous, 401), (refused, 403)):
        assert answer.status == status
        assert answer.headers["Deprecation"] == ACCOUNTS_DEPRECATED and "Link" not in answer.headers, status
    assert invalid.headers["Deprecation"] == own.headers["Deprecation"] == ACCOUNTS_DEPRECATED

    # One log line and one count per use, by the route's pattern; the username nowhere.
    assert _used(logs) == [
        *(f"{ACCOUNT}{suffix}" for _, suffix, _ in steps),
        f"{ACCOUNT}/grants",
        *[f"{ACCOUNT}/disable"] * 4,
    ]
    assert [entry for entry in logs if lisa in str(entry) or admin_name in str(entry)] == []
    assert _uses(f"{ACCOUNT}/disable") == disable_before + 5


@pytest.mark.req("R34")
@pytest.mark.req("R30")
async def test_a_location_administrator_setting_roles_by_username_is_told_the_form_is_deprecated(
    gateway: Gateway,
) -> None:
    run = uuid.uuid4().hex[:8]
    clerk = f"clerk.beispiel-{run}"
    location_admin = await gateway.signed_in(f"dep-la-{run}", (Role.LOCATION_ADMIN, "mitte"))
    await gateway.account(clerk, (Role.APPOINTMENT_MANAGER, "mitte"))
    clerk_id = await account_id(gateway, clerk)
    body = {"roles": ["group_leader"], "groups": ["mitte-ez"]}
    before = _uses(STAFF_ROLES)
    with structlog.testing.capture_logs() as logs:
        old = await location_admin.put(f"/api/v1/admin/locations/mitte/staff-roles/{clerk}", json=body)
        current = await location_admin.put(f"/api/v1/admin/locations/mitte/staff-roles/{clerk_id}", json=body)
        elsewhere = await location_admin.put(f"/api/v1/admin/locations/nord/staff-roles/{clerk}", json=body)
    assert old.status == 200 and (await old.json())["id"] == clerk_id
    assert old.headers["Deprecation"] == STAFF_ROLES_DEPRECATED
    assert old.headers["Link"] == _successor(f"/api/v1/admin/locations/mitte/staff-roles/{clerk_id}")
    assert current.status == 200 and "Deprecation" not in current.headers and "Link" not in current.headers
    assert elsewhere.status == 403 and elsewhere.headers["Deprecation"] == STAFF_ROLES_DEPRECATED
    assert "Link" not in elsewhere.headers
    assert _used(logs) == [STAFF_ROLES, STAFF_ROLES]
    assert [entry for entry in logs if clerk in str(entry)] == []
    assert _uses(STAFF_ROLES) == before + 2


@pytest.mark.req("R50")
def test_the_document_declares_both_headers_on_every_answer_of_the_deprecated_form() -> None:
    doc = document()
    major, minor, _ = (int(part) for part in doc["info"]["version"].split("."))
    assert (major, minor) >= (1, 8)  # the version that added the headers; later ones keep them
    paths = [p for p in doc["paths"] if "{account_id}" in p]
    assert sorted(paths) == sorted(
        [
            ACCOUNT,
            f"{ACCOUNT}/grants",
            f"{ACCOUNT}/disable",
            f"{ACCOUNT}/enable",
            f"{ACCOUNT}/reset-password",
            STAFF_ROLES,
        ]
    )
    for path in paths:
        for method, operation in doc["paths"][path].items():
            assert {"200", "401", "403", "404"} <= set(operation["responses"]), (method, path)
            for status, response in operation["responses"].items():
                headers = response.get("headers", {})
                assert {"Deprecation", "Link"} <= set(headers), (method, path, status)
                deprecation = headers["Deprecation"]
                expected = STAFF_ROLES_DEPRECATED if path == STAFF_ROLES else ACCOUNTS_DEPRECATED
                assert expected in deprecation["description"], (method, path, status)
                assert "successor-version" in headers["Link"]["description"]
                assert not deprecation.get("required") and not headers["Link"].get("required")
