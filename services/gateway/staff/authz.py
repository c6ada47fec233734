"""The one place where staff and admin requests are let in or refused (invariant I5, R28-R32, R46, R50).

For every path under `/api/v1/staff/`, `/api/v1/admin/` and `/staff/` the middleware:
1. finds the route's rule (`rules.py`); public rules (the login) pass at once;
2. authenticates: an API key (`Authorization: Bearer otv_...`) or the session cookie; nothing valid is
   401 `unauthenticated`, before anything else is looked at (so an id that does not exist is 401 too);
   a refused API key is written to the audit log (up to `staff_key_refusals_per_minute` per client
   network; beyond that 429 `rate_limited` and only a metric, so that nobody can fill the log);
   a valid API key's request takes a token of the key's allowance (its own requests a minute, set by an
   administrator, or `api_key_requests_per_minute` and `api_key_burst`; per gateway replica): none left
   is 429 `rate_limited` with `Retry-After`, so that a runaway integration cannot starve the service
   centre's agents and the booking service (R50);
3. protects cookie-authenticated writes against CSRF (same-origin `Origin` / `Sec-Fetch-Site` for JSON,
   the session's token for HTML forms; API keys need neither);
4. checks the rule's role at the rule's location (or an API key's operation and locations): 403
   `forbidden` otherwise, with an audit entry of the refusal (up to `staff_refusals_per_minute` per
   account or key and gateway replica; beyond that the same 403, only counted in a metric); a route
   without a rule is refused;
5. hands the verified identity to the handler (`request[IDENTITY]`), which forwards it signed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import structlog
from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError
from prometheus_client import Counter
from yarl import URL

from services.gateway.origins import Provenance, has_control_or_space, is_local_target, provenance
from services.gateway.proxy import client_ip, client_network
from services.gateway.staff import service
from services.gateway.staff.catalog_index import CATALOG_INDEX
from services.gateway.staff.domain import GROUP_ID, LOCATION_ID
from services.gateway.staff.keys import (
    ALLOWED_ORIGINS,
    GROUP,
    IDENTITY,
    JSON_BODY,
    LOCATION,
    PAGE_ERROR,
    PAGE_SIGN_IN,
    RULE,
    RULES,
    SESSION,
    SESSION_COOKIE,
    STAFF,
)
from services.gateway.staff.rules import (
    ALL_LOCATIONS_MARK,
    CONFIRM_AFFECTED,
    From,
    Rule,
    is_staff_path,
)
from services.gateway.staff.service import Actor, KeyRefused, SessionInfo
from shared.errors import ForbiddenError, NotFoundError, OTVError, UnauthenticatedError, ValidationError
from shared.identity import IdentityKind, Role, StaffIdentity
from shared.logging import current_correlation_id
from shared.staff_nav import FORM_TOKEN_FIELD
from shared.web import (
    CLOCK,
    DATABASE_UNAVAILABLE,
    UNSTORABLE_INPUT,
    UNSTORABLE_MESSAGE,
    error_response,
    log_unhandled,
    parse_form,
    refuse_repeated_query,
    route_of,
)

log = structlog.get_logger(__name__)

COOKIE = "otv_staff_session"  # the bare name; `session_cookie` gives the one in use
CSRF_FIELD = FORM_TOKEN_FIELD
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


# While an account must change its start password, only these routes are open to it.
PASSWORD_CHANGE_ROUTES = frozenset(
    {
        ("GET", "/staff/password"),
        ("POST", "/staff/password"),
        ("POST", "/api/v1/staff/password"),
        ("POST", "/staff/logout"),
        ("POST", "/api/v1/staff/logout"),
        ("GET", "/api/v1/staff/me"),
    }
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KEY_REFUSALS = Counter(
    "otv_api_key_refusals_total",
    "Refused API keys: audited, or throttled (beyond the per-network limit, answered 429 without a row)",
    ["outcome"],
)

# By the key's id: its name is free text an administrator types, which may name a person.
API_KEY_REQUESTS = Counter(
    "otv_api_key_requests_total",
    "Requests of valid API keys by the key's id: allowed, or limited (beyond the key's allowance per "
    "replica: its own limit, else OTV_API_KEY_REQUESTS_PER_MINUTE and OTV_API_KEY_BURST; answered 429)",
    ["key_id", "outcome"],
)


STAFF_REFUSALS = Counter(
    "otv_staff_refusals_total",
    "Refused staff requests (403): audited, or throttled (beyond the per-account limit, the same 403 "
    "without a row)",
    ["outcome"],
)


class CsrfError(OTVError):
    code = "csrf_failed"
    status = 403


class PasswordChangeRequired(OTVError):
    code = "password_change_required"
    status = 403


def session_cookie(app: web.Application) -> str:
    """The staff session cookie's name: `__Host-otv_staff_session` behind TLS, else the bare name."""
    return app.get(SESSION_COOKIE, COOKIE)


def route_key(request: web.Request) -> tuple[str, str] | None:
    """(method, route pattern) of the matched route; None when no route matched (404/405)."""
    if request.match_info.http_exception is not None:
        return None
    resource = request.match_info.route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return method, resource.canonical


def is_page(request: web.Request) -> bool:
    return request.path == "/staff" or request.path.startswith("/staff/")


# Where the sign-in page sends back to: the page asked for, with its query while that stays short (a
# Location header has its limits, and a long query is no page anybody bookmarks).
_RETURN_TO_MAX = 1000


def _return_to(request: web.Request) -> str:
    # As sent (percent-encoded): the decoded form has a real space for "%20" or "+" (an audit-log filter
    # of two words), which `is_local_target` rightly refuses, and "a%26b" would come back as "a&b".
    for candidate in (request.rel_url.raw_path_qs, request.rel_url.raw_path):
        if len(candidate) <= _RETURN_TO_MAX:
            return candidate
    return "/staff"


def _is_page_form(request: web.Request) -> bool:
    """A staff page's form as a browser sends it (an API client sends JSON or a bearer key)."""
    return (
        is_page(request)
        and request.method not in SAFE_METHODS
        and request.content_type in FORM_TYPES
        and "Authorization" not in request.headers
    )


def _same_origin_page(request: web.Request) -> str | None:
    """The staff page a form was sent from (its Referer, same origin and a staff page only), else None."""
    referer = request.headers.get("Referer", "")
    try:
        url = URL(referer)
        origin = str(url.origin()).lower() if url.scheme in {"http", "https"} and url.host else ""
    except ValueError:
        return None
    own = request.app[ALLOWED_ORIGINS] | {f"{request.scheme}://{request.host}".lower()}
    if origin not in own:
        return None
    page = url.raw_path_qs  # as sent, see `_return_to`
    # yarl dropped any TAB or line break of the header before `page` was taken: what was sent counts too.
    if has_control_or_space(referer) or not is_local_target(page, "/staff/"):
        return None
    return page if len(page) <= _RETURN_TO_MAX else url.raw_path


async def _page_above(request: web.Request) -> str | None:
    path = request.path.rstrip("/")
    while path.count("/") > 1:
        path = path.rsplit("/", 1)[0]
        found = await request.app.router.resolve(request.clone(method="GET", rel_url=path))
        if not isinstance(found, MatchInfoError):
            return path
    return None


class PageFailure(OTVError):
    """A failure behind a staff page, shown as the German error page with its status and kind."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status  # type: ignore[misc]  # per instance
        self.code = code  # type: ignore[misc]  # per instance


# The kinds of a service's JSON error that the staff error page words alike.
_PAGE_CODES = {"upstream_unavailable": "unavailable", "upstream_timeout": "unavailable"}


@web.middleware
async def staff_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_staff_path(request.path):
        return await handler(request)
    try:
        response = await _guard(request, handler)
    except UnauthenticatedError as exc:
        if is_page(request) and request.method in SAFE_METHODS:
            raise web.HTTPSeeOther(f"/staff/login?next={quote(_return_to(request), safe='/')}") from None
        sign_in = request.app.get(PAGE_SIGN_IN)
        if _is_page_form(request) and callable(sign_in):
            # A page's form sent after the session ended (idle timeout): the sign-in page in German that
            # says the entry was not saved and leads back to the form's page, not an English JSON 401.
            page_of_form = _same_origin_page(request) or await _page_above(request) or "/staff/"
            expired: web.StreamResponse = await sign_in(request, page_of_form)
            return expired
        return _challenge(request, exc)
    except PasswordChangeRequired:
        if is_page(request) and request.method in SAFE_METHODS:
            raise web.HTTPSeeOther("/staff/password") from None
        raise
    except OTVError as exc:
        render = request.app.get(PAGE_ERROR)
        if is_page(request) and callable(render):
            refused: web.StreamResponse = await render(request, exc)
            return refused
        raise
    except UNSTORABLE_INPUT:
        # The database refused a value of a form (the last line of defence): the page says so.
        render = request.app.get(PAGE_ERROR)
        if is_page(request) and callable(render):
            unstorable: web.StreamResponse = await render(request, ValidationError(UNSTORABLE_MESSAGE))
            return unstorable
        raise
    except web.HTTPMethodNotAllowed:
        # A form's result shown at the address it was sent to, then reloaded or bookmarked: back to the
        # page the form belongs to (the nearest address above it that is a page), not a JSON error.
        if is_page(request) and request.method in SAFE_METHODS:
            above = await _page_above(request)
            if above is not None:
                raise web.HTTPSeeOther(above) from None
        raise
    except web.HTTPNotFound:
        render = request.app.get(PAGE_ERROR)
        if is_page(request) and callable(render):
            page: web.StreamResponse = await render(request, NotFoundError("Not found."))
            return page
        raise
    except web.HTTPException:
        raise  # a redirect, or another of aiohttp's answers, as it is
    except DATABASE_UNAVAILABLE as exc:
        # The gateway's own database (sessions are looked up on every request) during a failover: a page
        # asks in German to try again; the API answers 503 in JSON (`shared.web.error_middleware`).
        if not is_page(request):
            raise
        log.warning("database_unavailable", error_type=type(exc).__name__, route=route_of(request))
        unavailable = await _failure_page(request, PageFailure(503, "unavailable"), exc)
        unavailable.headers["Retry-After"] = "5"
        return unavailable
    except Exception as exc:
        if not is_page(request):
            raise
        log_unhandled(request, exc)  # only the type and where: a message can carry personal data
        return await _failure_page(request, PageFailure(500, "internal_error"), exc)
    if is_page(request) and response.status >= 400 and _is_json(response):
        # A page another service renders (reporting's statistics) whose service is down, slow or refused
        # in JSON: the German error page with the navigation instead of a JSON object.
        return await _failure_page(request, _failure_of(response), None)
    return response


# RFC 9110 15.5.2: a 401 names a scheme to authenticate with; for the API that is the API key (a
# session cookie has no challenge of its own). Not for the sign-in itself: a wrong password is no call
# for a key.
CHALLENGE = 'Bearer realm="OTV"'


def _challenge(request: web.Request, exc: UnauthenticatedError) -> web.Response:
    response = error_response(exc.status, exc.code, exc.message, exc.details)
    key = route_key(request)
    rule = request.app[RULES].get(key) if key else None
    if rule is None or not rule.public:
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def _is_json(response: web.StreamResponse) -> bool:
    return isinstance(response, web.Response) and response.content_type == "application/json"


def _failure_of(response: web.StreamResponse) -> PageFailure:
    try:
        body = response.body if isinstance(response, web.Response) else None
        error = json.loads(body if isinstance(body, bytes | bytearray) else b"")["error"]
        code = str(error["code"])
    except (ValueError, TypeError, KeyError):
        code = "internal_error" if response.status >= 500 else "error"
    return PageFailure(response.status, _PAGE_CODES.get(code, code))


async def _failure_page(
    request: web.Request, failure: PageFailure, cause: BaseException | None
) -> web.StreamResponse:
    """The German error page of a failure; what failed is raised on when there is no page to show."""
    render = request.app.get(PAGE_ERROR)
    if not callable(render):
        if cause is not None:
            raise cause
        raise failure
    page: web.StreamResponse = await render(request, failure)
    return page


async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = route_key(request)
    rule = request.app[RULES].get(key) if key else None
    if rule is not None and rule.public:
        return await handler(request)
    identity, session = await authenticate(request)
    if key is None:
        return await handler(request)  # 404/405 for a signed-in caller
    if session is not None:
        check_csrf(request, session)
        if request.method not in SAFE_METHODS and request.content_type in FORM_TYPES:
            await check_form_token(request, session)
        if session.must_change_password and key not in PASSWORD_CHANGE_ROUTES:
            raise PasswordChangeRequired("Please change your start password first.")
    elif request.method not in SAFE_METHODS and request.content_type in FORM_TYPES:
        await parse_form(request)  # an API key's form: refused as a whole when it cannot be read
    if rule is None:
        # Deny by default: a staff route someone added without a rule is closed, not open.
        log.error("staff_route_without_rule", route=key[1], method=key[0])
        await _refuse(request, identity, "no_rule", None)
    assert rule is not None  # noqa: S101 -- _refuse raised
    location = await authorise(request, rule, identity)
    request[IDENTITY] = identity
    request[RULE] = rule
    request[LOCATION] = location or ""
    if session is not None:
        request[SESSION] = session
    return await handler(request)


async def authenticate(request: web.Request) -> tuple[StaffIdentity, SessionInfo | None]:
    staff = request.app[STAFF]
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise UnauthenticatedError("Staff authentication required.")
        try:
            caller = await service.authenticate_key(staff, credentials.strip())
        except KeyRefused as refused:
            _throttle_refusals(request)
            await service.record(
                staff,
                Actor(
                    f"api-key:{refused.key_id}" if refused.key_id else "unknown-key",
                    str(IdentityKind.API_KEY),
                    client_ip(request),
                    current_correlation_id(),
                ),
                action="authenticate",
                entity="api_key",
                entity_id=refused.key_id,
                outcome="refused",
                status=401,
                method=request.method,
                route=_route_name(request),
                changes={"reason": refused.reason},
            )
            log.info("api_key_refused", reason=refused.reason)
            raise UnauthenticatedError("The API key is not valid.") from None
        _limit_key(request, caller)
        return caller.identity, None
    # Only the name in use: a cookie of the bare name behind TLS (the former release's, or one another host
    # of the domain planted) is no session, and its browser is asked to sign in.
    token = request.cookies.get(session_cookie(request.app), "")
    session = await service.find_session(staff, token) if token else None
    if session is None:
        raise UnauthenticatedError("Staff authentication required.")
    return session.identity(request.app[CLOCK].now()), session


def _throttle_refusals(request: web.Request) -> None:
    """Beyond a few refused keys a minute from one network: 429 without an audit row (I5: the log is
    append-only, so every row an anonymous caller makes stays, with its address). A valid key is never
    held back: it is checked before this."""
    staff, network, now = request.app[STAFF], client_network(client_ip(request)), request.app[CLOCK].now()
    wait = staff.key_throttle.retry_after(network, now)
    if wait:
        KEY_REFUSALS.labels(outcome="throttled").inc()
        raise web.HTTPTooManyRequests(
            reason="Too many refused API keys from this network.", headers={"Retry-After": str(wait)}
        )
    staff.key_throttle.failed(network, now)
    KEY_REFUSALS.labels(outcome="audited").inc()


def _limit_key(request: web.Request, caller: service.KeyCaller) -> None:
    """A valid key's request takes a token of the key's allowance, whatever it asks for (a 403 or 404 too:
    a runaway loop is one whatever it calls); none left: 429 `rate_limited` with `Retry-After`. The
    allowance is the key's own limit as stored now, else the settings' default. Not for staff signed in
    through the browser: their requests are their own clicks."""
    staff = request.app[STAFF]
    key_id = caller.identity.subject.removeprefix("api-key:")
    rate, burst = staff.key_allowance.of(caller.requests_per_minute)
    wait = staff.key_requests.take(key_id, request.app[CLOCK].now().timestamp(), rate=rate, burst=burst)
    if wait:
        API_KEY_REQUESTS.labels(key_id=key_id, outcome="limited").inc()
        raise web.HTTPTooManyRequests(
            reason=f"Too many requests with this API key. Please try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    API_KEY_REQUESTS.labels(key_id=key_id, outcome="allowed").inc()


def check_csrf(request: web.Request, session: SessionInfo) -> None:
    """Cookie-authenticated writes only come from our own pages (API keys never reach here); where they
    come from is judged as for the customer forms (`origins.provenance`)."""
    if request.method in SAFE_METHODS:
        return
    source = provenance(request, request.app[ALLOWED_ORIGINS])
    if source is Provenance.FOREIGN:
        raise CsrfError("Cross-site request refused.")
    if request.content_type in FORM_TYPES:
        return  # forms carry the session's token: checked by check_form_token (aiohttp caches the form)
    header_token = request.headers.get(CSRF_HEADER, "")
    if header_token and _same(header_token, session.csrf_token):
        return
    if source is Provenance.SAME_ORIGIN:
        return
    raise CsrfError(
        f"A cookie-authenticated write needs a same-origin Origin header or the session's {CSRF_HEADER}."
    )


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def check_form_token(request: web.Request, session: SessionInfo) -> None:
    """A form posted with the session cookie must carry the session's CSRF token."""
    form = await parse_form(request)  # parsed once; the handler's request.post() gets the same
    token = form.get(CSRF_FIELD)
    if not isinstance(token, str) or not _same(token, session.csrf_token):
        raise CsrfError("The form has expired. Please load the page again.")


async def json_body(request: web.Request) -> Any:
    """The request's JSON body (None when there is none or it is not JSON); aiohttp keeps the bytes, so
    the handler and the forwarder read them again. A body nested deeper than Python's json module reads
    (RecursionError) counts as not JSON, like the services' pydantic refuses it."""
    if JSON_BODY in request:
        return request[JSON_BODY]
    raw = await request.read()
    try:
        data: Any = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        data = None
    request[JSON_BODY] = data
    return data


# Fields of the staff pages' forms that are not part of the change itself.
FORM_CONTROLS = frozenset({CSRF_FIELD, CONFIRM_AFFECTED, "action"})


async def request_fields(request: web.Request) -> Any:
    """What a write sets: the JSON body, or a form's fields without its control fields."""
    if request.content_type in FORM_TYPES:
        form = await request.post()
        return {k: v for k, v in form.items() if k not in FORM_CONTROLS}
    return await json_body(request)


async def _location_of(request: web.Request, rule: Rule) -> tuple[str | None, str | None]:
    """The location a request concerns (a location id, ALL_LOCATIONS_MARK for central work, or None where
    no location is involved or the owning service checks it), and the group where one is named. Ids that
    cannot be ids are refused here, before they reach a rule or the audit log."""
    where = rule.location
    group = request.match_info.get(rule.group) if rule.group else None
    if group is not None and not GROUP_ID.fullmatch(group):
        raise NotFoundError("Not found.")
    if where.source is From.PATH:
        location = request.match_info.get(where.name, "")
        if not LOCATION_ID.fullmatch(location):
            raise NotFoundError("There is no such location.")
        return location, group
    if where.source in (From.QUERY, From.QUERY_OR_OWN):
        # Two locations (`?location=mitte&location=nord`) are neither: a 422, not a rule checked for one.
        refuse_repeated_query(request)
        value = request.query.get(where.name)
        if value and not LOCATION_ID.fullmatch(value):
            raise _invalid_location(where.name)
        if value:
            return value, group
        # Absent or blank: central work needs every location; an own-locations list, the role somewhere.
        return (ALL_LOCATIONS_MARK if where.source is From.QUERY else None), group
    if where.source is From.BODY:
        data = await json_body(request)
        if not isinstance(data, dict):
            raise ValidationError(
                "The request body must be a JSON object.",
                details=[{"field": "body", "message": "missing or not a JSON object"}],
            )
        value = data.get(where.name)
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"The request needs the field {where.name}.",
                details=[{"field": where.name, "message": "missing"}],
            )
        if not LOCATION_ID.fullmatch(value):
            raise _invalid_location(where.name)
        return value, group
    if where.source is From.LOOKUP:
        location, found_group = await request.app[CATALOG_INDEX].locate(
            request, where.kind, request.match_info.get(where.name, "")
        )
        return location, group or found_group
    if where.source is From.EVERY_LOCATION:
        return ALL_LOCATIONS_MARK, group
    return None, group


def _invalid_location(field: str) -> ValidationError:
    return ValidationError(
        f"Invalid input: {field}.", details=[{"field": field, "message": "not a location id"}]
    )


def _role_permits(identity: StaffIdentity, role: Role, location: str | None, group: str | None) -> bool:
    if location == ALL_LOCATIONS_MARK:
        return identity.locations_with(role) is None
    if location is None:
        return identity.has(role)
    return identity.has(role, location, group)


def permits(identity: StaffIdentity, rule: Rule, location: str | None, group: str | None) -> bool:
    """Whether the identity may call a route of this rule at this location (and group)."""
    if identity.kind is IdentityKind.API_KEY:
        if rule.keys_too:
            return True
        if rule.operation is None or not identity.may(rule.operation):
            return False
        return _role_permits(identity, Role.SERVICE_CENTRE, location, None)
    if rule.role is None:
        return True
    return _role_permits(identity, rule.role, location, group)


def permits_relaxed(
    identity: StaffIdentity, rule: Rule, location: str | None, group: str | None, body: Any
) -> bool:
    """The narrower form of a change (`Relaxed`): the lesser role at this location for a named group."""
    relaxed = rule.relaxed
    if relaxed is None or identity.kind is not IdentityKind.USER:
        return False
    if relaxed.fields is not None and not (
        isinstance(body, dict) and set(body) - {CONFIRM_AFFECTED} <= relaxed.fields
    ):
        return False
    if relaxed.group_field is not None:
        named = body.get(relaxed.group_field) if isinstance(body, dict) else None
        group = named if isinstance(named, str) else None
    # A group must be named: a leader of some groups never changes the whole location.
    if group is None or location is None or location == ALL_LOCATIONS_MARK:
        return False
    return identity.has(relaxed.role, location, group)


def _could_permit_somewhere(identity: StaffIdentity, rule: Rule) -> bool:
    """Before a look-up: whether the identity has the rule's (or the relaxed) role anywhere at all."""
    if permits(identity, rule, None, None):
        return True
    return rule.relaxed is not None and identity.kind is IdentityKind.USER and identity.has(rule.relaxed.role)


async def authorise(request: web.Request, rule: Rule, identity: StaffIdentity) -> str | None:
    if rule.location.source is From.LOOKUP and not _could_permit_somewhere(identity, rule):
        await _refuse(request, identity, "forbidden", None)  # no look-up for someone who may do none
    location, group = await _location_of(request, rule)
    if group:
        request[GROUP] = group
    if not permits(identity, rule, location, group):
        body = await request_fields(request) if rule.relaxed is not None else None
        if not permits_relaxed(identity, rule, location, group, body):
            await _refuse(request, identity, "forbidden", location)
    return location


async def _refuse(request: web.Request, identity: StaffIdentity, reason: str, location: str | None) -> None:
    """403, with an audit entry: every refusal of an API key (R50), and of staff accounts as well; but
    beyond a few a minute from one account or key the same 403 without a row (I5: the log is append-only,
    so a loop run with one valid session would bury the entries an audit review looks for, R46). Not 429:
    the request can never succeed, and a client told to retry later (a CRM asking for a location its key
    does not cover) would retry, or hold back its allowed requests too. The count is per replica."""
    staff, now = request.app[STAFF], request.app[CLOCK].now()
    who = f"{identity.kind}:{identity.subject}"
    if staff.refusal_throttle.retry_after(who, now):
        STAFF_REFUSALS.labels(outcome="throttled").inc()
        raise ForbiddenError("This needs a role or location you do not have.")
    staff.refusal_throttle.failed(who, now)
    STAFF_REFUSALS.labels(outcome="audited").inc()
    await service.record(
        request.app[STAFF],
        Actor.of(identity, client_ip(request), current_correlation_id()),
        action="access",
        entity=request.app[RULES].get(route_key(request), Rule(None)).entity or "route",
        entity_id=None,
        location=location if location and location != ALL_LOCATIONS_MARK else None,
        outcome="refused",
        status=403,
        method=request.method,
        route=_route_name(request),
        changes={"reason": reason},
    )
    raise ForbiddenError("This needs a role or location you do not have.")


def _route_name(request: web.Request) -> str:
    key = route_key(request)
    return key[1] if key else "unmatched"
