"""Authorisation at one place (invariant I5, R28-R32, R46, R50): every staff and admin route of the
gateway's router has a rule, and for every route each role may do at its own location (Mitte) what the
rule allows and is refused at another (Vegesack, `nord`), in the API and in the pages."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.gateway.app import create_app as create_gateway
from services.gateway.config import Settings as GatewaySettings
from services.gateway.proxy import UPSTREAMS
from services.gateway.staff.catalog_index import CATALOG_INDEX
from services.gateway.staff.domain import FailureThrottle
from services.gateway.staff.rules import (
    ALL_LOCATIONS_MARK,
    FORWARDED,
    From,
    Rule,
    is_staff_path,
    rule_table,
)
from shared.identity import HEADER, Role, request_target, sign, verify
from shared.web import SETTINGS
from tests.conftest import svc_settings
from tests.staff.conftest import Gateway, Stack, StaffClient, audit_rows

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

AM, GL, LA = Role.APPOINTMENT_MANAGER, Role.GROUP_LEADER, Role.LOCATION_ADMIN
# Directive 3.6 and 5, read independently of the code: who includes whom, and who is central.
INCLUDES: dict[str, set[Role]] = {
    "manager": {AM},
    "leader": {AM, GL},
    "location_admin": {AM, GL, LA},
    "admin": {AM, GL, LA, Role.ADMIN, Role.AUDIT},
    "statistics": {Role.STATISTICS},
    "audit": {Role.AUDIT},
}
CENTRAL = {"admin", "statistics", "audit"}
GRANTS: dict[str, tuple[Role, str]] = {
    "manager": (AM, "mitte"),
    "leader": (GL, "mitte"),
    "location_admin": (LA, "mitte"),
    "admin": (Role.ADMIN, "*"),
    "statistics": (Role.STATISTICS, "*"),
    "audit": (Role.AUDIT, "*"),
}
KEY_OPERATIONS = ["appointments:read", "appointments:write", "events:read"]
# Logging out ends the walking session; it is tested on its own (test_sessions).
SKIPPED = {("POST", "/api/v1/staff/logout"), ("POST", "/staff/logout")}


def staff_routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in {"HEAD", "OPTIONS"}:
            continue
        if is_staff_path(resource.canonical):
            found.add((route.method, resource.canonical))
    return found


def unruled(app: web.Application) -> set[tuple[str, str]]:
    return staff_routes(app) - set(rule_table())


async def _nothing(_request: web.Request) -> web.Response:
    return web.json_response({})


def _app() -> web.Application:
    return create_gateway(svc_settings(GatewaySettings))  # type: ignore[arg-type]


def test_every_staff_and_admin_route_of_the_router_has_a_rule_and_every_rule_a_route() -> None:
    app = _app()
    routes = staff_routes(app)
    assert len(routes) > 60
    assert unruled(app) == set()
    assert set(rule_table()) - routes == set(), "rules for routes that do not exist"


def test_every_staff_and_admin_route_of_the_services_is_reached_through_a_rule_and_every_rule_served() -> (
    None
):
    """A staff route a service adds is reachable only through the gateway's table: the test names it; a
    forwarded route its service does not serve is named too."""
    from services.booking.app import create_app as create_booking
    from services.booking.config import Settings as BookingSettings
    from services.catalog.app import create_app as create_catalog
    from services.catalog.config import Settings as CatalogSettings
    from services.notifier.app import create_app as create_notifier
    from services.notifier.config import Settings as NotifierSettings
    from services.reporting.app import create_app as create_reporting
    from services.reporting.config import Settings as ReportingSettings

    forwarded = {(r.method, r.upstream_path or r.path, r.service) for r in FORWARDED}
    missing: list[str] = []
    served: set[tuple[str, str, str]] = set()
    for name, create, settings in (
        ("catalog", create_catalog, CatalogSettings),
        ("booking", create_booking, BookingSettings),
        ("notifier", create_notifier, NotifierSettings),
        ("reporting", create_reporting, ReportingSettings),
    ):
        app = create(svc_settings(settings))  # type: ignore[arg-type]  # each create_app takes its own Settings
        for method, path in staff_routes(app):
            served.add((method, path, name))
            if (method, path, name) not in forwarded:
                missing.append(f"{name}: {method} {path}")
    assert missing == []
    # And the other way round: every forwarded route has its handler in its service (a forwarded route
    # without one answers 404 behind a documented path).
    assert sorted(forwarded - served) == []


async def test_a_new_staff_route_without_a_rule_is_found_by_the_walk_and_closed_at_run_time(
    gateway: Gateway,
) -> None:
    app = _app()
    app.router.add_get("/api/v1/staff/something-new", _nothing)
    assert unruled(app) == {("GET", "/api/v1/staff/something-new")}

    # The running gateway refuses such a route too: anonymous 401, even an administrator 403.
    gateway.app.router._frozen = False  # simulate a route registered without a rule
    gateway.app.router.add_get("/api/v1/staff/something-new", _nothing)
    gateway.app.router._frozen = True
    assert (await gateway.browser().get("/api/v1/staff/something-new")).status == 401
    admin = await gateway.signed_in("rule-admin", (Role.ADMIN, "*"))
    assert (await admin.get("/api/v1/staff/something-new")).status == 403


# --- the walk ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    location: str
    group: str
    window: str
    closure: str


MITTE = Place("mitte", "mitte-ez", "101", "201")
NORD = Place("nord", "nord-ez", "102", "202")


class _Params(dict[str, str]):
    """Path parameters; one a route adds later gets a plain value."""

    def __missing__(self, key: str) -> str:
        return "1"


def _params(place: Place) -> dict[str, str]:
    return _Params(
        {
            "location_id": place.location,
            "group_id": place.group,
            "window_id": place.window,
            "closure_id": place.closure,
            "appointment_id": str(uuid.uuid4()),
            "username": "walk-target",
            "key_id": str(uuid.uuid4()),
            "kind": "confirmation",
            "language": "de",
            "concern_id": "neuantrag",
            "street_id": "1",
            "jobcenter_id": "bremerhaven",
            "name": "staff.css",
            "dead_letter_id": "1",
            "subscription_id": str(uuid.uuid4()),  # integrations (issue 12)
            "delivery_id": "1",
        }
    )


def _request(method: str, path: str, rule: Rule, place: Place) -> tuple[str, dict[str, Any]]:
    url = path.format_map(_params(place))
    kwargs: dict[str, Any] = {"params": {"location": place.location, "date": "2026-03-03"}}
    if method not in {"GET", "HEAD"}:
        relaxed = rule.relaxed
        if relaxed is not None and relaxed.fields:
            body: dict[str, Any] = dict.fromkeys(sorted(relaxed.fields), 1)
        elif relaxed is not None and relaxed.group_field:
            body = {relaxed.group_field: place.group, "first": "2026-03-03", "last": "2026-03-03"}
        else:
            body = {"location_id": place.location}
        kwargs["json"] = body
    return url, kwargs


def expected(persona: str, rule: Rule, own: bool) -> bool:
    """What directive 3.6 and the route's rule allow the persona at its own location or another."""
    source = rule.location.source
    if persona == "key":  # the service centre's key: Mitte only, every operation
        if rule.keys_too:  # its own "who am I"
            return True
        if rule.operation is None or source is From.EVERY_LOCATION:
            return False
        return True if source in (From.SOME_LOCATION, From.NONE) else own
    if rule.role is None:
        return True
    has_role = rule.role in INCLUDES[persona]
    if source in (From.SOME_LOCATION, From.NONE):
        return has_role
    if source is From.EVERY_LOCATION:
        return has_role and persona in CENTRAL
    if persona in CENTRAL:
        return has_role
    relaxed = rule.relaxed is not None and rule.relaxed.role in INCLUDES[persona]
    return (has_role or relaxed) and own


def _location_specific(rule: Rule) -> bool:
    return rule.location.source in (From.PATH, From.QUERY, From.QUERY_OR_OWN, From.BODY, From.LOOKUP)


async def _personas(gateway: Gateway) -> dict[str, StaffClient | dict[str, str]]:
    personas: dict[str, StaffClient | dict[str, str]] = {}
    for name, grant in GRANTS.items():
        personas[name] = await gateway.signed_in(f"walk-{name}", grant)
    await gateway.account("walk-target", (AM, "mitte"))
    admin = personas["admin"]
    assert isinstance(admin, StaffClient)
    created = await admin.post(
        "/api/v1/admin/api-keys",
        json={"name": "Service-Center", "locations": ["mitte"], "operations": KEY_OPERATIONS},
    )
    personas["key"] = {"Authorization": f"Bearer {(await created.json())['key']}"}
    index = gateway.app[CATALOG_INDEX]
    for place in (MITTE, NORD):
        index.remember("group", place.group, place.location, place.group)
        index.remember("window", place.window, place.location, place.group)
    index.remember("closure", MITTE.closure, "mitte", MITTE.group)
    index.remember("closure", NORD.closure, "nord", None)
    return personas


@pytest.mark.req("R28")
@pytest.mark.req("R29")
@pytest.mark.req("R30")
@pytest.mark.req("R31")
@pytest.mark.req("R32")
@pytest.mark.req("R46")
@pytest.mark.req("R50")
async def test_each_role_may_do_what_the_rule_allows_at_its_own_location_and_nothing_at_another(
    gateway: Gateway,
) -> None:
    personas = await _personas(gateway)
    table = rule_table()
    # Each persona is refused hundreds of routes within one minute of the frozen clock; the throttle of
    # refusals (429 beyond a few a minute, test_audit_log) would hide which answer the rule gives.
    gateway.staff.refusal_throttle = FailureThrottle(limit=100_000, window=timedelta(minutes=1))

    async def walk(persona: str, who: StaffClient | dict[str, str]) -> tuple[int, list[str]]:
        mismatches: list[str] = []
        checked = 0
        for (method, path), rule in sorted(table.items()):
            if rule.public or (method, path) in SKIPPED:
                continue
            places = [(MITTE, True), (NORD, False)] if _location_specific(rule) else [(MITTE, True)]
            for place, own in places:
                url, kwargs = _request(method, path, rule, place)
                if isinstance(who, StaffClient):
                    response = await who.request(method, url, **kwargs)
                else:
                    response = await gateway.client.request(
                        method, url, headers=who, allow_redirects=False, **kwargs
                    )
                refused = response.status == 403 and (
                    "json" not in response.content_type
                    or (await response.json())["error"]["code"] == "forbidden"
                )
                assert response.status != 401, (persona, method, url, await response.text())
                checked += 1
                if refused == expected(persona, rule, own):
                    where = "own" if own else "other"
                    mismatches.append(f"{persona} {method} {path} at {where}: {response.status}")
        return checked, mismatches

    # The personas walk side by side (each route's answer depends only on its own rule).
    results = await asyncio.gather(*(walk(persona, who) for persona, who in personas.items()))
    assert [m for _, found in results for m in found] == []
    assert sum(checked for checked, _ in results) > 600


# --- what the directive says, route by route --------------------------------------------------------
async def _status(client: StaffClient, method: str, path: str, **kwargs: Any) -> int:
    return (await client.request(method, path, **kwargs)).status


@pytest.mark.req("R28")
@pytest.mark.req("R29")
@pytest.mark.req("R30")
@pytest.mark.req("R31")
@pytest.mark.req("R32")
@pytest.mark.req("R46")
async def test_the_roles_of_directive_3_6_in_examples(gateway: Gateway) -> None:
    personas = await _personas(gateway)
    manager, leader, location_admin, admin, statistics, audit = (
        personas[n] for n in ("manager", "leader", "location_admin", "admin", "statistics", "audit")
    )
    assert all(
        isinstance(p, StaffClient) for p in (manager, leader, location_admin, admin, statistics, audit)
    )
    day_list = "/api/v1/staff/locations/{}/day-list?date=2026-03-03"
    window = {"weekday": 1, "start": "08:00", "end": "12:00", "service_points": 1}
    offer = {"group_id": "mitte-ez", "duration_minutes": 30, "modes": ["in_person"]}
    concern = {"id": "neu", "group_kinds": ["entrance_zone"], "name": {"de": "Neu"}}
    expectations: list[tuple[Any, str, str, dict[str, Any], int]] = [
        # R28: the appointment manager sees the booking files of their own location only.
        (manager, "GET", day_list.format("mitte"), {}, 200),
        (manager, "GET", day_list.format("nord"), {}, 403),
        (manager, "GET", "/api/v1/staff/locations/mitte/appointments?date=2026-03-03", {}, 200),
        (manager, "PUT", "/api/v1/admin/windows/101", {"json": window}, 403),
        (manager, "GET", "/staff/locations/mitte/staff-roles", {}, 403),
        # R29: the group leader changes the windows and capacity of their groups, not elsewhere.
        (leader, "PUT", "/api/v1/admin/windows/101", {"json": window}, 200),
        (leader, "PUT", "/api/v1/admin/windows/102", {"json": window}, 403),
        (leader, "PATCH", "/api/v1/admin/groups/mitte-ez", {"json": {"service_points": 1}}, 200),
        (leader, "PATCH", "/api/v1/admin/groups/mitte-ez", {"json": {"name": {"de": "X"}}}, 403),
        (leader, "PUT", "/api/v1/admin/locations/mitte/concerns/neuantrag", {"json": offer}, 403),
        # R30: the location administrator decides which concerns their groups offer, and their staff.
        (location_admin, "PUT", "/api/v1/admin/locations/mitte/concerns/neuantrag", {"json": offer}, 200),
        (location_admin, "PUT", "/api/v1/admin/locations/nord/concerns/neuantrag", {"json": offer}, 403),
        (location_admin, "GET", "/staff/locations/mitte/staff-roles", {}, 200),
        (location_admin, "GET", "/staff/locations/nord/staff-roles", {}, 403),
        (location_admin, "POST", "/api/v1/admin/concerns", {"json": concern}, 403),
        (location_admin, "POST", "/api/v1/admin/locations", {"json": {"id": "neu"}}, 403),
        # R31: the administrator keeps locations, the central catalogue and location administrators.
        (admin, "POST", "/api/v1/admin/concerns", {"json": concern}, 200),
        (admin, "POST", "/api/v1/admin/locations", {"json": {"id": "neu"}}, 200),
        (admin, "PUT", "/api/v1/admin/locations/nord/concerns/neuantrag", {"json": offer}, 200),
        (admin, "GET", "/staff/admin/accounts", {}, 200),
        (admin, "GET", "/api/v1/staff/statistics/summary", {}, 403),
        # R32: statistics only for the statistics role.
        (statistics, "GET", "/api/v1/staff/statistics/summary", {}, 200),
        (statistics, "GET", day_list.format("mitte"), {}, 403),
        (manager, "GET", "/api/v1/staff/statistics/summary", {}, 403),
        # R46: audit review reads the audit log and nothing else.
        (audit, "GET", "/api/v1/admin/audit-log", {}, 200),
        (audit, "GET", "/staff/admin/audit-log", {}, 200),
        (audit, "GET", day_list.format("mitte"), {}, 403),
        (audit, "GET", "/api/v1/admin/locations/mitte", {}, 403),
        (audit, "GET", "/api/v1/admin/accounts", {}, 403),
        (location_admin, "GET", "/api/v1/admin/audit-log", {}, 403),
        (admin, "GET", "/api/v1/admin/audit-log", {}, 200),
    ]
    for client, method, path, kwargs, status in expectations:
        assert await _status(client, method, path, **kwargs) == status, (method, path)


@pytest.mark.req("R28")
async def test_the_staff_pages_refuse_another_locations_page_with_an_html_403(gateway: Gateway) -> None:
    location_admin = await gateway.signed_in("page-la", (LA, "mitte"))
    response = await location_admin.get("/staff/locations/nord/staff-roles")
    assert response.status == 403
    assert response.content_type == "text/html"
    assert "Dafür fehlt Ihnen die Rolle oder der Standort" in await response.text()
    anonymous = await gateway.browser().get("/staff/locations/mitte/staff-roles")
    assert anonymous.status == 303
    assert anonymous.headers["Location"].startswith("/staff/login?next=/staff/locations/mitte/staff-roles")


def test_every_location_source_of_the_table_is_understood() -> None:
    for (method, path), rule in rule_table().items():
        where = rule.location
        if where.source in (From.PATH, From.LOOKUP):
            assert "{" + where.name + "}" in path, (method, path)
        if rule.group:
            assert "{" + rule.group + "}" in path, (method, path)
        assert where.source is not From.BODY or method in {"POST", "PUT", "PATCH"}, (method, path)
    assert ALL_LOCATIONS_MARK == "*"


@pytest.mark.parametrize("path", ["/api/v1/admin/locations/..", "/api/v1/admin/locations/./x?a=b"])
async def test_a_page_s_call_with_a_dot_segment_never_leaves_the_gateway(path: str) -> None:
    """A dot segment (a location id `..` decoded from `%2E%2E`) would be resolved by the HTTP client into
    another route of the service than the page meant: the call is refused before it is made."""
    from aiohttp.test_utils import make_mocked_request

    from services.gateway.staff import upstream
    from shared.errors import NotFoundError

    with pytest.raises(NotFoundError):
        await upstream.call(make_mocked_request("GET", "/staff/x"), "catalog", "GET", path)


async def test_a_location_that_cannot_be_an_id_is_a_bad_request_before_any_rule_is_weighed(
    gateway: Gateway,
) -> None:
    """A NUL (or any character no location id has) in the location of a body, query or path: a clean
    422 or 404, like any other invalid input. It was weighed as a location the caller lacks, and the
    refusal's audit entry then failed in PostgreSQL."""
    manager = await gateway.signed_in("odd-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
    body = {"location_id": "mi\x00tte", "concern_id": "neuantrag", "start": "2026-03-03T10:00:00+01:00"}
    response = await manager.post("/api/v1/staff/appointments", json=body)
    assert response.status == 422
    assert (await response.json())["error"]["details"][0]["field"] == "location_id"
    stats = await manager.get("/api/v1/staff/statistics/summary", params={"location": "Mitte!"})
    assert stats.status == 422
    day = await manager.get("/api/v1/staff/locations/mi%00tte/appointments", params={"date": "2026-03-03"})
    assert day.status == 404
    assert not gateway.upstreams["booking"].calls and not gateway.upstreams["reporting"].calls
    assert await audit_rows(gateway, actor="odd-manager", outcome="refused") == []


async def test_a_body_nested_too_deep_to_read_is_a_422_not_a_500(gateway: Gateway) -> None:
    """The gateway reads a write's body for the location its rule weighs; a body nested deeper than
    Python's json module reads raised RecursionError (a 500). It is no JSON object, as the services say."""
    manager = await gateway.signed_in("deep-manager", (Role.APPOINTMENT_MANAGER, "mitte"))
    for deep in (b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000):
        response = await manager.post(
            "/api/v1/staff/appointments", data=deep, headers={"Content-Type": "application/json"}
        )
        assert response.status == 422, await response.text()
        assert (await response.json())["error"]["details"][0]["field"] == "body"
    assert not gateway.upstreams["booking"].calls


# --- the signed identity between the gateway and the services -----------------------------------------
async def test_an_identity_header_opens_only_the_request_the_gateway_signed_it_for(stack: Stack) -> None:
    """Defence in depth (I5): whoever sees an administrator's identity header on the pod network (here:
    the one the gateway sent to reporting for the retention report) cannot replay it within its minute
    against another route of another service; the real catalog and booking answer 401 and change
    nothing. The gateway's own calls to them, bound to their routes, go through (the stack's set-up)."""
    gateway, admin = stack.gateway, stack.admin
    assert (await admin.get("/api/v1/admin/retention-report")).status == 200
    header = gateway.upstreams["reporting"].calls[-1]["identity"]
    secret, now = gateway.app[SETTINGS].internal_secret, gateway.clock.now()
    signed_for = request_target("reporting", "GET", "/api/v1/admin/retention-report")
    assert verify(header, secret, now, target=signed_for).subject == "the-admin"

    catalog = next(gateway.app[UPSTREAMS].candidates("catalog"))
    booking = next(gateway.app[UPSTREAMS].candidates("booking"))
    location = {"id": "replayed", "name": "Nie", "street": "Weg 1", "postcode": "28195", "hotline": "0421 1"}
    async with aiohttp.ClientSession() as http:
        for method, url, body in [
            ("POST", f"{catalog}/api/v1/admin/locations", location),
            ("GET", f"{catalog}/api/v1/admin/retention-report", None),  # the same path, another service
            ("POST", f"{booking}/api/v1/staff/locations/mitte/capacity-check", {}),
            ("GET", f"{booking}/api/v1/staff/locations/mitte/appointments?date=2026-03-03", None),
        ]:
            async with http.request(method, url, json=body, headers={HEADER: header}) as replayed:
                assert replayed.status == 401, (method, url, await replayed.text())
                assert (await replayed.json())["error"]["code"] == "unauthenticated"
    assert all(loc["id"] != "replayed" for loc in await (await admin.get("/api/v1/locations")).json())
    # A header of the previous release names no request: still accepted during a rolling update.
    unbound = sign(verify(header, secret, now, target=None).model_copy(update={"target": ""}), secret)
    assert verify(unbound, secret, now, target=request_target("catalog", "POST", "/x")).target == ""
